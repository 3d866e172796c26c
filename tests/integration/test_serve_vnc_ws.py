"""okvm serve --vnc and WebSocket clients (noVNC's way in): LibVNCServer answers a WebSocket
handshake on the VNC port, and checks no Origin. Without [vnc] password (loopback) any web page
open in a browser on this host could open ws://127.0.0.1:PORT and drive the target, so such a
client is refused before any of its messages is read, while plain RFB clients still work. With a
password, WebSocket clients get VNC authentication like any other, and over TLS (wss://) when the
web server has a certificate: the same one, checked here by Python's TLS client (OpenSSL)."""
import base64
import os
import socket
import ssl
import struct
import tempfile
import time

from serve_util import Server, check, fail, free_port


class WsRfb:
    """RFB inside WebSocket binary frames, optionally over TLS."""

    def __init__(self, port, tls=None, origin="http://evil.example"):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s = tls.wrap_socket(raw, server_hostname="localhost") if tls else raw
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {origin}\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                        "Sec-WebSocket-Protocol: binary\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                raise EOFError("closed during the handshake")
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split()[1])
        self.data = b""  # RFB bytes taken out of frames

    def _take_raw(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("closed")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def take(self, n):
        while len(self.data) < n:
            b0, b1 = self._take_raw(2)
            ln = b1 & 0x7f
            if ln == 126:
                ln = struct.unpack("!H", self._take_raw(2))[0]
            elif ln == 127:
                ln = struct.unpack("!Q", self._take_raw(8))[0]
            payload = self._take_raw(ln)
            if b0 & 0x0f == 0x8:
                raise EOFError("close frame")
            self.data += payload
        out, self.data = self.data[:n], self.data[n:]
        return out

    def send(self, payload):
        mask = os.urandom(4)
        n = len(payload)
        hdr = struct.pack("!BB", 0x82, 0x80 | n) if n < 126 else struct.pack("!BBH", 0x82, 0xfe, n)
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def close(self):
        self.s.close()


def banner_then(c):
    """The RFB exchange up to the security types; EOFError when the server closed first."""
    ver = c.take(12)
    if not ver.startswith(b"RFB 003."):
        fail(f"not an RFB banner over the WebSocket: {ver!r}")
    c.send(b"RFB 003.008\n")
    n = c.take(1)[0]
    return list(c.take(n))


def plain_types(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.recv(12)
    s.sendall(b"RFB 003.008\n")
    n = s.recv(1)[0]
    types = list(s.recv(n))
    s.close()
    return types


# -- loopback, no password: a WebSocket client (a web page) is refused, RFB clients are not --
vport = free_port()
with Server("--vnc", f"127.0.0.1:{vport}") as s:
    c = WsRfb(vport)
    check(c.status == 101, f"LibVNCServer answers the handshake ({c.status})")
    try:
        types = banner_then(c)
        fail(f"a WebSocket client without a password got the security types {types}: any web page "
             "could drive the target")
    except (EOFError, ConnectionResetError):
        check(True, "a WebSocket client is closed after the banner, before any message of it is read")
    c.close()
    for _ in range(50):
        if "refused a WebSocket client" in s.errors():
            break
        time.sleep(0.1)
    check("refused a WebSocket client from 127.0.0.1: without [vnc] password" in s.errors(),
          "the refusal is logged with the reason and the fix")
    check(plain_types(vport) == [1], "a plain RFB client still gets in without a password (loopback)")

# -- a password and the web server's TLS pair: wss:// with VNC authentication --
tmp = tempfile.mkdtemp()
conf = os.path.join(tmp, "okvm.conf")
tdir = os.path.join(tmp, "tls")
os.mkdir(tdir, 0o700)
vport = free_port()
with open(conf, "w") as f:
    f.write(f"[serve]\ntls_dir = {tdir}\n[vnc]\nlisten = 127.0.0.1:{vport}\npassword = secret12\n")
os.chmod(conf, 0o600)
# LibVNCServer sets up its TLS context (GnuTLS) at the first wss:// client and never frees it:
# the library's, not okvm's (under AddressSanitizer only).
supp = os.path.join(tmp, "lsan.supp")
with open(supp, "w") as f:
    f.write("leak:rfbssl_init_global\nleak:__gmp_default_allocate\nleak:gnutls_dh_params_init\n"
            "leak:libgnutls.so\n")
env = {"LSAN_OPTIONS": f"suppressions={supp}:print_suppressions=0"}
with Server("--config", conf, "--tls-self-signed", env=env) as s:
    check(s.url.startswith("https://"), "the web server runs TLS")
    ctx = ssl.create_default_context(cafile=os.path.join(tdir, "okvm-selfsigned.crt"))
    c = WsRfb(vport, tls=ctx)
    peer = c.s.getpeercert(binary_form=True)
    mine = ssl.PEM_cert_to_DER_cert(open(os.path.join(tdir, "okvm-selfsigned.crt")).read())
    check(peer == mine, f"wss:// presents the web server's certificate ({c.s.version()})")
    check(c.status == 101, "the WebSocket handshake completes over TLS")
    types = banner_then(c)
    check(types == [2], f"over wss://, VNC authentication is asked for ({types})")
    c.send(bytes([2]))
    c.take(16)                 # the challenge
    c.send(bytes(16))          # a wrong response
    check(struct.unpack(">I", c.take(4))[0] == 1, "a wrong password over wss:// fails")
    c.close()
    c = WsRfb(vport)           # plain ws:// with a password: as a plain RFB client
    check(banner_then(c) == [2], "ws:// with a password gets VNC authentication too")
    c.close()
