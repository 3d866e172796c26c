"""okvm serve -d emu gives memory back when nobody watches: the virtual screen's canvases and
compressor, the capture's spare frames, the H.264 encoder and the VNC framebuffer are only held
while a viewer is there. For each kind of viewer (MJPEG, H.264, VNC) the server's RSS must come
back to within 2 MB of what it was before the viewer came (it grows by 12-60 MB with one; anonymous
memory, RssAnon, so that the libraries' code paged in does not count); the
wait for that is generous, the figure is what is checked. Skipped under AddressSanitizer, whose
allocator keeps freed memory in quarantine."""
import os
import socket
import struct
import sys
import time

from serve_util import Server, check, fail, free_port

OKVM = os.environ.get("OKVM", "build/okvm")
if b"__asan_init" in open(OKVM, "rb").read():
    print("SKIP: an AddressSanitizer build (its allocator does not give memory back)")
    sys.exit(77)

SLACK_KB = 2048


def rss_kb(pid, key="RssAnon"):
    """Anonymous resident memory (RssAnon): what the process holds, without the pages of the
    libraries' code it ran (libopenh264's, libturbojpeg's: clean, shared, ~1.2 MB)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def take(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError("closed")
        b += d
    return b


def watch_http(port, path, nbytes, pid):
    """A viewer of an HTTP stream: read nbytes of it (several frames), then leave; returns
    the server's RSS while it watched."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    got = 0
    while got < nbytes:
        d = s.recv(1 << 16)
        if not d:
            fail(f"{path} closed after {got} bytes")
        got += len(d)
    rss = (rss_kb(pid), rss_kb(pid, "VmRSS"))
    s.close()
    return rss


def watch_vnc(port, pid):
    """An RFB client that asks for the whole picture until it shows the virtual desktop (not
    the black of a framebuffer given back), then leaves; returns the server's RSS meanwhile."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    take(s, 12)
    s.sendall(b"RFB 003.008\n")
    take(s, take(s, 1)[0])
    s.sendall(bytes([1]))
    take(s, 4)
    s.sendall(bytes([1]))
    w, h = struct.unpack(">HH", take(s, 4))
    take(s, 16)
    take(s, struct.unpack(">I", take(s, 4))[0])
    s.sendall(struct.pack(">BxHi", 2, 1, 0))  # SetEncodings: Raw only
    lit = 0
    for i in range(100):
        s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
        t, _, nrect = struct.unpack(">BBH", take(s, 4))
        for _ in range(nrect):
            x, y, rw, rh, enc = struct.unpack(">HHHHi", take(s, 12))
            if enc == 0:
                px = take(s, rw * rh * 4)
                lit = sum(1 for j in range(0, len(px), 4 * 97) if px[j:j + 3] != b"\0\0\0")
            elif enc == -223:  # DesktopSize: the real picture's size
                w, h = rw, rh
        if w >= 1920 and lit > w * h // 97 // 2:
            break
    if lit <= w * h // 97 // 2:
        fail(f"VNC never showed the desktop ({w}x{h}, {lit} lit samples)")
    rss = (rss_kb(pid), rss_kb(pid, "VmRSS"))
    s.close()
    return rss


# meson test sets MALLOC_PERTURB_, which fills memory on malloc and free, so pages freed are
# touched again: the server runs without it here.
os.environ.pop("MALLOC_PERTURB_", None)
vport = free_port()
with Server("--vnc", f"127.0.0.1:{vport}", backend=["-d", "emu"]) as s:
    s.http("GET", "/metrics")
    time.sleep(1)
    base = rss_kb(s.proc.pid)
    print(f"before any viewer: {base / 1024:.1f} MB anonymous,"
          f" {rss_kb(s.proc.pid, 'VmRSS') / 1024:.1f} MB RSS")
    pid = s.proc.pid
    viewers = (("MJPEG /stream", lambda: watch_http(s.port, "/stream", 2 << 20, pid)),
               ("H.264 /stream.h264", lambda: watch_http(s.port, "/stream.h264", 60000, pid)),
               ("VNC", lambda: watch_vnc(vport, pid)),
               ("MJPEG again", lambda: watch_http(s.port, "/stream", 2 << 20, pid)),
               ("VNC again (the picture, not black)", lambda: watch_vnc(vport, pid)))
    for name, watch in viewers:
        peak, peak_rss = watch()
        end = time.monotonic() + 30
        now = rss_kb(s.proc.pid)
        while now > base + SLACK_KB and time.monotonic() < end:
            time.sleep(0.25)
            now = rss_kb(s.proc.pid)
        check(now <= base + SLACK_KB,
              f"{name}: {peak / 1024:.1f} MB with the viewer (RSS {peak_rss / 1024:.1f} MB),"
              f" {now / 1024:.1f} MB after it left"
              f" (before: {base / 1024:.1f} MB; RSS {rss_kb(pid, 'VmRSS') / 1024:.1f} MB)")
