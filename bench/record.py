#!/usr/bin/env python3
"""okvm record's budget (issue 15): CPU of a core while recording 1080p30 MJPEG, < 3%.

The source is `-d frames:DIR@30` over 1080p JPEGs from bench/make_frames (about 180 KB each,
5.4 MB/s into the file), so the figure includes the capture thread handing out frames as the
device's would; the file goes to a temporary folder (tmpfs or disk, as TMPDIR is). CPU is the
okvm process's user + system time over its wall time, from wait4(). Prints figures; asserts
nothing. Other jobs on the machine change the numbers.

    OKVM=build/okvm OKVM_BUILD=build python3 bench/record.py [SECONDS]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

OKVM = os.environ.get("OKVM", "build/okvm")
BUILD = os.environ.get("OKVM_BUILD", os.path.dirname(OKVM) or "build")
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0


def main():
    tmp = tempfile.mkdtemp(prefix="okvm-bench-rec-")
    try:
        frames = os.path.join(tmp, "frames")
        os.mkdir(frames)
        subprocess.run([os.path.join(BUILD, "bench", "make_frames"), frames, "1920", "1080",
                        "30"], check=True)
        out = os.path.join(tmp, "r.mkv")
        t0 = time.monotonic()
        p = subprocess.Popen([OKVM, "-d", "frames:%s@30" % frames, "--json", "record", "-o",
                              out, "--seconds", str(SECONDS)], stdout=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        s = json.loads(p.stdout.read().decode().strip().splitlines()[-1])
        cpu = ru.ru_utime + ru.ru_stime
        print("record 1080p30 for %.0f s: %d frames, %d missed, %.1f MB" %
              (SECONDS, s["frames"], s["missed"], os.path.getsize(out) / 1e6))
        print("  CPU %.2f%% of a core (user %.2f s, system %.2f s over %.2f s wall; "
              "budget < 3%%)" % (100 * cpu / wall, ru.ru_utime, ru.ru_stime, wall))
        print("  %.0f us of CPU per frame; max RSS %.1f MB" %
              (1e6 * cpu / max(1, s["frames"]), ru.ru_maxrss / 1024))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
