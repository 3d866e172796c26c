"""Reading GET /stream.h264 in the tests (test_serve_h264.py, test_serve_h264_v4l2.py): a raw
reader, the NAL unit types of Annex-B bytes, the whole access units of a cut read, and what
ffprobe and ffmpeg (decoders nobody here wrote) make of them."""
import json
import os
import socket
import subprocess
import tempfile
import time

from serve_util import fail


class H264:
    """A raw GET /stream.h264 reader: the response headers, then the Annex-B bytes."""

    def __init__(self, port, query=""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock.sendall(f"GET /stream.h264{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = self.sock.recv(65536)
            if not d:
                fail("stream.h264 closed before its headers")
            buf += d
        head, self.data = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip()
                        for l in lines[1:] if ":" in l}

    def read_for(self, secs):
        t0 = time.monotonic()
        self.sock.settimeout(0.3)
        while time.monotonic() - t0 < secs:
            try:
                d = self.sock.recv(262144)
            except socket.timeout:
                continue
            if not d:
                break
            self.data += d
        return self.data

    def close(self):
        self.sock.close()


def nal_types(d):
    out, i = [], 0
    while True:
        j = d.find(b"\x00\x00\x01", i)
        if j < 0 or j + 3 >= len(d):
            return out
        out.append(d[j + 3] & 0x1F)
        i = j + 3


def whole_units(d):
    """The bytes before the last access unit (which the read may have cut): an access unit
    starts at an SPS or at a slice that follows a slice."""
    starts, prev, i = [], None, 0
    while True:
        j = d.find(b"\x00\x00\x01", i)
        if j < 0 or j + 3 >= len(d):
            break
        t = d[j + 3] & 0x1F
        if t == 7 or (t in (1, 5) and prev in (1, 5)):
            starts.append(j - 1 if j and d[j - 1] == 0 else j)
        prev, i = t, j + 3
    return d[:starts[-1]] if len(starts) > 1 else d


def probe(d):
    """ffprobe's stream (codec, profile, size, frames read) and ffmpeg's decode errors."""
    f = tempfile.NamedTemporaryFile(suffix=".h264", delete=False)
    f.write(whole_units(d))
    f.close()
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                        "stream=codec_name,profile,width,height,nb_read_frames", "-of", "json",
                        f.name], capture_output=True, text=True)
    dec = subprocess.run(["ffmpeg", "-v", "error", "-i", f.name, "-f", "null", "-"],
                         capture_output=True, text=True)
    os.unlink(f.name)
    streams = json.loads(r.stdout or "{}").get("streams") or [{}]
    return streams[0], dec.stderr.strip()
