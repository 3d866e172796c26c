#!/usr/bin/env python3
"""okvm type / okvm key through the real binary into the virtual unit.

The oracle is the virtual target's event stream: the text it decodes with its own layout, the
keys it holds, and the reports it never saw (`dropped`).
"""
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from okvmtest import (Emulator, check, dropped, keys_left_down, read_events, run,  # noqa: E402
                      typed_text)

LAYOUTS = ["us", "de", "fr", "gb", "es", "it", "se", "dk", "be", "ch", "jp", "us:dvorak",
           "us:intl", "ru", "cz", "pl", "no", "fi", "pt", "hu", "tr", "ch:fr", "ca"]


def charset(layout):
    r = run(["layouts", "--chars", layout])
    check(r.returncode == 0, f"layouts --chars {layout}: {r.stderr.decode()}")
    chars = r.stdout.decode("utf-8").rstrip("\n")
    check(len(chars) >= 40, f"{layout}: only {len(chars)} typeable characters?")
    return chars


def type_into(emu, text, *args, layout="us"):
    return emu.okvm("--baud", "115200", "--layout", layout, "type", *args, "-", input=text,
                    timeout=600)


def assert_exact(emu, text, what):
    ev = emu.events_list()
    got = typed_text(ev)
    check(got == text, f"{what}: target got {got!r}, expected {text!r}")
    check(not dropped(ev), f"{what}: {len(dropped(ev))} reports dropped")
    check(not keys_left_down(ev), f"{what}: keys left down {keys_left_down(ev)}")


# belief: the defaults: GET_INFO answered, ACKs sent, frames cut by LEN, DATAFLIP wired, 10 ms poll
def test_round_trip_layouts():
    rnd = random.Random(20261124)
    for layout in LAYOUTS:
        chars = charset(layout)
        # Every typeable character once, then a random string from the same set.
        pool = list(chars)
        rnd.shuffle(pool)
        text = "".join(pool) + "".join(rnd.choice(chars) for _ in range(60))
        # Layout correctness, not pacing (tested below): a fast target poll and a small gap.
        with Emulator("--baud", "115200", layout=layout, poll_ms=1) as emu:
            r = type_into(emu, text, "--report-gap-ms", "4", "--rate", "max", layout=layout)
            check(r.returncode == 0, f"{layout}: exit {r.returncode}: {r.stderr.decode()}")
            time.sleep(0.1)
            assert_exact(emu, text, f"layout {layout}")
        print(f"ok: {layout}: {len(text)} characters from a set of {len(chars)}")


# belief: the defaults: GET_INFO answered, ACKs sent, frames cut by LEN, DATAFLIP wired, 10 ms poll
def test_layout_mismatch_shows_on_target():
    # Typed for a US target, decoded by a German one: y and z swap, as on real hardware.
    with Emulator("--baud", "115200", layout="de") as emu:
        r = type_into(emu, "yz", layout="us")
        check(r.returncode == 0, r.stderr.decode())
        time.sleep(0.1)
        check(typed_text(emu.events_list()) == "zy", "mismatch not visible")


# belief: the defaults (GET_INFO answered, ACKs sent, LEN, DATAFLIP, 10 ms poll); LEDs in GET_INFO
def test_caps_lock():
    text = "Hello World, MiXeD case 123!"
    with Emulator("--baud", "115200") as emu:
        r = emu.okvm("--baud", "115200", "key", "capslock")
        check(r.returncode == 0, r.stderr.decode())
        ev = emu.events_list()
        leds = [e for e in ev if e["type"] == "leds"]
        check(leds and leds[-1]["caps"], "Caps Lock LED not on")
        r = type_into(emu, text)
        check(r.returncode == 0, r.stderr.decode())
        time.sleep(0.1)
        check(typed_text(emu.events_list()) == text, "compensate with Caps Lock on")
        r = type_into(emu, "abc", "--caps-lock", "refuse")
        check(r.returncode == 1 and b"Caps Lock" in r.stderr, "refuse must fail")
        before = len(emu.events_list())
        r = type_into(emu, "abc", "--caps-lock", "ignore")
        check(r.returncode == 0, r.stderr.decode())
        time.sleep(0.1)
        got = typed_text(emu.events_list()[before:])
        check(got == "ABC", f"ignore with Caps on gives {got!r}")


