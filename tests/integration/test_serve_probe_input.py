"""A hostile client against okvm serve, part 3 (security issue 10): path tricks, malformed HTTP
(request smuggling, oversize headers, HTTP/2), malformed WebSocket frames and messages, and
messages that smuggle a key press past POST /api/mouse. None may crash the server, serve a file
outside the web UI, or reach the backend."""
import json
import socket
import struct
import time

from serve_util import (RawReader, Server, SoftChecks, WebSocket, answered_fresh, raw_connect,
                        raw_exchange, request_bytes, stop_report, ws_frame)

soft = SoftChecks()
check = soft.check


def stopped(s, what):
    if s is not None:
        clean, detail = stop_report(s)
        check(clean, f"{what}: the server ran to the end and exited cleanly ({detail})")


def state_ok(s):
    return s.alive() and answered_fresh(s, 2.0)


def held_keys(calls):
    """Keys down on the target according to the backend log."""
    down = set()
    for c in calls:
        if c["op"] == "key":
            (down.add if c["down"] else down.discard)(c["code"])
        elif c["op"] == "release_all":
            down.clear()
    return down


def is_2xx(r):
    return r is not None and 200 <= r[0] < 300


# ---- 6. path tricks ----

PATHS = [
    "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd", "/index.html%00.png",
    "/..%2f..%2fetc%2fpasswd", "/app.js/..", "/%252e%252e/", "/%252e%252e/%252e%252e/etc/passwd",
    "/..\\..\\etc\\passwd", "/\\etc\\passwd", "/%5c..%5c..%5cetc%5cpasswd",
    "/" + "a" * 8192, "/" + "../" * 2700 + "etc/passwd", "/api/state/../../",
    "/api/state/../../etc/passwd", "/api/ws/x", "/./app.js", "/.//app.js",
    "/app.js%2f..%2f..%2fetc%2fpasswd", "/..;/etc/passwd",
    "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", "/%uff0e%uff0e/etc/passwd", "/etc/passwd",
    "/proc/self/environ", "/proc/self/cmdline", "/index.html/", "/.git/config", "/meson.build",
    "/web/app.js", "/../web/index.html", "/%00", "/index.html%00", "/login.html?../../etc/passwd",
    "/?action=../../etc/passwd", "/static/../../../../etc/passwd", "*", "etc/passwd",
    "http://evil/", "http://evil/../../etc/passwd", "/..%00/etc/passwd",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/app.js;.png", "/APP.JS", "/%2fetc%2fpasswd",
    "/" + "%2e%2e%2f" * 500 + "etc/passwd", "/login/../../../etc/passwd", "/\x00etc/passwd",
    "/..%252f..%252fetc%252fpasswd", "/%ZZ", "/%", "/?" + "a=" * 3000,
]

with Server() as s:
    P = s.port
    assets = set()
    for a in ("/", "/login", "/index.html", "/login.html", "/app.js", "/login.js",
              "/style.css"):
        st, _, body = s.http("GET", a)
        if st == 200:
            assets.add(body)
    check(len(assets) >= 4, f"the web UI's own assets load ({len(assets)})")

    def harmless(r):
        if r is None or r[0] != 200:
            return True
        body = r[2]
        return body in assets or body.startswith(b'{"type":"state"') or \
            body.startswith(b"\xff\xd8")

    for p in PATHS:
        data = ("GET " + p + " HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
                % P).encode("latin-1")
        try:
            r = raw_exchange(P, data, 3.0)
        except OSError:
            r = None
        body = r[2] if r else b""
        shown = p if len(p) < 60 else p[:40] + f"...({len(p)} chars)"
        check(harmless(r) and b"root:" not in body and b"--video frames:" not in body
              and b"[serve]" not in body,
              f"path {shown!r}: not a file outside the web UI (status {r and r[0]})")
        check(s.alive(), f"path {shown!r}: the server is alive")
    check(state_ok(s), "after the path tricks the next request works")
    check(not s.calls(), "the path tricks sent nothing to the backend")

