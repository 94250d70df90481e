"""STARTTLS in smtpd (issue 6): replies, a real TLS handshake in-process and on sockets,
Postfix's log lines, the Received: header, CVE-2011-0411, key and configuration errors.

The recorded dialogues (tests/golden/postfix-3.7/tls-*.json) are replayed by
tests/test_conformance.py; here each reply and log line is checked on its own,
against the texts of those recordings and of Postfix 3.7.11's source.
"""
from __future__ import annotations

import datetime
import re
import shutil
import smtplib
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conformance import GOLDEN, build_host, load, tls_certificate, wait_for_file
from mailsim.serve import background
from mailsim.smtpd.client import EngineTLS, client_context

CERT = "/etc/postfix/tls/cert.pem"
KEY = "/etc/postfix/tls/key.pem"
TLS_CF = {"smtpd_tls_cert_file": CERT, "smtpd_tls_key_file": KEY, "smtpd_tls_loglevel": "1"}
EHLO_PLAIN = ["250-mail.example.com", "250-PIPELINING", "250-SIZE 10240000", "250-VRFY", "250-ETRN",
              "250-ENHANCEDSTATUSCODES", "250-8BITMIME", "250-DSN", "250-SMTPUTF8", "250 CHUNKING"]
EHLO_TLS = EHLO_PLAIN[:5] + ["250-STARTTLS"] + EHLO_PLAIN[5:]
SUMMARY = ("Anonymous TLS connection established from localhost[127.0.0.1]: TLSv1.3 with cipher "
           "TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS "
           "(2048 bits) server-digest SHA256")


def recorded(scenario: str) -> dict:
    return load(GOLDEN / "postfix-3.7" / f"{scenario}.json")


def tls_host(make_host, level="may", **cf):
    """A host with the recordings' main.cf and a self-signed RSA-2048 certificate."""
    h = make_host({**TLS_CF, "smtpd_tls_security_level": level, **cf})
    cert, key = tls_certificate()
    d = h.path("/etc/postfix/tls")
    d.mkdir(parents=True, exist_ok=True)
    (d / "cert.pem").write_bytes(cert)
    (d / "key.pem").write_bytes(key)
    return h


def smtpd_lines(host) -> list[str]:
    """The smtpd log lines without "Mon DD HH:MM:SS host postfix/smtpd[pid]: "."""
    return [l.split(": ", 1)[1] for l in host.log.lines if "postfix/smtpd[" in l]


def ec_key_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


# -- replies ------------------------------------------------------------------------------------
def test_level_none_offers_nothing_and_refuses(make_host):
    sc = recorded("tls-none")
    s = make_host({"smtpd_tls_security_level": "none"}).session()
    assert s.send("EHLO client.example.org").split("\n") == EHLO_PLAIN
    assert s.send("STARTTLS") + "\r\n" == sc["dialogue"][2]["reply"]
    assert s.send("STARTTLS now") == "501 5.5.4 Syntax: STARTTLS"     # the syntax check is first
    s.send("QUIT")


def test_default_level_is_off(host):
    s = host.session()
    assert "250-STARTTLS" not in s.send("EHLO client.example.org")
    assert s.send("STARTTLS") == "502 5.5.1 Error: command not implemented"


def test_may_replies_as_recorded(make_host):
    sc = recorded("tls-may")
    h = tls_host(make_host)
    s = h.session()
    assert s.send("EHLO client.example.org").split("\n") == EHLO_TLS
    assert s.starttls() + "\r\n" == sc["dialogue"][2]["reply"]
    assert (s.tls.version(), s.tls.cipher()[0]) == tuple(sc["dialogue"][2]["tls"].values())
    assert s.send("EHLO client.example.org").split("\n") == EHLO_PLAIN   # no STARTTLS any more
    assert s.send("STARTTLS") == "554 5.5.1 Error: TLS already active"
    assert s.send("STARTTLS x") == "501 5.5.4 Syntax: STARTTLS"
    assert s.send("QUIT") == "221 2.0.0 Bye"
    assert smtpd_lines(h)[1] == SUMMARY
    assert smtpd_lines(h)[-1] == ("disconnect from localhost[127.0.0.1] ehlo=2 starttls=1/3 quit=1 "
                                  "commands=4/6")


