"""okvm serve's security: a non-loopback address needs a password, `okvm passwd` stores only an
argon2id hash in a 0600 file, login/logout with a HttpOnly SameSite=Strict cookie, everything
else refused without it, wrong passwords rate-limited and logged, TLS with a self-signed pair."""
import http.client
import os
import select
import socket
import ssl
import stat
import subprocess
import tempfile

from serve_util import (OKVM, Mjpeg, Server, WebSocket, check, fail, fixture_frames, free_port,
                        passed)

tmp = tempfile.mkdtemp(prefix="okvm-auth-")
conf = os.path.join(tmp, "cfg", "okvm.conf")
env = dict(os.environ, HOME=tmp, XDG_CONFIG_HOME=os.path.join(tmp, "xdg"))

s = Server(listen=f"0.0.0.0:{free_port()}", expect_fail=True)
rc = s.proc.wait(20)
err = s.errors()
s.stop()
check(rc == 1 and "okvm passwd" in err and err.count("\n") == 1,
      "--listen 0.0.0.0 without a password refuses to start, with one line naming okvm passwd")

r = subprocess.run([OKVM, "passwd", "--config", conf], input=b"short\n", capture_output=True, env=env)
check(r.returncode == 1 and not os.path.exists(conf), "a password under 8 characters is refused")
PW = "correct horse battery"
r = subprocess.run([OKVM, "passwd", "--config", conf], input=(PW + "\n").encode(),
                   capture_output=True, env=env)
check(r.returncode == 0, "okvm passwd reads the password from a pipe")
text = open(conf).read()
mode = stat.S_IMODE(os.stat(conf).st_mode)
check("[serve]" in text and "password = $argon2id$" in text and PW not in text,
      "only an argon2id hash is stored, in [serve]")
check(mode == 0o600 and stat.S_IMODE(os.stat(os.path.dirname(conf)).st_mode) == 0o700,
      "the config file is 0600 in a 0700 folder")
with open(conf, "a") as f:
    f.write("login_max_failures = 3\nlogin_lockout = 60\n")
r = subprocess.run([OKVM, "passwd", "--config", conf], input=(PW + "\n").encode(),
                   capture_output=True, env=env)
text = open(conf).read()
check(r.returncode == 0 and text.count("password =") == 1 and "login_lockout = 60" in text,
      "setting it again replaces the hash and keeps the other keys")

with Server("--config", conf) as s:
    st, h, _ = s.http("GET", "/")
    check(st == 302 and h["location"] == "/login", "GET / without a session redirects to /login")
    st, h, body = s.http("GET", "/login")
    check(st == 200 and b"password" in body, "the login page is served without a session")
    for path in ("/api/state", "/stream", "/snapshot", "/metrics"):
        st, _, _ = s.http("GET", path)
        if st != 401:
            fail(f"GET {path} without a session: {st}")
    st, _, _ = s.http("POST", "/api/key?combo=a")
    check(st == 401 and not s.calls(), "every API route answers 401 without a session; nothing sent")
    try:
        WebSocket(s.port)
        fail("a WebSocket without a session was accepted")
    except (ConnectionError, OSError):
        passed("the WebSocket is refused without a session")

    st, h, _ = s.http("POST", "/api/login", body=b"password=wrong")
    check(st == 403, "a wrong password: 403")
    st, h, _ = s.http("POST", "/api/login", body=("password=" + PW.replace(" ", "%20")).encode())
    cookie = h.get("set-cookie", "")
    check(st == 200 and cookie.startswith("okvm_session=") and "HttpOnly" in cookie
          and "SameSite=Strict" in cookie and "Max-Age=43200" in cookie and "Secure" not in cookie,
          "the right password sets an HttpOnly, SameSite=Strict session cookie that expires")
    sess = cookie.split(";")[0]
    st, _, _ = s.http("GET", "/api/state", headers={"Cookie": sess})
    check(st == 200, "the session opens the API")
    ws = WebSocket(s.port, cookie=sess)
    check(ws.recv_until(lambda m: m["type"] == "state")["auth"] is True,
          "and the WebSocket; state says login is on")
    ws.close()
    st, _, _ = s.http("POST", "/api/logout", headers={"Cookie": sess})
    st2, _, _ = s.http("GET", "/api/state", headers={"Cookie": sess})
    check(st == 200 and st2 == 401, "after logout the old cookie is worthless")
    st, _, _ = s.http("GET", "/api/state", headers={"Cookie": "okvm_session=" + "0" * 64})
    check(st == 401, "a made-up session token is refused")

    # rate limit: 3 failures (configured) lock the address out, even for the right password
    for i in range(3):
        st, _, _ = s.http("POST", "/api/login", body=b"password=guess%d" % i)
        if st != 403:
            fail(f"wrong password {i + 1}: {st}")
    st, h, body = s.http("POST", "/api/login", body=("password=" + PW).encode())
    check(st == 429 and int(h["retry-after"]) > 0,
          "after 3 wrong passwords the address gets 429 with Retry-After, right password or not")
    for i in range(20):
        st, _, _ = s.http("POST", "/api/login", body=b"password=again")
    check(st == 429, "and stays locked out however often it tries")
