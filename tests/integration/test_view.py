#!/usr/bin/env python3
"""okvm view under Xvfb, end to end (issue 15 item 1).

An Xvfb of our own (-fbdir: its screen is an XWD file we read back, no screenshot tool needed),
okvm view in it, xdotool (XTEST) as the user. The oracles: the virtual target's --emu-events
(usages byte-exact, chip coordinates), the X screen's pixels against `okvm screenshot` of the
same frame decoded by ffmpeg (a decoder okvm did not write), an X keyboard grab tried from a
second client (libX11 through ctypes), and the window title.
Exit 0 = pass, 1 = fail, 77 = skipped (no Xvfb / xdotool)."""
import ctypes
import ctypes.util
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

OKVM = os.environ.get("OKVM", "build/okvm")
BUILD = os.environ.get("OKVM_BUILD", "build")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import read_events, typed_text, keys_left_down  # noqa: E402

FAILS = []
LOCKS = {0x39, 0x53, 0x47}  # Caps, Num, Scroll Lock: the viewer may tap them to sync LEDs


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def wait_for(fn, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


class Xvfb:
    def __init__(self, tmp, w=1280, h=800):
        self.fbdir = os.path.join(tmp, "fb")
        os.mkdir(self.fbdir)
        r, wfd = os.pipe()
        self.proc = subprocess.Popen(
            ["Xvfb", "-displayfd", str(wfd), "-screen", "0", "%dx%dx24" % (w, h), "-fbdir",
             self.fbdir, "-nolisten", "tcp", "-noreset"], pass_fds=(wfd,),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(wfd)
        num = b""
        while not num.endswith(b"\n"):
            c = os.read(r, 1)
            if not c:
                raise RuntimeError("Xvfb did not start")
            num += c
        os.close(r)
        self.display = ":" + num.decode().strip()

    def screen(self):
        """(width, height, bytes BGRX rows) of the screen, from Xvfb's XWD framebuffer."""
        d = open(os.path.join(self.fbdir, "Xvfb_screen0"), "rb").read()
        h = struct.unpack(">25I", d[:100])
        hsize, w, hh, bpl, ncolors = h[0], h[4], h[5], h[12], h[19]
        assert h[11] == 32 and h[7] == 0, "want 32 bpp LSBFirst"
        off = hsize + 12 * ncolors
        return w, hh, bpl, d[off:off + bpl * hh]

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


# Under ASan: SDL_Init opens a D-Bus connection and SDL 2.26's SDL_Quit never calls
# dbus_shutdown, so libdbus's own allocations outlive the process (not okvm's to free: the
# suppression below). And the software renderer's window surface would go through Mesa's
# libGL, which SDL unloads at exit with its allocations unreachable and their stacks unknown;
# okvm view sets SDL's hint FRAMEBUFFER_ACCELERATION=0 itself, which keeps Mesa out (the pixels
# are the same: software either way), so the environment here does not set it: under ASan a
# viewer that forgot the hint fails every test on Mesa's leaks.
LSAN_SUPP = os.path.join(tempfile.mkdtemp(prefix="okvm-view-lsan-"), "lsan.supp")
with open(LSAN_SUPP, "w") as f:
    f.write("leak:libdbus-1.so\n")


def env_for(x, okvm=False):
    e = dict(os.environ)
    if okvm:
        e["LSAN_OPTIONS"] = "suppressions=%s:print_suppressions=0" % LSAN_SUPP
    e["DISPLAY"] = x.display
    e["SDL_VIDEODRIVER"] = "x11"
    e["SDL_RENDER_DRIVER"] = "software"  # the same pixels on every machine
    e.pop("WAYLAND_DISPLAY", None)
    return e


def xdo(x, *args, check_rc=True):
    p = subprocess.run(["xdotool"] + list(args), env=env_for(x), capture_output=True,
                       text=True, timeout=20)
    if check_rc and p.returncode:
        raise RuntimeError("xdotool %s: %s" % (args, p.stderr))
    return p.stdout.strip()


def host(x, key):
    """The host key (Right Ctrl) with another key, as a person presses them: through XTEST
    directly (libXtst by ctypes), because xdotool adds Left Ctrl to any key it sends while
    it sees the Control modifier down."""
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    xtst = ctypes.CDLL(ctypes.util.find_library("Xtst") or "libXtst.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XStringToKeysym.restype = ctypes.c_ulong
    x11.XStringToKeysym.argtypes = [ctypes.c_char_p]
    x11.XKeysymToKeycode.restype = ctypes.c_ubyte
    x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    xtst.XTestFakeKeyEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int,
                                       ctypes.c_ulong]
    dpy = x11.XOpenDisplay(x.display.encode())
    assert dpy, "XOpenDisplay"
    hk = x11.XKeysymToKeycode(dpy, x11.XStringToKeysym(b"Control_R"))
    kc = x11.XKeysymToKeycode(dpy, x11.XStringToKeysym(key.encode()))
    for code, down in ((hk, 1), (kc, 1), (kc, 0), (hk, 0)):
        xtst.XTestFakeKeyEvent(dpy, code, down, 0)
        x11.XFlush(dpy)
        time.sleep(0.02)
    x11.XCloseDisplay(dpy)


class View:
    def __init__(self, x, args, env=None):
        self.x = x
        e = env_for(x, okvm=True)
        e.update(env or {})
        self.proc = subprocess.Popen([OKVM] + args, env=e,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.wid = wait_for(lambda: xdo(x, "search", "--name", "^okvm view", check_rc=False)
                            .split("\n")[0], timeout=20)
        if not self.wid:
            self.proc.kill()
            raise RuntimeError("no window: " + self.proc.communicate()[1].decode())

    def title(self):
        return xdo(self.x, "getwindowname", self.wid)

    def geometry(self):
        g = dict(kv.split("=") for kv in xdo(self.x, "getwindowgeometry", "--shell",
                                             self.wid).split())
        return int(g["X"]), int(g["Y"]), int(g["WIDTH"]), int(g["HEIGHT"])

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, err.decode(errors="replace")


def jpeg_rgb(path, w, h):
    """The JPEG as RGB24 bytes, decoded by ffmpeg."""
    p = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt",
                        "rgb24", "-"], capture_output=True, check=True)
    assert len(p.stdout) == w * h * 3, "ffmpeg gave %d bytes" % len(p.stdout)
    return p.stdout


def region_rgb(x, gx, gy, w, h):
    sw, sh, bpl, px = x.screen()
    out = bytearray(w * h * 3)
    for row in range(h):
        src = px[(gy + row) * bpl + gx * 4:(gy + row) * bpl + (gx + w) * 4]
        o = row * w * 3
        out[o:o + w * 3:3] = src[2::4]
        out[o + 1:o + w * 3:3] = src[1::4]
        out[o + 2:o + w * 3:3] = src[0::4]
    return bytes(out)


def diff_stats(a, b):
    d = sorted(abs(p - q) for p, q in zip(a, b))
    return sum(d) / len(d), d[int(len(d) * 0.99)]


def test_picture(x, tmp):
    """The window shows the frame okvm screenshot saves, within JPEG tolerance."""
    pics = os.path.join(tmp, "pics")
    os.mkdir(pics)
    subprocess.run([os.path.join(BUILD, "tests", "fakes", "make-testpics"), pics, "p", "640",
                    "360", "2"], check=True)
    one = os.path.join(tmp, "one")
    os.mkdir(one)
    shutil.copy(os.path.join(pics, "p00.jpg"), one)
    shot = os.path.join(tmp, "shot.jpg")
    subprocess.run([OKVM, "-d", "frames:" + one, "screenshot", "-o", shot], check=True,
                   capture_output=True)
    trace = os.path.join(tmp, "trace")
    v = View(x, ["-d", "frames:" + one + "@10", "view", "--scale", "1:1"],
             {"OKVM_VIEW_TRACE": trace})
    try:
        wait_for(lambda: "640x360" in v.title(), timeout=10)
        time.sleep(0.5)
        gx, gy, w, h = v.geometry()
        check((w, h) == (640, 360), "picture: the window opens at the frame's size (%dx%d)"
              % (w, h))
        got = region_rgb(x, gx, gy, 640, 360)
        want = jpeg_rgb(shot, 640, 360)
        mean, p99 = diff_stats(got, want)
        check(mean < 4 and p99 < 40, "picture: window == okvm screenshot within JPEG "
              "tolerance (mean |diff| %.2f, p99 %d)" % (mean, p99))
        other = jpeg_rgb(os.path.join(pics, "p01.jpg"), 640, 360)
        omean, _ = diff_stats(got, other)
        check(omean > 3 * max(mean, 1), "picture: and clearly not another frame (mean %.2f)"
              % omean)
        # the overlay (host key + O) draws over the top left of the picture
        xdo(x, "windowfocus", "--sync", v.wid)
        host(x, "o")
        time.sleep(0.5)
        over = region_rgb(x, gx + 16, gy + 16, 200, 40)
        # hidden (unmapped), nothing is decoded; shown again, frames come back
        def shown():
            return len(open(trace).read().splitlines())
        xdo(x, "windowunmap", "--sync", v.wid)
        time.sleep(0.5)
        n0 = shown()
        time.sleep(1.0)
        check(shown() == n0, "hidden: no frame decoded or presented while unmapped (%d -> %d)"
              % (n0, shown()))
        xdo(x, "windowmap", "--sync", v.wid)
        wait_for(lambda: shown() >= n0 + 5, timeout=5)
        check(shown() >= n0 + 5, "hidden: mapped again, frames are shown again")
        under = b"".join(want[((16 + r) * 640 + 16) * 3:((16 + r) * 640 + 216) * 3]
                         for r in range(40))
        check(diff_stats(over, under)[0] > 20, "overlay: host+O shows it over the picture")
    finally:
        rc, err = v.stop()
        check(rc == 0, "picture: SIGTERM ends okvm view with 0 (%d %s)" % (rc, err.strip()))


def x11_keyboard_grabbable(x):
    """Can a second X client grab the keyboard? (False while okvm view holds the grab.)"""
    lib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    lib.XOpenDisplay.restype = ctypes.c_void_p
    lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    lib.XDefaultRootWindow.restype = ctypes.c_ulong
    lib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    lib.XGrabKeyboard.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int,
                                  ctypes.c_int, ctypes.c_ulong]
    lib.XUngrabKeyboard.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = lib.XOpenDisplay(x.display.encode())
    assert dpy, "XOpenDisplay"
    root = lib.XDefaultRootWindow(dpy)
    rc = lib.XGrabKeyboard(dpy, root, 0, 1, 1, 0)  # GrabModeAsync, CurrentTime
    if rc == 0:
        lib.XUngrabKeyboard(dpy, 0)
    lib.XCloseDisplay(dpy)
    return rc == 0


