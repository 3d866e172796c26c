#!/usr/bin/env python3
"""okvm mcp's serial console tools (issue 16) on -d emu --emu-pins usb-serial: the virtual
target boots to a login prompt on its serial console; serial_wait_for_text finds it,
serial_send_text types a name, and the --emu-events console events (dir "in") hold exactly the
bytes sent; a wait that does not see its text is a tool error after its timeout; execute_script
runs WaitSerial/SendSerial on the same console; a unit without a console answers both tools
with a tool error and sends nothing. Exit 0 = pass, 1 = fail."""
import json
import os
import select
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import OKVM, read_events  # noqa: E402

FAILS = []
TMP = tempfile.mkdtemp(prefix="okvm-mcp-serial-")


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


class Mcp:
    def __init__(self, events, *extra):
        env = dict(os.environ, HOME=TMP, XDG_CONFIG_HOME=TMP)  # no user's okvm.conf
        self.p = subprocess.Popen([OKVM, "mcp", "-d", "emu", "--emu-events", events] +
                                  list(extra), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        self.buf = b""
        self.id = 0
        r = self.call("initialize", {"protocolVersion": "2025-03-26", "capabilities": {},
                                     "clientInfo": {"name": "test", "version": "1"}})
        check("result" in r, "initialize")

    def read(self, timeout=60):
        end = time.time() + timeout
        while b"\n" not in self.buf:
            r, _, _ = select.select([self.p.stdout], [], [], max(0, end - time.time()))
            if not r:
                raise TimeoutError("no answer within %ss" % timeout)
            chunk = os.read(self.p.stdout.fileno(), 1 << 20)
            if not chunk:
                raise EOFError("okvm mcp closed stdout")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, params=None):
        self.id += 1
        msg = {"jsonrpc": "2.0", "id": self.id, "method": method}
        if params is not None:
            msg["params"] = params
        self.p.stdin.write((json.dumps(msg) + "\n").encode())
        self.p.stdin.flush()
        return self.read()

    def tool(self, name, args):
        r = self.call("tools/call", {"name": name, "arguments": args})["result"]
        return r["isError"], "\n".join(c.get("text", "") for c in r["content"])

    def close(self):
        self.p.stdin.close()
        rc = self.p.wait(timeout=20)
        return rc, self.p.stderr.read().decode(errors="replace")


def console(events, d):
    return "".join(e["text"] for e in read_events(events)
                   if e["type"] == "console" and e["dir"] == d)


def main():
    ev = os.path.join(TMP, "ev.jsonl")
    m = Mcp(ev, "--emu-pins", "usb-serial", "--emu-power", "on")
    names = {t["name"] for t in m.call("tools/list")["result"]["tools"]}
    check({"serial_wait_for_text", "serial_send_text"} <= names, "tools/list names both tools")
    # The target booted as the session started, before the console was open: Enter until
    # getty prints a fresh prompt (what one does on a real console too).
    for _ in range(30):
        m.tool("serial_send_text", {"text": "\r"})
        err, txt = m.tool("serial_wait_for_text", {"text": "login:", "timeout_s": 1})
        if not err:
            break
    check(not err and "Found 'login:'" in txt, "the login prompt is found (%s)" % txt)
    n0 = len(console(ev, "in"))
    err, txt = m.tool("serial_send_text", {"text": "root\r"})
    check(not err and "Sent 5 bytes" in txt, "the name is sent (%s)" % txt)
    err, txt = m.tool("serial_wait_for_text", {"text": "Password:", "timeout_s": 5})
    check(not err, "the target echoed and asked for the password (%s)" % txt)
    check(console(ev, "in")[n0:] == "root\r", "the target received exactly 'root\\r' (%r)" %
          console(ev, "in")[n0:])
    t0 = time.time()
    err, txt = m.tool("serial_wait_for_text", {"text": "login:", "timeout_s": 0.5})
    check(err and "did not appear on the serial console within 0.5 s" in txt and
          time.time() - t0 < 5, "a wait for text that is not printed fails at its timeout "
          "(%s)" % txt)
    err, txt = m.tool("execute_script", {"script": 'SendSerial "x`n"\n'
                                                   'WaitSerial "Login incorrect", 5\n'})
    check(not err, "execute_script runs SendSerial and WaitSerial (%s)" % txt)
    check(console(ev, "in")[n0:] == "root\rx\r", "the script's bytes reached the target (%r)" %
          console(ev, "in")[n0:])
    for bad, msg in (({"text": ""}, "argument 'text' is empty"),
                     ({}, "text")):
        err, txt = m.tool("serial_send_text", bad)
        check(err and msg in txt, "serial_send_text %r: a tool error (%s)" % (bad, txt))
    rc, stderr = m.close()
    check(rc == 0, "exit 0 at EOF (%d: %s)" % (rc, stderr[-300:]))

    ev2 = os.path.join(TMP, "ev2.jsonl")
    m = Mcp(ev2)  # no adapter on the pins
    for name, args in (("serial_wait_for_text", {"text": "login:", "timeout_s": 1}),
                       ("serial_send_text", {"text": "root\r"})):
        err, txt = m.tool(name, args)
        check(err and "no serial console" in txt, "%s without a console: a tool error (%s)" %
              (name, txt))
    err, txt = m.tool("execute_script", {"script": 'Send a\nSendSerial "root`n"\n'})
    check(err and "line 2 col 1" in txt and "serial console" in txt,
          "execute_script with SendSerial and no console: refused (%s)" % txt)
    rc, _ = m.close()
    evs = read_events(ev2)
    check(not [e for e in evs if e["type"] in ("text", "key", "console")],
          "nothing was sent without a console (%s)" % evs)

    if FAILS:
        print("%d failed" % len(FAILS))
        sys.exit(1)


main()