# ---- 7. malformed HTTP ----

H = "Host: 127.0.0.1:{P}\r\n"
NOT_2XX = "not 2xx"
# libwebsockets 4.1.6 (Debian 12) closes a connection whose headers overflow its 4 KiB header
# buffer without answering, and gives the server no hook to answer first (docs/serve.md, "Known
# gaps"). Such a request must be refused, answered or not; the checks say which it was.
HDR_GAP = "400/431 or closed unanswered (known gap)"
BAD = [
    # (what, request (formatted with P), expectation: a set of statuses, NOT_2XX or None = any)
    ("an empty request line", "\r\n\r\n", NOT_2XX),
    ("a method only", "GET\r\n\r\n", NOT_2XX),
    ("no version (HTTP/0.9)", "GET /\r\n\r\n", None),
    ("no version, path /api/state", "GET /api/state\r\n" + H + "\r\n", None),
    ("HTTP/9.9", "GET / HTTP/9.9\r\n" + H + "\r\n", None),
    ("HTTP/1.1 with a trailing word", "GET / HTTP/1.1 extra\r\n" + H + "\r\n", None),
    ("a lower-case version", "GET / http/1.1\r\n" + H + "\r\n", None),
    ("an unknown method", "FROB / HTTP/1.1\r\n" + H + "\r\n", NOT_2XX),
    ("a 300-byte method", "G" * 300 + " / HTTP/1.1\r\n" + H + "\r\n", NOT_2XX),
    ("TRACE", "TRACE / HTTP/1.1\r\n" + H + "Cookie: okvm_session=secret\r\n\r\n", NOT_2XX),
    ("CONNECT", "CONNECT evil:443 HTTP/1.1\r\n" + H + "\r\n", NOT_2XX),
    ("OPTIONS *", "OPTIONS * HTTP/1.1\r\n" + H + "\r\n", None),
    ("the HTTP/2 prior-knowledge preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", NOT_2XX),
    ("a header without a colon", "GET /api/state HTTP/1.1\r\n" + H + "NoColonHere\r\n\r\n",
     NOT_2XX),
    ("a space before the colon", "GET /api/state HTTP/1.1\r\nHost : 127.0.0.1:{P}\r\n\r\n",
     None),
    ("an obs-fold continuation line", "GET /api/state HTTP/1.1\r\n" + H +
     "X-A: b\r\n folded\r\n\r\n", None),
    ("a NUL in the path", "GET /api/\x00state HTTP/1.1\r\n" + H + "\r\n", NOT_2XX),
    ("a NUL in a header", "GET /api/state HTTP/1.1\r\n" + H + "X-A: a\x00b\r\n\r\n", None),
    ("a NUL instead of CRLF", "GET /api/state HTTP/1.1\x00" + H + "\r\n", None),
    ("20 KiB of headers", "GET / HTTP/1.1\r\n" + H + "X-Big: " + "a" * 20480 + "\r\n\r\n",
     HDR_GAP),
    ("8 KiB in one header", "GET / HTTP/1.1\r\n" + H + "X-Big: " + "a" * 8192 + "\r\n\r\n",
     HDR_GAP),
    ("1000 small headers", "GET / HTTP/1.1\r\n" + H + "".join(f"X-{i}: v\r\n" for i in range(1000))
     + "\r\n", HDR_GAP),
    ("a 6000-byte Cookie", "GET /api/state HTTP/1.1\r\n" + H + "Cookie: " +
     "okvm_session=" * 460 + "\r\n\r\n", HDR_GAP),
    ("a 2000-byte Host", "GET /api/state HTTP/1.1\r\nHost: " + "h" * 2000 + "\r\n\r\n", NOT_2XX),
    ("two Host headers", "GET /api/state HTTP/1.1\r\n" + H + "Host: evil.example\r\n\r\n",
     NOT_2XX),
    ("Content-Length and Transfer-Encoding: chunked",
     "POST /api/logout HTTP/1.1\r\n" + H + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"
     "\r\n0\r\n\r\n", {400}),
    ("Transfer-Encoding: chunked then Content-Length",
     "POST /api/logout HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n"
     "\r\n0\r\n\r\n", {400}),
    ("two different Content-Lengths", "POST /api/mouse HTTP/1.1\r\n" + H +
     "Content-Length: 17\r\nContent-Length: 5\r\n\r\n{\"x\":0.5,\"y\":0.5}", {400}),
    ("a Content-Length list", "POST /api/mouse HTTP/1.1\r\n" + H +
     "Content-Length: 17, 5\r\n\r\n{\"x\":0.5,\"y\":0.5}", {400}),
    ("a negative Content-Length", "POST /api/type HTTP/1.1\r\n" + H +
     "Content-Length: -5\r\n\r\nabc", {400, 413}),
    ("Content-Length +5", "POST /api/type HTTP/1.1\r\n" + H + "Content-Length: +5\r\n\r\nabcde",
     {400}),
    ("Content-Length 0x10", "POST /api/type HTTP/1.1\r\n" + H + "Content-Length: 0x10\r\n\r\n",
     {400}),
    ("a huge Content-Length", "POST /api/type HTTP/1.1\r\n" + H +
     "Content-Length: 99999999999999999999999\r\n\r\nabc", {400, 413}),
    ("Content-Length 2^64", "POST /api/type HTTP/1.1\r\n" + H +
     "Content-Length: 18446744073709551616\r\n\r\nabc", {400, 413}),
    ("Content-Length just over 256 KiB", "POST /api/type HTTP/1.1\r\n" + H +
     "Content-Length: 262145\r\n\r\n", {413}),
    ("Transfer-Encoding: chunked alone", "POST /api/mouse HTTP/1.1\r\n" + H +
     "Transfer-Encoding: chunked\r\n\r\n11\r\n{\"x\":0.5,\"y\":0.5}\r\n0\r\n\r\n", None),
    ("Transfer-Encoding: gzip, chunked", "POST /api/mouse HTTP/1.1\r\n" + H +
     "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", NOT_2XX),
    ("Upgrade: h2c with HTTP2-Settings", "GET / HTTP/1.1\r\n" + H + "Connection: Upgrade, "
     "HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
     "not 101"),
    ("Upgrade: websocket without a key", "GET /api/ws HTTP/1.1\r\n" + H + "Upgrade: websocket\r\n"
     "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", "not 101"),
    ("Upgrade: websocket version 99", "GET /api/ws HTTP/1.1\r\n" + H + "Upgrade: websocket\r\n"
     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
     "Sec-WebSocket-Version: 99\r\n\r\n", None),
    ("Expect: 100-continue", "POST /api/mouse HTTP/1.1\r\n" + H + "Expect: 100-continue\r\n"
     "Content-Length: 17\r\n\r\n{\"x\":0.5,\"y\":0.5}", None),
    ("LF-only line ends", "GET /api/state HTTP/1.1\n" + H.replace("\r", "") + "\n", None),
    ("CR-only line ends", "GET /api/state HTTP/1.1\rHost: 127.0.0.1:{P}\r\r", NOT_2XX),
    ("a TLS ClientHello", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + "\x00" * 160,
     NOT_2XX),
    ("4 KiB of binary", "".join(chr((i * 7919) % 256) for i in range(4096)), NOT_2XX),
    ("a header name with a space", "GET /api/state HTTP/1.1\r\n" + H + "X Y: z\r\n\r\n", None),
    ("high bytes in a header", "GET /api/state HTTP/1.1\r\n" + H + "X-A: \xff\xfe\x80\r\n\r\n",
     None),
    ("HTTP/1.0 without Host", "GET /login HTTP/1.0\r\n\r\n", None),
]

