#!/usr/bin/env python3
"""okvm mcp over stdio with raw JSON-RPC lines: the protocol's edge cases (parse error, invalid
request, unknown method, unknown tool, bad and missing arguments as tool errors, version
negotiation, notifications, batches), then what the virtual target saw (--emu-events) for
typing, a click, keys and combos, a screenshot's size, and a clean exit at EOF with every key
up. Exit 0 = pass, 1 = fail."""
import base64
import json
import os
import select
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import OKVM, jpeg_size, keys_left_down, read_events, typed_text  # noqa: E402

FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


class Mcp:
    def __init__(self, events, *extra):
        self.p = subprocess.Popen([OKVM, "mcp", "-d", "emu", "--emu-events", events] +
                                  list(extra), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.buf = b""

    def send_raw(self, line):
        self.p.stdin.write(line if isinstance(line, bytes) else line.encode())
        self.p.stdin.flush()

    def read(self, timeout=30):
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

    def call(self, id_, method, params=None):
        msg = {"jsonrpc": "2.0", "id": id_, "method": method}
        if params is not None:
            msg["params"] = params
        self.send_raw(json.dumps(msg) + "\n")
        return self.read()

    def tool(self, id_, name, args=None):
        params = {"name": name}
        if args is not None:
            params["arguments"] = args
        return self.call(id_, "tools/call", params)

    def close(self):
        self.p.stdin.close()
        rc = self.p.wait(timeout=20)
        err = self.p.stderr.read().decode(errors="replace")
        return rc, err


def settle(events, n0, pred, timeout=3):
    """The events after the first n0 once pred(them) holds (the link sends after the tool
    answers), or after timeout."""
    end = time.time() + timeout
    while True:
        ev = read_events(events)[n0:]
        if pred(ev) or time.time() > end:
            return ev
        time.sleep(0.05)


def texts(r):
    return "\n".join(c.get("text", "") for c in r["result"]["content"] if c["type"] == "text")


def protocol(m):
    r = m.call(1, "initialize", {"protocolVersion": "2025-03-26", "capabilities": {},
                                 "clientInfo": {"name": "test", "version": "1"}})
    check(r["result"]["protocolVersion"] == "2025-03-26", "a version it speaks is answered as is")
    check(r["result"]["serverInfo"]["name"] == "okvm" and "tools" in r["result"]["capabilities"],
          "initialize: serverInfo and the tools capability")
    r = m.call(2, "initialize", {"protocolVersion": "1999-01-01", "capabilities": {},
                                 "clientInfo": {"name": "test", "version": "1"}})
    check(r["result"]["protocolVersion"] == "2025-06-18",
          "an unknown version is answered with the newest (2025-06-18)")
    r = m.call(3, "initialize", {"protocolVersion": "2024-11-05", "capabilities": {},
                                 "clientInfo": {"name": "test", "version": "1"}})
    check(r["result"]["protocolVersion"] == "2024-11-05", "2024-11-05 is spoken too")
    m.send_raw('{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    r = m.call(4, "ping")
    check(r == {"jsonrpc": "2.0", "id": 4, "result": {}}, "a notification gets no answer; ping {}")

    m.send_raw("this is not json\n")
    r = m.read()
    check(r["error"]["code"] == -32700 and r["id"] is None, "bad JSON: -32700 with id null")
    m.send_raw('{"jsonrpc":"2.0","id":5,"method":\n')
    check(m.read()["error"]["code"] == -32700, "a truncated message: -32700")
    m.send_raw('{"id":6,"method":"ping"}\n')
    r = m.read()
    check(r["error"]["code"] == -32600 and r["id"] == 6, "no jsonrpc 2.0: -32600")
    m.send_raw('[]\n')
    check(m.read()["error"]["code"] == -32600, "an empty batch: -32600")
    r = m.call(7, "resources/list")
    check(r["error"]["code"] == -32601, "unknown method: -32601")
    r = m.call("x8", "tools/call", {"name": "no_such_tool", "arguments": {}})
    check(r["error"]["code"] == -32602 and r["id"] == "x8", "unknown tool: -32602, string id kept")
    r = m.call(9, "tools/call", {"arguments": {}})
    check(r["error"]["code"] == -32602, "tools/call without a name: -32602")
    m.send_raw('[{"jsonrpc":"2.0","id":10,"method":"ping"},'
               '{"jsonrpc":"2.0","method":"notifications/initialized"},'
               '{"jsonrpc":"2.0","id":11,"method":"nope"}]\n')
    r = m.read()
    check(isinstance(r, list) and [x["id"] for x in r] == [10, 11] and
          r[1]["error"]["code"] == -32601, "a batch: one answer per request, in order")

    r = m.call(12, "tools/list")
    names = {t["name"] for t in r["result"]["tools"]}
    want = {"mouse_move_absolute", "mouse_click", "mouse_move_relative", "mouse_scroll",
            "keyboard_press_key", "keyboard_type_text", "keyboard_send_keys",
            "keyboard_function_key", "keyboard_ctrl_alt_del", "keyboard_set_layout",
            "capture_screen", "capture_last_image", "execute_script", "validate_script",
            "system_status", "usb_switch", "screen_text", "wait_for_text",
            "wait_for_screen_change", "key_combo"}
    check(want <= names, "tools/list names every tool (missing: %s)" % sorted(want - names))
    check(all(t["inputSchema"]["type"] == "object" for t in r["result"]["tools"]),
          "every tool has an object inputSchema")


def bad_arguments(m):
    cases = [
        ("keyboard_type_text", {}, "missing argument 'text'"),
        ("keyboard_type_text", {"text": 5}, "must be a string"),
        ("mouse_click", {"x": 5000, "y": 10}, "off the screen"),
        ("mouse_click", {"x": 10}, "missing argument 'y'"),
        ("mouse_click", {"fx": 1.5, "fy": 0}, "want 0 to 1"),
        ("mouse_click", {"x": 1, "y": 1, "fx": 0, "fy": 0}, "not both"),
        ("mouse_click", {"button": "thumb"}, "want one of left, right, middle"),
        ("mouse_scroll", {"direction": "sideways"}, "want one of up, down"),
        ("key_combo", {"combo": "ctrl+nokey"}, "nokey"),
        ("keyboard_function_key", {"key": "F99"}, "F1 to F24"),
        ("keyboard_press_key", {"key": 99999999}, "no Qt key code"),
        ("keyboard_set_layout", {"layout": "xx-nope"}, "no XKB layout"),
        ("keyboard_type_text", {"text": "\u4e2d"}, "cannot be typed"),
        ("usb_switch", {"target": "moon"}, "want one of host, target"),
        ("capture_last_image", {}, "nothing captured yet"),
        ("screen_text", {"region": {"x": 0}}, "region.y"),
    ]
    for i, (name, args, want) in enumerate(cases):
        r = m.tool(100 + i, name, args)
        res = r.get("result", {})
        check(res.get("isError") is True and want in texts(r),
              "%s %s: tool error naming '%s' (got %s)" % (name, json.dumps(args), want,
                                                       texts(r) if res else r))
    check(m.call(200, "ping").get("result") == {}, "the server is up after every bad call")


def target(m, events):
    r = m.tool(300, "keyboard_type_text", {"text": "Hello, MCP 42!"})
    check(r["result"]["isError"] is False, "keyboard_type_text succeeds")
    check(typed_text(read_events(events)) == "Hello, MCP 42!",
          "the target typed exactly 'Hello, MCP 42!' when the tool answered")
    n0 = len(read_events(events))
    r = m.tool(301, "mouse_click", {"x": 480, "y": 270})
    check(r["result"]["isError"] is False, "mouse_click at pixels (480, 270) succeeds")
    mouse = [e for e in settle(events, n0, lambda ev: any(
        e["type"] == "mouse" and e["buttons"] == 1 for e in ev) and ev[-1].get("buttons") == 0)
        if e["type"] == "mouse"]
    check(any(e["buttons"] == 1 for e in mouse) and mouse and mouse[-1]["buttons"] == 0,
          "a left press then all buttons up")
    check(all(e["x"] == 1024 and e["y"] == 1024 for e in mouse),
          "at chip position (1024, 1024): a quarter of 1920x1080 (got %s)" %
          [(e["x"], e["y"]) for e in mouse])
    n0 = len(read_events(events))
    r = m.tool(302, "mouse_click", {"fx": 0.75, "fy": 0.25, "button": "right", "count": 2})
    mouse = [e for e in settle(events, n0, lambda ev: len(
        [e for e in ev if e["type"] == "mouse" and e["buttons"]]) >= 2 and
        ev[-1].get("buttons") == 0) if e["type"] == "mouse"]
    check([e["buttons"] for e in mouse if e["buttons"]] == [2, 2] and
          all(e["x"] == 3072 and e["y"] == 1024 for e in mouse),
          "a right double-click at fractions (0.75, 0.25) = chip (3072, 1024)")
    n0 = len(read_events(events))
    m.tool(303, "keyboard_press_key", {"key": 16777220})
    m.tool(304, "key_combo", {"combo": "ctrl+alt+delete"})
    m.tool(305, "keyboard_press_key", {"key": 65, "modifiers": 1})
    ev = settle(events, n0, lambda ev: any(e["type"] == "text" and e["text"] == "A" for e in ev))
    keys = [(e["usage"], e["down"]) for e in ev if e["type"] == "key"]
    check((0x28, True) in keys and (0x28, False) in keys, "Qt Key_Return is Enter (0x28)")
    check((0x4C, True) in keys and (0xE0, True) in keys and (0xE2, True) in keys,
          "ctrl+alt+delete: Ctrl, Alt and Delete went down")
    check(typed_text(read_events(events)).endswith("A"), "key 65 with Shift typed 'A'")

    r = m.tool(310, "capture_screen", {})
    img = [c for c in r["result"]["content"] if c["type"] == "image"]
    check(img and img[0]["mimeType"] == "image/jpeg", "capture_screen: one image/jpeg")
    raw = base64.b64decode(img[0]["data"]) if img else b""
    check(raw[:2] == b"\xff\xd8" and raw[-2:] == b"\xff\xd9" and jpeg_size(raw) == (1920, 1080),
          "a whole JPEG of the 1920x1080 frame (got %s)" % (jpeg_size(raw),))
    r = m.tool(311, "capture_screen", {"max_width": 480, "quality": 70})
    raw = base64.b64decode([c for c in r["result"]["content"] if c["type"] == "image"][0]["data"])
    check(jpeg_size(raw) == (480, 270), "max_width 480: a 480x270 JPEG (got %s)" %
          (jpeg_size(raw),))
    r = m.tool(312, "capture_last_image", {})
    raw2 = base64.b64decode([c for c in r["result"]["content"] if c["type"] == "image"][0]["data"])
    check(raw2 == raw, "capture_last_image: the same bytes again")
    # A text that never shows: the wait ends with a tool error naming its timeout (and the
    # frames keep coming meanwhile: the virtual screen's clock ticks).
    m.send_raw(json.dumps({"jsonrpc": "2.0", "id": 314, "method": "tools/call", "params": {
        "name": "wait_for_text", "arguments": {"text": "no such words anywhere",
                                               "timeout_s": 1}}}) + "\n")
    try:
        r = m.read(timeout=30)
        check(r["result"]["isError"] and "did not appear within 1 s" in texts(r),
              "wait_for_text that never matches: a tool error naming the 1 s timeout")
    except TimeoutError:
        check(False, "wait_for_text with timeout_s 1 answers within 30 s")
        m.send_raw(json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled",
                               "params": {"requestId": 314}}) + "\n")
        m.read(timeout=30)
    r = m.tool(313, "system_status", {})
    st = json.loads(texts(r))
    check(st["serial"]["connected"] and st["camera"]["frame_width"] == 1920,
          "system_status: link up, frame 1920 wide")


