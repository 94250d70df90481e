"""Certificates for lab hosts (mailsim.tls.certs) and ``mailsim openssl``.

Real checks: cryptography says the key matches the certificate, Python's ssl
module loads the pair and completes a TLS handshake with the lab CA, the
listings equal what the real ``openssl`` prints for the same files (when it is
installed), and the same host on the same clock gives the same bytes.
"""
from __future__ import annotations

import datetime as dt
import io
import shutil
import socket
import ssl
import subprocess
import threading
import time
import tomllib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mailsim.cli import run_command
from mailsim.clock import DEFAULT_EPOCH, SimClock
from mailsim.host import init_host
from mailsim.tls import (LAB_CA_FILE, TLSError, check_pair, csr, describe, is_encrypted, issue,
                         load_ca, load_pair, make_ca, self_signed, sign, verify)
from mailsim.tls.keys import CA_KEYS, HOST_KEYS, key_index, lab_key, pool_file
from mailsim.tls.x509text import cert_text, csr_text

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")
REPO = Path(__file__).resolve().parents[1]
DAY = 86400


@pytest.fixture
def h(tmp_path):
    return init_host(tmp_path / "mx", hostname="mail.example.com", clock=SimClock())


@pytest.fixture
def ca(tmp_path, h):
    return make_ca(tmp_path / "ca", clock=h.clock)


def openssl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=30)


def cli(h, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = run_command(h.root, "openssl", list(argv), out, err)
    return rc, out.getvalue(), err.getvalue()


# -- the seed's one-liner ----------------------------------------------------------------------
def test_self_signed_is_the_seed_one_liner(h):
    f = self_signed(h)
    assert (f.key_file, f.cert_file) == ("/etc/postfix/tls/key.pem", "/etc/postfix/tls/cert.pem")
    assert f.key == h.root / "etc/postfix/tls/key.pem"
    assert f.key.stat().st_mode & 0o777 == 0o600
    assert f.cert.stat().st_mode & 0o777 == 0o644
    assert f.key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")   # -nodes: unencrypted
    assert not is_encrypted(f.key.read_bytes())
    info = describe(f.cert)
    assert info.subject == info.issuer == "CN = mail.example.com"
    assert info.self_signed and info.is_ca            # req -x509 uses v3_ca: CA:TRUE
    assert (info.key_type, info.key_bits, info.version) == ("RSA", 2048, 3)
    assert info.signature_algorithm == "sha256WithRSAEncryption"
    assert info.not_before == dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
    assert info.not_after - info.not_before == dt.timedelta(days=356)
    assert info.not_before_text == "Nov 25 09:00:00 2026 GMT"
    assert info.san == [] and info.names == ["mail.example.com"]
    assert f.settings() == {"smtpd_tls_cert_file": "/etc/postfix/tls/cert.pem",
                            "smtpd_tls_key_file": "/etc/postfix/tls/key.pem"}


def test_key_matches_certificate_per_cryptography(h):
    f = self_signed(h, "mx.example.org", san=["mx.example.org", "192.0.2.25"])
    key = serialization.load_pem_private_key(f.key.read_bytes(), None)
    cert = x509.load_pem_x509_certificate(f.cert.read_bytes())
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    cert.verify_directly_issued_by(cert)             # the self-signature is sound
    assert check_pair(f.key, f.cert)
    assert describe(f.cert).san == ["mx.example.org", "192.0.2.25"]


def test_dates_follow_the_host_clock(h):
    h.clock.advance(10 * DAY + 3600.75)
    info = describe(self_signed(h, days=7).cert)
    assert info.not_before == dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.timezone.utc)
    assert info.not_after_text == "Dec 12 10:00:00 2026 GMT"
    assert info.valid_at(h) and not info.valid_at(h.clock.now() + 8 * DAY)
    assert not info.valid_at(h.clock.now() - 1)