s = Server()
if True:
    P = s.port
    for what, req, want in BAD:
        data = req.replace("{P}", str(P)).encode("latin-1")
        try:
            r = raw_exchange(P, data, 2.0)
        except OSError:
            r = None
        st = r[0] if r else None
        if want == NOT_2XX:
            ok, say = not is_2xx(r), "not 2xx"
        elif want == "not 101":
            ok, say = st != 101, "not 101"
        elif want is None:
            ok, say = True, "any answer"
        elif want == HDR_GAP:
            ok, say = st in (400, 431, None), HDR_GAP
            if st is None:
                print(f"known gap: {what}: closed without an answer")
        else:
            ok, say = st in want, f"{sorted(want)}"
        check(ok, f"malformed HTTP, {what}: {say} (got {st})")
        check(s.alive() and state_ok(s), f"malformed HTTP, {what}: the server is alive and the "
              "next request works")

    # A body longer than its Content-Length: the rest is a second, broken request.
    k = raw_connect(P, timeout=5)
    k.sendall(b"POST /api/mouse HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 17\r\n\r\n"
              b'{"x":0.5,"y":0.5}GARBAGE\x00\x01 /api/key?combo=a\r\n\r\n' % P)
    rd = RawReader(k)
    r1, r2 = rd.response(2.0), rd.response(2.0)
    k.close()
    check(r1 is not None and r1[0] == 200 and not is_2xx(r2),
          f"a body longer than Content-Length: the request is answered, the rest is not served "
          f"({r1 and r1[0]}, {r2 and r2[0]})")
    # Request smuggling: a chunked body that hides a second request behind a Content-Length.
    k = raw_connect(P, timeout=5)
    k.sendall(b"POST /api/logout HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 5\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nPOST /api/key?combo=q HTTP/1.1\r\n"
              b"Host: 127.0.0.1:%d\r\nContent-Length: 0\r\n\r\n" % (P, P))
    rd = RawReader(k)
    r1 = rd.response(2.0)
    rd.response(1.0)
    k.close()
    check(r1 is not None and r1[0] == 400 and not s.calls("combo"),
          f"request smuggling (TE + CL with a request hidden behind): 400 and the hidden "
          f"request is not run ({r1 and r1[0]}, combos {s.calls('combo')})")
    # Half-open and cut-off requests.
    for what, data in (("headers then EOF", b"GET /api/state HTTP/1.1\r\nHost: x\r\n"),
                       ("a body cut short", b"POST /api/type HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Length: 10\r\n\r\nabc"),
                       ("nothing at all", b"")):
        k = raw_connect(P, timeout=5)
        if data:
            k.sendall(data)
        k.shutdown(socket.SHUT_WR)
        time.sleep(0.1)
        k.close()
        check(state_ok(s), f"malformed HTTP, {what}: the server goes on")
    check(not s.calls("type") and not s.calls("key"),
          f"the malformed requests typed and pressed nothing ({s.calls('type')[:2]}"
          f"{s.calls('key')[:2]})")
