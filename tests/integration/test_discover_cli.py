#!/usr/bin/env python3
"""okvm list / chip / switch against recorded sysfs trees (OKVM_SYSFS_ROOT) and the hidraw fake
(tests/fakes/preload-hidraw.c, answering with the MS2109 register model)."""
# belief: register echo (the hidraw fake's MS2109 echoes command and address)
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

OKVM = os.environ["OKVM"]
SRC = os.environ["OKVM_SRC"]
failures = []

# The sysfs tree, the hidraw fake and how okvm runs against them are the unit tests' too.
sys.path.insert(0, os.path.dirname(__file__))
from unit_ns import BUILD, FAKE, FIX, env_for, preload  # noqa: E402,F401


def run(fixture, hid, *args):
    p = subprocess.run([OKVM, *args], env=env_for(fixture, hid), capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


def check(name, cond, detail=""):
    if not cond:
        failures.append("%s: %s" % (name, detail))
        print("FAIL", name, detail)
    else:
        print("ok  ", name)


def state(hid, text, node="hidraw0"):
    with open(os.path.join(hid, node + ".state"), "w") as f:
        f.write(text)


def read_log(hid, node="hidraw0"):
    try:
        with open(os.path.join(hid, node + ".log")) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def reset_log(hid, node="hidraw0"):
    try:
        os.unlink(os.path.join(hid, node + ".log"))
    except FileNotFoundError:
        pass


def test_list(hid):
    rc, out, err = run("mini-kvm-extension", hid, "list", "--json")
    units = json.loads(out)
    check("list exit 0", rc == 0, err)
    check("list one unit", len(units) == 1, out)
    u = units[0]
    check("list fields", (u["variant"], u["port_chain"], u["serial"], u["hidraw"], u["video"],
                          u["audio"]) == ("Mini-KVM", "7-1", "/dev/ttyUSB0", "/dev/hidraw0",
                                          "/dev/video0", "hw:1"), u)
    check("list firmware over hidraw", u["firmware"] == "24081309", u)
    check("list extension device", u["extension"] == [{
        "port_chain": "7-1.4", "id": "0403:6001", "product": "FT232R USB UART",
        "driver": "ftdi_sio", "node": "/dev/ttyUSB1",
        "role": "USB-serial adapter: console + power lines"}], u["extension"])
    check("list switchable device", u["switchable"][0]["node"] == "/dev/sda", u["switchable"])
    rc, out, err = run("mini-kvm-extension", hid, "list")
    check("list text names the extension device",
          rc == 0 and "extension   7-1.4  0403:6001 FT232R USB UART" in out, out)
    check("list text says what the adapter on the pins is for",
          "/dev/ttyUSB1  (USB-serial adapter: console + power lines)\n" in out, out)

    rc, out, err = run("mini-kvm-foreign-ch340", hid, "list", "--json")
    units = json.loads(out)
    check("foreign CH340 not taken", [u["serial"] for u in units] == ["/dev/ttyUSB2"], out)

    rc, out, err = run("mini-kvm-no-hidraw", hid, "list", "--json")
    u = json.loads(out)[0]
    check("no hidraw: unit still listed", u["hidraw"] is None and u["serial"] == "/dev/ttyUSB0",
          u)
    check("no hidraw: firmware says why", u["firmware"] is None and
          u["firmware_error"] == "no hidraw node", u)

    open(os.path.join(hid, "hidraw0.deny"), "w").close()
    rc, out, err = run("mini-kvm-v1-9", hid, "list", "--json")
    u = json.loads(out)[0]
    check("hidraw EACCES: listed with the reason", rc == 0 and
          "permission" in u.get("firmware_error", ""), u)
    rc, out, err = run("mini-kvm-v1-9", hid, "chip")
    check("hidraw EACCES: chip fails with the fix", rc == 1 and "60-okvm.rules" in err and
          err.count("\n") == 1, err)
    os.unlink(os.path.join(hid, "hidraw0.deny"))

    rc, out, err = run("kvm-go-usb3", hid, "list", "--json")
    u = json.loads(out)[1]
    check("KVM-Go USB3 grouped", (u["variant"], u["port_chain"], u["serial"]) ==
          ("KVM-Go", "2-1.1", "/dev/ttyACM0"), u)

    with tempfile.TemporaryDirectory() as empty:
        os.makedirs(os.path.join(empty, "bus/usb/devices"))
        e = dict(os.environ, OKVM_SYSFS_ROOT=empty)
        p = subprocess.run([OKVM, "list", "--json"], env=e, capture_output=True, text=True)
        check("no unit: empty JSON list", p.returncode == 0 and json.loads(p.stdout) == [],
              p.stdout + p.stderr)
        p = subprocess.run([OKVM, "chip"], env=e, capture_output=True, text=True)
        check("no unit: chip suggests -d emu", p.returncode == 1 and "-d emu" in p.stderr,
              p.stderr)


def test_select(hid):
    for spec, chain in (("1", "1-2"), ("2", "3-3"), ("3-3", "3-3"), ("1-2.2", "1-2"),
                        ("/dev/ttyUSB0", "3-3"), ("/dev/hidraw1", "1-2")):
        rc, out, err = run("two-mini-kvms", hid, "-d", spec, "chip", "--json")
        got = json.loads(out)["port_chain"] if rc == 0 else err
        check("-d %s" % spec, got == chain, got)
    rc, out, err = run("two-mini-kvms", hid, "-d", "9", "chip")
    check("-d 9 fails", rc == 1 and "no such unit" in err, err)


def test_chip(hid):
    state(hid, "mode=3840x2160@30\npclk=29700\ntoggle=target\n")
    rc, out, err = run("mini-kvm-v1-9", hid, "chip", "--json")
    c = json.loads(out)["video_chip"]
    check("chip 4K normalised", (c["width"], c["height"], c["fps"], c["signal"]) ==
          (3840, 2160, 30, True), c)
    check("chip toggle/switch", (c["toggle"], c["usb_switch"]) == ("target", "host"), c)
    state(hid, "signal=0\n")
    rc, out, err = run("mini-kvm-v1-9", hid, "chip")
    check("chip no signal", rc == 0 and "no signal" in out, out)


def test_switch(hid):
    state(hid, "reg.0xDF01=0xA0\n")
    reset_log(hid)
    rc, out, err = run("mini-kvm-v1-9", hid, "switch", "target", "--no-pulse")
    check("switch target", rc == 0 and out.strip() == "usb switch: target", out + err)
    log = read_log(hid)
    check("switch read-modify-write bytes", log[-3:] == [
        "set 00 b5 df 01 00 00 00 00 00", "get 00 b5 df 01 a0 00 00 00 00",
        "set 00 b6 df 01 a1 00 00 00 00"], log[-3:])
    rc, out, err = run("mini-kvm-v1-9", hid, "switch", "status")
    check("switch status after", rc == 0 and "usb switch: target" in out, out)
    rc, out, err = run("mini-kvm-v1-9", hid, "switch", "toggle", "--no-pulse")
    check("switch toggle", rc == 0 and out.strip() == "usb switch: host", out + err)
    rc, out, err = run("mini-kvm-v1-9", hid, "switch", "sideways")
    check("switch usage", rc == 2 and err.startswith("okvm: "), err)

    state(hid, "fw=24071201\n")
    reset_log(hid)
    rc, out, err = run("mini-kvm-v1-9", hid, "switch", "target", "--no-pulse")
    log = read_log(hid)
    check("old firmware uses bit 4", rc == 0 and log[-1] == "set 00 b6 df 01 10 00 00 00 00",
          log[-1:])


def readline(p, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([p.stdout], [], [], end - time.monotonic())
        if r:
            return p.stdout.readline().strip()
    return None


def test_follow(hid):
    state(hid, "toggle=target\n")
    p = subprocess.Popen([OKVM, "switch", "follow", "--no-pulse"],
                         env=env_for("mini-kvm-v1-9", hid), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = readline(p, 10)
        check("follow mirrors the toggle (target)", line == "usb switch: target", line)
        # move the hardware toggle back; the state file is reread before every register write
        with open(os.path.join(hid, "hidraw0.state")) as f:
            text = f.read().replace("reg.0xDF00=0x01\n", "")
        state(hid, text)
        line = readline(p, 10)
        check("follow mirrors the toggle (host)", line == "usb switch: host", line)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = None
    check("follow ends on SIGTERM with 0", rc == 0, rc)


def main():
    for t in (test_list, test_select, test_chip, test_switch, test_follow):
        with tempfile.TemporaryDirectory() as hid:
            t(hid)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
