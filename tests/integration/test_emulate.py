#!/usr/bin/env python3
"""okvm emulate as a separate process: the link appears, the chip answers on it byte for byte,
the events file records what the target saw, SIGUSR1 unplugs/replugs the target, SIGTERM
removes the link and the modem socket and exits 0. Waits use select() with timeouts."""
# belief: GET_INFO answered; ACKs sent; version in DATA[0] (the virtual chip's defaults)
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

OKVM = os.environ.get("OKVM", "build/okvm")
GET_INFO = bytes.fromhex("57AB00010003")
INFO_ON = bytes.fromhex("57AB0081083801000000000000C4")
INFO_OFF = bytes.fromhex("57AB0081083800000000000000C3")
KEY_A = bytes.fromhex("57AB000208" "0000040000000000" "10")
KEYS_UP = bytes.fromhex("57AB000208" "0000000000000000" "0C")
ACK_KBD = bytes.fromhex("57AB0082010085")


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def read_exact(fd, n, timeout=2.0):
    out = b""
    end = time.monotonic() + timeout
    while len(out) < n:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        out += os.read(fd, n - len(out))
    return out


def expect(fd, req, want):
    os.write(fd, req)
    got = read_exact(fd, len(want))
    if got != want:
        fail(f"sent {req.hex()} wanted {want.hex()} got {got.hex()}")


class Events:
    """The events file is a FIFO here, so the test can select() on it."""

    def __init__(self, path):
        os.mkfifo(path)
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.buf = b""
        self.lines = []
        self.cursor = 0

    def wait(self, line, timeout=3.0):
        """Wait for line after the one the previous wait() found."""
        end = time.monotonic() + timeout
        while line not in self.lines[self.cursor:]:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                fail(f"{line} not seen: {self.lines}")
            self.buf += os.read(self.fd, 4096)
            *done, self.buf = self.buf.split(b"\n")
            self.lines += [x.decode() for x in done]
        self.cursor = self.lines.index(line, self.cursor) + 1
        return self.lines


def main():
    d = tempfile.mkdtemp(prefix="okvm-emulate-")
    link = os.path.join(d, "ttyKVM")
    events = os.path.join(d, "events.jsonl")
    ev = Events(events)
    p = subprocess.Popen([OKVM, "emulate", "--link", link, "--baud", "115200",
                          "--emu-events", events], stdout=subprocess.PIPE, text=True)
    try:
        if not select.select([p.stdout], [], [], 5)[0]:
            fail("no ready line")
        ready = p.stdout.readline().strip()
        if ready != link:
            fail(f"ready line {ready!r}")
        if not os.path.islink(link) or not os.path.exists(link + ".modem"):
            fail("link or modem socket missing")
        fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = termios.B115200
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        expect(fd, GET_INFO, INFO_ON)
        expect(fd, KEY_A, ACK_KBD)
        ev.wait('{"type":"text","text":"a"}')
        expect(fd, KEYS_UP, ACK_KBD)
        ev.wait('{"type":"key","usage":4,"down":false}')
        p.send_signal(signal.SIGUSR1)
        ev.wait('{"type":"usb","connected":false}')
        expect(fd, GET_INFO, INFO_OFF)
        p.send_signal(signal.SIGUSR1)
        lines = ev.wait('{"type":"usb","connected":true}')
        if lines.count('{"type":"usb","connected":true}') != 2:
            fail(f"expected two connects: {lines}")
        expect(fd, GET_INFO, INFO_ON)
        for line in lines:
            json.loads(line)
        os.close(fd)
        p.send_signal(signal.SIGTERM)
        if p.wait(timeout=5) != 0:
            fail(f"exit status {p.returncode}")
        if os.path.lexists(link) or os.path.exists(link + ".modem"):
            fail("link or modem socket left behind")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for f in ("events.jsonl", "ttyKVM", "ttyKVM.modem"):
            try:
                os.unlink(os.path.join(d, f))
            except FileNotFoundError:
                pass
        os.rmdir(d)
    print("ok")


main()
