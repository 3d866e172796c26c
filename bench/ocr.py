#!/usr/bin/env python3
"""OCR time (src/auto/ocr.c) on the virtual screen at 1080p: a page of console text is typed
(tests/integration/test_ocr.py's page), its frame saved, then `okvm ocr --json` reads the whole
frame and a 400x100 region of it N times each (N=5, or $N). Prints the median and the worst of
the "ms" field (decode + recognition, without loading tesseract), with tesseract's OpenMP
threads as they come and with OMP_THREAD_LIMIT=1. OKVM names the binary. The figures depend on
the machine's load (other builds and tests): say so when quoting them.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import test_ocr  # noqa: E402

OKVM = os.environ.get("OKVM", "build/okvm")
N = int(os.environ.get("N", "5"))


def shoot(path):
    fd, script = tempfile.mkstemp(suffix=".okvm")
    esc = test_ocr.PAGE.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    with os.fdopen(fd, "w") as f:
        f.write(f'type --rate max "{esc}"\nsleep 300\nscreenshot -o {path}\n')
    try:
        subprocess.run([OKVM, "-d", "emu"] + test_ocr.FAST + ["script", script], check=True,
                       capture_output=True, timeout=300)
    finally:
        os.unlink(script)


def times(jpeg, region, env):
    out = []
    args = [OKVM, "-d", "frames:" + jpeg, "ocr", "--json"] + (["--region", region] if region
                                                              else [])
    for _ in range(N):
        r = subprocess.run(args, capture_output=True, check=True, timeout=300,
                           env=dict(os.environ, **env))
        out.append(json.loads(r.stdout)["ms"])
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="okvm-bench-ocr-")
    jpeg = os.path.join(tmp, "page.jpg")
    shoot(jpeg)
    x, y = test_ocr.TERM[0], test_ocr.TERM[1]
    print(f"okvm ocr on the virtual screen, 1920x1080, {len(test_ocr.PAGE)} characters typed; "
          f"median / worst of {N}, ms")
    for label, env in (("default threads", {}), ("OMP_THREAD_LIMIT=1", {"OMP_THREAD_LIMIT": "1"})):
        for what, region in (("full 1920x1080 frame", None),
                             ("400x100 region", f"{x},{y},400,100")):
            t = times(jpeg, region, env)
            print(f"  {what:22} {label:20} {statistics.median(t):7.0f} {max(t):7.0f}")
    os.unlink(jpeg)
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
