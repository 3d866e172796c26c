"""dist/okvm.service and the install steps of docs/serve.md "Running as a service", for real:
systemd-analyze verifies the unit and scores its sandbox offline (no systemd as PID 1 needed);
then the documented install is simulated: a system user okvm, its config folder root:okvm 0750,
`okvm passwd` as root, and `okvm serve` started as the service user with setpriv. The login must
work, the service user must not be able to change its own config, and a second `okvm passwd`
must keep all of that working.

Needs root (useradd, chown, setpriv) and systemd-analyze; exits 77 (skipped) without them. It
creates the system user okvm if there is none and removes it again afterwards."""
import grp
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

import http.client

from serve_util import FRAMES, OKVM, SRC, check, fail, free_port

OKVM = os.path.abspath(OKVM)
FRAMES = os.path.abspath(FRAMES)
SRC = os.path.abspath(SRC)

UNIT = os.path.join(SRC, "dist", "okvm.service")


def skip(why):
    print("SKIP:", why)
    sys.exit(77)


if os.geteuid() != 0:
    skip("needs root (a system user, chown, setpriv)")
for tool in ("systemd-analyze", "setpriv", "useradd"):
    if not shutil.which(tool):
        skip(f"{tool} is not installed (scripts/install-deps --test)")

tmp = tempfile.mkdtemp(prefix="okvm-service-")
os.chmod(tmp, 0o755)
# The checkout may sit in a folder only root can read (a clone in mktemp -d): give the service
# user its own copy of the frames.
frames_copy = os.path.join(tmp, "frames")
shutil.copytree(FRAMES, frames_copy)
for f in os.listdir(frames_copy):
    os.chmod(os.path.join(frames_copy, f), 0o644)
os.chmod(frames_copy, 0o755)
FRAMES = frames_copy

# ---- the unit file ----

unit = os.path.join(tmp, "okvm.service")
text = open(UNIT).read()
check("ExecStart=/usr/local/bin/okvm serve --config /etc/okvm/okvm.conf --auth always" in text,
      "the unit starts /usr/local/bin/okvm serve with /etc/okvm/okvm.conf and --auth always")
with open(unit, "w") as f:
    f.write(text.replace("/usr/local/bin/okvm", OKVM))
r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True)
check(r.returncode == 0 and "okvm.service" not in r.stderr + r.stdout,
      f"systemd-analyze verify finds nothing to say about it {r.stderr.strip()!r}")
r = subprocess.run(["systemd-analyze", "security", "--offline=yes", unit], capture_output=True,
                   text=True)
m = re.search(r"Overall exposure level for okvm\.service: ([0-9.]+)", r.stdout)
if not m:
    fail(f"no score from systemd-analyze security: {r.stdout[-500:]} {r.stderr}")
score = float(m.group(1))
check(score < 3.0, f"systemd-analyze security scores it {score} (below 3.0: OK)")
check("ReadWritePaths=/etc/okvm" not in text and "StateDirectory=okvm" in text,
      "the service cannot write /etc/okvm; its TLS pair goes to StateDirectory (/var/lib/okvm)")
# The groups the unit joins are those that own the unit's nodes (dist/60-okvm.rules, Debian).
rules = open(os.path.join(SRC, "dist", "60-okvm.rules")).read()
groups = re.search(r"^SupplementaryGroups=(.*)$", text, re.M).group(1).split()
check(set(re.findall(r'GROUP="(\w+)"', rules)) <= set(groups) and
      {"dialout", "video"} <= set(groups), f"SupplementaryGroups {groups} match the udev rules")
for g in groups:
    try:
        grp.getgrnam(g)
    except KeyError:
        fail(f"group {g} of SupplementaryGroups does not exist here (the unit would not start)")

# ---- the documented install, simulated ----

created_user = False
try:
    pwd.getpwnam("okvm")
except KeyError:
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "--user-group", "--groups", ",".join(groups), "okvm"], check=True)
    created_user = True
okvm_uid = pwd.getpwnam("okvm").pw_uid
okvm_gid = grp.getgrnam("okvm").gr_gid
etc_dirs = []


def as_okvm(*cmd):
    return ["setpriv", "--reuid", "okvm", "--regid", "okvm", "--init-groups", "--"] + list(cmd)


def owner(path):
    st = os.stat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def passwd(conf, pw, *extra):
    return subprocess.run([OKVM, "passwd", "--config", conf] + list(extra),
                          input=(pw + "\n").encode(), capture_output=True)


