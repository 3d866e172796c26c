#!/usr/bin/env python3
"""H.264 against MJPEG on the virtual unit's 1080p desktop while text is typed on it (okvm serve
-d emu): bytes per second a viewer gets, the server's CPU (% of one core) with 1, 2 and 10 H.264
viewers (one shared encoder), and the encode time per picture. Prints figures; asserts nothing.
Env: OKVM (binary), SECONDS_PER_RUN (6)."""
import http.client
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from serve_util import free_port  # noqa: E402

OKVM = os.environ.get("OKVM", "build/okvm")
SECS = float(os.environ.get("SECONDS_PER_RUN", "6"))
TICK = os.sysconf("SC_CLK_TCK")
TEXT = "The quick brown fox jumps over the lazy dog 0123456789. " * 4 + "\n"


def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return float("nan")


def typist(port, stop):
    while not stop.is_set():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", "/api/type?cps=40", body=TEXT.encode())
        c.getresponse().read()
        while not stop.is_set() and metric(port, "okvm_typing_queue") > 0:
            time.sleep(0.2)


def reader(port, path, secs, out, i):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    s.settimeout(0.5)
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < secs:
        try:
            d = s.recv(262144)
        except socket.timeout:
            continue
        if not d:
            break
        n += len(d)
    s.close()
    out[i] = n / secs


def run(port, pid, path, viewers):
    out = [0] * viewers
    ths = [threading.Thread(target=reader, args=(port, path, SECS, out, i))
           for i in range(viewers)]
    time.sleep(0.5)
    c0, t0 = cpu_s(pid), time.monotonic()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    cpu = 100 * (cpu_s(pid) - c0) / (time.monotonic() - t0)
    enc = metric(port, "okvm_serve_variant_encode_seconds_max") * 1000
    time.sleep(0.5)
    return out[0], cpu, enc


def main():
    port = free_port()
    p = subprocess.Popen([OKVM, "serve", "--listen", f"127.0.0.1:{port}", "-d", "emu"],
                         stdout=subprocess.PIPE)
    p.stdout.readline()
    stop = threading.Event()
    t = threading.Thread(target=typist, args=(port, stop), daemon=True)
    t.start()
    time.sleep(1)
    print(f"okvm serve -d emu (1920x1080 virtual desktop), 40 characters/s typed; {SECS:.0f} s"
          f" per row; server CPU includes the virtual unit's own rendering and JPEG encoding")
    print(f"{'stream':<32} {'viewers':>7} {'kB/s':>8} {'cpu %':>6} {'encode ms':>9}")
    rows = [("/stream", 1), ("/stream.h264", 1), ("/stream.h264", 2), ("/stream.h264", 10),
            ("/stream.h264?kbps=800", 1), ("/stream.h264?width=960", 1)]
    for path, n in rows:
        bps, cpu, enc = run(port, p.pid, path, n)
        print(f"{path:<32} {n:>7} {bps / 1e3:>8.1f} {cpu:>6.1f}"
              f" {enc if 'h264' in path else float('nan'):>9.1f}")
    stop.set()
    p.terminate()
    p.wait()


main()