def test_encrypt_requires_starttls_first(make_host):
    h = tls_host(make_host, "encrypt")
    s = h.session()
    assert s.send("EHLO client.example.org").split("\n") == EHLO_TLS
    for cmd in ("MAIL FROM:<alice@example.com>", "RCPT TO:<peter@example.com>", "DATA", "RSET",
                "VRFY peter", "ETRN example.com", "BDAT 1 LAST", "AUTH PLAIN", "XFORWARD NAME=x"):
        assert s.send(cmd) == "530 5.7.0 Must issue a STARTTLS command first", cmd
    assert s.send("NOOP") == "250 2.0.0 Ok"
    assert s.send("HELO client.example.org") == "250 mail.example.com"
    assert s.send("STARTTLS now") == "501 5.5.4 Syntax: STARTTLS"
    assert s.starttls() == "220 2.0.0 Ready to start TLS"
    assert s.send("MAIL FROM:<alice@example.com>") == "250 2.1.0 Ok"
    s.close()


def test_encrypt_dialogue_and_log_as_recorded(make_host):
    sc = recorded("tls-encrypt")
    h = tls_host(make_host, "encrypt")
    s = h.session()
    for step in sc["dialogue"][1:]:
        line = step["send"].rstrip("\r\n")
        got = s.starttls() if step.get("starttls") else s.send(line)
        assert got.replace("\n", "\r\n") + "\r\n" == re.sub(r"queued as \w+", "queued as X", step["reply"])
    want = [l.split(": ", 1)[1] for l in sc["log"] if "postfix/smtpd[" in l]
    mask = lambda ls: [re.sub(r"^[0-9A-F]{10,}: ", "QID: ", l) for l in ls]
    assert mask(smtpd_lines(h)) == mask(want)


def test_smtp_state_is_reset_after_the_handshake(make_host):
    h = tls_host(make_host, smtpd_helo_required="yes")
    s = h.session()
    s.send("EHLO client.example.org")
    assert s.send("MAIL FROM:<alice@example.com>") == "250 2.1.0 Ok"
    assert s.starttls().startswith("220 ")
    # helo_reset(), mail_reset(): the client must say EHLO again, the transaction is gone
    assert s.send("MAIL FROM:<alice@example.com>") == "503 5.5.1 Error: send HELO/EHLO first"
    assert s.send("RCPT TO:<peter@example.com>") == "503 5.5.1 Error: need MAIL command"
    assert s.send("EHLO client.example.org").startswith("250-mail.example.com")
    assert s.send("MAIL FROM:<alice@example.com>") == "250 2.1.0 Ok"
    s.close()


def test_discarded_starttls_keyword(make_host):
    s = tls_host(make_host, smtpd_discard_ehlo_keywords="starttls").session()
    assert "STARTTLS" not in s.send("EHLO client.example.org")
    assert s.send("STARTTLS") == "502 5.5.1 Error: command not implemented"


@pytest.mark.parametrize("cf, offered, required", [
    ({"smtpd_use_tls": "yes"}, True, False),
    ({"smtpd_enforce_tls": "yes"}, True, True),
    ({"smtpd_use_tls": "yes", "smtpd_tls_security_level": "none"}, False, False),
    ({"smtpd_tls_security_level": "verify"}, True, True),
])
def test_legacy_parameters_and_other_levels(make_host, cf, offered, required):
    h = tls_host(make_host, level=cf.pop("smtpd_tls_security_level", ""), **cf)
    s = h.session()
    assert ("250-STARTTLS" in s.send("EHLO client.example.org")) is offered
    assert s.send("MAIL FROM:<a@example.com>").startswith("530 " if required else "250 ")
    if "verify" in h.conf.get("smtpd_tls_security_level"):
        assert ('warning: smtpd_tls_security_level: unsupported TLS level "verify", using "encrypt"'
                in smtpd_lines(h))


