#!/usr/bin/env python3
"""The extension pins at work (issue 16): the virtual unit's USB-serial adapter on the pins
(--emu-pins usb-serial), wired to the target's ATX header and serial console; okvm power and
okvm console through it. The --emu-events file is the oracle for what the target experienced
(power, atx, console, usb, dropped events). Each test runs okvm emulate in its own folder."""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import OKVM, check, fail, read_events, run  # noqa: E402


class Unit:
    """okvm emulate --emu-pins usb-serial in a temporary folder."""

    def __init__(self, power="off", extra=()):
        self.dir = tempfile.TemporaryDirectory(prefix="okvm-pins-")
        d = self.dir.name
        self.link = os.path.join(d, "tty")
        self.pins = self.link + ".pins"
        self.events = os.path.join(d, "ev.jsonl")
        self.proc = subprocess.Popen(
            [OKVM, "emulate", "--link", self.link, "--emu-pins", "usb-serial", "--emu-power",
             power, "--emu-events", self.events, "--emu-poll-ms", "1"] + list(extra),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = self.proc.stdout.readline().decode().strip()
        second = self.proc.stdout.readline().decode().strip()
        check(first == self.link, f"emulate printed {first!r}")
        check(second == "pins: " + self.pins, f"emulate's second line is {second!r}")
        check(os.path.islink(self.pins), "no adapter tty at PATH.pins")
        self.wait_event(lambda e: e["type"] == "power", "the power state at start")

    def power(self, *args, config=None):
        """okvm power through the adapter; HOME points here, so no user's okvm.conf is read."""
        extra = ["--config", config] if config else []
        return run(["power"] + list(args) + ["--adapter", self.pins] + extra,
                   env={"XDG_CONFIG_HOME": self.dir.name, "HOME": self.dir.name}, timeout=30)

    def ev(self):
        return read_events(self.events)

    def wait_event(self, pred, what, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for e in self.ev():
                if pred(e):
                    return e
            time.sleep(0.02)
        fail(f"no event: {what}; events: {self.ev()}")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)
        check(not os.path.lexists(self.pins), "the adapter's link stays after SIGTERM")
        check(not os.path.exists(self.pins + ".modem"), "the adapter's socket stays")
        self.dir.cleanup()


def power_events(evs):
    return [(e["state"], e["cause"]) for e in evs if e["type"] == "power"]


def atx_events(evs):
    return [(e["switch"], e["closed"]) for e in evs if e["type"] == "atx"]


def console_out(evs):
    return "".join(e["text"] for e in evs if e["type"] == "console" and e["dir"] == "out")


def test_power_on_boots_and_off_refuses():
    u = Unit(power="off")
    try:
        check(power_events(u.ev()) == [("off", "start")], f"start: {u.ev()}")
        r = u.power("status")
        check(r.returncode == 0 and r.stdout == b"power: off\n", f"status: {r}")
        r = u.power("off")
        check(r.returncode == 0 and b"already off" in r.stdout, f"off on a stopped target: {r}")
        check(atx_events(u.ev()) == [], "off on a stopped target pressed something")
        r = u.power("on")
        check(r.returncode == 0, f"on: {r}")
        check(r.stdout == b"on: done; the target is now on\n", f"on said {r.stdout!r}")
        u.wait_event(lambda e: e["type"] == "console" and "login: " in e["text"], "login prompt")
        evs = u.ev()
        check(atx_events(evs) == [("power", True), ("power", False)], f"presses: {evs}")
        check(power_events(evs) == [("off", "start"), ("on", "button")], f"power: {evs}")
        check({"type": "usb", "connected": True} in evs, "the target never enumerated the HID")
        out = console_out(evs)
        check("Linux version" in out and out.endswith("okvm-target login: "), f"boot log {out!r}")
        r = u.power("on", "--json")
        j = json.loads(r.stdout)
        check(r.returncode == 0 and j == {"state": "on", "before": "on", "done": False,
              "message": "the target is already on (power LED lit): nothing pressed"}, f"{r}")
        check(len(atx_events(u.ev())) == 2, "on on a running target pressed the button")
    finally:
        u.stop()


def test_off_reset_force_off():
    u = Unit(power="on")
    try:
        check(power_events(u.ev()) == [("on", "start")], f"start: {u.ev()}")
        r = u.power("reset")
        check(r.returncode == 0, f"reset: {r}")
        u.wait_event(lambda e: e["type"] == "power" and e["cause"] == "reset", "reset")
        u.wait_event(lambda e: e["type"] == "console" and "login: " in e["text"], "reboot log")
        r = u.power("off")  # a short press: the OS shuts down
        check(r.returncode == 0, f"off: {r}")
        u.wait_event(lambda e: e["type"] == "power" and e["state"] == "off", "shutdown")
        check(power_events(u.ev())[-1] == ("off", "shutdown"), f"{power_events(u.ev())}")
        check("reboot: Power down" in console_out(u.ev()), "no shutdown log")
        r = u.power("reset")
        check(r.returncode == 0 and b"reset does nothing" in r.stdout, f"reset when off: {r}")
        u.power("on")
        r = u.power("force-off")  # held 5 s: off at the 4 s mark
        check(r.returncode == 0 and r.stdout == b"force-off: done; the target is now off\n",
              f"force-off: {r}")
        check(power_events(u.ev())[-1] == ("off", "force-off"), f"{power_events(u.ev())}")
        check(atx_events(u.ev())[-1] == ("power", False), "the power line was left pressed")
    finally:
        u.stop()


def test_hid_dropped_while_off():
    u = Unit(power="off")
    try:
        r = run(["--serial", u.link, "type", "ab"], timeout=30)
        check(r.returncode == 0, f"type: {r}")
        evs = u.ev()
        check(not [e for e in evs if e["type"] == "text"], f"a target that is off typed: {evs}")
        check({"type": "dropped", "report": "keyboard"} in evs, f"nothing dropped: {evs}")
        u.power("on")
        r = run(["--serial", u.link, "type", "ab"], timeout=30)
        check("".join(e["text"] for e in u.ev() if e["type"] == "text") == "ab",
              f"after power on: {u.ev()}")
    finally:
        u.stop()


def read_until(fd, want, timeout=5.0):
    out = b""
    end = time.monotonic() + timeout
    while want not in out:
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            fail(f"console: no {want!r} in {out!r}")
        chunk = os.read(fd, 4096)
        if not chunk:
            fail(f"console ended before {want!r}: {out!r}")
        out += chunk
    return out


def test_console_boot_log_and_login():
    u = Unit(power="off")
    log = os.path.join(u.dir.name, "console.log")
    con = subprocess.Popen([OKVM, "console", u.pins, "--log", log], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)  # the console has the adapter open
        r = u.power("on")
        check(r.returncode == 1 and b"busy" in r.stderr, f"power while a console holds it: {r}")
        # the console does not press anything: it leaves DTR/RTS released
        check(atx_events(u.ev()) == [], f"the console pressed a button: {u.ev()}")
        con.send_signal(signal.SIGTERM)
        check(con.wait(timeout=5) == 0, f"console exit {con.returncode}")
        con = subprocess.Popen([OKVM, "console", u.pins, "--log", log], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # the console holds the adapter, so the power button is pressed by hand (its line on
        # the adapter's modem socket)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b"DTR=1", u.pins + ".modem")
        time.sleep(0.2)
        s.sendto(b"DTR=0", u.pins + ".modem")
        out = read_until(con.stdout.fileno(), b"okvm-target login: ")
        check(b"Linux version" in out, f"no boot log on the console: {out!r}")
        con.stdin.write(b"root\r")
        con.stdin.flush()
        out = read_until(con.stdout.fileno(), b"root\r\nPassword: ")
        con.stdin.write(b"secret\r")
        con.stdin.flush()
        out = read_until(con.stdout.fileno(), b"Login incorrect\r\nokvm-target login: ")
        check(b"secret" not in out, "the password was echoed")
        con.send_signal(signal.SIGTERM)
        check(con.wait(timeout=5) == 0, f"console exit {con.returncode}")
        typed = "".join(e["text"] for e in u.ev() if e["type"] == "console" and e["dir"] == "in")
        check(typed == "root\rsecret\r", f"the target received {typed!r}")
        with open(log, "rb") as f:
            logged = f.read()
        check(b"Linux version" in logged and logged.endswith(b"okvm-target login: "),
              f"the log: {logged!r}")
    finally:
        if con.poll() is None:
            con.kill()
        u.stop()


def test_no_led_line_is_unknown():
    u = Unit(power="on")
    conf = os.path.join(u.dir.name, "okvm.conf")
    with open(conf, "w") as f:
        f.write("[power]\nled = none\npower_ms = 100\n")
    try:
        r = u.power("status", config=conf)
        check(r.returncode == 0 and r.stdout == b"power: unknown\n", f"status: {r}")
        r = u.power("on", config=conf)  # unknown: the press is made (and turns nothing on)
        check(r.returncode == 0 and b"done" in r.stdout, f"on: {r}")
        check(atx_events(u.ev()) == [("power", True), ("power", False)], f"{u.ev()}")
        with open(conf, "w") as f:
            f.write("[power]\nled = blue\n")
        r = u.power("status", config=conf)
        check(r.returncode == 2 and b"led takes dsr, cts, dcd" in r.stderr, f"bad led: {r}")
    finally:
        u.stop()


def test_press_while_another_runs():
    u = Unit(power="on")
    try:
        first = subprocess.Popen([OKVM, "power", "force-off", "--adapter", u.pins],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        u.wait_event(lambda e: e["type"] == "atx" and e["closed"], "the first press")
        r = u.power("on")
        check(r.returncode == 1 and b"busy" in r.stderr, f"a second press: {r}")
        first.send_signal(signal.SIGINT)  # interrupted: the line is released
        _, err = first.communicate(timeout=5)
        check(first.returncode == 1 and b"interrupted: DTR released" in err,
              f"interrupted press: {first.returncode} {err!r}")
        check(atx_events(u.ev()) == [("power", True), ("power", False)], f"{u.ev()}")
        check(power_events(u.ev()) == [("on", "start")], "a 5 s hold cut short still forced off")
    finally:
        u.stop()


def test_no_signal_while_off():
    r = run(["-d", "emu", "--emu-pins", "usb-serial", "--emu-power", "off", "screenshot", "-o",
             "/dev/null"], timeout=30)
    check(r.returncode == 1 and b"signal" in r.stderr.lower(), f"screenshot of an off target: {r}")
    r = run(["-d", "emu", "--emu-pins", "usb-serial", "--emu-power", "off", "--json", "info"],
            timeout=30)
    check(r.returncode == 0, f"info: {r}")
    j = json.loads(r.stdout)
    check(j["target_connected"] is False, f"an off target is connected: {j}")
    r = run(["-d", "emu", "--emu-pins", "usb-serial", "power", "status"], timeout=30)
    check(r.returncode == 0 and r.stdout == b"power: on\n", f"-d emu status: {r}")


def test_bad_usage():
    for args, msg in ((["power"], b"give one of"), (["power", "sideways"], b"is not status"),
                      (["--emu-pins", "relay", "-d", "emu", "info"], b"--emu-pins is"),
                      (["--emu-power", "maybe", "-d", "emu", "info"], b"--emu-power is"),
                      (["console", "--nope"], b"unknown option")):
        r = run(args, timeout=30)
        check(r.returncode == 2 and msg in r.stderr, f"{args}: {r}")
    r = run(["-d", "emu", "power", "on"], timeout=30)
    check(r.returncode == 1 and b"--emu-pins usb-serial" in r.stderr, f"no pins: {r}")


TESTS = [test_power_on_boots_and_off_refuses, test_off_reset_force_off, test_hid_dropped_while_off,
         test_console_boot_log_and_login, test_no_led_line_is_unknown, test_press_while_another_runs,
         test_no_signal_while_off, test_bad_usage]

if __name__ == "__main__":
    only = sys.argv[1:]
    for t in TESTS:
        if only and t.__name__ not in only:
            continue
        t()
        print("ok", t.__name__)