log = s.errors()
check("wrong password from 127.0.0.1" in log and "locked out" in log,
      "wrong passwords and the lockout are logged with the address")


def parallel_logins(port, n, body=b"password=nope"):
    """n POST /api/login requests sent at once, each on its own connection."""
    socks = []
    for _ in range(n):
        k = socket.create_connection(("127.0.0.1", port), timeout=20)
        k.sendall(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n%s" % (len(body), body))
        socks.append(k)
    return socks


def status_of(k):
    data = b""
    while b"\r\n" not in data:
        d = k.recv(4096)
        if not d:
            break
        data += d
    k.close()
    return int(data.split()[1]) if data else 0


# Checks under way count against the limit: 8 wrong passwords at once, 3 allowed (configured).
with Server("--config", conf) as s:
    got = sorted(status_of(k) for k in parallel_logins(s.port, 8))
    check(got == [403] * 3 + [429] * 5,
          f"8 wrong passwords sent at once: 3 checked (403), 5 refused (429): {got}")

# The argon2 check runs off the service thread: input goes on while logins are being checked.
conf20 = os.path.join(tmp, "twenty.conf")
with open(conf20, "w") as f:
    f.write(open(conf).read().replace("login_max_failures = 3", "login_max_failures = 20"))
os.chmod(conf20, 0o600)
with Server("--config", conf20) as s:
    st, h, _ = s.http("POST", "/api/login", body=("password=" + PW).encode())
    ws = WebSocket(s.port, cookie=h["set-cookie"].split(";")[0])
    ws.recv_until(lambda m: m["type"] == "state")
    socks = parallel_logins(s.port, 15)
    # Once the first answer is out the checks are under way (10-30 ms each, one after another).
    # Checked on the service thread, a ping would wait for all of them; off it, it does not.
    # Five round trips: the service thread loops at least five times, and writes every answer
    # it has by then.
    select.select(socks, [], [], 20)
    for i in range(5):
        ws.send({"type": "ping", "t": i})
        ws.recv_until(lambda m: m["type"] == "pong" and m.get("t") == i)
    pending = [k for k in socks if not select.select([k], [], [], 0)[0]]
    got = [status_of(k) for k in socks]
    check(pending and got == [403] * 15,
          f"WebSocket pings are answered while logins are still being checked "
          f"({len(pending)} of 15 unanswered after 5 pings); all 15 then get 403")
    ws.close()

with Server("--config", conf, listen=f"0.0.0.0:{free_port()}") as s:
    st, _, _ = s.http("GET", "/api/state")
    check(st == 401, "with a password set, --listen 0.0.0.0 starts (and asks for a login)")

# A Prometheus scraper cannot log in: a metrics token opens GET /metrics and nothing else.
TOKEN = "3f9a1c77e0b24d6e8a5b"
conftok = os.path.join(tmp, "token.conf")
with open(conftok, "w") as f:
    f.write(open(conf).read() + f"metrics_token = {TOKEN}\n")
os.chmod(conftok, 0o600)
with Server("--config", conftok) as s:
    bearer = {"Authorization": "Bearer " + TOKEN}
    st, _, body = s.http("GET", "/metrics", headers=bearer)
    check(st == 200 and b"okvm_serve_stream_clients" in body,
          "GET /metrics with the metrics token as a bearer token: 200")
    st, _, _ = s.http("GET", "/metrics", headers={"Authorization": "Bearer " + TOKEN[:-1] + "0"})
    st2, _, _ = s.http("GET", "/metrics", headers={"Authorization": "Bearer " + TOKEN + "0"})
    check(st == 401 and st2 == 401, "a wrong or longer token: 401")
    for path in ("/api/state", "/snapshot", "/"):
        st, _, _ = s.http("GET", path, headers=bearer)
        if st not in (401, 302):
            fail(f"the metrics token opened {path}: {st}")
    st, _, _ = s.http("POST", "/api/key?combo=a", headers=bearer)
    check(st == 401 and not s.calls(), "the token opens nothing but /metrics")


def config_fails(name, text, line, msg):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([OKVM, "serve", "--config", path, "-d", "frames:x"],
                       capture_output=True, env=env, timeout=20)
    check(r.returncode == 1 and f"{name}:{line}".encode() in r.stderr, msg)


config_fails("weak.conf", "[serve]\nmetrics_token = short\n", 2,
             "a metrics token under 16 characters is refused")
config_fails("bad.conf", "[serve]\nlisten = 127.0.0.1:1\nlisen = typo\n", 3,
             "an unknown config key fails, naming the line")

tlsdir = os.path.join(tmp, "tls")
os.mkdir(tlsdir, 0o700)
with open(conf, "a") as f:
    f.write(f"tls_dir = {tlsdir}\n")
with Server("--config", conf, "--tls-self-signed") as s:
    check(s.url.startswith("https://"), "--tls-self-signed serves https")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = http.client.HTTPSConnection("127.0.0.1", s.port, context=ctx, timeout=20)
    c.request("POST", "/api/login", body=("password=" + PW).encode())
    r = c.getresponse()
    r.read()
    check(r.status == 200 and "Secure" in r.getheader("set-cookie"),
          "login over TLS works and the cookie is Secure")
    check((r.getheader("strict-transport-security") or "").startswith("max-age="),
          "answers over TLS carry Strict-Transport-Security")
    # Every answer ends its connection (http.c): look at a new one's certificate.
    t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.port), timeout=20),
                        server_hostname="127.0.0.1")
    der = t.getpeercert(binary_form=True)
    t.close()
    check(der and len(der) > 200, "the server presents a certificate")
    cookie = r.getheader("set-cookie").split(";")[0]
    c.close()
    m = Mjpeg(s.port, tls=ctx, cookie=cookie)
    parts = [m.part() for _ in range(4)]
    check(m.status == 200 and all(p[1] in fixture_frames() for p in parts),
          "the MJPEG stream over TLS carries whole, byte-exact frames")
    m.close()