# -- determinism ----------------------------------------------------------------------------------
def _one_run(d: Path) -> dict[str, bytes]:
    h = init_host(d / "mx", hostname="mail.example.com", clock=SimClock())
    out = {}
    f = self_signed(h)
    out["key"], out["cert"] = f.key.read_bytes(), f.cert.read_bytes()
    ca = make_ca(d / "ca", clock=h.clock)
    g = issue(ca, h, names=["mail.example.com", "example.com"], cert="/etc/postfix/tls/lab.pem")
    out["ca"] = ca.cert_file.read_bytes()
    out["issued"] = g.cert.read_bytes()
    out["second"] = sign(ca, g.csr, days=30)          # ca.srl counts on
    out["srl"] = ca.serial_file.read_bytes()
    return out


def test_same_host_same_clock_same_bytes(tmp_path):
    a, b = _one_run(tmp_path / "a"), _one_run(tmp_path / "b")
    assert a == b
    assert describe(a["second"]).serial == describe(a["issued"]).serial + 1
    assert a["srl"] == f"{describe(a['second']).serial:X}\n".encode()


def test_saved_fingerprints(tmp_path):
    """A saved copy: what every run, on any machine, must give (new lab keys change it)."""
    run = _one_run(tmp_path)
    fps = {k: describe(run[k]).fingerprint for k in ("cert", "ca", "issued")}
    assert fps == SAVED_FINGERPRINTS


SAVED_FINGERPRINTS = {
    "cert": "68:DD:63:83:75:4E:0F:B1:CB:BB:E4:66:3B:93:F6:24:A3:B9:BA:A9:4E:18:8F:D0:C4:D4:43:65:C7:35:A7:25",
    "ca": "27:1E:2D:B6:EB:CA:71:85:50:8A:F7:14:5D:0D:D1:50:43:E3:95:EC:22:93:8B:61:CA:C9:91:D2:B8:57:6B:77",
    "issued": "1B:7D:CC:58:5A:29:12:90:A8:7D:41:A1:A2:BF:53:4E:53:7A:65:EE:11:A8:97:B0:A9:12:59:3D:A8:DD:97:88",
}


def test_fresh_keys_differ(h):
    a = self_signed(h, fresh=True, key="/etc/postfix/a.key", cert="/etc/postfix/a.pem")
    b = self_signed(h, fresh=True, key="/etc/postfix/b.key", cert="/etc/postfix/b.pem")
    assert a.key.read_bytes() != b.key.read_bytes()
    assert check_pair(a.key, a.cert) and not check_pair(a.key, b.cert)


def test_lab_key_pool():
    moduli = set()
    for ca_pool, n in ((False, HOST_KEYS), (True, CA_KEYS)):
        for i in range(n):
            text = pool_file(i, ca=ca_pool).read_bytes()
            assert text.startswith(b"-----BEGIN PRIVATE KEY-----")
            key = serialization.load_pem_private_key(text, None,
                                                     unsafe_skip_rsa_key_validation=True)
            assert key.key_size == 2048
            pn = key.private_numbers()                # a sound RSA key, cheaply checked
            n, e = pn.public_numbers.n, pn.public_numbers.e
            assert pn.p * pn.q == n and e == 65537
            assert pn.d * e % (pn.p - 1) == 1 and pn.d * e % (pn.q - 1) == 1
            moduli.add(n)
    assert len(moduli) == HOST_KEYS + CA_KEYS
    assert "NEVER USE THEM OUTSIDE THE LAB" in (pool_file(0).parent / "README.md").read_text()
    assert lab_key("Mail.Example.COM") is lab_key("mail.example.com")


def test_shipped_labs_give_each_host_its_own_key():
    labs = sorted((REPO / "data/labs").glob("*/lab.toml"))
    assert labs
    for p in labs:
        hosts = tomllib.loads(p.read_text()).get("hosts", [])
        names = [x.get("hostname") or x["name"] for x in hosts]
        keys = [key_index(n) for n in names]
        assert len(set(keys)) == len(keys), f"{p.parent.name}: two hosts share a lab key"


