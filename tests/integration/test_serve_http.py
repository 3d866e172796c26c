"""okvm serve over HTTP: MJPEG stream and snapshot byte-exact against the frames the backend
serves, /api/state, /metrics, the REST API reaching the backend, and bad requests that must
change nothing and leave the server running."""
import json
import socket
import time

from serve_util import Mjpeg, Server, WebSocket, check, fixture_frames, metrics

frames = fixture_frames()

with Server(fps=20) as s:
    s.http("GET", "/snapshot")  # the size is the newest frame's: capture one first
    st, state = s.json("GET", "/api/state")
    check(st == 200 and state["unit"] == "virtual unit (emu)" and state["video"]["width"] == 640
          and state["video"]["height"] == 360, "GET /api/state describes the unit and video")

    m = Mjpeg(s.port)
    check(m.status == 200 and m.headers["content-type"] ==
          "multipart/x-mixed-replace;boundary=boundarydonotcross", "GET /stream is multipart")
    parts = [m.part() for _ in range(6)]
    check(all(p[1] in frames for p in parts), "every part is one of the backend's JPEGs, byte-exact")
    ts = [float(p[0]["x-timestamp"]) for p in parts]
    check(all(b > a for a, b in zip(ts, ts[1:])), "X-Timestamp increases part by part")
    check(all(p[0]["content-type"] == "image/jpeg" for p in parts), "parts are image/jpeg")
    m.close()

    # A slow reader with a tiny window: the server's sends stop part-way through the header, the
    # JPEG or the boundary and resume there; every part must still arrive whole.
    m = Mjpeg(s.port, rcvbuf=2048)
    parts = []
    for _ in range(5):
        parts.append(m.part())
        time.sleep(0.03)
    check(all(p[1] in frames for p in parts),
          "a slow reader with a 2 KiB window gets whole, byte-exact parts")
    m.close()

    m = Mjpeg(s.port, "/?action=stream")
    h, jpeg = m.part()
    check(m.status == 200 and jpeg in frames, "/?action=stream is the same stream")
    m.close()

    for path in ("/snapshot", "/?action=snapshot"):
        st, h, data = s.http("GET", path)
        check(st == 200 and h["content-type"] == "image/jpeg" and data in frames
              and int(h["content-length"]) == len(data), f"GET {path} is one whole JPEG")

    st, h, body = s.http("GET", "/")
    check(st == 200 and b"<title>okvm</title>" in body and "text/html" in h["content-type"],
          "GET / serves the embedded web UI")
    st, h, body = s.http("GET", "/app.js")
    check(st == 200 and b"WebSocket" in body, "the UI's script is embedded")

    # REST API -> backend
    st, r = s.json("POST", "/api/key?combo=ctrl+alt+delete")
    check(st == 200 and r["ok"], "POST /api/key?combo=ctrl+alt+delete answers ok")
    check(s.calls("combo")[-1]["combo"] == "ctrl+alt+delete", "the combo reached the backend")
    st, r = s.json("POST", "/api/key?combo=ctrl+nosuchkey")
    check(st == 400 and not r["ok"] and len(s.calls("combo")) == 1,
          "an unknown key name in a combo is refused and nothing is sent")
    st, r = s.json("POST", "/api/mouse", body=json.dumps({"x": 0.25, "y": 0.75, "buttons": 1}))
    c = s.calls("mouse")[-1]
    check(st == 200 and c == {"op": "mouse", "x": 0.25, "y": 0.75, "buttons": 1},
          "POST /api/mouse moves and presses")
    n = len(s.calls())
    st, r = s.json("POST", "/api/mouse", body=json.dumps({"x": 1.5, "y": 0.2}))
    check(st == 400 and len(s.calls()) == n, "POST /api/mouse out of range: 400, nothing sent")
    st, r = s.json("POST", "/api/mouse", body=b"{not json")
    check(st == 400 and len(s.calls()) == n, "POST /api/mouse with bad JSON: 400, nothing sent")
    st, r = s.json("POST", "/api/switch?to=host")
    check(st == 200 and s.calls("switch")[-1]["to"] == "host", "POST /api/switch?to=host")
    st, r = s.json("POST", "/api/switch?to=sideways")
    check(st == 400 and len(s.calls("switch")) == 1, "a bad switch direction is refused")
    text = "Hello, wörld!\n"
    ws = WebSocket(s.port)      # typing progress arrives as state events
    st, r = s.json("POST", "/api/type?layout=de&cps=500", body=text.encode())
    check(st == 202 and r["ok"], "POST /api/type accepts the text")
    ws.recv_until(lambda m: m["type"] == "state" and m["typing"]["total"] == len(text)
                  and m["typing"]["done"] == len(text) and not m["typing"]["active"])
    ws.close()
    t = s.calls("type")[-1]
    check(t["layout"] == "de" and t["chars"] == len(text), "layout and length reach the backend")
    check("".join(c["text"] for c in s.calls("typed")) == text,
          "every character was typed, in order, and progress reached the end")

    # metrics
    mt = metrics(s)
    for name in ("okvm_capture_frames_total", "okvm_serve_frames_total", "okvm_serve_stream_clients",
                 "okvm_serve_ws_clients", "okvm_serve_stream_drops_total", "okvm_hid_errors_total",
                 "okvm_typing_queue", 'okvm_serve_frame_write_seconds{quantile="0.99"}',
                 "okvm_link_ack_seconds_last", "okvm_serve_fps"):
        if name not in mt:
            fail(f"/metrics lacks {name}")
    check(mt["okvm_serve_frames_total"] >= 7, "/metrics counts the frames served")
    fan = mt['okvm_serve_frame_fanout_seconds{quantile="0.99"}']
    check(mt["okvm_serve_frame_fanout_seconds_count"] >= 5 and 0 < fan < 1,
          f"/metrics times frame ready -> written to every waiting client (p99 {fan * 1e3:.2f} ms)")

    # errors
    st, r = s.json("GET", "/nope")
    check(st == 404, "unknown path: 404")
    st, r = s.json("GET", "/api/type")
    check(st == 405, "GET on a POST route: 405")
    st, r = s.json("DELETE", "/api/state")
    check(st == 405, "DELETE: 405")
    st, h, _ = s.http("POST", "/api/type", body=b"x" * (300 * 1024))
    check(st == 413, "a body over 256 KiB: 413")

    def raw(data, read=True):
        k = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        k.sendall(data)
        out = b""
        if read:
            try:
                while True:
                    d = k.recv(65536)
                    if not d:
                        break
                    out += d
                    if b"\r\n\r\n" in out:
                        break
            except (socket.timeout, ConnectionResetError):
                pass
        k.close()
        return out

    out = raw(b"\x16\x03\x01garbage that is not http\r\n\r\n")
    check(not out.startswith(b"HTTP/1.1 200"), "garbage instead of a request is not served")
    out = raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    check(not out.startswith(b"HTTP/1.1 200"), "a 20 kB header is refused")
    out = raw(b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    check(not out.startswith(b"HTTP/1.1 200"), "a 10 kB request line is refused")
    out = raw(b"POST /api/type HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nabc")
    check(not out.startswith(b"HTTP/1.1 2"), "a negative Content-Length is refused")
    st, state = s.json("GET", "/api/state")
    check(st == 200 and s.alive(), "the server still answers after all of that")

rc = s.proc.returncode
check(rc == 0, "SIGTERM: exit status 0")

# Command-line errors: one line each, exit 2 for usage, 1 for a runtime failure.
import subprocess  # noqa: E402
from serve_util import FRAMES, OKVM  # noqa: E402

with Server() as s:
    r = subprocess.run([OKVM, "serve", "--listen", f"127.0.0.1:{s.port}", "-d", f"frames:{FRAMES}"],
                       capture_output=True, text=True, timeout=20)
    check(r.returncode == 1 and r.stderr.count("\n") == 1 and "in use" in r.stderr,
          "a port in use: exit 1 with one line")
for args, what in ((["--listen", "nope"], "a malformed --listen"),
                   (["--listen", "127.0.0.1:70000"], "a port over 65535"),
                   (["--tls-cert", "x.pem"], "--tls-cert without --tls-key"),
                   (["--bogus"], "an unknown option")):
    r = subprocess.run([OKVM, "serve", "-d", f"frames:{FRAMES}"] + args, capture_output=True,
                       text=True, timeout=20)
    check(r.returncode == 2 and r.stderr.count("\n") == 1, f"{what}: exit 2 with one line")
r = subprocess.run([OKVM, "serve", "--help"], capture_output=True, text=True, timeout=20)
opts = ["--listen", "--config", "--tls-cert", "--tls-key", "--tls-self-signed", "--session-hours",
        "--stall-timeout", "--max-clients", "--type-cps", "--auth", "--video frames:"]
check(r.returncode == 0 and all(o in r.stdout for o in opts), "okvm serve --help lists every option")

# Discovery: -d N picks a unit from sysfs (a recorded tree here; its tty does not exist).
import os  # noqa: E402
import tempfile  # noqa: E402
from serve_util import SRC  # noqa: E402

tree = os.path.join(SRC, "tests", "fixtures", "sysfs", "mini-kvm-v1-9")
r = subprocess.run([OKVM, "serve", "-d", "1", "--listen", "127.0.0.1:1"], capture_output=True,
                   text=True, timeout=30, env=dict(os.environ, OKVM_SYSFS_ROOT=tree))
check(r.returncode == 1 and r.stderr.count("\n") == 1 and "/dev/ttyUSB0" in r.stderr,
      "-d 1 finds the unit by discovery and names its serial port when it cannot open it")
r = subprocess.run([OKVM, "serve", "--listen", "127.0.0.1:1"], capture_output=True, text=True,
                   timeout=30, env=dict(os.environ, OKVM_SYSFS_ROOT=tempfile.mkdtemp()))
check(r.returncode == 1 and "-d emu" in r.stderr, "no unit found: the message suggests -d emu")
