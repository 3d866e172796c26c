#!/usr/bin/env python3
"""WebSocket key event -> first byte of its keyboard report on the serial fd, with 20 MJPEG
clients streaming 1080p at 30 fps (ARCHITECTURE section 6), end to end through okvm serve's
unit backend and link.

A small CH9329 in a child process sits on the master side of a pty (okvm serve --serial on the
slave side): it answers every command as a chip does and stamps CLOCK_MONOTONIC when the 0x57
of each keyboard report (command 0x02) is read. The bench stamps the same clock just before it
sends the key over the WebSocket. Keys go 30 ms apart, so the link's report gap (12 ms) never
holds one back: this is the latency, not the pacing. Two ways to wait for the bytes, as each
biases the figure: the chip sleeps in select() (its own wake-up from an idle CPU is counted, so
the figure is an upper bound), or it spins on a non-blocking read (nothing of its own is counted,
but one core stays busy, which also keeps the server's CPU awake). Both are printed. Where perf
can record the server (root, or perf_event_paranoid allowing it), the exact figure is printed
too: the send to the entry of the server's write() of the 14-byte report on the tty, both on
CLOCK_MONOTONIC (perf record -k mono), which is what "first byte on the serial fd" means.
Prints figures; asserts nothing. Env: OKVM (binary), OKVM_BUILD (build dir), SAMPLES (500),
SERVER_PREFIX (words put before the server's command line, e.g. "chrt -r 1" or "nice -n -10":
the scheduling the server gets decides the tail on a loaded machine), SPIN (0: the select() run
only)."""
import bisect
import os
import select
import shutil
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


def chip(master, out, spin):
    """Answer as a CH9329 at whatever speed the host set; write one arrival time per 0x02."""
    os.set_blocking(master, not spin)
    params = bytearray(50)
    params[0:7] = bytes([0x82, 0x80, 0x00]) + (9600).to_bytes(4, "big")
    buf = b""
    head_t = 0.0  # when the first byte of buf arrived
    while True:
        if not spin:
            select.select([master], [], [])
        try:
            d = os.read(master, 4096)
        except BlockingIOError:
            continue
        except OSError:
            return
        t = time.monotonic()
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


def run(tmp, spin):
    master, slave = os.openpty()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.close(slave)
        chip(master, w, spin)
        os._exit(0)
    os.close(w)
    os.close(master)
    port = free_port()
    prefix = os.environ.get("SERVER_PREFIX", "").split()
    srv = subprocess.Popen(prefix + [OKVM, "serve", "--listen", f"127.0.0.1:{port}", "--serial",
                            os.ttyname(slave), "--video", f"frames:{tmp}@30"],
                           stdout=subprocess.PIPE)
    srv.stdout.readline()
    perf_out = os.path.join(tmp, "write.perf")
    perf = None
    if shutil.which("perf"):
        perf = subprocess.Popen(["perf", "record", "-q", "-k", "mono", "-e",
                                 "syscalls:sys_enter_write", "-p", str(srv.pid), "-o", perf_out],
                                stderr=subprocess.DEVNULL)
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
    if perf:
        perf.send_signal(2)
        perf.wait()
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
    show("chip spins" if spin else "chip sleeps", lat)
    if perf and not spin:
        show("server's write() (perf)", to_write(perf_out, sent))


def show(how, lat):
    print(f"WebSocket key -> first serial byte, 20 stream clients at 30 fps (1080p), {how},"
          f" n={len(lat)}: p50 {lat[len(lat) // 2]:.3f} ms, p99 {lat[int(len(lat) * 0.99)]:.3f} ms,"
          f" max {lat[-1]:.3f} ms")


def to_write(perf_out, sent):
    """Each send to the first write() of a 14-byte keyboard frame (0xe) after it, in ms."""
    out = subprocess.run(["perf", "script", "-i", perf_out, "-F", "time,trace"],
                         capture_output=True, text=True).stdout
    writes = [float(line.split(":")[0]) for line in out.splitlines() if "count: 0x0000000e" in line]
    lat = []
    for t in sent:
        i = bisect.bisect_left(writes, t)
        if i < len(writes):
            lat.append((writes[i] - t) * 1e3)
    return sorted(lat) or [float("nan")]


def main():
    tmp = tempfile.mkdtemp(prefix="okvm-bench-")
    subprocess.run([os.path.join(BUILD, "bench", "make_frames"), tmp, "1920", "1080", "8", "80"],
                   check=True)
    run(tmp, spin=False)
    if os.environ.get("SPIN", "1") != "0":
        run(tmp, spin=True)


main()
