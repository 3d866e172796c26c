#!/usr/bin/env python3
"""Virtual media through okvm serve (issue 16, item 3, the web part): POST /api/media with the
image as the body, against `-d emu --emu-media FILE` (a file stands for the USB stick). The
stick's bytes must equal the image's whatever the compression; GET /api/media must show the
phases with bytes; every refusal the issue names (too large, mounted, a second job, a cut
upload, a cancel) must be answered or reported with nothing written to the stick where nothing
may be; --emu-events must show the port going to the host and back; without a login: 401."""
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import read_events  # noqa: E402
from serve_util import (Mjpeg, RawReader, Server, check, fail, login_cookie,  # noqa: E402
                        request_bytes, write_config)

MB = 1000 * 1000
STICK = 16 * 1024 * 1024


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Box:
    """An image of random bytes, a 16 MiB stick, events, a spool folder, and the server."""

    def __init__(self, size=3 * MB + 12345, env=None, extra=(), config=None, stick=STICK):
        self.stick_size = stick
        self.tmp = tempfile.TemporaryDirectory(prefix="okvm-smedia-")
        self.d = self.tmp.name
        self.data = os.urandom(size)
        self.raw = self.path("image.img")
        with open(self.raw, "wb") as f:
            f.write(self.data)
        self.stick = self.path("stick")
        self.fresh_stick()
        self.events = self.path("ev.jsonl")
        self.spool = self.path("spool")
        os.mkdir(self.spool)
        e = {"TMPDIR": self.spool}
        e.update(env or {})
        args = ["-d", "emu", "--emu-media", self.stick, "--emu-events", self.events]
        if config:
            args += ["--config", config]
        self.srv = Server(backend=args + list(extra), env=e)
        self.cookie = None

    def path(self, name):
        return os.path.join(self.d, name)

    def fresh_stick(self):
        with open(self.stick, "wb") as f:
            f.truncate(self.stick_size)

    def stick_bytes(self, n=None):
        with open(self.stick, "rb") as f:
            return f.read(n if n is not None else -1)

    def untouched(self):
        return self.stick_bytes() == bytes(self.stick_size)

    def switches(self):
        return [e["to"] for e in read_events(self.events) if e["type"] == "switch"]

    def headers(self):
        return {"Cookie": self.cookie} if self.cookie else {}

    def get(self):
        st, j = self.srv.json("GET", "/api/media", headers=self.headers())
        if st != 200:
            fail(f"GET /api/media: {st} {j}")
        return j

    def post(self, query, body=b""):
        return self.srv.json("POST", "/api/media?" + query, body=body, headers=self.headers())

    def wait_end(self, timeout=60, seen=None):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            j = self.get()
            job = j["job"]
            if seen is not None and job and (not seen or seen[-1][0] != job["phase"]):
                seen.append((job["phase"], job["done"], job["total"]))
            if job and job["phase"] in ("done", "failed") and not j["busy"]:
                return job
            time.sleep(0.02)
        fail(f"the job did not end: {self.get()}")

    def spool_files(self):
        return [n for n in os.listdir(self.spool) if n.startswith("okvm-media-")]

    def close(self):
        self.srv.__exit__(None)


def compress(data, kind, raw_path):
    if kind == "gz":
        return gzip.compress(data, compresslevel=1)
    if kind == "xz":
        return lzma.compress(data, preset=0)
    if not shutil.which("zstd"):
        fail("the zstd tool is missing (scripts/install-deps installs it)")
    out = raw_path + ".zst"
    subprocess.run(["zstd", "-q", "-1", "-f", raw_path, "-o", out], check=True)
    with open(out, "rb") as f:
        return f.read()


def open_upload(port, query, length, first=b"", cookie=None):
    """A raw POST /api/media whose headers promise length bytes; first is sent at once."""
    k = socket.create_connection(("127.0.0.1", port), timeout=20)
    hdrs = [("Content-Length", str(length)), ("Content-Type", "application/octet-stream")]
    if cookie:
        hdrs.append(("Cookie", cookie))
    k.sendall(request_bytes("POST", "/api/media?" + query, port, headers=hdrs) + first)
    return k


