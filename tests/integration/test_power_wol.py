#!/usr/bin/env python3
"""Wake-on-LAN (issue 16): [power] backend = wol, wol_mac, wol_address, and `okvm power on --wol
MAC`. A UDP listener on 127.0.0.1 is the target's NIC: the magic packet must be exactly 6 x 0xFF
then the MAC 16 times (102 bytes, one datagram). Every other action is refused (exit 2) with
nothing sent; a bad MAC or address is one line and exit 2; with the virtual unit's LED lit
`--wol` sends nothing; okvm serve's /api/power sends the same packet and refuses the rest."""
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import check, run  # noqa: E402
from serve_util import Server, passed  # noqa: E402

TMP = tempfile.mkdtemp(prefix="okvm-wol-")
ENV = {"HOME": TMP, "XDG_CONFIG_HOME": TMP}
MAC = "52:54:00:12:34:56"
MAC_BYTES = bytes.fromhex(MAC.replace(":", ""))


def magic(mac):
    return b"\xff" * 6 + mac * 16


class Nic:
    """The target's network card: a UDP socket that keeps every datagram."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def packets(self, wait=0.3):
        out = []
        self.sock.settimeout(wait)
        try:
            while True:
                out.append(self.sock.recv(2048))
                self.sock.settimeout(0.05)
        except socket.timeout:
            pass
        return out


def conf(text, name="okvm.conf"):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def power(*args):
    return run(["power"] + list(args), env=ENV, timeout=30)


def out(r):
    return r.stdout.decode() + r.stderr.decode()


nic = Nic()
WOL = conf(f"[power]\nbackend = wol\nwol_mac = {MAC}\nwol_address = 127.0.0.1:{nic.port}\n")

# on: one datagram, byte for byte
r = power("on", "--config", WOL)
check(r.returncode == 0, f"on: exit {r.returncode}: {out(r)}")
got = nic.packets()
check(got == [magic(MAC_BYTES)], f"the NIC got {[p.hex() for p in got]}")
check(len(got[0]) == 102, "not 102 bytes")
check(f"magic packet for {MAC} sent to 127.0.0.1:{nic.port}" in out(r), f"on said {out(r)!r}")
passed("backend wol: on sends the 102-byte magic packet, byte-exact")

# a MAC with dashes and capitals is the same MAC
nic2 = Nic()
DASH = conf(f"[power]\nbackend = wol\nwol_mac = 52-54-00-AB-CD-EF\n"
            f"wol_address = 127.0.0.1:{nic2.port}\n", "dash.conf")
r = power("on", "--config", DASH)
check(r.returncode == 0 and nic2.packets() == [magic(bytes.fromhex("525400abcdef"))],
      f"dashes: {out(r)}")
passed("wol_mac with dashes and capitals")

# everything else is refused before anything is sent
for act in ("off", "force-off", "reset", "cycle"):
    r = power(act, "--config", WOL)
    check(r.returncode == 2, f"{act}: exit {r.returncode}: {out(r)}")
    check("Wake-on-LAN can only wake the target" in out(r) and act in out(r),
          f"{act} said {out(r)!r}")
check(nic.packets() == [], "a refused action sent a packet")
r = power("status", "--config", WOL)
check(r.returncode == 0 and "power: unknown" in out(r), f"status: {out(r)}")
passed("backend wol: off, force-off, reset, cycle refused (exit 2), nothing sent; status unknown")

# --wol MAC on the command line (no adapter anywhere: the packet alone)
ADDR = conf(f"[power]\nwol_address = 127.0.0.1:{nic.port}\n", "addr.conf")
r = power("on", "--wol", "02:00:00:00:00:07", "--config", ADDR)
check(r.returncode == 0, f"--wol: exit {r.returncode}: {out(r)}")
check(nic.packets() == [magic(bytes.fromhex("020000000007"))], "--wol: wrong packet")
passed("okvm power on --wol MAC sends the packet for that MAC")

# bad input: one line, exit 2, nothing sent
bad = [
    (["on", "--wol", "zz:zz:zz:zz:zz:zz", "--config", ADDR], "is not the target's MAC address"),
    (["on", "--wol", "52:54:00:12:34", "--config", ADDR], "is not the target's MAC address"),
    (["on", "--wol", "01:00:5e:00:00:01", "--config", ADDR], "is not the target's MAC address"),
    (["on", "--wol"], "--wol needs the target's MAC"),
    (["off", "--wol", MAC, "--config", ADDR], "it goes with on only"),
    (["on", "--config", conf("[power]\nbackend = wol\nwol_mac = 52:54:00:12:34:5g\n", "b1")],
     "line 3: wol_mac takes the target's MAC address"),
    (["on", "--config", conf(f"[power]\nwol_mac = {MAC}\nwol_address = lan.example:9\n", "b2")],
     "line 3: wol_address takes a numeric broadcast or host address"),
    (["on", "--config", conf(f"[power]\nwol_address = 127.0.0.1:70000\n", "b3")],
     "line 2: wol_address takes"),
    (["on", "--config", conf("[power]\nbackend = wol\n", "b4")],
     "Wake-on-LAN needs the target's MAC: set wol_mac"),
]
for args, want in bad:
    r = power(*args)
    text = r.stderr.decode()
    check(r.returncode == 2, f"{args}: exit {r.returncode}: {out(r)}")
    check(want in text and len(text.strip().splitlines()) == 1, f"{args}: said {text!r}")
check(nic.packets() == [], "bad input sent a packet")
passed("bad MAC, address or usage: one line, exit 2, nothing sent")

# next to the virtual adapter: the LED is read first (lit: nothing sent)
r = run(["-d", "emu", "--emu-pins", "usb-serial", "--emu-power", "on", "power", "on", "--wol",
         MAC, "--config", ADDR], env=ENV, timeout=30)
check(r.returncode == 0 and "already on" in out(r), f"--wol on a running target: {out(r)}")
check(nic.packets() == [], "--wol on a running target sent a packet")
r = run(["-d", "emu", "--emu-pins", "usb-serial", "--emu-power", "off", "power", "on", "--wol",
         MAC, "--config", ADDR], env=ENV, timeout=30)
check(r.returncode == 0 and "magic packet" in out(r) and "the target is now off" in out(r),
      f"--wol on a stopped target: {out(r)}")
check(nic.packets() == [magic(MAC_BYTES)], "--wol on a stopped target: no packet")
passed("with an LED line --wol reads it first (lit: nothing sent) and says the state after")

# okvm serve: GET/POST /api/power
with Server("--config", WOL, backend=["-d", "emu"], env=ENV) as srv:
    st, j = srv.json("GET", "/api/power")
    check(st == 200 and j["backend"] == "wol" and j["state"] == "unknown" and j["wol"] is True
          and j["led"] is False, f"GET /api/power: {st} {j}")
    st, j = srv.json("POST", "/api/power?action=off")
    check(st == 400 and "Wake-on-LAN can only wake the target" in j["error"], f"off: {st} {j}")
    check(nic.packets() == [], "POST off sent a packet")
    st, j = srv.json("POST", "/api/power?action=on")
    check(st == 202 and j["started"], f"POST on: {st} {j}")
    end = time.monotonic() + 10
    while time.monotonic() < end:
        st, j = srv.json("GET", "/api/power")
        if not j["busy"] and "last" in j:
            break
        time.sleep(0.05)
    check("magic packet" in j.get("last", "") and j["last_failed"] is False, f"after: {j}")
    check(nic.packets() == [magic(MAC_BYTES)], "POST on: no packet or a wrong one")
    st, j = srv.json("GET", "/api/state")
    check(j["power"]["available"] is True, f"state: {j['power']}")
passed("okvm serve: /api/power on sends the packet, off is 400 with nothing sent")
