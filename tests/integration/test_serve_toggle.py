"""okvm serve follows the unit's hardware USB toggle (issue 12 item 11), as `okvm switch follow`
does: the virtual unit's toggle is moved by okvm-rec on SIGWINCH; the port follows it within
about a second and every page hears of it; starting the server moves nothing; with
--no-follow-toggle the port stays where it is."""
import signal
import time

from serve_util import Server, check


def usb(s):
    return s.json("GET", "/api/state")[1]["usb"]


def wait_usb(s, want, secs=4.0):
    end = time.time() + secs
    while time.time() < end:
        if usb(s) == want:
            return True
        time.sleep(0.1)
    return False


with Server() as s:
    check(usb(s) == "host", "at start the port stays where it is (host)")
    time.sleep(1.5)
    check(usb(s) == "host" and not s.calls("switch"), "nothing switches while the toggle rests")
    s.proc.send_signal(signal.SIGWINCH)  # the toggle to the target side
    check(wait_usb(s, "target"), "the toggle moved to the target: the port follows")
    s.proc.send_signal(signal.SIGWINCH)
    check(wait_usb(s, "host"), "and back to the host: the port follows again")
    check(any(c.get("toggle") == "target" for c in s.calls("sim")), "the recorder moved it")
    err = s.errors()
    check(err.count("the hardware toggle moved") == 2,
          f"one notice line per move: {err.count('the hardware toggle moved')}")

with Server("--no-follow-toggle") as s:
    s.proc.send_signal(signal.SIGWINCH)
    time.sleep(2.5)
    check(usb(s) == "host", "--no-follow-toggle: the port stays at the host")
print("all checks passed")
