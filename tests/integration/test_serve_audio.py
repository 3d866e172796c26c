"""The unit's sound over the WebSocket ({"type":"audio"}, docs/api.md, docs/audio.md) on the
virtual unit: the text message, binary messages tagged 'A' with a 16-byte header, 960 frames
(20 ms) each, consecutive sequence numbers and capture times 20 ms apart; PCM holding the
virtual unit's 440 Hz test tone at -40 dBFS and a 1 kHz burst after a key; Opus that libopus's
own decoder (through ctypes) turns back into the same tone; nothing captured before anyone asks
or after the last listener stops."""
import ctypes
import ctypes.util
import math
import os
import struct
import sys
import time

from serve_util import Server, WebSocket, check, fail, metrics

RATE, FRAMES = 48000, 960


def binaries(ws, count, limit=2000):
    """The next count binary messages (text messages are kept in texts)."""
    out, texts = [], []
    for _ in range(limit):
        op, data = ws.recv_frame()
        if op == 0x2:
            out.append(data)
            if len(out) == count:
                return out, texts
        elif op == 0x1:
            texts.append(data)
        elif op == 0x8:
            fail("server closed the WebSocket")
    fail(f"only {len(out)} binary messages")


def header(m):
    tag, codec, frames, seq, ts = struct.unpack("!cBHIQ", m[:16])
    return tag, codec, frames, seq, ts


def left(pcm_bytes):
    v = struct.unpack(f"<{len(pcm_bytes) // 2}h", pcm_bytes)
    return list(v[0::2]), list(v[1::2])


def amp(x, f):
    """Amplitude of frequency f in x (a correlation: a sine of amplitude A gives A)."""
    c = sum(v * math.cos(2 * math.pi * f * i / RATE) for i, v in enumerate(x))
    s = sum(v * math.sin(2 * math.pi * f * i / RATE) for i, v in enumerate(x))
    return 2 * math.hypot(c, s) / len(x)


def audio_threads(pid):
    out = []
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            name = open(f"/proc/{pid}/task/{t}/comm").read().strip()
        except OSError:
            continue
        if name == "okvm-audio":
            for line in open(f"/proc/{pid}/task/{t}/status"):
                if line.startswith("voluntary_ctxt_switches:"):
                    out.append(int(line.split()[1]))  # each 20 ms of capture sleeps
    return out


def opus_decoder():
    name = ctypes.util.find_library("opus")
    if not name:
        return None
    lib = ctypes.CDLL(name)
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                ctypes.POINTER(ctypes.c_int16), ctypes.c_int, ctypes.c_int]
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    err = ctypes.c_int()
    dec = lib.opus_decoder_create(RATE, 2, ctypes.byref(err))
    return lib, dec


