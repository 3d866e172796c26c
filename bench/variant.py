#!/usr/bin/env python3
"""Reduced MJPEG streams (/stream?fps=&q=&width=, docs/api.md) on a 1080p source at 30 fps:
per setting, the frames per second and bytes per second one client gets, the server's CPU while
that setting runs (one encoder), the cost of each further client of the same setting, and the
re-encode time per frame (/metrics). Prints figures; asserts nothing.
Env: OKVM (binary), OKVM_BUILD (build dir, for make_frames), SECONDS_PER_RUN (5)."""
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from serve_util import Mjpeg, free_port  # noqa: E402

OKVM = os.environ.get("OKVM", "build/okvm")
BUILD = os.environ.get("OKVM_BUILD", "build")
SECS = float(os.environ.get("SECONDS_PER_RUN", "5"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def metric(port, name):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return float("nan")


def run(port, pid, query, clients):
    ms = [Mjpeg(port, "/stream" + query) for _ in range(clients)]
    for m in ms:
        m.part()
    got = [[0, 0] for _ in ms]

    def read(i, m):
        t0 = time.monotonic()
        while time.monotonic() - t0 < SECS:
            _, j = m.part()
            got[i][0] += 1
            got[i][1] += len(j)

    c0, t0 = cpu_s(pid), time.monotonic()
    ths = [threading.Thread(target=read, args=(i, m)) for i, m in enumerate(ms)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    cpu = 100 * (cpu_s(pid) - c0) / (time.monotonic() - t0)
    enc = metric(port, "okvm_serve_variant_encode_seconds_max") * 1000
    for m in ms:
        m.close()
    time.sleep(0.3)
    return got[0][0] / SECS, got[0][1] / SECS, cpu, enc


def main():
    tmp = tempfile.mkdtemp(prefix="okvm-bench-")
    subprocess.run([os.path.join(BUILD, "bench", "make_frames"), tmp, "1920", "1080", "8", "80"],
                   check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    p = subprocess.Popen([OKVM, "serve", "--listen", f"127.0.0.1:{port}", "-d",
                          f"frames:{tmp}@30"], stdout=subprocess.PIPE)
    p.stdout.readline()
    print(f"1080p source at 30 fps (make_frames, quality 80); {SECS:.0f} s per row; the machine"
          f" is shared, so CPU figures are rough")
    print(f"{'setting':<26} {'clients':>7} {'fps':>6} {'MB/s':>7} {'cpu %':>6} {'encode ms':>9}")
    for q in ("", "?fps=10", "?q=50", "?width=960", "?width=960&q=60&fps=15", "?width=480&q=50"):
        for n in (1, 10):
            fps, bps, cpu, enc = run(port, p.pid, q, n)
            print(f"{q or '(device frames)':<26} {n:>7} {fps:>6.1f} {bps / 1e6:>7.2f} {cpu:>6.1f}"
                  f" {enc if q and ('q=' in q or 'width' in q) else float('nan'):>9.1f}")
    p.terminate()
    p.wait()


main()
