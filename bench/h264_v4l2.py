#!/usr/bin/env python3
"""What okvm itself spends per H.264 picture besides the encoder, at 1080p: the CPU time of the
variant's thread (okvm-variant: JPEG decode to YUV planes, 4:2:2 -> 4:2:0, the copy into the
V4L2 encoder's buffer, as I420 or interleaved to NV12, and the ioctls) per picture, with the
LD_PRELOAD fake of a Pi's encoder in its no-encode mode (tests/fakes/preload-v4l2m2m.c,
OKVM_FAKE_M2M_ENCODE=none: it hands back a few bytes, so nothing of its own is counted). The
encoder's own cost on a real device is not measured here (nobody here has one): the fake's
openh264 would say nothing about a Pi's hardware. openh264 in okvm is the comparison row.
okvm serve -d emu, 1920x1080 virtual desktop, 40 characters/s typed, one /stream.h264 viewer;
the virtual unit's rendering runs on other threads and is not counted. Prints figures; asserts
nothing. Env: OKVM (binary), OKVM_BUILD (for the fake; default: the binary's folder),
SECONDS_PER_RUN (8)."""
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from serve_util import free_port  # noqa: E402

OKVM = os.environ.get("OKVM", "build/okvm")
BUILD = os.environ.get("OKVM_BUILD") or os.path.dirname(os.path.abspath(OKVM))
FAKE = os.path.join(BUILD, "tests", "fakes", "preload-v4l2m2m.so")
SECS = float(os.environ.get("SECONDS_PER_RUN", "8"))
TICK = os.sysconf("SC_CLK_TCK")
TEXT = "The quick brown fox jumps over the lazy dog 0123456789. " * 4 + "\n"


def variant_cpu_s(pid):
    """CPU seconds of the okvm-variant threads."""
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            st = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue
        comm = st.split("(", 1)[1].rsplit(")", 1)[0]
        if comm == "okvm-variant":
            f = st.rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / TICK
    return total


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return line
    return ""


def count(port, name):
    line = metric(port, name)
    return float(line.split()[-1]) if line else float("nan")


def typist(port, stop):
    while not stop.is_set():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", "/api/type?cps=40", body=TEXT.encode())
        c.getresponse().read()
        while not stop.is_set() and count(port, "okvm_typing_queue") > 0:
            time.sleep(0.2)


def row(label, encoder, env):
    tmp = tempfile.mkdtemp(prefix="okvm-bench-")
    conf = os.path.join(tmp, "okvm.conf")
    with open(conf, "w") as f:
        f.write(f"[serve]\nh264_encoder = {encoder}\n")
    os.chmod(conf, 0o600)
    port = free_port()
    e = dict(os.environ, HOME=tmp, **env)
    p = subprocess.Popen([OKVM, "serve", "--config", conf, "--listen", f"127.0.0.1:{port}",
                          "-d", "emu"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=e)
    p.stdout.readline()
    stop = threading.Event()
    threading.Thread(target=typist, args=(port, stop), daemon=True).start()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /stream.h264 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    s.settimeout(0.5)

    def drain(secs):
        t0 = time.monotonic()
        while time.monotonic() - t0 < secs:
            try:
                s.recv(262144)
            except socket.timeout:
                pass

    drain(1.5)  # the encoder is open and warm
    c0, n0, t0 = variant_cpu_s(p.pid), count(port, "okvm_serve_variant_frames_total"), \
        time.monotonic()
    drain(SECS)
    c1, n1, t1 = variant_cpu_s(p.pid), count(port, "okvm_serve_variant_frames_total"), \
        time.monotonic()
    name = metric(port, "okvm_serve_h264_encoders").split('name="')[-1].split('"')[0]
    s.close()
    stop.set()
    p.terminate()
    p.wait()
    pics = n1 - n0
    ms = 1000 * (c1 - c0) / pics if pics else float("nan")
    print(f"{label:<34} {name:<22} {pics / (t1 - t0):>6.1f} {ms:>10.2f} "
          f"{100 * (c1 - c0) / (t1 - t0):>7.1f}")


def main():
    if not os.path.exists(FAKE):
        sys.exit(f"no {FAKE}: build first (ninja -C BUILD)")
    fake = {"LD_PRELOAD": FAKE, "OKVM_FAKE_M2M_PATH": "/dev/video11",
            "OKVM_FAKE_M2M_ENCODE": "none"}
    print(f"okvm serve -d emu, 1920x1080, 40 characters/s typed, one /stream.h264 viewer, "
          f"{SECS:.0f} s per row; load average {os.getloadavg()[0]:.1f}")
    print(f"{'row':<34} {'encoder':<22} {'pic/s':>6} {'ms/picture':>10} {'% core':>7}")
    row("openh264 (decode + 4:2:0 + encode)", "openh264", {})
    row("V4L2, YU12 (fake: no encode)", "auto", fake)
    row("V4L2, NV12 (fake: no encode)", "auto", dict(fake, OKVM_FAKE_M2M_OUTPUT="NV12"))
    print(f"load average after: {os.getloadavg()[0]:.1f}")


main()
