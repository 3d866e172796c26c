"""The config side of okvm serve's security, through the real binary: `okvm passwd` with long
passwords, users and roles, `okvm totp` (secret, URI, QR code), a symbolic link as the config
file, the per-user folder's mode, a config that other users may read, and long lines."""
import os
import re
import shutil
import stat
import subprocess
import tempfile

from serve_util import OKVM, Server, check, fail

tmp = tempfile.mkdtemp(prefix="okvm-config-")
xdg = os.path.join(tmp, "xdg")
env = dict(os.environ, HOME=tmp, XDG_CONFIG_HOME=xdg)


def okvm(*args, stdin=None):
    return subprocess.run([OKVM] + list(args), input=stdin.encode() if stdin is not None else None,
                          capture_output=True, env=env, timeout=60)


def passwd(conf, pw, *extra):
    return okvm("passwd", "--config", conf, *extra, stdin=pw + "\n")


def login(s, pw):
    st, h, _ = s.http("POST", "/api/login", body=("password=" + pw).encode())
    return st


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


# ---- password length: up to 1024 characters, refused (not cut) beyond ----

conf = os.path.join(tmp, "c", "okvm.conf")
PW300 = "".join(chr(ord("a") + i % 26) for i in range(300))
r = passwd(conf, PW300)
check(r.returncode == 0, "a 300-character password from a pipe is taken")
with Server("--config", conf) as s:
    check(login(s, PW300) == 200, "and logging in with all 300 characters works")
    check(login(s, PW300[:255]) == 403, "its first 255 characters are not enough (not cut)")
    check(login(s, PW300[:299]) == 403, "nor are 299")
before = open(conf).read()
r = passwd(conf, "x" * 1025)
check(r.returncode == 1 and b"longer than 1024" in r.stderr and open(conf).read() == before,
      "a 1025-character password is refused with a clear message; the file is unchanged")
r = passwd(conf, "y" * 1024)
check(r.returncode == 0 and open(conf).read() != before, "1024 characters are taken")
r = passwd(conf, PW300)

# ---- users and roles ----

r = passwd(conf, "alice's password", "--user", "alice", "--role", "operator")
r2 = passwd(conf, "viewer password", "--user", "vic", "--role", "viewer")
text = open(conf).read()
check(r.returncode == 0 and r2.returncode == 0 and "[user.alice]" in text and
      "role = operator" in text and "[user.vic]" in text and "alice's" not in text,
      "okvm passwd --user NAME --role ROLE writes a [user.NAME] section with a hash")
r = passwd(conf, "whatever password", "--user", "eve", "--role", "root")
check(r.returncode == 2 and b"unknown role 'root'" in r.stderr and "eve" not in open(conf).read(),
      "an unknown role is a usage error (exit 2); nothing is written")
r = passwd(conf, "whatever password", "--user", "eve")
check(r.returncode == 2 and b"--role" in r.stderr, "a new user needs --role")
r = passwd(conf, "whatever password", "--user", "Bad Name", "--role", "viewer")
check(r.returncode == 2, "a bad user name is a usage error")
# passwd and totp share one parser: each refuses the other's flags by name, in one line.
for cmd, args, want in (("passwd", ["--show"], b"unknown option '--show'"),
                        ("totp", ["--role", "admin"], b"unknown option '--role'"),
                        ("totp", ["--delete"], b"unknown option '--delete'"),
                        ("totp", ["--user", "Bad Name"], b"bad user name 'Bad Name'"),
                        ("passwd", ["--user"], b"--user needs a value")):
    r = subprocess.run([OKVM, cmd, "--config", conf] + args, capture_output=True, timeout=20)
    check(r.returncode == 2 and want in r.stderr and r.stderr.count(b"\n") == 1,
          f"okvm {cmd} {' '.join(args)}: exit 2, {want.decode()}: {r.stderr!r}")
r = passwd(conf, "alice's new password", "--user", "alice")
check(r.returncode == 0 and open(conf).read().count("role = operator") == 1,
      "an existing user's password changes without --role; the role stays")
r = passwd(conf, "admin password", "--user", "admin", "--role", "admin")
check(r.returncode == 1 and b"[serve]" in r.stderr,
      "--user admin is refused while [serve] holds the admin's password")
with Server("--config", conf) as s:
    check(login(s, PW300) == 200, "the server starts with the users in the file")
r = okvm("passwd", "--config", conf, "--user", "vic", "--delete")
r2 = okvm("passwd", "--config", conf, "--user", "vic", "--delete")
check(r.returncode == 0 and "[user.vic]" not in open(conf).read() and r2.returncode == 1 and
      b"no user vic" in r2.stderr, "--delete removes a user's section; a second time says so")

# ---- okvm totp ----


def qr_matrix(lines):
    """Rows of booleans (dark) from the half-block drawing."""
    rows = []
    for line in lines:
        rows.append([c in "\u2580\u2588" for c in line])
        rows.append([c in "\u2584\u2588" for c in line])
    return rows


r = okvm("totp", "--config", conf, "--user", "alice")
out = r.stdout.decode()
m = re.search(r"^otpauth://totp/okvm:alice\?secret=([A-Z2-7]{32})&issuer=okvm$", out, re.M)
check(r.returncode == 0 and m, "okvm totp --user alice prints an otpauth:// URI with a 160-bit "
      "secret")
