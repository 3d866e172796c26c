#!/usr/bin/env python3
"""okvm view's budgets (issue 15): capture -> on screen, decode time alone, CPU and RSS at
1080p30, and ffplay (Debian's ffmpeg package) on the same MJPEG stream for comparison.

Runs in an Xvfb of its own (SDL's default renderer there; SDL_RENDER_DRIVER to choose). The
stream: 1920x1080 MJPEG, 4:2:2 as the MS2109 sends it (ffmpeg's testsrc2, -q:v 3), looped at
30 fps by `-d frames:FILE@30`. okvm view writes one line per presented frame to
OKVM_VIEW_TRACE: seq, capture time, decode start, decode end, present end (CLOCK_MONOTONIC us),
so "on screen" here means SDL_RenderPresent returned (the X server's copy to the screen
follows). Prints figures; asserts nothing. Other jobs on the machine change the numbers.

Sound (issue 15 item 2): `okvm -d emu view` with SDL's disk audio driver (SDL_AUDIODRIVER=disk,
paced like a device: a 10 ms buffer every 10 ms) and OKVM_VIEW_AUDIO_TRACE, which gives, for
each 10 ms chunk, the time from its capture to when SDL's buffer holding its first frame has
played (the callback's time + the device buffer): capture -> played. A real sound server or
card adds its own output buffer after SDL's.

    OKVM=build/okvm python3 bench/view.py [SECONDS]
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

OKVM = os.environ.get("OKVM", "build/okvm")
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
HZ = os.sysconf("SC_CLK_TCK")
# a second of video, looped: the frames: source holds the whole file in memory (in the RSS)
FRAMES = 30


def start_xvfb(tmp):
    r, w = os.pipe()
    p = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1920x1200x24",
                          "-nolisten", "tcp"], pass_fds=(w,), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    os.close(w)
    num = b""
    while not num.endswith(b"\n"):
        c = os.read(r, 1)
        if not c:
            raise SystemExit("Xvfb did not start")
        num += c
    os.close(r)
    return p, ":" + num.decode().strip()


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / HZ  # utime + stime


def rss_mb(pid):
    kb = {}
    for line in open("/proc/%d/status" % pid):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            kb[k] = int(v.split()[0])
    return kb.get("VmRSS", 0) / 1024, kb.get("VmHWM", 0) / 1024


def measure(cmd, env, log, warm=2.0):
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    time.sleep(warm)
    if p.poll() is not None:
        raise SystemExit("%s exited: %s" % (cmd[0], open(log).read()))
    c0, t0 = cpu_s(p.pid), time.monotonic()
    time.sleep(SECONDS)
    c1, t1 = cpu_s(p.pid), time.monotonic()
    rss, hwm = rss_mb(p.pid)
    p.terminate()
    p.wait(timeout=15)
    return (c1 - c0) / (t1 - t0) * 100, rss, hwm


def renderer(env):
    """The SDL renderer okvm view picks here (its -v log line)."""
    for line in open(env["OKVM_VIEW_LOG"]):
        if "renderer" in line:
            return line.split("view: ")[1].strip()
    return "?"


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))]


def sound(env, tmp):
    lat = os.path.join(tmp, "audio-lat")
    aenv = dict(env, SDL_AUDIODRIVER="disk", SDL_DISKAUDIOFILE=os.path.join(tmp, "audio.raw"),
                OKVM_VIEW_AUDIO_TRACE=lat)
    cpu, rss, _ = measure([OKVM, "-d", "emu", "--emu-video", "320x180@5", "view"], aenv,
                          os.path.join(tmp, "audio.log"))
    xs, tail = [], ""
    for line in open(lat):
        if line.startswith("#"):
            tail = line[1:].strip()
        elif line.strip():
            xs.append(int(line) / 1000)
    xs = xs[len(xs) // 5:]  # after the warm-up
    if not xs:
        print("okvm view sound: no figures (%s)" % tail)
        return
    print("okvm view sound (-d emu, SDL disk driver, 10 ms chunks, ring target 40 ms): "
          "capture -> played p50 %.1f ms, p95 %.1f ms, max %.1f ms over %d chunks; %s"
          % (pct(xs, 0.5), pct(xs, 0.95), max(xs), len(xs), tail))


def main():
    for tool in ("Xvfb", "ffmpeg"):
        if not shutil.which(tool):
            raise SystemExit("bench/view.py needs %s (scripts/install-deps --test)" % tool)
    tmp = tempfile.mkdtemp(prefix="okvm-bench-view-")
    xvfb, display = start_xvfb(tmp)
    try:
        mjpeg = os.path.join(tmp, "1080p.mjpeg")
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                        "testsrc2=size=1920x1080:rate=30", "-frames:v", str(FRAMES), "-pix_fmt",
                        "yuvj422p", "-q:v", "3", "-f", "mjpeg", mjpeg], check=True)
        size = os.path.getsize(mjpeg) / FRAMES / 1024
        env = dict(os.environ, DISPLAY=display)
        env.pop("WAYLAND_DISPLAY", None)
        trace = os.path.join(tmp, "trace")
        venv = dict(env, OKVM_VIEW_TRACE=trace, OKVM_VIEW_LOG=os.path.join(tmp, "view.log"))
        cpu, rss, hwm = measure([OKVM, "-v", "-d", "frames:%s@30" % mjpeg, "view"], venv,
                                venv["OKVM_VIEW_LOG"])
        rows = [list(map(int, l.split())) for l in open(trace) if l.strip()]
        rows = rows[len(rows) // 5:]  # after the warm-up
        lat = [(r[4] - r[1]) / 1000 for r in rows]
        dec = [(r[3] - r[2]) / 1000 for r in rows]
        pres = [(r[4] - r[3]) / 1000 for r in rows]
        span = (rows[-1][4] - rows[0][4]) / 1e6 if len(rows) > 1 else 1
        print("stream: 1920x1080 MJPEG 4:2:2, %.0f KiB/frame, 30 fps, %.0f s per run"
              % (size, SECONDS))
        print("okvm view: %.1f fps shown, renderer %s" % ((len(rows) - 1) / span,
                                                      renderer(venv)))
        print("okvm view: capture -> presented p50 %.1f ms, p95 %.1f ms (budget: 33.3 ms + "
              "decode)" % (pct(lat, 0.5), pct(lat, 0.95)))
        print("okvm view: decode alone (tjDecompressToYUVPlanes) p50 %.1f ms, p95 %.1f ms"
              % (pct(dec, 0.5), pct(dec, 0.95)))
        print("okvm view: texture upload + present p50 %.1f ms" % statistics.median(pres))
        fps = (len(rows) - 1) / span
        print("okvm view: CPU %.1f%% of a core (%.2f ms per shown frame), RSS %.1f MB (peak "
              "%.1f; budget 40)" % (cpu, cpu * 10 / fps, rss, hwm))
        fp = shutil.which("ffplay")
        if fp:
            fcpu, frss, fhwm = measure([fp, "-v", "error", "-nostats", "-loop", "0", "-an",
                                        "-f", "mjpeg", "-framerate", "30", "-i", mjpeg], env,
                                       os.path.join(tmp, "ffplay.log"))
            print("ffplay:    CPU %.1f%% of a core (%.2f ms per frame), RSS %.1f MB (peak "
                  "%.1f)" % (fcpu, fcpu * 10 / 30, frss, fhwm))
            print("okvm view / ffplay CPU: %.2f" % (cpu / fcpu if fcpu else float("nan")))
        else:
            print("ffplay: not installed (Debian's ffmpeg package has it)")
        b = subprocess.run(["ffmpeg", "-nostats", "-benchmark", "-threads", "1", "-f",
                            "mjpeg", "-i", mjpeg, "-f", "null", "-"], capture_output=True,
                           text=True)
        for line in b.stdout.splitlines() + b.stderr.splitlines():
            if line.startswith("bench:") and "utime" in line:
                ut = float(line.split("utime=")[1].split("s")[0])
                print("ffmpeg decode alone (1 thread): %.1f ms per frame" % (ut * 1000 / FRAMES))
        sound(env, tmp)
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