def test_invalid_level_is_fatal(make_host):
    h = tls_host(make_host, level="dane")
    e = h.smtpd()
    assert e.closed and e.greeting() == b""
    assert 'fatal: Invalid TLS level "dane"' in smtpd_lines(h)


# -- the handshake and what it leaves behind ----------------------------------------------------
def test_in_process_handshake_is_real_tls(make_host):
    h = tls_host(make_host)
    eng = h.smtpd()
    eng.greeting()
    eng.receive(b"EHLO client.example.org\r\n")
    assert eng.receive(b"STARTTLS\r\n") == b"220 2.0.0 Ready to start TLS\r\n"
    ctx = client_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ctx.wrap_bio(inc, out)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    hello = out.read()
    assert hello[:1] == b"\x16"                         # a TLS handshake record, not SMTP
    flight = eng.receive(hello)
    assert flight[:1] == b"\x16" and b"mail.example.com" not in flight[:100]
    inc.write(flight)
    client.do_handshake()
    inc.write(eng.receive(out.read()))                  # Finished; the server sends a ticket
    client.write(b"EHLO client.example.org\r\n")
    wire = eng.receive(out.read())
    assert wire[:1] == b"\x17" and b"250" not in wire   # application data, encrypted
    inc.write(wire)
    got = b""
    while True:
        try:
            got += client.read()
        except ssl.SSLWantReadError:
            break
    assert got.decode().replace("\r\n", "\n").rstrip("\n").split("\n") == EHLO_PLAIN
    assert client.version() == "TLSv1.3" and client.cipher()[0] == "TLS_AES_256_GCM_SHA384"
    # QUIT: 221 and the server's close_notify
    client.write(b"QUIT\r\n")
    inc.write(eng.receive(out.read()))
    assert client.read() == b"221 2.0.0 Bye\r\n"
    assert client.read() == b""                         # close_notify received
    assert eng.closed


def test_tls12_and_protocol_settings(make_host):
    h = tls_host(make_host, smtpd_tls_protocols="<=TLSv1.2")
    s = h.session()
    s.starttls()
    assert s.tls.version() == "TLSv1.2"
    # TLS 1.2: Postfix logs neither key exchange nor signature (tls_get_signature_params)
    assert smtpd_lines(h)[1] == ("Anonymous TLS connection established from localhost[127.0.0.1]: "
                                 f"TLSv1.2 with cipher {s.tls.cipher()[0]} (256/256 bits)")
    h2 = tls_host(make_host, smtpd_tls_protocols=">=TLSv1.3")
    s2 = h2.session()
    with pytest.raises(ssl.SSLError):
        s2.starttls(client_context(maximum=ssl.TLSVersion.TLSv1_2))
    assert s2.closed
    lines = smtpd_lines(h2)
    assert lines[-4] == "SSL_accept error from localhost[127.0.0.1]: -1"
    assert lines[-3] == ("warning: TLS library problem: error:0A000102:SSL routines::"
                         "unsupported protocol")
    assert lines[-2] == "lost connection after STARTTLS from localhost[127.0.0.1]"
    assert lines[-1] == "disconnect from localhost[127.0.0.1] starttls=0/1 commands=0/1"


def test_mandatory_protocols_apply_at_encrypt(make_host):
    h = tls_host(make_host, "encrypt", smtpd_tls_mandatory_protocols=">=TLSv1.2, <=TLSv1.2",
                 smtpd_tls_protocols=">=TLSv1.3")
    s = h.session()
    s.starttls()
    assert s.tls.version() == "TLSv1.2"


