#!/usr/bin/env python3
"""okvm's link commands (info, mouse, reset, baud, factory-reset) against a small scripted
CH9329 on a pty: exact frames in, replies out. The chip only answers at its own baud (as a
real one garbles), so baud detection and `okvm baud` are exercised for real."""
import os
import select
import subprocess
import sys
import termios
import threading
import json

OKVM = os.environ.get("OKVM", "build/okvm")
SPEEDS = {termios.B9600: 9600, termios.B115200: 115200}


def frame(cmd, data=b""):
    b = bytes([0x57, 0xAB, 0x00, cmd, len(data)]) + bytes(data)
    return b + bytes([sum(b) & 0xFF])


class Chip(threading.Thread):
    def __init__(self, baud=9600):
        super().__init__(daemon=True)
        self.master, slave = os.openpty()
        self.slave_fd = slave
        self.path = os.ttyname(slave)
        self.baud = baud
        self.frames = []  # (bytes, host baud)
        self.params = bytearray(50)
        self.params[0:7] = bytes([0x82, 0x80, 0x00]) + baud.to_bytes(4, "big")
        self.params[7:21] = bytes([0x08, 0x00, 0x00, 0x03, 0x86, 0x1A, 0x29, 0xE1, 0, 0, 0, 1, 0, 0x0D])
        self.stop = False
        self.start()

    def host_baud(self):
        return SPEEDS.get(termios.tcgetattr(self.master)[5], 0)

    def read_exact(self, n):
        out = b""
        while len(out) < n:
            r, _, _ = select.select([self.master], [], [], 0.2)
            if self.stop:
                return None
            if r:
                try:
                    out += os.read(self.master, n - len(out))
                except OSError:
                    return None
        return out

    def run(self):
        while not self.stop:
            head = self.read_exact(5)
            if head is None:
                return
            if head[:2] != b"\x57\xab":
                continue
            rest = self.read_exact(head[4] + 1)
            if rest is None:
                return
            f = head + rest
            hb = self.host_baud()
            self.frames.append((f, hb))
            if hb != self.baud:
                continue  # garbled at the wrong speed: no answer
            self.answer(f[3], f[5:-1])

    def answer(self, cmd, data):
        if cmd == 0x01:
            os.write(self.master, frame(0x81, [0x38, 1, 0x02, 0, 0, 0, 0, 0]))
        elif cmd == 0x08:
            os.write(self.master, frame(0x88, self.params))
        elif cmd == 0x09:
            self.params = bytearray(data)
            os.write(self.master, frame(0x89, [0]))
        elif cmd == 0x0F:
            os.write(self.master, frame(0x8F, [0]))
            termios.tcdrain(self.master)
            self.baud = int.from_bytes(self.params[3:7], "big")
        elif cmd == 0x0C:
            os.write(self.master, frame(0x8C, [0]))
            self.params[3:7] = (9600).to_bytes(4, "big")
        else:
            os.write(self.master, frame(cmd | 0x80, [0]))

    def close(self):
        self.stop = True
        self.join()
        os.close(self.master)
        os.close(self.slave_fd)


def okvm(chip, *args):
    return subprocess.run([OKVM, "--serial", chip.path] + list(args), capture_output=True,
                          text=True, timeout=30)


KBD_UP = frame(0x02, [0] * 8)
MEDIA_UP = frame(0x03, [0x02, 0, 0, 0])
REL_UP = frame(0x05, [0x01, 0, 0, 0, 0])
GET_INFO = frame(0x01)

failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + (": " + str(detail) if not cond else ""))
    if not cond:
        failures.append(name)


def sent(chip):
    return [f for f, _ in chip.frames]


# belief: GET_INFO answered; factory 9600 (the chip at 9600); GET_PARA_CFG 50 bytes
def test_info_json():
    chip = Chip(9600)
    r = okvm(chip, "info", "--json")
    check("info exit 0", r.returncode == 0, r.stderr)
    d = json.loads(r.stdout) if r.returncode == 0 else {}
    check("info json", d.get("version") == "V1.8" and d.get("target_connected") is True and
          d.get("leds") == {"num": False, "caps": True, "scroll": False} and d.get("baud") == 9600
          and d.get("usb") == "1a86:e129" and d.get("mode") == 2, d)
    # detection: 115200 first (no answer), then 9600
    check("detect order", chip.frames[0] == (GET_INFO, 115200) and chip.frames[1] == (GET_INFO, 9600),
          chip.frames[:2])
    # info pressed nothing, so it releases nothing: only queries went out
    check("info sends no HID report", all(f[3] in (0x01, 0x08) for f in sent(chip)), sent(chip))
    chip.close()


