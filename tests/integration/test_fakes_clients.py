#!/usr/bin/env python3
"""The LD_PRELOAD fakes (tests/fakes/) against programs other than okvm: the V4L2 fake must look
like uvcvideo to v4l2-ctl, ffmpeg's v4l2 input and ustreamer, and the hidraw fake like the hidraw
driver to a client that calls it as hidapi does (tests/fakes/fake-probe.c, which also passes the
requests as a sign-extended int). Each client that is not installed is skipped with a message
(scripts/install-deps --test installs them); the test exits 77 when any was skipped and nothing
failed. Exit 0 = pass, 1 = fail."""
# belief: register echo (the hidraw fake answers as an MS2109 that echoes)
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD = os.environ.get("OKVM_BUILD", "build")
FAKES = os.path.join(BUILD, "tests", "fakes")
DEV = "/dev/video-okvm-clients7"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import jpeg_size  # noqa: E402
from serve_util import free_port  # noqa: E402

FAILS = []
SKIPS = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        FAILS.append(what)


def have(prog):
    if shutil.which(prog):
        return True
    print("skip: %s is not installed (scripts/install-deps --test installs it)" % prog)
    SKIPS.append(prog)
    return False


def run(args, env, timeout=30):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run(args, capture_output=True, env=e, timeout=timeout)


def keyvals(out):
    return dict(line.split("=", 1) for line in out.decode().splitlines() if "=" in line)


