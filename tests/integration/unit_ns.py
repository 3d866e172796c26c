"""Helpers for the `okvm info` / `okvm switch` tests: run okvm against a recorded sysfs tree
(OKVM_SYSFS_ROOT) with the hidraw fake (tests/fakes/preload-hidraw.c) for the MS2109, and,
where the machine allows it, give the discovered unit a serial port that answers: in a private
mount namespace (unshare -m, root only) /dev is a tmpfs holding the few real nodes okvm needs
plus the tree's tty name, which `okvm emulate --link` points at its pty. Nothing outside the
namespace changes."""
import os
import select
import subprocess
import tempfile
import time

OKVM = os.environ["OKVM"]
SRC = os.environ["OKVM_SRC"]
BUILD = os.environ["OKVM_BUILD"]
FIX = os.path.join(SRC, "tests/fixtures/sysfs")
FAKE = os.path.join(BUILD, "tests/fakes/libpreload-hidraw.so")
NS_FLAG = "--in-namespace"


def preload():
    """The fake, after the ASan runtime when the binary is sanitized (STYLE: preload facts)."""
    libs = [FAKE]
    out = subprocess.run(["ldd", OKVM], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "libasan" in line and "=>" in line:
            libs.insert(0, line.split("=>")[1].split()[0])
    return ":".join(libs)


def env_for(fixture, hid):
    e = dict(os.environ)
    e["OKVM_SYSFS_ROOT"] = os.path.join(FIX, fixture)
    e["OKVM_FAKE_HIDRAW_DIR"] = hid
    e["LD_PRELOAD"] = preload()
    e["ASAN_OPTIONS"] = "detect_leaks=1"
    return e


def run(fixture, hid, *args):
    p = subprocess.run([OKVM, *args], env=env_for(fixture, hid), capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


def namespace_possible():
    try:
        return subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_in_namespace(script):
    """Run `script NS_FLAG` in a private mount namespace; its exit status."""
    return subprocess.run(["unshare", "-m", "--propagation", "private", "python3", script,
                           NS_FLAG], timeout=300).returncode


def fake_dev():
    """Inside the namespace: /dev becomes a tmpfs with null, zero, urandom, ptmx and pts."""
    old = tempfile.mkdtemp(prefix="okvm-olddev-")
    subprocess.run(["mount", "--rbind", "/dev", old], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/dev"], check=True)
    os.symlink("pts/ptmx", "/dev/ptmx")  # the devpts instance's own multiplexer
    for name in ("null", "zero", "urandom", "random", "pts"):
        src = os.path.join(old, name)
        dst = os.path.join("/dev", name)
        if os.path.isdir(src):
            os.mkdir(dst)
        else:
            open(dst, "w").close()
        subprocess.run(["mount", "--rbind", src, dst], check=True)


class Emulator:
    """`okvm emulate` with its link at the recorded tree's tty node (e.g. /dev/ttyUSB1)."""

    def __init__(self, node, events, *args):
        self.events = events
        self.p = subprocess.Popen([OKVM, "emulate", "--link", node, "--emu-events", events,
                                   *args], stdout=subprocess.PIPE, text=True,
                                  env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
        if not select.select([self.p.stdout], [], [], 10)[0]:
            raise RuntimeError("okvm emulate did not say where it is")
        self.p.stdout.readline()

    def event_lines(self, wait_for=None, timeout=5):
        end = time.monotonic() + timeout
        while True:
            try:
                with open(self.events) as f:
                    lines = f.read().splitlines()
            except FileNotFoundError:
                lines = []
            if wait_for is None or any(wait_for in x for x in lines) or \
                    time.monotonic() > end:
                return lines
            time.sleep(0.05)

    def close(self):
        self.p.terminate()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
