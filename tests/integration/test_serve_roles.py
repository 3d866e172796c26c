"""Users, roles and TOTP in okvm serve, end to end through the real binary: logins by user name
(with a second factor for a user who has one, codes computed here from the secret `okvm totp
--show` prints), the viewer / operator / admin routes over REST and the WebSocket, `auth =
always`, the Unix socket listener for a reverse proxy, and the audit lines on stderr. The test
backend's call log is the oracle that a refused request sent nothing to the target.

Every check runs (SoftChecks) and the failures are listed at the end."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import stat
import struct
import subprocess
import tempfile
import threading
import time
import urllib.parse

from serve_util import (FRAMES, OKVM, OKVM_REC, Mjpeg, Server, SoftChecks, WebSocket, fixture_frames,
                        free_port, raw_connect, request_bytes, RawReader)

t = SoftChecks()
check = t.check
tmp = tempfile.mkdtemp(prefix="okvm-roles-")
env = dict(os.environ, HOME=tmp, XDG_CONFIG_HOME=os.path.join(tmp, "xdg"))


def okvm(*args, stdin=None):
    return subprocess.run([OKVM] + list(args), input=stdin.encode() if stdin is not None else None,
                          capture_output=True, env=env, timeout=60)


# ---- TOTP, RFC 6238 (HMAC-SHA1, 6 digits, 30 s), computed here, not by okvm ----

def hotp(key, counter):
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 0x0f
    return (struct.unpack(">I", mac[off:off + 4])[0] & 0x7fffffff) % 1000000


def totp(secret, step):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return "%06d" % hotp(key, step)


def step_now():
    return int(time.time()) // 30


# RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits), so 287082 with 6.
check(totp(base64.b32encode(b"12345678901234567890").decode(), 59 // 30) == "287082",
      "the test's own TOTP matches RFC 6238's SHA-1 vector")

# ---- the config: admin ([serve] password), vic (viewer), olga (operator, TOTP) ----

conf = os.path.join(tmp, "cfg", "okvm.conf")
ADMIN_PW, VIC_PW, OLGA_PW = "admin password 1", "viewer password 1", "operator password"
for pw, extra in ((ADMIN_PW, ()), (VIC_PW, ("--user", "vic", "--role", "viewer")),
                  (OLGA_PW, ("--user", "olga", "--role", "operator"))):
    r = okvm("passwd", "--config", conf, *extra, stdin=pw + "\n")
    if r.returncode:
        check(False, f"okvm passwd {' '.join(extra)}: {r.stderr!r}")
text = open(conf).read()
check("[user.vic]" in text and "role = viewer" in text and "[user.olga]" in text and
      "role = operator" in text, "okvm passwd --user NAME --role ROLE adds [user.NAME] sections")
r = okvm("totp", "--config", conf, "--user", "olga")
r2 = okvm("totp", "--config", conf, "--user", "olga", "--show")
m = re.search(r"otpauth://totp/okvm:olga\?secret=([A-Z2-7]+)&issuer=okvm", r2.stdout.decode())
check(r.returncode == 0 and r2.returncode == 0 and m and m.group(1) in r.stdout.decode(),
      "okvm totp --user olga sets a secret; --show prints the same otpauth URI again")
SECRET = m.group(1) if m else "A" * 32
# Many wrong tries below on purpose: the lockout gets its own server further down.
text = open(conf).read().replace("[serve]\n", "[serve]\nlogin_max_failures = 100\n", 1)
with open(conf, "w") as f:
    f.write(text)


def form(**kw):
    return urllib.parse.urlencode(kw).encode()


def login(s, body):
    """POST /api/login: (status, headers, parsed JSON or None, "okvm_session=..." or None)."""
    st, h, data = s.http("POST", "/api/login", body=body)
    try:
        j = json.loads(data)
    except ValueError:
        j = None
    c = h.get("set-cookie", "")
    return st, h, j, c.split(";")[0] if c.startswith("okvm_session=") and st == 200 else None


def closes(h):
    return h.get("connection", "").lower() == "close"


def cookie_hdr(c):
    return {"Cookie": c} if c else {}


def state_of(s, c):
    st, h, data = s.http("GET", "/api/state", headers=cookie_hdr(c))
    return st, json.loads(data) if st == 200 else None


def wrong_code(step):
    near = {totp(SECRET, step + d) for d in (-1, 0, 1, 2)}
    n = int(totp(SECRET, step))
    while "%06d" % n in near:
        n = (n + 1) % 1000000
    return "%06d" % n


WRONG = "wrong user name, password or code"
NEED_CODE = "enter the 6-digit code of your authenticator app"

s = Server("--config", conf)
try:
    st, _, _ = s.http("GET", "/api/state")
    check(st == 401, "with users in the file, loopback asks for a login (401 without a cookie)")

    # -- admin: the [serve] password, by a bare body, a form without user, and user=admin --
    st, h, j, admin = login(s, ADMIN_PW.encode())
    check(st == 200 and admin and closes(h),
          "a bare body is the admin's password: 200, a session cookie, Connection: close")
    st, stj = state_of(s, admin)
    check(st == 200 and stj.get("role") == "admin" and stj.get("user") == "admin",
          "/api/state of that session says role admin, user admin: "
          f"{stj and (stj.get('role'), stj.get('user'))}")
    st, h, j, c = login(s, form(password=ADMIN_PW))
    st2, h2, j2, c2 = login(s, form(user="admin", password=ADMIN_PW))
    check(c and c2 and state_of(s, c)[1].get("user") == "admin" and closes(h) and closes(h2),
          "password=... without user= and with user=admin are the admin too")
    st, h, j, c = login(s, form(user="mallory", password=ADMIN_PW))
    check(st == 403 and not c and j and j.get("error") == WRONG,
          "an unknown user name with the admin's password: 403, it does not fall back to admin")

    st, h, j, c = login(s, form(user="x" * 45, password=ADMIN_PW))
    check(st == 403 and not c,
          f"a user name too long to be one (45 characters) with the admin's password: 403, "
          f"not the admin: {st}")
    st, h, j, c = login(s, form(user="vic"))
    check(st == 400 and closes(h),
          f"a login form without password=: 400, and Connection: close like every login answer: "
          f"{st} {h.get('connection')!r}")
    # A user name is logged as given: a newline in it must not start a line of its own.
    FORGED = "okvm: audit: login user=eve"
    st, h, j, c = login(s, form(user="m\n" + FORGED, password="x"))
    check(st == 403, "a user name with a newline: 403")

    # -- vic, a viewer --
    st, h, j, c = login(s, form(user="vic", password="not vic's"))
    check(st == 403 and not c and j == {"ok": False, "error": WRONG} and closes(h),
          f"a wrong password for vic: 403 {WRONG!r}, no cookie, Connection: close: {st} {j}")
    st, h, j, vic = login(s, form(user="vic", password=VIC_PW))
    check(st == 200 and vic and closes(h), "vic's right password: 200 and a cookie")
    st, h, j, c = login(s, form(user="vic", password=VIC_PW, totp="123456"))
    check(st == 200 and c, "a code sent for a user without TOTP is ignored")

    # -- olga, an operator with TOTP --
    st, h, j, c = login(s, form(user="olga", password=OLGA_PW))
    check(st == 401 and not c and j == {"ok": False, "error": NEED_CODE, "totp": True}
          and closes(h) and "set-cookie" not in h,
          f"olga's right password without a code: 401 asking for the code (totp: true), no "
          f"cookie: {st} {j}")
    st, h, j, c = login(s, form(user="olga", password="not olga's"))
    check(st == 403 and j and "totp" not in j,
          "a wrong password without a code: 403, not the 401 that asks for a code")
    step = step_now()
    st, h, j, c = login(s, form(user="olga", password=OLGA_PW, totp=wrong_code(step)))
    check(st == 403 and not c and j and j.get("error") == WRONG and closes(h),
          "the right password with a wrong code: 403")
    code = totp(SECRET, step_now())
    st, h, j, c = login(s, form(user="olga", password="not olga's", totp=code))
    check(st == 403 and not c, "the right code with a wrong password: 403")
    st, h, j, olga = login(s, form(user="olga", password=OLGA_PW, totp=code))
    check(st == 200 and olga and closes(h),
          "the right password and code: 200 (a wrong password did not use the code up)")
    st, h, j, c = login(s, form(user="olga", password=OLGA_PW, totp=code))
    check(st == 403 and not c and j and j.get("error") == WRONG,
          f"the same code again: 403, a code cannot be replayed: {st} {j}")
    # The next step's code (one step ahead is accepted), sent twice at once: one gets in.
    nxt = totp(SECRET, step_now() + 1)
    got = []

    def one():
        got.append(login(s, form(user="olga", password=OLGA_PW, totp=nxt))[0])
    ths = [threading.Thread(target=one) for _ in range(2)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    check(sorted(got) == [200, 403],
          f"the next code sent twice at the same time: one 200, one 403: {sorted(got)}")

    # -- what a viewer may do --
    st, h, body = s.http("GET", "/", headers=cookie_hdr(vic))
    check(st == 200 and b"<html" in body, "a viewer gets the page")
    mj = Mjpeg(s.port, cookie=vic)
    part = mj.part()
    mj.close()
    check(mj.status == 200 and part[1] in fixture_frames(), "a viewer gets the MJPEG stream")
    st, h, body = s.http("GET", "/snapshot", headers=cookie_hdr(vic))
    check(st == 200 and body[:2] == b"\xff\xd8", "a viewer gets a snapshot")
    st, stj = state_of(s, vic)
    check(st == 200 and stj.get("role") == "viewer" and stj.get("user") == "vic",
          "a viewer's /api/state says role viewer, user vic")
    st, h, body = s.http("GET", "/metrics", headers=cookie_hdr(vic))
    check(st == 403 and
          json.loads(body).get("error") == "/metrics needs the role admin (yours: viewer)",
          f"a viewer's /metrics: 403 naming the role: {st} {body[:100]!r}")
    refused = []
    for path, body in (("/api/type", b"secret"), ("/api/key?combo=ctrl+alt+delete", b""),
                       ("/api/mouse", b'{"x":0.5,"y":0.5,"buttons":1}'),
                       ("/api/switch?to=host", b""), ("/api/release", b"")):
        st, h, data = s.http("POST", path, body=body, headers=cookie_hdr(vic))
        want = path.split("?")[0] + " needs the role operator (yours: viewer)"
        if st != 403 or json.loads(data).get("error") != want:
            refused.append(f"{path}: {st} {data[:100]!r}")
    check(not refused, "a viewer's POST /api/type, key, mouse, switch, release: 403 \"... needs "
          "the role operator (yours: viewer)\"" + (f": {refused}" if refused else ""))
    ws = WebSocket(s.port, cookie=vic)
    wst = ws.recv_until(lambda m: m["type"] == "state")
    check(wst.get("role") == "viewer" and wst.get("user") == "vic",
          "a viewer's WebSocket state says role viewer, user vic")
    ws.send({"type": "ping", "t": 7})
    check(ws.recv_until(lambda m: m["type"] in ("pong", "error")) == {"type": "pong", "t": 7},
          "a viewer's WebSocket answers a ping")
    msgs = [{"type": "key", "code": "KeyA", "down": True},
            {"type": "key", "code": "KeyA", "down": False},
            {"type": "mouse", "x": 0.5, "y": 0.5, "buttons": 1}, {"type": "wheel", "dy": 3},
            {"type": "rel", "dx": 5, "dy": 5}, {"type": "type", "text": "rm -rf /"},
            {"type": "release_all"}, {"type": "switch", "to": "host"},
            {"type": "combo", "combo": "ctrl+alt+delete"}]
    bad = []
    for msg in msgs:
        ws.send(msg)
        e = ws.recv_until(lambda m: m["type"] in ("error", "ok", "pong"))
        want = f"{msg['type']} needs the role operator (yours: viewer)"
        if e.get("type") != "error" or e.get("error") != want:
            bad.append((msg["type"], e))
    ws.sync()
    check(not bad, "every input message of a viewer's WebSocket gets an error naming the role"
          + (f": {bad}" if bad else ""))
    ws.close()
    time.sleep(0.3)
    check(s.calls() == [], f"nothing a viewer sent reached the target: {s.calls()[:5]}")

    # -- what an operator may do --
    st, stj = state_of(s, olga)
    check(st == 200 and stj.get("role") == "operator" and stj.get("user") == "olga",
          "an operator's /api/state says role operator, user olga")
    st, _, _ = s.http("POST", "/api/key?combo=ctrl%2Balt%2Bdelete", headers=cookie_hdr(olga))
    check(st == 200 and [c["combo"] for c in s.calls("combo")] == ["ctrl+alt+delete"],
          "an operator's POST /api/key reaches the target")
    st, _, _ = s.http("POST", "/api/type", body=b"hello", headers=cookie_hdr(olga))
    check(st == 202 and s.calls("type") and s.calls("type")[0]["text"] == "hello",
          "an operator's POST /api/type reaches the target")
    st, _, _ = s.http("POST", "/api/switch?to=host", headers=cookie_hdr(olga))
    check(st == 200 and [c["to"] for c in s.calls("switch")] == ["host"],
          "an operator's POST /api/switch reaches the target")
    st, _, _ = s.http("POST", "/api/mouse", body=b'{"x":0.25,"y":0.75,"buttons":0}',
                      headers=cookie_hdr(olga))
    check(st == 200 and s.calls("mouse"), "an operator's POST /api/mouse reaches the target")
    st, _, _ = s.http("POST", "/api/release", headers=cookie_hdr(olga))
    check(st == 200 and s.calls("release_all"),
          "an operator's POST /api/release reaches the target")
    st, h, body = s.http("GET", "/metrics", headers=cookie_hdr(olga))
    check(st == 403 and b"/metrics needs the role admin (yours: operator)" in body,
          "an operator's /metrics: 403 naming the role")
    ws = WebSocket(s.port, cookie=olga)
    wst = ws.recv_until(lambda m: m["type"] == "state")
    n = len(s.calls("key"))
    ws.send({"type": "key", "code": "KeyQ", "down": True})
    ws.send({"type": "key", "code": "KeyQ", "down": False})
    # The REST paste above was cancelled by /api/release; the test backend's typing thread may
    # take a moment to end, and a paste meanwhile is refused as busy: send it again then.
    for _ in range(50):
        ws.send({"type": "type", "text": "abc"})
        r = ws.recv_until(lambda m: m.get("ref") == "type")
        if r["type"] != "error":
            break
        time.sleep(0.05)
    ws.sync()
    keys = [(c["code"], c["down"]) for c in s.calls("key")[n:]]
    check(wst.get("role") == "operator" and keys[:2] == [("KeyQ", True), ("KeyQ", False)],
          f"an operator's WebSocket keys reach the target: {keys}")

    # -- admin --
    st, _, body = s.http("GET", "/metrics", headers=cookie_hdr(admin))
    check(st == 200 and b"okvm_serve_" in body, "an admin's /metrics: 200")

    # -- logout --
    st, _, _ = s.http("POST", "/api/logout", headers=cookie_hdr(olga))
    st2, _ = state_of(s, olga)
    ws.sock.settimeout(5)
    gone = False
    try:
        for _ in range(100):
            if ws.recv() is None:
                gone = True
                break
    except OSError:
        pass
    check(st == 200 and st2 == 401 and gone,
          "logout ends olga's session: the cookie is refused and her WebSocket closes")
    ws.sock.close()
finally:
    s.stop()

log = s.errors()
print("---- server stderr (audit lines) ----")
print("\n".join(l for l in log.splitlines() if "audit" in l))
print("----")
check(re.search(r"^okvm: warning: audit: wrong password from 127\.0\.0\.1 user=vic "
                r"\(\d+ in a row\)$", log, re.M),
      "audit: a wrong password is logged with the address and the user name")
check(re.search(r"audit: wrong password from 127\.0\.0\.1 user=mallory \(", log),
      "audit: a user name that does not exist is logged as given")
check(not any(l.startswith(FORGED) for l in log.splitlines()),
      "audit: a user name sent with a newline cannot forge a line of the log: "
      + repr([l for l in log.splitlines() if "eve" in l]))
check("audit: wrong password from 127.0.0.1 user=olga" in log,
      "audit: a wrong or replayed code is logged as a failure of olga")
fails = [int(x) for x in re.findall(r"audit: wrong password from \S+ user=\S+ \((\d+) in a row\)",
                                    log)]
check(fails and fails[0] == 1 and all(b in (a + 1, 1) for a, b in zip(fails, fails[1:])),
      f"audit: the failures are counted in a row (from 1, reset by a login): {fails}")
# These are what `okvm serve` writes without -v, as the systemd unit runs it.
check("audit: login user=vic role=viewer from=127.0.0.1" in log,
      "audit: a login is logged with user, role and address (without -v, as the service runs)")
check("audit: login user=olga role=operator from=127.0.0.1" in log and
      "audit: login user=admin role=admin from=127.0.0.1" in log,
      "audit: olga's and admin's logins are logged")
check("audit: paste bytes=5 user=olga from=127.0.0.1" in log and
      "audit: paste bytes=3 user=olga from=127.0.0.1" in log,
      "audit: pastes (REST and WebSocket) are logged with their size and the user")
check("audit: switch to=host user=olga from=127.0.0.1" in log, "audit: the USB switch is logged")
check("audit: logout user=olga from=127.0.0.1" in log, "audit: the logout is logged")
check("secret" not in log and "rm -rf" not in log and "hello" not in log
      and OLGA_PW not in log and VIC_PW not in log,
      "the log holds no typed text and no password")

# ---- the lockout covers users and codes: it is per address, not per user name ----

conf2 = os.path.join(tmp, "lock.conf")
with open(conf2, "w") as f:
    f.write(open(conf).read().replace("login_max_failures = 100", "login_max_failures = 2"))
os.chmod(conf2, 0o600)
with Server("--config", conf2) as s:
    a = login(s, form(user="vic", password="guess 1"))[0]
    b = login(s, form(user="admin", password="guess 2"))[0]
    st, h, j, c = login(s, form(user="olga", password=OLGA_PW, totp=totp(SECRET, step_now())))
    check(a == 403 and b == 403 and st == 429 and not c and int(h.get("retry-after", 0)) > 0
          and closes(h),
          f"2 wrong passwords (two user names), then olga's right password and code: 429 with "
          f"Retry-After and Connection: close: {a} {b} {st}")

# ---- 503: the queue of checks is full ----

conf3 = os.path.join(tmp, "busy.conf")
with open(conf3, "w") as f:
    f.write(open(conf).read().replace("login_max_failures = 100", "login_max_failures = 1000"))
os.chmod(conf3, 0o600)
with Server("--config", conf3) as s:
    socks = []
    body = form(user="vic", password="a wrong one")
    for i in range(12):          # 12 addresses x 8: under the 16 unproven connections per address
        for _ in range(8):
            k = raw_connect(s.port, src=f"127.0.0.{i + 2}", timeout=30)
            k.sendall(request_bytes("POST", "/api/login", s.port, body))
            socks.append(k)
    answers = [RawReader(k).response(30) for k in socks]
    for k in socks:
        k.close()
    busy = [a for a in answers if a and a[0] == 503]
    other = sorted({a[0] if a else None for a in answers} - {403, 503}, key=str)
    check(busy and not other and all(closes(a[1]) and a[1].get("retry-after") == "1" and
                                     b"busy" in a[2] for a in busy),
          f"96 logins at once: the ones over the queue get 503 'busy', Retry-After: 1, "
          f"Connection: close ({len(busy)} of 96; others: {other})")

# ---- auth = always ----

def write(name, text):
    p = os.path.join(tmp, name)
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, 0o600)
    return p


def start_fails(*args):
    r = subprocess.run([OKVM, "serve", *args, "-d", f"frames:{FRAMES}@5"],
                       capture_output=True, env=env, timeout=30)
    return r.returncode, r.stderr.decode()


rc, err = start_fails("--config", write("always0.conf", "[serve]\nauth = always\n"),
                      "--listen", f"127.0.0.1:{free_port()}")
check(rc == 1 and "okvm passwd" in err and err.count("\n") == 1,
      f"auth = always without any user: okvm serve refuses, one line naming okvm passwd: "
      f"{rc} {err!r}")
with Server("--config", write("open.conf", "[serve]\n")) as s:
    st, stj = state_of(s, None)
    check(st == 200 and stj.get("role") == "admin" and "user" not in stj,
          "without auth = always and without users, loopback is open (role admin, no user)")
vic_only = "[serve]\nauth = always\n" + text[text.index("[user.vic]"):text.index("[user.olga]")]
with Server("--config", write("always.conf", vic_only)) as s:
    st, _ = state_of(s, None)
    st2, h, _ = s.http("GET", "/")
    check(st == 401 and st2 == 302 and h.get("location") == "/login",
          "auth = always with one user: loopback asks for a login too (401, / redirects)")
    st, h, j, c = login(s, form(user="vic", password=VIC_PW))
    st2, h2, j2, c2 = login(s, ADMIN_PW.encode())
    check(c and state_of(s, c)[1].get("role") == "viewer" and st2 == 403,
          "and vic logs in; there is no admin password to log in with")

# ---- --listen unix:PATH ----


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=20)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(self.unix_path)


def uhttp(path, method, url, body=None, host="localhost", cookie=None):
    c = UnixHTTP(path)
    hdrs = {"Host": host}
    if cookie:
        hdrs["Cookie"] = cookie
    c.request(method, url, body=body, headers=hdrs)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


sock_path = os.path.join(tmp, "okvm.sock")
rc, err = start_fails("--config", write("nopw.conf", "[serve]\n"), "--listen", "unix:" + sock_path)
check(rc == 1 and "okvm passwd" in err and err.count("\n") == 1,
      f"--listen unix:PATH without a password refuses to start, naming okvm passwd: {rc} {err!r}")
uconf = write("unix.conf",
              text.replace("[serve]\n", "[serve]\nserver_names = kvm.example.org\n", 1))
blog = os.path.join(tmp, "unix-backend.jsonl")
p = subprocess.Popen([OKVM_REC, "serve", "--config", uconf, "--listen", "unix:" + sock_path,
                      "-d", "emu", "--video", f"frames:{FRAMES}@5"],
                     stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "unix.err"), "w"),
                     env=dict(env, OKVM_REC_LOG=blog))
try:
    line = p.stdout.readline().decode()
    check("serving on unix:" + sock_path in line, f"okvm serve --listen unix:PATH starts: {line!r}")
    mode = stat.S_IMODE(os.stat(sock_path).st_mode) if os.path.exists(sock_path) else None
    check(mode == 0o660 and stat.S_ISSOCK(os.stat(sock_path).st_mode),
          f"the socket is 0660: {mode and oct(mode)}")
    st, _, _ = uhttp(sock_path, "GET", "/api/state")
    check(st == 401, "over the socket, a request without a session: 401")
    st, h, data = uhttp(sock_path, "POST", "/api/login", form(user="vic", password=VIC_PW))
    cookie = h.get("set-cookie", "").split(";")[0]
    check(st == 200 and cookie.startswith("okvm_session="), "a login over the socket: 200")
    st, _, data = uhttp(sock_path, "GET", "/api/state", cookie=cookie)
    check(st == 200 and json.loads(data).get("user") == "vic", "the session works over the socket")
    st, _, data = uhttp(sock_path, "GET", "/api/state", host="evil.example", cookie=cookie)
    check(st == 403 and b"server_names" in data,
          "a Host that is no loopback name, IP literal or server name: 403, session or not")
    st, _, _ = uhttp(sock_path, "GET", "/api/state", host="192.168.7.7:8080", cookie=cookie)
    st2, _, _ = uhttp(sock_path, "GET", "/api/state", host="kvm.example.org", cookie=cookie)
    st3, _, _ = uhttp(sock_path, "GET", "/api/state", host="KVM.example.org:443", cookie=cookie)
    check(st == 200 and st2 == 200 and st3 == 200,
          f"an IP literal and a server_names name (any case, with a port) pass: {st} {st2} {st3}")
    st, _, data = uhttp(sock_path, "POST", "/api/key?combo=a", cookie=cookie)
    sent = open(blog).read() if os.path.exists(blog) else ""
    check(st == 403 and b"needs the role operator" in data and not sent,
          f"roles hold over the socket too: a viewer's key is refused, nothing sent: {sent[:80]!r}")
finally:
    p.terminate()
    p.wait(20)
uerr = open(os.path.join(tmp, "unix.err")).read()
m = re.search(r"audit: login user=vic role=viewer from=(\S*)", uerr)
check(m and m.group(1), f"audit: a login over the socket names where it came from "
      f"(not an empty from=): {m and m.group(0)!r}")
m = re.search(r"request from (\S*) ?for Host 'evil.example' refused", uerr)
check(m and m.group(1), f"the refused Host is logged with where it came from: "
      f"{m and m.group(0)!r}")

t.finish()