def test_ciphers_and_exclusions(make_host):
    h = tls_host(make_host, smtpd_tls_protocols="<=TLSv1.2", smtpd_tls_exclude_ciphers="AESGCM",
                 smtpd_tls_loglevel="2")
    s = h.session()
    s.starttls()
    assert "GCM" not in s.tls.cipher()[0]
    assert ('localhost[127.0.0.1]: TLS cipher list "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH:!AESGCM"'
            in smtpd_lines(h))


def test_invalid_cipher_grade_fails_after_220(make_host):
    h = tls_host(make_host, smtpd_tls_ciphers="strong")
    s = h.session()
    s.send("EHLO client.example.org")
    assert s.send("STARTTLS") == "220 2.0.0 Ready to start TLS"
    assert s.closed
    assert smtpd_lines(h)[-3:] == [
        'warning: localhost[127.0.0.1]: invalid cipher grade: "strong"',
        "lost connection after STARTTLS from localhost[127.0.0.1]",
        "disconnect from localhost[127.0.0.1] ehlo=1 starttls=0/1 commands=1/2"]


def test_received_header(make_host):
    for flag in ("no", "yes"):
        h = tls_host(make_host, smtpd_tls_received_header=flag)
        h.auto_deliver = False
        s = h.session()
        s.send("EHLO client.example.org")
        s.starttls()
        s.send("EHLO client.example.org")
        s.send("MAIL FROM:<alice@example.com>")
        s.send("RCPT TO:<peter@example.com>")
        s.send("DATA")
        qid = s.message("Subject: Over TLS\n\nHello\n").rsplit(" ", 1)[1]
        s.send("QUIT")
        from mailsim.queue import read_queue_file
        text = read_queue_file(h.spool / "incoming" / qid).content.decode()
        head = text.split("\n\tfor <", 1)[0]
        if flag == "no":      # as recorded (tls-may): only "with ESMTPS"
            assert head == ("Received: from client.example.org (localhost [127.0.0.1])\n"
                            f"\tby mail.example.com (Postfix) with ESMTPS id {qid}")
        else:                 # smtpd.c's comment lines
            assert head == ("Received: from client.example.org (localhost [127.0.0.1])\n"
                            "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n"
                            "\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\n"
                            "\t(No client certificate requested)\n"
                            f"\tby mail.example.com (Postfix) with ESMTPS id {qid}")


def test_recorded_mailbox_header(make_host):
    """tls-may's delivered message: ``with ESMTPS``, byte for byte but the queue id and time."""
    sc = recorded("tls-may")
    h = tls_host(make_host)
    s = h.session()
    for step in sc["dialogue"][1:]:
        if step.get("starttls"):
            s.starttls()
        else:
            s.send(step["send"].encode())
    box = h.path("/var/mail/peter").read_text()
    norm = lambda t: re.sub(r"\d\d:\d\d:\d\d|\d{4}|\w{3}, \d\d \w{3}", "T", re.sub(r"\b[0-9A-F]{11}\b", "QID", t))
    assert norm(box) == norm(sc["mailboxes"]["peter"])


def test_plaintext_after_starttls_is_discarded(make_host):
    """CVE-2011-0411: commands pipelined after STARTTLS in the same packet never run."""
    h = tls_host(make_host)
    eng = h.smtpd()
    eng.greeting()
    eng.receive(b"EHLO client.example.org\r\n")
    out = eng.receive(b"STARTTLS\r\nMAIL FROM:<evil@example.net>\r\nRCPT TO:<peter@example.com>\r\n")
    assert out == b"220 2.0.0 Ready to start TLS\r\n"
    tls = EngineTLS(eng)
    tls.handshake()
    assert tls.exchange(b"RCPT TO:<peter@example.com>\r\n") == b"503 5.5.1 Error: need MAIL command\r\n"
    tls.exchange(b"QUIT\r\n")
    lines = smtpd_lines(h)
    assert not any("evil" in l for l in lines)
    assert lines[-1] == ("disconnect from localhost[127.0.0.1] ehlo=1 starttls=1 rcpt=0/1 quit=1 "
                         "commands=3/4")


