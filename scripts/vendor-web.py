#!/usr/bin/env python3
"""Fetch the browser libraries okvm serve embeds (web/vendor/package.json: xterm.js for the serial
console page) with npm at build time, and copy the files the page loads into the build tree.

Usage: vendor-web.py PACKAGE_DIR OUT_DIR
  PACKAGE_DIR  web/vendor (package.json + package-lock.json: exact versions and hashes)
  OUT_DIR      where xterm.js and xterm.css go (meson's @OUTDIR@); npm's tree is kept in
               OUT_DIR/npm so a rebuild does not fetch again

The page is served from the binary, never from a CDN. Without npm or the registry (an offline
build) the two files become a stand-in that says so, and web/console.js falls back to a plain
text view of the console: the build does not fail for a missing browser library.
"""
import os
import shutil
import subprocess
import sys

FILES = {"xterm.js": "node_modules/@xterm/xterm/lib/xterm.js",
         "xterm.css": "node_modules/@xterm/xterm/css/xterm.css"}

STANDIN_JS = ("/* xterm.js could not be fetched when okvm was built (npm or the registry was "
              "unreachable: scripts/vendor-web.py); the console page shows plain text. */\n"
              "window.okvmXtermMissing = true;\n")


def fetch(pkg, npm_dir):
    os.makedirs(npm_dir, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(os.path.join(pkg, name), os.path.join(npm_dir, name))
    if all(os.path.exists(os.path.join(npm_dir, p)) for p in FILES.values()):
        return True
    npm = shutil.which("npm")
    if not npm:
        print("vendor-web: npm is missing; the console page will show plain text",
              file=sys.stderr)
        return False
    r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=npm_dir,
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout + r.stderr, file=sys.stderr)
        print("vendor-web: npm could not fetch xterm.js (above); the console page will show "
              "plain text (check the network or `npm config get registry`)", file=sys.stderr)
        return False
    return True


def main():
    pkg, out = sys.argv[1], sys.argv[2]
    npm_dir = os.path.join(out, "npm")
    ok = fetch(pkg, npm_dir)
    for name, src in FILES.items():
        dst = os.path.join(out, name)
        if ok:
            shutil.copyfile(os.path.join(npm_dir, src), dst)
        else:
            with open(dst, "w") as f:
                f.write(STANDIN_JS if name.endswith(".js") else "/* no xterm.css */\n")


if __name__ == "__main__":
    main()
