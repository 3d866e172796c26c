#!/usr/bin/env python3
"""Virtual media (issue 16, item 3): okvm media write against the virtual unit, a file standing
for the USB stick in the switchable port (-d emu --emu-media FILE). The file's bytes must equal
the image's (SHA-256), whatever the compression; --emu-events must show the port going to the
host, then to the target; every refusal must leave the file untouched; SIGTERM mid-write exits
1 and says the medium is not bootable; --boot power-cycles the target (--emu-pins usb-serial)."""
import gzip
import hashlib
import lzma
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import OKVM, check, fail, read_events, run  # noqa: E402

MB = 1000 * 1000


class Folder:
    """An image (random bytes, so compression cannot fake it), a 16 MiB stick and events."""

    def __init__(self, size=3 * MB + 12345):
        self.tmp = tempfile.TemporaryDirectory(prefix="okvm-media-")
        self.d = self.tmp.name
        self.data = os.urandom(size)
        self.raw = self.path("image.img")
        with open(self.raw, "wb") as f:
            f.write(self.data)
        self.stick = self.path("stick")
        self.fresh_stick()
        self.events = self.path("ev.jsonl")

    def path(self, name):
        return os.path.join(self.d, name)

    def fresh_stick(self, size=16 * 1024 * 1024):
        with open(self.stick, "wb") as f:
            f.truncate(size)

    def stick_bytes(self, n=None):
        with open(self.stick, "rb") as f:
            return f.read(n if n is not None else -1)

    def media(self, *args, extra=(), env=None, timeout=60):
        if os.path.exists(self.events):
            os.unlink(self.events)  # a run that never starts the virtual unit writes none
        return run(["-d", "emu", "--emu-media", self.stick, "--emu-events", self.events]
                   + list(extra) + ["media"] + list(args), env=env, timeout=timeout)

    def switches(self):
        return [e["to"] for e in read_events(self.events) if e["type"] == "switch"]


def sha(b):
    return hashlib.sha256(b).hexdigest()


def compressed(f, kind):
    """The image in kind; the tools' own output where the library's Python twin is missing."""
    out = f.raw + "." + kind
    if kind == "gz":
        with open(out, "wb") as o:
            o.write(gzip.compress(f.data, compresslevel=1))
    elif kind == "xz":
        with open(out, "wb") as o:
            o.write(lzma.compress(f.data, preset=0))
    else:
        if not shutil.which("zstd"):
            fail("the zstd tool is missing (scripts/install-deps installs it)")
        subprocess.run(["zstd", "-q", "-1", "-f", f.raw, "-o", out], check=True)
    return out


def test_write_each_kind():
    f = Folder()
    for kind in ("raw", "gz", "xz", "zst"):
        f.fresh_stick()
        image = f.raw if kind == "raw" else compressed(f, kind)
        r = f.media("write", image)
        check(r.returncode == 0, f"{kind}: {r}")
        got = f.stick_bytes(len(f.data))
        check(sha(got) == sha(f.data), f"{kind}: the stick's bytes are not the image's")
        check(f"verified: sha256 {sha(f.data)}".encode() in r.stdout, f"{kind}: {r.stdout}")
        check(f.stick_bytes()[len(f.data):] == bytes(16 * 1024 * 1024 - len(f.data)),
              f"{kind}: bytes past the image changed")
        check(b"MB/s" in r.stderr and b"write: " in r.stderr and b"verify: " in r.stderr,
              f"{kind}: no progress on stderr: {r.stderr}")
        check(f.switches() == ["host", "target"], f"{kind}: switch events {f.switches()}")


def test_status():
    f = Folder()
    r = f.media("status")
    check(r.returncode == 0, f"status: {r}")
    out = r.stdout.decode()
    for want in (f"medium: {os.path.realpath(f.stick)}", "size: 16777216 bytes", "mounted: no",
                 "usb switch: target"):
        check(want in out, f"status lacks {want!r}: {out}")


def refused(f, r, what, msg):
    check(r.returncode == 1, f"{what}: exit {r.returncode}: {r}")
    check(msg in r.stderr, f"{what}: stderr {r.stderr}")
    check(f.stick_bytes() == bytes(16 * 1024 * 1024), f"{what}: the stick was written")
    if b"does not fit" in msg or b"mounted" in msg or b"not the medium" in msg:
        # refused after the switch: nothing written, so the stick goes back to the target
        check(f.switches() == ["host", "target"], f"{what}: switch events {f.switches()}")
    else:
        check(f.switches() == [], f"{what}: refused before the switch, yet {f.switches()}")


