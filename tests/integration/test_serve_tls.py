#!/usr/bin/env python3
"""okvm serve's TLS: the self-signed key is never written through a symlink and always ends
0600; a bad certificate or key is named in one stderr line with exit 1 (not "the port is in
use"); TLS 1.2 offers AEAD suites only (CBC refused), TLS 1.3 works; a key file readable by
group or others gets a warning. Keys are made with the openssl tool; handshakes use
`openssl s_client`."""
import os
import stat
import subprocess
import tempfile

from serve_util import Server, check, fail

tmp = tempfile.mkdtemp(prefix="okvm-tls-")


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), capture_output=True, timeout=60)
    if r.returncode:
        fail(f"openssl {' '.join(args)}: {r.stderr.decode()}")


def make_pair(name, newkey, *pkeyopt):
    crt, key = os.path.join(tmp, name + ".crt"), os.path.join(tmp, name + ".key")
    openssl("req", "-x509", "-newkey", newkey, *pkeyopt, "-nodes", "-keyout", key, "-out", crt,
            "-subj", "/CN=localhost", "-days", "2")
    os.chmod(key, 0o600)
    return crt, key


def config(name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write("[serve]\n" + text)
    os.chmod(path, 0o600)  # a config readable by others gets a warning line of its own
    return path


def start_fails(*args):
    """Run a server that must not start; returns its stderr lines."""
    s = Server(*args, expect_fail=True)
    try:
        rc = s.proc.wait(30)
    except subprocess.TimeoutExpired:
        s.stop()
        fail(f"the server started with {args}")
    lines = s.errors().strip().splitlines()
    s.stop()
    if rc != 1:
        fail(f"exit {rc} (want 1) with {args}: {lines}")
    return lines


def one_line(lines, *words):
    return (len(lines) == 1 and all(w in lines[0] for w in words)
            and "port is in use" not in lines[0])


# ---- the self-signed pair ----

d = os.path.join(tmp, "tls-link")
os.mkdir(d, 0o700)
victim = os.path.join(tmp, "victim.txt")
with open(victim, "w") as f:
    f.write("precious\n")
os.chmod(victim, 0o644)
os.symlink(victim, os.path.join(d, "okvm-selfsigned.key"))
lines = start_fails("--config", config("link.conf", f"tls_dir = {d}\n"), "--tls-self-signed")
check(one_line(lines, "okvm-selfsigned.key", "symlink"),
      f"a symlink at the self-signed key path is refused in one line: {lines}")
check(open(victim).read() == "precious\n" and stat.S_IMODE(os.stat(victim).st_mode) == 0o644,
      "the symlink's target is untouched")
check(os.path.islink(os.path.join(d, "okvm-selfsigned.key")), "the symlink is left as it was")

d = os.path.join(tmp, "tls-0644")
os.mkdir(d, 0o700)
key = os.path.join(d, "okvm-selfsigned.key")
with open(key, "w") as f:
    f.write("left over\n")
os.chmod(key, 0o644)
with Server("--config", config("0644.conf", f"tls_dir = {d}\n"), "--tls-self-signed") as s:
    check(s.url.startswith("https://"), "--tls-self-signed starts over a left-over 0644 key")
check(stat.S_IMODE(os.stat(key).st_mode) == 0o600 and "PRIVATE KEY" in open(key).read(),
      "the new self-signed key replaced the 0644 file and is 0600")
check(sorted(os.listdir(d)) == ["okvm-selfsigned.crt", "okvm-selfsigned.key"],
      f"no temporary files are left in tls_dir: {os.listdir(d)}")

# ---- a bad pair is named in one line, exit 1 ----

rsa_crt, rsa_key = make_pair("rsa2048", "rsa:2048")
ec_crt, ec_key = make_pair("ec", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")
small_crt, small_key = make_pair("rsa1024", "rsa:1024")

lines = start_fails("--tls-cert", small_crt, "--tls-key", small_key)
check(one_line(lines, "too small", small_key, "1024"),
      f"an RSA-1024 key: 'too small', exit 1: {lines}")
lines = start_fails("--tls-cert", rsa_crt, "--tls-key", ec_key)
check(one_line(lines, "does not match", ec_key, rsa_crt),
      f"a key that does not match the certificate: exit 1: {lines}")
missing = os.path.join(tmp, "missing.key")
lines = start_fails("--tls-cert", rsa_crt, "--tls-key", missing)
check(one_line(lines, "does not exist", missing), f"a missing key file: exit 1: {lines}")
missing = os.path.join(tmp, "missing.crt")
lines = start_fails("--tls-cert", missing, "--tls-key", rsa_key)
check(one_line(lines, "does not exist", missing), f"a missing certificate: exit 1: {lines}")
lines = start_fails("--tls-cert", rsa_key, "--tls-key", rsa_key)
check(one_line(lines, "not a PEM certificate", rsa_key),
      f"a key given as the certificate: exit 1: {lines}")
lines = start_fails("--config", config("small.conf",
                    f"tls_cert = {small_crt}\ntls_key = {small_key}\n"))
check(one_line(lines, "too small"), f"the same from tls_cert/tls_key in the config: {lines}")


# ---- the cipher policy ----

def handshake(port, *args):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief"]
                       + list(args), input=b"", capture_output=True, timeout=30)
    out = (r.stdout + r.stderr).decode(errors="replace")
    suite = [l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Ciphersuite")]
    return r.returncode == 0 and bool(suite), suite[0] if suite else out.strip()[-200:]


with Server("--tls-cert", rsa_crt, "--tls-key", rsa_key) as s:
    errs = s.errors()
    check("readable by group" not in errs, f"a 0600 key gets no warning: {errs!r}")
    for cbc in ("AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384",
                "AES256-GCM-SHA384"):
        ok, what = handshake(s.port, "-tls1_2", "-cipher", cbc)
        check(not ok, f"TLS 1.2 with {cbc} (CBC or no ECDHE) is refused ({what})")
    for aead in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                 "ECDHE-RSA-CHACHA20-POLY1305"):
        ok, what = handshake(s.port, "-tls1_2", "-cipher", aead)
        check(ok and what == aead, f"TLS 1.2 with {aead} works ({what})")
    ok, what = handshake(s.port, "-tls1_3")
    check(ok and what.startswith("TLS_"), f"TLS 1.3 works ({what})")
    ok, what = handshake(s.port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
    check(not ok, f"TLS 1.1 is refused ({what})")

with Server("--tls-cert", ec_crt, "--tls-key", ec_key) as s:
    ok, what = handshake(s.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA")
    check(not ok, f"an EC key: TLS 1.2 CBC is refused ({what})")
    ok, what = handshake(s.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    check(ok and what == "ECDHE-ECDSA-AES128-GCM-SHA256", f"an EC key: TLS 1.2 AES-GCM ({what})")

# ---- key files readable by others ----

os.chmod(ec_key, 0o640)
with Server("--tls-cert", ec_crt, "--tls-key", ec_key) as s:
    errs = [l for l in s.errors().splitlines() if "readable by group" in l]
    check(len(errs) == 1 and ec_key in errs[0] and "chmod 600" in errs[0],
          f"a group-readable --tls-key warns, naming the file and chmod 600: {s.errors()!r}")
os.chmod(ec_key, 0o604)
with Server("--config", config("ec.conf", f"tls_cert = {ec_crt}\ntls_key = {ec_key}\n")) as s:
    errs = [l for l in s.errors().splitlines() if "readable by group" in l]
    check(len(errs) == 1 and ec_key in errs[0] and "chmod 600" in errs[0],
          f"a world-readable tls_key from the config warns: {s.errors()!r}")
print("ok: all")
