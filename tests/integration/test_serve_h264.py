"""H.264 on demand (`GET /stream.h264`, docs/api.md), read by ffprobe and ffmpeg, decoders
nobody here wrote: one openh264 encoder shared by every viewer of a setting, each viewer starting
at an IDR of its own, no encoder while no one watches."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import struct

from serve_util import Server, WebSocket, check, fail, metrics

FPS = 25
if not shutil.which("ffprobe") or not shutil.which("ffmpeg"):
    print("SKIP: ffprobe/ffmpeg not installed (scripts/install-deps --test installs ffmpeg)")
    sys.exit(77)


class H264:
    """A raw GET /stream.h264 reader: the response headers, then the Annex-B bytes."""

    def __init__(self, port, query=""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock.sendall(f"GET /stream.h264{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = self.sock.recv(65536)
            if not d:
                fail("stream.h264 closed before its headers")
            buf += d
        head, self.data = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip()
                        for l in lines[1:] if ":" in l}

    def read_for(self, secs):
        t0 = time.monotonic()
        self.sock.settimeout(0.5)
        while time.monotonic() - t0 < secs:
            try:
                d = self.sock.recv(262144)
            except socket.timeout:
                continue
            if not d:
                break
            self.data += d
        return self.data

    def close(self):
        self.sock.close()


def nal_types(d):
    out, i = [], 0
    while True:
        j = d.find(b"\x00\x00\x01", i)
        if j < 0 or j + 3 >= len(d):
            return out
        out.append(d[j + 3] & 0x1F)
        i = j + 3


def whole_units(d):
    """The bytes before the last access unit (which the read may have cut): an access unit
    starts at an SPS or at a slice that follows a slice."""
    starts, prev, i = [], None, 0
    while True:
        j = d.find(b"\x00\x00\x01", i)
        if j < 0 or j + 3 >= len(d):
            break
        t = d[j + 3] & 0x1F
        if t == 7 or (t in (1, 5) and prev in (1, 5)):
            starts.append(j - 1 if j and d[j - 1] == 0 else j)
        prev, i = t, j + 3
    return d[:starts[-1]] if len(starts) > 1 else d


def probe(d):
    f = tempfile.NamedTemporaryFile(suffix=".h264", delete=False)
    f.write(whole_units(d))
    f.close()
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                        "stream=codec_name,profile,width,height,nb_read_frames", "-of", "json",
                        f.name], capture_output=True, text=True)
    dec = subprocess.run(["ffmpeg", "-v", "error", "-i", f.name, "-f", "null", "-"],
                         capture_output=True, text=True)
    os.unlink(f.name)
    st = json.loads(r.stdout)["streams"][0]
    return st, dec.stderr.strip()


with Server(fps=FPS) as s:
    check(metrics(s)["okvm_serve_stream_variants"] == 0, "no encoder before anyone asks")
    a = H264(s.port)
    check(a.status == 200 and a.headers.get("content-type") == "video/h264",
          "GET /stream.h264 answers 200 video/h264")
    b_data = {}

    def late_viewer():
        time.sleep(1.0)
        b = H264(s.port)
        b_data["d"] = b.read_for(1.5)
        b_data["variants"] = metrics(s)["okvm_serve_stream_variants"]
        b.close()

    th = threading.Thread(target=late_viewer)
    th.start()
    d = a.read_for(3)
    th.join()
    a.close()
    types = nal_types(d)
    check(types[:3] == [7, 8, 5], f"the stream starts with SPS, PPS and an IDR slice (got {types[:3]})")
    st, errors = probe(d)
    print("ffprobe:", st)
    check(st["codec_name"] == "h264" and st["profile"] == "Constrained Baseline",
          "ffprobe reads constrained-baseline H.264 (no B-frames: any browser decodes it)")
    check((st["width"], st["height"]) == (640, 360), "at the source's size (640x360)")
    n = int(st["nb_read_frames"])
    check(n >= FPS * 3 * 0.7, f"and every source frame is encoded ({n} pictures in 3 s at {FPS} fps)")
    check(errors == "", f"ffmpeg decodes it without an error ({errors[:200]})")

    bd = b_data["d"]
    check(nal_types(bd)[:3] == [7, 8, 5], "a viewer joining later starts at an IDR of its own")
    st_b, err_b = probe(bd)
    check(err_b == "" and int(st_b["nb_read_frames"]) >= FPS, "and decodes from its first byte")
    check(b_data["variants"] == 1, "two viewers share one encoder")

    # A setting of its own: smaller, fewer frames, another bitrate.
    c = H264(s.port, "?width=320&fps=10&kbps=300")
    st_c, err_c = probe(c.read_for(2))
    c.close()
    check((st_c["width"], st_c["height"]) == (320, 180) and err_c == "",
          f"?width=320 gives 320x180 ({st_c['width']}x{st_c['height']}; {err_c[:300]})")
    check(12 <= int(st_c["nb_read_frames"]) <= 26,
          f"?fps=10 about 10 pictures a second ({st_c['nb_read_frames']} in 2 s)")

    for q, word in (("?q=50", b"kbps="), ("?kbps=5", b"kbps=5"), ("?fps=0", b"fps=0")):
        code, h, body = s.http("GET", "/stream.h264" + q)
        check(code == 400 and word in body, f"/stream.h264{q} is refused naming the parameter")

    # The browser's way: {"type":"video","codec":"h264"} over the WebSocket, then one binary
    # message per access unit behind a 16-byte header, after a text message with the codec
    # string for WebCodecs' VideoDecoder.configure().
    ws = WebSocket(s.port)
    ws.recv_until(lambda m: m["type"] == "state")
    ws.send({"type": "video", "codec": "h264", "width": 5})
    m = ws.recv_until(lambda m: m["type"] == "error")
    check("width" in m["error"] and "64" in m["error"], "a bad video setting is refused naming it")
    ws.send({"type": "video", "codec": "h264"})
    texts, units, t0 = [], [], time.monotonic()
    while time.monotonic() - t0 < 2.5:
        op, data = ws.recv_frame()
        if op == 0x1:
            texts.append(json.loads(data))
        elif op == 0x2:
            units.append(data)
    vid = [t for t in texts if t["type"] == "video"]
    check(vid and vid[0]["codec"].startswith("avc1.42") and (vid[0]["width"], vid[0]["height"])
          == (640, 360), f"the codec message comes first: {vid[:1]}")
    hdr = [struct.unpack(">ccHHQH", u[:16]) for u in units]
    check(all(h[0] == b"H" for h in hdr), "every binary message has the 'H' header")
    check(hdr[0][1] == b"\x01" and nal_types(units[0][16:])[:3] == [7, 8, 5],
          "the first one is an IDR (flag 1; SPS, PPS, IDR slice)")
    check(all((h[2], h[3]) == (640, 360) for h in hdr), "and carries the picture size")
    stamps = [h[4] for h in hdr]
    check(all(b > a for a, b in zip(stamps, stamps[1:])), "capture times rise")
    st_w, err_w = probe(b"".join(u[16:] for u in units) + b"\x00\x00\x00\x01\x09")
    check(err_w == "" and int(st_w["nb_read_frames"]) >= FPS * 2.5 * 0.7,
          f"the units decode in ffmpeg, every source frame ({st_w['nb_read_frames']} in 2.5 s)")
    ws.send({"type": "video", "codec": "none"})
    ws.sync()
    check(metrics(s)["okvm_serve_stream_variants"] == 0, "codec none stops it (no encoder left)")
    ws.close()

    deadline = time.monotonic() + 5
    while metrics(s)["okvm_serve_stream_variants"] and time.monotonic() < deadline:
        time.sleep(0.05)
    check(metrics(s)["okvm_serve_stream_variants"] == 0, "no encoder once the last viewer left")
