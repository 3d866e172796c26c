"""A hostile client against okvm serve, part 2 (security issue 10): slowloris and connection
floods against the connection limits (header_timeout, max_unauth_per_address),
and the login rate limit: others' wrong passwords must not lock out the right one."""
import os
import resource
import select
import socket
import tempfile
import time

from serve_util import (RawReader, Server, SoftChecks, WebSocket, answered_fresh, login_cookie,
                        raw_connect, raw_exchange, request_bytes, stop_report, try_server,
                        write_config)

soft = SoftChecks()
check = soft.check
tmp = tempfile.mkdtemp(prefix="okvm-flood-")
PW = "correct horse battery"
soft_lim, hard_lim = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft_lim, min(hard_lim, 4096)), hard_lim))


def stopped(s, what):
    if s is not None:
        clean, detail = stop_report(s)
        check(clean, f"{what}: the server ran to the end and exited cleanly ({detail})")


def closed_by_peer(k):
    """True if the server has closed k (EOF or reset waiting to be read)."""
    try:
        r, _, _ = select.select([k], [], [], 0)
        if not r:
            return False
        return k.recv(65536, socket.MSG_PEEK) == b""
    except (ConnectionResetError, OSError):
        return True


def trickle(k, data, gap, limit):
    """Send data a byte at a time, gap seconds apart, until the server closes k or limit seconds
    pass; returns the seconds until it closed, or None."""
    t0 = time.monotonic()
    for b in data:
        if closed_by_peer(k):
            return time.monotonic() - t0
        try:
            k.send(bytes([b]))
        except OSError:
            return time.monotonic() - t0
        deadline = min(time.monotonic() + gap, t0 + limit)
        while time.monotonic() < deadline:
            r, _, _ = select.select([k], [], [], deadline - time.monotonic())
            if r and closed_by_peer(k):
                return time.monotonic() - t0
            if r:
                try:
                    k.recv(65536)   # an early error answer: read it, wait for the close
                except OSError:
                    return time.monotonic() - t0
        if time.monotonic() >= t0 + limit:
            return None
    return None


def open_idle(port, n, srcs=("127.0.0.1",)):
    """n connections that send nothing, round robin over the source addresses."""
    socks = []
    for i in range(n):
        try:
            k = raw_connect(port, src=srcs[i % len(srcs)], timeout=1.0)
        except OSError:
            continue    # the backlog is full: that is the server's business
        socks.append(k)
    return socks


HT, IT, MAXU = 2, 2, 8
limits = write_config(os.path.join(tmp, "limits", "okvm.conf"), PW, [
    f"header_timeout = {HT}", f"max_unauth_per_address = {MAXU}"])

# ---- 4. slowloris and floods ----

s = try_server("--config", limits)
check(s is not None, "a config with header_timeout and max_unauth_per_address "
      "starts")