def test_unmappable_sends_nothing():
    with Emulator("--baud", "115200") as emu:
        r = type_into(emu, "price: 12€ or 10£")
        check(r.returncode == 2, f"exit {r.returncode}")
        msg = r.stderr.decode()
        check("U+20AC" in msg and "at 9" in msg and "'us'" in msg, f"message: {msg}")
        ev = emu.events_list()
        check(not [e for e in ev if e["type"] in ("key", "text")], "something was sent")
        r = type_into(emu, "price: 12€ or 10£", "--skip-unmappable")
        check(r.returncode == 0, r.stderr.decode())
        time.sleep(0.1)
        check(typed_text(emu.events_list()) == "price: 12 or 10", "skip-unmappable")


def test_empty_and_usage_errors():
    with Emulator("--baud", "115200") as emu:
        r = type_into(emu, "")
        check(r.returncode == 0, "empty text")
        for args in (["type"], ["type", "--rate", "fast", "x"], ["key", "ctrl+nosuchkey"],
                     ["--layout", "xx-nope", "type", "x"], ["key"]):
            r = emu.okvm("--baud", "115200", *args)
            check(r.returncode == 2, f"{args}: exit {r.returncode}")
            lines = r.stderr.decode().strip().splitlines()
            check(len(lines) == 1 and lines[0].startswith("okvm: "), f"{args}: {lines}")
        ev = emu.events_list()
        check(not [e for e in ev if e["type"] in ("key", "text")], "usage error sent keys")


# belief: the defaults: GET_INFO answered, ACKs sent, frames cut by LEN, DATAFLIP wired, 10 ms poll
def test_key_combos():
    with Emulator("--baud", "115200") as emu:
        r = emu.okvm("--baud", "115200", "key", "ctrl+alt+delete", "enter", "volume-up")
        check(r.returncode == 0, r.stderr.decode())
        time.sleep(0.1)
        ev = emu.events_list()
        downs = [e["usage"] for e in ev if e["type"] == "key" and e["down"]]
        check(downs[:3] == [0xE0, 0xE2, 0x4C], f"ctrl+alt+delete order {downs}")
        check(0x28 in downs, "enter")
        check(typed_text(ev) == "\n", f"text {typed_text(ev)!r}")
        media = [e for e in ev if e["type"] == "media"]
        check(media and media[0]["bits"][0] == 1 and media[-1]["bits"] == [0, 0, 0],
              f"volume-up {media}")
        check(not keys_left_down(ev), "keys left down")


# belief: ACKs sent
def test_sigterm_releases_all():
    text = "The quick brown fox jumps over the lazy dog. " * 20
    with Emulator("--baud", "115200") as emu:
        p = subprocess.Popen([os.environ.get("OKVM", "build/okvm"), "--serial", emu.link,
                              "--baud", "115200", "type", "--rate", "30", "-"],
                             stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdin.write(text.encode())
        p.stdin.close()
        # Wait until typing is under way, with a key held, then stop it.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(typed_text(emu.events_list())) < 10:
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=20)
        err = p.stderr.read().decode()
        p.stderr.close()
        check(rc == 1 and "released" in err, f"exit {rc}: {err}")
        time.sleep(0.1)
        ev = emu.events_list()
        got = typed_text(ev)
        check(0 < len(got) < len(text) and text.startswith(got), f"partial text {got!r}")
        check(not keys_left_down(ev), f"keys left down after SIGTERM: {keys_left_down(ev)}")


