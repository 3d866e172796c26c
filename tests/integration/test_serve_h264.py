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

from h264_util import H264, nal_types, probe, whole_units  # noqa: F401
from serve_util import Server, WebSocket, check, fail, metrics

FPS = 25
if not shutil.which("ffprobe") or not shutil.which("ffmpeg"):
    print("SKIP: ffprobe/ffmpeg not installed (scripts/install-deps --test installs ffmpeg)")
    sys.exit(77)


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