def main():
    tmp = tempfile.mkdtemp(prefix="okvm-fakes-clients-")
    frames = os.path.join(tmp, "frames")
    os.mkdir(frames)
    for w, h in ((1920, 1080), (1280, 720)):
        subprocess.run([os.path.join(FAKES, "make-testpics"), frames, "%dx%d-" % (w, h),
                        str(w), str(h), "4"], check=True)
    pics = {n: open(os.path.join(frames, n), "rb").read() for n in os.listdir(frames)}
    pics720 = [v for n, v in pics.items() if n.startswith("1280x720-")]
    env = {"LD_PRELOAD": os.path.join(FAKES, "preload-v4l2.so"), "OKVM_FAKE_V4L2_PATH": DEV,
           "OKVM_FAKE_V4L2_DIR": frames, "OKVM_FAKE_V4L2_SCRIPT": ""}

    # -- the node and an int request, as any program sees them --
    r = run([os.path.join(FAKES, "fake-probe"), "v4l2", DEV], env)
    kv = keyvals(r.stdout)
    check(kv.get("access") == "0" and kv.get("stat") == "0" and kv.get("stat_chr") == "1"
          and kv.get("stat_major") == "81",
          "v4l2 node: access() and stat() see a character device, major 81 (%r)" % kv)
    check(kv.get("querycap_int") == "0" and kv.get("querycap_int_driver") == "uvcvideo",
          "VIDIOC_QUERYCAP passed as a sign-extended int is answered (%r)"
          % kv.get("querycap_int"))
    check(kv.get("g_input_int") == "0" and kv.get("input") == "0",
          "VIDIOC_G_INPUT: input 0 (%r)" % kv.get("g_input_int"))

    # -- v4l2-ctl --
    if have("v4l2-ctl"):
        r = run(["v4l2-ctl", "-d", DEV, "--all"], env)
        out = r.stdout.decode()
        check(r.returncode == 0, "v4l2-ctl --all exits 0 (%d: %s)"
              % (r.returncode, r.stderr.decode().strip()[:200]))
        check("uvcvideo" in out and "Video input : 0 (Camera 1: ok)" in out,
              "v4l2-ctl --all: driver uvcvideo, input 0 \"Camera 1\"")
        check("Width/Height      : 1920/1080" in out and "Motion-JPEG" in out,
              "v4l2-ctl --all: the current format, 1920x1080 MJPG")
        check("Frames per second: 30.000" in out, "v4l2-ctl --all: G_PARM, 30 fps")
        check("Bounds      : Left 0, Top 0, Width 1920, Height 1080" in out,
              "v4l2-ctl --all: CROPCAP bounds as uvcvideo's g_selection gives them")
        check("ENOTTY" not in out + r.stderr.decode() and
              "Inappropriate" not in out + r.stderr.decode(),
              "v4l2-ctl --all: no ioctl answered ENOTTY")
        r = run(["v4l2-ctl", "-d", DEV, "--list-formats-ext"], env)
        out = r.stdout.decode()
        check(r.returncode == 0 and "'MJPG' (Motion-JPEG, compressed)" in out
              and "'YUYV' (YUYV 4:2:2)" in out and "Size: Discrete 1280x720" in out
              and "(60.000 fps)" in out,
              "v4l2-ctl --list-formats-ext: MJPG and YUYV, sizes and intervals")
        r = run(["v4l2-ctl", "-d", DEV, "--list-ctrls"], env)
        check(r.returncode == 0 and r.stdout.strip() == b"",
              "v4l2-ctl --list-ctrls: no controls, no error (%d)" % r.returncode)
        r = run(["v4l2-ctl", "-d", DEV, "--get-standard"], env)
        check(r.returncode != 0 and b"Inappropriate ioctl" in r.stdout + r.stderr,
              "v4l2-ctl --get-standard: ENOTTY, as uvcvideo")
        raw = os.path.join(tmp, "v4l2ctl.mjpeg")
        for mode in ("", "--stream-poll"):
            r = run(["v4l2-ctl", "-d", DEV, "--set-fmt-video=width=1280,height=720,"
                     "pixelformat=MJPG", "--set-parm=60", "--stream-mmap", "--stream-count=6",
                     "--stream-to=" + raw] + ([mode] if mode else []), env)
            data = open(raw, "rb").read() if os.path.exists(raw) else b""
            n = sum(data.count(p) for p in pics720)
            check(r.returncode == 0 and n == 6,
                  "v4l2-ctl --stream-mmap %s: 6 frames, each a picture of the fake (%d, %d)"
                  % (mode or "(blocking DQBUF)", r.returncode, n))

    # -- ffmpeg --
    if have("ffmpeg") and have("ffprobe"):
        out = os.path.join(tmp, "out.mjpeg")
        r = run(["ffmpeg", "-hide_banner", "-nostdin", "-f", "v4l2", "-input_format", "mjpeg",
                 "-video_size", "1280x720", "-i", DEV, "-frames:v", "5", "-c:v", "copy", "-y",
                 out], env, timeout=60)
        check(r.returncode == 0, "ffmpeg -f v4l2 exits 0 (%d: %s)"
              % (r.returncode, r.stderr.decode().strip()[-300:]))
        data = open(out, "rb").read() if os.path.exists(out) else b""
        n = sum(data.count(p) for p in pics720)
        check(n == 5, "ffmpeg: 5 frames, the fake's JPEGs unchanged (%d)" % n)
        r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                            "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0",
                            out], capture_output=True)
        check(r.stdout.decode().strip() == "mjpeg,1280,720,5",
              "ffprobe: mjpeg, 1280x720, 5 frames (%r)" % r.stdout.decode().strip())

    # -- ustreamer --
    if have("ustreamer"):
        port = free_port()
        e = dict(os.environ)
        e.update(env)
        p = subprocess.Popen(["ustreamer", "--device", DEV, "--format", "MJPEG", "--resolution",
                              "1280x720", "--host", "127.0.0.1", "--port", str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e)
        snap = b""
        try:
            deadline = time.time() + 15
            while time.time() < deadline:
                try:
                    snap = urllib.request.urlopen("http://127.0.0.1:%d/snapshot" % port,
                                                  timeout=5).read()
                    if snap in pics720:
                        break
                except OSError:
                    pass
                time.sleep(0.3)
        finally:
            p.terminate()
            log = p.communicate(timeout=10)[0].decode()
        check(snap in pics720, "ustreamer /snapshot: a JPEG of the fake, byte for byte (%d bytes)"
              % len(snap))
        check(snap[:2] == b"\xff\xd8" and jpeg_size(snap) == (1280, 720),
              "ustreamer /snapshot: 1280x720 JPEG")
        check("Capturing started" in log and "Inappropriate" not in log,
              "ustreamer: captures, no ENOTTY on the way (%s)" % log.strip()[-300:])

    # -- hidraw, as hidapi uses it --
    hd = os.path.join(tmp, "hidraw")
    os.mkdir(hd)
    r = run([os.path.join(FAKES, "fake-probe"), "hidraw", "/dev/hidraw5"],
            {"LD_PRELOAD": os.path.join(FAKES, "libpreload-hidraw.so"),
             "OKVM_FAKE_HIDRAW_DIR": hd})
    kv = keyvals(r.stdout)
    check(kv.get("rdescsize") == "0" and kv.get("rdesc") == "0" and int(
        kv.get("rdesc_size", "0")) > 0 and kv.get("rdesc_bytes", "").startswith("0600ff"),
        "hidraw: HIDIOCGRDESCSIZE and HIDIOCGRDESC, a vendor-page descriptor (%r)"
        % kv.get("rdesc_bytes"))
    check("95080901b102" in kv.get("rdesc_bytes", ""),
          "hidraw: the descriptor has one 8-byte feature report (report id 0 + 8)")
    check(kv.get("rawinfo_int") == "0" and kv.get("bus") == "3" and kv.get("vid") == "534d"
          and kv.get("pid") == "2109",
          "hidraw: HIDIOCGRAWINFO (as an int request): BUS_USB 534d:2109 (%r)"
          % kv.get("rawinfo_int"))
    check(kv.get("rawname") == str(len("MACROSILICON Openterface") + 1)
          and kv.get("name") == "MACROSILICON Openterface",
          "hidraw: HIDIOCGRAWNAME(256) returns the length copied and the name")
    for k in ("feature", "feature_int"):
        check(kv.get(k + "_set") == "9" and kv.get(k + "_get") == "9"
              and kv.get(k + "_reply", "").startswith("00b5cbdc"),
              "hidraw: SET/GET_FEATURE(9)%s: 9 bytes, the register read echoed"
              % (" as int requests" if k.endswith("int") else ""))
    check(kv.get("write") == "EPIPE", "hidraw: write() of an output report fails (EPIPE)")

    shutil.rmtree(tmp, ignore_errors=True)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        return 1
    if SKIPS:
        print("skip: not installed: %s" % ", ".join(SKIPS))
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