key = os.path.join(tlsdir, "okvm-selfsigned.key")
check(os.path.exists(key) and stat.S_IMODE(os.stat(key).st_mode) == 0o600,
      "the generated key is kept 0600 for the next start")

# Plain HTTP never sends HSTS (a browser would ignore it, and it would pin a name to https).
with Server("--config", conf) as s:
    st, h, _ = s.http("GET", "/login")
    check(st == 200 and "strict-transport-security" not in h, "plain HTTP: no HSTS header")
# --auth always: a login on loopback too (as dist/okvm.service runs it); a bad value is a usage
# error that starts nothing.
with Server("--config", conf, "--auth", "always") as s:
    st, _, _ = s.http("GET", "/api/state")
    check(st == 401, "--auth always: loopback needs a login")
s = Server("--auth", "sometimes", expect_fail=True)
rc = s.proc.wait(20)
err = s.errors()
s.stop()
check(rc == 2 and "--auth auto or --auth always" in err, "--auth sometimes is a usage error")
# This machine's own name (and NAME.local) is served without server_names; others are not.
name = socket.gethostname().lower()
with Server() as s:
    got = {h: s.http("GET", "/api/state", headers={"Host": f"{h}:{s.port}"})[0]
           for h in (name, name + ".local", name + ".attacker.example")}
    check(name == "localhost" or (got[name] == 200 and got[name + ".local"] == 200 and
                                  got[name + ".attacker.example"] == 403),
          f"Host: this machine's name and NAME.local are served, NAME.attacker.example not {got}")
