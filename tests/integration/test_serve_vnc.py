"""okvm serve --vnc: the virtual unit through VNC. vncsnapshot (a VNC client nobody here wrote)
takes a picture that must match GET /snapshot of the same screen; a small RFB client here types
(keysyms become the keys of the target's layout), clicks, scrolls and pastes, with the virtual
target's --emu-events as the oracle; a non-loopback address needs a password, and wrong ones are
counted and locked out."""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

from serve_util import FRAMES, Server, check, fail, free_port

if not shutil.which("vncsnapshot") or not shutil.which("ffmpeg"):
    print("SKIP: vncsnapshot / ffmpeg not installed (scripts/install-deps --test)")
    sys.exit(77)


class Rfb:
    """RFB 3.8 with no authentication: enough to send input and read the picture's size."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        ver = self.take(12)
        if not ver.startswith(b"RFB 003."):
            fail(f"not an RFB server: {ver!r}")
        self.s.sendall(b"RFB 003.008\n")
        n = self.take(1)[0]
        self.types = list(self.take(n)) if n else []

    def take(self, n):
        b = b""
        while len(b) < n:
            d = self.s.recv(n - len(b))
            if not d:
                raise EOFError("closed")
            b += d
        return b

    def init(self):
        self.s.sendall(bytes([1]))  # security type None
        if struct.unpack(">I", self.take(4))[0] != 0:
            fail("security handshake failed")
        self.s.sendall(bytes([1]))  # ClientInit: shared
        self.w, self.h = struct.unpack(">HH", self.take(4))
        self.take(16)
        name_len = struct.unpack(">I", self.take(4))[0]
        self.name = self.take(name_len).decode()

    def key(self, sym, down):
        self.s.sendall(struct.pack(">BBxxI", 4, 1 if down else 0, sym))

    def tap(self, sym):
        self.key(sym, True)
        self.key(sym, False)

    def pointer(self, mask, x, y):
        self.s.sendall(struct.pack(">BBHH", 5, mask, x, y))

    def cut_text(self, text):
        b = text.encode("latin-1")
        self.s.sendall(struct.pack(">BxxxI", 6, len(b)) + b)

    def close(self):
        self.s.close()


def events(path):
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]


def text_of(path):
    return "".join(e["text"] for e in events(path) if e["type"] == "text")


def wait_text(path, want, secs=10):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if text_of(path).endswith(want):
            return True
        time.sleep(0.05)
    return False


XK_SHIFT_L, XK_RETURN = 0xFFE1, 0xFF0D

# -- refusals before anything listens --
for listen, word in (("0.0.0.0:5999", "password"), ("nonsense", "IPV4:PORT")):
    tmp = tempfile.mkdtemp()
    r = subprocess.run([os.environ.get("OKVM", "build/okvm"), "serve", "--listen",
                        f"127.0.0.1:{free_port()}", "-d", "emu", "--vnc", listen],
                       capture_output=True, text=True, timeout=30,
                       env={**os.environ, "HOME": tmp, "XDG_CONFIG_HOME": tmp})
    check(r.returncode != 0 and word in r.stderr, f"--vnc {listen} is refused ({word}):"
          f" {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''}")

for layout in ("us", "de"):
    ev = tempfile.mktemp(suffix=".jsonl")
    vport = free_port()
    with Server("--vnc", f"127.0.0.1:{vport}", "--layout", layout, "--emu-events", ev) as s:
        c = Rfb(vport)
        check(c.types == [1], f"loopback VNC offers no authentication ({c.types})")
        c.init()
        check(c.w > 0 and c.h > 0 and c.name == "okvm", f"ServerInit: {c.w}x{c.h} '{c.name}'")
        # Hi@! as a US keyboard's client sends it: Shift held for H, @ and !.
        c.key(XK_SHIFT_L, True)
        c.tap(ord("H"))
        c.key(XK_SHIFT_L, False)
        c.tap(ord("i"))
        c.key(XK_SHIFT_L, True)
        c.tap(ord("@"))
        c.tap(ord("!"))
        c.key(XK_SHIFT_L, False)
        c.tap(0xE4)  # ä (Latin-1 keysym)
        c.tap(XK_RETURN)
        want = "Hi@!" + ("ä" if layout == "de" else "") + "\n"
        ok = wait_text(ev, want)
        check(ok, f"keysyms typed on a {layout} target give {want!r} (got {text_of(ev)[-20:]!r})")
        if layout == "de":
            # '@' on de is AltGr+Q: the HID report must carry right Alt (0x40) and usage 0x14.
            keys = [e for e in events(ev) if e["type"] == "key" and e["down"]]
            check(any(e["usage"] == 0x14 for e in keys) and any(e["usage"] == 0xE6 for e in keys),
                  "on de, @ is pressed as AltGr+Q")
            continue
        # Pointer: the middle of the picture, left button, then the wheel.
        c.pointer(1, (c.w - 1) // 2, (c.h - 1) // 2)
        c.pointer(0, (c.w - 1) // 2, (c.h - 1) // 2)
        c.pointer(8, (c.w - 1) // 2, (c.h - 1) // 2)
        c.pointer(0, (c.w - 1) // 2, (c.h - 1) // 2)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            m = [e for e in events(ev) if e["type"] == "mouse"]
            if any(e["wheel"] for e in m):
                break
            time.sleep(0.05)
        clicks = [e for e in m if e["buttons"] == 1]
        check(clicks and abs(clicks[0]["x"] - 2048) <= 8 and abs(clicks[0]["y"] - 2048) <= 8,
              f"a click in the middle reaches the target there ({clicks[:1]})")
        check(any(e["wheel"] > 0 for e in m), "button 4 is a wheel notch up")
        c.cut_text("pasted by VNC\n")
        check(wait_text(ev, "pasted by VNC\n"), "clipboard text from the client is typed")

        # The picture: vncsnapshot against /snapshot of the same (still) screen.
        time.sleep(1)
        shot = tempfile.mktemp(suffix=".jpg")
        r = subprocess.run(["vncsnapshot", "-quiet", "-allowblank", f"127.0.0.1::{vport}", shot],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and os.path.getsize(shot) > 1000,
              f"vncsnapshot takes a picture ({r.stderr.strip()[:200]})")
        # The source loops the fixture JPEGs at 30 fps, so the picture vncsnapshot took is one of
        # them (whichever was newest): the best match among them must be close.
        def psnr_of(ref):
            p = subprocess.run(["ffmpeg", "-v", "info", "-i", shot, "-i", ref, "-lavfi", "psnr",
                                "-f", "null", "-"], capture_output=True, text=True)
            m = re.search(r"PSNR .*average:([0-9.inf]+)", p.stderr)
            return float(m.group(1)) if m and m.group(1) != "inf" else (99.0 if m else 0.0)

        fixtures = sorted(os.path.join(FRAMES, f) for f in os.listdir(FRAMES))
        best = max(psnr_of(f) for f in fixtures)
        check(best > 30, f"and it matches one of the source frames (best PSNR {best:.1f} dB;"
              f" JPEG twice)")
        c.close()
        time.sleep(0.5)
        check(s.alive(), "the server is still up after the client left")

# -- a password on a non-loopback address; wrong ones counted --
tmp = tempfile.mkdtemp()
conf = os.path.join(tmp, "okvm.conf")
vport = free_port()
open(conf, "w").write(f"[vnc]\nlisten = 0.0.0.0:{vport}\npassword = secret12\n")
os.chmod(conf, 0o600)
with Server("--config", conf, listen="127.0.0.1:" + str(free_port())) as s:
    c = Rfb(vport)
    check(c.types == [2], f"with a password, only VNC authentication is offered ({c.types})")
    results = []
    for i in range(6):
        c = Rfb(vport)
        c.s.sendall(bytes([2]))
        c.take(16)               # the challenge
        c.s.sendall(bytes(16))   # a wrong response
        results.append(struct.unpack(">I", c.take(4))[0])
        c.close()
    check(all(r == 1 for r in results), "wrong passwords fail")
    errs = s.errors()
    check("locked out" in errs, "after 5 wrong ones the address is locked out")
