#!/usr/bin/env python3
"""`okvm switch` does its serial-port work, the DTR pulse after an MS2109 register write and the
CH32V208's command 0x17, on the unit's own link: -d emu, a recorded tree whose tty is missing,
and (in a mount namespace, root) recorded trees whose tty is a running `okvm emulate`."""
# belief: DTR low (the pulse); the CH32V208 answers 0x17
import json
import os
import sys
import tempfile

import unit_ns
from unit_ns import run

failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + (": " + str(detail) if not cond else ""))
    if not cond:
        failures.append(name)


def events(path):
    try:
        with open(path) as f:
            return [json.loads(x) for x in f.read().splitlines()]
    except FileNotFoundError:
        return []


def switch_events(evs):
    return [(e["type"], e.get("to", e.get("on"))) for e in evs
            if e["type"] in ("switch", "usb_power")]


def test_emu(hid):
    ev = os.path.join(hid, "events.jsonl")
    rc, out, err = run("two-mini-kvms", hid, "-d", "emu", "--emu-events", ev, "switch",
                       "target")
    check("-d emu switch target", rc == 0 and out == "usb switch: target\n", (rc, out, err))
    check("-d emu switch target: register, then the DTR pulse",
          switch_events(events(ev)) == [("switch", "target"), ("usb_power", False),
                                        ("usb_power", True)], events(ev))
    os.unlink(ev)
    rc, out, err = run("two-mini-kvms", hid, "-d", "emu", "--emu-events", ev, "switch",
                       "target", "--no-pulse")
    check("-d emu switch target --no-pulse", rc == 0 and out == "usb switch: target\n",
          (rc, out, err))
    check("--no-pulse: no DTR pulse", switch_events(events(ev)) == [("switch", "target")],
          events(ev))
    rc, out, err = run("two-mini-kvms", hid, "-d", "emu", "switch", "status")
    check("-d emu switch status", rc == 0 and out == "usb switch: host\ntoggle: host\n",
          (rc, out, err))


def test_missing_tty(hid):
    # the register is written, then the pulse finds no tty: the library's line, then switch's
    with open(os.path.join(hid, "hidraw0.state"), "w") as f:
        f.write("reg.0xDF01=0xA0\n")
    rc, out, err = run("mini-kvm-v1-9", hid, "switch", "target")
    check("pulse without a tty: exit 1, two lines",
          rc == 1 and out == "" and err.splitlines() == [
              "okvm: error: /dev/ttyUSB0: no such port; is the unit plugged in? see "
              "`okvm list`", "okvm: switch: No such file or directory"], (rc, out, err))
    with open(os.path.join(hid, "hidraw0.log")) as f:
        log = f.read().splitlines()
    check("pulse without a tty: the register was written first",
          log[-1] == "set 00 b6 df 01 a1 00 00 00 00", log[-1:])
    rc, out, err = run("mini-kvm-v1-9", hid, "switch", "status")
    check("status reads the MS2109 only (no tty needed)",
          rc == 0 and out.startswith("usb switch: target\n"), (rc, out, err))


def ns_ch32v208(hid):
    ev = os.path.join(hid, "go.jsonl")
    emu = unit_ns.Emulator("/dev/ttyACM0", ev, "--chip", "ch32v208", "--baud", "115200")
    try:
        rc, out, err = run("kvm-go-usb2", hid, "switch", "status")
        check("ns: KVM-Go switch status (0x17 query)", rc == 0 and out == "usb switch: host\n",
              (rc, out, err))
        rc, out, err = run("kvm-go-usb2", hid, "switch", "target")
        check("ns: KVM-Go switch target", rc == 0 and out == "usb switch: target\n",
              (rc, out, err))
        emu.event_lines('"switch"')
        check("ns: KVM-Go switch target: the CH32V208 moved it",
              switch_events(events(ev)) == [("switch", "target")], events(ev))
        rc, out, err = run("kvm-go-usb2", hid, "switch", "toggle")
        check("ns: KVM-Go switch toggle (query, then set, one link)",
              rc == 0 and out == "usb switch: host\n", (rc, out, err))
        emu.event_lines('"to":"host"')
        check("ns: KVM-Go toggle: back to the host",
              switch_events(events(ev)) == [("switch", "target"), ("switch", "host")],
              events(ev))
    finally:
        emu.close()


def ns_mini_kvm(hid):
    ev = os.path.join(hid, "mini.jsonl")
    emu = unit_ns.Emulator("/dev/ttyUSB1", ev)
    try:
        with open(os.path.join(hid, "hidraw1.state"), "w") as f:
            f.write("reg.0xDF01=0xA0\n")
        rc, out, err = run("two-mini-kvms", hid, "-d", "1-2", "switch", "target")
        check("ns: Mini-KVM 1-2 switch target", rc == 0 and out == "usb switch: target\n",
              (rc, out, err))
        emu.event_lines('"on":true')
        check("ns: the DTR pulse reached unit 1-2's CH340",
              switch_events(events(ev)) == [("usb_power", False), ("usb_power", True)],
              events(ev))
        with open(os.path.join(hid, "hidraw1.log")) as f:
            log = f.read().splitlines()
        check("ns: the register of unit 1-2 (hidraw1)",
              log[-1] == "set 00 b6 df 01 a1 00 00 00 00", log[-1:])
    finally:
        emu.close()


def in_namespace():
    unit_ns.fake_dev()
    for t in (ns_ch32v208, ns_mini_kvm):
        with tempfile.TemporaryDirectory() as hid:
            t(hid)
    return 1 if failures else 0


def main():
    if unit_ns.NS_FLAG in sys.argv:
        return in_namespace()
    for t in (test_emu, test_missing_tty):
        with tempfile.TemporaryDirectory() as hid:
            t(hid)
    if unit_ns.namespace_possible():
        check("in a mount namespace", unit_ns.run_in_namespace(__file__) == 0)
    else:
        print("skip: no private mount namespace here (not root?): units with a live tty "
              "are not tested")
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
