#!/usr/bin/env python3
"""okvm script: lines run in order against one unit; bad scripts run nothing; a failing line
stops the script and names its line."""
# belief: the defaults: GET_INFO answered, ACKs sent, frames cut by LEN, DATAFLIP wired, 10 ms poll
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from okvmtest import check, keys_left_down, read_events, run, typed_text  # noqa: E402


def script(text):
    fd, path = tempfile.mkstemp(suffix=".okvm")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def events_of(*args, text):
    path = script(text)
    ev = tempfile.mktemp(suffix=".jsonl")
    try:
        r = run(["-d", "emu", "--emu-events", ev, "script", path] + list(args))
        return r, read_events(ev)
    finally:
        os.unlink(path)
        if os.path.exists(ev):
            os.unlink(ev)


def main():
    r, ev = events_of(text='# a comment\n\ntype "Hello, \\"you\\""  # trailing comment\n'
                           "key enter\nsleep 20\ntype 'it''s'\n--layout de type y\n")
    check(r.returncode == 0, r.stderr.decode())
    check(typed_text(ev) == 'Hello, "you"\nitsz', f"got {typed_text(ev)!r}")
    check(not keys_left_down(ev), "keys left down")

    for bad, why in (('type "open\n', "unterminated quote"), ("frobnicate\n", "unknown command"),
                     ("sleep soon\n", "sleep takes"), ("emulate --link /tmp/x\n", "cannot run inside")):
        r, ev = events_of(text='type "never"\n' + bad)
        check(r.returncode == 2, f"{bad!r}: exit {r.returncode}")
        check(why in r.stderr.decode() and "line 2" in r.stderr.decode(), r.stderr.decode())
        check(typed_text(ev) == "", f"{bad!r}: something ran before the check")

    r, ev = events_of(text="type first\nkey ctrl+nosuchkey\ntype never\n")
    check(r.returncode == 2 and "line 2" in r.stderr.decode(), r.stderr.decode())
    check(typed_text(ev) == "first", f"got {typed_text(ev)!r}")
    print("ok")


if __name__ == "__main__":
    main()
