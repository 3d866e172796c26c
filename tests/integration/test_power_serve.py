#!/usr/bin/env python3
"""okvm serve's power backends beyond the adapter's lines (issue 16), and its console for MCP.
- backend = vbus: /api/power drives the switchable port's power through the unit's DTR; the
  virtual unit's usb_power events are the oracle (off stays off, on, cycle = off then on).
- backend = hidrelay (the hidraw fake plays a 16c0:05df board): /api/power presses the relay,
  byte-exact feature reports; the web console is the adapter on the pins, not the hidraw node.
- the adapter unplugged mid-press (okvm emulate's SIGUSR2): okvm power exits 1 saying so and the
  target's header sees the switch open at once; in okvm serve /api/power reports it, and the
  next press after the replug goes through the new port.
- MCP over /mcp: serial_wait_for_text / serial_send_text on serve's console (the console events
  hold exactly the bytes sent)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import OKVM, check, read_events, run  # noqa: E402
from serve_util import FRAMES, Server, WebSocket, passed  # noqa: E402

TMP = tempfile.mkdtemp(prefix="okvm-power-serve-")
BUILD = os.environ.get("OKVM_BUILD", os.path.dirname(os.path.abspath(OKVM)))


def conf(text, name):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def wait(pred, what, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    check(False, what)


def idle_power(srv):
    """/api/power once no press runs (and one has ended)."""
    def done():
        st, j = srv.json("GET", "/api/power")
        return j if st == 200 and not j["busy"] and "last" in j else None
    return wait(done, "the press never ended")


def kinds(evs, *types):
    return [e for e in evs if e["type"] in types]


# ---- backend = vbus ----
events = os.path.join(TMP, "vbus.jsonl")
VBUS = conf("[power]\nbackend = vbus\ncycle_off_ms = 300\n", "vbus.conf")
with Server("--config", VBUS, backend=["-d", "emu", "--emu-events", events],
            env={"HOME": TMP}) as srv:
    st, j = srv.json("GET", "/api/power")
    check(st == 200 and j["backend"] == "vbus" and j["state"] == "on" and j["led"] is False,
          f"GET /api/power (vbus): {st} {j}")
    base = len(kinds(read_events(events), "usb_power"))
    st, j = srv.json("POST", "/api/power?action=off")
    check(st == 202 and j["started"], f"POST off: {st} {j}")
    j = idle_power(srv)
    check(j["state"] == "off" and j["last_failed"] is False and "unpowered" in j["last"],
          f"after off: {j}")
    check("error" not in j, f"GET /api/power (vbus) carries no error: {j}")
    ev = kinds(read_events(events), "usb_power")[base:]
    check([e["on"] for e in ev] == [False], f"usb_power events after off: {ev}")
    time.sleep(0.5)
    ev = kinds(read_events(events), "usb_power")[base:]
    check([e["on"] for e in ev] == [False], f"off did not last: {ev}")
    st, j = srv.json("GET", "/api/state")
    check(j["power"]["state"] == "off", f"state: {j['power']}")
    st, j = srv.json("POST", "/api/power?action=off")
    check(st == 200 and j["done"] is False and "already unpowered" in j["message"],
          f"off twice: {st} {j}")
    passed("vbus: off cuts the switchable port's power and it stays off; off again does nothing")
    st, j = srv.json("POST", "/api/power?action=on")
    check(st == 202, f"POST on: {st} {j}")
    j = idle_power(srv)
    check(j["state"] == "on", f"after on: {j}")
    st, j = srv.json("POST", "/api/power?action=cycle")
    check(st == 202, f"POST cycle: {st} {j}")
    time.sleep(0.1)
    j = idle_power(srv)
    ev = kinds(read_events(events), "usb_power")[base:]
    check([e["on"] for e in ev] == [False, True, False, True] and j["state"] == "on",
          f"usb_power events after on, cycle: {ev}; {j}")
    passed("vbus: on powers the port again; cycle is off then on (the DTR pulse)")

# ---- backend = hidrelay, with the adapter on the pins as the console ----
NODE = "/dev/hidraw7"
LOG = os.path.join(TMP, "hidraw7.log")


def preload():
    fake = os.path.join(BUILD, "tests", "fakes", "libpreload-hidraw.so")
    ldd = subprocess.run(["ldd", OKVM], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        asan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                              text=True).stdout.strip()
        return asan + ":" + fake
    return fake


def frame(cmd, ch):
    return "00 %02x %02x 00 00 00 00 00 00" % (cmd, ch)


def relay_reports():
    if not os.path.exists(LOG):
        return []
    with open(LOG) as f:
        return [(w[0], " ".join(w[1:-1])) for w in (line.split() for line in f)]


RELAY = conf(f"[power]\nbackend = hidrelay\ndevice = {NODE}\npower_channel = 1\n"
             "reset_channel = 2\nreset_ms = 150\n", "relay.conf")
events = os.path.join(TMP, "relay.jsonl")
env = {"HOME": TMP, "LD_PRELOAD": preload(), "OKVM_FAKE_HIDRAW_DIR": TMP,
       "OKVM_FAKE_HIDRAW_ID": "16c0:05df"}
with Server("--config", RELAY, backend=["-d", "emu", "--emu-pins", "usb-serial", "--emu-power",
                                        "on", "--emu-events", events], env=env) as srv:
    st, j = srv.json("GET", "/api/power")
    check(st == 200 and j["backend"] == "hidrelay" and j["state"] == "unknown" and
          j["led"] is False and j["device"] == NODE and "error" not in j,
          f"GET /api/power (hidrelay): {st} {j}")
    st, j = srv.json("POST", "/api/power?action=reset")
    check(st == 202, f"POST reset: {st} {j}")
    j = idle_power(srv)
    check(j["last_failed"] is False and "relay channel 2" in j["last"], f"after reset: {j}")
    sets = [b for d, b in relay_reports() if d == "set"]
    check(sets == [frame(0xFF, 2), frame(0xFD, 2)], f"relay reports: {relay_reports()}")
    check(not kinds(read_events(events), "atx"), "the relay press touched the adapter's lines")
    passed("hidrelay in okvm serve: POST reset closes and opens channel 2, byte-exact")
    ws = WebSocket(srv.port, path="/api/console")
    ws.sock.settimeout(10)
    hello = None
    while hello is None:
        op, data = ws.recv_frame()
        if op == 1 and json.loads(data)["type"] == "console":
            hello = json.loads(data)
    check(hello["connected"] and hello["tty"] != NODE and "pts" in hello["tty"],
          f"the console next to the relay: {hello}")
    ws.send({"type": "in", "data": "x"})
    out = b""
    while b"x" not in out:
        op, data = ws.recv_frame()
        if op == 2:
            out += data
    ws.sock.close()
    passed("hidrelay in okvm serve: the web console is the pins' adapter, not the hidraw node")


# ---- the adapter unplugged mid-press ----
class Unit:
    def __init__(self, power):
        self.dir = tempfile.mkdtemp(prefix="unit-", dir=TMP)
        self.link = os.path.join(self.dir, "tty")
        self.pins = self.link + ".pins"
        self.events = os.path.join(self.dir, "ev.jsonl")
        self.proc = subprocess.Popen(
            [OKVM, "emulate", "--link", self.link, "--emu-pins", "usb-serial", "--emu-power",
             power, "--emu-events", self.events, "--emu-poll-ms", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.proc.stdout.readline()
        self.proc.stdout.readline()

    def ev(self, *types):
        return kinds(read_events(self.events), *types)

    def toggle_pins(self):
        n = len(self.ev("adapter"))
        self.proc.send_signal(signal.SIGUSR2)
        wait(lambda: len(self.ev("adapter")) > n, "no adapter event after SIGUSR2")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=10)


u = Unit("on")
p = subprocess.Popen([OKVM, "power", "force-off", "--adapter", u.pins],
                     env=dict(os.environ, HOME=TMP, XDG_CONFIG_HOME=TMP),
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
wait(lambda: [(e["switch"], e["closed"]) for e in u.ev("atx")] == [("power", True)],
     "the press never started")
t0 = time.monotonic()
u.toggle_pins()
p.wait(timeout=10)
err = p.stderr.read().decode()
check(p.returncode == 1, f"okvm power after the unplug: exit {p.returncode}: {err}")
check("was unplugged mid-press" in err and "DTR line lost power" in err and
      "the switch is released" in err and len(err.strip().splitlines()) == 1,
      f"okvm power said {err!r}")
check(time.monotonic() - t0 < 2, "okvm power went on holding after the unplug")
check([(e["type"], e.get("switch"), e.get("closed", e.get("plugged"))) for e in
       u.ev("atx", "adapter")] ==
      [("atx", "power", True), ("adapter", None, False), ("atx", "power", False)],
      f"the header: {u.ev('atx', 'adapter')}")
check(not os.path.lexists(u.pins), "the unplugged adapter's tty is still there")
u.toggle_pins()
r = run(["power", "status", "--adapter", u.pins], env={"HOME": TMP, "XDG_CONFIG_HOME": TMP})
check(r.returncode == 0 and r.stdout.strip() in (b"power: on", b"power: off"),
      f"status after the replug: {r}")
u.stop()
passed("okvm power: unplugged mid-press is exit 1, one line saying the switch is released; "
       "the header saw it open at the unplug")

u = Unit("off")
PINS = conf(f"[power]\ndevice = {u.pins}\npower_ms = 3000\n", "pins.conf")
with Server("--config", PINS, backend=["--serial", u.link, "--video", f"frames:{FRAMES}@10"],
            env={"HOME": TMP}) as srv:
    st, j = srv.json("GET", "/api/power")
    check(st == 200 and j["state"] == "off", f"GET before: {j}")
    st, j = srv.json("POST", "/api/power?action=on")
    check(st == 202, f"POST on: {st} {j}")
    wait(lambda: [(e["switch"], e["closed"]) for e in u.ev("atx")] == [("power", True)],
         "the press never reached the header")
    u.toggle_pins()
    j = idle_power(srv)
    check(j["last_failed"] is True and "unplugged mid-press" in j["last"] and
          "released" in j["last"], f"/api/power after the unplug: {j}")
    check([e["closed"] for e in u.ev("atx")] == [True, False], f"atx: {u.ev('atx')}")
    st, j = srv.json("GET", "/api/power")
    check(j["busy"] is False and j["state"] == "unknown" and "not connected" in j.get("error", ""),
          f"GET while unplugged: {j}")
    passed("okvm serve: an unplug mid-press ends the press, reported in /api/power")
    u.toggle_pins()
    wait(lambda: srv.json("GET", "/api/power")[1].get("error") is None,
         "the console never reopened the adapter")
    # the target came on with the cut press (it was off: any press powers it on) -> off it goes
    st, j = srv.json("GET", "/api/power")
    st, j = srv.json("POST", "/api/power?action=force-off" if j["state"] == "on"
                     else "/api/power?action=on")
    check(st == 202, f"the press after the replug: {st} {j}")
    j = idle_power(srv)
    check(j["last_failed"] is False and "done" in j["last"], f"after the replug: {j}")
    check([e["closed"] for e in u.ev("atx")] == [True, False, True, False],
          f"the second press at the header: {u.ev('atx')}")
passed("okvm serve: after the replug the next press goes through the new port")
u.stop()


# ---- MCP over /mcp: the serial tools on serve's console ----
class McpHttp:
    def __init__(self, port):
        self.port, self.sid, self.id = port, None, 0
        r = self.call("initialize", {"protocolVersion": "2025-03-26", "capabilities": {},
                                     "clientInfo": {"name": "test", "version": "1"}})
        check("result" in r, f"initialize: {r}")

    def call(self, method, params=None):
        self.id += 1
        msg = {"jsonrpc": "2.0", "id": self.id, "method": method}
        if params is not None:
            msg["params"] = params
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.sid:
            h["Mcp-Session-Id"] = self.sid
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request("POST", "/mcp", body=json.dumps(msg), headers=h)
        r = c.getresponse()
        self.sid = self.sid or r.getheader("Mcp-Session-Id")
        body = r.read()
        c.close()
        check(r.status == 200, f"/mcp {method}: {r.status} {body[:300]}")
        return json.loads(body)

    def tool(self, name, args):
        r = self.call("tools/call", {"name": name, "arguments": args})["result"]
        return r["isError"], "\n".join(c.get("text", "") for c in r["content"])


def console_in(path):
    return "".join(e["text"] for e in read_events(path)
                   if e["type"] == "console" and e["dir"] == "in")


events = os.path.join(TMP, "mcp.jsonl")
with Server(backend=["-d", "emu", "--emu-pins", "usb-serial", "--emu-power", "off",
                     "--emu-events", events], env={"HOME": TMP}) as srv:
    m = McpHttp(srv.port)
    st, j = srv.json("POST", "/api/power?action=on")  # boots: the log, then the login prompt
    check(st == 202, f"POST on: {st} {j}")
    err, text = m.tool("serial_wait_for_text", {"text": "okvm-target login:", "timeout_s": 20})
    check(not err and "Found 'okvm-target login:'" in text, f"serial_wait_for_text: {text}")
    err, text = m.tool("serial_send_text", {"text": "root\r"})
    check(not err and "Sent 5 bytes" in text, f"serial_send_text: {text}")
    err, text = m.tool("serial_wait_for_text", {"text": "Password:", "timeout_s": 10})
    check(not err, f"the echo and the password prompt: {text}")
    check(console_in(events) == "root\r", f"the target got {console_in(events)!r}")
    err, text = m.tool("serial_wait_for_text", {"text": "never printed", "timeout_s": 0.5})
    check(err and "did not appear on the serial console within 0.5 s" in text, f"timeout: {text}")
    err, text = m.tool("execute_script", {"script": 'SendSerial "pw`r"\nWaitSerial "Login incorrect", 10'})
    check(not err, f"execute_script's WaitSerial/SendSerial: {text}")
    check(console_in(events) == "root\rpw\r", f"the target got {console_in(events)!r}")
    passed("/mcp: serial_wait_for_text and serial_send_text on okvm serve's console, exact bytes")

with Server(backend=["-d", "emu"], env={"HOME": TMP}) as srv:
    m = McpHttp(srv.port)
    err, text = m.tool("serial_send_text", {"text": "x"})
    check(err and "no serial console" in text, f"without a console: {text}")
passed("/mcp without a console: the serial tools are tool errors")