def key_events(path):
    return [(e["usage"], e["down"]) for e in read_events(path)
            if e["type"] == "key" and e["usage"] not in LOCKS]


def mouse_events(path):
    return [e for e in read_events(path) if e["type"] == "mouse"]


def test_input(x, tmp):
    ev = os.path.join(tmp, "ev.jsonl")
    shotdir = os.path.join(tmp, "shots")
    os.mkdir(shotdir)
    v = View(x, ["-d", "emu", "--emu-events", ev, "--emu-video", "640x360@30", "view",
                 "--screenshot-dir", shotdir])
    try:
        wait_for(lambda: "640x360" in v.title(), timeout=10)
        xdo(x, "windowfocus", "--sync", v.wid)
        wait_for(lambda: "grabbed" in v.title(), timeout=5)
        check("grabbed" in v.title(), "grab: focused, the keyboard is grabbed (%r)" % v.title())
        check(not x11_keyboard_grabbable(x), "grab: another X client cannot grab the keyboard")

        xdo(x, "type", "--delay", "30", "hello")
        wait_for(lambda: typed_text(read_events(ev)) == "hello" and len(key_events(ev)) >= 10)
        check(typed_text(read_events(ev)) == "hello", "keys: xdotool 'hello' types hello")
        check(key_events(ev) == [(0x0B, True), (0x0B, False), (0x08, True), (0x08, False),
                                 (0x0F, True), (0x0F, False), (0x0F, True), (0x0F, False),
                                 (0x12, True), (0x12, False)],
              "keys: usages byte-exact: 0B 08 0F 0F 12, each down then up")
        n0 = len(key_events(ev))
        # each press and release on its own, so the order is ours, not xdotool's
        xdo(x, "keydown", "Alt_L", "key", "Tab", "keyup", "Alt_L",
            "keydown", "Super_L", "key", "e", "keyup", "Super_L", "key", "F5", "key", "KP_Enter",
            "keydown", "Control_L", "keydown", "Shift_L", "key", "Escape", "keyup", "Shift_L",
            "keyup", "Control_L")
        want = [(0xE2, True), (0x2B, True), (0x2B, False), (0xE2, False),
                (0xE3, True), (0x08, True), (0x08, False), (0xE3, False),
                (0x3E, True), (0x3E, False), (0x58, True), (0x58, False),
                (0xE0, True), (0xE1, True), (0x29, True), (0x29, False), (0xE1, False),
                (0xE0, False)]
        wait_for(lambda: len(key_events(ev)) >= n0 + len(want))
        check(key_events(ev)[n0:] == want, "keys: Alt+Tab, Super+E, F5, KP Enter, Ctrl+Shift+"
              "Esc reach the target as E2+2B, E3+08, 3E, 58, E0+E1+29 (%s)"
              % key_events(ev)[n0:])
        check(0xE4 not in [u for u, _ in key_events(ev)], "host key: Right Ctrl never sent")

        # the mouse: absolute, the picture fills the 640x360 window
        xdo(x, "mousemove", "--window", v.wid, "160", "90")
        xdo(x, "click", "1")
        m = wait_for(lambda: [e for e in mouse_events(ev) if e["buttons"] == 1])
        check(m and (m[0]["x"], m[0]["y"]) == (1024, 1024),
              "mouse: a click at (160,90) of 640x360 is chip (1024,1024), left (%s)"
              % (m[:1],))
        for button, bit in ((3, 2), (2, 4), (8, 8), (9, 16)):
            xdo(x, "click", str(button))
            m = wait_for(lambda: [e for e in mouse_events(ev) if e["buttons"] == bit])
            check(bool(m), "mouse: X button %d is CH9329 button bit 0x%02x" % (button, bit))
        for button, wheel in ((4, 1), (5, -1)):
            xdo(x, "click", str(button))
            m = wait_for(lambda: [e for e in mouse_events(ev) if e["wheel"] == wheel])
            check(bool(m), "mouse: X button %d is wheel %+d" % (button, wheel))
        # letterbox: a wider window puts 80-pixel bars left and right of the 640x360 picture
        xdo(x, "windowsize", "--sync", v.wid, "800", "360")
        time.sleep(0.3)
        nm = len(mouse_events(ev))
        xdo(x, "mousemove", "--window", v.wid, "400", "180")
        wait_for(lambda: len(mouse_events(ev)) > nm)
        last = mouse_events(ev)[-1]
        check((last["x"], last["y"]) == (2048, 2048),
              "letterbox: the window's centre is the picture's centre (%s)" % last)
        xdo(x, "mousemove", "--window", v.wid, "20", "180")
        wait_for(lambda: mouse_events(ev)[-1]["x"] == 0)
        check(mouse_events(ev)[-1]["x"] == 0, "letterbox: a point in the bar is the edge, 0")
        xdo(x, "mousemove", "--window", v.wid, "200", "180")
        wait_for(lambda: mouse_events(ev)[-1]["x"] == 768)
        check(mouse_events(ev)[-1]["x"] == 768,
              "letterbox: x=200 is (200-80)/640 of the picture, chip 768 (%s)"
              % mouse_events(ev)[-1])

        # the host key alone releases the grab; again takes it
        xdo(x, "key", "Control_R")
        wait_for(lambda: "grabbed" not in v.title())
        check("grabbed" not in v.title(), "host key: Right Ctrl alone releases the grab (%r)"
              % v.title())
        check(x11_keyboard_grabbable(x), "host key: another X client can grab the keyboard now")
        xdo(x, "key", "Control_R")
        wait_for(lambda: "grabbed" in v.title())
        check(not x11_keyboard_grabbable(x), "host key: pressed again, the grab is back")

        # paste: host key + V types the clipboard in the target layout
        text = "Paste me: 42!"
        clip = subprocess.Popen(["xclip", "-selection", "clipboard", "-i", "-quiet"],
                                stdin=subprocess.PIPE, env=env_for(x),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        clip.stdin.write(text.encode())
        clip.stdin.close()
        time.sleep(0.3)
        before = typed_text(read_events(ev))
        host(x, "v")
        wait_for(lambda: typed_text(read_events(ev)) == before + text, timeout=20)
        check(typed_text(read_events(ev)) == before + text,
              "paste: host+V types the clipboard (%r)" % typed_text(read_events(ev))[-20:])
        wait_for(lambda: "pasted" in v.title())
        check("pasted %d characters" % len(text) in v.title(), "paste: the title says so (%r)"
              % v.title())
        clip.terminate()
        # the overlay's keys: D is Ctrl+Alt+Del, a key it does not list goes to the target,
        # Esc closes it (not sent); HOST+S saves the newest frame. First the paste's last key
        # releases must have landed (the text is complete at the last press).
        n0 = -1
        while n0 != len(key_events(ev)):
            n0 = len(key_events(ev))
            time.sleep(0.3)
        host(x, "o")
        xdo(x, "key", "d", "q", "Escape")
        host(x, "s")
        # okvm's combo: {Ctrl+Alt}, {Ctrl+Alt, Delete}, {} (the last report lifts all three)
        want = [(0xE0, True), (0xE2, True), (0x4C, True), (0xE0, False), (0xE2, False),
                (0x4C, False), (0x14, True), (0x14, False)]
        wait_for(lambda: len(key_events(ev)) >= n0 + len(want))
        time.sleep(0.3)
        got = key_events(ev)[n0:]
        check(got == want,
              "overlay: D sends Ctrl+Alt+Del, Q goes to the target, Esc is not sent (%s)" % got)
        shots = wait_for(lambda: [f for f in os.listdir(shotdir) if f.endswith(".jpg")])
        check(len(shots) == 1 and open(os.path.join(shotdir, shots[0]), "rb").read(2) ==
              b"\xff\xd8", "screenshot: HOST+S saves a JPEG in --screenshot-dir (%s)" % shots)
        # a key held when the window closes is released
        xdo(x, "keydown", "a")
        wait_for(lambda: (0x04, True) in key_events(ev)[-2:])
    finally:
        rc, err = v.stop()
        xdo(x, "keyup", "a", check_rc=False)
    check(rc == 0, "close: exits 0 (%d %s)" % (rc, err.strip()[-200:]))
    check(not keys_left_down(read_events(ev)), "close: no key left down on the target")
    check(mouse_events(ev)[-1]["buttons"] == 0, "close: no button left down")


def test_relative(x, tmp):
    """--relative: SDL's relative mouse, motion as CH9329 relative reports; HOST leaves it."""
    ev = os.path.join(tmp, "ev-rel.jsonl")
    v = View(x, ["-d", "emu", "--emu-events", ev, "--emu-video", "640x360@30", "view",
                 "--relative"])
    try:
        wait_for(lambda: "relative mouse" in v.title(), timeout=10)
        xdo(x, "windowfocus", "--sync", v.wid)
        xdo(x, "mousemove", "--window", v.wid, "320", "180")
        time.sleep(0.3)
        n0 = len(mouse_events(ev))
        for _ in range(2):
            xdo(x, "mousemove_relative", "--", "30", "20")
            wait_for(lambda: len(mouse_events(ev)) > n0)
            n0 = len(mouse_events(ev))
            time.sleep(0.2)
        # the virtual target's pointer starts at the centre, 2048,2048
        p = [(2048, 2048)] + [(e["x"], e["y"]) for e in mouse_events(ev)]
        d = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(p[-3:-1], p[-2:])]
        check(d == [(30, 20), (30, 20)], "relative: each 30,20 move moves the target's pointer "
              "30,20 (%s)" % d)
        xdo(x, "key", "Control_R")
        wait_for(lambda: "relative" not in v.title())
        check("relative" not in v.title() and "grabbed" not in v.title(),
              "relative: the host key leaves it and the grab (%r)" % v.title())
    finally:
        rc, err = v.stop()
    check(rc == 0, "relative: exits 0 (%d %s)" % (rc, err.strip()[-200:]))


