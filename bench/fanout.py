#!/usr/bin/env python3
"""okvm serve benchmarks (ARCHITECTURE section 6), printed as figures:
  1. MJPEG fan-out of a 1080p source at 30 fps to 1, 10, 50 and 100 clients, with one more
     client that never reads: per-client fps (min/mean), server CPU (% of one core), RSS, and
     frame-ready -> written to one client p50/p99 and to every waiting client ("all", the
     ARCHITECTURE budget) p99, both server side (/metrics), and capture -> read by the last
     client of each frame p99 (client side).
  2. WebSocket key -> backend with 20 stream clients connected: round trip of a key event
     followed by a ping (the key is handled before the pong is queued, so this bounds it).
Env: OKVM (binary), OKVM_BUILD (build dir, for make_frames and fanout_client), SECONDS."""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
from serve_util import WebSocket, free_port  # noqa: E402

OKVM = os.environ.get("OKVM", "build/okvm")
BUILD = os.environ.get("OKVM_BUILD", "build")
SECS = float(os.environ.get("SECONDS_PER_RUN", "8"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def rss_kb(pid, key="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def start(frames, fps=30):
    port = free_port()
    p = subprocess.Popen([OKVM, "serve", "--listen", f"127.0.0.1:{port}", "-d",
                          f"frames:{frames}@{fps}"], stdout=subprocess.PIPE)
    p.stdout.readline()
    return p, port


def metric(port, name):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return float("nan")


def fanout(frames, n):
    p, port = start(frames)
    c0, t0 = cpu_s(p.pid), time.monotonic()
    out = subprocess.run([os.path.join(BUILD, "bench", "fanout_client"), str(port), str(n),
                          str(SECS), "1"], capture_output=True, text=True, check=True)
    c1, t1 = cpu_s(p.pid), time.monotonic()
    r = json.loads(out.stdout)
    r["cpu_pct"] = 100 * (c1 - c0) / (t1 - t0)
    r["rss_mb"] = rss_kb(p.pid) / 1024
    r["rss_peak_mb"] = rss_kb(p.pid, "VmHWM") / 1024
    r["srv_p50_ms"] = 1e3 * metric(port, 'okvm_serve_frame_write_seconds{quantile="0.5"}')
    r["srv_p99_ms"] = 1e3 * metric(port, 'okvm_serve_frame_write_seconds{quantile="0.99"}')
    r["all_srv_p50_ms"] = 1e3 * metric(port, 'okvm_serve_frame_fanout_seconds{quantile="0.5"}')
    r["all_srv_p99_ms"] = 1e3 * metric(port, 'okvm_serve_frame_fanout_seconds{quantile="0.99"}')
    r["incomplete"] = metric(port, "okvm_serve_frame_fanout_incomplete_total")
    r["stalls"] = metric(port, "okvm_serve_stream_stalls_total")
    p.terminate()
    p.wait()
    return r


def syscalls(frames, n, secs=5):
    """System calls of the server per client-frame with n readers (strace -c over secs s):
    (poll, sendmsg, all) per frame delivered. None when strace cannot attach."""
    import shutil
    if not shutil.which("strace"):
        return None
    p, port = start(frames)
    cl = subprocess.Popen([os.path.join(BUILD, "bench", "fanout_client"), str(port), str(n),
                           str(secs + 3), "0"], stdout=subprocess.DEVNULL)
    time.sleep(1.5)
    out = tempfile.mktemp(prefix="okvm-strace-")
    f0 = metric(port, "okvm_serve_frames_total")
    r = subprocess.run(["timeout", "-s", "INT", str(secs), "strace", "-c", "-f", "-q", "-o", out,
                        "-p", str(p.pid)], capture_output=True)
    f1 = metric(port, "okvm_serve_frames_total")
    cl.wait()
    p.terminate()
    p.wait()
    counts = {}
    try:
        for line in open(out):
            w = line.split()
            if len(w) >= 5 and w[3].isdigit():
                counts[w[-1]] = int(w[3])
        os.unlink(out)
    except OSError:
        return None
    sent = max(f1 - f0, 1)
    if r.returncode not in (0, 124) or not counts:
        return None
    return (counts.get("poll", 0) / sent, counts.get("sendmsg", 0) / sent,
            counts.get("total", sum(counts.values())) / sent)


def ws_latency(frames, n_streams=20, n=500):
    p, port = start(frames)
    bg = subprocess.Popen([os.path.join(BUILD, "bench", "fanout_client"), str(port),
                           str(n_streams), str(SECS + 20), "0"], stdout=subprocess.DEVNULL)
    time.sleep(1.5)  # let the stream clients connect (benchmark, not a test)
    ws = WebSocket(port)
    ws.recv_until(lambda m: m["type"] == "state")
    lat = []
    for i in range(n):
        t = time.monotonic()
        ws.send({"type": "key", "code": "KeyA", "down": i % 2 == 0})
        ws.send({"type": "ping", "t": i})
        ws.recv_until(lambda m: m["type"] == "pong" and m.get("t") == i)
        lat.append(time.monotonic() - t)
    ws.close()
    bg.terminate()
    bg.wait()
    p.terminate()
    p.wait()
    lat.sort()
    return lat[n // 2] * 1e3, lat[int(n * 0.99)] * 1e3, lat[-1] * 1e3


def main():
    tmp = tempfile.mkdtemp(prefix="okvm-bench-")
    subprocess.run([os.path.join(BUILD, "bench", "make_frames"), tmp, "1920", "1080", "8", "80"],
                   check=True)
    size = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp)) / 8
    print(f"source: 1920x1080 JPEG, mean {size / 1024:.0f} KiB, 30 fps; {SECS:.0f} s per run;"
          f" one extra client never reads")
    print("srv: server side, ready -> written; one: per client; all: the last waiting client of"
          " each frame; cli all: capture -> read by the last client")
    print(f"{'clients':>7} {'min fps':>8} {'mean fps':>8} {'cpu %':>6} {'rss MB':>7} {'peak MB':>7}"
          f" {'one p50':>8} {'one p99':>8} {'all p50':>8} {'all p99':>8} {'cli all':>8}"
          f" {'late':>5} {'stalled':>7}")
    rss1 = None
    for n in (1, 10, 50, 100):
        r = fanout(tmp, n)
        rss1 = r["rss_mb"] if rss1 is None else rss1
        per = f"  ({(r['rss_mb'] - rss1) * 1024 / (n - 1):.0f} KiB per reader)" if n > 1 else ""
        print(f"{n:>7} {r['min_fps']:>8.1f} {r['mean_fps']:>8.1f} {r['cpu_pct']:>6.1f}"
              f" {r['rss_mb']:>7.1f} {r['rss_peak_mb']:>7.1f} {r['srv_p50_ms']:>6.2f}ms"
              f" {r['srv_p99_ms']:>6.2f}ms {r['all_srv_p50_ms']:>6.2f}ms"
              f" {r['all_srv_p99_ms']:>6.2f}ms {r['all_p99_ms']:>6.2f}ms"
              f" {int(r['incomplete']):>5} {int(r['stalls']):>7}{per}")
    for n in (10, 100):
        sc = syscalls(tmp, n)
        if sc:
            print(f"system calls per client-frame at {n} readers: poll {sc[0]:.2f},"
                  f" sendmsg {sc[1]:.2f}, all {sc[2]:.2f} (strace -c, which slows the server)")
    p50, p99, mx = ws_latency(tmp)
    print(f"WebSocket key+ping -> pong with 20 stream clients: p50 {p50:.2f} ms, p99 {p99:.2f} ms,"
          f" max {mx:.2f} ms (n=500)")


main()
