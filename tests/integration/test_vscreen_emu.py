#!/usr/bin/env python3
"""The virtual unit's screen through the real binary: type hello, take a screenshot, the image is
1920x1080 and differs from the one before; move the mouse, the picture changes again. Then, on a
German target: type a euro sign, and its cell shows the glyph, not the replacement box; click,
and a marker appears around the pointer and is gone a second later; Ctrl+Alt+Delete, Volume up
and the USB switch each leave their overlay.

`okvm script` runs the lines against one in-process virtual unit, so its screen lives from the
first screenshot to the last. Pictures are decoded by ffmpeg (a decoder okvm did not write)."""
import os
import shutil
import subprocess
import sys
import tempfile

OKVM = os.environ.get("OKVM", "build/okvm")
W, H = 1920, 1080
# The screen's geometry at 1920x1080 (docs/virtual-unit.md, "The screen"): the terminal's first
# character cell, 10 x 20 pixels; a click is a ring of radius 14 around the pointer's tip.
TEXT_X, TEXT_Y, CELL_W, CELL_H = 44, 82, 10, 20
CLICK_R = 14


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from okvmtest import jpeg_size  # noqa: E402

failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + (": " + str(detail) if not cond else ""))
    if not cond:
        failures.append(name)


def script(tmp, lines, *globals_):
    path = os.path.join(tmp, "s.okvm")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return subprocess.run([OKVM, "-d", "emu", *globals_, "script", path], capture_output=True,
                          text=True, timeout=60)


def rgb(path):
    p = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt",
                        "rgb24", "-"], capture_output=True, check=True)
    assert len(p.stdout) == W * H * 3, "ffmpeg gave %d bytes" % len(p.stdout)
    return p.stdout


def pixel(pic, x, y):
    o = (y * W + x) * 3
    return tuple(pic[o:o + 3])


def max_luma(pic, x, y, w, h):
    best = 0
    for j in range(y, y + h):
        for i in range(x, x + w):
            r, g, b = pixel(pic, i, j)
            best = max(best, (r * 3 + g * 6 + b) // 10)
    return best


def test_changes(tmp):
    shots = [os.path.join(tmp, n) for n in ("before.jpg", "after.jpg", "moved.jpg")]
    p = script(tmp, ["screenshot -o %s" % shots[0], "type hello", "screenshot -o %s" % shots[1],
                     "mouse move 0.9 0.9", "screenshot -o %s" % shots[2]])
    check("okvm -d emu script", p.returncode == 0, (p.returncode, p.stderr))
    if p.returncode:
        return
    data = [open(s, "rb").read() for s in shots]
    check("screenshots are 1920x1080", all(jpeg_size(d) == (W, H) for d in data))
    check("typing and moving change the picture", data[0] != data[1] and data[1] != data[2])


def test_euro_and_click(tmp):
    euro, click, later = (os.path.join(tmp, n) for n in ("euro.jpg", "click.jpg", "later.jpg"))
    # chip units 1024, 2048 are the pointer's pixel (479, 539) at 1920x1080
    p = script(tmp, ["type \u20ac", "sleep 100", "screenshot -o %s" % euro,
                     "mouse move --raw 1024 2048", "mouse click left", "sleep 100",
                     "screenshot -o %s" % click, "sleep 1500", "screenshot -o %s" % later],
               "--layout", "de")
    check("okvm -d emu --layout de script", p.returncode == 0, (p.returncode, p.stderr))
    if p.returncode:
        return
    pic = rgb(euro)
    # the replacement box is a hollow rectangle: dark inside; the euro sign has strokes there
    ink = max_luma(pic, TEXT_X, TEXT_Y, CELL_W, CELL_H)
    inside = max_luma(pic, TEXT_X + 2, TEXT_Y + 6, CELL_W - 4, 7)
    check("the euro sign's cell has ink", ink > 120, ink)
    check("the euro sign is drawn, not the replacement box (ink inside the box's outline)",
          inside > 120, inside)
    px, py = 479, 539
    c, l = rgb(click), rgb(later)
    r, g, b = pixel(c, px - CLICK_R, py)
    check("a left click leaves an amber ring around the pointer", r > 190 and g > 140 and b < 130
          and r - b > 100, (r, g, b))
    lum = max_luma(c, px - CLICK_R - 4, py - 20, CLICK_R + 2, 40)
    check("the ring is bright left of the pointer", lum > 150, lum)
    lum = max_luma(l, px - CLICK_R - 4, py - 20, CLICK_R + 2, 40)
    check("a second and a half later the ring is gone", lum < 60, lum)


def test_overlays(tmp):
    shots = [os.path.join(tmp, n) for n in ("none.jpg", "combo.jpg", "volume.jpg", "usb.jpg")]
    p = script(tmp, ["screenshot -o %s" % shots[0], "key ctrl+alt+delete", "sleep 100",
                     "screenshot -o %s" % shots[1], "sleep 1500", "key volume-up", "sleep 100",
                     "screenshot -o %s" % shots[2], "sleep 1500", "switch target --no-pulse",
                     "sleep 100", "screenshot -o %s" % shots[3]])
    check("okvm -d emu script: key, switch", p.returncode == 0, (p.returncode, p.stderr))
    if p.returncode:
        return
    none, combo, vol, usb = (rgb(s) for s in shots)
    # "last combo": 15 characters at twice the font's size, centred, at the bottom
    box = (W - (15 * 20 + 48)) // 2, 1080 - 40 - 40 - 76
    lum = [max_luma(pic, box[0] + 20, box[1] + 26, 15 * 20, 44) for pic in (none, combo, vol)]
    check("Ctrl+Alt+Delete shows a last-combo box, gone by the next picture",
          lum[0] < 60 and lum[1] > 200 and lum[2] < 60, lum)
    # the media OSD: 360 x 100 in the middle at two thirds of the height; the level bar in it
    ox, oy = (W - 360) // 2, H * 2 // 3 - 50
    lum = [max_luma(pic, ox + 34, oy + 76, 20, 2) for pic in (none, vol, usb)]
    check("Volume up shows the OSD with its level bar", lum[0] < 60 and lum[1] > 200
          and lum[2] < 60, lum)
    # the USB note: top right, with a blue stripe
    r, g, b = pixel(usb, W - 12 - 380 + 3, 32 + 10 + 28)
    check("the USB switch shows a notification", b > 200 and b - r > 100, (r, g, b))
    lum = max_luma(usb, W - 12 - 380 + 20, 32 + 10 + 8, 200, 18)
    check("the notification has text", lum > 200, lum)


def main():
    tmp = tempfile.mkdtemp(prefix="okvm-vscreen-")
    try:
        test_changes(tmp)
        test_euro_and_click(tmp)
        test_overlays(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("FAIL: %s" % ", ".join(failures) if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