def test_garbage_instead_of_a_handshake(make_host):
    h = tls_host(make_host)
    eng = h.smtpd()
    eng.greeting()
    eng.receive(b"STARTTLS\r\n")
    assert eng.receive(b"EHLO client.example.org\r\n") == b""
    assert eng.closed
    assert smtpd_lines(h)[-4:] == [
        "SSL_accept error from localhost[127.0.0.1]: -1",
        "warning: TLS library problem: error:0A00010B:SSL routines::wrong version number",
        "lost connection after STARTTLS from localhost[127.0.0.1]",
        "disconnect from localhost[127.0.0.1] starttls=0/1 commands=0/1"]


def test_client_gone_during_handshake(make_host):
    h = tls_host(make_host)
    eng = h.smtpd()
    eng.greeting()
    eng.receive(b"STARTTLS\r\n")
    eng.lost()
    assert smtpd_lines(h)[-3:] == [
        "SSL_accept error from localhost[127.0.0.1]: lost connection",
        "lost connection after STARTTLS from localhost[127.0.0.1]",
        "disconnect from localhost[127.0.0.1] starttls=0/1 commands=0/1"]


def test_client_gone_after_the_handshake(make_host):
    h = tls_host(make_host)
    s = h.session()
    s.send("EHLO client.example.org")
    s.starttls()
    s.send("EHLO client.example.org")
    s.close()
    assert smtpd_lines(h)[-2:] == [
        "lost connection after EHLO from localhost[127.0.0.1]",
        "disconnect from localhost[127.0.0.1] ehlo=2 starttls=1 commands=3"]


@pytest.mark.parametrize("level, expected", [
    ("0", []),
    ("1", [SUMMARY]),
])
def test_loglevel_0_and_1(make_host, level, expected):
    h = tls_host(make_host, smtpd_tls_loglevel=level)
    s = h.session()
    s.starttls()
    s.send("QUIT")
    assert smtpd_lines(h)[1:-1] == expected


def test_loglevel_2_and_3(make_host):
    h = tls_host(make_host, smtpd_tls_loglevel="2")
    s = h.session()
    s.starttls()
    s.send("QUIT")
    lines = smtpd_lines(h)
    assert lines[0] == "initializing the server-side TLS engine"
    assert lines[1] == "connect from localhost[127.0.0.1]"
    assert lines[2] == "setting up TLS connection from localhost[127.0.0.1]"
    assert lines[3] == 'localhost[127.0.0.1]: TLS cipher list "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH"'
    states = [l for l in lines if l.startswith("SSL_accept:")]
    assert states[:3] == ["SSL_accept:before SSL initialization"] * 2 + ["SSL_accept:SSLv3/TLS read client hello"]
    assert "SSL_accept:TLSv1.3 write server certificate verify" in states
    assert states[-1] == "SSL_accept:SSLv3/TLS write session ticket"
    assert lines[-2] == SUMMARY
    h3 = tls_host(make_host, smtpd_tls_loglevel="3")
    s3 = h3.session()
    s3.starttls()
    s3.send("NOOP")
    dumps = [l for l in smtpd_lines(h3) if l.startswith(("read from", "write to"))]
    assert dumps[0].endswith("(5 bytes => 5 (0x5))")     # the ClientHello's record header
    assert any(re.match(r"0000 16 03 0[13] ", l) for l in smtpd_lines(h3))
    n = len(dumps)
    s3.send("NOOP")                                       # level 3: handshake packets only
    assert len([l for l in smtpd_lines(h3) if l.startswith(("read from", "write to"))]) == n


def test_unknown_loglevel_name(make_host):
    h = tls_host(make_host, smtpd_tls_loglevel="chatty")
    h.session().starttls()
    lines = smtpd_lines(h)
    assert 'warning: unknown smtpd_tls_loglevel value "chatty" in "chatty"' in lines
    assert not any("TLS connection established" in l for l in lines)


