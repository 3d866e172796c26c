"""Reduced MJPEG streams (`/stream?fps=N&q=Q&width=W`, docs/api.md): a client on a thin link
asks for fewer, smaller or lighter frames; every client of the same setting shares one encoder,
and clients without parameters keep the device's frames byte for byte."""
import struct
import threading
import time

from serve_util import Mjpeg, Server, check, fixture_frames, metrics

frames = fixture_frames()
FPS = 25


def size_of(jpeg):
    """(width, height) from the JPEG's SOF0 header."""
    i = jpeg.find(b"\xff\xc0")
    if i < 0:
        raise ValueError("no SOF0")
    h, w = struct.unpack(">HH", jpeg[i + 5:i + 9])
    return w, h


def count_parts(m, secs):
    n, t0 = 0, time.monotonic()
    parts = []
    while time.monotonic() - t0 < secs:
        parts.append(m.part())
        n += 1
    return parts


with Server(fps=FPS) as s:
    src_w, src_h = size_of(frames[0])

    # Bad values are refused with a message naming the parameter and the range.
    for q, word in (("fps=0", "fps=0"), ("fps=abc", "fps=abc"), ("q=101", "q=101"),
                    ("width=10", "width=10"), ("q=80x", "q=80x")):
        st, h, body = s.http("GET", f"/stream?{q}")
        check(st == 400 and word.encode() in body and b"from" in body,
              f"/stream?{q} is refused (400) naming the value and the range")

    # Width: a smaller picture, at a scale the decoder makes itself (n/8 of the source).
    small = Mjpeg(s.port, "/stream?width=320")
    same1 = Mjpeg(s.port, "/stream?width=320")
    plain = Mjpeg(s.port)
    h0, j0 = small.part()
    w, hh = size_of(j0)
    check((w, hh) == (src_w // 2, src_h // 2), f"width=320 of a {src_w}x{src_h} source is"
          f" {src_w // 2}x{src_h // 2} (got {w}x{hh})")
    check(j0 not in frames and len(j0) < min(len(f) for f in frames),
          "the reduced frame is a new, smaller JPEG")
    check(int(h0["content-length"]) == len(j0) and "x-timestamp" in h0,
          "its part has Content-Length and the device frame's X-Timestamp")
    _, j1 = same1.part()
    check(size_of(j1) == (w, hh), "a second client of the same setting gets the same size")
    mt = metrics(s)
    check(mt["okvm_serve_stream_variants"] == 1,
          "two clients of one setting share one encoder (one variant running)")
    p = [plain.part()[1] for _ in range(5)]
    check(all(j in frames for j in p), "a client without parameters still gets the device's"
          " frames byte for byte")

    # Both reduced clients keep up with the source, the plain one too.
    got = {}

    def run(name, m):
        got[name] = count_parts(m, 3)

    ths = [threading.Thread(target=run, args=(n, m))
           for n, m in (("small", small), ("same", same1), ("plain", plain))]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    for name in ("small", "same", "plain"):
        fps = len(got[name]) / 3
        check(fps >= FPS * 0.7, f"{name} client: {fps:.1f} fps of a {FPS} fps source")
    stamps = [float(h["x-timestamp"]) for h, _ in got["small"]]
    check(all(b > a for a, b in zip(stamps, stamps[1:])), "reduced frames come in capture order")

    # Quality: lower q, fewer bytes, same size.
    low = Mjpeg(s.port, "/stream?q=20")
    _, jl = low.part()
    _, jl = low.part()
    check(size_of(jl) == (src_w, src_h), "q=20 keeps the size")
    check(len(jl) < 0.7 * min(len(f) for f in frames),
          f"q=20 is smaller than the device's frames ({len(jl)} vs {min(len(f) for f in frames)})")
    mt = metrics(s)
    check(mt["okvm_serve_stream_variants"] == 2, "a second setting runs a second variant")
    check(mt["okvm_serve_variant_frames_total"] > 0, "/metrics counts re-encoded frames")

    # Frame rate only: the device's own JPEGs, fewer of them (no re-encoding).
    slow = Mjpeg(s.port, "/stream?fps=5")
    slow.part()
    parts = count_parts(slow, 3)
    n = len(parts)
    check(all(j in frames for _, j in parts), "fps=5 alone passes the device's JPEGs through")
    check(10 <= n <= 20, f"fps=5 gives about 5 frames per second ({n} in 3 s)")
    stamps = [float(h["x-timestamp"]) for h, _ in parts]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    check(min(gaps) >= 0.15, f"and no two are closer than the limit allows (min gap"
          f" {min(gaps) * 1000:.0f} ms)")

    for m in (small, same1, plain, low, slow):
        m.close()
    deadline = time.monotonic() + 5
    while metrics(s)["okvm_serve_stream_variants"] and time.monotonic() < deadline:
        time.sleep(0.05)
    check(metrics(s)["okvm_serve_stream_variants"] == 0,
          "when the last client of a setting leaves, its encoder stops")
    check(s.alive(), "the server is still up")
