"""A hostile client against okvm serve, part 1 (security issue 10): pipelined requests on every
route, DNS rebinding (the Host header), logout closing that session's open WebSocket and stream,
and the session cookie's name matched exactly. test_serve_probe_flood.py (slowloris, floods,
the login cap) and test_serve_probe_input.py (path tricks, malformed HTTP and WebSocket) are the
rest. Every check is reported and the script goes on, so one run lists all that failed."""
import os
import tempfile
import time

from serve_util import (Mjpeg, RawReader, Server, SoftChecks, WebSocket, answered_fresh, cpu_ok,
                        idle_cpu, login_cookie, raw_connect, raw_exchange, request_bytes,
                        stop_report, try_server, write_config, ws_frame)

soft = SoftChecks()
check = soft.check
tmp = tempfile.mkdtemp(prefix="okvm-probe-")
PW = "correct horse battery"

# Every route, with a body that makes sense for it.
ROUTES = [
    ("GET", "/", b""), ("GET", "/login", b""), ("GET", "/stream", b""),
    ("GET", "/snapshot", b""), ("GET", "/api/state", b""), ("GET", "/metrics", b""),
    ("POST", "/api/login", b"x"), ("POST", "/api/logout", b""), ("POST", "/api/type", b"x"),
    ("POST", "/api/key?combo=a", b""), ("POST", "/api/mouse", b'{"x":0.5,"y":0.5}'),
    ("POST", "/api/switch?to=host", b""), ("POST", "/api/release", b""),
    ("GET", "/api/ws", b""), ("GET", "/nope", b""),
]


def stopped(s, what):
    if s is not None:
        clean, detail = stop_report(s)
        check(clean, f"{what}: the server ran to the end and exited cleanly ({detail})")


def login_conf(name, extra=()):
    return write_config(os.path.join(tmp, name, "okvm.conf"), PW, extra)


# ---- 1. pipelining: two or three requests in one send, on every route ----

def pipeline(s, reqs, expect, label, stream_first=False):
    """Send reqs in one write on one connection; expect[i] is a set of statuses for answer i.
    Returns the still open socket (closed by the caller) and the answers."""
    k = raw_connect(s.port, timeout=5)
    k.sendall(b"".join(reqs))
    rd = RawReader(k)
    got = []
    for i in range(len(reqs)):
        r = rd.response(3.0, stream_bytes=4096 if stream_first and i == 0 else 0)
        if r is None:
            break
        got.append(r[0])
        if stream_first:
            break   # a stream never ends: nothing behind it can be answered
    first_ok = bool(got) and got[0] in expect[0]
    check(s.alive(), f"{label}: the server is alive")
    check(first_ok, f"{label}: the first answer is {sorted(expect[0])} (got {got})")
    if not stream_first:
        in_order = all(g in e for g, e in zip(got, expect))
        complete = len(got) == len(reqs) or rd.closed or rd.wait_closed(0.5)
        check(in_order and complete,
              f"{label}: every request answered in order, or closed after answering (got {got})")
    check(answered_fresh(s), f"{label}: a fresh connection is answered within 2 s")
    return k, got


def pipeline_routes(password):
    mode = "with a password" if password else "without a password"
    conf = login_conf("pipe", ["login_max_failures = 1000"]) if password else None
    args = ("--config", conf) if conf else ()
    s = Server(*args)
    # What each route answers on its own, on a fresh connection (no session).
    alone = {}
    for m, p, b in ROUTES:
        if p == "/stream":
            alone[p] = {200, 401}
            continue
        r = raw_exchange(s.port, request_bytes(m, p, s.port, b), 5.0)
        alone[p] = {r[0] if r else -1}
        if p == "/api/type":
            alone[p] |= {409}    # the first one may still be typing
    state = 401 if password else 200
    keep = []
    for m, p, b in ROUTES:
        if not s.alive():
            stopped(s, f"pipelining {mode}, before {m} {p}")
            s = Server(*args)
        label = f"{mode}: {m} {p} + GET /login + GET /api/state in one send"
        reqs = [request_bytes(m, p, s.port, b), request_bytes("GET", "/login", s.port),
                request_bytes("GET", "/api/state", s.port)]
        k, got = pipeline(s, reqs, [alone[p], {200}, {state}], label,
                          stream_first=p == "/stream")
        if p == "/stream":
            k.close()
        else:
            keep.append(k)
    cpu = idle_cpu(s)
    check(cpu_ok(cpu), f"pipelining {mode}: idle for 2 s afterwards, the server uses under 0.5 s "
          f"of CPU ({cpu})")
    for k in keep:
        k.close()
    stopped(s, f"pipelining on every route {mode}")


pipeline_routes(False)
pipeline_routes(True)