def test_refusals():
    f = Folder()
    big = f.path("big.img")
    with open(big, "wb") as o:
        o.write(os.urandom(17 * 1024 * 1024))
    refused(f, f.media("write", big), "too large", b"does not fit on")
    with open(big, "rb") as i:
        packed = gzip.compress(i.read(), compresslevel=1)
    with open(big + ".gz", "wb") as o:
        o.write(packed)
    refused(f, f.media("write", big + ".gz"), "too large .gz", b"does not fit on")
    with open(f.path("cut.xz"), "wb") as o:
        o.write(lzma.compress(f.data, preset=0)[:100000])
    refused(f, f.media("write", f.path("cut.xz")), "cut .xz", b"not a valid archive")

    mounts = f.path("mounts")
    with open(mounts, "w") as o:
        o.write("proc /proc proc rw 0 0\n")
        o.write(f"{os.path.realpath(f.stick)}1 /media/stick vfat rw 0 0\n")
    refused(f, f.media("write", f.raw, env={"OKVM_MOUNTS": mounts}), "mounted partition",
            b"is mounted")
    check(b"/media/stick" in f.media("status", env={"OKVM_MOUNTS": mounts}).stdout,
          "status does not say where it is mounted")

    other = f.path("other")
    with open(other, "wb") as o:
        o.truncate(16 * 1024 * 1024)
    refused(f, f.media("write", f.raw, "--disk", other), "not the port's",
            b"is not the medium in the virtual unit's switchable port")
    r = f.media("write", f.raw, "--disk", other, "--force")
    check(r.returncode == 0, f"--force: {r}")
    with open(other, "rb") as i:
        check(sha(i.read(len(f.data))) == sha(f.data), "--force did not write the device")
    r = f.media("write", f.raw, "--disk", f.stick)
    check(r.returncode == 0 and sha(f.stick_bytes(len(f.data))) == sha(f.data),
          f"--disk naming the port's medium: {r}")

    for args, msg in ((["write"], b"give write IMAGE"), (["write", f.raw, "--nope"],
                      b"unknown option"), (["write", f.path("missing.img")], b"missing.img")):
        r = f.media(*args)
        check(r.returncode == 2 and msg in r.stderr, f"{args}: {r}")
    r = run(["media", "--emu-media", f.stick, "status"], timeout=30)
    check(r.returncode == 2 and b"-d emu" in r.stderr, f"--emu-media without -d emu: {r}")


def test_sigterm_mid_write():
    f = Folder(size=8 * 1024 * 1024)
    env = dict(os.environ, OKVM_MEDIA_DELAY_MS="150")  # the test hook: a slow stick
    p = subprocess.Popen([OKVM, "-d", "emu", "--emu-media", f.stick, "--emu-events", f.events,
                          "media", "write", f.raw], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    end = time.monotonic() + 20
    while time.monotonic() < end and not f.stick_bytes(1024 * 1024).count(0) < 1024 * 1024:
        time.sleep(0.02)  # the first chunk is on the stick
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    check(p.returncode == 1, f"exit {p.returncode}: {err}")
    check(b"interrupted after" in err and b"the medium is not bootable" in err, f"stderr {err}")
    check(b"verified" not in out, f"stdout {out}")
    check(f.switches() == ["host"], f"the port left the host: {f.switches()}")


def test_boot_power_cycles():
    f = Folder()
    cfg = f.path("okvm")
    os.makedirs(cfg)
    with open(os.path.join(cfg, "okvm.conf"), "w") as o:
        o.write("[power]\ncycle_off_ms = 200\n")
    env = {"XDG_CONFIG_HOME": f.d, "HOME": f.d}
    r = f.media("write", f.raw, "--boot", extra=("--emu-pins", "usb-serial", "--emu-power", "on"),
                env=env, timeout=60)
    check(r.returncode == 0, f"--boot: {r}")
    ev = read_events(f.events)
    kinds = [(e["type"], e.get("to", e.get("state"))) for e in ev
             if e["type"] in ("switch", "power")]
    want = [("switch", "host"), ("switch", "target"), ("power", "off"), ("power", "on")]
    seen = [k for k in kinds if k in want]
    # the power state at start comes first; then the write's switches, then the cycle
    check(seen[-4:] == want, f"events {kinds}")


TESTS = [test_write_each_kind, test_status, test_refusals, test_sigterm_mid_write,
         test_boot_power_cycles]

if __name__ == "__main__":
    only = sys.argv[1:]
    for t in TESTS:
        if only and t.__name__ not in only:
            continue
        t()
        print("ok", t.__name__)
