#!/usr/bin/env python3
"""okvm power through a USB HID relay board ([power] backend = hidrelay; issue 16), played by the
hidraw fake (tests/fakes/preload-hidraw.c with OKVM_FAKE_HIDRAW_ID=16c0:05df): the feature
reports okvm sends are byte-exact (report 0: 0xFF closes, 0xFD opens a channel; a state read
before and after), each channel is held for the configured time (the fake's report times), the
channel is open again at the end (also after SIGTERM mid-press), and a bad configuration or a
node that is not a relay board is refused with one line before anything is pressed."""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import OKVM, check, run  # noqa: E402

BUILD = os.environ.get("OKVM_BUILD", os.path.dirname(os.path.abspath(OKVM)))
TMP = tempfile.mkdtemp(prefix="okvm-hidrelay-")
NODE = "/dev/hidraw7"
LOG = os.path.join(TMP, "hidraw7.log")
STATE = os.path.join(TMP, "hidraw7.state")


def preload():
    fake = os.path.join(BUILD, "tests", "fakes", "libpreload-hidraw.so")
    ldd = subprocess.run(["ldd", OKVM], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        asan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                              text=True).stdout.strip()
        return asan + ":" + fake
    return fake


ENV = {"LD_PRELOAD": preload(), "OKVM_FAKE_HIDRAW_DIR": TMP, "OKVM_FAKE_HIDRAW_ID": "16c0:05df",
       "HOME": TMP, "XDG_CONFIG_HOME": TMP}


def conf(text, name="okvm.conf"):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


CONF = conf("[power]\nbackend = hidrelay\ndevice = %s\npower_channel = 2\nreset_channel = 1\n"
            "power_ms = 300\nreset_ms = 150\nforce_off_ms = 4000\ncycle_off_ms = 200\n" % NODE)


def power(*args, config=CONF):
    for p in (LOG,):
        if os.path.exists(p):
            os.unlink(p)
    return run(["power"] + list(args) + ["--config", config], env=ENV, timeout=60)


def reports():
    """[(dir, bytes hex, t ms)] the fake logged."""
    out = []
    if not os.path.exists(LOG):
        return out
    with open(LOG) as f:
        for line in f:
            w = line.split()
            out.append((w[0], " ".join(w[1:-1]), int(w[-1][2:])))
    return out


def frame(cmd, ch):
    return "00 %02x %02x 00 00 00 00 00 00" % (cmd, ch)


GET = "00 4f 4b 56 4d 31 00 00 00"  # report 0: serial "OKVM1", all channels open


def held(rs, ch):
    """The times channel ch was closed, in ms, from the log."""
    t_on = [t for d, b, t in rs if d == "set" and b == frame(0xFF, ch)]
    t_off = [t for d, b, t in rs if d == "set" and b == frame(0xFD, ch)]
    return [b - a for a, b in zip(t_on, t_off)]


def test_press_on_reset():
    r = power("on")
    check(r.returncode == 0, f"on: {r}")
    check(r.stdout == b"on: done (relay channel 2; the board has no power LED: state unknown)\n",
          f"on said {r.stdout!r}")
    rs = reports()
    check([(d, b) for d, b, _ in rs] == [("get", GET), ("set", frame(0xFF, 2)),
                                         ("set", frame(0xFD, 2)), ("get", GET)],
          f"the reports of on: {rs}")
    h = held(rs, 2)
    check(len(h) == 1 and 300 <= h[0] < 2000, f"power held {h} ms, configured 300")
    r = power("reset")
    check(r.returncode == 0, f"reset: {r}")
    rs = reports()
    check([(d, b) for d, b, _ in rs][1:3] == [("set", frame(0xFF, 1)), ("set", frame(0xFD, 1))],
          f"the reports of reset: {rs}")
    h = held(rs, 1)
    check(len(h) == 1 and 150 <= h[0] < 2000, f"reset held {h} ms, configured 150")
    r = power("status")
    check(r.returncode == 0 and r.stdout == b"power: unknown\n", f"status: {r}")


def test_off_is_a_short_press_and_cycle():
    r = power("off")
    check(r.returncode == 0, f"off: {r}")
    check(held(reports(), 2) and 300 <= held(reports(), 2)[0] < 2000, f"off {reports()}")
    r = power("cycle")
    check(r.returncode == 0, f"cycle: {r}")
    rs = reports()
    h = held(rs, 2)
    check(len(h) == 2 and 4000 <= h[0] < 6000 and 300 <= h[1] < 2000,
          f"cycle: force-off 4000 then on 300, held {h}")
    t_off1 = [t for d, b, t in rs if d == "set" and b == frame(0xFD, 2)][0]
    t_on2 = [t for d, b, t in rs if d == "set" and b == frame(0xFF, 2)][1]
    check(t_on2 - t_off1 >= 200, f"cycle: off for {t_on2 - t_off1} ms, configured 200")


def test_sigterm_mid_press_releases():
    if os.path.exists(LOG):
        os.unlink(LOG)
    p = subprocess.Popen([OKVM, "power", "force-off", "--config", CONF],
                         env=dict(os.environ, **ENV), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    end = time.monotonic() + 10
    while time.monotonic() < end and not any(b == frame(0xFF, 2) for _, b, _ in reports()):
        time.sleep(0.02)
    with open(STATE) as f:
        check(f.read() == "relays 02\n", "channel 2 closed during the press")
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=10)
    err = p.stderr.read().decode()
    check(p.returncode == 1 and "interrupted: relay channel 2 released" in err,
          f"SIGTERM: exit {p.returncode}: {err!r}")
    check([b for d, b, _ in reports() if d == "set"] == [frame(0xFF, 2), frame(0xFD, 2)],
          f"released: {reports()}")
    with open(STATE) as f:
        check(f.read() == "relays 00\n", "every channel open after SIGTERM")


def test_bad_config_and_not_a_relay():
    cases = (("[power]\nbackend = hidrelay\npower_channel = 9\n", 2, b"power_channel takes a "
              b"relay channel, 1 to 8, or 0 for none, not '9'"),
             ("[power]\nbackend = hidrelay\n", 1, b"backend hidrelay needs device = "
              b"/dev/hidrawN"),
             ("[power]\nbackend = hidrelay\ndevice = %s\nreset_channel = 0\n" % NODE, 1,
              b"no relay channel for the reset button"))
    for text, code, msg in cases:
        r = power("reset", config=conf(text, "bad.conf"))
        check(r.returncode == code and msg in r.stderr, f"{text!r}: {r}")
        check(not [x for x in reports() if x[0] == "set"], f"{text!r}: pressed {reports()}")
    os.unlink(STATE)
    env = dict(ENV, OKVM_FAKE_HIDRAW_ID="534d:2109")  # the video chip's node, not a relay
    r = run(["power", "on", "--config", CONF], env=env, timeout=30)
    check(r.returncode == 1 and r.stderr == b"okvm: power: /dev/hidraw7 is 534d:2109, not a "
          b"USB HID relay board (16c0:05df): check device in [power]\n", f"the chip's node: {r}")
    check(not [x for x in reports() if x[0] == "set"], f"the chip's node: sent {reports()}")


if __name__ == "__main__":
    for t in (test_press_on_reset, test_off_is_a_short_press_and_cycle,
              test_sigterm_mid_press_releases, test_bad_config_and_not_a_relay):
        t()
        print(f"ok {t.__name__}")
