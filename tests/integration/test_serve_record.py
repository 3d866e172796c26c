#!/usr/bin/env python3
"""Recording in okvm serve (POST /api/record, GET /api/recordings[/NAME], docs/recording.md),
judged by ffprobe/ffmpeg: a recording started and stopped over HTTP, with no viewer watching,
downloads as Matroska with an MJPEG track holding the fixture JPEGs byte for byte (frame count
about duration x fps) and the virtual unit's sound as a 48 kHz stereo PCM track in sync; a
viewer on /stream loses no frames while it runs; SIGTERM mid-recording and an unplug of the
video device leave complete files; a second start, a stop without a recording, names with path
tricks, a full disk ([record] min_free) and a missing login or role are refused with one clear
line each. Exit 0 = pass, 1 = fail, 77 = skipped (no ffprobe)."""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import Emulator, preload_v4l2  # noqa: E402
from serve_util import FRAMES, OKVM, Mjpeg, Server, check, fail  # noqa: E402

BUILD = os.environ.get("OKVM_BUILD", "build")
FPS = 20


def probe(path):
    p = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams",
                        "-show_format", "-show_packets", "-of", "json", path],
                       capture_output=True, text=True)
    return json.loads(p.stdout) if p.returncode == 0 else None


def streams(j):
    return {s["codec_type"]: s for s in j["streams"]}


def conf_file(tmp, body):
    path = os.path.join(tmp, "okvm.conf")
    with open(path, "w") as f:
        f.write(body)
    os.chmod(path, 0o600)
    return path


