#!/usr/bin/env python3
"""okvm media write's speed to a file standing for the USB stick (-d emu --emu-media FILE): a
random-bytes image (incompressible, the worst case for the decoders) and a half-zero one (as a
disk image with free space is), raw and as .gz, .xz and .zst. For each: the time of the whole
command (check pass for compressed images, write + fsync, read-back verify) and the write phase
alone as okvm prints it. The file lives in $TMPDIR (tmpfs or disk: say which with the figures).

--web: the same images through okvm serve's web route instead (docs/api.md, "Virtual media"):
one `okvm serve -d emu --emu-media FILE` (its spool folder in the same $TMPDIR); each image is
POSTed to /api/media as a streamed body (http.client, 1 MiB pieces, never all in memory), then
GET /api/media is polled every 20 ms until the job ends. For each: upload MB/s (the packed bytes
over the time until the 202 answer: sent and spooled), the check pass, the write phase's MB/s as
the server measured it (write + fsync), the read-back verify, and the total from the first byte
sent to "done".
Prints figures; asserts nothing. Env: OKVM (binary), SIZE_MB (64)."""
import gzip
import http.client
import json
import lzma
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

OKVM = os.environ.get("OKVM", "build/okvm")
SIZE = int(os.environ.get("SIZE_MB", "64")) * 1000 * 1000


def images(d):
    rnd = os.urandom(SIZE)
    half = os.urandom(SIZE // 2) + bytes(SIZE - SIZE // 2)
    for name, data in (("random", rnd), ("half-zero", half)):
        raw = os.path.join(d, name + ".img")
        with open(raw, "wb") as f:
            f.write(data)
        out = {"raw": raw}
        with open(raw + ".gz", "wb") as f:
            f.write(gzip.compress(data, compresslevel=6))
        out["gz"] = raw + ".gz"
        with open(raw + ".xz", "wb") as f:
            f.write(lzma.compress(data, preset=6))
        out["xz"] = raw + ".xz"
        if shutil.which("zstd"):
            subprocess.run(["zstd", "-q", "-3", "-f", raw, "-o", raw + ".zst"], check=True)
            out["zst"] = raw + ".zst"
        yield name, out


def free_port():
    k = socket.socket()
    k.bind(("127.0.0.1", 0))
    port = k.getsockname()[1]
    k.close()
    return port


def api(port, method, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path)
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    return r.status, body


def upload(port, path):
    """POST the file as the body in 1 MiB pieces; (status, answer) once the server has it."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.putrequest("POST", "/api/media?name=" + os.path.basename(path))
    c.putheader("Content-Type", "application/octet-stream")
    c.putheader("Content-Length", str(os.path.getsize(path)))
    c.endheaders()
    with open(path, "rb") as f:
        while True:
            b = f.read(1024 * 1024)
            if not b:
                break
            c.send(b)
    r = c.getresponse()
    body = json.loads(r.read())
    c.close()
    return r.status, body


def web_one(port, path):
    """One image through /api/media: a dict of the figures, or the error. The phases' times come
    from the polls (every 20 ms): the check from the 202 to the first later phase, the verify
    from the write's last byte (shown after its fsync) to the switch back."""
    t0 = time.monotonic()
    st, j = upload(port, path)
    t_up = time.monotonic()
    if st != 202:
        return {"error": f"HTTP {st}: {j.get('error')}"}
    polls = []  # (time, phase, done, total)
    while True:
        _, g = api(port, "GET", "/api/media")
        job = g["job"]
        now = time.monotonic()
        polls.append((now, job["phase"], job["done"], job["total"]))
        if job["phase"] in ("done", "failed") and not g["busy"]:
            break
        if now - t0 > 600:
            return {"error": "the job did not end in 600 s"}
        time.sleep(0.02)
    if job["phase"] != "done":
        return {"error": job.get("error")}
    m = re.search(r"\(([0-9.]+) MB/s\)", job["result"])
    first = next(t for t, p, _, _ in polls if p not in ("upload", "check"))
    w_end = next((t for t, p, d, n in polls if (p == "write" and n and d >= n) or p == "verify"),
                 None)
    v_end = next((t for t, p, _, _ in polls if w_end and t > w_end and
                  p in ("switch", "boot", "done")), None)
    return {"upload": os.path.getsize(path) / 1e6 / (t_up - t0), "check": first - t_up,
            "write": float(m.group(1)) if m else 0.0,
            "verify": v_end - w_end if w_end and v_end else float("nan"),
            "total": polls[-1][0] - t0}


def web(d):
    stick = os.path.join(d, "stick")
    with open(stick, "wb") as f:
        f.truncate(SIZE + 1024 * 1024)
    port = free_port()
    env = dict(os.environ, TMPDIR=d, HOME=d, XDG_CONFIG_HOME=os.path.join(d, "xdg"))
    srv = subprocess.Popen([OKVM, "serve", "--listen", f"127.0.0.1:{port}", "-d", "emu",
                            "--emu-media", stick, "--emu-video", "640x360@10"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        if b"serving on" not in srv.stdout.readline():
            sys.exit("bench/media.py: okvm serve did not start")
        print(f"okvm serve /api/media, {SIZE / 1e6:.0f} MB image, stick and spool in {d}")
        print(f"{'image':<10} {'kind':<4} {'packed MB':>9} {'upload MB/s':>11} {'check s':>7} "
              f"{'write MB/s':>10} {'verify s':>8} {'total s':>7} {'overall MB/s':>12}")
        for name, paths in images(d):
            for kind, path in paths.items():
                with open(stick, "r+b") as f:
                    f.truncate(0)
                    f.truncate(SIZE + 1024 * 1024)
                r = web_one(port, path)
                if "error" in r:
                    print(f"{name} {kind}: failed: {r['error']}")
                    continue
                print(f"{name:<10} {kind:<4} {os.path.getsize(path) / 1e6:9.1f} "
                      f"{r['upload']:11.1f} {r['check']:7.2f} {r['write']:10.1f} "
                      f"{r['verify']:8.2f} {r['total']:7.2f} {SIZE / 1e6 / r['total']:12.1f}")
    finally:
        srv.terminate()
        srv.wait()


def main():
    with tempfile.TemporaryDirectory(prefix="okvm-bench-media-") as d:
        if "--web" in sys.argv[1:]:
            return web(d)
        stick = os.path.join(d, "stick")
        print(f"okvm media write, {SIZE / 1e6:.0f} MB image to a file in {d}")
        print(f"{'image':<10} {'kind':<4} {'packed MB':>9} {'write MB/s':>10} {'total s':>8} "
              f"{'overall MB/s':>12}")
        for name, paths in images(d):
            for kind, path in paths.items():
                with open(stick, "wb") as f:
                    f.truncate(SIZE + 1024 * 1024)
                t0 = time.monotonic()
                r = subprocess.run([OKVM, "-d", "emu", "--emu-media", stick, "media", "write",
                                    path], capture_output=True)
                total = time.monotonic() - t0
                if r.returncode:
                    print(f"{name} {kind}: failed: {r.stderr.decode().strip()}")
                    continue
                m = re.search(rb"\(([0-9.]+) MB/s\)", r.stdout)
                print(f"{name:<10} {kind:<4} {os.path.getsize(path) / 1e6:9.1f} "
                      f"{float(m.group(1)) if m else 0:10.1f} {total:8.2f} "
                      f"{SIZE / 1e6 / total:12.1f}")


if __name__ == "__main__":
    main()
