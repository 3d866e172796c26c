#!/usr/bin/env python3
"""okvm screenshot, end to end: the file source, a missing device, the V4L2 fake
(tests/fakes/preload-v4l2.so) and the command's usage errors. Exit 0 = pass, 1 = fail."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

OKVM = os.environ.get("OKVM", "build/okvm")
BUILD = os.environ.get("OKVM_BUILD", "build")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import jpeg_size, preload_v4l2  # noqa: E402

FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def run(args, env=None, timeout=30):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([OKVM] + args, capture_output=True, env=e, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def png_size(data):
    """Width, height of a PNG after checking its signature and IHDR CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR"
    body = data[16:16 + length]
    crc = struct.unpack(">I", data[16 + length:20 + length])[0]
    assert zlib.crc32(kind + body) == crc, "bad IHDR crc"
    return struct.unpack(">II", body[:8])


def main():
    tmp = tempfile.mkdtemp(prefix="okvm-shot-")
    try:
        frames = os.path.join(tmp, "frames")
        os.mkdir(frames)
        subprocess.run([os.path.join(BUILD, "tests", "fakes", "make-testpics"), frames, "p",
                        "640", "480", "3"], check=True)
        subprocess.run([os.path.join(BUILD, "tests", "fakes", "make-testpics"), frames,
                        "1280x720-", "1280", "720", "4"], check=True)
        first = open(os.path.join(frames, "p00.jpg"), "rb").read()
        # frames:PATH keeps only files named *.jpg; use a folder holding just the p* pictures
        only_p = os.path.join(tmp, "p")
        os.mkdir(only_p)
        for n in ("p00.jpg", "p01.jpg", "p02.jpg"):
            shutil.copy(os.path.join(frames, n), only_p)

        out = os.path.join(tmp, "a.jpg")
        rc, so, se = run(["-d", "frames:" + only_p + "@20", "screenshot", "-o", out])
        check(rc == 0, "frames: screenshot exits 0 (%d: %s)" % (rc, se.strip()))
        check(os.path.exists(out) and open(out, "rb").read() == first,
              "frames: the JPEG is the first picture, byte for byte")
        check(out.encode() in so, "frames: prints the file name")

        rc, so, se = run(["-d", "frames:" + only_p, "screenshot", "-o", "-"])
        check(rc == 0 and so == first, "stdout: '-o -' writes the JPEG bytes to stdout")

        png = os.path.join(tmp, "a.png")
        rc, so, se = run(["screenshot", "-d", "frames:" + only_p, "-o", png])
        check(rc == 0, "png: exits 0")
        check(os.path.exists(png) and png_size(open(png, "rb").read()) == (640, 480),
              "png: a valid 640x480 PNG")

        rc, so, se = run(["screenshot", "--video", "/dev/video-okvm-none", "--timeout", "1500",
                          "-o", os.path.join(tmp, "none.jpg")])
        check(rc == 1, "no device: exits 1")
        check("no video device" in se and len(se.strip().splitlines()) == 1,
              "no device: one clear line (%r)" % se)
        check(not os.path.exists(os.path.join(tmp, "none.jpg")), "no device: no file written")

        ph = os.path.join(tmp, "ph.jpg")
        rc, so, se = run(["screenshot", "--video", "/dev/video-okvm-none", "--timeout", "1500",
                          "--allow-no-signal", "-o", ph])
        check(rc == 0 and os.path.exists(ph), "--allow-no-signal: saves the placeholder")
        check(os.path.exists(ph) and jpeg_size(open(ph, "rb").read()) == (1920, 1080),
              "--allow-no-signal: the placeholder is 1920x1080")

        for args, what in ((["--bogus"], "unknown option"),
                           (["--timeout", "soon"], "bad timeout"),
                           (["--video-mode", "big"], "bad mode"),
                           (["extra"], "extra argument"),
                           (["-d", "frames:" + only_p + "@fast"], "bad fps")):
            rc, so, se = run(["screenshot"] + args)
            check(rc == 2 and se.startswith("okvm: ") and len(se.strip().splitlines()) == 1,
                  "usage: %s exits 2 with one line (%d, %r)" % (what, rc, se))

        # the V4L2 source against the LD_PRELOAD fake of an MS2109
        env = {"LD_PRELOAD": preload_v4l2(BUILD), "OKVM_FAKE_V4L2_PATH": "/dev/video-okvm-fake",
               "OKVM_FAKE_V4L2_DIR": frames, "OKVM_FAKE_V4L2_SCRIPT": ""}
        v = os.path.join(tmp, "v.jpg")
        rc, so, se = run(["screenshot", "--video", "/dev/video-okvm-fake", "--video-mode",
                          "1280x720@60", "-o", v], env=env)
        check(rc == 0, "v4l2 fake: exits 0 (%d: %s)" % (rc, se.strip()))
        pics = [open(os.path.join(frames, "1280x720-%02d.jpg" % i), "rb").read()
                for i in range(4)]
        check(os.path.exists(v) and open(v, "rb").read() in pics,
              "v4l2 fake: the device's JPEG, unchanged")

        # -d N / -d PORTCHAIN: the discovered unit's own capture node (here the recorded
        # Mini-KVM tree's /dev/video0, answered by the fake)
        uenv = dict(env, OKVM_FAKE_V4L2_PATH="/dev/video0", OKVM_SYSFS_ROOT=os.path.join(
            os.environ.get("OKVM_SRC", "."), "tests", "fixtures", "sysfs", "mini-kvm-v1-9"))
        for spec in ("1", "3-3"):
            u = os.path.join(tmp, "u%s.jpg" % spec)
            rc, so, se = run(["-d", spec, "--video-mode", "1280x720@60", "screenshot", "-o", u],
                             env=uenv)
            check(rc == 0 and os.path.exists(u) and open(u, "rb").read() in pics,
                  "-d %s screenshot: the unit's capture node, the device's JPEG (%d: %s)"
                  % (spec, rc, se.strip()))
        rc, so, se = run(["-d", "9", "screenshot", "-o", os.path.join(tmp, "n.jpg")], env=uenv)
        check(rc == 1 and "no such unit" in se and len(se.strip().splitlines()) == 1,
              "-d 9 screenshot: no such unit, one line (%d: %r)" % (rc, se))

        env["OKVM_FAKE_V4L2_SCRIPT"] = "1:nosignal=10000"
        rc, so, se = run(["screenshot", "--video", "/dev/video-okvm-fake", "--video-mode",
                          "1280x720", "--timeout", "2500", "-o", v + "2"], env=env)
        check(rc == 1 and "no video signal" in se, "v4l2 fake, no signal: exits 1 and says so")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILS:
        print("%d failed" % len(FAILS))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