def wait_state(s, cond, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st, j = s.json("GET", "/api/record")
        if st == 200 and cond(j):
            return j
        time.sleep(0.1)
    return j


def test_main(tmp):
    recdir = os.path.join(tmp, "rec")
    conf = conf_file(tmp, f"[record]\ndir = {recdir}\n")
    src = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(FRAMES, "*.jpg")))]
    with Server("--config", conf, fps=FPS) as s:
        st, j = s.json("GET", "/api/record")
        check(st == 200 and j["recording"] is False and j["limit"] == 2 << 30,
              f"GET /api/record: not recording, limit 2 GiB by default ({st} {j})")
        st, j = s.json("GET", "/api/recordings")
        check(st == 200 and j["recordings"] == [] and j["dir"] == recdir,
              f"GET /api/recordings: none yet, in [record] dir ({j})")
        st, j = s.json("POST", "/api/record?action=stop")
        check(st == 409 and "no recording" in j["error"], f"stop with none running: 409 ({j})")
        st, j = s.json("POST", "/api/record?action=bogus")
        check(st == 400 and "action=start" in j["error"], f"a bad action: 400 ({j})")
        st, j = s.json("POST", "/api/record?action=start")
        check(st == 200 and j["ok"] and j["recording"] and j["name"].endswith(".mkv") and
              j["audio"] is True, f"start: 200, a name, with sound ({st} {j})")
        name = j["name"]
        st2, j2 = s.json("POST", "/api/record?action=start")
        check(st2 == 409 and "running already" in j2["error"], f"a second start: 409 ({j2})")
        # nobody watches: the capture runs for the recording alone
        t0 = time.monotonic()
        time.sleep(1.0)
        st, j = s.json("GET", "/api/record")
        check(j["recording"] and j["name"] == name and 0.7 < j["seconds"] < 3 and
              j["frames"] > 5 and j["bytes"] > 0,
              f"GET /api/record while recording: name, seconds, frames, bytes ({j})")
        st, j = s.json("GET", "/api/recordings")
        check([r["name"] for r in j["recordings"]] == [name] and j["recordings"][0]["recording"],
              f"the list shows the running recording ({j['recordings']})")
        st, h, _ = s.http("GET", "/api/recordings/" + name)
        check(st == 409, f"downloading the running recording: 409 ({st})")
        # a viewer joins for a while: it gets every frame while the file is written
        m = Mjpeg(s.port)
        seqs = []
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            hdr, _ = m.part()
            seqs.append(float(hdr["x-timestamp"]))
        m.close()
        time.sleep(0.5)
        st, j = s.json("POST", "/api/record?action=stop")
        wall = time.monotonic() - t0
        check(st == 200 and j["ok"] and not j["recording"] and j["end"] == "stopped",
              f"stop: 200, ended 'stopped' ({st} {j})")
        frames, secs = j["frames"], j["seconds"]
        st, j = s.json("GET", "/api/recordings")
        rec = j["recordings"][0]
        check(rec["name"] == name and not rec["recording"] and rec["bytes"] > 10000,
              f"the list: the finished file with its size ({rec})")
        st, h, data = s.http("GET", "/api/recordings/" + name)
        check(st == 200 and h["content-type"] == "video/x-matroska" and
              h["content-disposition"] == f'attachment; filename="{name}"' and
              len(data) == rec["bytes"],
              f"download: 200, Matroska, attachment; filename, {len(data)} bytes ({h})")
        out = os.path.join(tmp, "got.mkv")
        open(out, "wb").write(data)
        check(data == open(os.path.join(recdir, name), "rb").read(),
              "the download is the file in [record] dir, byte for byte")
        # refused names: path tricks never reach the file system
        for bad in ("..%2f..%2fetc%2fpasswd", ".hidden.mkv", "x.txt", "a%2fb.mkv",
                    "okvm.conf"):
            st, _, body = s.http("GET", "/api/recordings/" + bad)
            check(st in (400, 404) and b"passwd" not in body and b"[record]" not in body,
                  f"GET /api/recordings/{bad}: refused ({st})")
        st, j = s.json("GET", "/api/recordings/nothere.mkv")
        check(st == 404, f"a name that is not there: 404 ({st})")
    j = probe(out)
    check(j is not None, "ffprobe reads the download")
    sts = streams(j)
    v, a = sts["video"], sts.get("audio", {})
    check(j["format"]["format_name"].startswith("matroska") and v["codec_name"] == "mjpeg",
          f"Matroska with an MJPEG track ({j['format']['format_name']}, {v['codec_name']})")
    nb = int(v["nb_read_frames"])
    dur = float(j["format"]["duration"])
    check(nb == frames and abs(dur * FPS - nb) <= 2 and dur <= wall,
          f"frame count = frames reported = duration x fps ({nb}, {frames}, {dur:.3f} s x "
          f"{FPS})")
    check(abs(dur - secs) < 0.06, f"duration as reported ({dur:.3f} vs {secs:.3f})")
    check(a.get("codec_name") == "pcm_s16le" and a.get("sample_rate") == "48000" and
          a.get("channels") == 2, f"an audio track: 48 kHz stereo PCM ({a.get('codec_name')})")
    vp = [float(k["pts_time"]) for k in j["packets"] if k["stream_index"] == v["index"]]
    ap = [(float(k["pts_time"]), int(k["size"]) / 4 / 48000) for k in j["packets"]
          if k["stream_index"] == a["index"]]
    check(ap and abs(ap[0][0] - vp[0]) < 0.04 and abs(ap[-1][0] + ap[-1][1] - vp[-1]) < 0.06,
          f"audio in sync: starts {ap[0][0]:.3f} vs {vp[0]:.3f}, ends "
          f"{ap[-1][0] + ap[-1][1]:.3f} vs {vp[-1]:.3f}")
    ex = os.path.join(tmp, "ex")
    os.mkdir(ex)
    subprocess.run(["ffmpeg", "-v", "error", "-i", out, "-map", "0:v", "-c", "copy", "-f",
                    "image2", os.path.join(ex, "%05d.jpg")], check=True)
    got = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(ex, "*.jpg")))]
    check(len(got) == nb and all(g in src for g in got),
          "stream copy gives back the fixture JPEGs byte for byte")
    # the fixtures loop in order: consecutive frames follow each other
    idx = [src.index(g) for g in got]
    steps = [(b - a) % len(src) for a, b in zip(idx, idx[1:])]
    check(steps.count(1) >= len(steps) - 2, f"in capture order ({steps.count(1)} of "
          f"{len(steps)} steps by one frame)")
    gaps = [b - a for a, b in zip(seqs, seqs[1:])]
    check(len(seqs) >= 1.5 * FPS - 3 and sum(1 for g in gaps if g > 1.5 / FPS) <= 1,
          f"a viewer got every frame while recording ({len(seqs)} parts in 1.5 s, largest "
          f"gap {max(gaps):.3f} s)")


