#!/usr/bin/env python3
"""okvm record, end to end, judged by ffprobe/ffmpeg (FFmpeg's own readers): the file is Matroska
with an MJPEG track holding the device's JPEGs byte for byte, as many frames and as long as okvm
says, timestamps rising; SIGINT/SIGTERM mid-run, --max-size and an unplug (the V4L2 fake) all
leave a complete file; --timelapse spacing; bad usage exits 2 with one line.
Exit 0 = pass, 1 = fail, 77 = skipped (no ffprobe)."""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

OKVM = os.environ.get("OKVM", "build/okvm")
BUILD = os.environ.get("OKVM_BUILD", "build")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import preload_v4l2  # noqa: E402

FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def run(args, env=None, timeout=60):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([OKVM] + args, capture_output=True, env=e, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode(errors="replace")


def probe(path):
    """ffprobe's view: streams, format, and the video packets' pts in seconds."""
    p = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams",
                        "-show_format", "-show_packets", "-of", "json", path],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)


def video_info(path):
    j = probe(path)
    if not j or not j.get("streams"):
        return None
    v = [s for s in j["streams"] if s["codec_type"] == "video"][0]
    pts = [float(k["pts_time"]) for k in j["packets"] if k["stream_index"] == v["index"]]
    return {"codec": v["codec_name"], "frames": int(v.get("nb_read_frames", -1)),
            "duration": float(j["format"]["duration"]), "pts": pts,
            "format": j["format"]["format_name"], "size": (v["width"], v["height"])}


def rising(pts):
    return all(b > a for a, b in zip(pts, pts[1:]))


def summary(so):
    return json.loads(so.strip().splitlines()[-1])


def test_frames(tmp, pics_dir):
    out = os.path.join(tmp, "f.mkv")
    rc, so, se = run(["-d", "frames:%s@20" % pics_dir, "--json", "record", "-o", out,
                      "--seconds", "2"])
    check(rc == 0, "frames@20 --seconds 2: exits 0 (%d: %s)" % (rc, se.strip()))
    s = summary(so)
    info = video_info(out)
    check(info is not None, "frames: ffprobe reads the file")
    check(info["format"].startswith("matroska") and info["codec"] == "mjpeg",
          "frames: Matroska with an MJPEG track (%s, %s)" % (info["format"], info["codec"]))
    check(info["frames"] == s["frames"] and 30 <= s["frames"] <= 41,
          "frames: ffprobe counts the frames okvm reports (%d vs %d)"
          % (info["frames"], s["frames"]))
    check(abs(info["duration"] - s["seconds"]) < 0.002 and 1.5 < s["seconds"] <= 2.0,
          "frames: the duration is the one okvm reports (%.3f vs %.3f)"
          % (info["duration"], s["seconds"]))
    check(rising(info["pts"]) and info["pts"][0] == 0.0, "frames: timestamps rise from 0")
    steps = [b - a for a, b in zip(info["pts"], info["pts"][1:])]
    check(all(0.005 <= d <= 0.15 for d in steps) and
          abs(sum(steps) / len(steps) - 0.05) < 0.005,
          "frames: 20 fps capture times (steps %.3f..%.3f s, mean %.4f)"
          % (min(steps), max(steps), sum(steps) / len(steps)))
    # The JPEGs inside are the source's, byte for byte (no re-encoding).
    ex = os.path.join(tmp, "ex")
    os.mkdir(ex)
    subprocess.run(["ffmpeg", "-v", "error", "-i", out, "-c", "copy", "-f", "image2",
                    os.path.join(ex, "%04d.jpg")], check=True)
    got = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(ex, "*.jpg")))]
    src = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(pics_dir, "*.jpg")))]
    check(len(got) == s["frames"] and all(g in src for g in got),
          "frames: every frame in the file is one of the source JPEGs, unchanged")
    check(got[:3] == src[:3], "frames: in capture order")


def test_signal(tmp, sig, name):
    out = os.path.join(tmp, name + ".mkv")
    p = subprocess.Popen([OKVM, "-d", "emu", "--json", "record", "-o", out],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2.5)
    p.send_signal(sig)
    so, se = p.communicate(timeout=20)
    check(p.returncode == 0, "%s mid-run: exits 0 (%d: %s)" % (name, p.returncode, se))
    s = summary(so.decode())
    info = video_info(out)
    check(info is not None and info["codec"] == "mjpeg" and info["size"] == (1920, 1080),
          "%s: a valid 1080p MJPEG Matroska file" % name)
    check(info["frames"] == s["frames"] > 10 and s["end"] == "stopped",
          "%s: every frame okvm wrote is in it (%d vs %d)" % (name, info["frames"], s["frames"]))
    check(abs(info["duration"] - s["seconds"]) < 0.002 and rising(info["pts"]),
          "%s: duration as reported, timestamps rising" % name)


