#!/usr/bin/env python3
"""WaitSerial and SendSerial in okvm script FILE.ahk (issue 16): the target's serial console
through the virtual unit's USB-serial adapter on the pins (-d emu --emu-pins usb-serial), whose
target boots to a login prompt that echoes what is typed. The --emu-events console events
(dir "in") are the oracle for the bytes the target received; a WaitSerial timeout exits 3; a
unit without a console refuses the script, FILE:LINE:COL, before anything is sent."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import OKVM, check, read_events, run, typed_text  # noqa: E402,F401

TMP = tempfile.mkdtemp(prefix="okvm-ahk-serial-")
ENV = {"XDG_CONFIG_HOME": TMP, "HOME": TMP}  # no user's okvm.conf


def ahk(text, *args, timeout=60):
    path = os.path.join(TMP, "t.ahk")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    ev = os.path.join(TMP, "events.jsonl")
    if os.path.exists(ev):
        os.unlink(ev)
    r = run(["-d", "emu", "--emu-events", ev] + list(args) + ["script", path], timeout=timeout,
            env=ENV)
    return r, read_events(ev) if os.path.exists(ev) else [], path


def console(evs, d):
    return "".join(e["text"] for e in evs if e["type"] == "console" and e["dir"] == d)


PINS = ("--emu-pins", "usb-serial", "--emu-power", "off")


def test_login_prompt():
    r, evs, _ = ahk('Power on\nWaitSerial "login:", 20\nSendSerial "root`n"\n'
                    'WaitSerial "Password:", 5\nPrint "at the password"\n', *PINS)
    check(r.returncode == 0, f"exit {r.returncode}: {r.stderr.decode()}")
    check(b"at the password\n" in r.stdout, f"stdout {r.stdout!r}")
    check(console(evs, "in") == "root\r", f"the target received {console(evs, 'in')!r}")
    out = console(evs, "out")
    check("okvm-target login: root\r\nPassword: " in out, f"the console printed {out!r}")
    check([(e["switch"], e["closed"]) for e in evs if e["type"] == "atx"] ==
          [("power", True), ("power", False)], f"presses {evs}")


def test_escapes():
    """Send's escapes: `n and `r are Enter (CR), `t a tab, `s a space, `` a backtick."""
    r, evs, _ = ahk('Power on\nWaitSerial "login:", 20\nSendSerial "a`tb`sc``d`r"\n'
                    'WaitSerial "Password:", 5\n', *PINS)
    check(r.returncode == 0, f"exit {r.returncode}: {r.stderr.decode()}")
    check(console(evs, "in") == "a\tb c`d\r", f"the target received {console(evs, 'in')!r}")


def test_wait_matches_once():
    """A second WaitSerial looks after the first match: one prompt, two waits = a timeout."""
    r, evs, path = ahk('Power on\nWaitSerial "login:", 20\nWaitSerial "login:", 1\n', *PINS)
    check(r.returncode == 3, f"exit {r.returncode}: {r.stderr.decode()}")
    err = r.stderr.decode()
    check(f"{path}:3:1: WaitSerial \"login:\" (1 s): timed out" in err, f"stderr {err!r}")


def test_timeout_exits_3():
    r, evs, path = ahk('WaitSerial "login:", 0.5\nSend a\n', *PINS)
    check(r.returncode == 3, f"exit {r.returncode}: {r.stderr.decode()}")
    check(f"{path}:1:1: WaitSerial" in r.stderr.decode(), f"stderr {r.stderr!r}")
    check(typed_text(evs) == "", "the statement after the timeout ran")
    check(console(evs, "out") == "", "a target that is off printed something")


def test_no_console_refused():
    """Without the adapter: refused at the statement, nothing sent (not even the Send before)."""
    for text, col in (('Send a\nSendSerial "root`n"\n', 1), ('Send a\n  WaitSerial "x", 1\n', 3)):
        r, evs, path = ahk(text)
        check(r.returncode == 1, f"{text!r}: exit {r.returncode}: {r.stderr.decode()}")
        err = r.stderr.decode()
        check(err.startswith(f"{path}:2:{col}: ") and "serial console" in err,
              f"{text!r}: stderr {err!r}")
        check(typed_text(evs) == "", f"{text!r}: typed {typed_text(evs)!r}")


def test_bad_usage():
    cases = (('WaitSerial "login:"\n', 1, "expected WaitSerial \"text\", timeout_s"),
             ('WaitSerial "", 5\n', 12, "expected some text"),
             ('WaitSerial login, 5\n', 12, "in double quotes"),
             ('WaitSerial "x", -1\n', 17, "expected a timeout in seconds"),
             ('SendSerial\n', 1, "expected SendSerial \"text\""),
             ('SendSerial "a\x01b"\n', 14, "control character 0x01"),
             ('SendSerial "a", "b"\n', 17, "too many arguments"))
    for text, col, msg in cases:
        r, evs, path = ahk("Send a\n" + text, *PINS)
        err = r.stderr.decode()
        check(r.returncode == 2, f"{text!r}: exit {r.returncode}: {err}")
        check(err.startswith(f"{path}:2:{col}: ") and msg in err, f"{text!r}: {err!r}")
        check(typed_text(evs) == "" and console(evs, "in") == "", f"{text!r}: sent {evs}")


def test_dry_run():
    path = os.path.join(TMP, "plan.ahk")
    with open(path, "w", encoding="utf-8") as f:
        f.write('WaitSerial "login:", 5\nSendSerial "root`n"\n')
    r = run(["script", "--dry-run", path], env=ENV)
    check(r.returncode == 0, f"exit {r.returncode}: {r.stderr.decode()}")
    check(r.stdout == b'1:1: wait for "login:" on the serial console (5 s)\n'
          b'2:1: send "root`n" to the serial console\n', f"plan {r.stdout!r}")


if __name__ == "__main__":
    for t in (test_login_prompt, test_escapes, test_wait_matches_once, test_timeout_exits_3,
              test_no_console_refused, test_bad_usage, test_dry_run):
        t()
        print(f"ok {t.__name__}")
