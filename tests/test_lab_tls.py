"""The shipped lab ``tls`` and lab.toml's TLS keys (``[lab] ca``, ``[hosts.tls]``).

The lab (data/labs/tls) is copied and driven as its header comment tells the
learner to, through the API (``Lab``) and the CLI (``mailsim lab``,
``mailsim --root HOST postconf/openssl``):

* mail.example.com at ``smtp_tls_security_level = verify`` delivers to
  mx1.example.org (a certificate from the lab CA) over verified TLS: the
  client's ``Verified TLS connection established to ...``, the server's
  ``Anonymous TLS connection established from ...`` and ``with ESMTPS``;
* to mx2.example.net (self-signed) the mail is deferred with ``Server
  certificate not verified``; at ``may`` (postconf -e, reload, flush) it goes
  out over ``Untrusted`` TLS;
* at ``encrypt`` towards a server with ``smtpd_tls_security_level = none``:
  ``TLS is required, but was not offered by host ...``.

The log lines and deferral reasons are the client's and server's, whose texts
were matched against real Postfix 3.7.11 (tests/test_smtp_tls.py,
tests/test_starttls.py).
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from mailsim.cli import main as mailsim_main
from mailsim.lab import Lab, LabError, parse_lab_toml
from mailsim.lab.cli import main as lab_main
from mailsim.tls import LAB_CA_FILE, describe, verify

TLS13 = ("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
         "server-signature RSA-PSS (2048 bits) server-digest SHA256")
VERIFIED_MX1 = f"Verified TLS connection established to mx1.example.org[127.0.0.3]:25: {TLS13}"
ANON_FROM_MAIL = f"Anonymous TLS connection established from mail.example.com[127.0.0.2]: {TLS13}"
UNTRUSTED_MX2 = f"Untrusted TLS connection established to mx2.example.net[127.0.0.4]:25: {TLS13}"
SELF_SIGNED = "certificate verification failed for mx2.example.net[127.0.0.4]:25: self-signed certificate"
NOT_VERIFIED = ("to=<carol@example.net>, relay=mx2.example.net[127.0.0.4]:25, delay=0, "
                "delays=0/0/0/0, dsn=4.7.5, status=deferred (Server certificate not verified)")
NOT_OFFERED = ("dsn=4.7.4, status=deferred (TLS is required, but was not offered by host "
               "mx2.example.net[127.0.0.4])")


def lab_cli(d: Path, *argv: str) -> tuple[int, str, str]:
    """``mailsim lab D ARGV...``: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    return lab_main(None, [str(d), *argv], out, err), out.getvalue(), err.getvalue()