stopped(s, "malformed HTTP")

# ---- 8. malformed WebSocket messages and frames ----

SHIFT = '{"type":"key","code":"ShiftLeft","down":true}'
deep = '{"type":"key","code":"KeyA","down":true,"x":' + "[" * 100000 + "]" * 100000 + "}"
MSGS = [
    # (what, frames (bytes), expectation: "error-or-close", "close", "close 1009")
    ("not JSON", [ws_frame(1, b"hello there")], "error-or-close"),
    ("a bare {", [ws_frame(1, b"{")], "error-or-close"),
    ("an array", [ws_frame(1, b"[]")], "error-or-close"),
    ("a string", [ws_frame(1, b'"key"')], "error-or-close"),
    ("a number", [ws_frame(1, b"123")], "error-or-close"),
    ("null", [ws_frame(1, b"null")], "error-or-close"),
    ("an empty object", [ws_frame(1, b"{}")], "error-or-close"),
    ("an empty message", [ws_frame(1, b"")], "error-or-close"),
    ("type is a number", [ws_frame(1, b'{"type":1}')], "error-or-close"),
    ("type is null", [ws_frame(1, b'{"type":null}')], "error-or-close"),
    ("type is an object", [ws_frame(1, b'{"type":{"type":"key"}}')], "error-or-close"),
    ("an unknown type", [ws_frame(1, b'{"type":"format_disk"}')], "error-or-close"),
    ("Type in the wrong case", [ws_frame(1, b'{"Type":"key","code":"ShiftLeft","down":true}')],
     "error-or-close"),
    ("key without code", [ws_frame(1, b'{"type":"key","down":true}')], "error-or-close"),
    ("key without down", [ws_frame(1, b'{"type":"key","code":"ShiftLeft"}')], "error-or-close"),
    ("key with down as a string", [ws_frame(1, b'{"type":"key","code":"ShiftLeft",'
                                             b'"down":"true"}')], "error-or-close"),
    ("key with down as 1", [ws_frame(1, b'{"type":"key","code":"ShiftLeft","down":1}')],
     "error-or-close"),
    ("key with a numeric code", [ws_frame(1, b'{"type":"key","code":16,"down":true}')],
     "error-or-close"),
    ("key with an empty code", [ws_frame(1, b'{"type":"key","code":"","down":true}')],
     "error-or-close"),
    ("key with a 200-char code", [ws_frame(1, ('{"type":"key","code":"%s","down":true}'
                                              % ("A" * 200)).encode())], "error-or-close"),
    ("key with an unknown code", [ws_frame(1, b'{"type":"key","code":"KeyNope","down":true}')],
     "error-or-close"),
    ("key with a code holding a quote", [ws_frame(1, b'{"type":"key","code":"Key\\"A","down":'
                                                     b'true}')], "error-or-close"),
    ("mouse with NaN", [ws_frame(1, b'{"type":"mouse","x":NaN,"y":0.5}')], "error-or-close"),
    ("mouse with Infinity", [ws_frame(1, b'{"type":"mouse","x":Infinity,"y":0.5}')],
     "error-or-close"),
    ("mouse with 1e400", [ws_frame(1, b'{"type":"mouse","x":1e400,"y":0.5}')], "error-or-close"),
    ("mouse with a 5000-digit number", [ws_frame(1, ('{"type":"mouse","x":%s,"y":0.5}'
                                                    % ("9" * 5000)).encode())],
     "error-or-close"),
    ("mouse with x -0.1", [ws_frame(1, b'{"type":"mouse","x":-0.1,"y":0.5}')], "error-or-close"),
    ("mouse with x as a string", [ws_frame(1, b'{"type":"mouse","x":"0.5","y":0.5}')],
     "error-or-close"),
    ("mouse without y", [ws_frame(1, b'{"type":"mouse","x":0.5}')], "error-or-close"),
    ("mouse with buttons 32", [ws_frame(1, b'{"type":"mouse","x":0.5,"y":0.5,"buttons":32}')],
     "error-or-close"),
    ("mouse with buttons 1.5", [ws_frame(1, b'{"type":"mouse","x":0.5,"y":0.5,"buttons":1.5}')],
     "error-or-close"),
    ("mouse with buttons -1", [ws_frame(1, b'{"type":"mouse","x":0.5,"y":0.5,"buttons":-1}')],
     "error-or-close"),
    ("wheel with dy 1000", [ws_frame(1, b'{"type":"wheel","dy":1000}')], "error-or-close"),
    ("wheel with dy 0.5", [ws_frame(1, b'{"type":"wheel","dy":0.5}')], "error-or-close"),
    ("rel with dx 99999", [ws_frame(1, b'{"type":"rel","dx":99999,"dy":0}')], "error-or-close"),
    ("rel without dy", [ws_frame(1, b'{"type":"rel","dx":1}')], "error-or-close"),
    ("type without text", [ws_frame(1, b'{"type":"type"}')], "error-or-close"),
    ("type with empty text", [ws_frame(1, b'{"type":"type","text":""}')], "error-or-close"),
    ("type with numeric text", [ws_frame(1, b'{"type":"type","text":123}')], "error-or-close"),
    ("type with cps -1", [ws_frame(1, b'{"type":"type","text":"a","cps":-1}')],
     "error-or-close"),
    ("type with a numeric layout", [ws_frame(1, b'{"type":"type","text":"a","layout":5}')],
     "error-or-close"),
    ("switch sideways", [ws_frame(1, b'{"type":"switch","to":"sideways"}')], "error-or-close"),
    ("switch without to", [ws_frame(1, b'{"type":"switch"}')], "error-or-close"),
    ("combo with an unknown key", [ws_frame(1, b'{"type":"combo","combo":"ctrl+nosuchkey"}')],
     "error-or-close"),
    ("combo of 300 chars", [ws_frame(1, ('{"type":"combo","combo":"%s"}'
                                        % "+".join(["a"] * 150)).encode())], "error-or-close"),
    ("nesting 100000 deep", [ws_frame(1, deep.encode())], "error-or-close"),
    ("invalid UTF-8 in a text message", [ws_frame(1, b'{"type":"type","text":"\xff\xfe\xc0"}')],
     "error-or-close"),
    ("an overlong UTF-8 NUL", [ws_frame(1, b'{"type":"type","text":"a\xc0\x80b"}')],
     "error-or-close"),
    ("a UTF-16 surrogate in UTF-8", [ws_frame(1, b'{"type":"type","text":"\xed\xa0\x80"}')],
     "error-or-close"),
    ("a binary frame holding a key press", [ws_frame(2, SHIFT.encode())], "error-or-close"),
    ("an invalid message in two fragments", [ws_frame(1, b'{"type":"key",', fin=False),
                                             ws_frame(0, b'"code":"ShiftLeft"}')],
     "error-or-close"),
    ("a key press in fragments never finished", [ws_frame(1, SHIFT[:10].encode(), fin=False),
                                                  ws_frame(0, SHIFT[10:].encode(), fin=False)],
     "error-or-close"),
    ("a continuation frame with nothing to continue", [ws_frame(0, SHIFT.encode())], "close"),
    ("a new text frame inside a fragmented one", [ws_frame(1, b'{"type":', fin=False),
                                                   ws_frame(1, SHIFT.encode())], "close"),
    ("a ping of 200 bytes", [ws_frame(9, b"p" * 200)], "close"),
    ("a close frame of 200 bytes", [ws_frame(8, b"\x03\xe8" + b"c" * 198)], "close"),
    ("a fragmented ping", [ws_frame(9, b"ping", fin=False)], "close"),
    ("reserved opcode 3", [ws_frame(3, SHIFT.encode())], "close"),
    ("reserved opcode 7", [ws_frame(7, b"x")], "close"),
    ("reserved opcode 0xB", [ws_frame(0xB, b"x")], "close"),
    ("reserved opcode 0xF", [ws_frame(0xF, b"")], "close"),
    ("RSV1 set", [ws_frame(1, SHIFT.encode(), rsv=4)], "close"),
    ("RSV2 set", [ws_frame(1, SHIFT.encode(), rsv=2)], "close"),
    ("RSV3 set", [ws_frame(1, SHIFT.encode(), rsv=1)], "close"),
    # RFC 6455 5.1: close on an unmasked client frame. libwebsockets 4.1.6 does not (newer
    # releases do) and does not tell the server a frame was unmasked: a known gap, reported.
    ("an unmasked key press", [ws_frame(1, SHIFT.encode(), mask=False)], "gap"),
    ("an unmasked ping message", [ws_frame(1, b'{"type":"ping","t":1}', mask=False)], "gap"),
    ("a 300 KiB message", [ws_frame(1, b'{"type":"type","text":"' + b"a" * (300 * 1024)
                                    + b'"}')], "close 1009"),
    ("a 300 KiB message in 3 fragments",
     [ws_frame(1, b'{"type":"type","text":"' + b"a" * 102400, fin=False),
      ws_frame(0, b"a" * 102400, fin=False), ws_frame(0, b"a" * 102400 + b'"}')], "close 1009"),
    ("a frame header claiming 2^63 bytes", [ws_frame(1, b"x" * 16, length=1 << 63)], "close"),
    ("a frame header claiming 4 GiB", [ws_frame(1, b"x" * 16, length=1 << 32)], "close"),
]