def x11_close_window(x, wid):
    """What a window manager's close button does: WM_DELETE_WINDOW in a WM_PROTOCOLS client
    message (ICCCM 4.2.8.1), sent with libX11 through ctypes."""
    lib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    lib.XOpenDisplay.restype = ctypes.c_void_p
    lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    lib.XInternAtom.restype = ctypes.c_ulong
    lib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                    ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
                    ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                    ("format", ctypes.c_int), ("l", ctypes.c_long * 5)]

    class XEvent(ctypes.Union):
        _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

    lib.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                               ctypes.POINTER(XEvent)]
    lib.XFlush.argtypes = [ctypes.c_void_p]
    lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = lib.XOpenDisplay(x.display.encode())
    assert dpy, "XOpenDisplay"
    ev = XEvent()
    ev.xclient.type = 33  # ClientMessage
    ev.xclient.window = int(wid)
    ev.xclient.message_type = lib.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
    ev.xclient.format = 32
    ev.xclient.l[0] = lib.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
    ev.xclient.l[1] = 0  # CurrentTime
    lib.XSendEvent(dpy, int(wid), 0, 0, ctypes.byref(ev))
    lib.XFlush(dpy)
    lib.XCloseDisplay(dpy)


class OtherWindow:
    """Another X client's window (libX11 through ctypes), to move the focus to."""

    def __init__(self, x):
        self.lib = lib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
        lib.XOpenDisplay.restype = ctypes.c_void_p
        lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        lib.XDefaultRootWindow.restype = ctypes.c_ulong
        lib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        lib.XCreateSimpleWindow.restype = ctypes.c_ulong
        lib.XCreateSimpleWindow.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int,
                                            ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                            ctypes.c_uint, ctypes.c_ulong, ctypes.c_ulong]
        lib.XMapWindow.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        lib.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self.dpy = lib.XOpenDisplay(x.display.encode())
        assert self.dpy, "XOpenDisplay"
        self.wid = lib.XCreateSimpleWindow(self.dpy, lib.XDefaultRootWindow(self.dpy), 900, 500,
                                           200, 150, 0, 0, 0)
        lib.XMapWindow(self.dpy, self.wid)
        lib.XSync(self.dpy, 0)

    def close(self):
        self.lib.XCloseDisplay(self.dpy)