# -- the lab CA ----------------------------------------------------------------------------------
def test_make_ca_issue_and_install(h, ca, tmp_path):
    info = ca.info
    assert info.subject == "CN = mailsim Lab CA" and info.is_ca and info.self_signed
    assert info.not_after - info.not_before == dt.timedelta(days=3650)
    assert ca.key_file.stat().st_mode & 0o777 == 0o600
    f = issue(ca, h, names=["mail.example.com", "smtp.example.com"])
    assert f.cafile == LAB_CA_FILE == "/etc/ssl/certs/lab-ca.pem"
    assert f.ca.read_bytes() == ca.cert_file.read_bytes()
    assert f.csr.read_bytes().startswith(b"-----BEGIN CERTIFICATE REQUEST-----")
    leaf = describe(f.cert)
    assert leaf.issuer == "CN = mailsim Lab CA" and not leaf.self_signed and not leaf.is_ca
    assert leaf.san == ["mail.example.com", "smtp.example.com"]
    assert check_pair(f.key, f.cert)
    assert f.settings()["smtpd_tls_CAfile"] == f.settings()["smtp_tls_CAfile"] == LAB_CA_FILE
    # the CA can be found again where it was made
    again = load_ca(tmp_path / "ca", clock=h.clock)
    assert again.cert_file.read_bytes() == ca.cert_file.read_bytes()


def test_make_ca_on_a_host_or_lab(h):
    ca = make_ca(h)
    assert ca.cert_file == h.root / "root/ca/ca.crt" and ca.clock is h.clock

    class FakeLab:
        root, clock, hosts = h.root / "lab", h.clock, {}
    assert make_ca(FakeLab()).cert_file == h.root / "lab/ca/ca.crt"
    with pytest.raises(TLSError, match="make the CA first"):
        load_ca(h.root / "nowhere")


def test_csr_then_sign_like_openssl_x509_req(h, ca, tmp_path):
    path = csr(h, names=["mail.example.com", "example.com"])
    assert path == h.root / "etc/postfix/tls/req.csr"
    req = x509.load_pem_x509_csr(path.read_bytes())
    assert req.is_signature_valid
    assert req.subject.rfc4514_string() == "CN=mail.example.com"
    out = tmp_path / "signed.pem"
    pem = sign(ca, path, days=90, out=out)
    assert out.read_bytes() == pem
    info = describe(pem)
    assert info.san == ["mail.example.com", "example.com"]
    assert info.not_after - info.not_before == dt.timedelta(days=90)
    bare = describe(sign(ca, path, copy_extensions=False))     # openssl's default: no SAN
    assert bare.san == [] and bare.names == ["mail.example.com"]
    # csr() reuses an existing key, like -key
    self_signed(h, key="/etc/postfix/k.pem", cert="/etc/postfix/c.pem")
    p2 = csr(h, "other.example", key="/etc/postfix/k.pem", out="/etc/postfix/o.csr")
    assert check_pair(h.path("/etc/postfix/k.pem"), sign(ca, p2))


# -- Python's ssl module uses the files ------------------------------------------------------------
def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, name: str):
    a, b = socket.socketpair()
    a.settimeout(5)
    b.settimeout(5)
    result: dict = {}

    def serve():
        try:
            with server_ctx.wrap_socket(a, server_side=True) as s:
                result["server"] = s.version()
                s.sendall(b"220 ok\r\n")
        except (ssl.SSLError, OSError) as e:
            result["server_error"] = e

    t = threading.Thread(target=serve)
    t.start()
    try:
        with client_ctx.wrap_socket(b, server_hostname=name) as c:
            result["client"] = c.version()
            result["peer"] = c.getpeercert()
            result["data"] = c.recv(100)
    except ssl.SSLError as e:
        result["client_error"] = e
    finally:
        t.join(5)
        a.close()
        b.close()
    return result