def test_upload_each_kind():
    b = Box()
    try:
        st, j = b.post("action=check&name=image.img&size=%d" % len(b.data))
        check(st == 200 and j["ok"] and j["stick"]["device"] == os.path.realpath(b.stick),
              f"check before the upload: {st} {j}")
        j = b.get()
        check(j["stick"]["present"] and j["stick"]["size"] == STICK and
              j["stick"]["usb"] == "target" and j["job"] is None,
              f"GET before any job: the stick at the target, no job: {j}")
        for kind in ("raw", "gz", "xz", "zst"):
            b.fresh_stick()
            before = len(b.switches())
            name = "image.img" if kind == "raw" else "image.img." + kind
            body = b.data if kind == "raw" else compress(b.data, kind, b.raw)
            st, j = b.post("name=" + name, body)
            check(st == 202 and j["ok"] and j["bytes"] == len(body), f"{kind}: POST {st} {j}")
            job = b.wait_end()
            check(job["phase"] == "done", f"{kind}: {job}")
            check(sha(b.stick_bytes(len(b.data))) == sha(b.data),
                  f"{kind}: the stick holds the image")
            check(b.stick_bytes()[len(b.data):] == bytes(STICK - len(b.data)),
                  f"{kind}: bytes past the image unchanged")
            check(job["sha256"] == sha(b.data) and
                  f"verified: sha256 {sha(b.data)}" in job["result"], f"{kind}: {job}")
            check(b.switches()[before:] == ["host", "target"],
                  f"{kind}: the port went to the host and back: {b.switches()[before:]}")
            check(b.spool_files() == [], f"{kind}: the spool file is gone")
        check(b.get()["stick"]["usb"] == "target", "the port ends at the target")
    finally:
        b.close()


