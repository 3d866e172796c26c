#!/usr/bin/env python3
"""okvm layouts: the catalogue as text and JSON, filtering, and usage errors (exit 2)."""
import json
import os
import subprocess
import sys

OKVM = os.environ["OKVM"]


def run(*args):
    return subprocess.run([OKVM, *args], capture_output=True, text=True, timeout=30)


def main():
    r = run("layouts")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    names = [l.split()[0] for l in lines]
    assert len(lines) > 500, len(lines)
    for want in ("us", "de", "fr", "us:dvorak", "us:intl", "ch:fr", "jp"):
        assert want in names, want
    # Variants follow their layout.
    assert names.index("us:dvorak") > names.index("us")
    assert any(l.startswith("de ") and l.rstrip().endswith("German") for l in lines)

    r = run("--json", "layouts", "dvorak")
    assert r.returncode == 0, r.stderr
    items = json.loads(r.stdout)
    assert items and all("dvorak" in (i["name"] + i["description"]).lower() for i in items)
    us = [i for i in items if i["name"] == "us:dvorak"][0]
    assert us == {"name": "us:dvorak", "layout": "us", "variant": "dvorak",
                  "description": "English (Dvorak)"}, us

    r = run("layouts", "--nope")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("okvm: ") and len(r.stderr.splitlines()) == 1, r.stderr

    env = dict(os.environ, OKVM_XKB_RULES="/nonexistent")
    r = subprocess.run([OKVM, "layouts"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 1 and r.stderr.startswith("okvm: "), r
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
