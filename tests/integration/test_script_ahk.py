#!/usr/bin/env python3
"""okvm script FILE.ahk: the official Qt app's Script Tool language (its docs' examples, written
out here) against the virtual unit, with --emu-events as the oracle: key usages in order,
modifiers as their own key events, mouse positions in the Qt app's 0..4096 units, wheel steps,
LED changes. Bad scripts are refused with FILE:LINE:COL before anything is sent; a Wait*
timeout exits 3 and saves FILE.timeout.jpg; a script killed mid-run releases everything."""
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(__file__))
from okvmtest import OKVM, check, keys_left_down, read_events, run, typed_text  # noqa: E402

TMP = tempfile.mkdtemp(prefix="okvm-ahk-")
CTRL, SHIFT, ALT, WIN = 224, 225, 226, 227


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def ahk(text, *args, name="t.ahk", timeout=120):
    """Run text as FILE.ahk on -d emu; return (CompletedProcess, events, path)."""
    path = write(name, text)
    ev = os.path.join(TMP, "events.jsonl")
    if os.path.exists(ev):
        os.unlink(ev)
    r = run(["-d", "emu", "--emu-events", ev, "script"] + list(args) + [path], timeout=timeout)
    return r, read_events(ev), path


def keys(events):
    return [(e["usage"], e["down"]) for e in events if e["type"] == "key"]


def mouse(events):
    """Mouse reports up to the release at the end (the last all-up ones are the exit's)."""
    return [(e["x"], e["y"], e["buttons"], e["wheel"]) for e in events if e["type"] == "mouse"]


def tap(usage, *mods):
    """One key pressed and released with modifiers held around it."""
    return ([(m, True) for m in mods] + [(usage, True), (usage, False)] +
            [(m, False) for m in reversed(mods)])


def ok(r):
    check(r.returncode == 0, f"exit {r.returncode}: {r.stderr.decode()}")


def until_release(m):
    """Drop the trailing all-up reports of the exit path."""
    while len(m) > 1 and m[-1][2] == 0 and m[-1][3] == 0 and m[-1][:2] == m[-2][:2] \
            and m[-2][2] == 0:
        m = m[:-1]
    return m


def test_doc_example():
    """docs/script_tool.md's example script: Ctrl+A, Ctrl+C, a click at (150, 300), captures."""
    region, full = os.path.join(TMP, "region.png"), os.path.join(TMP, "full.png")
    r, ev, _ = ahk("Sleep 500\n; select all and copy\nSend ^a\nSend ^c\nSleep 200\n"
                   "; move and click absolute position\nClick 150,300\nSleep 100\n"
                   "; capture area and full screen\n"
                   f'AreaScreenCapture 100,100,800,600 "{region}"\nFullScreenCapture "{full}"\n')
    ok(r)
    check(keys(ev) == tap(4, CTRL) + tap(6, CTRL), f"keys {keys(ev)}")
    check(until_release(mouse(ev)) == [(150, 300, 1, 0), (150, 300, 0, 0)],
          f"mouse {mouse(ev)}")
    for path, size in ((region, (800, 600)), (full, None)):
        with open(path, "rb") as f:
            data = f.read()
        check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is no PNG")
        w, h = struct.unpack(">II", data[16:24])
        check(size is None or (w, h) == size, f"{path}: {w}x{h}")
        check(size is not None or (w, h) == (1920, 1080), f"{path}: {w}x{h}")
    check(not keys_left_down(ev), "keys left down")