def test_max_size(tmp):
    out = os.path.join(tmp, "m.mkv")
    rc, so, se = run(["-d", "emu", "--json", "record", "-o", out, "--max-size", "300K",
                      "--seconds", "20"])
    s = summary(so) if rc == 0 else {}
    check(rc == 0 and s.get("end") == "max-size",
          "--max-size 300K: stops at the limit, exits 0 (%d: %s)" % (rc, se.strip()))
    size = os.path.getsize(out)
    check(300 * 1024 - 80 * 1024 < size <= 300 * 1024,
          "--max-size: the file is at most 300K and near it (%d bytes)" % size)
    info = video_info(out)
    check(info is not None and info["frames"] == s.get("frames"),
          "--max-size: the file is complete (ffprobe counts %s frames)"
          % (info and info["frames"]))
    big = os.path.join(tmp, "big")
    os.mkdir(big)
    subprocess.run([os.path.join(BUILD, "bench", "make_frames"), big, "1920", "1080", "1"],
                   check=True)
    check(os.path.getsize(glob.glob(os.path.join(big, "*.jpg"))[0]) > 65536,
          "--max-size: the 1080p test frame is above 64K")
    rc, so, se = run(["-d", "frames:" + big, "record", "-o", os.path.join(tmp, "m2.mkv"),
                      "--max-size", "64K"])
    check(rc == 1 and "too small" in se and not os.path.exists(os.path.join(tmp, "m2.mkv")),
          "--max-size below one frame: exits 1, says so, leaves no file (%d: %r)" % (rc, se))


def test_timelapse(tmp, pics_dir):
    out = os.path.join(tmp, "t.mkv")
    rc, so, se = run(["-d", "frames:%s@20" % pics_dir, "--json", "record", "-o", out,
                      "--seconds", "3.2", "--timelapse", "0.5"])
    check(rc == 0, "--timelapse 0.5: exits 0 (%d: %s)" % (rc, se.strip()))
    s = summary(so)
    info = video_info(out)
    steps = [b - a for a, b in zip(info["pts"], info["pts"][1:])]
    check(info["frames"] == s["frames"] and 6 <= s["frames"] <= 7,
          "--timelapse: one frame per 0.5 s of 3.2 s (%d frames)" % s["frames"])
    check(steps and all(0.45 <= d < 0.6 for d in steps) and
          abs(sum(steps) / len(steps) - 0.5) < 0.02,
          "--timelapse: frames 0.5 s apart (%s)" % ["%.3f" % d for d in steps])
    check(s["skipped"] > 40, "--timelapse: the frames between are left out (%d)" % s["skipped"])


def test_unplug(tmp):
    pics = os.path.join(tmp, "v4l2")
    os.mkdir(pics)
    subprocess.run([os.path.join(BUILD, "tests", "fakes", "make-testpics"), pics, "640x480-",
                    "640", "480", "4"], check=True)
    env = {"LD_PRELOAD": preload_v4l2(BUILD), "OKVM_FAKE_V4L2_PATH": "/dev/video-okvm-fake",
           "OKVM_FAKE_V4L2_DIR": pics, "OKVM_FAKE_V4L2_SCRIPT": "40:unplug=60000"}
    out = os.path.join(tmp, "u.mkv")
    rc, so, se = run(["--json", "record", "--video", "/dev/video-okvm-fake", "--video-mode",
                      "640x480@30", "-o", out, "--seconds", "20"], env=env)
    check(rc == 1 and "went away" in se, "unplug: exits 1 and says so (%d: %r)" % (rc, se))
    s = summary(so)
    info = video_info(out)
    check(info is not None and info["frames"] == s["frames"] and
          s["frames"] + s["missed"] == 39 and s["frames"] > 30 and s["end"] == "unplugged",
          "unplug: a complete file with the frames before it (%s of 39, %d missed)"
          % (info and info["frames"], s["missed"]))


