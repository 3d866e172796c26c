#!/usr/bin/env python3
"""MCP tool-call latency of `okvm mcp -d emu` over stdio: request written -> answer read, for
ping, system_status, mouse_click, capture_screen (the device's JPEG as it is, and scaled to
max_width 640), screen_text (OCR of the whole 1080p frame) and keyboard_type_text of 20
characters (answered once the target has them all). Prints the median and the worst of N
calls each (N=10, or $N; OKVM names the binary). The figures depend on the machine's load:
say so when quoting them.
"""
import json
import os
import select
import statistics
import subprocess
import sys
import time

OKVM = os.environ.get("OKVM", "build/okvm")
N = int(os.environ.get("N", "10"))


def main():
    p = subprocess.Popen([OKVM, "mcp", "-d", "emu"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    buf = b""
    next_id = [0]

    def call(method, params=None):
        nonlocal buf
        next_id[0] += 1
        msg = {"jsonrpc": "2.0", "id": next_id[0], "method": method}
        if params is not None:
            msg["params"] = params
        t0 = time.monotonic()
        p.stdin.write((json.dumps(msg) + "\n").encode())
        p.stdin.flush()
        while b"\n" not in buf:
            select.select([p.stdout], [], [], 60)
            chunk = os.read(p.stdout.fileno(), 1 << 22)
            if not chunk:
                sys.exit("okvm mcp ended")
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        ms = (time.monotonic() - t0) * 1000
        r = json.loads(line)
        if "error" in r or r.get("result", {}).get("isError"):
            sys.exit("%s failed: %s" % (method, line[:300]))
        return ms, len(line)

    call("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "bench", "version": "1"}})
    cases = [
        ("ping", "ping", None),
        ("system_status", "tools/call", {"name": "system_status"}),
        ("mouse_click", "tools/call", {"name": "mouse_click", "arguments": {"x": 100, "y": 100}}),
        ("capture_screen", "tools/call", {"name": "capture_screen"}),
        ("capture_screen max_width 640", "tools/call",
         {"name": "capture_screen", "arguments": {"max_width": 640}}),
        ("screen_text (1080p)", "tools/call", {"name": "screen_text"}),
        ("keyboard_type_text 20 chars", "tools/call",
         {"name": "keyboard_type_text", "arguments": {"text": "abcdefghij0123456789"}}),
    ]
    print("okvm mcp -d emu, stdio, %d calls each (the machine's load counts)" % N)
    print("%-30s %10s %10s %12s" % ("tool", "median ms", "max ms", "answer bytes"))
    for name, method, params in cases:
        ms, size = zip(*[call(method, params) for _ in range(N)])
        print("%-30s %10.1f %10.1f %12d" % (name, statistics.median(ms), max(ms), size[-1]))
    p.stdin.close()
    p.wait(timeout=30)


main()