def test_delete_and_roles(tmp):
    recdir = os.path.join(tmp, "rec2")
    conf = conf_file(tmp, f"[record]\ndir = {recdir}\n")
    for pw, extra in (("adminpw-123", ()), ("viewerpw-123", ("--user", "vic", "--role",
                                                             "viewer"))):
        r = subprocess.run([OKVM, "passwd", "--config", conf, *extra], input=pw + "\n",
                           capture_output=True, text=True, env=dict(os.environ, HOME=tmp))
        if r.returncode:
            fail(f"okvm passwd: {r.stderr}")
    with Server("--config", conf, fps=FPS) as s:
        for method, path in (("POST", "/api/record?action=start"), ("GET", "/api/record"),
                             ("GET", "/api/recordings"), ("GET", "/api/recordings/x.mkv")):
            st, j = s.json(method, path)
            check(st == 401 and "log in" in j["error"], f"{method} {path} without a login: 401")

        def login(user, pw):
            st, h, _ = s.http("POST", "/api/login", f"user={user}&password={pw}",
                              {"Content-Type": "application/x-www-form-urlencoded"})
            if st != 200:
                fail(f"login {user}: {st}")
            return {"Cookie": h["set-cookie"].split(";")[0]}

        adm, vic = login("admin", "adminpw-123"), login("vic", "viewerpw-123")
        st, j = s.json("POST", "/api/record?action=start", headers=vic)
        check(st == 403 and "operator" in j["error"], f"a viewer may not record: 403 ({j})")
        st, j = s.json("POST", "/api/record?action=start", headers=adm)
        check(st == 200, f"admin starts ({st} {j})")
        time.sleep(0.6)
        st, j = s.json("GET", "/api/record", headers=vic)
        check(st == 200 and j["recording"], "a viewer sees that a recording runs")
        st, j = s.json("POST", "/api/record?action=stop", headers=adm)
        name = j["name"]
        st, h, data = s.http("GET", "/api/recordings/" + name, headers=vic)
        check(st == 200 and len(data) > 1000, "a viewer may download")
        st, j = s.json("DELETE", "/api/recordings/" + name, headers=vic)
        check(st == 403, f"a viewer may not delete: 403 ({st})")
        st, j = s.json("DELETE", "/api/recordings/" + name, headers=adm)
        check(st == 200 and j["ok"] and not os.path.exists(os.path.join(recdir, name)),
              "DELETE /api/recordings/NAME removes the file")
        st, j = s.json("DELETE", "/api/recordings/" + name, headers=adm)
        check(st == 404, f"deleting it again: 404 ({st})")
        st, j = s.json("GET", "/api/recordings", headers=adm)
        check(j["recordings"] == [], "the list is empty again")


def test_sigterm(tmp):
    recdir = os.path.join(tmp, "rec3")
    conf = conf_file(tmp, f"[record]\ndir = {recdir}\naudio = no\n")
    s = Server("--config", conf, fps=FPS)
    st, j = s.json("POST", "/api/record?action=start")
    check(st == 200 and j["audio"] is False, f"start ([record] audio = no: no sound) ({j})")
    name = j["name"]
    time.sleep(1.5)
    rc = s.stop()
    check(rc == 0, f"SIGTERM while recording: the server exits 0 ({rc})")
    path = os.path.join(recdir, name)
    j = probe(path)
    check(j is not None and "audio" not in streams(j), "the file is readable, video only")
    nb = int(streams(j)["video"]["nb_read_frames"])
    dur = float(j["format"]["duration"])
    check(nb >= 15 and abs(dur * FPS - nb) <= 2,
          f"SIGTERM: a complete file with its duration in the trailer ({nb} frames, {dur:.3f} s)")
    r = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "null", "-"],
                       capture_output=True, text=True)
    check(r.returncode == 0 and not r.stderr.strip(),
          f"ffmpeg reads it to the end without an error ({r.stderr.strip()[:200]!r})")
    check("recording " + name + " ended (stopped)" in s.errors(),
          "the log says the recording ended")


