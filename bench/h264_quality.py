#!/usr/bin/env python3
"""H.264 legibility at its bytes against MJPEG's, on the virtual unit's 1080p desktop (okvm serve
-d emu). For each stream (MJPEG /stream, /stream.h264?kbps=K for a few K) a fresh server has a
known page of text typed into its terminal at 40 characters/s while one viewer reads the stream:
bytes per second over the typing. Then, with the page still, the viewer's last H.264 picture is
decoded (ffmpeg) and compared with GET /snapshot (the device's MJPEG frame the encoder started
from) over the terminal window: PSNR (ffmpeg's psnr filter) and OCR (okvm ocr on that picture, as
a JPEG at quality 95 in a folder: `-d frames:DIR`) as character accuracy against the page typed,
with the MJPEG frame's own OCR beside it. Prints figures; asserts nothing.
Env: OKVM (binary)."""
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from serve_util import free_port  # noqa: E402

OKVM = os.environ.get("OKVM", "build/okvm")
CPS = 40
PAGE = ("Remote over thin links: H.264 to the browser.\n"
        "The quick brown fox jumps over the lazy dog 0123456789\n"
        "$ grep -n 'frame_pool' src/lib/video/*.c | wc -l\n"
        "total 42: drwxr-xr-x root root 4096 Dec  2 06:00 okvm/\n"
        "Sphinx of black quartz, judge my vow! (a+b)*c = 7;\n"
        "PSNR and OCR on the same frames, at equal bytes.\n"
        "[serve] listen = 127.0.0.1:8080  # loopback only\n"
        "ssh -L 5900:localhost:5900 kvm.example.org -N &\n")
LINES = PAGE.count("\n")
# The terminal window's body on the 1920x1080 virtual desktop (src/emu/screen.c: bar 32, margin 40)
TERM = (40, 78, 1840, 962)
TEXT_REGION = (40, 78, 1840, LINES * 21 + 28)  # 21-pixel lines


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return float("nan")


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("GET", path)
    return c.getresponse().read()


def reader(port, path, out, stop):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    s.settimeout(0.2)
    buf = bytearray()
    while not stop.is_set():
        try:
            d = s.recv(262144)
        except socket.timeout:
            continue
        if not d:
            break
        buf += d
        if out.get("t_start") is not None and out.get("n_start") is None:
            out["n_start"] = len(buf)
        if out.get("t_end") is not None and out.get("n_end") is None:
            out["n_end"] = len(buf)
    s.close()
    out["data"] = bytes(buf)


def complete_aus(data):
    """Annex-B up to the last slice's start code: what was read may end inside an access unit."""
    body = data.split(b"\r\n\r\n", 1)[1]
    starts = [m.start() for m in re.finditer(b"\x00\x00\x00\x01[\x01\x05\x21\x25\x41\x45\x61\x65]",
                                             body)]
    if not starts:
        sys.exit(f"h264_quality: no H.264 picture in {len(body)} bytes: {data[:200]!r}")
    return body[:starts[-1]]


def ocr(jpeg_path):
    d = tempfile.mkdtemp()
    shutil.copy(jpeg_path, os.path.join(d, "frame.jpg"))
    r = subprocess.run([OKVM, "-d", f"frames:{d}", "ocr", "--region",
                        ",".join(map(str, TEXT_REGION))], capture_output=True, text=True,
                       timeout=120)
    return r.stdout


def accuracy(got, want):
    """1 - edit distance / length, over the lines with runs of spaces collapsed."""
    norm = lambda t: "\n".join(" ".join(l.split()) for l in t.strip().splitlines() if l.strip())
    a, b = norm(got), norm(want)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        prev = cur
    return max(0.0, 1 - prev[len(b)] / len(b))


def psnr(a, b):
    crop = "crop={2}:{3}:{0}:{1}".format(*TERM)
    p = subprocess.run(["ffmpeg", "-v", "info", "-i", a, "-i", b, "-lavfi",
                        f"[0]{crop},format=yuv444p[x];[1]{crop},format=yuv444p[y];[x][y]psnr",
                        "-f", "null", "-"], capture_output=True, text=True)
    m = re.search(r"PSNR y:([0-9.inf]+).*average:([0-9.inf]+)", p.stderr)
    return (float(m.group(1)), float(m.group(2))) if m else (float("nan"), float("nan"))


