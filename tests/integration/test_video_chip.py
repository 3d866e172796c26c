#!/usr/bin/env python3
"""`okvm chip` against each answer to two beliefs the upstream sources leave open (hardware.md
3.1, 3.2; docs/virtual-unit.md "Video chip variants"):
- "the MS2109S/MS2130S echo command and address in their answers" (QT and CORE read byte 4 of any
  answer): the virtual chip with and without the echo, in-process (-d emu --emu-video-chip) and
  behind a discovered hidraw node (the hidraw fake's state file);
- "an MS2109S reports half the mode above 189 MHz, as the MS2109 does" (QT corrects the MS2109
  only): a 4K input reads 3840x2160 whether the chip halves or not."""
# belief: register echo, both ways; halved above 189 MHz, both ways
import json
import os
import subprocess
import sys
import tempfile

import unit_ns

OKVM = os.environ["OKVM"]
failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + (": " + str(detail) if not cond else ""))
    if not cond:
        failures.append(name)


def emu_chip(*args):
    p = subprocess.run([OKVM, "-d", "emu", "--json", "chip", *args], capture_output=True,
                       text=True, timeout=30, env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    return p.returncode, (json.loads(p.stdout)["video_chip"] if p.returncode == 0 else p.stderr)


for spec, kind in (("ms2109", "MS2109"), ("ms2109-noecho", "MS2109"), ("ms2130s", "MS2130S"),
                   ("ms2130s-noecho", "MS2130S"), ("ms2109s-noecho", "MS2109S")):
    rc, v = emu_chip("--emu-video-chip", spec, "--emu-video", "1280x720@60")
    check("-d emu %s: chip reads" % spec, rc == 0 and v["chip"] == kind and
          v["firmware"] == "24081309" and (v["width"], v["height"]) == (1280, 720), v)

for spec in ("ms2109s", "ms2109s-halves", "ms2109"):
    rc, v = emu_chip("--emu-video-chip", spec, "--emu-video", "3840x2160@30")
    check("-d emu %s 4K: 3840x2160" % spec,
          rc == 0 and (v["width"], v["height"]) == (3840, 2160), v)

rc, v = emu_chip("--emu-video-chip", "ms2130s-echo")
check("bad --emu-video-chip: usage", rc == 2 and "--emu-video-chip" in v, v)

for echo in ("0", "1"):
    with tempfile.TemporaryDirectory() as hid:
        with open(os.path.join(hid, "hidraw0.state"), "w") as f:
            f.write("chip=ms2130s\necho=%s\nfw=25022713\nmode=1920x1080@60\n" % echo)
        rc, out, err = unit_ns.run("kvm-go-usb2", hid, "--json", "chip")
        v = json.loads(out)["video_chip"] if rc == 0 else err
        check("KVM-Go hidraw, echo=%s: chip reads" % echo,
              rc == 0 and v["chip"] == "MS2130S" and v["firmware"] == "25022713" and
              v["width"] == 1920, v)

print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
