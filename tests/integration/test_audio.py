#!/usr/bin/env python3
"""okvm audio, end to end. The real ALSA path: an ALSA configuration (a ~/.asoundrc in a temp
HOME) whose capture PCM is alsa-lib's `file` plugin reading a raw 48 kHz stereo S16_LE file
made by sox, so okvm reads it through snd_pcm_readi like a sound card; the WAV must hold those
samples byte for byte, and sox (a reader nobody here wrote) must find the rate, channels, level
and frequency. The virtual unit's sound (-d emu): sox finds its quiet 440 Hz test tone; and a key pressed on `okvm emulate`
comes out of okvm audio as a 100 ms 1 kHz tone, through a FIFO read by an ALSA `file` PCM.
SIGINT mid-run leaves a complete WAV; bad usage exits 2, a missing PCM exits 1.
Exit 0 = pass, 1 = fail, 77 = skipped (no sox)."""
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

OKVM = os.environ.get("OKVM", "build/okvm")
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def run(args, env=None, timeout=60):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([OKVM] + args, capture_output=True, env=e, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode(errors="replace")


def sox_stat(path, channel=1):
    """sox's stat of one channel, as a dict of floats, plus the header's rate and channels."""
    p = subprocess.run(["sox", path, "-n", "remix", str(channel), "stat"], capture_output=True,
                       text=True)
    out = {}
    for line in p.stderr.splitlines():
        m = re.match(r"^(.+?):\s+(-?[\d.]+)$", line.strip())
        if m:
            out[m.group(1).strip()] = float(m.group(2))
    info = subprocess.run(["soxi", path], capture_output=True, text=True).stdout
    out["rate"] = int(re.search(r"Sample Rate\s*:\s*(\d+)", info).group(1))
    out["channels"] = int(re.search(r"Channels\s*:\s*(\d+)", info).group(1))
    out["encoding"] = re.search(r"Sample Encoding\s*:\s*(.+)", info).group(1).strip()
    return out


def test_alsa_file(tmp):
    raw = os.path.join(tmp, "in.raw")
    # 1 kHz on the left at half scale, 3 kHz on the right at a quarter: channels stay apart
    subprocess.run(["sox", "-n", "-r", "48000", "-c", "2", "-b", "16", "-e", "signed-integer",
                    "-t", "raw", raw, "synth", "3", "sine", "1000", "sine", "3000",
                    "remix", "1v0.5", "2v0.25"], check=True)
    home = os.path.join(tmp, "home")
    os.mkdir(home)
    with open(os.path.join(home, ".asoundrc"), "w") as f:
        f.write('pcm.okvmtest {\n\ttype file\n\tslave.pcm "null"\n\tfile "/dev/null"\n'
                '\tinfile "%s"\n\tformat "raw"\n}\n' % raw)
    out = os.path.join(tmp, "a.wav")
    rc, so, se = run(["audio", "--pcm", "okvmtest", "-o", out, "--seconds", "2"],
                     env={"HOME": home})
    check(rc == 0, "alsa file PCM: exits 0 (%d: %s)" % (rc, se.strip()))
    check("96000 frames" in so, "alsa file PCM: reports 96000 frames (%r)" % so)
    data = open(out, "rb").read()
    check(data[44:] == open(raw, "rb").read()[:2 * 48000 * 4],
          "alsa file PCM: the WAV holds the PCM's samples byte for byte")
    left, right = sox_stat(out, 1), sox_stat(out, 2)
    check(left["rate"] == 48000 and left["channels"] == 2 and "Signed" in left["encoding"],
          "alsa file PCM: sox reads 48000 Hz, 2 channels, signed 16-bit (%s)" % left)
    check(abs(left["Length (seconds)"] - 2.0) < 0.001, "alsa file PCM: 2.000 s long")
    check(abs(left["Rough   frequency"] - 1000) < 20 and abs(right["Rough   frequency"] - 3000)
          < 60, "alsa file PCM: 1 kHz left, 3 kHz right (%.0f, %.0f)"
          % (left["Rough   frequency"], right["Rough   frequency"]))
    check(abs(left["RMS     amplitude"] - 0.5 / 2 ** 0.5) < 0.01 and
          abs(right["RMS     amplitude"] - 0.25 / 2 ** 0.5) < 0.01,
          "alsa file PCM: levels as made (%.3f, %.3f)"
          % (left["RMS     amplitude"], right["RMS     amplitude"]))


def test_emu(tmp):
    out = os.path.join(tmp, "e.wav")
    t0 = time.monotonic()
    rc, so, se = run(["-d", "emu", "audio", "-o", out, "--seconds", "1.5"])
    took = time.monotonic() - t0
    check(rc == 0, "emu: exits 0 (%d: %s)" % (rc, se.strip()))
    st = sox_stat(out)
    check(st["rate"] == 48000 and st["channels"] == 2 and abs(st["Length (seconds)"] - 1.5)
          < 0.001, "emu: 1.5 s of 48 kHz stereo")
    check(took >= 1.4, "emu: paced in real time (%.2f s)" % took)
    check(abs(st["Rough   frequency"] - 440) < 10 and abs(st["RMS     amplitude"] - 0.00707)
          < 0.001, "emu: the quiet 440 Hz test tone at -40 dBFS (%.0f Hz, RMS %.5f)"
          % (st["Rough   frequency"], st["RMS     amplitude"]))

    out = os.path.join(tmp, "s.wav")
    p = subprocess.Popen([OKVM, "-d", "emu", "audio", "-o", out], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    so, se = p.communicate(timeout=20)
    st = sox_stat(out)
    n = int(re.search(rb"(\d+) frames", so).group(1)) if re.search(rb"(\d+) frames", so) else -1
    check(p.returncode == 0 and abs(st["Length (seconds)"] * 48000 - n) < 1 and n > 48000,
          "SIGINT: a complete WAV with the frames reported (%d, %s)" % (p.returncode, n))


def window_rms(path, w=480):
    """RMS of the left channel per 10 ms window, in sample units."""
    d = open(path, "rb").read()[44:]
    left = struct.unpack("<%dh" % (len(d) // 2), d)[0::2]
    return [(sum(x * x for x in left[i:i + w]) / w) ** 0.5 for i in range(0, len(left) - w + 1, w)]


def test_key_tone(tmp):
    """The whole way: a key pressed on the virtual target (okvm emulate) -> its sound, written
    in real time to a FIFO (--audio-out) -> an ALSA `file` PCM whose infile is that FIFO ->
    okvm audio. One key press gives one 100 ms burst of 1 kHz over the quiet test tone."""
    d = os.path.join(tmp, "kt")
    os.mkdir(d)
    fifo, tty, home = os.path.join(d, "snd.fifo"), os.path.join(d, "tty"), os.path.join(d, "h")
    os.mkfifo(fifo)
    os.mkdir(home)
    with open(os.path.join(home, ".asoundrc"), "w") as f:
        f.write('pcm.okvmfifo {\n\ttype file\n\tslave.pcm "null"\n\tfile "/dev/null"\n'
                '\tinfile "%s"\n\tformat "raw"\n}\n' % fifo)
    emu = subprocess.Popen([OKVM, "emulate", "--link", tty, "--audio-out", fifo],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        emu.stdout.readline()  # ready
        out = os.path.join(d, "k.wav")
        e = dict(os.environ, HOME=home)
        rec = subprocess.Popen([OKVM, "audio", "--pcm", "okvmfifo", "-o", out, "--seconds", "3"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
        time.sleep(1.2)
        rc, so, se = run(["--serial", tty, "key", "a"])
        check(rc == 0, "key tone: okvm key a reaches the virtual target (%d: %s)" % (rc, se))
        so, se = rec.communicate(timeout=30)
        check(rec.returncode == 0, "key tone: okvm audio exits 0 (%d: %s)"
              % (rec.returncode, se.decode().strip()))
    finally:
        emu.send_signal(signal.SIGTERM)
        emu.communicate(timeout=20)
    rms = window_rms(out)
    loud = [i for i, r in enumerate(rms) if r > 3000]
    quiet = [r for i, r in enumerate(rms) if r <= 3000]
    check(len(rms) == 300, "key tone: 3 s read through the FIFO PCM (%d windows)" % len(rms))
    check(9 <= len(loud) <= 11 and loud == list(range(loud[0], loud[0] + len(loud))),
          "key tone: one burst of about 100 ms (%d windows of 10 ms at %s)"
          % (len(loud), loud[:1]))
    check(loud and 0.5 < loud[0] / 100 < 2.5, "key tone: after the key, not before (%.2f s)"
          % (loud[0] / 100 if loud else -1))
    check(all(abs(r - 232) < 10 for r in quiet), "key tone: the test tone around it (-40 dBFS)")
    if loud:
        p = subprocess.run(["sox", out, "-n", "trim", "%.3f" % (loud[0] / 100 + 0.01), "0.07",
                            "remix", "1", "stat"], capture_output=True, text=True)
        freq = [float(x.split(":")[1]) for x in p.stderr.splitlines() if "Rough" in x]
        check(freq and abs(freq[0] - 1000) < 60, "key tone: the burst is 1 kHz (sox: %s)" % freq)


def test_usage(tmp):
    for args, what in (([], "no -o"), (["-o", "x.wav", "--seconds", "x"], "bad --seconds"),
                       (["-o", "x.wav", "--seconds", "-2"], "negative --seconds"),
                       (["-o", "x.wav", "--bogus"], "unknown option"),
                       (["-o", "x.wav", "more"], "extra argument")):
        rc, so, se = run(["-d", "emu", "audio"] + args)
        check(rc == 2 and se.startswith("okvm: ") and len(se.strip().splitlines()) == 1,
              "usage: %s exits 2 with one line (%d, %r)" % (what, rc, se))
    rc, so, se = run(["audio", "--pcm", "okvm-no-such-pcm", "-o", os.path.join(tmp, "n.wav")])
    check(rc == 1 and "okvm-no-such-pcm" in se and len(se.strip().splitlines()) == 1 and not os.path.exists(os.path.join(tmp, "n.wav")),
          "no such PCM: exits 1, names it, writes nothing (%d: %r)" % (rc, se))


def main():
    if not shutil.which("sox") or not shutil.which("soxi"):
        print("skip: no sox")
        return 77
    tmp = tempfile.mkdtemp(prefix="okvm-audio-")
    old = os.getcwd()
    os.chdir(tmp)
    try:
        test_usage(tmp)
        test_alsa_file(tmp)
        test_emu(tmp)
        test_key_tone(tmp)
    finally:
        os.chdir(old)
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILS:
        print("%d failed" % len(FAILS))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
