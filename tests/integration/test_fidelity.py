#!/usr/bin/env python3
"""Real-device fidelity (issue 12): okvm against the virtual unit playing each variant where the
upstream sources disagree. Each check names the belief it covers (docs/link.md, "Beliefs and
variants"). Run with a section name to run only it."""
import sys
import time

from okvmtest import Emulator, check, fail, run

EMU_EVENTS_WAIT = 3.0


def wait_events(emu, pred, timeout=EMU_EVENTS_WAIT):
    end = time.monotonic() + timeout
    while True:
        ev = emu.events_list()
        if pred(ev) or time.monotonic() > end:
            return ev
        time.sleep(0.02)


def mice(ev):
    return [e for e in ev if e["type"] == "mouse"]


def test_detected_9600_mouse():
    """Belief: a factory unit runs at 9600 and okvm finds it by detection (115200 probe first,
    which times out). That probe is not a report the chip failed to acknowledge."""
    with Emulator("--emu-poll-ms", "1") as emu:
        r = emu.okvm("mouse", "move", "0.5", "0.5")
        err = r.stderr.decode()
        check(r.returncode == 0, f"mouse move, detected 9600: rc {r.returncode}: {err}")
        ev = wait_events(emu, lambda ev: mice(ev))
        check(any(e["x"] == 2048 and e["y"] == 2048 for e in mice(ev)), f"moved: {ev}")
        print("ok: mouse move at a detected 9600 baud exits 0 (detection probe not counted)")


TESTS = [v for k, v in sorted(globals().items()) if k.startswith("test_")]

if __name__ == "__main__":
    names = sys.argv[1:]
    for t in TESTS:
        if not names or t.__name__ in names:
            t()