# belief: ACKs sent
def test_port_vanishes_mid_typing():
    text = "abcdefghij" * 40
    emu = Emulator("--baud", "115200")
    try:
        p = subprocess.Popen([os.environ.get("OKVM", "build/okvm"), "--serial", emu.link,
                              "--baud", "115200", "type", "--rate", "40", "-"],
                             stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdin.write(text.encode())
        p.stdin.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(typed_text(emu.events_list())) < 5:
            time.sleep(0.05)
    finally:
        emu.close()  # the unit goes away mid-typing
    rc = p.wait(timeout=30)
    err = p.stderr.read().decode()
    p.stderr.close()
    check(rc == 1, f"exit {rc}")
    # README: "Every failure prints one line on stderr" (the link's own, naming the port).
    lines = err.strip().splitlines()
    check(len(lines) == 1 and lines[0].startswith("okvm: ") and emu.link in lines[0],
          f"exactly one stderr line: {err!r}")
    # The next open recovers: a new unit at the same path works.
    with Emulator("--baud", "115200") as emu2:
        r = type_into(emu2, "ok")
        check(r.returncode == 0, r.stderr.decode())
        time.sleep(0.1)
        check(typed_text(emu2.events_list()) == "ok", "after re-plug")


# belief: GET_INFO answered (only at the chip's own baud)
def test_wrong_baud_fails_cleanly():
    with Emulator("--baud", "9600") as emu:
        r = emu.okvm("--baud", "115200", "type", "x", timeout=60)
        check(r.returncode == 1, f"exit {r.returncode}")
        check(b"okvm:" in r.stderr, r.stderr.decode())
        check(not [e for e in emu.events_list() if e["type"] in ("key", "text")], "sent keys")
        r = emu.okvm("type", "x", timeout=60)  # detection finds 9600
        check(r.returncode == 0, r.stderr.decode())


# belief: the defaults (GET_INFO answered, ACKs sent, LEN, DATAFLIP, 10 ms poll); factory 9600
def test_default_poll_no_loss_9600():
    text = "Typing at the default rate, 9600 baud, 10 ms target poll: nothing is lost."
    with Emulator() as emu:
        r = emu.okvm("type", "-", input=text, timeout=120)
        check(r.returncode == 0, r.stderr.decode())
        time.sleep(0.1)
        assert_exact(emu, text, "9600 default")


# belief: the defaults: GET_INFO answered, ACKs sent, frames cut by LEN, DATAFLIP wired, 10 ms poll
def test_in_process_unit():
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"okvm-it-{os.getpid()}.jsonl")
    try:
        r = run(["-d", "emu", "--emu-events", path, "type", "in-process"])
        check(r.returncode == 0, r.stderr.decode())
        ev = read_events(path)
        check(typed_text(ev) == "in-process", f"-d emu got {typed_text(ev)!r}")
        check(not keys_left_down(ev), "keys left down")
    finally:
        if os.path.exists(path):
            os.unlink(path)


# belief: the defaults: GET_INFO answered, ACKs sent, frames cut by LEN, DATAFLIP wired, 10 ms poll
def test_100k_from_stdin():
    rnd = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "okvm", "KVM", "Mini", "1234", "x=y;", "(a)"]
    text = ""
    while len(text) < 100 * 1024:
        text += " ".join(rnd.choice(words) for _ in range(12)) + "\n"
    # Fast target poll and a small gap so 100 KB fits in a test run; still no report may drop.
    with Emulator("--baud", "115200", poll_ms=1) as emu:
        t0 = time.monotonic()
        r = emu.okvm("--baud", "115200", "--report-gap-ms", "2", "type", "--rate", "max", "-",
                     input=text, timeout=900)
        dt = time.monotonic() - t0
        check(r.returncode == 0, r.stderr.decode())
        time.sleep(0.2)
        assert_exact(emu, text, "100 KB")
        print(f"ok: 100 KB in {dt:.1f} s ({len(text) / dt:.0f} chars/s)")


TESTS = [v for k, v in sorted(globals().items()) if k.startswith("test_")]

HEAVY = ("test_round_trip_layouts", "test_100k_from_stdin")  # meson runs these on their own

if __name__ == "__main__":
    only = sys.argv[1:]
    for t in TESTS:
        if only == ["rest"]:
            if t.__name__ in HEAVY:
                continue
        elif only and t.__name__ not in only:
            continue
        t0 = time.monotonic()
        t()
        print(f"ok: {t.__name__} ({time.monotonic() - t0:.1f} s)")