# The two crashes the probe found, each on a fresh server (login_max_failures = 5).
conf5 = login_conf("pipe5", ["login_max_failures = 5"])
s = Server("--config", conf5)
label = "password set: POST /api/login (body x) + GET /login in one send"
k, got = pipeline(s, [request_bytes("POST", "/api/login", s.port, b"x"),
                      request_bytes("GET", "/login", s.port)], [{403}, {200}], label)
cpu = idle_cpu(s)
check(cpu_ok(cpu), f"{label}: 2 s idle afterwards cost under 0.5 s of CPU ({cpu})")
k.close()
stopped(s, label)

s = Server("--config", conf5)
label = "password set: two wrong POST /api/login in one send"
k, got = pipeline(s, [request_bytes("POST", "/api/login", s.port, b"password=wrong1"),
                      request_bytes("POST", "/api/login", s.port, b"password=wrong2")],
                  [{403}, {403}], label)
cpu = idle_cpu(s)
check(cpu_ok(cpu), f"{label}: 2 s idle afterwards cost under 0.5 s of CPU ({cpu})")
k.close()
r = raw_exchange(s.port, request_bytes("POST", "/api/login", s.port, b"password=wrong3"), 3.0) \
    if s.alive() else None
check(r is not None and r[0] == 403,
      f"{label}: each was checked once: a third wrong one from a new connection gets 403, not "
      f"429, with login_max_failures = 5 (got {r and r[0]})")
stopped(s, label)

s = Server("--config", conf5)
label = "password set: a wrong then the right POST /api/login in one send"
k, got = pipeline(s, [request_bytes("POST", "/api/login", s.port, b"password=wrong"),
                      request_bytes("POST", "/api/login", s.port,
                                    ("password=" + PW).encode())], [{403}, {200}], label)
k.close()
stopped(s, label)

