#!/usr/bin/env python3
"""The virtual unit's screen through the real binary: type hello, take a screenshot, the image is
1920x1080 and differs from the one before; move the mouse, the picture changes again.

It needs `okvm -d emu` to give screenshot a video source and a `script` command that runs
several commands against one virtual unit (ARCHITECTURE 4.1). Until the integrator has wired
both, the test skips (exit 77); the screen itself is tested in tests/unit/test_vscreen.c."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

OKVM = os.environ.get("OKVM", "build/okvm")
SKIP = 77


def jpeg_size(data):
    i = 2
    while i + 9 < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None


def main():
    helptext = subprocess.run([OKVM, "--help"], capture_output=True, text=True).stdout
    commands = [line.split()[0] for line in helptext.splitlines() if line.startswith("  ")
                and not line.strip().startswith("-")]
    if "type" not in commands or "script" not in commands:
        print("skip: `okvm type` / `okvm script` are not in this build yet")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="okvm-vscreen-")
    try:
        shots = [os.path.join(tmp, n) for n in ("before.jpg", "after.jpg", "moved.jpg")]
        script = os.path.join(tmp, "s.okvm")
        with open(script, "w") as f:
            f.write("screenshot -o %s\ntype hello\nscreenshot -o %s\n"
                    "mouse move 0.9 0.9\nscreenshot -o %s\n" % tuple(shots))
        p = subprocess.run([OKVM, "-d", "emu", "script", script], capture_output=True,
                           text=True, timeout=60)
        if p.returncode != 0 and ("no video source" in p.stderr or "unknown" in p.stderr):
            print("skip: -d emu has no video yet: " + p.stderr.strip())
            return SKIP
        if p.returncode != 0:
            print("FAIL: okvm -d emu script: %d %s" % (p.returncode, p.stderr))
            return 1
        data = [open(s, "rb").read() for s in shots]
        ok = all(jpeg_size(d) == (1920, 1080) for d in data)
        ok &= data[0] != data[1] and data[1] != data[2]
        print("ok" if ok else "FAIL: screenshots are not 1920x1080 or did not change")
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
