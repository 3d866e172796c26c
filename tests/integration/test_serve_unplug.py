#!/usr/bin/env python3
"""okvm serve with a capture device that is unplugged while streaming: the stream shows the
no-device picture instead of freezing, and real frames come back by themselves after the re-plug,
on the same connection. The device is the LD_PRELOAD fake of an MS2109 (tests/fakes)."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from okvmtest import Emulator, preload_v4l2  # noqa: E402
from serve_util import Mjpeg, Server, check, passed  # noqa: E402

OKVM = os.environ.get("OKVM", "build/okvm")
BUILD = os.environ.get("OKVM_BUILD", "build")
DEV = "/dev/video-okvm-fake"


tmp = tempfile.mkdtemp(prefix="okvm-unplug-")
frames = os.path.join(tmp, "frames")
os.mkdir(frames)
subprocess.run([os.path.join(BUILD, "tests", "fakes", "make-testpics"), frames, "1280x720-",
                "1280", "720", "4"], check=True)
real = {open(os.path.join(frames, n), "rb").read() for n in os.listdir(frames)}
env = {"LD_PRELOAD": preload_v4l2(BUILD), "OKVM_FAKE_V4L2_PATH": DEV, "OKVM_FAKE_V4L2_DIR": frames,
       # at frame 20 the device vanishes for 3 s, then it is back
       "OKVM_FAKE_V4L2_SCRIPT": "20:unplug=3000"}

with Emulator() as emu, Server("--serial", emu.link, "--video", DEV, "--video-mode",
                               "1280x720@30", backend=[], env=env) as s:
    m = Mjpeg(s.port)
    phases = []  # "real" / "placeholder", one entry per change
    end = time.monotonic() + 30
    while time.monotonic() < end:
        _, jpeg = m.part()
        kind = "real" if jpeg in real else "placeholder"
        if not phases or phases[-1] != kind:
            phases.append(kind)
        if phases[-3:] == ["real", "placeholder", "real"]:
            break
    m.close()
    check(phases[-3:] == ["real", "placeholder", "real"],
          f"the stream goes real -> no-device picture -> real on one connection ({phases})")
    check(s.proc.poll() is None, "the server kept running")
    passed("unplugged while streaming: the no-device picture, then the device again")
