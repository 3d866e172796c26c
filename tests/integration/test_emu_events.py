#!/usr/bin/env python3
"""--emu-events FILE and symlinks: another user's symlink at FILE is not followed (its target
is untouched, one stderr line, exit 1), while /dev/stdout (a pipe or a redirected file), a FIFO,
the user's own symlink and a plain file (truncated) keep working. The other user's link needs
root to make (chown); without root that part is skipped."""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

OKVM = os.environ.get("OKVM", "build/okvm")
tmp = tempfile.mkdtemp(prefix="okvm-ev-")
os.chmod(tmp, 0o777)  # world-writable without the sticky bit: the kernel's protected_symlinks
#                       only covers sticky folders, so here only okvm's own rule stops a link


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok:", msg)


def type_hi(events, stdout=subprocess.PIPE):
    return subprocess.run([OKVM, "-d", "emu", "--emu-events", events, "type", "hi"],
                          stdout=stdout, stderr=subprocess.PIPE, timeout=60)


def typed(text):
    return "".join(json.loads(l).get("text", "") for l in text.splitlines() if l.strip())


victim = os.path.join(tmp, "victim.txt")
if os.geteuid() == 0:
    with open(victim, "w") as f:
        f.write("precious\n")
    planted = os.path.join(tmp, "planted.jsonl")
    os.symlink(victim, planted)
    os.lchown(planted, 65534, 65534)
    r = type_hi(planted)
    err = r.stderr.decode().strip().splitlines()
    check(r.returncode == 1 and len(err) == 1 and planted in err[0] and "symlink" in err[0],
          f"-d emu: another user's symlink at --emu-events is refused in one line: {err}")
    check(open(victim).read() == "precious\n", "its target is untouched")
    link = os.path.join(tmp, "ttyKVM")
    r = subprocess.run([OKVM, "emulate", "--link", link, "--emu-events", planted],
                       capture_output=True, timeout=60)
    err = r.stderr.decode().strip().splitlines()
    check(r.returncode == 1 and len(err) == 1 and planted in err[0],
          f"okvm emulate: the same, one line: {err}")
    check(open(victim).read() == "precious\n" and not os.path.lexists(link),
          "its target is untouched and no link is left")
    dangling = os.path.join(tmp, "dangling.jsonl")
    os.symlink(os.path.join(tmp, "created-by-link"), dangling)
    os.lchown(dangling, 65534, 65534)
    r = type_hi(dangling)
    check(r.returncode == 1 and not os.path.exists(os.path.join(tmp, "created-by-link")),
          "another user's dangling symlink creates no file")
else:
    print("ok: skipped the other user's symlink (needs root to chown a link)")

r = type_hi("/dev/stdout")
check(r.returncode == 0 and typed(r.stdout.decode()) == "hi",
      f"--emu-events /dev/stdout into a pipe works: {r.stderr.decode()}")
out = os.path.join(tmp, "stdout.jsonl")
with open(out, "w") as f:
    r = type_hi("/dev/stdout", stdout=f)
check(r.returncode == 0 and typed(open(out).read()) == "hi",
      f"--emu-events /dev/stdout redirected to a file works: {r.stderr.decode()}")

own = os.path.join(tmp, "own.jsonl")
real = os.path.join(tmp, "real.jsonl")
with open(real, "w") as f:
    f.write("old line\n" * 100)
os.symlink(real, own)
r = type_hi(own)
check(r.returncode == 0 and typed(open(real).read()) == "hi" and "old" not in open(real).read(),
      f"the user's own symlink is followed, its target truncated and written: {r.stderr}")
with open(real, "w") as f:
    f.write("old line\n" * 100)
r = type_hi(real)
check(r.returncode == 0 and open(real).read().startswith("{"), "a plain file is truncated")

fifo = os.path.join(tmp, "events.fifo")
os.mkfifo(fifo)
got = []
reader = threading.Thread(target=lambda: got.append(open(fifo).read()), daemon=True)
reader.start()
r = type_hi(fifo)
reader.join(30)
check(r.returncode == 0 and got and typed(got[0]) == "hi", "a FIFO works")
fifo_link = os.path.join(tmp, "fifo-link")
os.symlink(fifo, fifo_link)
got.clear()
reader = threading.Thread(target=lambda: got.append(open(fifo).read()), daemon=True)
reader.start()
r = type_hi(fifo_link)
reader.join(30)
check(r.returncode == 0 and got and typed(got[0]) == "hi", "the user's own link to a FIFO works")
print("ok: all")