def test_audio(tmp):
    out = os.path.join(tmp, "a.mkv")
    rc, so, se = run(["-d", "emu", "--json", "record", "--audio", "-o", out, "--seconds", "3"])
    check(rc == 0, "--audio: exits 0 (%d: %s)" % (rc, se.strip()))
    s = summary(so)
    j = probe(out)
    st = {x["codec_type"]: x for x in j["streams"]}
    a = st.get("audio", {})
    check(st["video"]["codec_name"] == "mjpeg" and a.get("codec_name") == "pcm_s16le" and
          a.get("sample_rate") == "48000" and a.get("channels") == 2,
          "--audio: ffprobe sees MJPEG video and 48 kHz stereo PCM audio")
    vp = [float(k["pts_time"]) for k in j["packets"] if k["stream_index"] == st["video"]["index"]]
    # a block's length from its bytes: 4 bytes a frame (Matroska keeps no block durations)
    ap = [(float(k["pts_time"]), int(k["size"]) / 4 / 48000) for k in j["packets"]
          if k["stream_index"] == a["index"]]
    check(abs(ap[0][0] - vp[0]) < 0.04, "--audio: the tracks start together (%.3f, %.3f)"
          % (ap[0][0], vp[0]))
    a_end = ap[-1][0] + ap[-1][1]
    check(abs(a_end - vp[-1]) < 0.04 and abs(s["audio_seconds"] - s["seconds"]) < 0.04,
          "--audio: and end within 40 ms (audio %.3f s, last frame %.3f s)" % (a_end, vp[-1]))
    check(all(b[0] >= a[0] + a[1] - 0.0011 for a, b in zip(ap, ap[1:])),
          "--audio: audio blocks follow each other without overlap")
    wav = os.path.join(tmp, "a.wav")
    subprocess.run(["ffmpeg", "-v", "error", "-i", out, "-map", "0:a", "-c", "copy", wav],
                   check=True)
    p = subprocess.run(["sox", wav, "-n", "remix", "1", "stat"], capture_output=True, text=True)
    freq = [float(x.split(":")[1]) for x in p.stderr.splitlines() if "Rough" in x]
    check(freq and abs(freq[0] - 440) < 10,
          "--audio: the track holds the virtual unit's 440 Hz tone (sox: %s)" % freq)


def test_usage(tmp):
    for args, what in (([], "no -o"),
                       (["-o", "x.mkv", "--seconds", "soon"], "bad --seconds"),
                       (["-o", "x.mkv", "--seconds", "0"], "--seconds 0"),
                       (["-o", "x.mkv", "--timelapse", "-1"], "negative --timelapse"),
                       (["-o", "x.mkv", "--max-size", "10"], "--max-size too small"),
                       (["-o", "x.mkv", "--max-size", "5X"], "--max-size bad suffix"),
                       (["-o", "x.mkv", "--bogus"], "unknown option"),
                       (["-o", "x.mkv", "extra"], "extra argument"),
                       (["-o", "-"], "-o -"),
                       (["-o", "x.mkv", "--seconds"], "missing value")):
        rc, so, se = run(["-d", "emu", "record"] + args)
        check(rc == 2 and se.startswith("okvm: ") and len(se.strip().splitlines()) == 1,
              "usage: %s exits 2 with one line (%d, %r)" % (what, rc, se))
    check(not os.path.exists("x.mkv"), "usage: no file written")
    rc, so, se = run(["-d", "emu", "record", "-o", os.path.join(tmp, "no", "dir", "x.mkv")])
    check(rc == 1 and "cannot create" in se and len(se.strip().splitlines()) == 1,
          "unwritable path: exits 1 with one line (%r)" % se)


def test_missing_library(tmp):
    """Without FFmpeg's libavformat (a machine without it: here /dev/null bound over it in a
    private mount namespace, root only) okvm record says which library and what to install."""
    lib = "/usr/lib/x86_64-linux-gnu/libavformat.so.59"
    if os.geteuid() != 0 or not shutil.which("unshare") or not os.path.exists(lib):
        print("skip: missing-library check (needs root, unshare and %s)" % lib)
        return
    out = os.path.join(tmp, "nolib.mkv")
    p = subprocess.run(["unshare", "-m", "sh", "-c",
                        'mount --bind /dev/null "$0" && exec "$@"', lib, OKVM, "-d", "emu",
                        "record", "-o", out, "--seconds", "1"],
                       capture_output=True, timeout=60)
    se = p.stderr.decode(errors="replace")
    if "mount:" in se:
        print("skip: missing-library check (no bind mount here: %s)" % se.strip())
        return
    check(p.returncode == 1 and "libavformat.so.59" in se and "install libavformat59" in se
          and "Can not access a needed shared library" not in se,
          "without libavformat: exit 1 naming the library and the package (%d, %r)"
          % (p.returncode, se))
    check(not os.path.exists(out), "without libavformat: no file written")


def main():
    if not shutil.which("ffprobe") or not shutil.which("ffmpeg"):
        print("skip: no ffprobe/ffmpeg")
        return 77
    tmp = tempfile.mkdtemp(prefix="okvm-rec-")
    old = os.getcwd()
    os.chdir(tmp)
    try:
        pics = os.path.join(tmp, "pics")
        os.mkdir(pics)
        subprocess.run([os.path.join(BUILD, "tests", "fakes", "make-testpics"), pics, "p",
                        "320", "240", "7"], check=True)
        test_usage(tmp)
        test_missing_library(tmp)
        test_frames(tmp, pics)
        test_timelapse(tmp, pics)
        test_signal(tmp, signal.SIGINT, "SIGINT")
        test_signal(tmp, signal.SIGTERM, "SIGTERM")
        test_max_size(tmp)
        test_unplug(tmp)
        if shutil.which("sox"):
            test_audio(tmp)
    finally:
        os.chdir(old)
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILS:
        print("%d failed" % len(FAILS))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
