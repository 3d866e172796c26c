#!/usr/bin/env python3
"""The CLI's errors as a user meets them (issue 13, items 14 and 15): text the layout cannot type
is bad input (exit 2, one line naming the character, nothing sent), a -d that is no unit spec is
named as such (exit 2), a closed --emu-events pipe is reported once, `okvm help type` is the
command's own help, `okvm layouts de` puts de first, the README's quick start says how to get
make, and scripts/run-e2e shows why the npm install of playwright-core failed."""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

from okvmtest import OKVM, SRC, check, read_events, run

tmp = tempfile.mkdtemp(prefix="okvm-clierr-")


def stderr_lines(r):
    return r.stderr.decode().strip().splitlines()


def sent_keys(events):
    return [e for e in events if e["type"] in ("key", "text")]


def test_untypeable_is_usage():
    events = os.path.join(tmp, "untypeable.jsonl")
    r = run(["-d", "emu", "--emu-events", events, "type", "Grüße"], timeout=60)
    lines = stderr_lines(r)
    check(r.returncode == 2, f"untypeable text: exit {r.returncode}, want 2: {lines}")
    check(len(lines) == 1, f"untypeable text: one stderr line: {lines}")
    check("U+00FC 'ü' at 2 is not on layout 'us'" in lines[0] and "--skip-unmappable" in
          lines[0] and "--layout" in lines[0], f"untypeable text: names the character: {lines}")
    check(not sent_keys(read_events(events)), "untypeable text: nothing sent")
    print("ok: untypeable text exits 2, names U+00FC at 2, sends nothing")

    r = run(["--layout", "de", "-d", "emu", "type", "--dry-run", "Grüße"], timeout=60)
    check(r.returncode == 0, f"the same text on de: {stderr_lines(r)}")
    r = run(["--layout", "xx-nope", "-d", "emu", "type", "x"], timeout=60)
    check(r.returncode == 2, f"unknown layout: exit {r.returncode}")
    r = run(["--help"])
    out = r.stdout.decode()
    check("cannot type" in out and "2 bad usage" in out, "--help: the exit-status rule")
    print("ok: unknown layout exits 2 too; --help states the rule")


def test_bad_device_spec():
    for spec in ("nosuch", "emu2", "3-", "1-2.x", "-1", ""):
        r = run(["-d", spec, "type", "x"], timeout=30)
        lines = stderr_lines(r)
        check(r.returncode == 2, f"-d {spec!r}: exit {r.returncode}, want 2: {lines}")
        check(lines == [f"okvm: -d {spec}: not a unit spec (emu, a number or port chain from "
                        "okvm list, a tty path, frames:PATH)"], f"-d {spec!r}: {lines}")
    print("ok: -d nosuch (and other shapes) is named as no unit spec, exit 2")
    empty = os.path.join(tmp, "sysfs")
    os.makedirs(os.path.join(empty, "bus/usb/devices"))
    for spec in ("2", "3-3", "1-2.4.1", "/dev/ttyUSB9"):
        r = run(["-d", spec, "type", "x"], timeout=30, env={"OKVM_SYSFS_ROOT": empty})
        lines = stderr_lines(r)
        check(r.returncode == 1 and "not a unit spec" not in r.stderr.decode(),
              f"-d {spec}: a unit spec, looked up: exit {r.returncode} {lines}")
    print("ok: numbers, port chains and paths still go to discovery")


