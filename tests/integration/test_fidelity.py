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


def test_back_forward_buttons():
    """Belief: a mouse has three buttons (CH9329-P draws bits 0..2). PiKVM and NanoKVM-USB send
    back/forward as bits 3 and 4: the CLI, the library and the virtual target carry them."""
    with Emulator("--emu-poll-ms", "1", "--baud", "115200") as emu:
        for name, bit in (("back", 8), ("forward", 16)):
            r = emu.okvm("--baud", "115200", "mouse", "click", name)
            check(r.returncode == 0, f"mouse click {name}: {r.stderr.decode()}")
        ev = wait_events(emu, lambda ev: [e["buttons"] for e in mice(ev)].count(0) >= 2)
        got = [e["buttons"] for e in mice(ev)]
        changes = [b for i, b in enumerate(got) if i == 0 or got[i - 1] != b]
        check(changes == [8, 0, 16, 0], f"back then forward pressed and released: {got}")
        r = emu.okvm("mouse", "click", "sideways")
        check(r.returncode == 2 and b"back or forward" in r.stderr, "bad button: usage names all")
        print("ok: mouse click back/forward reach the target as buttons 8 and 16")


def test_back_forward_web():
    """The same through okvm serve: WebSocket and REST MouseEvent.buttons bits 3 and 4."""
    import json
    import os
    import tempfile
    from serve_util import Server, WebSocket
    events = os.path.join(tempfile.mkdtemp(prefix="okvm-fid-"), "events.jsonl")
    with Server("--emu-events", events, "--emu-poll-ms", "1") as s:
        a = WebSocket(s.port)
        a.send({"type": "mouse", "x": 0.5, "y": 0.5, "buttons": 8})
        a.send({"type": "mouse", "x": 0.5, "y": 0.5, "buttons": 0})
        st, _ = s.json("POST", "/api/mouse", body=json.dumps({"x": 0.5, "y": 0.5, "buttons": 16}))
        check(st == 200, f"POST /api/mouse buttons 16: {st}")
        end = time.monotonic() + 5
        got = []
        while time.monotonic() < end:
            from okvmtest import read_events
            got = [e["buttons"] for e in read_events(events) if e["type"] == "mouse"]
            if 16 in got and got[-1] == 0:
                break
            time.sleep(0.05)
        check(8 in got and 16 in got, f"web buttons 8 and 16 reach the target: {got}")
        a.close()
    print("ok: WebSocket and REST buttons 8 (back) and 16 (forward) reach the target")


def info_json(emu, *extra):
    import json
    r = emu.okvm(*extra, "--json", "info")
    check(r.returncode == 0, f"info {extra}: rc {r.returncode}: {r.stderr.decode()}")
    return json.loads(r.stdout), r.stderr.decode()


def drive(emu, label, *extra):
    """type, key and mouse against the variant; the target gets each exactly."""
    r = emu.okvm(*extra, "type", "Hi")
    check(r.returncode == 0, f"{label}: type: {r.stderr.decode()}")
    r = emu.okvm(*extra, "key", "ctrl+a")
    check(r.returncode == 0, f"{label}: key: {r.stderr.decode()}")
    r = emu.okvm(*extra, "mouse", "move", "0.25", "0.75")
    check(r.returncode == 0, f"{label}: mouse: {r.stderr.decode()}")
    from okvmtest import dropped, typed_text
    ev = wait_events(emu, lambda ev: any(e["type"] == "mouse" for e in ev))
    check(typed_text(ev) == "Hi", f"{label}: typed {typed_text(ev)!r}")
    check(any(e["type"] == "key" and e["usage"] == 4 and e["down"] for e in ev),
          f"{label}: ctrl+a pressed")
    check(any(e["x"] == 1024 and e["y"] == 3072 for e in mice(ev)), f"{label}: moved")
    check(not dropped(ev), f"{label}: nothing dropped: {dropped(ev)}")


