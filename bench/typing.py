#!/usr/bin/env python3
"""Typing speed through the virtual unit: okvm vs the official Qt app's paste pacing.

For each baud (9600, 115200) and target poll interval (1 ms, 8 ms as xHCI rounds a 10 ms
bInterval, 10 ms) it starts `okvm emulate` (the virtual CH9329 with its USB-poll model and its
DATAFLIP line, hardware.md 2.11), then
  * runs `okvm type` at --rate max and at the default rate, and --rate max on a unit without
    the DATAFLIP line (--emu-dataflip off: v1.6 boards, KVM-Go), and
  * replays the official app's paste pacing (docs/hardware.md 2.12: a 5 ms timer that handles up
    to 10 characters; per character press, 3 ms, release-all, 3 ms, release-all; no ACK wait)
    by writing those frames to the same pty,
and prints characters per second and how many characters the target really received / lost.
BAUDS, POLLS and MODES (comma lists) pick a part of the table; OKVM names the binary.
"""
import os
import sys
import termios
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import okvmtest  # noqa: E402

TEXT = ("the quick brown fox jumps over the lazy dog 0123456789 " * 8).strip()


def usage_of(ch):
    """HID usage (page 0x07) of the lowercase letters, digits and space used in TEXT."""
    if "a" <= ch <= "z":
        return 0x04 + ord(ch) - ord("a")
    if "1" <= ch <= "9":
        return 0x1E + ord(ch) - ord("1")
    if ch == "0":
        return 0x27
    if ch == " ":
        return 0x2C
    raise ValueError(ch)


def kbd_frame(mod, key):
    body = bytes([0x57, 0xAB, 0x00, 0x02, 0x08, mod, 0x00, key, 0, 0, 0, 0, 0])
    return body + bytes([sum(body) & 0xFF])


def qt_replay(path, baud, text):
    """The official app's paste loop, written straight to the tty (it does not wait for ACKs)."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    attrs = termios.tcgetattr(fd)
    speed = termios.B9600 if baud == 9600 else termios.B115200
    attrs[0] = 0
    attrs[1] = 0
    attrs[2] = termios.CS8 | termios.CREAD | termios.CLOCAL
    attrs[3] = 0
    attrs[4] = attrs[5] = speed
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    release = kbd_frame(0, 0)
    start = time.monotonic()
    i = 0
    while i < len(text):
        tick = time.monotonic()
        for ch in text[i:i + 10]:
            os.write(fd, kbd_frame(0, usage_of(ch)))
            time.sleep(0.003)
            os.write(fd, release)
            time.sleep(0.003)
            os.write(fd, release)
        i += 10
        rest = 0.005 - (time.monotonic() - tick)
        if rest > 0:
            time.sleep(rest)
    os.close(fd)
    return start


def wait_arrival(emu, start, want):
    """The official app does not wait for the chip: its writes sit in the tty buffer and reach
    the chip at wire speed. Its typing ends when the target has the last character (or nothing
    more arrives for 2 s): that moment, not the end of the writes, is the fair end time."""
    last_len, last_change = -1, time.monotonic()
    while True:
        n = len(okvmtest.typed_text(emu.events_list()))
        now = time.monotonic()
        if n != last_len:
            last_len, last_change = n, now
        if n >= want or now - last_change > 2.0:
            return last_change - start
        time.sleep(0.02)


def measure(baud, mode, poll):
    extra = ["--emu-dataflip", "off"] if mode == "noflip" else []
    with okvmtest.Emulator("--baud", str(baud), "--emu-poll-ms", str(poll), *extra) as emu:
        if mode == "qt":
            start = qt_replay(emu.link, baud, TEXT)
            elapsed = wait_arrival(emu, start, len(TEXT))
        else:
            args = ["--baud", str(baud), "type"]
            if mode in ("max", "noflip"):
                args += ["--rate", "max"]
            args += ["-"]
            t0 = time.monotonic()
            r = emu.okvm(*args, input=TEXT, timeout=600)
            elapsed = time.monotonic() - t0
            if r.returncode != 0:
                return None, r.stderr.decode().strip()
        time.sleep(0.3)
        ev = emu.events_list()
    got = okvmtest.typed_text(ev)
    lost = len(okvmtest.dropped(ev))
    cps = len(TEXT) / elapsed
    exact = "exact" if got == TEXT else f"WRONG ({len(got)}/{len(TEXT)} chars arrived)"
    line = f"{cps:7.1f} chars/s  {elapsed:6.2f} s  dropped reports {lost:4d}  text {exact}"
    return cps, got == TEXT, line


LABELS = {"qt": "official app pacing", "default": "okvm type (default)",
          "max": "okvm type --rate max", "noflip": "okvm max, no DATAFLIP"}


def env_list(name, default):
    """BAUDS=9600 POLLS=10,8 MODES=max,noflip pick a part of the table (all by default)."""
    v = os.environ.get(name)
    return [type(default[0])(x) for x in v.split(",")] if v else list(default)


def main():
    print(f"text: {len(TEXT)} characters; okvm {okvmtest.OKVM}")
    modes = env_list("MODES", ("qt", "default", "max", "noflip"))
    for baud in env_list("BAUDS", (9600, 115200)):
        for poll in env_list("POLLS", (1, 8, 10)):
            results = {}
            for mode in modes:
                cps, exact, line = measure(baud, mode, poll)
                results[mode] = (cps, exact)
                print(f"{baud:6d} baud  poll {poll:2d} ms  {LABELS[mode]:22s} {line}")
            if "qt" not in results or "max" not in results:
                continue
            (qt, qt_exact), (mx, mx_exact) = results["qt"], results["max"]
            print(f"{baud:6d} baud  poll {poll:2d} ms  okvm max / official app: {mx / qt:.2f}x "
                  f"(okvm {'exact' if mx_exact else 'NOT exact'}, official "
                  f"{'exact' if qt_exact else 'loses keystrokes'})")


if __name__ == "__main__":
    main()
