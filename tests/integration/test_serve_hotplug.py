#!/usr/bin/env python3
"""okvm serve survives the unit going away and coming back: the keyboard/mouse link is re-opened
without a restart. The unit is `okvm emulate` on a tty link: stopping it is an unplug (the pty
closes), starting a new one at the same path a re-plug."""
# belief: GET_INFO answered (the re-open's probe); ACKs sent
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from okvmtest import Emulator, typed_text  # noqa: E402
from serve_util import Server, check, passed  # noqa: E402


def wait_state(s, pred, what, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st, r = s.json("GET", "/api/state")
        if st == 200 and pred(r):
            return r
        time.sleep(0.1)
    check(False, f"{what}: state never matched")


def wait_text(emu, want, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if typed_text(emu.events_list()) == want:
            return
        time.sleep(0.05)
    check(False, f"target got {typed_text(emu.events_list())!r}, want {want!r}")


link = os.path.join(tempfile.mkdtemp(prefix="okvm-hotplug-"), "tty")
first = Emulator(link=link)
with Server("--serial", link, backend=[]) as s:
    wait_state(s, lambda r: r["target"]["connected"], "connected at start")
    st, r = s.json("POST", "/api/type", body=b"one")
    check(st in (200, 202), f"type before the unplug: {st} {r}")
    wait_text(first, "one")
    passed("typing reaches the first unit")

    first.close()  # unplug
    wait_state(s, lambda r: not r["target"]["connected"], "the unplug is seen")
    st, r = s.json("POST", "/api/type", body=b"lost")
    check(st >= 400, f"typing while unplugged is refused ({st})")
    passed("the unplug is seen and input is refused meanwhile")

    second = Emulator(link=link)  # re-plug, same path
    try:
        wait_state(s, lambda r: r["target"]["connected"], "the re-plug is seen")
        st, r = s.json("POST", "/api/type", body=b"two")
        check(st in (200, 202), f"type after the re-plug: {st} {r}")
        wait_text(second, "two")
        check(s.proc.poll() is None, "the server kept running")
        passed("after the re-plug the same server types on the new unit")
    finally:
        second.close()