def test_ssl_handshake_with_the_lab_ca(tmp_path):
    # real OpenSSL checks dates against the real clock: start the simulated one now
    h = init_host(tmp_path / "mx", hostname="mail.example.com",
                  clock=SimClock(start=time.time() - 3600))
    ca = make_ca(tmp_path / "ca", clock=h.clock)
    f = issue(ca, h, names=["mail.example.com"])
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(f.cert, f.key)            # ssl loads the pair (it checks they match)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(cafile=f.ca)
    client.verify_flags |= ssl.VERIFY_X509_STRICT    # Python 3.13's default is strict
    r = _handshake(server, client, "mail.example.com")
    assert "client_error" not in r, r
    assert r["data"] == b"220 ok\r\n" and r["client"].startswith("TLSv1.")
    assert dict(x[0] for x in r["peer"]["subject"]) == {"commonName": "mail.example.com"}
    assert verify(f.cert, f.ca, "mail.example.com", when=time.time()).postfix == "Verified"
    # and it refuses what verify() refuses
    r = _handshake(server, client, "mx.example.org")
    assert "Hostname mismatch" in str(r.get("client_error"))
    assert verify(f.cert, f.ca, "mx.example.org", when=time.time()).reason == "hostname mismatch"
    # (a lab key goes with the certificate's name: another name, another key)
    lone = self_signed(h, "lone.example.com", key="/etc/postfix/s.key", cert="/etc/postfix/s.pem")
    server2 = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server2.load_cert_chain(lone.cert, lone.key)
    r = _handshake(server2, client, "mail.example.com")
    assert "self-signed certificate" in str(r.get("client_error"))
    with pytest.raises(ssl.SSLError):
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(f.cert, lone.key)


# -- verify(): each reason in OpenSSL's words ----------------------------------------------------
def test_verify_reasons(h, ca, tmp_path):
    f = issue(ca, h)
    now = h.clock.now()
    ok = verify(f.cert, ca, "mail.example.com", when=h)
    assert ok.ok and str(ok) == "OK" and ok.postfix == "Verified"
    assert ok.chain == ["CN = mail.example.com", "CN = mailsim Lab CA"]
    assert verify(f.cert, ca, when=h).postfix == "Trusted"           # no name asked

    lone = self_signed(h, key="/etc/postfix/s.key", cert="/etc/postfix/s.pem")
    r = verify(lone.cert, ca, "mail.example.com", when=h)
    assert (r.code, r.reason, r.depth) == (18, "self-signed certificate", 0)
    assert str(r) == "error 18 at 0 depth lookup: self-signed certificate"
    assert r.postfix == "Untrusted"
    assert verify(lone.cert, lone.cert, "mail.example.com", when=h).ok   # trusted directly

    other = make_ca(tmp_path / "other", "Other CA", clock=h.clock)
    r = verify(f.cert, other, when=h)
    assert (r.code, r.reason) == (20, "unable to get local issuer certificate")
    assert verify(f.cert, None, when=h).reason == "unable to get local issuer certificate"

    r = verify(f.cert, ca, "mail.example.com", when=now + 366 * DAY)
    assert (r.code, r.reason, r.depth) == (10, "certificate has expired", 0)
    assert r.postfix == "Untrusted"
    r = verify(f.cert, ca, when=now - 60)
    assert (r.code, r.reason, r.depth) == (9, "certificate is not yet valid", 1)   # the CA first

    r = verify(f.cert, ca, "mx.example.org", when=h)
    assert (r.code, r.reason) == (62, "hostname mismatch")
    assert r.trusted and r.matched is False and r.postfix == "Trusted"

    # a certificate used as a CA that is none
    fake = sign(type(ca)(f.cert, f.key, h.clock), csr(h, "victim.example",
                key="/etc/postfix/v.key", out="/etc/postfix/v.csr"))
    r = verify(fake, [ca, f.cert], when=h)
    assert (r.code, r.reason, r.depth) == (24, "invalid CA certificate", 1)