def run(path, tmp):
    port = free_port()
    p = subprocess.Popen([OKVM, "serve", "--listen", f"127.0.0.1:{port}", "-d", "emu"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdout.readline()
    out, stop = {}, threading.Event()
    t = threading.Thread(target=reader, args=(port, path, out, stop))
    t.start()
    time.sleep(1.5)  # the viewer's first picture (an IDR) is not the typing's cost
    out["t_start"] = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", f"/api/type?cps={CPS}", body=PAGE.encode())
    c.getresponse().read()
    while metric(port, "okvm_typing_queue") > 0:
        time.sleep(0.05)
    out["t_end"] = time.monotonic()
    ref_end = os.path.join(tmp, "ref-end.jpg")
    open(ref_end, "wb").write(get(port, "/snapshot"))
    time.sleep(2)  # the page still: the viewer's last picture shows it
    ref = os.path.join(tmp, "ref.jpg")
    open(ref, "wb").write(get(port, "/snapshot"))
    time.sleep(0.3)
    stop.set()
    t.join()
    p.terminate()
    p.wait()
    if out.get("n_start") is None:
        out["n_start"] = 0
    if out.get("n_end") is None:
        out["n_end"] = len(out["data"])
    bps = (out["n_end"] - out["n_start"]) / (out["t_end"] - out["t_start"])
    row = {"bps": bps, "ref": ref}
    if "h264" not in path:
        row["ocr"] = accuracy(ocr(ref), PAGE)
        return row
    row["decode_errors"] = 0
    # the last picture read when the typing ended, and the last one read with the page still
    for tag, data, against in (("end", out["data"][:out["n_end"]], ref_end),
                               ("", out["data"], ref)):
        h = os.path.join(tmp, "s.h264")
        open(h, "wb").write(complete_aus(data))
        last = os.path.join(tmp, "last.png")
        d = subprocess.run(["ffmpeg", "-v", "error", "-f", "h264", "-i", h, "-update", "1",
                            "-y", last], capture_output=True, text=True)
        errs = [l for l in d.stderr.splitlines() if l.strip()]
        row["decode_errors"] += len(errs)
        row.setdefault("first_error", errs[0] if errs else "")
        row["psnr_y" + tag], row["psnr" + tag] = psnr(last, against)
        lj = os.path.join(tmp, "last.jpg")
        subprocess.run(["ffmpeg", "-v", "error", "-i", last, "-q:v", "2", "-y", lj], check=True)
        row["ocr" + tag] = accuracy(ocr(lj), PAGE)
    return row


def main():
    if not shutil.which("ffmpeg"):
        sys.exit("h264_quality: needs ffmpeg")
    tmp = tempfile.mkdtemp()
    print(f"okvm serve -d emu (1920x1080), a {len(PAGE)}-character page typed at {CPS}/s;"
          f" one viewer; picture compared over the terminal window ({TERM[2]}x{TERM[3]})")
    print("kbps=0: the server's own bitrate for the size (0.04 bit per pixel and frame);"
          " PSNR in dB against the MJPEG frame, Y and all planes")
    print("'end': the last picture read as the typing ended, against /snapshot then;"
          " 'still': 2 s later")
    print(f"{'stream':<26} {'kB/s':>7} {'of MJPEG':>8} {'end: Y':>7} {'PSNR':>6} {'OCR':>6}"
          f" {'still: Y':>8} {'PSNR':>6} {'OCR':>6}")
    mj = run("/stream", tmp)
    print(f"{'/stream (MJPEG)':<26} {mj['bps'] / 1e3:>7.1f} {'1':>8} {'(ref)':>7} {'':>6}"
          f" {'':>6} {'(ref)':>8} {'':>6} {100 * mj['ocr']:>5.1f}%")
    for k in (100, 200, 400, 800, 1600, 0):
        path = f"/stream.h264?kbps={k}" if k else "/stream.h264 (kbps=0)"
        r = run(path.split(" ")[0], tmp)
        err = (f"  ({r['decode_errors']} decode errors: {r['first_error'][:60]})"
               if r["decode_errors"] else "")
        print(f"{path:<26} {r['bps'] / 1e3:>7.1f} {'1/%.0f' % (mj['bps'] / r['bps']):>8}"
              f" {r['psnr_yend']:>7.1f} {r['psnrend']:>6.1f} {100 * r['ocrend']:>5.1f}%"
              f" {r['psnr_y']:>8.1f} {r['psnr']:>6.1f} {100 * r['ocr']:>5.1f}%{err}")


main()