# -- keys, certificates, configuration errors: 454 and Postfix's warnings, never a traceback ------------
def _break(h, cert: bytes | None = None, key: bytes | None = None) -> None:
    d = h.path("/etc/postfix/tls")
    if cert is not None:
        (d / "cert.pem").write_bytes(cert)
    if key is not None:
        (d / "key.pem").write_bytes(key)


def _refused(h) -> list[str]:
    s = h.session()
    assert "250-STARTTLS" in s.send("EHLO client.example.org")   # still offered, as in Postfix
    assert s.send("STARTTLS") == "454 4.7.0 TLS not available due to local problem"
    assert s.send("MAIL FROM:<alice@example.com>") == "250 2.1.0 Ok"
    s.send("QUIT")
    lines = smtpd_lines(h)
    assert lines[-1] == ("disconnect from localhost[127.0.0.1] ehlo=1 starttls=0/1 mail=1 quit=1 "
                         "commands=3/4")
    return lines[:lines.index("connect from localhost[127.0.0.1]")]


def test_missing_key_file(make_host):
    h = tls_host(make_host)
    h.path(KEY).unlink()
    assert _refused(h) == [
        f'warning: cannot get RSA private key from file "{KEY}": disabling TLS support',
        "warning: TLS library problem: error:80000002:system library::No such file or directory"]


def test_missing_certificate_file(make_host):
    h = tls_host(make_host, smtpd_tls_cert_file="/etc/postfix/tls/nosuch.pem")
    h.path("/etc/postfix/tls/nosuch.pem").unlink(missing_ok=True)
    assert _refused(h) == [
        'warning: cannot get RSA certificate from file "/etc/postfix/tls/nosuch.pem": disabling TLS support',
        "warning: TLS library problem: error:80000002:system library::No such file or directory"]


def test_certificate_file_without_a_certificate(make_host):
    h = tls_host(make_host)
    _break(h, cert=b"this is no certificate\n")
    assert _refused(h) == [
        f'warning: cannot get RSA certificate from file "{CERT}": disabling TLS support',
        "warning: TLS library problem: error:0480006C:PEM routines::no start line"]


def test_key_that_does_not_match_the_certificate(make_host):
    h = tls_host(make_host)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _break(h, key=other)
    assert _refused(h) == [
        f'warning: cannot get RSA private key from file "{KEY}": disabling TLS support',
        "warning: TLS library problem: error:05800074:x509 certificate routines::key values mismatch"]


def test_encrypted_key(make_host):
    from cryptography.hazmat.primitives import serialization
    h = tls_host(make_host)
    key = serialization.load_pem_private_key(tls_certificate()[1], None)
    _break(h, key=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.BestAvailableEncryption(b"secret")))
    assert _refused(h) == [
        f'warning: cannot get RSA private key from file "{KEY}": disabling TLS support',
        "warning: TLS library problem: error:0A080009:SSL routines::PEM lib"]


def test_no_certificate_configured(make_host):
    h = make_host({"smtpd_tls_security_level": "may"})
    assert _refused(h) == ["warning: No server certs available. TLS won't be enabled"]


def test_invalid_protocol_list(make_host):
    h = tls_host(make_host, smtpd_tls_protocols=">=TLSv1.2, SSLv4")
    assert _refused(h) == [
        'warning: Invalid TLS protocol list ">=TLSv1.2, SSLv4": disabling TLS support']


def test_missing_ca_file(make_host):
    h = tls_host(make_host, smtpd_tls_CAfile="/etc/postfix/tls/ca.pem")
    assert _refused(h) == [
        'cannot load Certification Authority data, CAfile="/etc/postfix/tls/ca.pem": disabling TLS support',
        "warning: TLS library problem: error:80000002:system library::No such file or directory"]