secret = m.group(1)
text = open(conf).read()
alice = text.split("[user.alice]", 1)[1].split("[", 1)[0]
check(f"totp = {secret}" in alice, "the secret is stored in [user.alice]")
qr = [l for l in out.splitlines() if l and set(l) <= set(" \u2580\u2584\u2588")]
uri = m.group(0)
if shutil.which("qrencode"):
    ref = subprocess.run(["qrencode", "-t", "ASCII", "-l", "M", "-m", "2", "-o", "-", uri],
                         capture_output=True, text=True).stdout.splitlines()
    want = [[line[i] == "#" for i in range(0, len(line), 2)] for line in ref]
    got = qr_matrix(qr)
    check(len(qr) > 10 and got[:len(want)] == want and not any(any(r) for r in got[len(want):]),
          "the QR code drawn is the URI's (module for module as qrencode draws it)")
else:
    fail("qrencode (Debian package qrencode) is needed to check the QR code: "
         "scripts/install-deps --test")
r = okvm("totp", "--config", conf, "--user", "alice", "--show")
check(r.returncode == 0 and uri in r.stdout.decode(), "--show prints the stored one again")
r = okvm("totp", "--config", conf)
m2 = re.search(r"otpauth://totp/okvm:admin\?secret=([A-Z2-7]{32})", r.stdout.decode())
check(r.returncode == 0 and m2 and m2.group(1) != secret and
      f"totp = {m2.group(1)}" in open(conf).read().split("[user.", 1)[0],
      "okvm totp without --user is the [serve] admin's, with a secret of its own")
with Server("--config", conf) as s:
    check(s.alive(), "the server starts with TOTP secrets in the file")
r = okvm("totp", "--config", conf, "--user", "alice", "--remove")
r2 = okvm("totp", "--config", conf, "--user", "alice", "--show")
check(r.returncode == 0 and secret not in open(conf).read() and r2.returncode == 1,
      "--remove deletes it; --show then says there is none")
r = okvm("totp", "--config", conf, "--user", "nobody")
check(r.returncode == 1 and b"no user nobody" in r.stderr, "okvm totp for an unknown user fails")
check(mode(conf) == 0o600, "the file is still 0600 after all these edits")

# ---- a symbolic link as the config file ----

real = os.path.join(tmp, "real.conf")
link = os.path.join(tmp, "link.conf")
r = passwd(real, PW300)
os.symlink(real, link)
r = passwd(link, "through the link")
check(r.returncode == 0 and os.path.islink(link) and "password =" in open(real).read() and
      open(real).read().count("password =") == 1,
      "okvm passwd on a symbolic link writes the target and keeps the link")
dangling = os.path.join(tmp, "dangling.conf")
os.symlink(os.path.join(tmp, "nowhere", "okvm.conf"), dangling)
r = passwd(dangling, "through the link")
check(r.returncode == 1 and b"symbolic link" in r.stderr and os.path.islink(dangling),
      "a link to nothing is refused with a message; the link stays")

# ---- the per-user folder is tightened ----

os.makedirs(os.path.join(xdg, "okvm"))
os.chmod(os.path.join(xdg, "okvm"), 0o755)
r = okvm("passwd", stdin="per-user password\n")
mine = os.path.join(xdg, "okvm", "okvm.conf")
check(r.returncode == 0 and mode(os.path.dirname(mine)) == 0o700 and mode(mine) == 0o600,
      "okvm passwd tightens an existing 0755 per-user folder to 0700 (file 0600)")

# ---- a config other users may read ----

os.chmod(conf, 0o644)
r = okvm("serve", "--config", conf, "-d", "frames:x")
err = r.stderr.decode()
check(r.returncode == 1 and conf in err and f"chmod o-rwx {conf}" in err,
      "okvm serve refuses a world-readable config with a password, naming the file and the chmod")
os.chmod(conf, 0o640)
# The admin got a second factor above: without it, a login needs only the password.
okvm("totp", "--config", conf, "--remove")
with Server("--config", conf) as s:
    check(login(s, PW300) == 200, "group-readable (0640) is fine")

# ---- long lines ----

TOKEN = "t" * 256
long_conf = os.path.join(tmp, "long.conf")
with open(long_conf, "w") as f:
    f.write("# " + "c" * 4094 + "\n[serve]\nmetrics_token = " + TOKEN + "\n")
os.chmod(long_conf, 0o600)
with Server("--config", long_conf) as s:
    st, _, body = s.http("GET", "/metrics", headers={"Authorization": "Bearer " + TOKEN})
    check(st == 200 and b"okvm_serve" in body,
          "a 4096-character line and a 256-character metrics_token load, and the token works")

for line in (
        ("[serve]\nheader_timeout = 0\n", 2), ("[serve]\nauth = maybe\n", 2),
        ("[serve]\n\nserver_names = ok.example, not_ok\n", 3),
        ("[user.bob]\nrole = viewer\n", 1), ("[user.bob]\npassword = plain\nrole = viewer\n", 2)):
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write(line[0])
    r = okvm("serve", "--config", bad, "-d", "frames:x")
    if r.returncode != 1 or f"bad.conf:{line[1]}:".encode() not in r.stderr:
        fail(f"{line[0]!r}: no error naming line {line[1]}: {r.stderr!r}")
check(True, "bad values of the new keys and incomplete users fail naming the line")
