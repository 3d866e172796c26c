#!/usr/bin/env python3
"""Figures for the virtual unit (okvm emulate): GET_INFO round trip against the wire-time
model, the keyboard-report rate the poll model lets through without a drop, and the
emulator's CPU cost. Prints figures; asserts nothing."""
import os
import select
import signal
import statistics
import subprocess
import tempfile
import termios
import time
import tty

OKVM = os.environ.get("OKVM", "build/okvm")
GET_INFO = bytes.fromhex("57AB00010003")
KEY_A = bytes.fromhex("57AB000208" "0000040000000000" "10")
KEYS_UP = bytes.fromhex("57AB000208" "0000000000000000" "0C")


def read_exact(fd, n, timeout=2.0):
    out = b""
    end = time.monotonic() + timeout
    while len(out) < n:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        out += os.read(fd, n - len(out))
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(baud, events):
    d = tempfile.mkdtemp(prefix="okvm-bench-emu-")
    link = os.path.join(d, "tty")
    p = subprocess.Popen([OKVM, "emulate", "--link", link, "--baud", str(baud),
                          "--emu-events", events], stdout=subprocess.PIPE, text=True)
    p.stdout.readline()
    fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    a = termios.tcgetattr(fd)
    a[4] = a[5] = termios.B9600 if baud == 9600 else termios.B115200
    termios.tcsetattr(fd, termios.TCSANOW, a)
    return p, fd, d


def stop(p, fd, d):
    os.close(fd)
    p.send_signal(signal.SIGTERM)
    p.wait()
    os.rmdir(d)


def rtt(baud, n=200):
    ev = tempfile.mktemp(prefix="okvm-bench-ev-")
    p, fd, d = start(baud, ev)
    times = []
    cpu0 = cpu_seconds(p.pid)
    for _ in range(n):
        t0 = time.monotonic()
        os.write(fd, GET_INFO)
        if len(read_exact(fd, 14)) != 14:
            print("  no reply")
            break
        times.append((time.monotonic() - t0) * 1000)
    cpu = cpu_seconds(p.pid) - cpu0
    stop(p, fd, d)
    os.unlink(ev)
    theory = 20 * 10 / baud * 1000
    times.sort()
    print(f"GET_INFO round trip at {baud}: median {statistics.median(times):.2f} ms, "
          f"p99 {times[int(len(times) * 0.99) - 1]:.2f} ms (wire model {theory:.2f} ms), "
          f"emulator CPU {cpu * 1000 / n:.3f} ms per exchange")


def typing(gap_ms, n=100):
    ev = tempfile.mktemp(prefix="okvm-bench-ev-")
    p, fd, d = start(115200, ev)
    t0 = time.monotonic()
    for i in range(n):
        os.write(fd, KEY_A if i % 2 == 0 else KEYS_UP)
        read_exact(fd, 7)
        time.sleep(gap_ms / 1000)  # the pacing under test, not a synchronisation
    el = time.monotonic() - t0
    time.sleep(0.1)
    stop(p, fd, d)
    with open(ev) as f:
        lines = f.read().splitlines()
    os.unlink(ev)
    dropped = sum('"dropped"' in x for x in lines)
    chars = sum('"text"' in x for x in lines)
    print(f"115200 baud, ACK then {gap_ms} ms between reports: {n} reports, {dropped} dropped, "
          f"{chars} characters, {chars / el:.1f} characters/s")


rtt(9600)
rtt(115200)
for gap in (0, 5, 11):
    typing(gap)