def test_name_matching_rules(h, ca):
    f = issue(ca, h, names=["mail.example.com", "*.example.net", "192.0.2.25"])
    info = describe(f.cert)
    assert info.matches("MAIL.example.com.") and info.matches("mx.example.net")
    assert not info.matches("a.b.example.net") and not info.matches("example.net")
    assert info.matches("192.0.2.25") and not info.matches("192.0.2.26")
    assert info.matches(".example.com") and info.matches(["nope.example", "mail.example.com"])
    assert verify(f.cert, ca, "192.0.2.26", when=h).reason == "IP address mismatch"


# -- errors -------------------------------------------------------------------------------------------
def test_errors_are_clear(h, ca, tmp_path):
    with pytest.raises(TLSError, match=r"nope\.pem: no such file"):
        describe(tmp_path / "nope.pem")
    f = issue(ca, h)
    with pytest.raises(TLSError, match="certificate request .CSR., not a certificate"):
        describe(f.csr)
    with pytest.raises(TLSError, match="private key, not a certificate"):
        describe(f.key)
    enc = self_signed(h, "enc.example.com", key="/etc/postfix/enc.key",
                      cert="/etc/postfix/enc.pem", passphrase="secret")
    assert is_encrypted(enc.key.read_text()) and is_encrypted(enc.key.read_bytes())
    with pytest.raises(TLSError, match="encrypted .* Postfix needs an unencrypted key"):
        check_pair(enc.key, enc.cert)
    assert check_pair(enc.key, enc.cert, passphrase="secret")
    with pytest.raises(TLSError, match="bad decrypt"):
        check_pair(enc.key, enc.cert, passphrase="wrong")
    assert not check_pair(f.key, enc.cert)
    with pytest.raises(TLSError, match="key values mismatch"):
        load_pair(f.key, enc.cert)
    with pytest.raises(TLSError, match="no such file"):
        check_pair(tmp_path / "none.key", f.cert)
    with pytest.raises(TLSError, match="CA certificate and CA private key do not match"):
        sign(type(ca)(ca.cert_file, f.key, h.clock), f.csr)
    with pytest.raises(TLSError, match="unknown attribute 'XX'"):
        self_signed(h, subj="/XX=1/CN=x")
    with pytest.raises(TLSError, match="not in that format"):
        self_signed(h, subj="CN=x")


# -- the same listings as the real openssl ------------------------------------------------------------
@needs_openssl
def test_listings_equal_real_openssl(h, ca):
    files = [self_signed(h).cert,
             self_signed(h, subj='/C=NL/O=Acme, Inc./OU= x#/CN=M\u00fcller "q"',
                         san=["mail.example.com", "192.0.2.1", "2001:db8::1", "email:a@b.example"],
                         key="/etc/postfix/2.key", cert="/etc/postfix/2.pem").cert,
             ca.cert_file, issue(ca, h, names=["mail.example.com", "*.example.com"]).cert]
    for p in files:
        assert cert_text(x509.load_pem_x509_certificate(p.read_bytes())) == \
            openssl("x509", "-in", str(p), "-noout", "-text").stdout
        assert describe(p).text() + "\n" == openssl(
            "x509", "-in", str(p), "-noout", "-subject", "-issuer", "-dates",
            "-ext", "subjectAltName", "-fingerprint", "-sha256").stdout
    for p in (h.path("/etc/postfix/tls/req.csr"),
              csr(h, "bare.example", key="/etc/postfix/b.key", out="/etc/postfix/b.csr")):
        assert csr_text(x509.load_pem_x509_csr(p.read_bytes())) == \
            openssl("req", "-in", str(p), "-noout", "-text").stdout