def test_send_guide():
    """The Send syntax guide's examples (scripts/Send...md): modifier prefixes, braces, escapes."""
    r, ev, _ = ahk('Send "^+s"          ; Ctrl+Shift+S\n'
                   'Send "!{F4}"\nSend "+{Tab}"\nSend "#d"\nSend "^!{Delete}"\n'
                   'Send "^{Enter}"\nSend "^+{Home}"\n')
    ok(r)
    want = (tap(0x16, CTRL, SHIFT) + tap(0x3D, ALT) + tap(0x2B, SHIFT) + tap(0x07, WIN) +
            tap(0x4C, CTRL, ALT) + tap(0x28, CTRL) + tap(0x4A, CTRL, SHIFT))
    check(keys(ev) == want, f"keys {keys(ev)}\nwant {want}")

    r, ev, _ = ahk('Send "{Enter}"\nSend "{Tab}"\nSend "{Space}"\nSend "{Backspace}{BS}"\n'
                   'Send "{Delete}{Del}"\nSend "{Escape}{Esc}"\n'
                   'Send "{Up}{Down}{Left}{Right}"\nSend "{F1}"\nSend "{F12}"\n'
                   'Send "{Home}{End}{PgUp}{PgDn}{Insert}{Ins}"\n')
    ok(r)
    usages = [0x28, 0x2B, 0x2C, 0x2A, 0x2A, 0x4C, 0x4C, 0x29, 0x29, 0x52, 0x51, 0x50, 0x4F,
              0x3A, 0x45, 0x4A, 0x4D, 0x4B, 0x4E, 0x49, 0x49]
    check(keys(ev) == sum((tap(u) for u in usages), []), f"keys {keys(ev)}")

    r, ev, _ = ahk('Send "hello"\nSend "test123"\nSend "Hello"\nSend "+h+e+l+l+o"\n'
                   'Send "email"\nSend "`!"           ; ! by its escape\nSend "example.com"\n'
                   "Send a``b`#`^`+`n\nSend Hello{Enter}\nSend ^a^b\n")
    ok(r)
    check(typed_text(ev) == "hellotest123HelloHELLOemail!example.coma`b#^+\nHello\n",
          f"text {typed_text(ev)!r}")
    check(keys(ev)[-8:] == tap(4, CTRL) + tap(5, CTRL), f"^a^b: {keys(ev)[-8:]}")
    check(not keys_left_down(ev), "keys left down")


def test_keys_down_up_repeat():
    """AutoHotkey's {Key down}/{Key up}, {Key N}, {Click x, y} inside Send, Qt key names."""
    r, ev, _ = ahk("Send {Shift down}ab{Shift up}{Left 3}{Exclam}\n"
                   "Send {LCtrl down}{F5}{LCtrl up}{Numpad7}{Volume_Up}\n"
                   "Send {Click 2048, 1024}\n")
    ok(r)
    want = ([(SHIFT, True)] + tap(4) + tap(5) + [(SHIFT, False)] + tap(0x50) * 3 +
            tap(0x1E, SHIFT) + [(CTRL, True)] + tap(0x3E) + [(CTRL, False)] + tap(0x5F))
    check(keys(ev) == want, f"keys {keys(ev)}\nwant {want}")
    check(typed_text(ev) == "AB!", f"text {typed_text(ev)!r}")
    media = [e["bits"] for e in ev if e["type"] == "media"]
    check(media[:2] == [[1, 0, 0], [0, 0, 0]], f"media {media}")
    check(until_release(mouse(ev)) == [(2048, 1024, 1, 0), (2048, 1024, 0, 0)],
          f"mouse {mouse(ev)}")


def test_mouse():
    """Click's forms from the Qt docs and AutoHotkey's; MouseMove; Scroll in steps of 2."""
    r, ev, _ = ahk("MouseMove 4096, 4096\nClick\nClick 100,200\nClick 100,200, Right, 2\n"
                   "Click 0 0 Middle\nMouseMove 2048, 2048\nClick down\nMouseMove 3000, 100\n"
                   "Click up\nScroll up\nScroll down, 3\nClick WheelUp\n")
    ok(r)
    want = [(4096, 4096, 0, 0), (4096, 4096, 1, 0), (4096, 4096, 0, 0),
            (100, 200, 1, 0), (100, 200, 0, 0),
            (100, 200, 2, 0), (100, 200, 0, 0), (100, 200, 2, 0), (100, 200, 0, 0),
            (0, 0, 4, 0), (0, 0, 0, 0),
            (2048, 2048, 0, 0), (2048, 2048, 1, 0), (3000, 100, 1, 0), (3000, 100, 0, 0),
            (3000, 100, 0, 2), (3000, 100, 0, -2), (3000, 100, 0, -2), (3000, 100, 0, -2),
            (3000, 100, 0, 1)]
    got = until_release(mouse(ev))
    check(got == want, f"mouse {got}\nwant {want}")


