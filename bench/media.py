#!/usr/bin/env python3
"""okvm media write's speed to a file standing for the USB stick (-d emu --emu-media FILE): a
random-bytes image (incompressible, the worst case for the decoders) and a half-zero one (as a
disk image with free space is), raw and as .gz, .xz and .zst. For each: the time of the whole
command (check pass for compressed images, write + fsync, read-back verify) and the write phase
alone as okvm prints it. The file lives in $TMPDIR (tmpfs or disk: say which with the figures).
Prints figures; asserts nothing. Env: OKVM (binary), SIZE_MB (64)."""
import gzip
import lzma
import os
import re
import shutil
import subprocess
import tempfile
import time

OKVM = os.environ.get("OKVM", "build/okvm")
SIZE = int(os.environ.get("SIZE_MB", "64")) * 1000 * 1000


def images(d):
    rnd = os.urandom(SIZE)
    half = os.urandom(SIZE // 2) + bytes(SIZE - SIZE // 2)
    for name, data in (("random", rnd), ("half-zero", half)):
        raw = os.path.join(d, name + ".img")
        with open(raw, "wb") as f:
            f.write(data)
        out = {"raw": raw}
        with open(raw + ".gz", "wb") as f:
            f.write(gzip.compress(data, compresslevel=6))
        out["gz"] = raw + ".gz"
        with open(raw + ".xz", "wb") as f:
            f.write(lzma.compress(data, preset=6))
        out["xz"] = raw + ".xz"
        if shutil.which("zstd"):
            subprocess.run(["zstd", "-q", "-3", "-f", raw, "-o", raw + ".zst"], check=True)
            out["zst"] = raw + ".zst"
        yield name, out


def main():
    with tempfile.TemporaryDirectory(prefix="okvm-bench-media-") as d:
        stick = os.path.join(d, "stick")
        print(f"okvm media write, {SIZE / 1e6:.0f} MB image to a file in {d}")
        print(f"{'image':<10} {'kind':<4} {'packed MB':>9} {'write MB/s':>10} {'total s':>8} "
              f"{'overall MB/s':>12}")
        for name, paths in images(d):
            for kind, path in paths.items():
                with open(stick, "wb") as f:
                    f.truncate(SIZE + 1024 * 1024)
                t0 = time.monotonic()
                r = subprocess.run([OKVM, "-d", "emu", "--emu-media", stick, "media", "write",
                                    path], capture_output=True)
                total = time.monotonic() - t0
                if r.returncode:
                    print(f"{name} {kind}: failed: {r.stderr.decode().strip()}")
                    continue
                m = re.search(rb"\(([0-9.]+) MB/s\)", r.stdout)
                print(f"{name:<10} {kind:<4} {os.path.getsize(path) / 1e6:9.1f} "
                      f"{float(m.group(1)) if m else 0:10.1f} {total:8.2f} "
                      f"{SIZE / 1e6 / total:12.1f}")


if __name__ == "__main__":
    main()