def main():
    d = tempfile.mkdtemp(prefix="okvm-mcp-")
    events = os.path.join(d, "events.jsonl")
    m = Mcp(events)
    try:
        protocol(m)
        bad_arguments(m)
        target(m, events)
        check(typed_text(read_events(events)).count("Hello") == 1,
              "nothing of the bad calls reached the target as text")
    except (TimeoutError, EOFError, KeyError, json.JSONDecodeError) as e:
        check(False, "the session broke: %r" % e)
    rc, err = m.close()
    check(rc == 0, "EOF on stdin: exit 0 (got %d: %s)" % (rc, err.strip()[-300:]))
    check(not keys_left_down(read_events(events)), "no key left down at the end")

    # A client that leaves mid-wait: the server does not linger.
    events2 = os.path.join(d, "events2.jsonl")
    m = Mcp(events2)
    m.call(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                             "clientInfo": {"name": "t", "version": "1"}})
    m.send_raw(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "wait_for_screen_change", "arguments": {"timeout_s": 600, "still_ms": 600000}}})
        + "\n")
    time.sleep(0.5)
    m.send_raw(json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled",
                           "params": {"requestId": 2}}) + "\n")
    try:
        r = m.read(timeout=10)
        check(r["id"] == 2 and r["result"]["isError"], "notifications/cancelled ends the wait")
    except (TimeoutError, EOFError) as e:
        check(False, "the cancelled wait answered: %r" % e)
    m.p.stdout.close()
    t0 = time.time()
    rc, _ = m.close()
    check(rc == 0 and time.time() - t0 < 10, "gone client: exit 0 at once")

    # [mcp] token in okvm.conf: a bad one stops okvm serve with a line naming it.
    conf = os.path.join(d, "bad.conf")
    with open(conf, "w") as f:
        f.write("[mcp]\ntoken = short\n")
    os.chmod(conf, 0o600)
    p = subprocess.run([OKVM, "serve", "-d", "emu", "--config", conf, "--listen",
                        "127.0.0.1:1"], capture_output=True, timeout=30)
    err = p.stderr.decode(errors="replace")
    check(p.returncode != 0 and "[mcp] token: 16 to 256 characters" in err,
          "a short [mcp] token: okvm serve refuses it, naming it (%d: %s)" % (p.returncode,
                                                                         err.strip()))
    with open(conf, "w") as f:
        f.write("[mcp]\ntokn = 0123456789abcdef0123\n")
    p = subprocess.run([OKVM, "serve", "-d", "emu", "--config", conf, "--listen",
                        "127.0.0.1:1"], capture_output=True, timeout=30)
    check(p.returncode != 0 and "unknown key 'tokn' in [mcp]" in p.stderr.decode(),
          "an unknown [mcp] key is refused")

    if FAILS:
        print("%d failed" % len(FAILS))
        sys.exit(1)


main()
