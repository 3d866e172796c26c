#!/usr/bin/env python3
"""okvm view plays the target's sound (issue 15 item 2), under Xvfb with SDL's disk audio
driver: SDL_AUDIODRIVER=disk writes what the viewer plays, raw S16 48 kHz stereo, to
SDL_DISKAUDIOFILE in real time. The oracle is sox on that file: the virtual unit's 440 Hz test
tone at -40 dBFS, and exactly one 100 ms 1 kHz burst at -12 dBFS, after the key xdotool
pressed in the window (the file's size when the key went is the earliest it may start).
--no-audio and [view] audio = off: no file. Exit 0 pass, 1 fail, 77 skipped."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from array import array

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_view import OKVM, Xvfb, View, check, wait_for, xdo, FAILS  # noqa: E402
from okvmtest import read_events  # noqa: E402

RATE = 48000
FRAME = 4  # bytes: S16 stereo


def sox_stat(path, start=None, length=None):
    """sox's stat of the left channel of raw S16 48 kHz stereo: {name: value}."""
    cmd = ["sox", "-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16", "-c", "2", path,
           "-n", "remix", "1"]
    if start is not None:
        cmd += ["trim", "%ds" % start, "%ds" % length]
    p = subprocess.run(cmd + ["stat"], capture_output=True, text=True, timeout=60)
    out = {}
    for line in p.stderr.splitlines():
        if ":" in line:
            k, v = line.rsplit(":", 1)
            try:
                out[k.strip()] = float(v)
            except ValueError:
                pass
    return out


def bursts(samples, level=3000):
    """(first frame, frames) of each run of loud left samples (gaps under 5 ms joined)."""
    runs, start, last = [], None, None
    for i in range(0, len(samples), 2):
        if abs(samples[i]) > level:
            f = i // 2
            if start is None or f - last > 240:
                if start is not None:
                    runs.append((start, last - start + 1))
                start = f
            last = f
    if start is not None:
        runs.append((start, last - start + 1))
    return runs


def test_sound(x, tmp):
    snd = os.path.join(tmp, "played.raw")
    ev = os.path.join(tmp, "ev.jsonl")
    trace = os.path.join(tmp, "lat.txt")
    v = View(x, ["-d", "emu", "--emu-events", ev, "--emu-video", "320x180@10", "view"],
             env={"SDL_AUDIODRIVER": "disk", "SDL_DISKAUDIOFILE": snd,
                  "OKVM_VIEW_AUDIO_TRACE": trace})
    try:
        wait_for(lambda: "320x180" in v.title(), timeout=10)
        xdo(x, "windowfocus", "--sync", v.wid)
        wait_for(lambda: os.path.exists(snd) and os.path.getsize(snd) > RATE * FRAME,
                 timeout=10)
        at_key = os.path.getsize(snd) // FRAME if os.path.exists(snd) else 0
        xdo(x, "key", "a")
        wait_for(lambda: any(e.get("type") == "key" for e in read_events(ev)), timeout=5)
        time.sleep(1.0)
    finally:
        rc, err = v.stop()
    check(rc == 0, "view -d emu exits 0 (%d: %s)" % (rc, err.strip()[-300:]))
    if not os.path.exists(snd):
        check(False, "sound: SDL's disk driver wrote %s" % snd)
        return
    data = open(snd, "rb").read()
    frames = len(data) // FRAME
    check(frames > 2 * RATE, "sound: more than 2 s played (%.2f s)" % (frames / RATE))
    pcm = array("h")
    pcm.frombytes(data[:frames * FRAME])
    runs = bursts(pcm)
    check(len(runs) == 1, "sound: exactly one loud burst (%r)" % runs)
    if len(runs) != 1:
        return
    b0, blen = runs[0]
    check(b0 >= at_key, "sound: the burst starts after the key (frame %d, key at %d)"
          % (b0, at_key))
    check(abs(blen - RATE // 10) < 480, "sound: the burst lasts 100 ms (%.1f ms)"
          % (blen * 1000 / RATE))
    s = sox_stat(snd, b0 + 480, RATE // 20)
    check(abs(s.get("Rough   frequency", 0) - 1000) < 50 and
          abs(s.get("RMS     amplitude", 0) - 0.251 / 2 ** 0.5) < 0.02,
          "sound: sox: the burst is 1 kHz at -12 dBFS (%r)" % s)
    # the test tone: half a second before the key (past the start's silence)
    s = sox_stat(snd, at_key - RATE // 2, RATE // 2)
    check(abs(s.get("Rough   frequency", 0) - 440) < 20 and
          abs(s.get("Maximum amplitude", 0) - 0.01) < 0.002,
          "sound: sox: the 440 Hz test tone at -40 dBFS before the key (%r)" % s)
    lat = [int(line) for line in open(trace) if not line.startswith("#")] \
        if os.path.exists(trace) else []
    check(len(lat) > 100, "trace: a latency figure per chunk played (%d)" % len(lat))


def test_off(x, tmp):
    for args, conf, what in ((["view", "--no-audio"], None, "--no-audio"),
                             (["view"], "[view]\naudio = off\n", "[view] audio = off")):
        snd = os.path.join(tmp, "off.raw")
        extra = []
        if conf:
            cfg = os.path.join(tmp, "okvm.conf")
            with open(cfg, "w") as f:
                f.write(conf)
            extra = ["--config", cfg]
        v = View(x, ["-d", "emu", "--emu-video", "320x180@10"] + args + extra,
                 env={"SDL_AUDIODRIVER": "disk", "SDL_DISKAUDIOFILE": snd})
        try:
            wait_for(lambda: "320x180" in v.title(), timeout=10)
            time.sleep(1.0)
        finally:
            rc, err = v.stop()
        check(rc == 0 and not os.path.exists(snd),
              "%s: no sound played (no file; exit %d)" % (what, rc))
        if os.path.exists(snd):
            os.unlink(snd)


def test_cli():
    p = subprocess.run([OKVM, "view", "--help"], capture_output=True, text=True)
    check("--no-audio" in p.stdout and "--pcm" in p.stdout, "help: --no-audio and --pcm")
    e = dict(os.environ, HOME=tempfile.mkdtemp(prefix="okvm-va-home-"), DISPLAY=":0")
    p = subprocess.run([OKVM, "-d", "emu", "view", "--pcm", "nosuchpcm"], capture_output=True,
                       text=True, env=e, timeout=30)
    check(p.returncode == 1 and "nosuchpcm" in p.stderr and len(p.stderr.splitlines()) == 1,
          "--pcm that does not exist: exits 1 with one line (%r)" % p.stderr.strip())


def main():
    for tool in ("Xvfb", "xdotool", "sox"):
        if not shutil.which(tool):
            print("skip: no %s (scripts/install-deps --test)" % tool)
            return 77
    tmp = tempfile.mkdtemp(prefix="okvm-view-audio-")
    x = Xvfb(tmp)
    try:
        test_cli()
        test_sound(x, tmp)
        test_off(x, tmp)
    finally:
        x.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILS:
        print("%d failed" % len(FAILS))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
