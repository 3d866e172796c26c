#!/usr/bin/env python3
"""okvm media write on a discovered unit: a recorded Mini-KVM v1.9 tree (mini-kvm-extension: a
Cruzer Blade, /dev/sda, in the switchable port 7-1.3) with the hidraw fake for the MS2109 and,
in a private mount namespace (root), /dev a tmpfs where /dev/ttyUSB0 is a running `okvm
emulate` and /dev/sda a 16 MiB file standing for the stick. The write must find /dev/sda by
discovery, write the MS2109's switch register to the host and then to the target (the fake's
log), pulse DTR after each (the emulator's events), and leave /dev/sda holding the image; a
--disk elsewhere is refused."""
import hashlib
import json
import os
import sys
import tempfile

import unit_ns
from unit_ns import run

failures = []
STICK = 16 * 1024 * 1024


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + (": " + str(detail) if not cond else ""))
    if not cond:
        failures.append(name)


def pulses(path):
    try:
        with open(path) as f:
            evs = [json.loads(x) for x in f.read().splitlines()]
    except FileNotFoundError:
        return []
    return [e["on"] for e in evs if e["type"] == "usb_power"]


def ns_write(hid):
    ev = os.path.join(hid, "ev.jsonl")
    for node in ("/dev/sda", "/dev/sdb"):
        with open(node, "wb") as f:
            f.truncate(STICK)
    data = os.urandom(2 * 1000 * 1000 + 7)
    image = os.path.join(hid, "image.img")
    with open(image, "wb") as f:
        f.write(data)
    with open(os.path.join(hid, "hidraw0.state"), "w") as f:
        f.write("reg.0xDF01=0xA1\n")  # the port at the target, as the stick boots it
    emu = unit_ns.Emulator("/dev/ttyUSB0", ev)
    try:
        rc, out, err = run("mini-kvm-extension", hid, "media", "status")
        check("status: the stick discovery lists in the port",
              rc == 0 and "medium: /dev/sda\n" in out and "size: 16777216 bytes" in out,
              (rc, out, err))
        rc, out, err = run("mini-kvm-extension", hid, "media", "write", image, "--disk",
                           "/dev/sdb")
        check("--disk elsewhere is refused", rc == 1 and
              "/dev/sdb is not the medium in unit 7-1's switchable port (/dev/sda)" in err,
              (rc, out, err))
        with open("/dev/sdb", "rb") as f:
            check("the refused device is untouched", f.read() == bytes(STICK))
        rc, out, err = run("mini-kvm-extension", hid, "media", "write", image)
        check("media write on the discovered unit", rc == 0 and
              f"verified: sha256 {hashlib.sha256(data).hexdigest()}" in out, (rc, out, err))
        with open("/dev/sda", "rb") as f:
            check("/dev/sda holds the image", f.read(len(data)) == data)
        with open(os.path.join(hid, "hidraw0.log")) as f:
            sets = [x for x in f.read().splitlines() if x.startswith("set 00 b6 df 01")]
        check("the switch register: host, then target",
              [s.split()[5] for s in sets[-2:]] == ["a0", "a1"], sets)
        emu.event_lines('"on":true')
        check("a DTR pulse after each switch (and the refused write's)",
              pulses(ev)[-4:] == [False, True, False, True], pulses(ev))
    finally:
        emu.close()


def in_namespace():
    unit_ns.fake_dev()
    with tempfile.TemporaryDirectory() as hid:
        ns_write(hid)
    return 1 if failures else 0


def main():
    if unit_ns.NS_FLAG in sys.argv:
        return in_namespace()
    if not unit_ns.namespace_possible():
        print("skip: no private mount namespace here (not root?)")
        return 77
    check("in a mount namespace", unit_ns.run_in_namespace(__file__) == 0)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