def x11_locks(x):
    """(caps, num) of the X server's keyboard (XkbGetState's locked modifiers; Num Lock is the
    modifier Num_Lock's key carries, Mod2 on Xvfb's keymap)."""
    p = subprocess.run(["xset", "q"], env=env_for(x), capture_output=True, text=True)
    if p.returncode == 0 and "Caps Lock:" in p.stdout:
        line = [ln for ln in p.stdout.splitlines() if "Caps Lock:" in ln][0].split()
        return line[line.index("Lock:") + 1] == "on", line[line.index("Num") + 2] == "on"
    raise RuntimeError("xset q: %s" % p.stderr)


def led_events(path):
    return [(e["caps"], e["num"]) for e in read_events(path) if e["type"] == "leds"]


def all_key_events(path):
    return [(e["usage"], e["down"]) for e in read_events(path) if e["type"] == "key"]


def test_focus(x, tmp):
    """Focus loss (another window takes it: XSetInputFocus, no window manager needed) releases
    every key and button the viewer holds; the target sees the releases, in order, and nothing
    else. Lock keys: the host's Caps/Num Lock state wins when the window gets focus."""
    ev = os.path.join(tmp, "ev-focus.jsonl")
    other = OtherWindow(x)
    # the host's Caps Lock on before the viewer starts (the key goes to the other window)
    xdo(x, "windowfocus", "--sync", str(other.wid))
    if x11_locks(x)[0]:
        xdo(x, "key", "Caps_Lock")
    xdo(x, "key", "Caps_Lock")
    check(x11_locks(x) == (True, False), "locks: the host's Caps Lock is on, Num Lock off (%s)"
          % (x11_locks(x),))
    v = View(x, ["-d", "emu", "--emu-events", ev, "--emu-video", "640x360@30", "view"])
    try:
        wait_for(lambda: "640x360" in v.title(), timeout=10)
        xdo(x, "windowfocus", "--sync", v.wid)
        wait_for(lambda: led_events(ev) and led_events(ev)[-1] == (True, False) and
                 len(all_key_events(ev)) >= 2, timeout=5)
        time.sleep(0.3)
        check(all_key_events(ev) == [(0x39, True), (0x39, False)] and
              led_events(ev)[-1:] == [(True, False)],
              "locks: focused with the host's Caps Lock on, the target gets one Caps Lock tap "
              "and its LED goes on (%s, leds %s)" % (all_key_events(ev), led_events(ev)))
        # Caps Lock pressed in the window goes to the target; the host toggles too: both off
        n0 = len(all_key_events(ev))
        xdo(x, "key", "Caps_Lock")
        wait_for(lambda: led_events(ev)[-1] == (False, False) and
                 len(all_key_events(ev)) >= n0 + 2, timeout=5)
        time.sleep(0.3)
        check(all_key_events(ev)[n0:] == [(0x39, True), (0x39, False)] and
              led_events(ev)[-1] == (False, False) and x11_locks(x) == (False, False),
              "locks: Caps Lock in the window: the target's LED and the host's go off together "
              "(%s %s)" % (led_events(ev)[-1], x11_locks(x)))
        # away, the host's Num Lock goes on; back, the target follows with one Num Lock tap
        xdo(x, "windowfocus", "--sync", str(other.wid))
        xdo(x, "key", "Num_Lock")
        time.sleep(0.3)
        n0 = len(all_key_events(ev))
        xdo(x, "windowfocus", "--sync", v.wid)
        wait_for(lambda: led_events(ev)[-1] == (False, True) and
                 len(all_key_events(ev)) >= n0 + 2, timeout=5)
        time.sleep(0.3)
        check(all_key_events(ev)[n0:] == [(0x53, True), (0x53, False)] and
              led_events(ev)[-1] == (False, True),
              "locks: focus back with the host's Num Lock on: one Num Lock tap, the target's "
              "LED on (%s, %s)" % (all_key_events(ev)[n0:], led_events(ev)[-1]))
        time.sleep(0.5)

        # focus loss with a key and a button held: both come up, and only they
        n0 = len(all_key_events(ev))
        nm = len(mouse_events(ev))
        xdo(x, "mousemove", "--window", v.wid, "320", "180")
        xdo(x, "keydown", "shift")
        xdo(x, "keydown", "a")
        xdo(x, "mousedown", "1")
        wait_for(lambda: len(all_key_events(ev)) >= n0 + 2 and
                 any(m["buttons"] == 1 for m in mouse_events(ev)[nm:]))
        check(all_key_events(ev)[n0:] == [(0xE1, True), (0x04, True)],
              "focus: Shift and A held reach the target as E1, 04 down (%s)"
              % all_key_events(ev)[n0:])
        xdo(x, "windowfocus", "--sync", str(other.wid))
        wait_for(lambda: len(all_key_events(ev)) >= n0 + 4 and
                 mouse_events(ev)[-1]["buttons"] == 0)
        time.sleep(0.5)
        got = all_key_events(ev)[n0:]
        check(sorted(got[2:]) == [(0x04, False), (0xE1, False)] and len(got) == 4,
              "focus: moved to another window, the target gets A and Shift up and nothing else "
              "(%s)" % got)
        check(mouse_events(ev)[-1]["buttons"] == 0 and not keys_left_down(read_events(ev)),
              "focus: and the left button up: nothing held on the target (%s)"
              % mouse_events(ev)[-1])
        xdo(x, "mouseup", "1", "keyup", "a", "keyup", "shift")
        time.sleep(0.3)
        n1 = len(read_events(ev))
        xdo(x, "type", "xy")
        time.sleep(0.5)
        check(len(read_events(ev)) == n1, "focus: without focus, keys do not reach the target")
        xdo(x, "windowfocus", "--sync", v.wid)
        xdo(x, "type", "--delay", "30", "ok")
        wait_for(lambda: typed_text(read_events(ev)).endswith("ok"))
        check(typed_text(read_events(ev)).endswith("ok"), "focus: focused again, keys go again "
              "(%r)" % typed_text(read_events(ev)))
    finally:
        rc, err = v.stop()
        other.close()
        # leave the host's locks off for the tests after this one
        for on, key in zip(x11_locks(x), ("Caps_Lock", "Num_Lock")):
            if on:
                xdo(x, "key", key)
    check(rc == 0, "focus: exits 0 (%d %s)" % (rc, err.strip()[-200:]))


