#!/usr/bin/env python3
"""WebSocket key event -> first byte of its keyboard report on the serial fd, with 20 MJPEG
clients streaming 1080p at 30 fps (ARCHITECTURE section 6), end to end through okvm serve's
unit backend and link.

A small CH9329 in a child process sits on the master side of a pty (okvm serve --serial on the
slave side): it answers every command as a chip does and stamps CLOCK_MONOTONIC when the 0x57
of each keyboard report (command 0x02) is read. The bench stamps the same clock just before it
sends the key over the WebSocket. Keys go 30 ms apart, so the link's report gap (12 ms) never
holds one back: this is the latency, not the pacing. The child's own wake-up is included, so
the figures are an upper bound. Prints figures; asserts nothing.
Env: OKVM (binary), OKVM_BUILD (build dir), SAMPLES (default 500)."""
import os
import select
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from serve_util import WebSocket, free_port  # noqa: E402

OKVM = os.environ.get("OKVM", "build/okvm")
BUILD = os.environ.get("OKVM_BUILD", "build")
N = int(os.environ.get("SAMPLES", "500"))


def frame(cmd, data):
    b = bytes([0x57, 0xAB, 0x00, cmd, len(data)]) + bytes(data)
    return b + bytes([sum(b) & 0xFF])


def chip(master, out):
    """Answer as a CH9329 at whatever speed the host set; write one arrival time per 0x02."""
    params = bytearray(50)
    params[0:7] = bytes([0x82, 0x80, 0x00]) + (9600).to_bytes(4, "big")
    buf = b""
    head_t = 0.0  # when the first byte of buf arrived
    while True:
        select.select([master], [], [])
        t = time.monotonic()
        try:
            d = os.read(master, 4096)
        except OSError:
            return
        if not d:
            return
        if not buf:
            head_t = t
        buf += d
        while True:
            i = buf.find(b"\x57\xab")
            if i < 0:
                buf = buf[-1:] if buf.endswith(b"\x57") else b""
                break
            if i:
                buf, head_t = buf[i:], t
            if len(buf) < 5 or len(buf) < 6 + buf[4]:
                break
            f, buf = buf[:6 + buf[4]], buf[6 + buf[4]:]
            if f[3] == 0x02:
                os.write(out, f"{head_t:.7f}\n".encode())
            head_t = t  # what is left arrived in this read
            if f[3] == 0x01:
                os.write(master, frame(0x81, [0x38, 1, 0x00, 0, 0, 0, 0, 0]))
            elif f[3] == 0x08:
                os.write(master, frame(0x88, params))
            else:
                os.write(master, frame(f[3] | 0x80, [0]))


def main():
    tmp = tempfile.mkdtemp(prefix="okvm-bench-")
    subprocess.run([os.path.join(BUILD, "bench", "make_frames"), tmp, "1920", "1080", "8", "80"],
                   check=True)
    master, slave = os.openpty()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.close(slave)
        chip(master, w)
        os._exit(0)
    os.close(w)
    os.close(master)
    port = free_port()
    srv = subprocess.Popen([OKVM, "serve", "--listen", f"127.0.0.1:{port}", "--serial",
                            os.ttyname(slave), "--test-backend", f"{tmp}@30"],
                           stdout=subprocess.PIPE)
    srv.stdout.readline()
    streams = subprocess.Popen([os.path.join(BUILD, "bench", "fanout_client"), str(port), "20",
                                str(N * 0.03 + 30), "0"], stdout=subprocess.DEVNULL)
    time.sleep(2)  # let the stream clients connect and the link settle (benchmark, not a test)
    ws = WebSocket(port)
    ws.recv_until(lambda m: m["type"] == "state")
    arrivals = os.fdopen(r)
    sent = []
    for i in range(N):
        t = time.monotonic()
        ws.send({"type": "key", "code": "KeyA", "down": i % 2 == 0})
        sent.append(t)
        time.sleep(0.03)
    ws.close()
    time.sleep(0.3)
    streams.terminate()
    streams.wait()
    srv.terminate()
    srv.wait()
    os.close(slave)
    os.waitpid(pid, 0)
    got = [float(x) for x in arrivals.read().split()]
    # Every key event is one report; anything after the last is the release on disconnect.
    lat = sorted((a - s) * 1e3 for s, a in zip(sent, got[:N]))
    if len(got) < N:
        print(f"only {len(got)} of {N} keyboard reports reached the serial fd")
    print(f"WebSocket key -> first serial byte, 20 stream clients at 30 fps (1080p), n={len(lat)}:"
          f" p50 {lat[len(lat) // 2]:.3f} ms, p99 {lat[int(len(lat) * 0.99)]:.3f} ms,"
          f" max {lat[-1]:.3f} ms")


main()