def test_key_and_certificate_in_one_file(make_host):
    cert, key = tls_certificate()
    h = tls_host(make_host, smtpd_tls_key_file="$smtpd_tls_cert_file")
    _break(h, cert=key + cert)
    s = h.session()
    assert s.starttls().startswith("220 ")
    s.send("QUIT")
    assert SUMMARY in smtpd_lines(h)
    h2 = tls_host(make_host, smtpd_tls_key_file="$smtpd_tls_cert_file")      # no key in it
    assert _refused(h2) == [
        f"warning: No private key found in {CERT}",
        f"warning: error loading private keys and certificates from: {CERT}: disabling TLS support"]
    h3 = tls_host(make_host, smtpd_tls_key_file="$smtpd_tls_cert_file")
    _break(h3, cert=ec_key_pem() + cert)
    assert _refused(h3) == [
        f"warning: key at index 1 in {CERT} does not match next certificate",
        f"warning: error loading private keys and certificates from: {CERT}: disabling TLS support"]


def test_init_warnings_are_logged_once_per_process(make_host):
    h = make_host({"smtpd_tls_security_level": "may"})
    for _ in range(2):
        h.session().send("QUIT")
    # in-process every session is an smtpd process of its own
    assert sum("No server certs available" in l for l in h.log.lines) == 2


# -- real sockets: mailsim serve with smtplib, openssl s_client and swaks -----------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    sc = {"id": "tls", "users": ["peter", "alice"],
          "main_cf": {**TLS_CF, "smtpd_tls_security_level": "may", "smtpd_tls_received_header": "yes"},
          "files": {"aliases": "postmaster: root\nroot: peter\n"}}
    h = build_host(sc, tmp_path_factory.mktemp("tls") / "mx")
    with background(h.root, processes=1) as port:
        yield h, port


def test_smtplib_starttls_on_a_socket(served):
    h, port = served
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.example.org")
        assert c.has_extn("starttls")
        code, msg = c.starttls(context=client_context())
        assert (code, msg) == (220, b"2.0.0 Ready to start TLS")
        assert c.sock.version() == "TLSv1.3" and c.sock.cipher()[0] == "TLS_AES_256_GCM_SHA384"
        c.ehlo("client.example.org")
        assert not c.has_extn("starttls")
        assert c.docmd("STARTTLS") == (554, b"5.5.1 Error: TLS already active")
        assert c.sendmail("alice@example.com", ["peter@example.com"],
                          b"Subject: socket tls\r\n\r\nhello over tls\r\n") == {}
    box = wait_for_file(h.path("/var/mail/peter"), b"hello over tls").decode()
    assert "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n" in box
    assert re.search(r"with ESMTPS id [0-9A-F]+\n\tfor <peter@example.com>", box)
    log = h.path("/var/log/postfix.log").read_text()
    assert SUMMARY in log


def test_socket_and_in_process_agree(served, make_host):
    """The same engine: the same protocol, cipher and summary line either way."""
    h, port = served
    s = tls_host(make_host).session()
    s.starttls()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("x")
        c.starttls(context=client_context())
        assert (c.sock.version(), c.sock.cipher()) == (s.tls.version(), s.tls.cipher())


