#!/usr/bin/env python3
"""okvm serve with the virtual unit's adapter on the extension pins: GET/POST /api/power and
"power" in /api/state; a target that is off has no HDMI signal on the stream, and gets one when
it is powered on through the API. The --emu-events file is the oracle for the presses."""
import json
import os
import socket
import tempfile
import time

from serve_util import Mjpeg, Server, WebSocket, check, fail, passed

tmp = tempfile.mkdtemp(prefix="okvm-pins-serve-")
events = os.path.join(tmp, "ev.jsonl")


def evs():
    try:
        with open(events) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def wait(pred, what, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    fail(f"{what}; events {[e for e in evs() if e['type'] != 'console']}")


def signal_of(srv):
    st, j = srv.json("GET", "/api/state")
    check(st == 200, f"/api/state {st}")
    return j["video"]["signal"], j["power"]


backend = ["-d", "emu", "--emu-pins", "usb-serial", "--emu-power", "off", "--emu-events", events,
           "--emu-video", "640x360@10"]
with Server(backend=backend) as srv:
    st, j = srv.json("GET", "/api/power")
    check(st == 200 and j["state"] == "off" and j["busy"] is False and j["led"] is True,
          f"GET /api/power: {st} {j}")
    passed("GET /api/power says off")
    stream = Mjpeg(srv.port)  # somebody watches: the capture runs
    h, jpeg = stream.part()
    sig, power = wait(lambda: (lambda s: s if s[0] is False else None)(signal_of(srv)),
                      "the stream of an off target has a signal")
    check(power == {"available": True, "state": "off", "busy": False}, f"state's power {power}")
    passed("off: no signal on the stream, power off in /api/state")

    st, j = srv.json("POST", "/api/power?action=off")
    check(st == 200 and j["ok"] and j["done"] is False and "already off" in j["message"],
          f"off on a stopped target: {st} {j}")
    check(not [e for e in evs() if e["type"] == "atx"], "off on a stopped target pressed")
    passed("POST off on a stopped target does nothing and says so")

    st, j = srv.json("POST", "/api/power?action=on")
    check(st == 202 and j["started"] and j["action"] == "on", f"POST on: {st} {j}")
    st, j = srv.json("POST", "/api/power?action=reset")
    check(st == 409 and "another press" in j["error"], f"a second press: {st} {j}")
    passed("POST on starts a press; a second one while it runs is 409")
    wait(lambda: (lambda j: j["state"] == "on" and not j["busy"])(srv.json("GET", "/api/power")[1]),
         "the target never came on")
    check([(e["switch"], e["closed"]) for e in evs() if e["type"] == "atx"] ==
          [("power", True), ("power", False)], "the press as the header saw it")
    check(("on", "button") in [(e["state"], e["cause"]) for e in evs() if e["type"] == "power"],
          "no power-on event")
    wait(lambda: signal_of(srv)[0] is True, "no signal after power on")
    for _ in range(3):
        stream.part()  # frames still come
    stream.close()
    passed("on: the power LED, the events and the HDMI signal")

    st, j = srv.json("POST", "/api/power?action=sideways")
    check(st == 400 and "action is on, off" in j["error"], f"bad action: {st} {j}")
    st, j = srv.json("POST", "/api/power")
    check(st == 400, f"no action: {st} {j}")
    passed("a bad action is 400")


def console_until(ws, want, timeout=10):
    """Bytes (binary frames) until want appears; the text messages seen on the way."""
    out, ctl = b"", []
    ws.sock.settimeout(timeout)
    while want not in out:
        op, data = ws.recv_frame()
        if op == 2:
            out += data
        elif op == 1:
            ctl.append(json.loads(data))
    return out, ctl


def console_msg(ws, pred, timeout=10):
    ws.sock.settimeout(timeout)
    while True:
        op, data = ws.recv_frame()
        if op == 1 and pred(json.loads(data)):
            return json.loads(data)


with Server(backend=["-d", "emu", "--emu-pins", "usb-serial", "--emu-power", "on",
                     "--emu-events", events]) as srv:
    a = WebSocket(srv.port, path="/api/console")
    hello = console_msg(a, lambda m: m["type"] == "console")
    check(hello["connected"] and hello["writer"] and hello["baud"] == 115200, f"hello {hello}")
    a.send({"type": "in", "data": "root\r"})
    out, _ = console_until(a, b"root\r\nPassword: ")
    b = WebSocket(srv.port, path="/api/console")  # a late viewer gets the scrollback
    out, ctl = console_until(b, b"root\r\nPassword: ")
    check(any(m.get("writer") is False and m.get("viewers") == 2 for m in ctl), f"b: {ctl}")
    passed("a late viewer gets the scrollback and is a viewer")
    b.send({"type": "in", "data": "x"})
    err = console_msg(b, lambda m: m["type"] == "error")
    check("you are a viewer" in err["error"], f"viewer typed: {err}")
    typed = "".join(e["text"] for e in evs() if e["type"] == "console" and e["dir"] == "in")
    check(typed == "root\r", f"the target got {typed!r}")
    passed("one writer: a viewer's keys are refused and never reach the target")
    stalled = WebSocket(srv.port, path="/api/console")  # never reads from here on
    stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    b.send({"type": "take"})
    console_msg(b, lambda m: m["type"] == "console" and m["writer"])
    # 20 logins of 40 characters each: about 2 kB of echo and prompts, for both viewers
    b.send({"type": "in", "data": ("y" * 40 + "\rpw\r") * 20})
    for ws in (b, a):
        out = b""
        while out.count(b"Login incorrect") < 20:
            more, _ = console_until(ws, b"login: ")
            out += more
    passed("a viewer that stops reading holds nobody back; take moves the writer")
    stalled.sock.close()
    a.sock.close()
    b.sock.close()

with Server(backend=["-d", "emu"]) as srv:
    st, j = srv.json("GET", "/api/power")
    check(st == 404 and "no power control" in j["error"], f"no pins: {st} {j}")
    st, j = srv.json("POST", "/api/power?action=on")
    check(st == 503, f"no pins, POST: {st} {j}")
    st, j = srv.json("GET", "/api/state")
    check(j["power"] == {"available": False, "state": "unknown"}, f"state {j['power']}")
    passed("without an adapter: 404/503 and power unavailable in the state")
