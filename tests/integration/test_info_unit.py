#!/usr/bin/env python3
"""`okvm info` resolves its unit once: one sysfs scan, one "N units found" line, and the CH9329
link and the video chip it reports belong to that one unit (discovery, -d emu). With a
namespace (root), the discovered unit's tty is a running `okvm emulate`, so info succeeds."""
# belief: GET_INFO answered; register echo
import json
import os
import subprocess
import sys
import tempfile

import unit_ns
from unit_ns import run

failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + (": " + str(detail) if not cond else ""))
    if not cond:
        failures.append(name)


def test_discovered_tree(hid):
    # two units and no -d: the first is taken, and said so once; its tty is not there
    for args in (["-v", "info"], ["-v", "--json", "info"]):
        rc, out, err = run("two-mini-kvms", hid, *args)
        what = " ".join(args)
        check("%s: 'units found' once" % what, err.count("2 units found; using 1-2") == 1, err)
        check("%s: fails on the first unit's tty" % what,
              rc == 1 and "/dev/ttyUSB1" in err and out == "", (rc, out, err))
    rc, out, err = run("two-mini-kvms", hid, "info")
    check("info without -v: one line, naming the tty",
          rc == 1 and err.count("\n") == 1 and "/dev/ttyUSB1" in err, err)
    rc, out, err = run("two-mini-kvms", hid, "-d", "9", "info")
    check("-d 9 info: no such unit, one line",
          rc == 1 and "no such unit" in err and err.count("\n") == 1, err)
    with tempfile.TemporaryDirectory() as empty:
        os.makedirs(os.path.join(empty, "bus/usb/devices"))
        e = dict(os.environ, OKVM_SYSFS_ROOT=empty)
        p = subprocess.run([unit_ns.OKVM, "info"], env=e, capture_output=True, text=True,
                           timeout=30)
        check("no unit: info suggests -d emu, one line",
              p.returncode == 1 and "-d emu" in p.stderr and p.stderr.count("\n") == 1,
              p.stderr)


def test_emu(hid):
    rc, out, err = run("two-mini-kvms", hid, "-v", "-d", "emu", "info")
    check("-d emu info: exit 0", rc == 0, err)
    check("-d emu info: no scan", "units found" not in err, err)
    check("-d emu info: CH9329 and the virtual MS2109",
          "chip:    CH9329 V1.8" in out and "baud:    9600" in out and
          "video chip:   MS2109 on (virtual), firmware 24081309" in out, out)
    rc, out, err = run("two-mini-kvms", hid, "-d", "emu", "--json", "info")
    d = json.loads(out) if rc == 0 else {}
    check("-d emu --json info: one object with the video chip",
          d.get("version") == "V1.8" and d.get("video_chip", {}).get("node") == "(virtual)" and
          d["video_chip"].get("chip") == "MS2109", out + err)


def in_namespace():
    """The discovered unit 1-2 of two-mini-kvms, its tty answered by okvm emulate."""
    unit_ns.fake_dev()
    with tempfile.TemporaryDirectory() as hid:
        emu = unit_ns.Emulator("/dev/ttyUSB1", os.path.join(hid, "events.jsonl"))
        try:
            rc, out, err = run("two-mini-kvms", hid, "-v", "info")
            check("ns: info exit 0", rc == 0, err)
            check("ns: 'units found' once", err.count("units found") == 1, err)
            check("ns: the unit's CH9329", "chip:    CH9329" in out and
                  "target:  connected" in out, out)
            check("ns: the same unit's video chip (hidraw1 of 1-2)",
                  "video chip:   MS2109 on /dev/hidraw1, firmware" in out, out)
            rc, out, err = run("two-mini-kvms", hid, "-d", "2", "info")
            check("ns: -d 2 is unit 3-3, whose tty is not there",
                  rc == 1 and "/dev/ttyUSB0" in err and out == "", (rc, out, err))
            rc, out, err = run("two-mini-kvms", hid, "--json", "-d", "1-2", "info")
            d = json.loads(out) if rc == 0 else {}
            check("ns: -d 1-2 --json: link and video chip of one unit",
                  d.get("chip") == "CH9329" and d.get("baud") == 9600 and
                  d.get("video_chip", {}).get("node") == "/dev/hidraw1", out + err)
        finally:
            emu.close()
    return 1 if failures else 0


def main():
    if unit_ns.NS_FLAG in sys.argv:
        return in_namespace()
    for t in (test_discovered_tree, test_emu):
        with tempfile.TemporaryDirectory() as hid:
            t(hid)
    if unit_ns.namespace_possible():
        check("in a mount namespace", unit_ns.run_in_namespace(__file__) == 0)
    else:
        print("skip: no private mount namespace here (not root?): the discovered unit "
              "with a live tty is not tested")
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