def test_fullscreen(tmp):
    """HOST+F: the window covers the screen (a window manager does that: jwm in an Xvfb of its
    own), the mouse mapping still lands on the chip position of the picture's point, and back."""
    if not shutil.which("jwm"):
        print("skip: fullscreen needs a window manager (jwm: scripts/install-deps --test)")
        return
    d = os.path.join(tmp, "wm")
    os.mkdir(d)
    x = Xvfb(d, 1280, 800)
    rc_path = os.path.join(d, "jwmrc")
    with open(rc_path, "w") as f:
        f.write('<?xml version="1.0"?>\n<JWM></JWM>\n')
    wm = subprocess.Popen(["jwm", "-f", rc_path], env=env_for(x), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    ev = os.path.join(d, "ev.jsonl")
    v = None
    try:
        time.sleep(0.5)
        v = View(x, ["-d", "emu", "--emu-events", ev, "--emu-video", "640x360@30", "view"])
        wait_for(lambda: "640x360" in v.title(), timeout=10)
        xdo(x, "windowfocus", "--sync", v.wid)
        time.sleep(0.3)
        g0 = v.geometry()
        check(g0[2:] == (640, 360), "fullscreen: the window starts at the frame's size (%s)"
              % (g0,))
        host(x, "f")
        wait_for(lambda: v.geometry() == (0, 0, 1280, 800), timeout=5)
        check(v.geometry() == (0, 0, 1280, 800), "fullscreen: HOST+F covers the 1280x800 "
              "screen (%s)" % (v.geometry(),))
        time.sleep(0.3)
        # the 640x360 picture fills 1280x720, 40-pixel bars above and below
        for sx, sy, want in ((320, 220, (1024, 1024)), (640, 400, (2048, 2048)),
                             (960, 580, (3072, 3072)), (640, 10, (2048, 0))):
            n = len(mouse_events(ev))
            xdo(x, "mousemove", str(sx), str(sy))
            xdo(x, "click", "1")
            wait_for(lambda: [m for m in mouse_events(ev)[n:] if m["buttons"] == 1])
            m = [m for m in mouse_events(ev)[n:] if m["buttons"] == 1]
            check(m and (m[0]["x"], m[0]["y"]) == want,
                  "fullscreen: a click at screen (%d,%d) is chip %s (%s)"
                  % (sx, sy, want, m[:1]))
        host(x, "f")
        wait_for(lambda: v.geometry()[2:] == (640, 360), timeout=5)
        check(v.geometry()[2:] == (640, 360), "fullscreen: HOST+F again gives the window back "
              "(%s)" % (v.geometry(),))
        n = len(mouse_events(ev))
        xdo(x, "mousemove", "--window", v.wid, "160", "90")
        xdo(x, "click", "1")
        wait_for(lambda: [m for m in mouse_events(ev)[n:] if m["buttons"] == 1])
        m = [m for m in mouse_events(ev)[n:] if m["buttons"] == 1]
        check(m and (m[0]["x"], m[0]["y"]) == (1024, 1024),
              "fullscreen: windowed again, (160,90) of the picture is chip 1024,1024 (%s)"
              % m[:1])
    finally:
        if v:
            rc, err = v.stop()
            check(rc == 0, "fullscreen: exits 0 (%d %s)" % (rc, err.strip()[-200:]))
        wm.terminate()
        wm.wait(timeout=10)
        x.close()


def probe(path):
    """ffprobe's view of a recording: {codec_type: codec_name}, video frames, the duration
    (None without a trailer's), and whether ffprobe read it without an error."""
    p = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                        "stream=codec_type,codec_name,nb_read_frames:format=duration",
                        "-of", "json", path], capture_output=True, text=True)
    import json
    j = json.loads(p.stdout or "{}")
    streams = {st["codec_type"]: st for st in j.get("streams", [])}
    v = streams.get("video", {})
    dur = j.get("format", {}).get("duration")
    return ({k: st.get("codec_name") for k, st in streams.items()},
            int(v.get("nb_read_frames", 0) or 0), float(dur) if dur else None,
            p.returncode == 0 and not p.stderr.strip())