def start(conf):
    """okvm serve as the service user; returns (process, port) once it serves."""
    p = subprocess.Popen(as_okvm(OKVM, "serve", "--config", conf, "--auth", "always",
                                 "-d", f"frames:{FRAMES}@5"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
    line = p.stdout.readline().decode()
    if "serving on" not in line:
        p.wait(10)
        fail(f"okvm serve as okvm did not start: {line!r} {p.stderr.read().decode()}")
    return p, int(line.rsplit(":", 1)[1].strip().strip("/"))


def stop(p):
    p.send_signal(signal.SIGTERM)
    rc = p.wait(20)
    if rc != 0:
        fail(f"okvm serve exited with {rc}: {p.stderr.read().decode()[-1000:]}")


def login(port, pw):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("POST", "/api/login", body=("password=" + pw).encode())
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


try:
    # The folder as documented: install -d -o root -g okvm -m 0750 /etc/okvm
    etc = os.path.join(tmp, "etc", "okvm")
    os.makedirs(etc)
    os.chmod(os.path.dirname(etc), 0o755)
    r = subprocess.run(["install", "-d", "-o", "root", "-g", "okvm", "-m", "0750", etc])
    conf = os.path.join(etc, "okvm.conf")
    PW1, PW2 = "first service password", "second service password"
    r = passwd(conf, PW1)
    check(r.returncode == 0, "sudo okvm passwd --config .../okvm.conf")
    check(owner(conf) == (0, okvm_gid, 0o640),
          f"a new file in a folder of group okvm is root:okvm 0640 ({owner(conf)})")
    port = free_port()
    with open(conf, "a") as f:
        f.write(f"listen = 127.0.0.1:{port}\nauth = always\n")

    p, got_port = start(conf)
    check(got_port == port and login(port, PW1) == 200,
          "okvm serve runs as the service user from that file, and the login works")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("GET", "/api/state")
    st = c.getresponse().status
    c.close()
    check(st == 401, f"as the unit runs it (--auth always), loopback needs a login too ({st})")
    stop(p)

    r = subprocess.run(as_okvm("sh", "-c", f"echo 'password = x' >> '{conf}'"),
                       capture_output=True)
    r2 = subprocess.run(as_okvm(OKVM, "passwd", "--config", conf), input=b"attacker password\n",
                        capture_output=True)
    r3 = subprocess.run(as_okvm("sh", "-c", f"touch '{etc}/other'"), capture_output=True)
    check(r.returncode != 0 and r2.returncode != 0 and r3.returncode != 0 and
          "password = x" not in open(conf).read(),
          "the service user can neither change its config file nor add one to the folder")

    before = owner(conf), owner(etc)
    r = passwd(conf, PW2)
    check(r.returncode == 0 and (owner(conf), owner(etc)) == before,
          f"a second okvm passwd keeps the file root:okvm 0640 and the folder root:okvm 0750")
    p, _ = start(conf)
    check(login(port, PW2) == 200 and login(port, PW1) == 403,
          "the service starts again and takes the new password (not the old one)")
    stop(p)

    # An editor that left the file world-readable: the service refuses it and says why.
    os.chmod(conf, 0o644)
    r = subprocess.run(as_okvm(OKVM, "serve", "--config", conf, "-d", f"frames:{FRAMES}"),
                       capture_output=True, timeout=20, cwd="/")
    check(r.returncode == 1 and f"chmod o-rwx {conf}".encode() in r.stderr,
          "a world-readable config with a password is refused, naming the chmod to run")
    r = passwd(conf, PW2)
    check(r.returncode == 0 and owner(conf) == (0, okvm_gid, 0o640),
          "okvm passwd keeps the owner and group and takes the access of others away")

    # Under /etc, with no folder yet: `okvm passwd` makes it root:okvm 0750 itself.
    real_etc = tempfile.mkdtemp(prefix="okvm-test-", dir="/etc")
    etc_dirs.append(real_etc)
    conf2 = os.path.join(real_etc, "okvm", "okvm.conf")
    r = passwd(conf2, PW1)
    check(r.returncode == 0 and owner(os.path.dirname(conf2)) == (0, okvm_gid, 0o750) and
          owner(conf2) == (0, okvm_gid, 0o640),
          "okvm passwd --config /etc/.../okvm/okvm.conf creates the folder root:okvm 0750 "
          "and the file 0640")
finally:
    for d in etc_dirs:
        shutil.rmtree(d, ignore_errors=True)
    if created_user:
        subprocess.run(["userdel", "okvm"], capture_output=True)
        subprocess.run(["groupdel", "okvm"], capture_output=True)
    shutil.rmtree(tmp, ignore_errors=True)
