#!/usr/bin/env python3
"""okvm serve --vnc on the virtual unit's 1080p desktop: the server's CPU (% of one core) and the
bytes per second one VNC client gets, while text is typed and while the screen is still, and with
no VNC client at all. The client here asks for incremental updates in ZRLE (what TigerVNC and
most viewers prefer; it parses only the rectangle headers and skips the data it was told the
length of: ZRLE rectangles carry a 4-byte length) and Raw. Prints figures; asserts nothing.
Env: OKVM (binary), SECONDS_PER_RUN (6)."""
import http.client
import os
import socket
import struct
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


class Client:
    def __init__(self, port, encoding):
        self.bytes = 0
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.take(12)
        self.s.sendall(b"RFB 003.008\n")
        n = self.take(1)[0]
        self.take(n)
        self.s.sendall(bytes([1]))
        self.take(4)
        self.s.sendall(bytes([1]))
        self.w, self.h = struct.unpack(">HH", self.take(4))
        self.take(16)
        self.take(struct.unpack(">I", self.take(4))[0])
        self.enc = encoding
        self.s.sendall(struct.pack(">BxHi", 2, 1, encoding))  # SetEncodings

    def take(self, n):
        b = bytearray()
        while len(b) < n:
            d = self.s.recv(min(n - len(b), 1 << 20))
            if not d:
                raise EOFError
            b += d
        self.bytes += n
        return bytes(b)

    def request(self, incremental):
        self.s.sendall(struct.pack(">BBHHHH", 3, incremental, 0, 0, self.w, self.h))

    def update(self):
        t = self.take(1)[0]
        if t != 0:  # bell, cut text...: skip what we know
            if t == 3:
                self.take(3)
                self.take(struct.unpack(">I", self.take(4))[0])
            return
        self.take(1)
        n = struct.unpack(">H", self.take(2))[0]
        for _ in range(n):
            x, y, w, h, e = struct.unpack(">HHHHi", self.take(12))
            if e == 0:
                self.take(w * h * 4)
            elif e == 16:
                self.take(struct.unpack(">I", self.take(4))[0])
            elif e == -223:  # DesktopSize
                self.w, self.h = w, h


def typist(port, stop):
    while not stop.is_set():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", "/api/type?cps=40", body=TEXT.encode())
        c.getresponse().read()
        time.sleep(len(TEXT) / 40)


def run(port, vport, pid, encoding, typing):
    stop = threading.Event()
    if typing:
        threading.Thread(target=typist, args=(port, stop), daemon=True).start()
    c = Client(vport, encoding)
    c.request(0)
    c.update()
    time.sleep(1.5 if typing else 3)  # still: let the traces of the last typing fade
    c.bytes = 0
    c0, t0 = cpu_s(pid), time.monotonic()
    c.s.settimeout(0.5)
    while time.monotonic() - t0 < SECS:
        c.request(1)
        try:
            c.update()
        except socket.timeout:
            pass
    cpu = 100 * (cpu_s(pid) - c0) / (time.monotonic() - t0)
    stop.set()
    c.s.close()
    return c.bytes / SECS, cpu


def main():
    port, vport = free_port(), free_port()
    p = subprocess.Popen([OKVM, "serve", "--listen", f"127.0.0.1:{port}", "-d", "emu",
                          "--vnc", f"127.0.0.1:{vport}"], stdout=subprocess.PIPE)
    p.stdout.readline()
    time.sleep(1)
    c0, t0 = cpu_s(p.pid), time.monotonic()
    time.sleep(SECS)
    idle = 100 * (cpu_s(p.pid) - c0) / (time.monotonic() - t0)
    print(f"okvm serve -d emu --vnc (1920x1080 virtual desktop); {SECS:.0f} s per row; the"
          f" server's CPU includes the virtual unit's own rendering and JPEG encoding")
    print(f"no VNC client: {idle:.1f}% CPU (nothing is captured, decoded or encoded)")
    print(f"{'encoding':<8} {'screen':<22} {'kB/s':>9} {'cpu %':>6}")
    for enc, name in ((16, "ZRLE"), (0, "Raw")):
        for typing in (True, False):
            bps, cpu = run(port, vport, p.pid, enc, typing)
            print(f"{name:<8} {'typing 40 chars/s' if typing else 'still':<22} {bps / 1e3:>9.1f}"
                  f" {cpu:>6.1f}")
    p.terminate()
    p.wait()


main()
