"""Helpers for okvm serve's integration tests: start the server with the test backend, a tiny
WebSocket client (RFC 6455, standard library only), and readers for MJPEG and the backend log.

The server command line can be swapped with OKVM_SERVE_BACKEND_ARGS (a shell-quoted string) so
the same tests run against another backend, e.g. the integrator's `-d emu`."""
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
    """okvm serve on a free loopback port with the test backend; .log is the backend log."""

    def __init__(self, *extra, fps=30, listen=None, env=None, expect_fail=False, backend=None):
        self.tmp = tempfile.mkdtemp(prefix="okvm-serve-")
        self.log = os.path.join(self.tmp, "backend.jsonl")
        self.port = free_port()
        self.listen = listen or f"127.0.0.1:{self.port}"
        self.port = int(self.listen.rsplit(":", 1)[1])
        bargs = shlex.split(os.environ.get("OKVM_SERVE_BACKEND_ARGS", "")) or [
            "--test-backend", f"{FRAMES}@{fps}", "--test-backend-log", self.log]
        if backend is not None:
            bargs = backend
        self.cmd = [OKVM, "serve", "--listen", self.listen] + bargs + list(extra)
        e = dict(os.environ)
        e.setdefault("HOME", self.tmp)
        e["XDG_CONFIG_HOME"] = os.path.join(self.tmp, "xdg")
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