@needs_openssl
def test_verify_agrees_with_real_openssl(h, ca, tmp_path):
    f = issue(ca, h)
    lone = self_signed(h, key="/etc/postfix/s.key", cert="/etc/postfix/s.pem")
    other = make_ca(tmp_path / "other", "Other CA", clock=h.clock)
    now = int(h.clock.now())
    cases = [(f.cert, ca.cert_file, "mail.example.com", now),
             (f.cert, ca.cert_file, "mx.example.org", now),
             (f.cert, ca.cert_file, None, now + 400 * DAY),
             (f.cert, ca.cert_file, None, now - 60),
             (f.cert, other.cert_file, None, now),
             (lone.cert, ca.cert_file, None, now),
             (lone.cert, lone.cert, None, now)]
    for cert, cafile, name, when in cases:
        args = ["verify", "-no-CApath", "-CAfile", str(cafile), "-attime", str(when)]
        args += ["-verify_hostname", name] if name else []
        real = openssl(*args, str(cert))
        mine = verify(cert, cafile, name, when)
        if mine.ok:
            assert real.returncode == 0, real
        else:
            assert real.returncode != 0
            assert str(mine) in real.stderr, (str(mine), real.stderr)


# -- mailsim openssl ------------------------------------------------------------------------------------
def test_cli_seed_one_liner_and_inspection(h):
    rc, out, err = cli(h, "req", "-nodes", "-x509", "-newkey", "rsa:2048", "-keyout",
                       "postfixkey.pem", "-out", "postfixcert.pem", "-days", "356")
    assert rc == 0 and out == ""
    assert "-subj /CN=mail.example.com" in err and "well-known lab key" in err
    key, cert = h.path("postfixkey.pem"), h.path("postfixcert.pem")
    assert key == h.root / "etc/postfix/postfixkey.pem" and key.stat().st_mode & 0o777 == 0o600
    assert check_pair(key, cert)
    # the same as the Python API
    api = self_signed(h, key="/tmp/k.pem", cert="/tmp/c.pem")
    assert cert.read_bytes() == api.cert.read_bytes()
    rc, out, _ = cli(h, "x509", "-in", "postfixcert.pem", "-noout", "-subject", "-issuer",
                     "-dates", "-ext", "subjectAltName", "-fingerprint", "-sha256")
    assert (rc, out) == (0, describe(cert).text() + "\n")
    rc, out, _ = cli(h, "x509", "-in", "/etc/postfix/postfixcert.pem", "-noout", "-text")
    assert out == describe(cert).openssl_text()
    rc, out, _ = cli(h, "x509", "-in", "postfixcert.pem", "-noout", "-serial", "-fingerprint")
    info = describe(cert)
    assert out == f"serial={info.serial_hex}\nSHA1 Fingerprint={info.sha1_fingerprint}\n"
    rc, out, _ = cli(h, "x509", "-in", "postfixcert.pem")
    assert out == cert.read_text()
    m1 = cli(h, "x509", "-in", "postfixcert.pem", "-noout", "-modulus")[1]
    m2 = cli(h, "rsa", "-in", "postfixkey.pem", "-noout", "-modulus")[1]
    assert m1 == m2 and m1.startswith("Modulus=")
    assert cli(h, "x509", "-in", "postfixcert.pem", "-noout", "-checkend", "86400")[:2] == \
        (0, "Certificate will not expire\n")
    assert cli(h, "x509", "-in", "postfixcert.pem", "-noout", "-checkend", str(400 * DAY))[:2] == \
        (1, "Certificate will expire\n")