def test_variant_ch9329():
    """The default chip: GET_INFO answered, 50-byte GET_PARA_CFG, detected at 9600."""
    with Emulator("--emu-chip", "ch9329") as emu:
        drive(emu, "ch9329")
        info, _ = info_json(emu)
        check(info["baud"] == 9600 and info["target_connected"] is True,
              f"ch9329 info: {info}")
        check(info.get("usb") == "1a86:e129", f"ch9329 info reads the parameters: {info}")
        print("ok: ch9329: type/key/mouse exact, info at 9600")


def test_variant_ch9329f():
    """Belief: GET_PARA_CFG answers 50 bytes. A CH9329F answers 72 (One-KVM PR 302)."""
    with Emulator("--emu-chip", "ch9329f") as emu:
        drive(emu, "ch9329f")
        info, _ = info_json(emu)
        check(info.get("usb") == "1a86:e129" and "mode" in info,
              f"ch9329f: the 72-byte block is read: {info}")
        print("ok: ch9329f: the 72-byte GET_PARA_CFG is read; type/key/mouse exact")


def test_variant_ch32v208():
    """KVM-Go's CH32V208: fixed 115200, GET_INFO answered with version 0x82."""
    with Emulator("--emu-chip", "ch32v208") as emu:
        drive(emu, "ch32v208")
        info, _ = info_json(emu)
        check(info["baud"] == 115200, f"ch32v208 found at 115200: {info}")
        print("ok: ch32v208: found at 115200; type/key/mouse exact")


def test_variant_ch32v208_info_layouts():
    """Belief: GET_INFO carries the version in DATA[0] (CH9329-P). The macOS app also reads it
    from DATA[7] when DATA[0] is 0x00 and from DATA[3] when DATA[0] is 0x01 or 0x02: the virtual
    unit plays each (--emu-chip ch32v208-d7, -d3); okvm reads 0x82 from all three, so it knows a
    CH32V208 and refuses the factory reset it does not have."""
    for chip in ("ch32v208", "ch32v208-d7", "ch32v208-d3"):
        with Emulator("--emu-chip", chip) as emu:
            info, _ = info_json(emu)
            check(info["version"] == "0x82" and info["target_connected"] is True,
                  f"{chip}: info reads version 0x82: {info}")
            r = emu.okvm("factory-reset")
            check(r.returncode == 1 and b"CH32V208" in r.stderr,
                  f"{chip}: factory-reset refused for a CH32V208: {r.returncode} {r.stderr}")
    print("ok: ch32v208, -d7, -d3: GET_INFO's version read from DATA[0], [7] or [3]")


def test_variant_ch32v208_quiet():
    """Belief: GET_INFO is always answered. Some CH32V208 firmware ignores it (openterface-rs);
    the chip still ACKs HID reports. okvm opens anyway, says so, and input is exact."""
    with Emulator("--emu-chip", "ch32v208-quiet") as emu:
        t0 = time.monotonic()
        drive(emu, "ch32v208-quiet")
        took = time.monotonic() - t0
        check(took < 8, f"ch32v208-quiet: three commands took {took:.1f} s")
        r = emu.okvm("mouse", "move", "0.5", "0.5")
        err = r.stderr.decode()
        check(r.returncode == 0 and "does not answer GET_INFO" in err and "unknown" in err,
              f"ch32v208-quiet: a warning, then it works: rc {r.returncode}: {err}")
        info, _ = info_json(emu)
        check(info["target_connected"] is None and info["leds"] is None,
              f"ch32v208-quiet: --json info has null, not false: {info}")
        r = emu.okvm("info")
        out = r.stdout.decode()
        check(r.returncode == 0 and "unknown" in out and "not connected" not in out,
              f"ch32v208-quiet: info says unknown, not disconnected: {r.returncode} {out} "
              f"{r.stderr.decode()}")
        print("ok: ch32v208-quiet: opens without GET_INFO (unknown state), input exact")