def test_min_free(tmp):
    recdir = os.path.join(tmp, "rec4")
    conf = conf_file(tmp, f"[record]\ndir = {recdir}\nmin_free = 1000000T\n")
    with Server("--config", conf, fps=FPS) as s:
        st, j = s.json("POST", "/api/record?action=start")
        check(st == 507 and "free" in j["error"] and "min_free" in j["error"],
              f"too little free space: 507 with what to do ({j})")
        st, j = s.json("GET", "/api/record")
        check(not j["recording"], "nothing recording after the refusal")
    conf = conf_file(tmp, "[record]\nmax_size = 12\n")
    r = subprocess.run([OKVM, "serve", "--config", conf, "-d", "emu", "--listen",
                        "127.0.0.1:1"], capture_output=True, text=True, timeout=20)
    check(r.returncode != 0 and "max_size" in r.stderr and "64K" in r.stderr,
          f"[record] max_size = 12: refused naming it ({r.stderr.strip()!r})")


def test_max_size(tmp):
    recdir = os.path.join(tmp, "rec5")
    conf = conf_file(tmp, f"[record]\ndir = {recdir}\nmax_size = 200K\naudio = no\n")
    with Server("--config", conf, fps=FPS) as s:
        st, j = s.json("POST", "/api/record?action=start")
        name = j["name"]
        j = wait_state(s, lambda j: not j["recording"], timeout=20)
        check(not j["recording"] and j.get("end") == "max-size" and "max_size" in j["error"],
              f"[record] max_size ends the recording by itself ({j})")
        size = os.path.getsize(os.path.join(recdir, name))
        check(size <= 200 * 1024, f"and the file stays under it ({size} bytes)")
        p = probe(os.path.join(recdir, name))
        check(p is not None and int(streams(p)["video"]["nb_read_frames"]) > 2,
              "a complete file")
        st, j = s.json("POST", "/api/record?action=start")
        check(st == 200, "a new recording can start after that")
        s.json("POST", "/api/record?action=stop")


def test_unplug(tmp):
    pics = os.path.join(tmp, "v4l2")
    os.mkdir(pics)
    subprocess.run([os.path.join(BUILD, "tests", "fakes", "make-testpics"), pics, "640x480-",
                    "640", "480", "4"], check=True)
    env = {"LD_PRELOAD": preload_v4l2(BUILD), "OKVM_FAKE_V4L2_PATH": "/dev/video-okvm-fake",
           "OKVM_FAKE_V4L2_DIR": pics, "OKVM_FAKE_V4L2_SCRIPT": "40:unplug=60000"}
    recdir = os.path.join(tmp, "rec6")
    conf = conf_file(tmp, f"[record]\ndir = {recdir}\naudio = no\n")
    with Emulator() as emu, Server("--config", conf, "--serial", emu.link, "--video",
                                   "/dev/video-okvm-fake", "--video-mode", "640x480@30",
                                   backend=[], env=env) as s:
        st, j = s.json("POST", "/api/record?action=start")
        check(st == 200, f"start on the V4L2 fake ({st} {j})")
        name = j["name"]
        j = wait_state(s, lambda j: not j["recording"], timeout=15)
        check(not j["recording"] and j.get("end") == "unplugged" and "went away" in j["error"],
              f"an unplug ends the recording and says so ({j})")
        p = probe(os.path.join(recdir, name))
        nb = p and int(streams(p)["video"]["nb_read_frames"])
        check(p is not None and 30 <= nb <= 39 and nb == j["frames"],
              f"a complete file with the frames before it ({nb} of 39)")


def main():
    if not shutil.which("ffprobe") or not shutil.which("ffmpeg"):
        print("SKIP: no ffprobe/ffmpeg")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="okvm-serve-rec-")
    try:
        only = sys.argv[1] if len(sys.argv) > 1 else ""
        for name, fn in (("main", test_main), ("roles", test_delete_and_roles),
                         ("sigterm", test_sigterm), ("min_free", test_min_free),
                         ("max_size", test_max_size), ("unplug", test_unplug)):
            if only in name:
                fn(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
