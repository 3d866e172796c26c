"""Pacing by the DATAFLIP line (hardware.md 2.11: the CH9329 toggles CTS on every report the
target takes; wired to the CH340's CTS on Mini-KVM v1.9). Beliefs covered, each both ways:
  * DATAFLIP toggles (v1.9, the virtual unit's default for ch9329) / never moves (v1.6, KVM-Go:
    --emu-dataflip off): typing is exact either way, zero reports dropped;
  * the target polls every 1 ms / 8 ms (xHCI rounding) / 10 ms: exact at each;
  * the chip delimits frames by LEN / by 3 ms of idle line (--emu-strict-gap): exact under both;
  * okvm info and okvm doctor show the line and the poll interval, and their probe presses
    nothing on the target.
Timing is measured in bench/typing.py, never asserted here."""
# belief: DATAFLIP wired, both ways; 10 ms poll (also 1 and 8); frames cut by LEN, both ways
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from okvmtest import Emulator, check, dropped, typed_text  # noqa: E402

TEXT = "the quick brown fox jumps over the lazy dog 0123456789 " * 2


def typed(emu, baud):
    r = emu.okvm("-v", "--baud", str(baud), "type", "--rate", "max", "-", input=TEXT,
                 timeout=120)
    ev = emu.events_list()
    return r, typed_text(ev), len(dropped(ev))


for poll in (1, 8, 10):
    for flip in ("on", "off"):
        with Emulator("--baud", "115200", "--emu-poll-ms", str(poll), "--emu-dataflip",
                      flip) as emu:
            r, got, lost = typed(emu, 115200)
            err = r.stderr.decode()
            check(r.returncode == 0 and got == TEXT and lost == 0,
                  f"poll {poll} ms, DATAFLIP {flip}: exact, none dropped ({lost}, "
                  f"{got[:40]!r}): {err}")
            check(("pacing by it" in err) == (flip == "on"),
                  f"poll {poll} ms, DATAFLIP {flip}: the link paces by the line only when it "
                  f"moves: {err}")
            print(f"ok: poll {poll} ms, DATAFLIP {flip}: {len(TEXT)} characters exact")

with Emulator("--emu-strict-gap", "--emu-poll-ms", "1") as emu:
    r, got, lost = typed(emu, 9600)
    check(r.returncode == 0 and got == TEXT and lost == 0 and "pacing by it" in r.stderr.decode(),
          f"9600 baud, strict 3 ms packet gap, DATAFLIP: exact ({lost} dropped, {got[:40]!r})")
    print("ok: --emu-strict-gap with DATAFLIP pacing at 9600: exact")

for poll in (1, 10):
    with Emulator("--baud", "115200", "--emu-poll-ms", str(poll)) as emu:
        r = emu.okvm("--baud", "115200", "info")
        out = r.stdout.decode()
        line = [l for l in out.splitlines() if l.startswith("dataflip:")]
        ev = emu.events_list()
        keys = [e for e in ev if e["type"] in ("key", "text", "dropped")]
        shown = int(line[0].split("every ")[1].split()[0]) if line and "every" in line[0] else -1
        # an estimate from 16 report -> toggle times on a machine that may be loaded: roughly
        check(r.returncode == 0 and "toggles" in line[0] and abs(shown - poll) <= 0.3 * poll + 1.5,
              f"okvm info at a {poll} ms poll: {line}")
        check(not keys, f"okvm info's probe presses nothing on the target: {keys}")
        print(f"ok: okvm info shows DATAFLIP and a {poll} ms poll, pressing nothing")
with Emulator("--emu-dataflip", "off") as emu:
    r = emu.okvm("info")
    check(r.returncode == 0 and "dataflip: none seen" in r.stdout.decode(),
          f"okvm info without the line: {r.stdout.decode()}")
    print("ok: okvm info on a unit without DATAFLIP says so")
print("all checks passed")
