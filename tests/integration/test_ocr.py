#!/usr/bin/env python3
"""okvm ocr: a page typed on the virtual unit's 1080p screen reads back with at least 99% of its
characters right (edit distance); words come with boxes where the screen drew them; a bad
region or language is refused with exit 2 before anything is captured.

Run one part: test_ocr.py accuracy | cli | serve (default: all)."""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from okvmtest import check, read_events, run, typed_text  # noqa: E402

# What the virtual screen (src/emu/screen.c) draws at 1920x1080: the terminal's text starts at
# (44, 82), one character cell is 10 x 20 pixels.
TERM = (40, 78, 1840, 962)
TEXT_X, TEXT_Y, CELL_W, CELL_H = 44, 82, 10, 20
FAST = ["--baud", "115200", "--report-gap-ms", "0", "--emu-poll-ms", "1",
        "--emu-video", "1920x1080@30"]

# A page as a console shows one: prose, shell, code, numbers and punctuation. No line holds
# two spaces in a row (OCR gives words, so runs of spaces cannot be told apart).
PAGE = """\
Welcome to Debian GNU/Linux 12 (bookworm) on target.example.org (tty1).
Last login: Tue Dec 1 09:14:27 2026 from 192.168.1.20
root@target:~# uname -a
Linux target 6.1.0-27-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 x86_64 GNU/Linux
root@target:~# df -h /boot /home
Filesystem Size Used Avail Use% Mounted on
/dev/sda1 487M 102M 360M 23% /boot
/dev/mapper/vg0-home 230G 118G 101G 54% /home
root@target:~# grep -n "PermitRootLogin" /etc/ssh/sshd_config
33:PermitRootLogin prohibit-password
root@target:~# systemctl status nginx.service --no-pager
nginx.service - A high performance web server and a reverse proxy server
Loaded: loaded (/lib/systemd/system/nginx.service; enabled; preset: enabled)
Active: active (running) since Mon 2026-11-30 22:05:13 UTC; 11h ago
Main PID: 1042 (nginx) Tasks: 3 (limit: 9404) Memory: 6.8M CPU: 212ms
The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.
Sphinx of black quartz, judge my vow! How vexingly quick daft zebras jump?
int main(int argc, char **argv) { return argc > 1 ? atoi(argv[1]) : 0; }
for (size_t i = 0; i < n; i++) sum += values[i] * weights[i];
if [ -f "$HOME/.profile" ]; then . "$HOME/.profile"; fi
curl -fsSL https://example.com/install.sh | sh -s -- --prefix=/opt/tool
SELECT id, name, email FROM users WHERE created_at >= '2026-01-01' ORDER BY id;
The invoice total is $1,284.50 (tax 19%), due on 2026-12-15; ref #A7-3390.
Keys: Ctrl+Alt+Del reboots, Alt+F2 runs a command, Shift+Tab goes back.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 256 1024 65535 3.14159 2.71828 -17 +23
Brackets and symbols: ( ) [ ] { } < > / | ~ ^ & * % @ ! ? = + - _ : ; , .
Press any key to continue, or wait 10 seconds for the default entry.
GRUB loading. Welcome to GRUB! Booting 'Debian GNU/Linux, with Linux 6.1.0'
Please enter the passphrase for disk cryptroot (sda3_crypt):
Installation complete. Remove the installation media, then press ENTER.
"""


def ocr_script(page, extra, events=None):
    """A script typing page, then running `ocr extra...`; returns (rc, stdout, stderr). events:
    a file for what the virtual target received."""
    fd, path = tempfile.mkstemp(suffix=".okvm")
    esc = page.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    with os.fdopen(fd, "w") as f:
        f.write(f'type --rate max "{esc}"\nsleep 300\nocr {" ".join(extra)}\n')
    try:
        ev = ["--emu-events", events] if events else []
        r = run(["-d", "emu"] + FAST + ev + ["script", path], timeout=300)
        return r.returncode, r.stdout.decode(), r.stderr.decode()
    finally:
        os.unlink(path)


