"""okvm serve's WebSocket /api/ws: input reaches the backend exactly once, bad messages get an
error and change nothing, several clients are merged, and a client's keys and buttons are
released when it goes away."""
import json

from serve_util import Server, WebSocket, check, fail, passed


def errors_of(ws, n):
    out = []
    for _ in range(n):
        m = ws.recv_until(lambda m: m["type"] in ("error",))
        out.append(m)
    return out


with Server(fps=5) as s:
    a = WebSocket(s.port)
    st = a.recv_until(lambda m: m["type"] == "state")
    check(st["clients"]["sockets"] == 1 and st["clients"]["you"] >= 1 and st["leds"]["caps"] is False,
          "a new client gets a state event with itself in it")

    st = a.recv_until(lambda m: m["type"] == "state" and m["video"]["fps"] >= 2)
    check(st["video"]["fps"] <= 8, "the capture rate is refreshed in state events (source 5 fps)")

    a.send({"type": "key", "code": "KeyA", "down": True})
    a.send({"type": "key", "code": "KeyA", "down": True})      # browser autorepeat
    a.send({"type": "key", "code": "KeyA", "down": False})
    a.sync()
    check([(c["code"], c["down"]) for c in s.calls("key")] == [("KeyA", True), ("KeyA", False)],
          "key down/up reach the backend once each; autorepeat is not forwarded")

    n = len(s.calls())
    bad = [
        "not json at all",
        "[1,2,3]",
        json.dumps({"code": "KeyA", "down": True}),
        json.dumps({"type": "teleport"}),
        json.dumps({"type": "key", "code": "NoSuchKey", "down": True}),
        json.dumps({"type": "key", "code": "Key\"A", "down": True}),
        json.dumps({"type": "key", "code": "KeyA", "down": "yes"}),
        json.dumps({"type": "mouse", "x": 1.01, "y": 0.5}),
        json.dumps({"type": "mouse", "x": -0.1, "y": 0.5}),
        json.dumps({"type": "mouse", "x": 0.5}),
        json.dumps({"type": "mouse", "x": 0.5, "y": 0.5, "buttons": 32}),  # bits 0..4 only
        '{"type":"mouse","x":1e999,"y":0.5}',
        json.dumps({"type": "wheel", "dy": 500}),
        json.dumps({"type": "wheel", "dy": 0.5}),
        json.dumps({"type": "rel", "dx": 1}),
        json.dumps({"type": "rel", "dx": 99999, "dy": 0}),
        json.dumps({"type": "type", "text": ""}),
        json.dumps({"type": "type", "text": "x", "layout": 5}),
        json.dumps({"type": "switch", "to": "moon"}),
        json.dumps({"type": "combo", "combo": "ctrl+banana"}),
    ]
    for b in bad:
        a.send(b)
    errs = errors_of(a, len(bad))
    check(len(errs) == len(bad) and all(e["error"] for e in errs),
          f"each of {len(bad)} bad messages gets its own error reply")
    a.sync()
    check(len(s.calls()) == n, "and none of them reached the backend")
    check(any("unknown key code 'NoSuchKey'" in e["error"] for e in errs),
          "the error names the unknown key code")
    a.send_frame(0x2, b"\x01\x02")
    e = a.recv_until(lambda m: m["type"] == "error")
    check("binary" in e["error"], "a binary message is refused with an error")

    a.send({"type": "mouse", "x": 0.25, "y": 0.5, "buttons": 1})
    a.send({"type": "wheel", "dy": 2})
    a.send({"type": "rel", "dx": 300, "dy": -5})
    a.send({"type": "mouse", "x": 1, "y": 0, "buttons": 0})
    a.sync()
    check(s.calls("mouse")[-2:] == [{"op": "mouse", "x": 0.25, "y": 0.5, "buttons": 1},
                                  {"op": "mouse", "x": 1.0, "y": 0.0, "buttons": 0}],
          "absolute mouse: fractions and buttons reach the backend (edges included)")
    check(s.calls("wheel")[-1]["dy"] == 2 and s.calls("rel")[-1]["dx"] == 300, "wheel and rel")

    # two clients hold the same key: it goes up only when the last one lets go
    b = WebSocket(s.port)
    b.recv_until(lambda m: m["type"] == "state")
    a.send({"type": "key", "code": "ShiftLeft", "down": True})
    a.sync()
    b.send({"type": "key", "code": "ShiftLeft", "down": True})
    b.send({"type": "key", "code": "ControlLeft", "down": True})
    b.send({"type": "mouse", "x": 0.5, "y": 0.5, "buttons": 2})
    b.sync()
    shifts = [c for c in s.calls("key") if c["code"] == "ShiftLeft"]
    check(shifts == [{"op": "key", "code": "ShiftLeft", "down": True}],
          "a key two clients hold is pressed once")
    n = len(s.calls())
    b.close()
    # a's next round trip happens after the server saw b leave (state event first)
    a.recv_until(lambda m: m["type"] == "state" and m["clients"]["sockets"] == 1)
    a.sync()
    after = s.calls()[n:]
    check({"op": "key", "code": "ControlLeft", "down": False} in after,
          "a client's own keys are released when it disconnects")
    check(not any(c.get("code") == "ShiftLeft" for c in after),
          "but not a key another client still holds")
    check({"op": "buttons", "buttons": 0} in after, "and its mouse buttons are released")
    a.send({"type": "key", "code": "ShiftLeft", "down": False})
    a.sync()
    check(s.calls("key")[-1] == {"op": "key", "code": "ShiftLeft", "down": False},
          "the last holder's release lifts it")

    # lock keys: LEDs come back as state
    a.send({"type": "key", "code": "CapsLock", "down": True})
    a.send({"type": "key", "code": "CapsLock", "down": False})
    st = a.recv_until(lambda m: m["type"] == "state" and m["leds"]["caps"])
    check(st["leds"]["caps"] is True, "Caps Lock turns the caps LED on in a state event")

    # typing with progress
    a.send({"type": "type", "text": "abc", "layout": "fr", "cps": 300})
    a.recv_until(lambda m: m["type"] == "ok" and m["ref"] == "type")
    a.recv_until(lambda m: m["type"] == "state" and m["typing"]["done"] == 3
                 and not m["typing"]["active"])
    check("".join(c["text"] for c in s.calls("typed"))[-3:] == "abc"
          and s.calls("type")[-1]["layout"] == "fr", "type: text and layout, progress to the end")

    a.send({"type": "switch", "to": "host"})
    st = a.recv_until(lambda m: m["type"] == "state" and m["usb"] == "host")
    check(st["usb"] == "host", "switch: the USB direction comes back as state")

    # release_all
    a.send({"type": "key", "code": "AltLeft", "down": True})
    a.send({"type": "release_all"})
    a.sync()
    check(s.calls()[-1] == {"op": "release_all"}, "release_all reaches the backend")

    # huge message: closed with 1009, the server lives on
    c = WebSocket(s.port)
    c.recv_until(lambda m: m["type"] == "state")
    c.send(json.dumps({"type": "type", "text": "x" * (300 * 1024)}))
    while c.recv() is not None:
        pass
    check(c.close_code == 1009, "a 300 kB message closes the socket with 1009 (too big)")
    big = "y" * (200 * 1024)
    n_typed = len(s.calls("type"))
    a.send({"type": "type", "text": big, "cps": 10000})
    a.recv_until(lambda m: m["type"] in ("ok", "error") and m.get("ref") == "type")
    check(len(s.calls("type")) == n_typed + 1, "a 200 kB paste (under the limit) is accepted")
    a.send({"type": "release_all"})
    a.sync()

    # Origin check
    try:
        WebSocket(s.port, origin="http://evil.example")
        fail("a foreign Origin was accepted")
    except (ConnectionError, OSError):
        passed("a WebSocket from a foreign Origin is refused")
    d = WebSocket(s.port, origin=f"http://127.0.0.1:{s.port}")
    check(d.recv_until(lambda m: m["type"] == "state")["type"] == "state",
          "a WebSocket from our own Origin is accepted")
    d.close()
    try:
        WebSocket(s.port, path="/elsewhere")
        fail("a WebSocket on another path was accepted")
    except (ConnectionError, OSError):
        passed("WebSocket upgrades are only served at /api/ws")

    # the key held when the process is told to stop is released
    a.send({"type": "key", "code": "KeyZ", "down": True})
    a.sync()

rc = s.proc.returncode
check(rc == 0, "SIGTERM: exit status 0")
tail = s.calls()[-3:]
check({"op": "key", "code": "KeyZ", "down": False} in tail and tail[-1] == {"op": "release_all"},
      "on SIGTERM, keys still held are released and release_all is sent")
