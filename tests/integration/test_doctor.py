"""okvm doctor against the virtual unit: every check the report names, with the values the
virtual unit is known to have (version, ACKs, GET_PARA_CFG, registers), --json and text alike,
and exit 1 with the failing check named when the unit cannot be reached."""
# belief: each, both ways (docs/link.md "Which test covers each belief")
import json
import re
import os
import subprocess
import sys

OKVM = os.environ.get("OKVM", "build/okvm")


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print(f"ok: {msg}")


def doctor(*args):
    r = subprocess.run([OKVM, *args, "--json", "doctor"], capture_output=True, text=True,
                       timeout=120)
    try:
        rep = json.loads(r.stdout)
    except ValueError:
        fail(f"doctor --json printed no JSON: {r.stdout!r} {r.stderr!r}")
    return r.returncode, rep, {c["id"]: c for c in rep["checks"]}


rc, rep, c = doctor("-d", "emu")
check(rc == 0 and rep["ok"], f"-d emu: no check fails, exit 0 ({rc})")
want = ["okvm", "udev-rule", "brltty", "modemmanager", "unit", "serial-node", "link", "get-info",
        "get-info-rtt", "get-para-cfg", "hid-acks", "dataflip", "video-chip", "register-echo", "hdmi", "usb-switch"]
check([x["id"] for x in rep["checks"]] == want, f"every check, in order: {list(c)}")
check(all(x["status"] in ("ok", "warn", "fail", "unknown", "skip") for x in rep["checks"]),
      "each check has a known status")
check(c["get-info"]["answered"] and c["get-info"]["version"] == "V1.8" and
      c["get-info"]["target_connected"], "GET_INFO: the virtual CH9329's version, target connected")
rtt = c["get-info-rtt"]
check(rtt["answered"] == rtt["rounds"] == 20 and 0 < rtt["min_ms"] <= rtt["median_ms"]
      <= rtt["p95_ms"] <= rtt["max_ms"] < 500, f"GET_INFO round trips measured: {rtt}")
check(c["hid-acks"]["status"] == "ok" and c["hid-acks"]["sent"] == c["hid-acks"]["acked"] == 4,
      f"the chip acknowledges the 4 empty reports: {c['hid-acks']}")
check(c["get-para-cfg"]["answered"] and c["get-para-cfg"]["usb"] == "1a86:e129",
      f"GET_PARA_CFG: the factory USB ids: {c['get-para-cfg']}")
check(c["video-chip"]["firmware"] == "24081309" and c["hdmi"]["width"] == 1920 and
      c["usb-switch"]["port"] == "host" and c["usb-switch"]["toggle"] == "host",
      "the virtual MS2109: firmware, mode, switch and toggle")
values = [v for x in rep["checks"] for v in x.values() if isinstance(v, str)]
names = [n for n in (os.uname().nodename, os.environ.get("USER"), os.environ.get("HOME")) if n]
check(not any(re.search(r"(?<![\w.-])" + re.escape(n) + r"(?![\w.-])", v)
              for n in names for v in values),
      f"nothing personal in the report (host, user or home names {names})")

r = subprocess.run([OKVM, "-d", "emu", "doctor"], capture_output=True, text=True, timeout=120)
lines = r.stdout.splitlines()
check(r.returncode == 0 and len(lines) == len(want) + 1 and
      all(l.split()[1] == w for l, w in zip(lines, want)) and "No failures" in lines[-1],
      "text: one line per check and a verdict")

check(c["register-echo"]["echoed"] > 0 and c["register-echo"]["not_echoed"] == 0,
      f"the virtual MS2109 echoes every request: {c['register-echo']}")

df = c["dataflip"]
# an estimate from 16 report -> toggle times, on a machine that may be loaded: roughly
check(df["state"] == "toggles" and 7 <= df["target_poll_ms"] <= 13.5,
      f"DATAFLIP toggles and shows the virtual target's 10 ms poll: {df}")
rc, rep, c = doctor("-d", "emu", "--emu-poll-ms", "1")
check(c["dataflip"]["state"] == "toggles" and 0.5 <= c["dataflip"]["target_poll_ms"] <= 3,
      f"a target that polls every 1 ms: {c['dataflip']}")
rc, rep, c = doctor("-d", "emu", "--emu-dataflip", "off")
check(rc == 0 and c["dataflip"]["state"] == "none" and "target_poll_ms" not in c["dataflip"],
      f"no DATAFLIP line (v1.6 board): the report says so, no failure: {c['dataflip']}")

# Each variant of the virtual unit: the report says what that chip does (docs/virtual-unit.md).
rc, rep, c = doctor("-d", "emu", "--emu-chip", "ch32v208")
check(rc == 0 and c["link"]["baud"] == 115200 and c["get-info"]["version_byte"] == 0x82 and
      c["get-info-rtt"]["median_ms"] < c["link"]["open_ms"] + 50,
      f"ch32v208: 115200 baud, version 0x82: {c['link']} {c['get-info']}")
rc, rep, c = doctor("-d", "emu", "--emu-chip", "ch32v208-quiet")
check(rc == 0 and c["get-info"]["status"] == "warn" and not c["get-info"]["answered"] and
      "get-info-rtt" not in c and c["hid-acks"]["acked"] == 4 and
      c["dataflip"]["state"] == "none",
      f"ch32v208-quiet: GET_INFO unanswered (a warning), HID reports still acknowledged: "
      f"{c['get-info']}")
rc, rep, c = doctor("-d", "emu", "--emu-chip", "ch9329f")
check(rc == 0 and c["get-para-cfg"]["answered"] and c["get-info"]["answered"],
      "ch9329f: its longer GET_PARA_CFG block is read")
rc, rep, c = doctor("-d", "emu", "--emu-video-chip", "ms2130s-noecho")
check(rc == 0 and c["video-chip"]["kind"] == "MS2130S" and c["register-echo"]["echoed"] == 0 and
      c["register-echo"]["not_echoed"] > 0 and "usb-switch" not in c,
      f"ms2130s-noecho: no answer echoes, all are read; no USB switch: {c['register-echo']}")

tmp = subprocess.run(["mktemp", "-u"], capture_output=True, text=True).stdout.strip()
rc, rep, c = doctor("--serial", tmp)
check(rc == 1 and not rep["ok"] and c["link"]["status"] == "fail" and
      c["serial-node"]["status"] == "fail", f"a missing tty: exit 1, link and node fail: {rc}")
r = subprocess.run([OKVM, "doctor", "extra"], capture_output=True, text=True, timeout=20)
check(r.returncode == 2 and "unexpected argument 'extra'" in r.stderr, "a stray argument: exit 2")
print("all checks passed")
