"""okvm serve --vnc driven by a real VNC viewer nobody here wrote: TigerVNC's (Debian's
tigervnc-viewer) under Xvfb, with xdotool typing and clicking into its window as a person would.
The virtual target's --emu-events is the oracle: it must get exactly the text typed, the clicks
at the places clicked (the viewer shows the 1920x1080 virtual screen unscaled in a larger X
screen, so a window pixel is a framebuffer pixel), the wheel, and nothing left held when the
viewer quits."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from serve_util import Server, check, fail, free_port

VIEWER = shutil.which("xtigervncviewer")
if not VIEWER:
    print("SKIP: xtigervncviewer not installed (scripts/install-deps --test: tigervnc-viewer)")
    sys.exit(77)
for tool in ("Xvfb", "xdotool"):
    if not shutil.which(tool):
        fail(f"{tool} is missing (scripts/install-deps --test installs it)")


def events(path):
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]


def text_of(path):
    return "".join(e["text"] for e in events(path) if e["type"] == "text")


def wait_for(pred, secs=15):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


def start_xvfb():
    """Xvfb on a free display (it writes the number to -displayfd)."""
    r, w = os.pipe()
    p = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "2048x1200x24",
                          "-nolisten", "tcp"], pass_fds=(w,), stderr=subprocess.DEVNULL)
    os.close(w)
    num = b""
    end = time.monotonic() + 20
    while not num.endswith(b"\n") and time.monotonic() < end:
        b = os.read(r, 16)
        if not b:
            break
        num += b
    os.close(r)
    if not num.strip():
        p.kill()
        fail("Xvfb did not start")
    return p, ":" + num.decode().strip()


def xdo(env, *args):
    r = subprocess.run(["xdotool", *args], env=env, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        fail(f"xdotool {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def geometry(env, win):
    g = {}
    for line in xdo(env, "getwindowgeometry", "--shell", win).splitlines():
        k, _, v = line.partition("=")
        g[k] = int(v)
    return g


# The virtual unit's own 1920x1080 screen (not the fixture frames), as a user sees it.
os.environ["OKVM_SERVE_BACKEND_ARGS"] = "-d emu"
ev = tempfile.mktemp(suffix=".jsonl")
vport = free_port()
xvfb, display = start_xvfb()
xenv = {**os.environ, "DISPLAY": display, "HOME": tempfile.mkdtemp()}
viewer = None
try:
    with Server("--vnc", f"127.0.0.1:{vport}", "--emu-events", ev) as s:
        viewer = subprocess.Popen([VIEWER, "-Shared", "-RemoteResize=0", f"127.0.0.1::{vport}"],
                                  env=xenv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def window():
            r = subprocess.run(["xdotool", "search", "--name", "TigerVNC"], env=xenv,
                               capture_output=True, text=True)
            for w in r.stdout.split():
                g = geometry(xenv, w)
                if g["WIDTH"] >= 1920 and g["HEIGHT"] >= 1080:
                    return w
            return None

        win = wait_for(window, 30)
        if not win:
            viewer.kill()
            fail(f"no 1920x1080 viewer window: {viewer.communicate()[1].decode()[-1500:]}")
        g = geometry(xenv, win)
        check(g["WIDTH"] == 1920 and g["HEIGHT"] == 1080,
              f"TigerVNC shows the virtual screen unscaled ({g['WIDTH']}x{g['HEIGHT']})")
        xdo(xenv, "windowfocus", "--sync", win)
        time.sleep(0.5)

        # Keys: xdotool presses the X keys (Shift for capitals and symbols), the viewer sends
        # their keysyms, okvm types them on the target's layout.
        typed = "Hello VNC, [1+1=2] @ok!"
        xdo(xenv, "type", "--delay", "40", typed)
        xdo(xenv, "key", "--delay", "40", "Return")
        got = wait_for(lambda: text_of(ev).endswith(typed + "\n"))
        check(got, f"the target got exactly what was typed in the viewer: {text_of(ev)[-40:]!r}")

        # Pointer: window pixel (x, y) is framebuffer pixel (x, y); the target's absolute
        # mouse is 0..4095 over the framebuffer.
        def target(px, size):
            return round(px * 4095 / (size - 1))

        def mouse_after(n0, pred):
            return wait_for(lambda: [e for e in events(ev)[n0:] if e["type"] == "mouse"
                                     and pred(e)])

        for (x, y, button, bit) in ((480, 270, 1, 1), (1500, 900, 3, 2), (100, 1000, 2, 4)):
            n0 = len(events(ev))
            xdo(xenv, "mousemove", "--window", win, str(x), str(y))
            xdo(xenv, "click", str(button))
            m = mouse_after(n0, lambda e: e["buttons"] == bit)
            want = (target(x, 1920), target(y, 1080))
            check(m and abs(m[0]["x"] - want[0]) <= 6 and abs(m[0]["y"] - want[1]) <= 6,
                  f"button {button} clicked at ({x},{y}) reaches the target at ~{want}"
                  f" ({[(e['x'], e['y'], e['buttons']) for e in m[:1]]})")
            up = mouse_after(n0, lambda e: e["buttons"] == 0 and e is not m[0])
            check(up, f"and button {button} is let go")

        n0 = len(events(ev))
        xdo(xenv, "click", "5")
        m = mouse_after(n0, lambda e: e["wheel"] != 0)
        check(m and m[0]["wheel"] < 0 and m[0]["buttons"] == 0,
              f"the wheel turned down in the viewer is one notch down ({m[:1]})")

        # A shortcut: Ctrl held while a letter is pressed is that key under Ctrl, not text.
        n0 = len(events(ev))
        xdo(xenv, "key", "ctrl+a")
        keys = wait_for(lambda: [e for e in events(ev)[n0:] if e["type"] == "key"
                                 and e["down"] and e["usage"] == 0x04])
        check(keys, "Ctrl+A in the viewer presses A's key")
        ctrl = wait_for(lambda: [e for e in events(ev)[n0:] if e["type"] == "key"
                                 and e["usage"] == 0xE0 and not e["down"]]) and \
            [e for e in events(ev)[n0:] if e["type"] == "key" and e["usage"] == 0xE0]
        check(ctrl and ctrl[0]["down"] and not ctrl[-1]["down"],
              "under left Ctrl, which is let go after")

        # The viewer dies while a key is held (SIGKILL: it sends no key up of its own): okvm
        # lets go of everything that client held.
        n0 = len(events(ev))
        xdo(xenv, "keydown", "shift")
        wait_for(lambda: [e for e in events(ev)[n0:] if e["type"] == "key" and e["down"]])
        viewer.kill()
        viewer.wait(10)
        released = wait_for(lambda: [e for e in events(ev)[n0:] if e["type"] == "key"
                                     and e["usage"] == 0xE1 and not e["down"]])
        check(released, "Shift held when the viewer died is let go on the target")
        time.sleep(0.3)
        check(s.alive(), "the server is still up after the viewer left")
finally:
    if viewer and viewer.poll() is None:
        viewer.kill()
    xvfb.terminate()
    xvfb.wait(10)