def test_lock_states():
    """Set*LockState reads the LEDs first: On twice presses Caps Lock once; Off when off: none."""
    r, ev, _ = ahk("SetCapsLockState On\nSetCapsLockState On\nSend ab\nSetCapsLockState Off\n"
                   "SetScrollLockState Off\nSetNumLockState Toggle\nSetNumLockState On\n")
    ok(r)
    k = keys(ev)
    check(k.count((0x39, True)) == 2, f"caps presses {k}")
    check((0x47, True) not in k, f"scroll lock pressed though off: {k}")
    check(k.count((0x53, True)) == 1, f"num lock presses {k}")
    leds = [(e["num"], e["caps"], e["scroll"]) for e in ev if e["type"] == "leds"]
    check(leds == [(False, True, False), (False, False, False), (True, False, False)],
          f"leds {leds}")
    check(typed_text(ev) == "ab", f"text with caps on: {typed_text(ev)!r}")


def test_extensions():
    """okvm's Type (the layout engine), Switch and SetKeyDelay."""
    r, ev, _ = ahk('Type "Grüße, y", 200\nSwitch target\nSwitch host\n', "--layout", "de",
                   name="ext.ahk")
    check(r.returncode == 0, r.stderr.decode())
    check(typed_text(ev) == "Grüße, y", f"text {typed_text(ev)!r}")
    sw = [e["to"] for e in ev if e["type"] == "switch"]
    check(sw[-2:] == ["target", "host"], f"switch {sw}")


def test_power():
    """Power through the adapter on the virtual unit's pins, as `okvm power` drives it."""
    r, ev, _ = ahk("Send a\nPower reset\n", "--emu-pins", "usb-serial")
    ok(r)
    atx = [(e["switch"], e["closed"]) for e in ev if e["type"] == "atx"]
    check(atx == [("reset", True), ("reset", False)], f"atx {atx}")
    check(typed_text(ev) == "a", f"text {typed_text(ev)!r}")


def test_bad_input():
    """Refused before anything is sent: no events at all, exit 2, FILE:LINE:COL: expected."""
    cases = [
        ("Frobnicate 1\n", 1, "unknown statement 'Frobnicate'"),
        ("Sleep\n", 1, "expected Sleep MILLISECONDS"),
        ("Sleep 100, 200\n", 12, "too many arguments"),
        ("AreaScreenCapture 1, 2, 3\n", 1, "too few arguments"),
        ("Scroll sideways\n", 8, "expected up or down"),
        ('Send "abc\n', 6, "expected '\"' to close the string"),
        ('WaitText "login:, 5\n', 10, "expected '\"' to close the string"),
        ("Send {Enter\n", 6, "expected '}' to close the key name"),
        ("Send {Entr}\n", 7, "unknown key name 'Entr'"),
        ("Send x{^c}\n", 8, "unknown key name '^c'"),
        ("Send ^\n", 6, "expected a key after the modifier '^'"),
        ("Click 5000, 10\n", 7, "expected x in 0..4096"),
        ("MouseMove 10, 4097\n", 15, "expected y in 0..4096"),
        ("Click 100\n", 7, "expected y after x"),
        ("Click 1, 2, Sideways\n", 13, "expected x, y, Left, Right"),
        ("SetCapsLockState Maybe\n", 18, "expected On, Off or Toggle"),
        ("Loop 3\n", 1, "no control flow"),
        ("Send €\n", 6, "layout us cannot type U+20AC"),
        ("/* never closed\n", 1, "expected */"),
    ]
    for text, col, why in cases:
        r, ev, path = ahk('Send "never sent"\n' + text)
        line = 2
        err = r.stderr.decode()
        check(r.returncode == 2, f"{text!r}: exit {r.returncode}: {err}")
        check(err.startswith(f"{path}:{line}:{col}: "), f"{text!r}: {err}")
        check(why in err, f"{text!r}: {err}")
        check(ev == [], f"{text!r}: the target saw {ev}")
    r, ev, path = ahk('Send "never sent"\nPower cycle\n')
    check(r.returncode == 1 and f"{path}:2:1: Power cycle needs a power backend"
          in r.stderr.decode(), f"Power: exit {r.returncode}: {r.stderr.decode()}")
    check(not keys(ev) and not mouse(ev), f"Power: the target saw {ev}")