def distance(a, b):
    """Levenshtein distance of two strings."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def accuracy(want, got):
    """Characters right: 1 - edit distance / length, line by line when the lines pair up."""
    w = want.strip("\n").split("\n")
    g = [line for line in got.strip("\n").split("\n") if line.strip()]
    if len(w) == len(g):
        d = sum(distance(a, b) for a, b in zip(w, g))
    else:
        d = distance("\n".join(w), "\n".join(g))
    return 1 - d / len(want.strip("\n")), d


def test_accuracy():
    region = ",".join(str(v) for v in TERM)
    events = tempfile.mktemp(suffix=".jsonl")
    rc, out, err = ocr_script(PAGE, ["--region", region], events)
    check(rc == 0, f"ocr failed ({rc}): {err}")
    typed = typed_text(read_events(events))
    os.unlink(events)
    # the oracle is what the target received (the typing path has its own tests)
    check(typed == PAGE, f"the target received {len(typed)} of {len(PAGE)} characters")
    acc, d = accuracy(PAGE, out)
    print(f"accuracy {acc * 100:.2f}% ({d} edits in {len(PAGE.strip())} characters)")
    if acc < 0.99:
        for a, b in zip(PAGE.split("\n"), out.split("\n")):
            if a != b:
                print(f"  want {a!r}\n  got  {b!r}")
    check(acc >= 0.99, f"accuracy {acc * 100:.2f}% is below 99%")


def test_json_boxes():
    page = "alpha beta\ngamma 12345\n"
    rc, out, err = ocr_script(page, ["--json"])
    check(rc == 0, f"ocr --json failed ({rc}): {err}")
    o = json.loads(out)
    check(o["width"] == 1920 and o["height"] == 1080, f"frame size {o['width']}x{o['height']}")
    check("alpha beta\ngamma 12345" in o["text"], f"text {o['text']!r}")
    words = {w["text"]: w for w in o["words"]}
    for text, col, row in (("alpha", 0, 0), ("beta", 6, 0), ("gamma", 0, 1), ("12345", 6, 1)):
        check(text in words, f"no word {text!r} in {list(words)}")
        w = words[text]
        x, y = TEXT_X + col * CELL_W, TEXT_Y + row * CELL_H
        # the box holds the glyphs' ink: inside the word's cells, and most of their width
        check(x - 2 <= w["x"] <= x + 4 and y - 2 <= w["y"] <= y + CELL_H, f"{text}: box {w}")
        check(abs(w["w"] - len(text) * CELL_W) <= 6 and 6 <= w["h"] <= CELL_H + 2,
              f"{text}: box {w}")
        check(50 <= w["conf"] <= 100, f"{text}: confidence {w['conf']}")
    # a region holds only its words, with boxes still in frame pixels
    rc, out, err = ocr_script(page, ["--json", "--region", f"{TEXT_X + 60},{TEXT_Y},200,40"])
    check(rc == 0, err)
    o = json.loads(out)
    texts = [w["text"] for w in o["words"]]
    check(texts == ["beta", "12345"], f"region words {texts}")
    check(abs(o["words"][0]["x"] - (TEXT_X + 60)) <= 4, f"region box {o['words'][0]}")


def test_bad_input():
    for args, want in (
            (["--region", "10,10,0,5"], "is not X,Y,W,H"),
            (["--region", "1,2,3"], "is not X,Y,W,H"),
            (["--region", "a,b,c,d"], "is not X,Y,W,H"),
            (["--lang", "Eng;rm"], "not a tesseract language"),
            (["--lang", "zzz"], "tesseract-ocr-zzz"),
            (["--lang", "eng+chi_sim"], "tesseract-ocr-chi-sim"),
            (["--bogus"], "unknown option")):
        r = run(["-d", "emu", "ocr"] + args)
        err = r.stderr.decode()
        check(r.returncode == 2, f"{args}: exit {r.returncode}, want 2 ({err})")
        check(want in err and err.count("\n") == 1, f"{args}: message {err!r}")
    # a region entirely off the frame: known only once a frame is in
    r = run(["-d", "emu", "--emu-video", "1280x720@30", "ocr", "--region", "2000,0,100,100"])
    err = r.stderr.decode()
    check(r.returncode == 2 and "outside the 1280x720 frame" in err, f"off-frame: {err}")
    # partly off: clipped, read
    r = run(["-d", "emu", "--emu-video", "1280x720@30", "ocr", "--region", "-50,-50,400,100"])
    check(r.returncode == 0 and "okvm virtual target" in r.stdout.decode(),
          f"clipped region: {r.returncode} {r.stdout!r} {r.stderr!r}")


def test_serve():
    """GET /api/ocr on okvm serve -d emu: behind the login, words with boxes, bad arguments
    refused, the server answering other requests while it reads."""
    import threading
    import serve_util as su
    tmp = tempfile.mkdtemp(prefix="okvm-ocr-")
    conf = su.write_config(os.path.join(tmp, "okvm.conf"), password="ocr-secret")
    with su.Server("--config", conf, backend=["-d", "emu"] + FAST) as s:
        st, h, body = s.http("GET", "/api/ocr")
        check(st == 401, f"no login: {st} {body!r}")
        cookie = su.login_cookie(s.port, "ocr-secret")
        check(cookie, "login")
        hd = {"Cookie": cookie}
        st, h, body = s.http("POST", "/api/type", b"hello ocr world 42\nsecond_line here\n", hd)
        check(st == 202, f"type: {st} {body!r}")
        for _ in range(100):  # typing done: the state says so
            st, o = s.json("GET", "/api/state", headers=hd)
            if not o["typing"]["active"]:
                break
            time.sleep(0.1)
        time.sleep(0.3)  # the frame after the last character
        st, o = s.json("GET", f"/api/ocr?x={TERM[0]}&y={TERM[1]}&w={TERM[2]}&h={TERM[3]}",
                       headers=hd)
        check(st == 200, f"ocr: {st} {o}")
        check(o["text"].startswith("hello ocr world 42\nsecond_line here"), f"text {o['text']!r}")
        check(o["width"] == 1920 and o["height"] == 1080 and o["ms"] >= 0, f"frame {o}")
        # okvm ocr --file reads a saved picture the same way, without a unit
        st, h, jpeg = s.http("GET", "/snapshot", headers=hd)
        shot = os.path.join(tmp, "shot.jpg")
        open(shot, "wb").write(jpeg)
        r = run(["ocr", "--file", shot, "--region", ",".join(str(v) for v in TERM)])
        check(r.returncode == 0 and r.stdout.decode().startswith(
            "hello ocr world 42\nsecond_line here"), f"ocr --file: {r.stdout!r} {r.stderr!r}")
        for bad, want in ((os.path.join(tmp, "none.jpg"), "cannot open"), (conf, "not a JPEG")):
            r = run(["ocr", "--file", bad])
            err = r.stderr.decode()
            check(r.returncode == 1 and want in err and bad in err and not r.stdout,
                  f"ocr --file {os.path.basename(bad)}: exit 1, one line ({err.strip()})")
        w = {x["text"]: x for x in o["words"]}
        check("world" in w and abs(w["world"]["x"] - (TEXT_X + 10 * CELL_W)) <= 4
              and abs(w["world"]["y"] - TEXT_Y) <= CELL_H, f"box of world: {w.get('world')}")
        check(set(w["world"]) == {"text", "x", "y", "w", "h", "conf"}, f"word keys {w['world']}")
        for q, want in (("?w=0", "integers above 0"), ("?x=abc", "must be integers"),
                        ("?lang=zzz", "tesseract-ocr-zzz"), ("?lang=Eng", "not a tesseract"),
                        ("?x=5000&y=0&w=10&h=10", "outside the 1920x1080 frame")):
            st, e = s.json("GET", "/api/ocr" + q, headers=hd)
            check(st == 400 and want in e["error"], f"{q}: {st} {e}")
        # a client that hangs up mid-read costs nothing; the server goes on answering
        raw = su.raw_connect(s.port)
        raw.sendall(su.request_bytes("GET", "/api/ocr", s.port, headers=[("Cookie", cookie)]))
        raw.close()
        # while a whole frame is read, other requests are answered first
        order = []
        t = threading.Thread(target=lambda: order.append(("ocr", s.http("GET", "/api/ocr",
                                                                          headers=hd)[0])))
        t.start()
        time.sleep(0.5)  # the read has begun
        st, o = s.json("GET", "/api/state", headers=hd)
        order.append(("state", st))
        t.join(120)
        check(order == [("state", 200), ("ocr", 200)], f"order of answers {order}")
        check(s.alive(), "server alive")
        # stopping with a read under way: it is cancelled, the server exits cleanly (with
        # nothing leaked under ASan: the with block checks the exit status)
        def read_and_ignore():
            try:
                s.http("GET", "/api/ocr", headers=hd)
            except OSError:
                pass
        t = threading.Thread(target=read_and_ignore)
        t.start()
        time.sleep(0.5)
    t.join(60)


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    if which in ("all", "cli"):
        test_bad_input()
        test_json_boxes()
    if which in ("all", "serve"):
        test_serve()
    if which in ("all", "accuracy"):
        test_accuracy()
    print("ok")


if __name__ == "__main__":
    main()