def test_plaintext_injection_on_a_socket(served):
    import socket
    h, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.recv(1000)
        raw.sendall(b"EHLO x\r\n")
        time.sleep(0.2)
        raw.recv(1000)
        raw.sendall(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.net>\r\n")
        time.sleep(0.3)
        assert raw.recv(1000) == b"220 2.0.0 Ready to start TLS\r\n"
        tls = client_context().wrap_socket(raw)
        tls.sendall(b"RCPT TO:<peter@example.com>\r\n")
        assert tls.recv(1000) == b"503 5.5.1 Error: need MAIL command\r\n"
        tls.sendall(b"QUIT\r\n")
        tls.recv(1000)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")
def test_openssl_s_client_starttls(served):
    h, port = served
    r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{port}",
                        "-brief", "-crlf", "-ign_eof"], input="EHLO client.example.org\nQUIT\n",
                       capture_output=True, text=True, timeout=30)
    out = r.stdout + r.stderr
    assert "Protocol version: TLSv1.3" in out, out
    assert "Ciphersuite: TLS_AES_256_GCM_SHA384" in out, out
    assert "250-mail.example.com" in out and "250-STARTTLS" not in out, out
    assert "221 2.0.0 Bye" in out, out


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed (apt-get install swaks)")
def test_swaks_tls(served):
    h, port = served
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--tls", "--from", "alice@example.com",
                        "--to", "peter@example.com", "--helo", "client.example.org",
                        "--body", "hello from swaks over tls"], capture_output=True, text=True, timeout=30)
    if "Net::SSLeay" in r.stdout + r.stderr and r.returncode != 0:
        pytest.skip("swaks lacks TLS support (apt-get install libnet-ssleay-perl)")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<-  220 2.0.0 Ready to start TLS" in r.stdout
    assert "=== TLS started with cipher TLSv1.3:TLS_AES_256_GCM_SHA384:256" in r.stdout
    assert " ~> EHLO client.example.org" in r.stdout          # " ~>": sent encrypted
    assert "<~  250 2.0.0 Ok: queued as" in r.stdout
    wait_for_file(h.path("/var/mail/peter"), b"hello from swaks over tls")


def test_ecdsa_certificate_and_chain_files(make_host):
    """An ECDSA certificate (smtpd_tls_eccert_file), and keys in smtpd_tls_chain_files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.example.com")])
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(2).not_valid_before(start).not_valid_after(start + datetime.timedelta(days=9999))
            .sign(key, hashes.SHA256())).public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    for cf in ({"smtpd_tls_eccert_file": "/etc/postfix/ec.pem", "smtpd_tls_eckey_file": "/etc/postfix/ec.key"},
               {"smtpd_tls_cert_file": "", "smtpd_tls_chain_files": "/etc/postfix/ec.key /etc/postfix/ec.pem"}):
        h = make_host({"smtpd_tls_security_level": "may", "smtpd_tls_loglevel": "1", **cf})
        h.path("/etc/postfix/ec.pem").write_bytes(cert)
        h.path("/etc/postfix/ec.key").write_bytes(key_pem)
        s = h.session()
        assert s.starttls().startswith("220 ")
        assert smtpd_lines(h)[1].endswith("key-exchange X25519 server-signature ECDSA (prime256v1) "
                                          "server-digest SHA256")
    h = make_host({"smtpd_tls_security_level": "may",
                   "smtpd_tls_chain_files": "/etc/postfix/ec.pem /etc/postfix/ec.key"})
    h.path("/etc/postfix/ec.pem").write_bytes(cert)
    h.path("/etc/postfix/ec.key").write_bytes(key_pem)
    assert _refused(h) == [
        "warning: error loading chain from /etc/postfix/ec.pem: key not first",
        "warning: error loading private keys and certificates from: /etc/postfix/ec.pem "
        "/etc/postfix/ec.key: disabling TLS support"]


def test_sendmail_bs_cannot_read_the_keys(make_host):
    """``sendmail -bs`` runs smtpd as the user, who may not read the keys: STARTTLS is
    offered (smtpd_tls_security_level says so) but answers 454, as in Postfix."""
    from mailsim.sendmail import sendmail
    h = tls_host(make_host)
    rc, out, _ = sendmail(h, ["-bs"], b"EHLO client.example.org\r\nSTARTTLS\r\nQUIT\r\n", user="alice")
    assert "250-STARTTLS" in out
    assert "454 4.7.0 TLS not available due to local problem" in out
    assert not any("warning" in l for l in h.log.lines)


def test_bad_boolean_is_fatal_not_a_traceback(make_host):
    h = tls_host(make_host, smtpd_tls_received_header="maybe")
    e = h.smtpd()
    assert e.closed
    assert ("bad boolean configuration: smtpd_tls_received_header = maybe"
            in smtpd_lines(h)[-1]), smtpd_lines(h)