def main():
    with Server() as srv:
        pid = srv.proc.pid
        ws = WebSocket(srv.port)
        ws.sync()
        check(audio_threads(pid) == [], "no audio thread before anyone asks for audio")
        m = metrics(srv)
        check((m["okvm_serve_audio_listeners"], m["okvm_serve_audio_capturing"],
               m["okvm_serve_audio_messages_total"]) == (0, 0, 0), "/metrics: no listener, no capture")

        ws.send({"type": "audio", "codec": "mp3"})
        m = ws.recv_until(lambda m: m["type"] == "error")
        check("opus" in m["error"] and "pcm" in m["error"], f"a bad codec is refused: {m}")

        ws.send({"type": "audio", "codec": "pcm"})
        first = ws.recv_until(lambda m: m["type"] == "audio")
        check(first == {"type": "audio", "codec": "pcm", "rate": 48000, "channels": 2,
                        "frame_ms": 20}, f"the audio text message: {first}")
        t0 = time.monotonic()
        msgs, _ = binaries(ws, 100)
        wall = time.monotonic() - t0
        hs = [header(m) for m in msgs]
        check(all(h[0] == b"A" and h[1] == 0 and h[2] == FRAMES for h in hs),
              "every message: tag 'A', codec 0 (PCM), 960 frames")
        check(all(len(m) == 16 + FRAMES * 4 for m in msgs), "PCM messages are 16 + 3840 bytes")
        seqs = [h[3] for h in hs]
        check(seqs == list(range(seqs[0], seqs[0] + 100)), f"sequence numbers +1 each {seqs[:20]}")
        dts = {hs[i + 1][4] - hs[i][4] for i in range(99)}
        check(dts == {20000}, f"capture times 20 ms apart: {sorted(dts)[:5]}")
        check(1.0 < wall < 6.0, f"100 messages (2 s of sound) in real time: {wall:.2f} s")
        print(f"# 100 PCM messages in {wall:.2f} s of wall time (machine shared)")

        sound = b"".join(m[16:] for m in msgs)
        l, r = left(sound)
        a440, a1k = amp(l[:RATE // 2], 440), amp(l[:RATE // 2], 1000)
        check(300 < a440 < 360 and a1k < 10,
              f"the 440 Hz test tone at -40 dBFS (amplitude {a440:.0f}, 1 kHz {a1k:.0f})")
        check(abs(amp(r[:RATE // 2], 440) - a440) < 5, "both channels")

        m = metrics(srv)
        check(m["okvm_serve_audio_listeners"] == 1 and m["okvm_serve_audio_capturing"] == 1 and
              m["okvm_serve_audio_messages_total"] >= 100,
              f"/metrics: one listener, capturing, the messages counted "
              f"({m['okvm_serve_audio_messages_total']:.0f})")
        busy = audio_threads(pid)
        time.sleep(0.5)
        busy = audio_threads(pid)[0] - busy[0]
        check(busy >= 5, f"the audio thread works while someone listens ({busy} wakeups in 0.5 s)")
        ws.send({"type": "key", "code": "KeyA", "down": True})
        ws.send({"type": "key", "code": "KeyA", "down": False})
        msgs, _ = binaries(ws, 50)
        l, _ = left(b"".join(m[16:] for m in msgs))
        loud = [i for i in range(len(l) // 480) if amp(l[i * 480:(i + 1) * 480], 1000) > 4000]
        check(len(loud) in (10, 11) and loud == list(range(loud[0], loud[0] + len(loud))) if loud
              else False, f"one 100 ms burst of 1 kHz after the key (10 ms blocks: {loud})")

        ws.send({"type": "audio", "codec": "none"})
        ws.sync()
        time.sleep(0.3)
        before = audio_threads(pid)
        ws.sock.settimeout(1.0)
        got = 0
        try:
            while True:
                op, _ = ws.recv_frame()
                got += op == 0x2
        except (TimeoutError, OSError):
            pass
        after = audio_threads(pid)
        check(got == 0, f"no binary messages after \"none\" ({got})")
        m = metrics(srv)
        check((m["okvm_serve_audio_listeners"], m["okvm_serve_audio_capturing"]) == (0, 0),
              "/metrics: no listener, the source closed")
        check(before == after, f"the audio thread sleeps with no listener ({before} -> {after} wakeups in 1 s)")
        ws.sock.settimeout(20)
        ws.close()

        dec = opus_decoder()
        if dec is None:
            print("# libopus not found by ctypes: the Opus part skipped")
            return
        lib, d = dec
        ws = WebSocket(srv.port)
        ws.send({"type": "audio", "codec": "opus"})
        m = ws.recv_until(lambda m: m["type"] == "audio")
        check(m["codec"] == "opus", f"Opus announced: {m}")
        msgs, _ = binaries(ws, 50)
        hs = [header(x) for x in msgs]
        check(all(h[0] == b"A" and h[1] == 1 and h[2] == FRAMES for h in hs),
              "Opus messages: tag 'A', codec 1, 960 frames")
        sizes = [len(x) - 16 for x in msgs]
        check(all(0 < n < 1500 for n in sizes), f"one Opus packet each ({min(sizes)}-{max(sizes)})")
        print(f"# Opus packets {min(sizes)}-{max(sizes)} bytes, "
              f"{sum(sizes) * 8 / len(sizes) / 0.02 / 1000:.0f} kbit/s")
        buf = (ctypes.c_int16 * (FRAMES * 2 * 6))()
        pcm = []
        counts = []
        for x in msgs:
            n = lib.opus_decode(d, x[16:], len(x) - 16, buf, FRAMES * 6, 0)
            counts.append(n)
            pcm.extend(buf[i] for i in range(0, max(n, 0) * 2, 2))
        check(set(counts) == {FRAMES}, f"each decodes to 960 frames ({set(counts)})")
        lib.opus_decoder_destroy(d)
        a440 = amp(pcm[RATE // 2:RATE], 440)
        check(280 < a440 < 380, f"Opus carries the 440 Hz tone (amplitude {a440:.0f})")
        ws.close()
        for _ in range(50):
            m = metrics(srv)
            if m["okvm_serve_audio_listeners"] == 0 and m["okvm_serve_audio_capturing"] == 0:
                break
            time.sleep(0.1)
        check((m["okvm_serve_audio_listeners"], m["okvm_serve_audio_capturing"]) == (0, 0),
              "a listener that leaves is one fewer: the source closed")
        print("ok: audio over the WebSocket")


main()
