#!/usr/bin/env python3
"""The target's serial console at 115200 baud through the virtual unit's USB-serial adapter on
the extension pins (okvm emulate --emu-pins usb-serial): throughput and key -> echo latency,
three ways: the adapter's tty read directly (the virtual wire alone), okvm console (stdin pipe to
stdout), and okvm serve's /api/console WebSocket.

Throughput: 100 logins of 60 characters (the virtual getty echoes the name, then asks for a
password and says "Login incorrect"): about 12 kB that the target prints as fast as its UART
allows (11520 bytes/s at 115200 8N1), timed from the first key to the last prompt.
Latency: one key, wait for its echo (then rub it out), 200 times; the wire time of the echo byte (87 us) is in it.
Prints figures; asserts nothing. Env: OKVM (binary), SAMPLES (200)."""
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import termios
import time
import tty

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from serve_util import WebSocket, free_port  # noqa: E402

OKVM = os.environ.get("OKVM", "build/okvm")
SAMPLES = int(os.environ.get("SAMPLES", "200"))
LOGINS, NAME = 100, "u" * 60


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


class Raw:
    """The adapter's tty, raw at 115200."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        t = termios.tcgetattr(self.fd)
        t[4] = t[5] = termios.B115200
        termios.tcsetattr(self.fd, termios.TCSANOW, t)
        self.wfd = self.fd

    def write(self, b):
        os.write(self.wfd, b)

    def read_until(self, want, count=1, timeout=30):
        out = b""
        end = time.monotonic() + timeout
        while out.count(want) < count:
            if not select.select([self.fd], [], [], end - time.monotonic())[0]:
                raise TimeoutError(want)
            out += os.read(self.fd, 65536)
        return out

    def close(self):
        os.close(self.fd)


class Console(Raw):
    """okvm console on the adapter, stdin and stdout pipes."""

    def __init__(self, path):
        self.p = subprocess.Popen([OKVM, "console", path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE)
        self.fd = self.p.stdout.fileno()
        self.wfd = self.p.stdin.fileno()
        time.sleep(0.3)

    def close(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait()


class Web(Raw):
    """okvm serve's /api/console."""

    def __init__(self, port):
        self.ws = WebSocket(port, path="/api/console")
        self.buf = b""
        self.fd = self.ws.sock.fileno()

    def write(self, b):
        self.ws.send({"type": "in", "data": b.decode()})

    def read_until(self, want, count=1, timeout=30):
        out = b""
        self.ws.sock.settimeout(timeout)
        while out.count(want) < count:
            op, data = self.ws.recv_frame()
            if op == 2:
                out += data
        return out

    def close(self):
        self.ws.sock.close()


def measure(name, io):
    io.write(b"\r")  # a fresh prompt
    io.read_until(b"login: ")
    lat = []
    for _ in range(SAMPLES):
        t = time.monotonic()
        io.write(b"k")
        io.read_until(b"k")
        lat.append((time.monotonic() - t) * 1e3)
        io.write(b"\x7f")  # rub it out again: the getty echoes at most 64 characters a line
        io.read_until(b"\b \b")
    io.write(b"\r\r")
    io.read_until(b"login: ")
    keys = ((NAME + "\rpw\r") * LOGINS).encode()
    t = time.monotonic()
    for i in range(0, len(keys), 512):  # the web console takes 4 KiB at a time
        io.write(keys[i:i + 512])
    out = io.read_until(b"Login incorrect", LOGINS)
    out += io.read_until(b"login: ")
    dt = time.monotonic() - t
    print(f"{name:>16}: {len(out)} bytes in {dt:.2f} s = {len(out) / dt:.0f} bytes/s "
          f"({len(out) / dt / 11520 * 100:.0f}% of 115200 8N1); key -> echo p50 "
          f"{pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms, max {max(lat):.2f} ms")


def main():
    with tempfile.TemporaryDirectory(prefix="okvm-bench-console-") as d:
        link = os.path.join(d, "tty")
        emu = subprocess.Popen([OKVM, "emulate", "--link", link, "--emu-pins", "usb-serial"],
                               stdout=subprocess.PIPE)
        emu.stdout.readline()
        emu.stdout.readline()
        for name, make in (("adapter tty", Raw), ("okvm console", Console)):
            io = make(link + ".pins")
            try:
                measure(name, io)
            finally:
                io.close()
        emu.send_signal(signal.SIGTERM)
        emu.wait()
        port = free_port()
        srv = subprocess.Popen([OKVM, "serve", "--listen", f"127.0.0.1:{port}", "-d", "emu",
                                "--emu-pins", "usb-serial"], stdout=subprocess.PIPE,
                               env={**os.environ, "HOME": d, "XDG_CONFIG_HOME": d})
        srv.stdout.readline()
        time.sleep(0.5)
        io = Web(port)
        try:
            measure("/api/console", io)
        finally:
            io.close()
            srv.send_signal(signal.SIGTERM)
            srv.wait()
    print("(the machine is shared with other work: figures vary with its load)")


if __name__ == "__main__":
    main()