def test_cli_own_ca_flow(h):
    assert cli(h, "req", "-x509", "-nodes", "-newkey", "rsa:2048", "-keyout", "/root/ca/ca.key",
               "-out", "/root/ca/ca.crt", "-days", "3650", "-subj", "/CN=Example Lab CA",
               "-addext", "keyUsage=critical,keyCertSign,cRLSign")[0] == 0
    rc, out, err = cli(h, "req", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", "tls/mx.key",
                       "-out", "tls/mx.csr", "-subj", "/CN=mail.example.com",
                       "-addext", "subjectAltName=DNS:mail.example.com,DNS:example.com")
    assert rc == 0
    rc, out, err = cli(h, "req", "-in", "tls/mx.csr", "-noout", "-subject", "-verify")
    assert (rc, out) == (0, "subject=CN = mail.example.com\n")
    assert err == "Certificate request self-signature verify OK\n"
    rc, out, err = cli(h, "x509", "-req", "-in", "tls/mx.csr", "-CA", "/root/ca/ca.crt",
                       "-CAkey", "/root/ca/ca.key", "-CAcreateserial", "-out", "tls/mx.crt",
                       "-days", "365", "-copy_extensions", "copy")
    assert (rc, out) == (0, "")
    assert err == "Certificate request self-signature ok\nsubject=CN = mail.example.com\n"
    info = describe(h.path("tls/mx.crt"))
    assert info.issuer == "CN = Example Lab CA" and info.san == ["mail.example.com", "example.com"]
    assert h.path("/root/ca/ca.srl").read_text() == info.serial_hex + "\n"
    rc, out, err = cli(h, "verify", "-CAfile", "/root/ca/ca.crt", "-verify_hostname",
                       "mail.example.com", "tls/mx.crt")
    assert (rc, out, err) == (0, "tls/mx.crt: OK\n", "")
    rc, out, err = cli(h, "verify", "-CAfile", "/root/ca/ca.crt", "-attime",
                       str(int(h.clock.now()) + 400 * DAY), "tls/mx.crt")
    assert (rc, out) == (2, "")
    assert err == ("CN = mail.example.com\nerror 10 at 0 depth lookup: certificate has expired\n"
                   "error tls/mx.crt: verification failed\n")
    rc, _, err = cli(h, "verify", "tls/mx.crt")
    assert rc == 2 and "error 20 at 0 depth lookup: unable to get local issuer certificate" in err
    # once the CA certificate is under /etc/ssl/certs, verify finds it by itself
    h.path("/etc/ssl/certs").mkdir(parents=True, exist_ok=True)
    shutil.copy(h.path("/root/ca/ca.crt"), h.path("/etc/ssl/certs/lab-ca.pem"))
    assert cli(h, "verify", "tls/mx.crt")[:2] == (0, "tls/mx.crt: OK\n")
    # without -copy_extensions the SAN is dropped, as openssl does
    cli(h, "x509", "-req", "-in", "tls/mx.csr", "-CA", "/root/ca/ca.crt", "-CAkey",
        "/root/ca/ca.key", "-CAcreateserial", "-out", "tls/bare.crt")
    bare = describe(h.path("tls/bare.crt"))
    assert bare.san == [] and bare.serial == info.serial + 1
    assert bare.not_after - bare.not_before == dt.timedelta(days=30)     # openssl's default


def test_cli_self_signed_cert_fails_verify(h):
    cli(h, "req", "-nodes", "-x509", "-newkey", "rsa:2048", "-keyout", "k.pem", "-out", "c.pem",
        "-subj", "/CN=mail.example.com")
    assert cli(h, "verify", "c.pem") == (
        2, "", "CN = mail.example.com\nerror 18 at 0 depth lookup: self-signed certificate\n"
               "error c.pem: verification failed\n")
    assert cli(h, "verify", "-CAfile", "c.pem", "c.pem")[:2] == (0, "c.pem: OK\n")


def test_cli_encrypted_key_and_stripping_it(h):
    rc, _, err = cli(h, "req", "-x509", "-newkey", "rsa:2048", "-keyout", "k.pem", "-out", "c.pem",
                     "-subj", "/CN=x")
    assert rc == 1 and "add -nodes (Postfix needs an unencrypted key)" in err
    assert cli(h, "req", "-x509", "-newkey", "rsa:2048", "-keyout", "k.pem", "-out", "c.pem",
               "-subj", "/CN=x", "-passout", "pass:secret")[0] == 0
    assert is_encrypted(h.path("k.pem").read_bytes())
    rc, _, err = cli(h, "req", "-new", "-key", "k.pem", "-out", "r.csr", "-subj", "/CN=x")
    assert rc == 1 and "encrypted" in err and "-passin pass:PHRASE" in err
    rc, _, err = cli(h, "rsa", "-in", "k.pem", "-out", "plain.pem", "-passin", "pass:wrong")
    assert rc == 1 and "bad decrypt" in err
    rc, _, err = cli(h, "rsa", "-in", "k.pem", "-out", "plain.pem", "-passin", "pass:secret")
    assert (rc, err) == (0, "writing RSA key\n")
    assert not is_encrypted(h.path("plain.pem").read_bytes())
    assert check_pair(h.path("plain.pem"), h.path("c.pem"))
    assert cli(h, "rsa", "-in", "plain.pem", "-check", "-noout")[:2] == (0, "RSA key ok\n")


