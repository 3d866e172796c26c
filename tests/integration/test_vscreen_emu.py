#!/usr/bin/env python3
"""The virtual unit's screen through the real binary: type hello, take a screenshot, the image is
1920x1080 and differs from the one before; move the mouse, the picture changes again.

`okvm script` runs the lines against one in-process virtual unit, so its screen lives from the
first screenshot to the last."""
import os
import shutil
import subprocess
import sys
import tempfile

OKVM = os.environ.get("OKVM", "build/okvm")


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import jpeg_size  # noqa: E402


def main():
    tmp = tempfile.mkdtemp(prefix="okvm-vscreen-")
    try:
        shots = [os.path.join(tmp, n) for n in ("before.jpg", "after.jpg", "moved.jpg")]
        script = os.path.join(tmp, "s.okvm")
        with open(script, "w") as f:
            f.write("screenshot -o %s\ntype hello\nscreenshot -o %s\n"
                    "mouse move 0.9 0.9\nscreenshot -o %s\n" % tuple(shots))
        p = subprocess.run([OKVM, "-d", "emu", "script", script], capture_output=True,
                           text=True, timeout=60)
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