def test_progress_phases():
    """A slow upload (sent in pieces) and a slow stick (the CLI's OKVM_MEDIA_DELAY_MS hook):
    GET shows upload, then check, switch, write and verify with bytes, MB/s and ETA, then done."""
    b = Box(size=6 * 1024 * 1024, env={"OKVM_MEDIA_DELAY_MS": "60"})
    try:
        body = gzip.compress(b.data, compresslevel=1)
        k = open_upload(b.srv.port, "name=disk.img.gz", len(body), body[:len(body) // 3])
        time.sleep(0.3)
        j = b.get()
        job = j["job"]
        check(j["busy"] and job["phase"] == "upload" and 0 < job["done"] < job["total"] and
              job["total"] == len(body) and job["name"] == "disk.img.gz",
              f"mid-upload: phase upload with bytes: {job}")
        check(b.untouched() and b.switches() == [], "mid-upload: nothing written, port unmoved")
        st, j2 = b.post("name=other.img", b.data[:1000])
        check(st == 409 and "another write is under way" in j2["error"],
              f"a second upload while one runs: 409: {st} {j2}")
        k.sendall(body[len(body) // 3:])
        r = RawReader(k).response(20)
        k.close()
        check(r and r[0] == 202, f"the upload's answer: {r}")
        seen = [("upload", 0, 0)]
        mid = None
        end = time.monotonic() + 60
        while time.monotonic() < end:
            job = b.get()["job"]
            if seen[-1][0] != job["phase"]:
                seen.append((job["phase"], job["done"], job["total"]))
            if job["phase"] == "write" and 0 < job["done"] < job["total"] and job["mb_s"] > 0:
                mid = job
            if job["phase"] in ("done", "failed"):
                break
            time.sleep(0.02)
        phases = [p for p, _, _ in seen]
        check(job["phase"] == "done", f"the job: {job}")
        order = ["upload", "check", "switch", "write", "verify", "switch", "done"]
        it = iter(order)
        check(all(p in it for p in phases) and "write" in phases and phases[-1] == "done",
              f"phases in order: {phases}")
        check(mid is not None and mid["total"] == len(b.data) and "eta_s" in mid,
              f"write progress with bytes, MB/s and ETA: {mid}")
        check(sha(b.stick_bytes(len(b.data))) == sha(b.data), "the stick holds the image")
    finally:
        b.close()


def test_refusals():
    mounts_dir = tempfile.mkdtemp(prefix="okvm-smedia-m-")
    mounts = os.path.join(mounts_dir, "mounts")
    b = Box(env={"OKVM_MOUNTS": os.path.join(mounts_dir, "mounts")})
    try:
        with open(mounts, "w") as o:
            o.write("proc /proc proc rw 0 0\n")
        # too large, raw: refused before the body is read (headers only are sent)
        k = open_upload(b.srv.port, "name=big.img", STICK + 1)
        r = RawReader(k).response(10)
        k.close()
        msg = json.loads(r[2])["error"] if r else ""
        check(r and r[0] == 413 and "does not fit on" in msg and "big.img" in msg,
              f"too large raw: 413 before the body: {r}")
        check(b.untouched() and b.switches() == [], "too large raw: nothing written, no switch")
        # too large once unpacked: found by the check, after the upload, before any write
        big = os.urandom(STICK + 4096)
        st, j = b.post("name=big.img.gz", gzip.compress(big, compresslevel=1))
        check(st == 202, f"too large .gz: the upload is taken: {st} {j}")
        job = b.wait_end()
        check(job["phase"] == "failed" and "does not fit on" in job["error"] and
              "big.img.gz" in job["error"], f"too large .gz: refused: {job}")
        check(b.untouched() and b.switches() == ["host", "target"],
              f"too large .gz: nothing written, the port back at the target: {b.switches()}")
        # a cut archive
        st, j = b.post("name=cut.img.xz", lzma.compress(b.data, preset=0)[:100000])
        job = b.wait_end()
        check(st == 202 and job["phase"] == "failed" and "not a valid archive" in job["error"]
              and "cut.img.xz" in job["error"], f"cut .xz: {job}")
        check(b.untouched(), "cut .xz: nothing written")
        # mounted: refused before the upload
        with open(mounts, "a") as o:
            o.write(f"{os.path.realpath(b.stick)}1 /media/stick vfat rw 0 0\n")
        k = open_upload(b.srv.port, "name=image.img", len(b.data))  # refused before the body
        r = RawReader(k).response(10)
        k.close()
        st, j = (r[0], json.loads(r[2])) if r else (0, {"error": ""})
        check(st == 409 and "is mounted" in j["error"] and "/media/stick" in j["error"],
              f"mounted: 409: {st} {j}")
        check(b.get()["stick"]["mounted"].endswith("/media/stick"), "GET says where it is mounted")
        with open(mounts, "w") as o:
            o.write("proc /proc proc rw 0 0\n")
        # more than the spool folder holds
        k = open_upload(b.srv.port, "name=huge.img.xz", 1 << 60)
        r = RawReader(k).response(10)
        k.close()
        check(r and r[0] == 507 and b"spool folder" in r[2], f"larger than the spool: {r}")
        # an empty body, a bad action, boot=1 without power control
        st, j = b.post("name=e.img")
        check(st == 400 and "empty" in j["error"], f"empty: {st} {j}")
        st, j = b.post("action=sideways")
        check(st == 400, f"bad action: {st} {j}")
        k = open_upload(b.srv.port, "name=image.img&boot=1", len(b.data))
        r = RawReader(k).response(10)
        k.close()
        check(r and r[0] == 400 and b"power control" in r[2], f"boot=1 without power: {r}")
        st, j = b.post("action=cancel")
        check(st == 409 and "nothing to cancel" in j["error"], f"cancel with no job: {st} {j}")
        check(b.untouched() and b.switches() == ["host", "target"], "nothing written by any")
        check(b.spool_files() == [], "no spool file left")
    finally:
        b.close()
        shutil.rmtree(mounts_dir)


def test_cut_upload():
    b = Box()
    try:
        k = open_upload(b.srv.port, "name=image.img", len(b.data), b.data[:1024 * 1024])
        time.sleep(0.3)
        check(len(b.spool_files()) == 1, "the upload is spooled")
        k.close()
        job = b.wait_end()
        check(job["phase"] == "failed" and "upload was cut after" in job["error"] and
              "nothing written to the medium" in job["error"], f"cut upload: {job}")
        check(b.untouched() and b.switches() == [], "cut upload: nothing written, no switch")
        check(b.spool_files() == [], "cut upload: the spool file is gone")
        # the next upload works
        st, j = b.post("name=image.img", b.data)
        job = b.wait_end()
        check(st == 202 and job["phase"] == "done" and
              sha(b.stick_bytes(len(b.data))) == sha(b.data), f"after a cut upload: {job}")
    finally:
        b.close()


def test_cancel():
    b = Box(size=8 * 1024 * 1024, env={"OKVM_MEDIA_DELAY_MS": "150"})
    try:
        # during the upload: the upload ends, nothing written
        k = open_upload(b.srv.port, "name=image.img", len(b.data), b.data[:1024 * 1024])
        time.sleep(0.3)
        st, j = b.post("action=cancel")
        check(st == 200 and j["ok"] and j["phase"] == "upload" and
              "nothing was written" in j["message"], f"cancel during the upload: {st} {j}")
        closed = RawReader(k).wait_closed(10)
        k.close()
        job = b.wait_end()
        check(closed and job["phase"] == "failed" and job["cancelled"] and
              "cancelled during the upload" in job["error"], f"cancelled upload: {job}")
        check(b.untouched() and b.switches() == [] and b.spool_files() == [],
              "cancelled upload: nothing written, no switch, no spool")
        # during the write: stops, says how far and that the medium is not bootable
        st, j = b.post("name=image.img", b.data)
        check(st == 202, f"upload: {st} {j}")
        end = time.monotonic() + 20
        while time.monotonic() < end and b.get()["job"]["done"] < 1024 * 1024 or \
                b.get()["job"]["phase"] != "write":
            if time.monotonic() > end:
                fail(f"no write under way: {b.get()}")
            time.sleep(0.02)
        time.sleep(0.16)  # one more chunk (150 ms) than the last progress report told
        st, j = b.post("action=cancel")
        check(st == 200 and j["phase"] == "write" and "not bootable" in j["message"],
              f"cancel during the write: {st} {j}")
        job = b.wait_end()
        check(job["phase"] == "failed" and job["cancelled"] and "cancelled after" in job["error"]
              and "the medium is not bootable" in job["error"], f"cancelled write: {job}")
        n = re.search(r"cancelled after (\d+) of", job["error"])
        check(n and job["done"] == int(n.group(1)),
              f"the job's done is what the error says was written: {job}")
        got = b.stick_bytes(len(b.data))
        check(got != b.data and got[:1024 * 1024] == b.data[:1024 * 1024],
              "cancelled write: part of the image on the stick, not all")
        check(b.switches() == ["host"], f"the port stays at the host: {b.switches()}")
    finally:
        b.close()


def rss_anon_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def test_slow_spool():
    """A slow spool disk (OKVM_MEDIA_SPOOL_DELAY_MS: each 1 MiB written to the spool file takes
    that long more) must not stall the rest of the server: the spool is written by the worker,
    not the service thread, so a /stream viewer's frames keep coming during the upload, and the
    upload is held back (its socket not read) instead of queued in memory."""
    # 1: the stream goes on: 6 MiB at 700 ms per MiB is about 4 s of spooling
    b = Box(size=6 * MB, env={"OKVM_MEDIA_SPOOL_DELAY_MS": "700"})
    try:
        st0 = Mjpeg(b.srv.port, "/stream")
        st0.part()
        k = open_upload(b.srv.port, "name=image.img", len(b.data))
        sender = threading.Thread(target=lambda: k.sendall(b.data), daemon=True)
        sender.start()
        gaps, last, end = [], time.monotonic(), time.monotonic() + 3
        while time.monotonic() < end:
            st0.part()
            now = time.monotonic()
            gaps.append(now - last)
            last = now
        st0.close()
        job = b.get()["job"]
        check(job["phase"] == "upload" and job["done"] < len(b.data),
              f"the upload was still spooling while the stream was read: {job}")
        check(len(gaps) >= 5 and max(gaps) < 0.5,
              f"the stream kept its frames during the slow spool ({len(gaps)} frames in 3 s, "
              f"longest gap {max(gaps) * 1000:.0f} ms)")
        sender.join(30)
        job = b.wait_end()
        check(job["phase"] == "done" and sha(b.stick_bytes(len(b.data))) == sha(b.data),
              f"slow spool: the image on the stick: {job}")
        k.close()
    finally:
        b.close()
    # 2: held back, not queued: 48 MiB at 60 ms per MiB
    b = Box(size=48 * MB, env={"OKVM_MEDIA_SPOOL_DELAY_MS": "60"}, stick=64 * 1024 * 1024)
    try:
        pid = b.srv.proc.pid
        base = rss_anon_kb(pid)
        k = open_upload(b.srv.port, "name=image.img", len(b.data))
        sender = threading.Thread(target=lambda: k.sendall(b.data), daemon=True)
        sender.start()
        peak = base
        while sender.is_alive():
            peak = max(peak, rss_anon_kb(pid))
            time.sleep(0.02)
        job = b.wait_end()
        grew = (peak - base) / 1024
        check(job["phase"] == "done" and sha(b.stick_bytes(len(b.data))) == sha(b.data),
              f"48 MiB through a slow spool: on the stick: {job}")
        check(grew < 16, f"the upload was held back, not queued: the server grew {grew:.1f} MiB "
              f"for a 48 MiB upload")
        k.close()
    finally:
        b.close()


def test_boot():
    """boot=1: written, verified, back at the target, then the virtual ATX power cycle."""
    d = tempfile.mkdtemp(prefix="okvm-smedia-c-")
    conf = os.path.join(d, "okvm.conf")
    with open(conf, "w") as o:
        o.write("[power]\ncycle_off_ms = 200\n")
    os.chmod(conf, 0o600)
    b = Box(extra=("--emu-pins", "usb-serial", "--emu-power", "on"), config=conf)
    try:
        st, j = b.post("name=image.img&boot=1", b.data)
        check(st == 202, f"boot=1: {st} {j}")
        job = b.wait_end()
        check(job["phase"] == "done" and "power cycle" in job["result"], f"boot=1: {job}")
        kinds = [(e["type"], e.get("to", e.get("state"))) for e in read_events(b.events)
                 if e["type"] in ("switch", "power")]
        want = [("switch", "host"), ("switch", "target"), ("power", "off"), ("power", "on")]
        check([k for k in kinds if k in want][-4:] == want, f"events: {kinds}")
    finally:
        b.close()
        shutil.rmtree(d)


def test_login():
    d = tempfile.mkdtemp(prefix="okvm-smedia-l-")
    conf = write_config(os.path.join(d, "okvm.conf"), password="media pw 1")
    b = Box(config=conf)
    try:
        st, j = b.srv.json("GET", "/api/media")
        check(st == 401, f"GET without login: {st} {j}")
        k = open_upload(b.srv.port, "name=image.img", len(b.data), b.data[:65536])
        r = RawReader(k).response(10)
        k.close()
        check(r and r[0] == 401, f"POST without login: {r and r[0]}")
        st, j = b.srv.json("POST", "/api/media?action=cancel")
        check(st == 401, f"cancel without login: {st}")
        check(b.untouched() and b.spool_files() == [], "nothing spooled or written without login")
        b.cookie = login_cookie(b.srv.port, "media pw 1")
        check(b.cookie is not None, "logged in")
        st, j = b.post("name=image.img", b.data)
        job = b.wait_end()
        check(st == 202 and job["phase"] == "done" and
              sha(b.stick_bytes(len(b.data))) == sha(b.data), f"logged in: {job}")
        st, j = b.srv.json("POST", "/api/media?name=x.img", body=b"x",
                           headers={"Cookie": b.cookie, "Origin": "http://evil.example"})
        check(st == 403 and "cross-origin" in j["error"], f"cross-origin POST: {st} {j}")
    finally:
        b.close()
        shutil.rmtree(d)


TESTS = [test_upload_each_kind, test_progress_phases, test_refusals, test_cut_upload, test_cancel,
         test_slow_spool, test_boot, test_login]

if __name__ == "__main__":
    only = sys.argv[1:]
    for t in TESTS:
        if only and t.__name__ not in only:
            continue
        t()
        print("ok", t.__name__)