if s:
    P = s.port
    cookie = login_cookie(P, PW)
    check(cookie is not None, "limits: the right password logs in")

    k = raw_connect(P, timeout=5)
    t = trickle(k, request_bytes("GET", "/login", P, headers=(("X-Pad", "a" * 40),)), 0.5, HT + 4)
    k.close()
    check(t is not None and t <= HT + 1,
          f"slowloris: headers sent one byte per 0.5 s are cut off within header_timeout + 1 s "
          f"({t and round(t, 2)} s)")

    k = raw_connect(P, timeout=5)
    t0 = time.monotonic()
    k.sendall(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 40\r\n\r\n" % P)
    t = trickle(k, b"password=" + b"b" * 31, 0.5, HT + 4)
    k.close()
    check(t is not None and t <= HT + 1,
          f"slowloris: a login body sent one byte per 0.5 s is cut off within header_timeout + 1 s "
          f"({t and round(t, 2)} s)")

    k = raw_connect(P, timeout=5)
    k.sendall(request_bytes("GET", "/login", P))
    rd = RawReader(k)
    r = rd.response(3.0)
    t0 = time.monotonic()
    closed = rd.wait_closed(IT + 3)
    t = time.monotonic() - t0
    k.close()
    check(r is not None and r[0] == 200 and closed and t <= 1,
          f"a connection that did GET /login is closed after the answer (no idle keep-alive) "
          f"({round(t, 2) if closed else 'still open'} after {IT + 3} s)")

    socks = open_idle(P, 100)
    # Each gets a second's grace to send its request (guard.c), then the sweep (every 0.5 s)
    # closes the oldest beyond the limit: allow 2.5 s.
    t0 = time.monotonic()
    while True:
        time.sleep(0.25)
        still = [k for k in socks if not closed_by_peer(k)]
        if len(still) <= MAXU or time.monotonic() - t0 > 2.5:
            break
    check(len(socks) >= 50 and len(still) <= MAXU,
          f"100 idle connections from 127.0.0.1: at most {MAXU} still open 2.5 s later "
          f"({len(still)} of {len(socks)} opened)")
    check(bool(socks) and socks[-1] in still,
          "and the newest one is among those kept (the oldest go first)")
    t0 = time.monotonic()
    ok = answered_fresh(s, 2.0, cookie=cookie)
    check(ok and time.monotonic() - t0 <= 2.0,
          "during that flood a logged-in client's new connection gets /api/state 200 within 2 s")
    check(s.alive(), "the server is alive after the flood from one address")
    for k in socks:
        k.close()
    stopped(s, "slowloris and one address's flood")

s = try_server("--config", limits)
if s:
    P = s.port
    cookie = login_cookie(P, PW)
    srcs = [f"127.0.0.{i}" for i in range(2, 41)]
    socks = open_idle(P, 300, srcs)
    time.sleep(0.3)
    t0 = time.monotonic()
    ok = answered_fresh(s, 2.0, cookie=cookie)
    check(cookie and ok and time.monotonic() - t0 <= 2.0,
          f"300 idle connections from 127.0.0.2..40 ({len(socks)} got through): a logged-in "
          "client from 127.0.0.1 gets /api/state 200 within 2 s")
    try:
        ws = WebSocket(P, cookie=cookie)
        ws.sock.settimeout(3)
        ok = ws.sync()["type"] == "pong"
        ws.close()
    except (OSError, ConnectionError, SystemExit) as e:
        ok = False
        print("  (WebSocket:", e, ")")
    check(ok, "and a working WebSocket (ping, pong)")
    check(s.alive(), "the server is alive after the flood from 39 addresses")
    for k in socks:
        k.close()
    stopped(s, "the flood from 39 addresses")

# ---- 5. the login rate limit ----


def parallel_logins(port, srcs, body):
    socks = []
    for src in srcs:
        k = raw_connect(port, src=src, timeout=10)
        k.sendall(request_bytes("POST", "/api/login", port, body))
        socks.append(k)
    out = []
    for k in socks:
        r = RawReader(k).response(10.0)
        out.append(r[0] if r else None)
        k.close()
    return out


cap = write_config(os.path.join(tmp, "cap", "okvm.conf"), PW, ["login_max_failures = 5"])
with Server("--config", cap) as s:
    P = s.port
    got = parallel_logins(P, [f"127.0.0.{i}" for i in range(2, 22)], b"password=wrong")
    check(all(g in (403, 429) for g in got),
          f"20 wrong passwords from 127.0.0.2..21 are refused ({got.count(403)} x 403, "
          f"{got.count(429)} x 429)")
    t0 = time.monotonic()
    k = raw_connect(P, src="127.0.0.1", timeout=5)
    k.sendall(request_bytes("POST", "/api/login", P, ("password=" + PW).encode()))
    r = RawReader(k).response(3.0)
    k.close()
    check(r is not None and r[0] == 200 and time.monotonic() - t0 <= 3.0,
          f"right after them the right password from 127.0.0.1 gets 200 within 3 s "
          f"(got {r and r[0]})")

with Server("--config", cap) as s:     # fresh: the limit above must not get in the way
    P = s.port
    got = []
    for i in range(6):
        r = raw_exchange(P, request_bytes("POST", "/api/login", P,
                                          (b"password=guess%d" % i) if i < 5 else
                                          ("password=" + PW).encode()), 10.0, src="127.0.0.30")
        got.append(r and r[0])
    check(got == [403] * 5 + [429],
          f"per address: 5 wrong passwords from 127.0.0.30, then it gets 429 even for the right "
          f"one ({got})")
    r = raw_exchange(P, request_bytes("POST", "/api/login", P, ("password=" + PW).encode()), 10.0,
                     src="127.0.0.31")
    check(r is not None and r[0] == 200, "while another address logs in (200)")


def ipv6_loopback():
    try:
        k = socket.socket(socket.AF_INET6)
        k.bind(("::1", 0))
        k.close()
        return True
    except OSError:
        return False


if ipv6_loopback():
    from serve_util import free_port  # noqa: E402
    port = free_port()
    s = try_server("--config", cap, listen=f"[::1]:{port}")
    check(s is not None, "IPv6: the server listens on [::1]")
    if s:
        got = []
        for i in range(6):
            try:
                k = raw_connect(s.port, timeout=10, host="::1")
                k.sendall(request_bytes("POST", "/api/login", s.port, b"password=v6guess%d" % i,
                                        host=f"[::1]:{s.port}"))
                r = RawReader(k).response(10.0)
                k.close()
            except OSError:
                r = None
            got.append(r and r[0])
        check(got == [403] * 5 + [429],
              f"IPv6: 5 wrong passwords from ::1, then 429 ({got})")
        stopped(s, "IPv6 login limit")
    # Grouping by /64 needs a second source address in the same /64 as a local one; loopback
    # has only ::1, and the test does not add addresses to the host.
    print("skip: IPv6 /64 grouping (loopback has a single address, ::1)")
else:
    print("skip: IPv6 (no ::1 on this host)")

soft.finish()
