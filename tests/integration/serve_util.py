"""Helpers for okvm serve's integration tests: start the server on the virtual unit with the
recorder (tests/recorder/okvm-rec.c), a tiny WebSocket client (RFC 6455, standard library only),
and readers for MJPEG and the call log.

By default a Server is `okvm-rec serve -d emu --video frames:FIXTURES@FPS`: the product's code
with every backend call the unit accepted logged to .log (OKVM_REC_LOG); input goes through the
real keymap and link to the virtual CH9329 and target, video is the fixture JPEGs. The unit
arguments can be swapped with OKVM_SERVE_BACKEND_ARGS (a shell-quoted string); backend=[...]
runs the product binary itself with those arguments (no call log)."""
import base64
import http.client
import json
import os
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

OKVM = os.environ.get("OKVM", "build/okvm")
OKVM_REC = os.environ.get("OKVM_REC") or os.path.join(os.path.dirname(OKVM), "tests", "recorder",
                                                      "okvm-rec")
SRC = os.environ.get("OKVM_SRC", ".")
FRAMES = os.path.join(SRC, "tests", "fixtures", "serve-frames")


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def passed(msg):
    """Report a step whose failure the preceding code already turned into fail()."""
    print("ok:", msg)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok:", msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """okvm serve on a free loopback port on the recorded virtual unit; .log is the call log."""

    def __init__(self, *extra, fps=30, listen=None, env=None, expect_fail=False, backend=None):
        self.tmp = tempfile.mkdtemp(prefix="okvm-serve-")
        self.log = os.path.join(self.tmp, "backend.jsonl")
        self.port = free_port()
        self.listen = listen or f"127.0.0.1:{self.port}"
        self.port = int(self.listen.rsplit(":", 1)[1])
        bargs = shlex.split(os.environ.get("OKVM_SERVE_BACKEND_ARGS", "")) or [
            "-d", "emu", "--video", f"frames:{FRAMES}@{fps}"]
        binary = OKVM_REC
        if backend is not None:
            bargs, binary = backend, OKVM
        self.cmd = [binary, "serve", "--listen", self.listen] + bargs + list(extra)
        e = dict(os.environ)
        e.setdefault("HOME", self.tmp)
        e["XDG_CONFIG_HOME"] = os.path.join(self.tmp, "xdg")
        e["OKVM_REC_LOG"] = self.log
        e.update(env or {})
        self.stderr_path = os.path.join(self.tmp, "stderr.txt")
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.stderr, env=e)
        if expect_fail:
            return
        line = self.proc.stdout.readline().decode()
        if "serving on" not in line:
            self.proc.wait(10)
            fail(f"server did not start: {line!r} {self.errors()}")
        self.url = line.split("serving on ", 1)[1].strip()

    def errors(self):
        if not self.stderr.closed:
            self.stderr.flush()
        return open(self.stderr_path).read()

    def http(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def json(self, method, path, body=None, headers=None):
        st, h, data = self.http(method, path, body, headers)
        return st, json.loads(data) if data else None

    def calls(self, op=None):
        if not os.path.exists(self.log):
            return []
        out = [json.loads(l) for l in open(self.log) if l.strip()]
        return [c for c in out if op is None or c["op"] == op]

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail("server ignored SIGTERM")
        self.stderr.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *a):
        rc = self.stop()
        if exc_type is None and rc != 0:
            fail(f"okvm serve exited with {rc}: {self.errors()[-2000:]}")


def metrics(server):
    st, h, data = server.http("GET", "/metrics")
    out = {}
    for line in data.decode().splitlines():
        if line and not line.startswith("#"):
            name, val = line.rsplit(" ", 1)
            out[name] = float(val)
    return out


# ---- MJPEG ----

class Mjpeg:
    """Reads parts of GET /stream: (headers dict, jpeg bytes)."""

    def __init__(self, port, path="/stream", rcvbuf=None, tls=None, cookie=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(20)
        self.sock.connect(("127.0.0.1", port))
        if tls:
            self.sock = tls.wrap_socket(self.sock, server_hostname="127.0.0.1")
        extra = f"Cookie: {cookie}\r\n" if cookie else ""
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}

    def _fill(self):
        d = self.sock.recv(262144)
        if not d:
            raise EOFError("stream closed")
        self.buf += d

    def _until(self, sep):
        while sep not in self.buf:
            self._fill()
        i = self.buf.index(sep)
        out, self.buf = self.buf[:i], self.buf[i + len(sep):]
        return out

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def part(self):
        line = self._until(b"\r\n")
        while line == b"":
            line = self._until(b"\r\n")
        if line != b"--boundarydonotcross":
            raise ValueError(f"expected boundary, got {line[:80]!r}")
        head = self._until(b"\r\n\r\n").decode()
        h = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in head.split("\r\n")}
        jpeg = self._take(int(h["content-length"]))
        if self._take(2) != b"\r\n":
            raise ValueError("no CRLF after a part")
        return h, jpeg

    def close(self):
        self.sock.close()


def fixture_frames():
    return [open(os.path.join(FRAMES, f), "rb").read() for f in sorted(os.listdir(FRAMES))]


# ---- WebSocket ----

class WebSocket:
    def __init__(self, port, path="/api/ws", origin=None, cookie=None, host=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        hdrs = [f"GET {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}",
                "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                "Sec-WebSocket-Version: 13"]
        if origin:
            hdrs.append(f"Origin: {origin}")
        if cookie:
            hdrs.append(f"Cookie: {cookie}")
        self.sock.sendall(("\r\n".join(hdrs) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(4096)
            if not d:
                raise ConnectionError("closed during handshake")
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split()[1])
        if self.status != 101:
            raise ConnectionError(f"handshake status {self.status}")
        self.close_code = None

    def send_frame(self, opcode, payload, fin=True):
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        if n < 126:
            hdr = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 1 << 16 else \
            _mask_big(payload, mask)
        self.sock.sendall(hdr + mask + masked)

    def send(self, obj):
        data = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
        self.send_frame(0x1, data.encode() if isinstance(data, str) else data)

    def _take(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("closed")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self):
        b0, b1 = self._take(2)
        n = b1 & 0x7f
        if n == 126:
            n = struct.unpack("!H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8))[0]
        return b0 & 0x0f, self._take(n)

    def recv(self):
        """Next text message as a dict; None when the server closed."""
        while True:
            try:
                op, data = self.recv_frame()
            except (EOFError, ConnectionResetError):
                return None
            if op == 0x8:
                self.close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                return None
            if op == 0x9:
                self.send_frame(0xA, data)
                continue
            if op == 0x1:
                return json.loads(data)

    def recv_until(self, pred, limit=500):
        for _ in range(limit):
            m = self.recv()
            if m is None:
                fail("WebSocket closed while waiting")
            if pred(m):
                return m
        fail("message never came")

    def sync(self):
        """Round trip: after the pong, every earlier message has been handled."""
        t = time.monotonic()
        self.send({"type": "ping", "t": t})
        return self.recv_until(lambda m: m["type"] == "pong" and m.get("t") == t)

    def close(self):
        try:
            self.send_frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


def _mask_big(payload, mask):
    n = len(payload)
    m = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")


def wait_readable(sock, timeout):
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


# ---- hostile probes (test_serve_probe*.py) ----

class SoftChecks:
    """check() that records a failure and goes on, so one run lists every check that failed;
    finish() exits non-zero if any did."""

    def __init__(self):
        self.failed = []

    def check(self, cond, msg):
        if cond:
            print("ok:", msg)
        else:
            print("FAIL:", msg)
            self.failed.append(msg)
        sys.stdout.flush()
        return bool(cond)

    def finish(self):
        if self.failed:
            print(f"\n{len(self.failed)} check(s) failed:")
            for m in self.failed:
                print("  FAIL:", m)
            sys.exit(1)
        print("all checks passed")


def write_config(path, password=None, serve_lines=()):
    """A config file with [serve] lines and, if given, a password set by `okvm passwd`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("[serve]\n" + "".join(l + "\n" for l in serve_lines))
    os.chmod(path, 0o600)
    if password is not None:
        env = dict(os.environ, HOME=os.path.dirname(path),
                   XDG_CONFIG_HOME=os.path.join(os.path.dirname(path), "xdg"))
        r = subprocess.run([OKVM, "passwd", "--config", path], input=(password + "\n").encode(),
                           capture_output=True, env=env, timeout=60)
        if r.returncode:
            fail(f"okvm passwd failed: {r.stderr!r}")
    return path