def admin(capsys, host_dir: Path, *argv: str) -> str:
    """``mailsim --root HOST_DIR ARGV...`` (postconf, openssl ...): its stdout; it must succeed."""
    capsys.readouterr()
    assert mailsim_main(["--root", str(host_dir), *argv]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def one(lines: list[str], *needles: str) -> str:
    """The one log line that contains every needle."""
    hits = [ln for ln in lines if all(n in ln for n in needles)]
    assert len(hits) == 1, (needles, hits)
    return hits[0]


def after_reload(lines: list[str]) -> list[str]:
    """The log lines after the last ``postfix reload``."""
    i = max(i for i, ln in enumerate(lines) if "refreshing the Postfix mail system" in ln)
    return lines[i + 1:]


def received(mbox: str) -> list[str]:
    """The Received headers, newest first, each as one line."""
    return [re.sub(r"\s+", " ", h) for h in re.findall(r"^Received: .*(?:\n\s.*)*", mbox, re.M)]


# -- the lab's files --------------------------------------------------------------------------------
def test_the_lab_ca_signs_mx1_and_every_host_trusts_it(tmp_path):
    lab = Lab.init(tmp_path / "lab", from_lab="tls")
    ca = tmp_path / "lab/ca/ca.crt"
    assert describe(ca).subject == "CN = mailsim Lab CA"
    for name in ("mail", "mx1", "mx2"):                     # installed everywhere
        assert lab.hosts[name].path(LAB_CA_FILE).read_bytes() == ca.read_bytes()
    mx1 = lab.hosts["mx1"]
    cert = mx1.path("/etc/postfix/tls/cert.pem")
    info = describe(cert)
    assert (info.subject, info.issuer, info.names) == (
        "CN = mx1.example.org", "CN = mailsim Lab CA", ["mx1.example.org"])
    assert verify(cert, ca, name="mx1.example.org", when=mx1).ok
    assert oct(mx1.path("/etc/postfix/tls/key.pem").stat().st_mode & 0o777) == "0o600"
    assert mx1.conf["smtpd_tls_cert_file"] == "/etc/postfix/tls/cert.pem"
    assert mx1.conf["smtpd_tls_key_file"] == "/etc/postfix/tls/key.pem"
    assert mx1.conf["smtpd_tls_security_level"] == "may"
    assert lab.hosts["mail"].conf["smtp_tls_CAfile"] == LAB_CA_FILE
    assert lab.hosts["mail"].conf["smtp_tls_security_level"] == "verify"
    mx2 = lab.hosts["mx2"]
    info = describe(mx2.path("/etc/postfix/tls/cert.pem"))
    assert info.subject == info.issuer == "CN = mx2.example.net"
    assert "smtp_tls_CAfile" not in mx2.conf.explicit                    # only the cert and key
    r = verify(mx2.path("/etc/postfix/tls/cert.pem"), ca, name="mx2.example.net", when=mx2)
    assert not r.ok and r.reason == "self-signed certificate"


def test_the_certificates_are_the_same_in_every_copy(tmp_path):
    a = Lab.init(tmp_path / "a", from_lab="tls")
    b = Lab.init(tmp_path / "b", from_lab="tls")
    for rel in ("ca/ca.crt", "hosts/mx1/etc/postfix/tls/cert.pem",
                "hosts/mx2/etc/postfix/tls/cert.pem"):
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes(), rel
    # loading again keeps the CA (and the hosts' certificates)
    before = (a.root / "ca/ca.crt").read_bytes()
    Lab.load(a.root)
    assert (a.root / "ca/ca.crt").read_bytes() == before


# -- verify: mx1 verified, mx2 deferred ---------------------------------------------------------
def test_verified_tls_to_mx1(tmp_path):
    lab = Lab.init(tmp_path / "lab", from_lab="tls")
    assert lab.send("alice@example.com", "peter@example.org").ok
    mail, mx1 = lab.log("mail"), lab.log("mx1")
    one(mail, "postfix/smtp[", VERIFIED_MX1)
    one(mail, "to=<peter@example.org>, relay=mx1.example.org[127.0.0.3]:25",
        "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ")
    one(mx1, "postfix/smtpd[", ANON_FROM_MAIL)
    one(mx1, "disconnect from mail.example.com[127.0.0.2] ehlo=2 starttls=1 mail=1 rcpt=1 "
             "data=1 quit=1 commands=7")
    first = received(lab.mailbox("mx1", "peter"))[0]
    assert first.startswith(f"Received: from mail.example.com (mail.example.com [127.0.0.2]) "
                            f"(using {TLS13}) (No client certificate requested) "
                            "by mx1.example.org (Postfix) with ESMTPS id ")


def test_self_signed_mx2_is_deferred_at_verify_then_sent_at_may(tmp_path):
    lab = Lab.init(tmp_path / "lab", from_lab="tls")
    assert lab.send("alice@example.com", "carol@example.net").ok
    mail = lab.log("mail")
    one(mail, "postfix/smtp[", SELF_SIGNED)
    one(mail, "postfix/smtp[", UNTRUSTED_MX2)          # encrypted, but not good enough
    one(mail, NOT_VERIFIED)
    assert "(Server certificate not verified)" in lab.mailq("mail")
    assert lab.mailbox("mx2", "carol") == ""
    # postconf -e 'smtp_tls_security_level = may'; postfix reload; postqueue -f
    host = lab.hosts["mail"]
    from mailsim.cli import run_command
    assert run_command(host.root, "postconf", ["-e", "smtp_tls_security_level = may"],
                       out=io.StringIO(), err=io.StringIO()) == 0
    lab.reload("mail")
    lab.flush("mail")
    mail = after_reload(lab.log("mail"))
    one(mail, "postfix/smtp[", UNTRUSTED_MX2)
    one(mail, "to=<carol@example.net>, relay=mx2.example.net[127.0.0.4]:25",
        "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ")
    assert lab.mailq("mail") == "Mail queue is empty\n"
    assert "with ESMTPS id" in lab.mailbox("mx2", "carol")
    # at may, the lab CA's certificate is still checked -- and trusted
    assert lab.send("alice@example.com", "peter@example.org").ok
    one(lab.log("mail"), f"Trusted TLS connection established to mx1.example.org[127.0.0.3]:25: "
                         f"{TLS13}")


def test_encrypt_to_a_server_without_starttls(tmp_path):
    lab = Lab.init(tmp_path / "lab", from_lab="tls")
    from mailsim.cli import run_command
    for name, setting in (("mail", "smtp_tls_security_level = encrypt"),
                          ("mx2", "smtpd_tls_security_level = none")):
        assert run_command(lab.hosts[name].root, "postconf", ["-e", setting],
                           out=io.StringIO(), err=io.StringIO()) == 0
        lab.reload(name)
    assert lab.send("alice@example.com", "carol@example.net").ok
    one(lab.log("mail"), "to=<carol@example.net>, relay=mx2.example.net[127.0.0.4]:25",
        NOT_OFFERED)
    one(lab.log("mx2"), "disconnect from mail.example.com[127.0.0.2] ehlo=1 quit=1 commands=2")
    # encrypt does not check the certificate: the self-signed one is good enough
    assert lab.send("alice@example.com", "peter@example.org").ok
    one(lab.log("mail"), "Trusted TLS connection established to mx1.example.org[127.0.0.3]:25")
    assert run_command(lab.hosts["mx2"].root, "postconf", ["-e", "smtpd_tls_security_level = may"],
                       out=io.StringIO(), err=io.StringIO()) == 0
    lab.reload("mx2")
    lab.flush("mail")
    one(lab.log("mail"), UNTRUSTED_MX2)                   # only now: STARTTLS is back
    assert "with ESMTPS id" in lab.mailbox("mx2", "carol")


# -- the same through the CLI, as the lab's header says -----------------------------------------
def test_the_header_commands(tmp_path, capsys):
    d = tmp_path / "lab"
    assert lab_cli(d, "init", "--from", "tls")[0] == 0
    rc, out, err = lab_cli(d, "send", "--from", "alice@example.com", "--to", "peter@example.org")
    assert rc == 0, err
    assert VERIFIED_MX1 in lab_cli(d, "log", "mail")[1]
    assert ANON_FROM_MAIL in lab_cli(d, "log", "mx1")[1]
    assert "with ESMTPS id" in lab_cli(d, "mailbox", "mx1", "peter")[1]
    assert lab_cli(d, "send", "--from", "alice@example.com", "--to", "carol@example.net")[0] == 0
    assert "(Server certificate not verified)" in lab_cli(d, "mailq", "mail")[1]
    assert admin(capsys, d / "hosts/mx2", "openssl", "x509", "-in", "/etc/postfix/tls/cert.pem",
                 "-noout", "-subject", "-issuer") == (
        "subject=CN = mx2.example.net\nissuer=CN = mx2.example.net\n")
    admin(capsys, d / "hosts/mail", "postconf", "-e", "smtp_tls_security_level = may")
    assert lab_cli(d, "reload", "mail")[0] == 0
    assert lab_cli(d, "flush", "mail")[0] == 0
    log = lab_cli(d, "log", "mail")[1]
    assert UNTRUSTED_MX2 in log and SELF_SIGNED in log
    assert lab_cli(d, "mailq", "mail")[1] == "Mail queue is empty\n"
    assert "with ESMTPS id" in lab_cli(d, "mailbox", "mx2", "carol")[1]


# -- lab.toml's TLS keys ----------------------------------------------------------------------------
HOST = """
[[hosts]]
name = "mx"
address = "127.0.0.2"
hostname = "mx.example.org"
"""


@pytest.mark.parametrize("text, message", [
    ('[lab]\nca = 3\n' + HOST, "lab.toml:2: [lab] ca must be a string in quotes, not 3"),
    ('[lab]\nca = ""\n' + HOST, "lab.toml:2: [lab] ca is the lab CA's name"),
    (HOST + '[hosts.tls]\ncertificate = "ca"\n',
     'lab.toml:7: host "mx": certificate = "ca" needs a lab CA -- add ca = "mailsim Lab CA" '
     'to [lab] (or use "self-signed")'),
    (HOST + '[hosts.tls]\ncertificate = "snakeoil"\n',
     'lab.toml:7: host "mx": certificate = "snakeoil" -- write "ca"'),
    (HOST + '[hosts.tls]\ncertificate = "self-signed"\nkey = "x"\n',
     "lab.toml:8: unknown key 'key' in [hosts.tls] -- the keys are: certificate, names"),
    (HOST + '[hosts.tls]\nnames = ["mx.example.org"]\n',
     'lab.toml:7: host "mx": names without a certificate'),
    (HOST + '[hosts.tls]\ncertificate = "self-signed"\nnames = ["not a name"]\n',
     'lab.toml:8: host "mx": names is a list of host names'),
    (HOST + 'tls = "yes"\n', "lab.toml:6: tls must be a table: [hosts.tls]"),
])
def test_lab_toml_tls_errors(text, message):
    with pytest.raises(LabError) as e:
        parse_lab_toml(text)
    assert str(e.value).startswith(message), str(e.value)


def test_names_and_a_self_signed_certificate_in_a_lab_of_ones_own(tmp_path):
    d = tmp_path / "lab"
    d.mkdir()
    (d / "lab.toml").write_text('[lab]\nname = "own"\nca = "Example Teaching CA"\n' + HOST
                                + '[hosts.tls]\ncertificate = "ca"\n'
                                  'names = ["mx.example.org", "smtp.example.org"]\n'
                                + HOST.replace('"mx"', '"b"').replace("127.0.0.2", "127.0.0.3")
                                .replace("mx.example.org", "b.example.org")
                                + '[hosts.tls]\ncertificate = "self-signed"\n'
                                  'names = ["b.example.org", "b2.example.org"]\n')
    lab = Lab.load(d)
    info = describe(lab.hosts["mx"].path("/etc/postfix/tls/cert.pem"))
    assert (info.subject, info.issuer) == ("CN = mx.example.org", "CN = Example Teaching CA")
    assert info.names == ["mx.example.org", "smtp.example.org"]
    info = describe(lab.hosts["b"].path("/etc/postfix/tls/cert.pem"))
    assert info.subject == info.issuer == "CN = b.example.org"
    assert info.names == ["b.example.org", "b2.example.org"]
    assert lab.hosts["b"].path(LAB_CA_FILE).is_file()           # trusted, though not used
    # a host without [hosts.tls] in a lab without a CA: nothing TLS at all
    d2 = tmp_path / "plain"
    d2.mkdir()
    (d2 / "lab.toml").write_text(HOST)
    plain = Lab.load(d2)
    assert not plain.hosts["mx"].path("/etc/postfix/tls").exists()
    assert not plain.hosts["mx"].path(LAB_CA_FILE).exists()
    assert not (d2 / "ca").exists()