def probe_ws(port, frames, timeout=3.0):
    """Send frames on a fresh WebSocket, then a ping message. Returns (outcome, close code):
    "error" (an error message came before the pong), "close", "pong" (answered, no error) or
    "hung" (neither within timeout)."""
    ws = WebSocket(port)
    ws.sock.settimeout(timeout)
    try:
        ws.recv_until(lambda m: m["type"] == "state")
        for f in frames:
            ws.sock.sendall(f)
        ws.send({"type": "ping", "t": 424242})
        err = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                m = ws.recv()
            except (OSError, ValueError, json.JSONDecodeError, struct.error):
                m = None
                if isinstance(ws.close_code, int):
                    return "close", ws.close_code
                return "hung", None
            if m is None:
                return ("error" if err else "close"), ws.close_code
            if m.get("type") == "error":
                err = True
            if m.get("type") == "pong" and m.get("t") == 424242:
                return ("error" if err else "pong"), None
        return "hung", None
    except OSError:
        return "close", ws.close_code
    finally:
        ws.sock.close()


s = Server()
if True:
    P = s.port
    for what, frames, want in MSGS:
        n = len(s.calls())
        try:
            outcome, code = probe_ws(P, frames)
        except (OSError, ConnectionError) as e:
            outcome, code = f"no WebSocket: {e}", None
        time.sleep(0.02)
        if want == "error-or-close":
            ok = outcome in ("error", "close")
        elif want == "close":
            ok = outcome == "close"
        elif want == "gap":
            ok = True
            if outcome != "close":
                print(f"known gap: WebSocket, {what}: accepted ({outcome})")
        else:
            ok = outcome == "close" and code == 1009
        check(ok, f"WebSocket, {what}: {want} (got {outcome}{f' {code}' if code else ''})")
        new = s.calls()[n:]
        check(want == "gap" or not [c for c in new if c["op"] != "release_all"],
              f"WebSocket, {what}: nothing reached the backend ({new[:3]})")
        check(s.alive(), f"WebSocket, {what}: the server is alive")
    check(not held_keys(s.calls()), f"no key is left down ({held_keys(s.calls())})")
    check(state_ok(s), "after the malformed WebSocket messages the next request works")

    # POST /api/mouse takes one WebSocket-style message: one of mouse, wheel, rel and nothing else.
    for body, op in (('{"Type":"mouse","type":"key","code":"ShiftLeft","down":true}', "key"),
                     ('{"type":"mouse","type":"key","code":"ShiftLeft","down":true}', "key"),
                     ('{"TYPE":"mouse","type":"key","code":"ControlLeft","down":true}', "key"),
                     ('{"Type":"mouse","type":"type","text":"rm -rf ~\\n"}', "type"),
                     ('{"Type":"mouse","type":"switch","to":"host"}', "switch"),
                     ('{"Type":"rel","type":"release_all"}', "release_all"),
                     ('{"Type":"wheel","type":"combo","combo":"ctrl+alt+delete"}', "combo"),
                     ('{"type":"key","code":"ShiftLeft","down":true}', "key"),
                     ('{"x":0.5,"y":0.5,"Type":"key","code":"ShiftLeft","down":true}', "key")):
        n = len(s.calls(op))
        st, _, _ = s.http("POST", "/api/mouse", body=body.encode())
        check(st == 400 and len(s.calls(op)) == n,
              f"POST /api/mouse {body}: 400 and no {op} reaches the backend (got {st}, "
              f"{s.calls(op)[n:]})")
    check(not held_keys(s.calls()), f"after those no key is left down ({held_keys(s.calls())})")
    st, _, _ = s.http("POST", "/api/mouse", body=b'{"x":0.5,"y":0.5,"buttons":0}')
    check(st == 200, "POST /api/mouse with a plain mouse message still works")
stopped(s, "malformed WebSocket")

soft.finish()