with Server() as s:
    label = "a WebSocket handshake with its first message in the same send"
    ws = None
    try:
        k = raw_connect(s.port, timeout=5)
        hs = request_bytes("GET", "/api/ws", s.port, headers=(
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")))
        k.sendall(hs + ws_frame(1, b'{"type":"ping","t":7}'))
        data = b""
        deadline = time.monotonic() + 3
        while b'"pong"' not in data and time.monotonic() < deadline:
            try:
                d = k.recv(65536)
            except OSError:
                break
            if not d:
                break
            data += d
        check(data.startswith(b"HTTP/1.1 101") and b'"pong"' in data,
              f"{label}: 101, then the pong")
        k.close()
    except OSError as e:
        check(False, f"{label}: {e}")
    check(s.alive() and answered_fresh(s), f"{label}: the server goes on")

# ---- 2. DNS rebinding: a page on rebind.attacker.example whose name now points at 127.0.0.1 ----

with Server() as s:
    P = s.port
    evil = f"rebind.attacker.example:{P}"
    for m, p, b in ROUTES:
        hdrs = (("Origin", f"http://{evil}"),) if m == "POST" else ()
        r = raw_exchange(P, request_bytes(m, p, P, b, headers=hdrs, host=evil), 3.0,
                         stream_bytes=20000)
        st = r[0] if r else None
        body = r[2] if r else b""
        check(st == 403, f"rebinding: {m} {p} with Host: {evil}: 403 (got {st})")
        if p in ("/stream", "/snapshot"):
            check(b"\xff\xd8" not in body, f"rebinding: {p} with a foreign Host gives no JPEG")
    check(not s.calls(), f"rebinding: nothing was typed or sent ({len(s.calls())} backend calls)")
    try:
        ws = WebSocket(P, host=evil, origin=f"http://{evil}")
        st = ws.status
        ws.close()
    except (ConnectionError, OSError) as e:
        st = str(e)
    check(st != 101, f"rebinding: the WebSocket handshake with a foreign Host is not 101 ({st})")
    for host in (f"rebind.attacker.example", f"127.0.0.1.attacker.example:{P}",
                 f"localhost.attacker.example:{P}", f"attacker.example:{P}", f"evil:{P}"):
        r = raw_exchange(P, request_bytes("GET", "/api/state", P, host=host), 3.0)
        check(r is not None and r[0] == 403, f"rebinding: Host: {host}: 403 (got {r and r[0]})")
    for host in (f"127.0.0.1:{P}", f"localhost:{P}", f"LOCALHOST:{P}", f"foo.localhost:{P}",
                 f"[::1]:{P}", f"192.0.2.7:{P}", f"127.0.0.5:{P}"):
        r = raw_exchange(P, request_bytes("GET", "/api/state", P, host=host), 3.0)
        check(r is not None and r[0] == 200, f"Host: {host} is allowed: 200 (got {r and r[0]})")
    r = raw_exchange(P, request_bytes("GET", "/api/state", P, host=False), 3.0)
    check(r is not None and r[0] == 400, f"an HTTP/1.1 request without Host: 400 (got {r and r[0]})")
    check(not s.calls(), "rebinding: still nothing sent to the backend")

names = write_config(os.path.join(tmp, "names", "okvm.conf"), None,
                     ["server_names = kvm.example.org, other.example"])
s = try_server("--config", names)
check(s is not None, "a config with server_names = kvm.example.org, other.example starts")
if s:
    P = s.port
    for host, want in ((f"kvm.example.org:{P}", 200), (f"other.example:{P}", 200),
                       (f"evil.example:{P}", 403), (f"x.kvm.example.org:{P}", 403),
                       (f"kvm.example.org.evil:{P}", 403), (f"localhost:{P}", 200)):
        r = raw_exchange(P, request_bytes("GET", "/api/state", P, host=host), 3.0)
        check(r is not None and r[0] == want,
              f"server_names: Host: {host}: {want} (got {r and r[0]})")
    r = raw_exchange(P, request_bytes("POST", "/api/key?combo=a", P, host=f"kvm.example.org:{P}",
                                      headers=(("Origin", f"http://kvm.example.org:{P}"),)), 3.0)
    check(r is not None and r[0] == 200 and s.calls("combo"),
          "server_names: a POST from the named host reaches the backend")
    stopped(s, "server_names")

# ---- 3. logout closes that session's open WebSocket and MJPEG stream ----

def login(s, src=None):
    return login_cookie(s.port, PW, src)


def ws_closed_within(ws, secs):
    """True if the server closes ws within secs (messages meanwhile are read and dropped)."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        ws.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if ws.recv() is None:
                return True
        except (OSError, ValueError):
            return False   # timeout: still open
    return False


def stream_ended_within(m, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        m.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            m._fill()
            m.buf = b""
        except (EOFError, ConnectionResetError):
            return True
        except OSError:
            return False
    return False


s = Server("--config", login_conf("logout"), fps=30)
a, b = login(s), login(s)
check(a and b and a != b, "two logins give two sessions")
wa, wb = WebSocket(s.port, cookie=a), WebSocket(s.port, cookie=b)
wa.recv_until(lambda m: m["type"] == "state")
wb.recv_until(lambda m: m["type"] == "state")
ma, mb = Mjpeg(s.port, cookie=a), Mjpeg(s.port, cookie=b)
ma.part()
mb.part()
r = raw_exchange(s.port, request_bytes("POST", "/api/logout", s.port, headers=(("Cookie", a),)),
                 3.0)
check(r is not None and r[0] == 200, "POST /api/logout with session A: 200")
t0 = time.monotonic()
check(ws_closed_within(wa, 1.0), "logout: session A's open WebSocket is closed within 1 s")
check(stream_ended_within(ma, max(0.05, 1.0 - (time.monotonic() - t0)) + 0.2),
      "logout: session A's open MJPEG stream ends within 1 s")
try:
    wa.send({"type": "key", "code": "KeyQ", "down": True})
    wa.send({"type": "key", "code": "KeyQ", "down": False})
except OSError:
    pass
wb.sync()
ok = True
try:
    mb.sock.settimeout(3)
    mb.part()
except (EOFError, OSError, ValueError):
    ok = False
check(ok, "logout: session B's stream goes on")
check(wb.sync()["type"] == "pong", "logout: session B's WebSocket goes on")
check(not s.calls("key"), f"logout: a key sent on A's old WebSocket did nothing "
      f"({s.calls('key')})")
r = raw_exchange(s.port, request_bytes("GET", "/api/state", s.port, headers=(("Cookie", a),)), 3)
check(r is not None and r[0] == 401, "logout: session A's cookie no longer opens /api/state")
for x in (wa, wb, ma, mb):
    x.close()
stopped(s, "logout")

# ---- 9. the session cookie is matched by its exact name ----

s = Server("--config", login_conf("cookie"))
tok = login(s)
check(tok is not None, "cookies: login works")
if tok:
    T = tok.split("=", 1)[1]
    for cookie, want in ((f"okvm_session={T}", 200), (f"xokvm_session={T}", 401),
                         (f"aokvm_session=1; okvm_session={T}", 200),
                         (f"a=b; xokvm_session={T}", 401), (f"okvm_sessionx={T}", 401),
                         (f"x=okvm_session={T}", 401), (f"okvm_session={T}x", 401),
                         (f"okvm_session={T[:-1]}", 401)):
        r = raw_exchange(s.port, request_bytes("GET", "/api/state", s.port,
                                               headers=(("Cookie", cookie),)), 3.0)
        check(r is not None and r[0] == want,
              f"cookies: Cookie: {cookie[:40]}{'...' if len(cookie) > 40 else ''}: {want} "
              f"(got {r and r[0]})")
stopped(s, "cookies")

soft.finish()