def recordings(d):
    import re
    return sorted(f for f in os.listdir(d) if re.fullmatch(r"okvm-\d{8}-\d{6}(-\d+)?\.mkv", f))


def test_record(x, tmp):
    """HOST+R records what the window shows: MJPEG as sent, the sound, a complete file at each
    way the recording or the window ends."""
    recdir = os.path.join(tmp, "rec")
    os.mkdir(recdir)
    # SDL's dummy audio driver plays (into nothing) at the device's pace: the viewer has sound
    env = {"SDL_AUDIODRIVER": "dummy"}
    args = ["-d", "emu", "--emu-video", "640x360@30", "view", "--record-dir", recdir]
    v = View(x, args, env)
    try:
        wait_for(lambda: "640x360" in v.title(), timeout=10)
        xdo(x, "windowfocus", "--sync", v.wid)
        check(recordings(recdir) == [], "record: nothing recorded before HOST+R")
        t0 = time.monotonic()
        host(x, "r")
        wait_for(lambda: "REC" in v.title(), timeout=5)
        check("REC 0:0" in v.title(), "record: HOST+R starts it, the title says REC 0:0x (%r)"
              % v.title())
        wait_for(lambda: "REC 0:02" in v.title(), timeout=5)
        check("REC 0:02" in v.title(), "record: the title counts the seconds (%r)" % v.title())
        host(x, "r")
        t1 = time.monotonic()
        wait_for(lambda: "recorded" in v.title(), timeout=5)
        check("REC" not in v.title() and "recorded okvm-" in v.title(),
              "record: HOST+R again stops it, the title names the file (%r)" % v.title())
        files = recordings(recdir)
        check(len(files) == 1, "record: one okvm-YYYYmmdd-HHMMSS.mkv in --record-dir (%s)"
              % os.listdir(recdir))
        if files:
            codecs, frames, dur, clean = probe(os.path.join(recdir, files[0]))
            check(codecs == {"video": "mjpeg", "audio": "pcm_s16le"},
                  "record: ffprobe: an MJPEG track and the sound as PCM (%s)" % codecs)
            check(clean and dur is not None and 1.5 <= dur <= t1 - t0 + 0.5,
                  "record: ffprobe reads it whole, duration %s s for %.1f s of recording"
                  % (dur, t1 - t0))
            check(frames >= 30, "record: %d frames in it (30 fps for about 2.5 s)" % frames)
        # the overlay's R starts one too; closing the window (WM_DELETE_WINDOW) finishes it
        host(x, "o")
        xdo(x, "key", "r")
        wait_for(lambda: "REC" in v.title(), timeout=5)
        check("REC" in v.title(), "record: R in the overlay starts a recording (%r)"
              % v.title())
        time.sleep(1.5)
        x11_close_window(x, v.wid)
        try:
            v.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    finally:
        rc, err = v.stop()
    check(rc == 0, "record: closing the window ends okvm view with 0 (%s %s)"
          % (rc, err.strip()[-200:]))
    files = recordings(recdir)
    check(len(files) == 2, "record: a second file (%s)" % files)
    if len(files) == 2:
        codecs, frames, dur, clean = probe(os.path.join(recdir, files[1]))
        check(clean and dur is not None and dur >= 1.0 and frames > 20,
              "record: closed while recording, the file is complete (trailer: duration %s s, "
              "%d frames)" % (dur, frames))
    # SIGINT and SIGTERM while recording: the trailer is written too
    for sig in (signal.SIGINT, signal.SIGTERM):
        d = os.path.join(tmp, "rec-%d" % sig)
        os.mkdir(d)
        v = View(x, ["-d", "emu", "--emu-video", "640x360@30", "view", "--record-dir", d], env)
        try:
            wait_for(lambda: "640x360" in v.title(), timeout=10)
            xdo(x, "windowfocus", "--sync", v.wid)
            host(x, "r")
            wait_for(lambda: "REC 0:01" in v.title(), timeout=5)
            v.proc.send_signal(sig)
            v.proc.wait(timeout=15)
        finally:
            rc, err = v.stop()
        files = recordings(d)
        codecs, frames, dur, clean = probe(os.path.join(d, files[0])) if files else ({}, 0,
                                                                                    None, False)
        check(rc == 0 and len(files) == 1 and clean and dur is not None and frames > 10,
              "record: %s while recording: exit 0, the file complete (%s, %d frames, %s s)"
              % (signal.Signals(sig).name, files, frames, dur))
    # --no-audio: video only; a directory that is not there: said, nothing else happens
    v = View(x, ["-d", "emu", "--emu-video", "640x360@30", "view", "--no-audio",
                 "--record-dir", os.path.join(tmp, "nowhere")])
    try:
        wait_for(lambda: "640x360" in v.title(), timeout=10)
        xdo(x, "windowfocus", "--sync", v.wid)
        host(x, "r")
        wait_for(lambda: "record:" in v.title(), timeout=5)
        check("record: cannot create" in v.title() and "REC" not in v.title(),
              "record: a --record-dir that is not there is said in the title (%r)" % v.title())
    finally:
        rc, err = v.stop()
    check(rc == 0, "record: and the viewer goes on (exit %d)" % rc)
    cfg = os.path.join(tmp, "rec.conf")
    d = os.path.join(tmp, "rec-conf")
    os.mkdir(d)
    with open(cfg, "w") as f:
        f.write("[view]\nrecord_dir = %s\naudio = off\n" % d)
    v = View(x, ["-d", "emu", "--emu-video", "640x360@30", "view", "--config", cfg])
    try:
        wait_for(lambda: "640x360" in v.title(), timeout=10)
        xdo(x, "windowfocus", "--sync", v.wid)
        host(x, "r")
        wait_for(lambda: "REC 0:01" in v.title(), timeout=5)
        host(x, "r")
        wait_for(lambda: "recorded" in v.title(), timeout=5)
    finally:
        rc, err = v.stop()
    files = recordings(d)
    codecs = probe(os.path.join(d, files[0]))[0] if files else {}
    check(len(files) == 1 and codecs == {"video": "mjpeg"},
          "record: [view] record_dir is where it goes; with audio off, video only (%s %s)"
          % (files, codecs))


