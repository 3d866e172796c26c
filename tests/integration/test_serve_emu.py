"""okvm serve -d emu: the WebSocket and REST input reach the virtual target through the real
CH9329 link and keymap; --emu-events (a FIFO here, read with select) is the oracle."""
# belief: the defaults: GET_INFO answered, ACKs sent, frames cut by LEN, DATAFLIP wired, 10 ms poll
import json
import os
import select
import tempfile
import time

from serve_util import FRAMES, Mjpeg, Server, WebSocket, check, fail, fixture_frames, passed

tmp = tempfile.mkdtemp(prefix="okvm-emu-")
fifo = os.path.join(tmp, "events")
os.mkfifo(fifo)
rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)   # the emulator's open for writing won't wait
buf = b""


def next_event(timeout=15):
    global buf
    end = time.monotonic() + timeout
    while b"\n" not in buf:
        left = end - time.monotonic()
        if left <= 0 or not select.select([rfd], [], [], left)[0]:
            return None
        d = os.read(rfd, 65536)
        if not d:
            select.select([], [], [], 0.01)  # no writer yet (EOF on a FIFO): try again shortly
            continue
        buf += d
    line, buf = buf.split(b"\n", 1)
    return json.loads(line)


def expect(pred, what, limit=400):
    seen = []
    for _ in range(limit):
        e = next_event()
        if e is None:
            break
        seen.append(e)
        if pred(e):
            return seen
    fail(f"{what}: not seen in {seen[-20:]}")


def text_until(want):
    got = ""
    while got != want:
        e = next_event()
        if e is None:
            fail(f"text: got {got!r}, want {want!r}")
        if e["type"] == "text":
            got += e["text"]
            if not want.startswith(got):
                fail(f"text: got {got!r}, want {want!r}")
    return got


with Server("-d", "emu", "--emu-events", fifo, "--emu-layout", "de", "--layout", "de") as s:
    a = WebSocket(s.port)
    st = a.recv_until(lambda m: m["type"] == "state")
    check(st["unit"] == "virtual unit (emu)" and st["target"]["connected"],
          "state: the virtual unit, target connected")
    expect(lambda e: e["type"] == "usb" and e["connected"], "the target sees the keyboard")

    for code in ("KeyH", "KeyI"):
        a.send({"type": "key", "code": code, "down": True})
        a.send({"type": "key", "code": code, "down": False})
    text_until("hi")
    passed("browser key codes type 'hi' on the virtual target")

    # Media keys share one report: a second one pressed and let go while the first is held
    # leaves the first held (hardware.md 2.13: id 2, volume up 0x01 and mute 0x04 in byte 0).
    media = []
    for code, down in (("AudioVolumeUp", True), ("AudioVolumeMute", True),
                       ("AudioVolumeMute", False), ("AudioVolumeUp", False)):
        a.send({"type": "key", "code": code, "down": down})
        media.append(expect(lambda e: e["type"] == "media", f"media {code} {down}")[-1])
    check([(m["id"], m["bits"][0]) for m in media] == [(2, 0x01), (2, 0x05), (2, 0x01), (2, 0)],
          f"media keys from the page: held ones stay held ({[m['bits'] for m in media]})")

    a.send({"type": "type", "text": "Grüße, wörld!\n", "layout": "de"})
    a.recv_until(lambda m: m["type"] == "ok")
    text_until("Grüße, wörld!\n")
    a.recv_until(lambda m: m["type"] == "state" and m["typing"]["done"] == 14
                 and not m["typing"]["active"])
    passed("a paste on a German target arrives as German text, progress to the end")

    a.send({"type": "mouse", "x": 0.5, "y": 0.25, "buttons": 1})
    a.send({"type": "mouse", "x": 0.5, "y": 0.25, "buttons": 0})
    seen = expect(lambda e: e["type"] == "mouse" and e["buttons"] == 0 and e["x"] == 2048,
                  "mouse release")
    check(any(e["type"] == "mouse" and e["x"] == 2048 and e["y"] == 1024 and e["buttons"] == 1
              for e in seen), "a click at (0.5, 0.25) lands at chip (2048, 1024)")

    a.send({"type": "key", "code": "CapsLock", "down": True})
    a.send({"type": "key", "code": "CapsLock", "down": False})
    expect(lambda e: e["type"] == "leds" and e["caps"], "caps LED")
    a.recv_until(lambda m: m["type"] == "state" and m["leds"]["caps"])
    passed("Caps Lock: the target's LED comes back to the page")
    a.send({"type": "key", "code": "CapsLock", "down": True})
    a.send({"type": "key", "code": "CapsLock", "down": False})
    expect(lambda e: e["type"] == "leds" and not e["caps"], "caps LED off")

    st, r = s.json("POST", "/api/key?combo=ctrl+alt+delete")
    seen = expect(lambda e: e["type"] == "key" and e["usage"] == 0x4C and not e["down"], "delete up")
    downs = [e["usage"] for e in seen if e["type"] == "key" and e["down"]]
    check(st == 200 and downs == [0xE0, 0xE2, 0x4C], "POST /api/key ctrl+alt+delete")

    # The USB switch: the same code as `okvm switch` (MS2109 register, then the DTR pulse).
    st, r = s.json("GET", "/api/state")
    check(r["usb"] == "host", f"state: the switchable port starts at the host ({r['usb']})")
    st, r = s.json("POST", "/api/switch?to=target")
    seen = expect(lambda e: e["type"] == "usb_power" and e["on"], "port powered again")
    kinds = [(e["type"], e.get("to", e.get("on"))) for e in seen
             if e["type"] in ("switch", "usb_power")]
    check(st == 200 and kinds == [("switch", "target"), ("usb_power", False), ("usb_power", True)],
          f"POST /api/switch: register write, then the DTR pulse ({kinds})")
    a.recv_until(lambda m: m["type"] == "state" and m["usb"] == "target")
    passed("the USB switch moves to the target and the page hears of it")

    b = WebSocket(s.port)
    b.recv_until(lambda m: m["type"] == "state")
    b.send({"type": "key", "code": "ShiftLeft", "down": True})
    expect(lambda e: e["type"] == "key" and e["usage"] == 0xE1 and e["down"], "shift down")
    b.close()
    expect(lambda e: e["type"] == "key" and e["usage"] == 0xE1 and not e["down"], "shift up")
    passed("a client that disconnects gets its Shift released on the target")

    a.send({"type": "key", "code": "KeyZ", "down": True})
    expect(lambda e: e["type"] == "key" and e["usage"] == 0x1D and e["down"], "z down")
