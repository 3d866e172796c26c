#!/usr/bin/env python3
"""Variables from OCR in okvm's Script Tool extensions (docs/automation.md): ReadText reads a
region of the screen into a name, %name% in Type, WaitText, AssertText and Print stands for that
text when the statement runs, and Print writes a line to standard output. The virtual target's
--emu-events is the oracle for what was typed; bad uses are refused with FILE:LINE:COL before
anything is sent."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from okvmtest import check, read_events, run, typed_text  # noqa: E402

TMP = tempfile.mkdtemp(prefix="okvm-vars-")
LINE1 = "40, 78, 600, 26"  # the virtual terminal's first line at 1080p (frame pixels)


def ahk(text, *args):
    path = os.path.join(TMP, "v.ahk")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    ev = os.path.join(TMP, "events.jsonl")
    if os.path.exists(ev):
        os.unlink(ev)
    r = run(["-d", "emu", "--emu-events", ev, "script"] + list(args) + [path], timeout=180)
    return r, read_events(ev)


r, ev = ahk(f'Type "code 4711`n"\nSleep 500\nReadText code, {LINE1}\n'
            'Print "read: %code%"\nType "again %code% %other%`n"\n'
            'AssertText "again %code%"\nWaitText "%code%", 5\n')
out = r.stdout.decode()
check(r.returncode == 0, f"the script runs (exit {r.returncode}: {r.stderr.decode().strip()})")
check(out == "read: code 4711\n", f"Print shows what ReadText read: {out!r}")
check(typed_text(ev) == "code 4711\nagain code 4711 %other%\n",
      f"%code% is typed as read; an unknown %other% stays as it is: {typed_text(ev)!r}")

r, ev = ahk(f'ReadText code, {LINE1}\nPrint "%code%"\n', "--dry-run")
check(r.returncode == 0 and "read text in 40,78 600x26 into code" in r.stdout.decode(),
      f"--dry-run names the read: {r.stdout.decode()!r}")

for text, col, word in (
        ("ReadText 9lives\n", 10, "variable name"),
        ("ReadText a-b\n", 10, "variable name"),
        ("ReadText a, 1, 2\n", 13, "ReadText name"),
        ('ReadText "a"\n', 10, "variable name"),
        ("Print\n", 1, "Print"),
):
    r, ev = ahk(text)
    err = r.stderr.decode()
    check(r.returncode == 2 and f"v.ahk:1:{col}:" in err and word in err and not ev,
          f"{text.strip()!r} is refused at 1:{col} before anything is sent: {err.strip()}")