def test_cli_errors(h, ca):
    rc, _, err = cli(h, "x509", "-in", "nope.pem", "-noout", "-subject")
    assert rc == 1 and err == ("Could not open file or uri for loading certificate from nope.pem\n"
                               "nope.pem: No such file or directory\nUnable to load certificate\n")
    f = issue(ca, h)
    rc, _, err = cli(h, "x509", "-in", f.csr_file, "-noout", "-subject")
    assert rc == 1 and "it is a certificate request" in err
    rc, _, err = cli(h, "x509", "-in", f.cert_file, "-inform", "DER")
    assert rc == 1 and err.startswith("x509: Unknown option or message digest: inform\n")
    assert "mailsim simulates these options: -in -out -req" in err
    rc, _, err = cli(h, "s_client", "-connect", "mx:25")
    assert rc == 1 and "Invalid command 's_client'" in err and "req, x509, verify" in err
    other = make_ca(h.root / "other", "Other CA", clock=h.clock)
    assert other.key_file == h.path("/other/ca.key")
    rc, _, err = cli(h, "x509", "-req", "-in", f.csr_file, "-CA", f.cafile, "-CAkey",
                     "/other/ca.key")
    assert rc == 1 and "CA certificate and CA private key do not match" in err
    rc, _, err = cli(h, "req", "-new", "-key", "k.pem", "-out")
    assert rc == 1 and err == "req: Option -out needs a value\n"
    rc, _, err = cli(h, "req", "-newkey", "ec", "-nodes", "-keyout", "k", "-subj", "/CN=x")
    assert rc == 1 and "RSA keys only" in err
    rc, _, err = cli(h, "x509", "-req", "-in", f.csr_file, "-CA", f.cafile, "-CAkey",
                     "/nope.key")
    assert rc == 1 and "Could not open file or uri for loading CA private key" in err
    assert cli(h, "help")[0] == 0 and "req -nodes -x509" in cli(h, "help")[1]


def test_cli_extfile_and_genrsa(h, ca):
    h.path("/root").mkdir(exist_ok=True)
    shutil.copy(ca.cert_file, h.path("/root/ca.crt"))
    shutil.copy(ca.key_file, h.path("/root/ca.key"))
    assert cli(h, "genrsa", "-out", "g.key", "2048")[0] == 0
    assert h.path("g.key").stat().st_mode & 0o777 == 0o600
    assert cli(h, "req", "-new", "-key", "g.key", "-out", "g.csr", "-subj", "/CN=g.example")[0] == 0
    h.path("ext.cnf").write_text("[v3]\nsubjectAltName = DNS:g.example, IP:192.0.2.7\n"
                                 "extendedKeyUsage = serverAuth, clientAuth\n")
    rc, _, err = cli(h, "x509", "-req", "-in", "g.csr", "-CA", "/root/ca.crt", "-CAkey",
                     "/root/ca.key", "-CAcreateserial", "-out", "g.crt", "-extfile", "ext.cnf",
                     "-extensions", "v3")
    assert rc == 0, err
    assert h.path("/root/ca.srl").is_file()
    info = describe(h.path("g.crt"))
    assert info.san == ["g.example", "192.0.2.7"]
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in info.openssl_text()
    assert verify(h.path("g.crt"), ca, "g.example", when=h).ok


def test_cli_is_registered():
    from mailsim.cli import COMMANDS
    assert COMMANDS["openssl"] == "mailsim.openssl_cmd:main"


def test_clock_default_epoch_is_what_notebooks_use():
    assert dt.datetime.fromtimestamp(DEFAULT_EPOCH, dt.timezone.utc) == \
        dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