def test_cli(x):
    p = subprocess.run([OKVM, "view", "--help"], capture_output=True, text=True)
    for k in ("HOST+V", "HOST+O", "HOST+F", "HOST+Z", "HOST+M", "HOST+S", "HOST+U", "HOST+D",
              "HOST+Q", "HOST+R", "--record-dir", "HOST alone"):
        check(k in p.stdout, "help: view --help lists %s" % k)
    p = subprocess.run([OKVM, "view", "--list-keys"], capture_output=True, text=True)
    rows = [[c.strip() for c in r.split("\t")] for r in p.stdout.splitlines()
            if not r.startswith("#")]
    kbd = [(int(r[0]), int(r[3].split()[1], 16)) for r in rows if r[3].startswith("usage")]
    check(len(kbd) > 100 and all(sc == u for sc, u in kbd),
          "keys: every keyboard-page SDL scancode is its HID usage (%d keys)" % len(kbd))
    check(any(r[2] == "AudioVolumeUp" and r[3].startswith("media") for r in rows),
          "keys: VolumeUp goes as the media report")
    for args, what in ((["--scale", "2x"], "--scale"), (["--host-key", "nokey"], "--host-key"),
                       (["--bogus"], "unknown option")):
        p = subprocess.run([OKVM, "-d", "emu", "view"] + args, capture_output=True, text=True)
        check(p.returncode == 2 and what in p.stderr and len(p.stderr.splitlines()) == 1,
              "usage: view %s exits 2 with one line (%r)" % (" ".join(args), p.stderr))
    e = dict(os.environ)
    e.pop("DISPLAY", None)
    e.pop("WAYLAND_DISPLAY", None)
    e["SDL_VIDEODRIVER"] = "x11"
    p = subprocess.run([OKVM, "-d", "emu", "view"], capture_output=True, text=True, env=e,
                       timeout=30)
    check(p.returncode == 1 and "display" in p.stderr,
          "no display: exits 1 and says so (%r)" % p.stderr.strip())
    cfg = os.path.join(tempfile.mkdtemp(prefix="okvm-view-cfg-"), "okvm.conf")
    with open(cfg, "w") as f:
        f.write("[serve]\nlisten = 127.0.0.1:8080\n[view]\nscale = sideways\n")
    p = subprocess.run([OKVM, "-d", "emu", "view", "--config", cfg], capture_output=True,
                       text=True)
    check(p.returncode == 2 and "scale" in p.stderr and "line 4" in p.stderr,
          "config: a bad [view] value exits 2 naming key and line (%r)" % p.stderr.strip())


def main():
    for tool in ("Xvfb", "xdotool", "xclip", "ffmpeg", "ffprobe"):
        if not shutil.which(tool):
            print("skip: no %s (scripts/install-deps --test)" % tool)
            return 77
    tmp = tempfile.mkdtemp(prefix="okvm-view-")
    x = Xvfb(tmp)
    try:
        test_cli(x)
        test_picture(x, tmp)
        test_input(x, tmp)
        test_relative(x, tmp)
        test_record(x, tmp)
        test_focus(x, tmp)
        test_fullscreen(tmp)
    finally:
        x.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILS:
        print("%d failed" % len(FAILS))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
