"""H.264 from a V4L2 memory-to-memory encoder ([serve] h264_encoder, docs/serve.md "H.264"),
against the LD_PRELOAD fake of a Raspberry Pi's bcm2835-codec-encode (tests/fakes/
preload-v4l2m2m.c, which encodes with openh264 so that ffmpeg can judge the stream): `auto`
finds it, okvm configures it as a Pi needs (the fake's JSON-lines log), GET /stream.h264
decodes, a second viewer gets an IDR of its own, a device that vanishes or stalls mid-stream
falls back to openh264 without dropping the viewer, and an explicit encoder that is not there
stops the server at start. No real M2M encoder was tested."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from h264_util import H264, nal_types, probe, whole_units  # noqa: F401
from serve_util import OKVM, OKVM_REC, SRC, Server, WebSocket, check, fail, metrics

FPS = 25
DEV = "/dev/video11"
BUILD = os.environ.get("OKVM_BUILD", "build")
FAKE = os.path.join(BUILD, "tests", "fakes", "preload-v4l2m2m.so")
if not shutil.which("ffprobe") or not shutil.which("ffmpeg"):
    print("SKIP: ffprobe/ffmpeg not installed (scripts/install-deps --test installs ffmpeg)")
    sys.exit(77)
TMP = tempfile.mkdtemp(prefix="okvm-h264-v4l2-")


def preload():
    """The fake, after the ASan runtime when okvm is sanitized (STYLE.md, preload facts)."""
    ldd = subprocess.run(["ldd", OKVM_REC], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        asan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                              text=True).stdout.strip()
        return asan + ":" + FAKE
    return FAKE


def conf(value):
    path = os.path.join(TMP, f"okvm-{abs(hash(value))}.conf")
    with open(path, "w") as f:
        f.write(f"[serve]\nh264_encoder = {value}\n")
    os.chmod(path, 0o600)
    return path


def fake_env(name, script="", extra=None):
    log = os.path.join(TMP, name + ".jsonl")
    if os.path.exists(log):
        os.unlink(log)
    e = {"LD_PRELOAD": preload(), "OKVM_FAKE_M2M_PATH": DEV, "OKVM_FAKE_M2M_LOG": log,
         "OKVM_FAKE_M2M_SCRIPT": script}
    e.update(extra or {})
    return e, log


def fake_log(path):
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]


def pictures(data, w, h, jpeg=False):
    """The decoded pictures of an H.264 stream (or of one JPEG file) as (Y, U, V) planes."""
    if jpeg:
        path = data
    else:
        path = os.path.join(TMP, "pictures.h264")
        with open(path, "wb") as f:
            f.write(whole_units(data))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-vf", f"scale={w}:{h}", "-f",
                          "rawvideo", "-pix_fmt", "yuv420p", "-"], capture_output=True).stdout
    n, c = w * h, (w // 2) * (h // 2)
    return [(raw[k:k + n], raw[k + n:k + n + c], raw[k + n + c:k + n + 2 * c])
            for k in range(0, len(raw) - (n + 2 * c) + 1, n + 2 * c)]


FIXTURES = sorted(os.path.join(SRC, "tests", "fixtures", "serve-frames", f)
                  for f in os.listdir(os.path.join(SRC, "tests", "fixtures", "serve-frames")))


def mean(p):
    return sum(p) / len(p)


def looks_right(d, w, h):
    """Every picture's mean chroma is near one of the source frames' (they differ in colour:
    U 82-127, V 133-141; swapped U and V or gray are 40 and more away), and the first and
    last pictures' luma is near one frame's: a mean difference of 7-11 per pixel at these
    bitrates and scales, 41 when rows are copied at the wrong stride (sheared gradients)."""
    refs = [pictures(f, w, h, jpeg=True)[0] for f in FIXTURES]
    got = pictures(d, w, h)
    if not got:
        return False, "no pictures"
    worst, worst_y = 0, 0
    for k, (y, u, v) in enumerate(got):
        dist, ref = min((((mean(u) - mean(r[1])) ** 2 + (mean(v) - mean(r[2])) ** 2) ** 0.5, r)
                        for r in refs)
        worst = max(worst, dist)
        if k < 3 or k >= len(got) - 3:
            worst_y = max(worst_y, min(sum(abs(a - b) for a, b in zip(y, r[0])) / len(y)
                                       for r in refs))
    return worst < 12 and worst_y < 20, \
        f"{len(got)} pictures, chroma at most {worst:.1f} away, luma {worst_y:.1f} per pixel"


def encoders(s):
    return {k: v for k, v in metrics(s).items() if k.startswith("okvm_serve_h264_encoders")}


def warn_lines(s, word):
    return [l for l in s.errors().splitlines() if word in l and "H.264 encoder" in l]


# -- auto finds the Pi's encoder; what okvm asked of it ------------------------------------
env, log = fake_env("auto")
with Server("--config", conf("auto"), "-v", fps=FPS, env=env) as s:
    a = H264(s.port)
    check(a.status == 200, "GET /stream.h264 answers 200")
    late = {}

    def late_viewer():
        time.sleep(1.2)
        b = H264(s.port)
        late["d"] = b.read_for(1.5)
        b.close()

    th = threading.Thread(target=late_viewer)
    th.start()
    d = a.read_for(3.2)
    th.join()
    enc = encoders(s)
    a.close()
    check(enc == {f'okvm_serve_h264_encoders{{name="v4l2:{DEV}"}}': 1.0},
          f"/metrics names the encoder in use: v4l2:{DEV} ({enc})")
    check(f"H.264 encoder v4l2:{DEV} 640x360" in s.errors(), "-v logs which encoder runs")
    types = nal_types(d)
    check(types[:3] == [7, 8, 5], f"the stream starts with SPS, PPS and an IDR slice ({types[:3]})")
    st, errors = probe(d)
    print("ffprobe:", st)
    check(st.get("codec_name") == "h264" and st.get("profile") == "Constrained Baseline",
          "ffprobe reads constrained-baseline H.264")
    check((st["width"], st["height"]) == (640, 360),
          "at the source's size (640x360: the driver's 368 rows cropped back)")
    n = int(st["nb_read_frames"])
    check(n >= FPS * 3 * 0.7, f"every source frame is encoded ({n} pictures in 3.2 s at {FPS} fps)")
    check(errors == "", f"ffmpeg decodes it without an error ({errors[:200]})")
    ok, why = looks_right(d, 640, 360)
    check(ok, f"as the source frames look ({why})")

    ops = fake_log(log)
    pics = [o for o in ops if o["op"] == "picture"]
    check(len(pics) >= n - 2, f"the pictures came from the fake encoder ({len(pics)} encoded there)")
    cap = [o for o in ops if o["op"] == "s_fmt" and o["queue"] == "capture"]
    out = [o for o in ops if o["op"] == "s_fmt" and o["queue"] == "output"]
    check(cap and cap[0]["fourcc"] == "H264", "CAPTURE is set to H264")
    check(out and out[0]["fourcc"] == "YU12" and (out[0]["asked_width"],
                                                  out[0]["asked_height"]) == (640, 360),
          f"OUTPUT is set to YU12 640x360 ({out[:1]})")
    check(out[0]["bytesperline"] % 32 == 0 and out[0]["height"] % 16 == 0,
          "and okvm takes the driver's alignment (bytesperline of 32, height of 16)")
    check(ops.index(cap[0]) < ops.index(out[0]), "CAPTURE's format before OUTPUT's (dev-encoder.rst)")
    sel = [o for o in ops if o["op"] == "s_selection"]
    check(sel and (sel[0]["width"], sel[0]["height"]) == (640, 360), "the crop is the picture")
    parm = [o for o in ops if o["op"] == "s_parm"]
    check(parm and parm[0]["fps"] > 0, f"the frame rate is set on OUTPUT ({parm[:1]})")
    ctrl = {o["name"]: o["value"] for o in ops if o["op"] == "ctrl"}
    print("controls:", ctrl)
    check(ctrl.get("profile") == 1, "profile: constrained baseline (V4L2 menu 1: no B-frames)")
    check(ctrl.get("bitrate", 0) >= 100000, "a bitrate is set")
    check(ctrl.get("i_period", 0) > 0, "an IDR period is set")
    check(ctrl.get("repeat_seq_header") == 1, "REPEAT_SEQ_HEADER: SPS + PPS with every IDR")
    check("level" in ctrl, "a level is set")
    forced = [i for i, o in enumerate(ops) if o["op"] == "force_key_frame"]
    check(len(forced) >= 2, f"the second viewer made okvm force a key frame ({len(forced)} forced)")
    check(any(o["op"] == "picture" and o["idr"] for o in ops[forced[1]:]),
          "and the encoder sent an IDR after it")
    bd = late["d"]
    check(nal_types(bd)[:3] == [7, 8, 5], "the later viewer starts at SPS, PPS, IDR of its own")
    st_b, err_b = probe(bd)
    check(err_b == "" and int(st_b["nb_read_frames"]) >= FPS, "and decodes from its first byte")

    # The page's way: {"type":"video"} over the WebSocket, from the same kind of encoder.
    ws = WebSocket(s.port)
    ws.recv_until(lambda m: m["type"] == "state")
    ws.send({"type": "video", "codec": "h264"})
    texts, units, t0 = [], [], time.monotonic()
    while time.monotonic() - t0 < 1.5:
        op, data = ws.recv_frame()
        if op == 0x1:
            texts.append(json.loads(data))
        elif op == 0x2:
            units.append(data)
    ws.close()
    vid = [t for t in texts if t["type"] == "video"]
    check(vid and vid[0]["codec"].startswith("avc1.42") and units and units[0][1] == 1 and
          nal_types(units[0][16:])[:3] == [7, 8, 5],
          f"over the WebSocket: the codec message, then an IDR with SPS + PPS ({vid[:1]})")
    st_w, err_w = probe(b"".join(u[16:] for u in units) + b"\x00\x00\x00\x01\x09")
    check(err_w == "" and int(st_w["nb_read_frames"]) >= FPS,
          f"and its units decode ({st_w.get('nb_read_frames')} pictures)")
ops = fake_log(log)
check(ops[-1]["op"] == "close", "the encoder is closed when the last viewer leaves")

# -- an encoder that takes NV12 only (okvm interleaves the chroma), and a single-planar one
# (V4L2_CAP_VIDEO_M2M, as i.MX's coda); 560x314 (?width=560) has rows of 576 bytes (32-aligned);
# keep-output: a driver that gives a picture's buffer back only with the next picture
for what, extra, fourcc, query, w, h in (
        ("NV12 only", {"OKVM_FAKE_M2M_OUTPUT": "NV12"}, "NV12", "", 640, 360),
        ("single-planar", {"OKVM_FAKE_M2M_PLANES": "single"}, "YU12", "", 640, 360),
        ("560x314", {}, "YU12", "?width=560", 560, 314),
        ("560x314 NV12", {"OKVM_FAKE_M2M_OUTPUT": "NV12"}, "NV12", "?width=560", 560, 314),
        ("keep-output", {"OKVM_FAKE_M2M_SCRIPT": "keep-output"}, "YU12", "", 640, 360)):
    env, log = fake_env("nv12", extra=extra)
    with Server("--config", conf("auto"), fps=FPS, env=env) as s:
        a = H264(s.port, query)
        d = a.read_for(1.5)
        enc = encoders(s)
        a.close()
        st, errors = probe(d)
        out = [o for o in fake_log(log) if o["op"] == "s_fmt" and o["queue"] == "output"]
        check(out and out[0]["fourcc"] == fourcc and f'v4l2:{DEV}' in str(enc),
              f"{what}: the encoder gets {fourcc} ({out[:1]}, {enc})")
        check(out[0]["bytesperline"] == (w + 31) // 32 * 32 and out[0]["height"] == (h + 15) // 16 * 16,
              f"{what}: in the driver's rounding ({out[0]['bytesperline']} bytes a row, "
              f"{out[0]['height']} rows)")
        check(errors == "" and (st["width"], st["height"]) == (w, h),
              f"{what}: the stream decodes at {w}x{h} ({st}, {errors[:100]})")
        ok, why = looks_right(d, w, h)
        check(ok, f"{what}: as the source frames look ({why})")


# -- beside the capture fake (tests/fakes/preload-v4l2.c) in the same process ---------------
pics = os.path.join(TMP, "v4l2")
os.mkdir(pics)
subprocess.run([os.path.join(BUILD, "tests", "fakes", "make-testpics"), pics, "640x480-", "640",
                "480", "4"], check=True)
env, log = fake_env("both")
capture = os.path.join(BUILD, "tests", "fakes", "preload-v4l2.so")
env.update({"LD_PRELOAD": env["LD_PRELOAD"].replace(FAKE, capture + ":" + FAKE),
            "OKVM_FAKE_V4L2_PATH": "/dev/video-okvm-fake", "OKVM_FAKE_V4L2_DIR": pics})
with Server("--config", conf("auto"), "-d", "emu", "--video", "/dev/video-okvm-fake",
            "--video-mode", "640x480@30", backend=[], env=env) as s:
    a = H264(s.port)
    d = a.read_for(1.5)
    enc = encoders(s)
    a.close()
    st, errors = probe(d)
    check(enc == {f'okvm_serve_h264_encoders{{name="v4l2:{DEV}"}}': 1.0} and errors == "" and
          (st["width"], st["height"]) == (640, 480),
          f"with the MS2109's capture fake preloaded too, {DEV} encodes its 640x480 ({enc}, "
          f"{st}, {errors[:100]})")


# -- mid-stream failures fall back to openh264; the viewer stays ---------------------------
def fallback(script, word):
    env, log = fake_env("fallback", script)
    with Server("--config", conf("auto"), fps=FPS, env=env) as s:
        a = H264(s.port)
        d = a.read_for(3.5)
        enc = encoders(s)
        a.close()
        lines = warn_lines(s, DEV)
        check(len(lines) == 1 and word in lines[0] and "openh264" in lines[0],
              f"{script}: one line names {DEV} and why ({lines})")
        check(enc == {'okvm_serve_h264_encoders{name="openh264"}': 1.0},
              f"{script}: /metrics now says openh264 ({enc})")
        hw = [o for o in fake_log(log) if o["op"] == "picture"]
        types = nal_types(d)
        sps = [i for i, t in enumerate(types) if t == 7]
        check(len(sps) >= 2 and types[sps[1] + 2] == 5,
              f"{script}: after the device's pictures a new SPS, PPS and IDR follow")
        st, errors = probe(d)
        n = int(st.get("nb_read_frames", 0))
        check(errors == "" and n > len(hw) + FPS,
              f"{script}: the same viewer decodes on, without an error ({len(hw)} pictures from "
              f"the device, {n} in all; {errors[:200]})")


fallback("enodev=10", "vanished")
fallback("stall=10", "no picture back within 1000 ms")

# -- an explicit device that cannot be opened: one line, openh264 ---------------------------
env, log = fake_env("busy", "fail-open")
with Server("--config", conf(DEV), fps=FPS, env=env) as s:
    a = H264(s.port)
    d = a.read_for(1.5)
    a.close()
    lines = warn_lines(s, DEV)
    check(len(lines) == 1 and "refused" in lines[0] and "busy" in lines[0] and
          "openh264" in lines[0], f"h264_encoder = {DEV}, busy: one line says so ({lines})")
    st, errors = probe(d)
    check(errors == "" and int(st["nb_read_frames"]) >= FPS, "and openh264 serves the stream")

env, log = fake_env("fmt", "fail-fmt")
with Server("--config", conf("auto"), fps=FPS, env=env) as s:
    a = H264(s.port)
    d = a.read_for(1.5)
    a.close()
    lines = warn_lines(s, DEV)
    check(len(lines) == 1 and "refused" in lines[0] and "S_FMT" in lines[0],
          f"a format the device refuses: one line ({lines})")
    check(probe(d)[1] == "", "and openh264 serves the stream")

# -- an explicit encoder that is not there: refused at start --------------------------------
for value, word in (("v4l2", "no /dev/video0-63"), ("/dev/video-okvm-none", "video-okvm-none")):
    s = Server("--config", conf(value), fps=FPS, expect_fail=True)
    rc = s.proc.wait(20)
    s.stdout = s.proc.stdout.read()
    err = s.errors().strip().splitlines()
    check(rc == 1 and len(err) == 1 and word in err[0] and "h264_encoder" in err[0] and
          b"serving on" not in s.stdout,
          f"h264_encoder = {value} without such a device: exit 1 and one line ({rc}, {err})")
    s.stderr.close()

r = subprocess.run([OKVM, "serve", "--config", conf("x264"), "-d", "emu"], capture_output=True,
                   text=True, timeout=20)
check(r.returncode == 1 and "h264_encoder" in r.stderr and "auto, openh264, v4l2" in r.stderr,
      f"h264_encoder = x264 is refused naming the choices ({r.returncode}, {r.stderr.strip()})")
shutil.rmtree(TMP, ignore_errors=True)