# belief: ACKs sent
def test_mouse():
    chip = Chip(115200)
    r = okvm(chip, "--baud", "115200", "mouse", "move", "0.5", "0.25")
    check("mouse move exit 0", r.returncode == 0, r.stderr)
    s = sent(chip)
    move = frame(0x04, [0x02, 0, 0x00, 0x08, 0x00, 0x04, 0])  # 2048, 1024
    abs_up = frame(0x04, [0x02, 0, 0x00, 0x08, 0x00, 0x04, 0])
    check("mouse move frames", s == [GET_INFO, move, KBD_UP, MEDIA_UP, abs_up], s)
    chip.frames.clear()
    r = okvm(chip, "--baud", "115200", "mouse", "click", "right")
    s = sent(chip)
    check("mouse click frames", r.returncode == 0 and s[1:3] == [frame(0x05, [1, 2, 0, 0, 0]),
          frame(0x05, [1, 0, 0, 0, 0])], s)
    chip.frames.clear()
    r = okvm(chip, "--baud", "115200", "mouse", "rel", "300", "-5")
    s = sent(chip)
    check("mouse rel split", r.returncode == 0 and s[1:4] == [frame(0x05, [1, 0, 127, 0xFB, 0]),
          frame(0x05, [1, 0, 127, 0, 0]), frame(0x05, [1, 0, 46, 0, 0])], s)
    chip.frames.clear()
    r = okvm(chip, "--baud", "115200", "mouse", "scroll", "-2")
    s = sent(chip)
    check("mouse scroll", r.returncode == 0 and s[1] == frame(0x05, [1, 0, 0, 0, 0xFE]), s)
    chip.frames.clear()
    for bad in (["mouse", "move", "1.5", "0"], ["mouse", "move", "--raw", "5000", "0"],
                ["mouse", "click", "side"], ["mouse", "scroll", "x"], ["mouse"], ["baud", "4800"],
                ["info", "extra"]):
        r = okvm(chip, *bad)
        check("usage " + " ".join(bad), r.returncode == 2 and r.stderr.startswith("okvm: ")
              and r.stderr.count("\n") == 1, (r.returncode, r.stderr))
    check("usage errors send nothing", chip.frames == [], chip.frames)
    chip.close()


# belief: factory 9600; GET_PARA_CFG 50 bytes; GET_INFO answered (verify)
def test_baud_and_resets():
    chip = Chip(9600)
    r = okvm(chip, "--baud", "9600", "baud", "115200")
    check("baud exit 0", r.returncode == 0, r.stderr)
    check("chip now at 115200", chip.baud == 115200)
    r = okvm(chip, "info", "--json")
    check("info after baud", r.returncode == 0 and json.loads(r.stdout)["baud"] == 115200, r.stdout)
    r = okvm(chip, "reset")
    check("reset exit 0", r.returncode == 0, r.stderr)
    chip.frames.clear()
    r = okvm(chip, "--baud", "115200", "factory-reset")
    check("factory-reset exit 0", r.returncode == 0, r.stderr)
    s = chip.frames
    # a pty has no RTS: the command method, SET_DEFAULT_CFG at 9600 (no answer), then 115200
    sd = frame(0x0C)
    check("factory-reset sequence", (sd, 9600) in s and (sd, 115200) in s and chip.baud == 9600, s)
    chip.close()


# belief: ACKs sent
def test_sigint_releases():
    import signal
    import time
    chip = Chip(115200)
    p = subprocess.Popen([OKVM, "--serial", chip.path, "--baud", "115200", "mouse", "rel", "100000",
                          "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 10
    while len(chip.frames) < 5 and time.time() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    s = sent(chip)
    check("SIGINT: stops early", len(s) < 200, len(s))
    check("SIGINT: ends with release-all", s[-3:] == [KBD_UP, MEDIA_UP, REL_UP], s[-3:])
    check("SIGINT: exit 1", p.returncode == 1, (p.returncode, err))
    chip.close()


class SlowChip(Chip):
    """ACKs HID reports after `delay` s (the CH9329 may take up to 500 ms) and records, for each
    frame, how many earlier HID reports were still unanswered when it arrived."""

    def __init__(self, baud, delay):
        self.delay = delay
        self.unanswered = 0
        self.outstanding = []  # (cmd, unanswered HID reports at arrival)
        self.lock = threading.Lock()
        super().__init__(baud)

    def answer(self, cmd, data):
        with self.lock:
            self.outstanding.append((cmd, self.unanswered))
        if not 0x02 <= cmd <= 0x06:
            return super().answer(cmd, data)
        with self.lock:
            self.unanswered += 1

        def late():
            with self.lock:
                os.write(self.master, frame(cmd | 0x80, [0]))
                self.unanswered -= 1
        threading.Timer(self.delay, late).start()


# belief: ACKs sent (one 60 ms late); frames cut by LEN or idle: at most one unanswered
def test_pipeline():
    r = subprocess.run([OKVM, "--help"], capture_output=True, text=True, timeout=10)
    check("help lists --no-pipeline", "--no-pipeline" in r.stdout, r.stdout)
    for extra, want in (([], 1), (["--no-pipeline"], 0)):
        chip = SlowChip(9600, 0.06)
        r = okvm(chip, "--baud", "9600", *extra, "mouse", "rel", "1000", "0")
        name = "pipeline" + (" off" if extra else "")
        hid = [n for c, n in chip.outstanding if 0x02 <= c <= 0x06]
        check(name + ": exit 0", r.returncode == 0, r.stderr)
        check(name + ": 8 steps + release-all", len(hid) == 11, chip.outstanding)
        check(name + ": at most %d report(s) unanswered when the next arrives" % want,
              max(hid) == want, chip.outstanding)
        check(name + ": commands only on an idle link",
              all(n == 0 for c, n in chip.outstanding if not 0x02 <= c <= 0x06), chip.outstanding)
        chip.close()


def test_no_unit():
    r = subprocess.run([OKVM, "info"], capture_output=True, text=True, timeout=10)
    check("no unit: exit 1 + hint", r.returncode == 1 and "--serial" in r.stderr, r.stderr)
    r = subprocess.run([OKVM, "--serial", "/dev/ttyNOPE", "info"], capture_output=True, text=True,
                       timeout=10)
    check("missing port: exit 1 + hint", r.returncode == 1 and "plugged in" in r.stderr, r.stderr)


test_info_json()
test_mouse()
test_baud_and_resets()
test_sigint_releases()
test_pipeline()
test_no_unit()
print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
