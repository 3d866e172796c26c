#!/usr/bin/env python3
"""okvm serve with the virtual unit's adapter on the extension pins: GET/POST /api/power and
"power" in /api/state; a target that is off has no HDMI signal on the stream, and gets one when
it is powered on through the API. The --emu-events file is the oracle for the presses."""
import json
import os
import tempfile
import time

from serve_util import Mjpeg, Server, check, fail, passed

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

with Server(backend=["-d", "emu"]) as srv:
    st, j = srv.json("GET", "/api/power")
    check(st == 404 and "no power control" in j["error"], f"no pins: {st} {j}")
    st, j = srv.json("POST", "/api/power?action=on")
    check(st == 503, f"no pins, POST: {st} {j}")
    st, j = srv.json("GET", "/api/state")
    check(j["power"] == {"available": False, "state": "unknown"}, f"state {j['power']}")
    passed("without an adapter: 404/503 and power unavailable in the state")