def test_dry_run_and_formats():
    r, ev, path = ahk("Send ^c\nClick 10, 20\nSleep 5\n", "--dry-run")
    ok(r)
    out = r.stdout.decode()
    check("1:7: char 'c' with ControlLeft" in out and "2:1: mouse to 10,20 of 4096 buttons 1"
          in out and "3:1: sleep 5 ms" in out, out)
    check(ev == [], f"--dry-run sent {ev}")
    # --format ahk on any name; --format okvm takes a .ahk as okvm commands
    r, ev, _ = ahk("Send Hi\n", "--format", "ahk", name="t.txt")
    check(r.returncode == 0 and typed_text(ev) == "Hi", f"{r.stderr.decode()} {ev}")
    r, ev, _ = ahk('type "ok"\n', "--format", "okvm", name="u.ahk")
    check(r.returncode == 0 and typed_text(ev) == "ok", f"{r.stderr.decode()} {ev}")
    r, _, _ = ahk("Send Hi\n", "--format", "qt")
    check(r.returncode == 2 and "--format qt" in r.stderr.decode(), r.stderr.decode())


def png(path, w, h, rgb):
    raw = b"".join(b"\x00" + bytes(rgb) * w for _ in range(h))

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_timeouts():
    """A Wait* that times out exits 3 and leaves the screen beside the script."""
    needle = os.path.join(TMP, "needle.png")
    png(needle, 24, 24, (255, 0, 255))
    r, _, path = ahk('WaitScreen "needle.png", 1, 0.99\nSend never\n', name="wait.ahk")
    shot = os.path.join(TMP, "wait.timeout.jpg")
    check(r.returncode == 3, f"WaitScreen: exit {r.returncode}: {r.stderr.decode()}")
    check(f"{path}:1:1: WaitScreen" in r.stderr.decode() and shot in r.stderr.decode(),
          r.stderr.decode())
    with open(shot, "rb") as f:
        check(f.read(2) == b"\xff\xd8", "the timeout screenshot is no JPEG")
    os.unlink(shot)
    r, ev, path = ahk('WaitText "NO SUCH TEXT ANYWHERE", 1, 0, 0, 640, 120\n', name="text.ahk")
    if "OCR is not available" in r.stderr.decode():
        print("skip WaitText: " + r.stderr.decode().strip())
        return
    check(r.returncode == 3, f"WaitText: exit {r.returncode}: {r.stderr.decode()}")
    check(os.path.exists(os.path.join(TMP, "text.timeout.jpg")), "no text.timeout.jpg")


def test_killed_mid_run():
    """SIGINT or SIGTERM while keys and a button are held: every one of them is released."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        killed(sig)


def killed(sig):
    path = write("kill.ahk", "Send {Shift down}{a down}\nClick 500, 600 Down\nSleep 60000\n")
    ev = os.path.join(TMP, "kill.jsonl")
    if os.path.exists(ev):
        os.unlink(ev)
    p = subprocess.Popen([OKVM, "-d", "emu", "--emu-events", ev, "script", path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while time.time() < deadline:
        if any(e["type"] == "mouse" and e["buttons"] == 1 for e in read_events(ev)):
            break
        time.sleep(0.05)
    else:
        p.kill()
        check(False, "the script never pressed the button")
    p.send_signal(sig)
    _, err = p.communicate(timeout=30)
    events = read_events(ev)
    check(p.returncode == 1, f"exit {p.returncode}: {err.decode()}")
    check(f"interrupted by signal {int(sig)}" in err.decode(), err.decode())
    check(keys(events)[:2] == [(SHIFT, True), (4, True)], f"keys {keys(events)}")
    check(not keys_left_down(events), f"keys left down: {keys_left_down(events)}")
    m = mouse(events)
    check(m[-1][2] == 0, f"button left down: {m}")


def main():
    try:
        for name, fn in sorted(globals().items()):
            if name.startswith("test_") and (len(sys.argv) < 2 or name in sys.argv[1:]):
                fn()
                print(f"ok {name}")
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