def test_strict_gap():
    """Belief: the chip cuts frames by LEN, so back-to-back frames are fine (the official app
    writes so). The datasheet: a packet ends after 3 ms of idle line. Under --emu-strict-gap a
    frame arriving sooner corrupts both; okvm keeps the idle line, so it is exact either way,
    at 9600 where two reports are in flight back to back."""
    text = "The quick brown fox 0123456789"
    for extra in ((), ("--emu-strict-gap",)):
        with Emulator("--emu-poll-ms", "1", *extra) as emu:
            r = emu.okvm("--baud", "9600", "type", "--rate", "max", text)
            check(r.returncode == 0, f"strict gap {extra}: type: {r.stderr.decode()}")
            from okvmtest import dropped, typed_text
            ev = wait_events(emu, lambda ev: typed_text(ev) == text)
            check(typed_text(ev) == text, f"strict gap {extra}: typed {typed_text(ev)!r}")
            check(not dropped(ev), f"strict gap {extra}: dropped {dropped(ev)}")
    print("ok: typing at 9600 is exact with and without --emu-strict-gap")


def test_strict_gap_emu_corrupts():
    """--emu-strict-gap really corrupts frames sent back to back (so the test above can fail):
    two keyboard frames written in one go get one error reply and reach nobody."""
    import os
    import select
    import tty
    with Emulator("--emu-strict-gap", "--emu-poll-ms", "1", "--baud", "115200") as emu:
        fd = os.open(emu.link, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        import termios
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = termios.B115200
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        key_a = bytes.fromhex("57AB000208" "0000040000000000" "10")
        os.write(fd, key_a + key_a)
        got = b""
        end = time.monotonic() + 1
        while time.monotonic() < end and select.select([fd], [], [], 0.2)[0]:
            got += os.read(fd, 64)
        os.close(fd)
        check(got == bytes.fromhex("57AB00C201E4A9"), f"one ERR_SUM reply: {got.hex()}")
        ev = emu.events_list()
        check(not any(e["type"] == "key" for e in ev), f"nothing typed: {ev}")
    print("ok: --emu-strict-gap: back-to-back frames are one corrupt packet (E4)")


def test_variants_in_process():
    """The same variants with -d emu (the in-process unit takes the global --emu-* options)."""
    import json
    import os
    import tempfile
    from okvmtest import dropped, read_events, typed_text
    want = {"ch9329": (9600, True), "ch9329f": (9600, True), "ch32v208": (115200, True),
            "ch32v208-quiet": (115200, None)}
    for chip, (baud, connected) in want.items():
        d = tempfile.mkdtemp(prefix="okvm-fid-")
        events = os.path.join(d, "events.jsonl")
        base = ["-d", "emu", "--emu-chip", chip, "--emu-events", events, "--emu-strict-gap"]
        r = run(base + ["--json", "info"])
        check(r.returncode == 0, f"-d emu {chip} info: {r.stderr.decode()}")
        info = json.loads(r.stdout.splitlines()[0])
        check(info["baud"] == baud and info["target_connected"] is connected,
              f"-d emu {chip} info: {info}")
        r = run(base + ["type", "Hello"])
        ev = read_events(events)
        check(r.returncode == 0 and typed_text(ev) == "Hello" and not dropped(ev),
              f"-d emu {chip} type (strict gap): {r.stderr.decode()} {ev}")
    r = run(["-d", "emu", "--emu-chip", "ch9330", "info"])
    check(r.returncode == 2 and b"ch32v208-quiet" in r.stderr, "--emu-chip names the chips")
    print("ok: -d emu --emu-chip each variant: info exact, type exact under --emu-strict-gap")


TESTS = [v for k, v in sorted(globals().items()) if k.startswith("test_")]

if __name__ == "__main__":
    names = sys.argv[1:]
    for t in TESTS:
        if not names or t.__name__ in names:
            t()
