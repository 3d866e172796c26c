"""Helpers for integration tests: run the real okvm binary against the virtual unit.

The oracle is the virtual target's --emu-events file (ARCHITECTURE 4.2): one JSON object per line
for what the target computer experiences.
"""
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

OKVM = os.environ.get("OKVM", "build/okvm")
SRC = os.environ.get("OKVM_SRC", ".")
SKIP = 77  # meson's exit code for a skipped test


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def run(args, input=None, timeout=120, env=None):
    """Run okvm with args; return CompletedProcess (bytes stdout/stderr)."""
    if isinstance(input, str):
        input = input.encode()
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([OKVM] + list(args), input=input, capture_output=True,
                          timeout=timeout, env=e)


def preload_v4l2(build=None):
    """LD_PRELOAD value for the V4L2 fake; the ASan runtime first when okvm was built with it
    (STYLE.md, "Facts about this toolchain")."""
    build = build or os.environ.get("OKVM_BUILD", "build")
    fake = os.path.join(build, "tests", "fakes", "preload-v4l2.so")
    ldd = subprocess.run(["ldd", OKVM], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        asan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                              text=True).stdout.strip()
        return asan + ":" + fake
    return fake


def jpeg_size(data):
    """Width, height from the first SOF segment."""
    i = 2
    while i + 9 < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None


def has_command(name):
    r = run(["--help"])
    return any(line.split()[:1] == [name] for line in r.stdout.decode().splitlines())


def read_events(path):
    if not os.path.exists(path):
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def typed_text(events):
    return "".join(e["text"] for e in events if e["type"] == "text")


def keys_left_down(events):
    """Usages the target still holds down at the end of the event stream."""
    down = set()
    for e in events:
        if e["type"] == "key":
            if e["down"]:
                down.add(e["usage"])
            else:
                down.discard(e["usage"])
    return down


def dropped(events):
    return [e for e in events if e["type"] == "dropped"]


class Emulator:
    """`okvm emulate --link PATH` in the background; commands reach it with --serial PATH."""

    def __init__(self, *extra, layout=None, poll_ms=None, link=None):
        self.dir = tempfile.mkdtemp(prefix="okvm-it-")
        self.link = link or os.path.join(self.dir, "tty")
        self.events = os.path.join(self.dir, "events.jsonl")
        args = ["emulate", "--link", self.link, "--emu-events", self.events]
        if layout:
            args += ["--emu-layout", layout]
        if poll_ms:
            args += ["--emu-poll-ms", str(poll_ms)]
        args += list(extra)
        self.proc = subprocess.Popen([OKVM] + args, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.link):
            if self.proc.poll() is not None:
                fail("okvm emulate exited: " + self.proc.stderr.read().decode())
            if time.monotonic() > deadline:
                fail("okvm emulate did not create its link")
            time.sleep(0.02)

    def okvm(self, *args, **kw):
        return run(["--serial", self.link] + list(args), **kw)

    def events_list(self):
        return read_events(self.events)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