def test_emu_events_closed_pipe():
    p = subprocess.Popen([OKVM, "-d", "emu", "--emu-events", "/dev/stdout", "type",
                          "a closed pipe is reported once " * 3],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = p.stdout.readline()
    p.stdout.close()  # as `| head -1` does
    _, err = p.communicate(timeout=60)
    err = err.decode()
    n = err.count("could not write")
    check(json.loads(first)["type"] == "usb", f"first event line: {first!r}")
    check(n == 1, f"closed events pipe: {n} 'could not write' lines, want 1: {err[:300]}")
    check("Broken pipe" in err, f"the reason is named: {err}")
    check(p.returncode == 0, f"typing still finished: exit {p.returncode}: {err}")
    print("ok: a closed --emu-events pipe is reported once and typing goes on")


def test_help_type():
    a = run(["help", "type"])
    b = run(["type", "--help"])
    out = a.stdout.decode()
    check(a.returncode == 0 and b.returncode == 0, "help type / type --help exit 0")
    check(out == b.stdout.decode(), f"help type == type --help:\n{out}\n--\n{b.stdout.decode()}")
    check(out.startswith("usage: okvm type ") and "Commands:" not in out,
          f"help type is type's own help: {out}")
    for want in ("--dry-run", "--rate", "--skip-unmappable", "--caps-lock", "compensate",
                 "ignore", "refuse"):
        check(want in out, f"type --help names {want}: {out}")
    r = run(["help", "nosuch"])
    check(r.returncode == 2 and len(stderr_lines(r)) == 1, f"help nosuch: {r}")
    print("ok: okvm help type = okvm type --help, with --dry-run and the --caps-lock values")


def test_layouts_exact_first():
    r = run(["layouts", "de"])
    names = [l.split()[0] for l in r.stdout.decode().splitlines()]
    check(r.returncode == 0 and names and names[0] == "de", f"layouts de: first {names[:3]}")
    prefix = [i for i, n in enumerate(names) if n.lower().startswith("de")]
    check(prefix == list(range(len(prefix))), f"layouts de: prefix matches next: {names[:12]}")
    check(len(names) > len(prefix), "layouts de: the other matches still listed")
    r = run(["--json", "layouts", "DE"])
    items = json.loads(r.stdout)
    check(items[0]["name"] == "de", f"layouts --json DE: first {items[0]}")
    print("ok: layouts de: de first, then de:..., then the rest")


def test_readme_quick_start():
    with open(os.path.join(SRC, "README.md"), encoding="utf-8") as f:
        text = f.read()
    qs = text[text.index("## Quick start"):]
    qs = qs[:qs.index("\n## ", 3)]
    first_make = qs.index("make run")
    check("apt-get install make" in qs[:first_make],
          "README quick start: how to get make comes before the first make command")
    print("ok: README quick start says to install make first")


def test_run_e2e_shows_npm_failure():
    tree = os.path.join(tmp, "tree")
    os.makedirs(os.path.join(tree, "scripts"))
    os.makedirs(os.path.join(tree, "tests", "e2e"))
    shutil.copy(os.path.join(SRC, "scripts", "run-e2e"), os.path.join(tree, "scripts"))
    bindir = os.path.join(tmp, "bin")
    os.makedirs(bindir)
    # npm as it behaves when the registry is out of reach: --silent hides even the error.
    fakes = {
        "npm": "#!/bin/sh\ncase \" $* \" in *' --silent '*) exit 1;; esac\n"
               "echo 'npm ERR! code ENOTFOUND registry.npmjs.org (fake)' >&2\nexit 1\n",
        "node": "#!/bin/sh\nexit 0\n",
        "chromium": "#!/bin/sh\nexit 0\n",
    }
    for name, body in fakes.items():
        path = os.path.join(bindir, name)
        with open(path, "w") as f:
            f.write(body)
        os.chmod(path, stat.S_IRWXU)
    env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"],
               OKVM_CHROMIUM=os.path.join(bindir, "chromium"))
    r = subprocess.run(["sh", os.path.join(tree, "scripts", "run-e2e"), "nobuild"],
                       capture_output=True, text=True, env=env, timeout=60)
    check(r.returncode != 0, f"run-e2e with a failing npm: exit {r.returncode}")
    check("ENOTFOUND" in r.stderr, f"run-e2e prints npm's reason: {r.stderr!r}")
    check("run-e2e:" in r.stderr and "playwright-core" in r.stderr,
          f"run-e2e adds a one-line hint: {r.stderr!r}")
    print("ok: run-e2e shows why the npm install failed")


def main():
    try:
        test_untypeable_is_usage()
        test_bad_device_spec()
        test_emu_events_closed_pipe()
        test_help_type()
        test_layouts_exact_first()
        test_readme_quick_start()
        test_run_e2e_shows_npm_failure()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