def try_server(*args, **kw):
    """Server(...) or None when it does not start (e.g. a config key it does not know yet)."""
    try:
        return Server(*args, **kw)
    except SystemExit:
        return None


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_connect(port, src=None, timeout=5.0, host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    k = socket.socket(fam, socket.SOCK_STREAM)
    k.settimeout(timeout)
    if src:
        k.bind((src, 0))
    k.connect((host, port))
    return k


def request_bytes(method, path, port, body=b"", headers=(), host=None, version="HTTP/1.1"):
    """One HTTP/1.1 request; Content-Length is added for POSTs. headers: (name, value) pairs."""
    lines = [f"{method} {path} {version}"]
    if host is not False:
        lines.append(f"Host: {host or f'127.0.0.1:{port}'}")
    for n, v in headers:
        lines.append(f"{n}: {v}")
    if method == "POST" and not any(n.lower() == "content-length" for n, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class RawReader:
    """Reads HTTP/1.1 responses off a raw socket, one after another, with a deadline."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.closed = False

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0 or self.closed:
            return False
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            return False
        try:
            d = self.sock.recv(262144)
        except (ConnectionResetError, socket.timeout, OSError):
            d = b""
        if not d:
            self.closed = True
            return False
        self.buf += d
        return True

    def response(self, timeout=3.0, stream_bytes=0):
        """(status, headers, body) of the next response; None if none came (closed or timeout).
        A response without Content-Length (a stream) is read for stream_bytes bytes or until
        closed; its body is what came."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                return None
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            self.buf = b""
            return (0, {}, head)
        h = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip()
             for l in lines[1:] if ":" in l}
        if "content-length" in h:
            n = int(h["content-length"])
            while len(rest) < n:
                self.buf = head + b"\r\n\r\n" + rest
                if not self._fill(deadline):
                    return (status, h, rest)
                head, rest = self.buf.split(b"\r\n\r\n", 1)
            self.buf = rest[n:]
            return (status, h, rest[:n])
        self.buf = rest
        while len(self.buf) < stream_bytes and self._fill(deadline):
            pass
        body, self.buf = self.buf, b""
        return (status, h, body)

    def wait_closed(self, timeout):
        """True if the peer closes within timeout (data that comes meanwhile is dropped)."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            if self._fill(deadline):
                self.buf = b""
        return self.closed


def raw_exchange(port, data, timeout=3.0, src=None, stream_bytes=0):
    """Send data on a fresh connection, return the first response (or None) and close."""
    k = raw_connect(port, src=src, timeout=timeout)
    try:
        k.sendall(data)
    except OSError:
        pass
    r = RawReader(k).response(timeout, stream_bytes=stream_bytes)
    k.close()
    return r


def ws_frame(opcode, payload, fin=True, rsv=0, mask=True, length=None):
    """A client WebSocket frame built by hand: rsv is the 3 RSV bits, length overrides the
    payload length field."""
    b0 = (0x80 if fin else 0) | (rsv & 7) << 4 | opcode
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + _mask_big(payload, key) if payload else hdr + key


def stop_report(s):
    """Stop s (SIGTERM, then SIGKILL after 10 s): (exited cleanly?, what happened)."""
    alive = s.alive()
    rc = s.proc.poll()
    if rc is None:
        s.proc.send_signal(signal.SIGTERM)
        try:
            rc = s.proc.wait(10)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            s.proc.wait()
            rc = "killed: it ignored SIGTERM"
    err = s.errors()
    s.stderr.close()
    why = [l.strip() for l in err.splitlines()
           if "ERROR: AddressSanitizer" in l or "SUMMARY:" in l or "runtime error" in l][:3]
    detail = f"rc {rc}" + ("" if alive else ", it had died") + \
        ("; " + " | ".join(why) if why else "")
    return alive and rc == 0 and not why, detail


def answered_fresh(s, timeout=2.0, cookie=None, src=None):
    """A new connection's GET /login (GET /api/state with a cookie) gets 200 within timeout."""
    if not s.alive():
        return False
    hdrs = (("Cookie", cookie),) if cookie else ()
    path = "/api/state" if cookie else "/login"
    try:
        r = raw_exchange(s.port, request_bytes("GET", path, s.port, headers=hdrs), timeout,
                         src=src)
    except OSError:
        return False
    return r is not None and r[0] == 200


def idle_cpu(s, secs=2.0):
    """CPU seconds the server used over secs of idling, as "0.02 s"; "it died" if it did."""
    if not s.alive():
        return "it had died"
    t0 = cpu_seconds(s.proc.pid)
    time.sleep(secs)
    if not s.alive():
        return "it died"
    return f"{cpu_seconds(s.proc.pid) - t0:.2f} s"


def cpu_ok(cpu, limit=0.5):
    return cpu.endswith(" s") and float(cpu[:-2]) < limit


def login_cookie(port, password, src=None, timeout=10.0):
    """POST /api/login on a fresh connection: "okvm_session=..." or None."""
    try:
        r = raw_exchange(port, request_bytes("POST", "/api/login", port,
                                             ("password=" + password).encode()), timeout, src=src)
    except OSError:
        return None
    if not r or r[0] != 200:
        return None
    return r[1].get("set-cookie", "").split(";")[0]
