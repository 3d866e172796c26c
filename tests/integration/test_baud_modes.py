#!/usr/bin/env python3
"""`okvm baud` byte for byte against a scripted CH9329 on a pty, under each answer to two beliefs:
- "SET_PARA_CFG stores mode bytes of 0x80 and above" (okvm wrote them back unchanged; QT issue
  #642 / PR #643: the setting did not survive a replug until serial mode 0x00 was written). The
  chip here plays both: one persists whatever it is given, the other (PR #643's reading) keeps
  only blocks with software modes across a replug. The factory block is played both ways too:
  okvm's 0x82/0x80 and the 0x80/0x80 of QT issue #642.
- "a CH32V208 is recognised by its GET_INFO version 0x82..0x84" (MAC; QT decides by the serial
  part's USB ID 1A86:FE0C): refused by the model table for a discovered KVM-Go or its tty, and by
  GET_INFO for a bare tty the table cannot place; nothing is configured."""
# belief: mode bytes persist, both ways; factory 9600; GET_PARA_CFG 50 bytes
import os
import select
import subprocess
import sys
import termios
import threading

OKVM = os.environ["OKVM"]
FIX = os.path.join(os.environ["OKVM_SRC"], "tests/fixtures/sysfs")
SPEEDS = {termios.B9600: 9600, termios.B115200: 115200}
failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + (": " + str(detail) if not cond else ""))
    if not cond:
        failures.append(name)


def frame(cmd, data=b""):
    b = bytes([0x57, 0xAB, 0x00, cmd, len(data)]) + bytes(data)
    return b + bytes([sum(b) & 0xFF])


def block(mode, serial_mode, baud):
    b = bytearray(50)
    b[0:7] = bytes([mode, serial_mode, 0]) + baud.to_bytes(4, "big")
    b[7:21] = bytes([0x08, 0, 0, 0x03, 0x86, 0x1A, 0x29, 0xE1, 0, 0, 0, 1, 0, 0x0D])
    return b


class Chip(threading.Thread):
    def __init__(self, mode=0x82, strict=False, version=0x38):
        super().__init__(daemon=True)
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.factory = block(mode, 0x80, 9600)
        self.params, self.stored = bytearray(self.factory), bytearray(self.factory)
        self.baud, self.strict, self.version = 9600, strict, version
        self.frames, self.stop = [], False
        self.start()

    def read(self, n):
        out = b""
        while len(out) < n and not self.stop:
            if select.select([self.master], [], [], 0.1)[0]:
                out += os.read(self.master, n - len(out))
        return out if len(out) == n else None

    def run(self):
        while not self.stop:
            head = self.read(5)
            if head is None or head[:2] != b"\x57\xab":
                continue
            rest = self.read(head[4] + 1)
            if rest is None:
                return
            self.frames.append(head + rest)
            if SPEEDS.get(termios.tcgetattr(self.master)[5]) == self.baud:
                self.answer(head[3], (head + rest)[5:-1])

    def answer(self, cmd, data):
        if cmd == 0x01:
            os.write(self.master, frame(0x81, [self.version, 1, 0, 0, 0, 0, 0, 0]))
        elif cmd == 0x08:
            os.write(self.master, frame(0x88, self.params))
        elif cmd == 0x09:
            self.params = bytearray(data)
            # PR #643's reading: a block with pin-reported modes is used but never stored
            if not self.strict or (data[0] < 0x80 and data[1] < 0x80):
                self.stored = bytearray(data)
            os.write(self.master, frame(0x89, [0]))
        elif cmd == 0x0F:
            os.write(self.master, frame(0x8F, [0]))
            termios.tcdrain(self.master)
            self.baud = int.from_bytes(self.params[3:7], "big")
        else:
            os.write(self.master, frame(cmd | 0x80, [0]))

    def replug(self):
        self.params = bytearray(self.stored)
        self.baud = int.from_bytes(self.params[3:7], "big")

    def sets(self):
        return [f[5:-1] for f in self.frames if f[3] == 0x09]

    def close(self):
        self.stop = True
        self.join()
        os.close(self.master)
        os.close(self.slave)


def okvm(*args, env=None):
    return subprocess.run([OKVM, *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))


for mode in (0x82, 0x80):
    for strict in (False, True):
        what = "factory mode %02X, %s chip" % (mode, "PR 643" if strict else "lenient")
        chip = Chip(mode, strict)
        r = okvm("--serial", chip.path, "--baud", "9600", "baud", "115200")
        want = [block(mode & 3, 0, 9600), block(mode & 3, 0, 115200)]
        check(what + ": exit 0", r.returncode == 0, r.stderr)
        check(what + ": SET_PARA_CFG blocks byte-exact", chip.sets() == want,
              [s.hex() for s in chip.sets()])
        chip.replug()
        r = okvm("--serial", chip.path, "info")
        check(what + ": 115200 survives a replug",
              chip.baud == 115200 and "baud:    115200" in r.stdout, r.stdout + r.stderr)
        chip.close()

chip = Chip(version=0x82)
r = okvm("--serial", chip.path, "baud", "115200")
check("GET_INFO 0x82 (CH32V208): refused, nothing configured",
      r.returncode == 1 and "CH32V208" in r.stderr and chip.sets() == [], r.stderr)
chip.close()

kvm_go = {"OKVM_SYSFS_ROOT": os.path.join(FIX, "kvm-go-usb2")}
for args in (["-d", "1"], ["--serial", "/dev/ttyACM0"], []):
    r = okvm(*args, "baud", "115200", env=kvm_go)
    check("KVM-Go %s: refused by its serial part's USB ID" % " ".join(args),
          r.returncode == 1 and "CH32V208" in r.stderr and r.stderr.count("\n") == 1, r.stderr)

print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
