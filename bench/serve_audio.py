#!/usr/bin/env python3
"""Sound over the WebSocket on the virtual unit (okvm serve -d emu, docs/audio.md): for Opus and
PCM, the bytes per second a listener gets, the age of each message when it arrives (its capture
time against CLOCK_MONOTONIC: median and worst), and the server's CPU (% of one core) with no
listener, then 1 and 10 listeners. Prints figures; asserts nothing.
Env: OKVM (binary), SECONDS_PER_RUN (5)."""
import os
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from serve_util import WebSocket, free_port  # noqa: E402

OKVM = os.environ.get("OKVM", "build/okvm")
SECS = float(os.environ.get("SECONDS_PER_RUN", "5"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def listen(port, codec, out, stop):
    ws = WebSocket(port)
    ws.send({"type": "audio", "codec": codec})
    ages, nbytes = [], 0
    while not stop.is_set():
        op, data = ws.recv_frame()
        if op != 0x2 or data[:1] != b"A":
            continue
        ts = struct.unpack("!Q", data[8:16])[0]
        ages.append(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000 - ts)
        nbytes += len(data)
    ws.close()
    out.append((ages, nbytes))


def run(port, pid, codec, n):
    stop, out = threading.Event(), []
    ts = [threading.Thread(target=listen, args=(port, codec, out, stop)) for _ in range(n)]
    for t in ts:
        t.start()
    time.sleep(1)
    c0, t0 = cpu_s(pid), time.monotonic()
    time.sleep(SECS)
    cpu = (cpu_s(pid) - c0) / (time.monotonic() - t0) * 100
    stop.set()
    for t in ts:
        t.join()
    ages = sorted(a for o in out for a in o[0][25:])  # the first half second aside
    nbytes = out[0][1] / (SECS + 1)
    print(f"{codec:4} x{n:2}: {nbytes * 8 / 1000:7.0f} kbit/s per listener, message age at "
          f"arrival median {ages[len(ages) // 2] / 1000:.1f} ms, worst {ages[-1] / 1000:.1f} ms "
          f"(20 ms of sound each), server CPU {cpu:.1f}% of a core")


def main():
    port = free_port()
    env = dict(os.environ, HOME="/tmp", XDG_CONFIG_HOME="/tmp/okvm-bench-audio")
    p = subprocess.Popen([OKVM, "serve", "--listen", f"127.0.0.1:{port}", "-d", "emu"],
                         stdout=subprocess.PIPE, env=env)
    p.stdout.readline()
    try:
        c0 = cpu_s(p.pid)
        time.sleep(SECS)
        print(f"no listener: server CPU {(cpu_s(p.pid) - c0) / SECS * 100:.1f}% of a core "
              "(video capture idle too)")
        for codec in ("opus", "pcm"):
            for n in (1, 10):
                run(port, p.pid, codec, n)
    finally:
        p.terminate()
        p.wait()
    print("(the machine is shared with other jobs: figures are rough)")


main()
