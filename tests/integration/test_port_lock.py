"""One program drives a unit at a time: a second okvm on the port `okvm serve` holds (as root
too, which TIOCEXCL does not stop) fails with one line naming the port and sends nothing; once
the server is gone the port works again."""
# belief: GET_INFO answered (the server's open)
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from okvmtest import OKVM, Emulator, check, typed_text  # noqa: E402
from serve_util import FRAMES, free_port  # noqa: E402

with Emulator() as emu:
    port = free_port()
    srv = subprocess.Popen([OKVM, "serve", "--serial", emu.link, "--listen", f"127.0.0.1:{port}",
                            "--video", f"frames:{FRAMES}@5"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    line = srv.stdout.readline().decode()
    check("serving on" in line, f"okvm serve starts on the virtual unit: {line!r}")
    r = emu.okvm("type", "x")
    err = r.stderr.decode()
    check(r.returncode == 1 and err.count("\n") == 1 and "busy" in err and emu.link in err,
          f"a second okvm on the port: exit 1, one line naming it: {r.returncode} {err!r}")
    time.sleep(0.3)
    check("x" not in typed_text(emu.events_list()), "and nothing reached the target")
    print("ok: a second okvm is kept off the port okvm serve holds")
    srv.terminate()
    srv.wait(20)
    r = emu.okvm("type", "y")
    time.sleep(0.3)
    check(r.returncode == 0 and typed_text(emu.events_list()).endswith("y"),
          f"once the server is gone the port works: {r.stderr.decode()}")
    print("ok: the port is free again after the server exits")
print("all checks passed")
