"""okvm serve's answers a person can act on (issue 13): --listen with a host name really listens;
REST errors in one format, naming what was wrong and what to do, never a bare errno text;
/api/type validates before it says busy; the WebSocket says the same."""
import json
import socket
import sys
import time

from serve_util import Server, WebSocket, check, free_port

JSON = {"Content-Type": "application/json"}


def no_errno_text(msg):
    return not any(t in msg for t in ("Invalid argument", "Device or resource busy",
                                      "Operation not supported"))


def listen_by_name():
    port = free_port()
    with Server(listen=f"localhost:{port}") as s:
        k = socket.create_connection(("localhost", port), timeout=5)
        k.sendall(f"GET /api/state HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            d = k.recv(4096)
            if not d:
                break
            data += d
        k.close()
        check(data.startswith(b"HTTP/1.1 200"),
              f"--listen localhost:{port}: it says serving on and answers there")


def rest_errors():
    with Server() as s:
        for body in ['{"type":"nosuch"}', '{"type":"mouse","x":2,"y":0}', '[1]',
                     '{"type":"wheel","dx":3}', '{"type":"rel","dx":1}']:
            st, o = s.json("POST", "/api/mouse", body.encode(), JSON)
            check(st >= 400 and o.get("ok") is False and "type" not in o and
                  no_errno_text(o["error"]),
                  f"/api/mouse {body}: {st} in the REST format: {o['error']!r}")
        st, o = s.json("POST", "/api/mouse", b'{"type":"wheel","dx":3}', JSON)
        check(st == 501 and "horizontal wheel" in o["error"],
              f"a horizontal wheel says the unit has none (501): {o['error']!r}")
        st, o = s.json("POST", "/api/type?layout=xx", b"abc")
        check(st == 400 and o["error"] ==
              "type: no keyboard layout 'xx' (see GET /api/layouts or okvm layouts)",
              f"an unknown layout is named, with where to look: {o['error']!r}")
        for cps in ("abc", "-5", "1e9", ""):
            st, o = s.json("POST", f"/api/type?cps={cps}", b"abc")
            check(st == 400 and "cps" in o["error"], f"cps={cps!r} is a 400: {o['error']!r}")
        st, o = s.json("POST", "/api/type?layout=us", "a\u00fcb".encode())
        check(st == 400 and "U+00FC" in o["error"] and no_errno_text(o["error"]),
              f"untypeable text names the character: {o['error']!r}")
        st, o = s.json("POST", "/api/type?cps=5", b"a" * 40)
        check(st == 202, "a slow paste starts")
        st, o = s.json("POST", "/api/type", b"more")
        check(st == 409 and o["error"] == "type: a paste is running; wait or POST /api/release",
              f"a second paste: 409 with what to do: {o['error']!r}")
        st, o = s.json("POST", "/api/type?layout=xx", b"abc")
        check(st == 400, "a bad layout during a paste is still a 400 (checked before busy)")
        st, o = s.json("POST", "/api/type?cps=abc", b"abc")
        check(st == 400, "a bad cps during a paste is still a 400")
        st, o = s.json("POST", "/api/key?combo=ctrl%2Bnosuchkey")
        check(st == 400 and "nosuchkey" in o["error"], f"a bad key is named: {o['error']!r}")
        s.json("POST", "/api/release")

        ws = WebSocket(s.port)
        ws.send({"type": "type", "text": "x", "layout": "xx"})
        m = ws.recv_until(lambda m: m["type"] == "error")
        check("no keyboard layout 'xx'" in m["error"], f"WebSocket, unknown layout: {m['error']!r}")
        ws.send({"type": "combo", "combo": "alt+bogus"})
        m = ws.recv_until(lambda m: m["type"] == "error")
        check("bogus" in m["error"], f"WebSocket, a bad key name is named: {m['error']!r}")
        ws.send({"type": "wheel", "dx": 2})
        m = ws.recv_until(lambda m: m["type"] == "error")
        check(no_errno_text(m["error"]), f"WebSocket, wheel: no errno text: {m['error']!r}")
        ws.send({"type": "type", "text": "b" * 30, "cps": 5})
        ws.sync()
        ws.send({"type": "type", "text": "c"})
        m = ws.recv_until(lambda m: m["type"] == "error")
        check("a paste is running" in m["error"], f"WebSocket, busy: {m['error']!r}")
        ws.send({"type": "release_all"})
        ws.sync()
        ws.close()


def long_arguments():
    """A long query argument (a cache-buster, a token a proxy adds) must not hide the ones after
    it (lws_get_urlarg_by_name gave up at the first argument longer than the caller's buffer);
    a value too long for its argument is refused, never cut to a shorter one."""
    pad = "pad=" + "x" * 300
    with Server() as s:
        st, o = s.json("POST", f"/api/key?{pad}&combo=ctrl%2Bnosuchkey")
        check(st == 400 and "nosuchkey" in o["error"],
              f"/api/key: combo after a 300-byte argument is still read: {st} {o.get('error')!r}")
        n = len(s.calls("combo"))
        st, o = s.json("POST", f"/api/key?{pad}&combo=a")
        check(st == 200 and len(s.calls("combo")) == n + 1, f"and pressed ({st})")
        st, o = s.json("POST", f"/api/type?{pad}&layout=xx", b"abc")
        check(st == 400 and "'xx'" in o["error"],
              f"/api/type: the layout after a long argument is checked: {o.get('error')!r}")
        st, o = s.json("POST", "/api/type?layout=" + "d" * 200, b"abc")
        check(st == 400 and "(too long)" in o["error"] and not s.calls("type"),
              f"a 200-character layout is refused as too long, nothing typed: {o.get('error')!r}")
        st, o = s.json("POST", f"/api/switch?{pad}&to=nowhere")
        check(st == 400, f"/api/switch: to= after a long argument is read (400 for nowhere): {st}")
        from serve_util import Mjpeg
        k = Mjpeg(s.port, path=f"/stream?{pad}&fps=nonsense")
        check(k.status == 400, f"/stream: fps= after a long argument is checked ({k.status})")
        k.close()


def main():
    listen_by_name()
    rest_errors()
    long_arguments()
    layouts_and_default()
    favicon_and_head()
    state_without_viewer()


def layouts_and_default():
    import subprocess
    from serve_util import OKVM
    want = json.loads(subprocess.run([OKVM, "layouts", "--json"], capture_output=True,
                                     check=True).stdout)
    with Server("--layout", "de") as s:
        st, got = s.json("GET", "/api/layouts")
        check(st == 200 and got == want and len(got) > 50,
              f"GET /api/layouts lists what okvm layouts --json does ({len(got or [])} entries)")
        check(any(e["name"] == "de:nodeadkeys" for e in got), "variants are listed (de:nodeadkeys)")
        st, o = s.json("GET", "/api/state")
        check(o.get("layout") == "de", f"GET /api/state names the server's paste layout: {o.get('layout')!r}")
        ws = WebSocket(s.port)
        m = ws.recv_until(lambda m: m["type"] == "state")
        check(m.get("layout") == "de", "so does the WebSocket state event")
        ws.close()


def favicon_and_head():
    from serve_util import raw_connect, request_bytes
    with Server() as s:
        st, h, body = s.http("GET", "/favicon.ico")
        check(st in (200, 204) and (st == 204 or h["content-type"].startswith("image/")),
              f"/favicon.ico answers ({st}), no 404")
        st, h, body = s.http("GET", "/")
        k = raw_connect(s.port)
        k.sendall(request_bytes("HEAD", "/", s.port))
        data = b""
        while True:
            d = k.recv(65536)
            if not d:
                break
            data += d
        k.close()
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        hh = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        check(lines[0].startswith("HTTP/1.1 200") and hh.get("content-type") == h["content-type"]
              and hh.get("content-length") == str(len(body)),
              f"HEAD / answers as GET does: {lines[0]!r}, the same type and length")
        check(rest == b"", f"HEAD /: no body follows the headers ({len(rest)} bytes)")
        st, h, body = s.http("HEAD", "/api/state")
        check(st == 200 and not body, "HEAD /api/state: 200, no body")


def state_without_viewer():
    with Server() as s:
        t = time.monotonic()
        st, o = s.json("GET", "/api/state")
        took = time.monotonic() - t
        v = o["video"]
        check(st == 200 and v["signal"] is True and v["width"] > 0 and v["height"] > 0,
              f"GET /api/state right after start, nobody watching: signal and size "
              f"({v['signal']}, {v['width']}x{v['height']}, {took * 1000:.0f} ms)")
        check(o["clients"]["streams"] == 0 and o["clients"]["sockets"] == 0,
              "without opening /stream or a WebSocket")
        st, o = s.json("GET", "/api/state")
        check(o["video"]["signal"] is True, "a second look says the same")


if __name__ == "__main__":
    main()