rest = []
while True:
    e = next_event(timeout=5)
    if e is None:
        break
    rest.append(e)
check({"type": "key", "usage": 0x1D, "down": False} in rest,
      "SIGTERM with a key held: the target sees it released")

# The virtual unit's own screen as the video (no --video frames:).
with Server("-d", "emu", backend=[]) as s:
    m = Mjpeg(s.port)
    h, jpeg = m.part()
    check(jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9", "-d emu streams its screen")
    ws = WebSocket(s.port)
    st = ws.recv_until(lambda m: m["type"] == "state" and m["video"]["signal"])
    check(st["video"]["width"] == 1920 and st["video"]["height"] == 1080 and st["input"],
          "state: the virtual screen's mode, input on")
    st, h, data = s.http("GET", "/snapshot")
    check(st == 200 and data[:2] == b"\xff\xd8", "snapshot of the virtual screen")
    ws.close()
    m.close()

# A video-only unit: frames from a folder, no keyboard.
with Server("-d", f"frames:{FRAMES}@10", backend=[]) as s:
    frames = fixture_frames()
    m = Mjpeg(s.port)
    h, jpeg = m.part()
    check(jpeg in frames, "-d frames:PATH streams the folder's JPEGs unchanged")
    ws = WebSocket(s.port)
    st = ws.recv_until(lambda m: m["type"] == "state")
    check(st["input"] is False, "state: a video-only unit has no input")
    ws.send({"type": "key", "code": "KeyA", "down": True})
    e = ws.recv_until(lambda m: m["type"] == "error")
    check("video only" in e["error"], "a key on a video-only unit is refused: " + e["error"])
    st, r = s.json("POST", "/api/key?combo=a")
    check(st == 501, "REST input on a video-only unit: 501")
    ws.close()
    m.close()
