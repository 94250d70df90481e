"""smtp(8) with TLS (STARTTLS in the client), against real Postfix 3.7.11.

tests/golden/smtp-tls/*.json were recorded by tools/record_smtp_tls.py: a
private real Postfix (mailsim.realpostfix) with the case's ``smtp_tls_*``
settings relayed a message from carol@real.example to a scripted SMTP server
(mailsim.smtp.peer) that offered STARTTLS (or not), answered it, and shook
hands with one of the certificates in tests/golden/smtp-tls/certs/ -- or
broke the handshake on purpose. Its log holds the TLS summary lines
(``Untrusted TLS connection established to ...``), the certificate
verification failures and the deferral reasons (``TLS is required, but was
not offered by host ...``, ``Cannot start TLS: handshake failure``, ``Server
certificate not verified``).

Here a mailsim host configured like that instance (its main.cf, the CA file
copied in) gets the same submission in process; its smtp(8) client delivers
to the same scripted server with the same certificate -- twice: over a real
loopback socket (``ssl.SSLContext.wrap_socket``) and in memory through an
engine channel (``ssl.MemoryBIO`` on both ends). Both must give Postfix's
log, line for line, and the same dialogue with the server (decrypted).

Then two simulated hosts: mailsim's smtp(8) to mailsim's smtpd (with its own
STARTTLS), in memory and over a socket to ``mailsim serve``; and the pieces
(policy tables, protocol ranges, the verification's choice of error).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from client_replay import PID, STAMP, init_like, mask_log, mask_remote, run_recorded  # noqa: E402
from conformance import GOLDEN, per_message  # noqa: E402

from mailsim.host import Host, init_host  # noqa: E402

REC = GOLDEN / "smtp-tls"
CERTS = REC / "certs"
CASES = sorted(p.stem for p in REC.glob("*.json"))


def build(rec: dict, root: Path) -> Host:
    """A host set up like the recording's instance: its main.cf (less its folders, the
    certificates' folder at /etc/postfix/tls), real.example's virtual mailboxes."""
    init_like(rec, root, CERTS)
    return Host(root)


def run(name: str, root: Path, mode: str):
    """Replay case ``name`` with the peer over a socket (``mode="socket"``) or in memory."""
    return run_recorded(REC / f"{name}.json", root, mode, build)


def test_the_recordings_are_here() -> None:
    assert len(CASES) == 34, CASES
    assert (CERTS / "certs.json").exists()


@pytest.mark.parametrize("mode", ["socket", "memory"])
@pytest.mark.parametrize("name", CASES)
def test_log(name: str, mode: str, tmp_path: Path) -> None:
    """Every log line is Postfix's (the TLS lines too), each message's in Postfix's order."""
    rec, host, _ = run(name, tmp_path / "h", mode)
    got, want = mask_log(host.log.lines), mask_log(rec["log"])
    assert sorted(got) == sorted(want)
    assert per_message(got) == per_message(want)


@pytest.mark.parametrize("mode", ["socket", "memory"])
@pytest.mark.parametrize("name", CASES)
def test_remote_dialogue(name: str, mode: str, tmp_path: Path) -> None:
    """What the server saw: STARTTLS or not, the handshake's outcome, EHLO again over TLS,
    the mail (decrypted), in the same writes."""
    rec, _, sessions = run(name, tmp_path / "h", mode)
    assert mask_remote(sessions) == mask_remote(rec["remote"])


# -- two simulated hosts, in memory: mailsim's smtp(8) and mailsim's smtpd ---------------------
def _lab(tmp: Path, client: dict[str, str], server: dict[str, str], *, ca_names=None,
         self_signed: bool = False):
    """Host a (client.example.net) delivers to b (mx.example.org, 127.0.0.2) in memory;
    b's certificate comes from a lab CA whose certificate a trusts (or is self-signed)."""
    from mailsim.queue import QueueFile, Recipient
    from mailsim.smtp import HostConnector, SMTPClient
    from mailsim.tls import certs
    a = init_host(tmp / "a", hostname="client.example.net")
    b = init_host(tmp / "b", hostname="mx.example.org")
    ca = certs.make_ca(tmp / "ca", clock=a.clock)
    if self_signed:
        files = certs.self_signed(b, "mx.example.org", san=["mx.example.org"])
        settings = files.settings()
    else:
        files = certs.issue(ca, b, names=ca_names or ["mx.example.org"])
        settings = files.settings()
    a.path(certs.LAB_CA_FILE).parent.mkdir(parents=True, exist_ok=True)
    a.path(certs.LAB_CA_FILE).write_bytes(ca.pem)
    with open(b.path("/etc/postfix/main.cf"), "a") as f:
        for k, v in {**settings, "smtpd_tls_loglevel": "1", "mydestination": "example.org",
                     **server}.items():
            f.write(f"{k} = {v}\n")
    with open(a.path("/etc/postfix/main.cf"), "a") as f:
        for k, v in {"smtp_tls_loglevel": "1", "smtp_tls_CAfile": certs.LAB_CA_FILE,
                     **client}.items():
            f.write(f"{k} = {v}\n")
    with open(a.path("/etc/hosts"), "a") as f:
        f.write("127.0.0.2\tmx.example.org\n")
    a, b = Host(a.root), Host(b.root)
    qf = QueueFile("4B2A1160001", "alice@example.net", [Recipient("root@example.org")],
                   a.clock.now(), b"Subject: hi\n\nhello\n")
    res = SMTPClient(a, connector=HostConnector({"127.0.0.2": b}, client_addr="127.0.0.3")) \
        .deliver(qf, qf.recipients, "[mx.example.org]", active=a.clock.now())
    strip = lambda lines: [STAMP.sub("", PID.sub(r"\1[PID]", ln)) for ln in lines]  # noqa: E731
    return res[0], strip(a.log.lines), strip(b.log.lines)


TLS13 = ("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
         "server-signature RSA-PSS (2048 bits) server-digest SHA256")


def test_lab_secure_in_memory(tmp_path: Path) -> None:
    """Both ends simulated, a real handshake through memory BIOs: the client verifies the
    lab CA's certificate for the next hop; the server sees STARTTLS and EHLO twice."""
    r, a_log, b_log = _lab(tmp_path, {"smtp_tls_security_level": "secure"},
                           {"smtpd_tls_security_level": "may"})
    assert r.status == "sent", r.text
    assert ("postfix/smtp[PID]: Verified TLS connection established to "
            f"mx.example.org[127.0.0.2]:25: {TLS13}") in a_log
    assert any("Anonymous TLS connection established from unknown[127.0.0.3]" in ln
               for ln in b_log)
    assert any("ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7" in ln for ln in b_log)


def test_lab_verify_wrong_name(tmp_path: Path) -> None:
    r, a_log, _ = _lab(tmp_path, {"smtp_tls_security_level": "verify"},
                       {"smtpd_tls_security_level": "may"}, ca_names=["mail.example.net"])
    assert (r.status, r.dsn, r.text) == ("deferred", "4.7.5", "Server certificate not verified")
    assert ("postfix/smtp[PID]: server certificate verification failed for "
            "mx.example.org[127.0.0.2]:25: num=62:hostname mismatch") in a_log
    assert any(ln.startswith("postfix/smtp[PID]: Untrusted TLS connection") for ln in a_log)


def test_lab_may_self_signed(tmp_path: Path) -> None:
    r, a_log, _ = _lab(tmp_path, {"smtp_tls_security_level": "may"},
                       {"smtpd_tls_security_level": "may"}, self_signed=True)
    assert r.status == "sent"
    assert ("postfix/smtp[PID]: Untrusted TLS connection established to "
            f"mx.example.org[127.0.0.2]:25: {TLS13}") in a_log


def test_lab_encrypt_not_offered(tmp_path: Path) -> None:
    r, _, _ = _lab(tmp_path, {"smtp_tls_security_level": "encrypt"},
                   {"smtpd_tls_security_level": "none"})
    assert (r.status, r.dsn, r.relay) == ("deferred", "4.7.4", "mx.example.org[127.0.0.2]:25")
    assert r.text == "TLS is required, but was not offered by host mx.example.org[127.0.0.2]"


# -- pieces ---------------------------------------------------------------------------------------
class _Conf(dict):
    def bool(self, k: str) -> bool:
        return self.get(k) == "yes"


def test_policy_maps_keys_and_errors() -> None:
    from mailsim.tls.client import _policy_keys, tls_policy
    assert _policy_keys("mail.example.org") == ["mail.example.org", ".example.org", ".org"]
    assert _policy_keys("[10.0.0.1]:2525") == ["[10.0.0.1]:2525"]
    table = {".example.org": "encrypt", "bad.example": "sometimes",
             "may.example": "may match=x.example"}
    look = table.get
    assert tls_policy(_Conf(smtp_tls_security_level="may"), "mx.example.org",
                      lookup=look).level == "encrypt"
    p = tls_policy(_Conf(), "bad.example", lookup=look)
    assert p.level == "invalid"
    assert p.notes == ['warning: smtp_tls_policy_maps, next-hop destination "bad.example": '
                       'invalid security level "sometimes"']
    p = tls_policy(_Conf(), "may.example", lookup=look)
    assert p.level == "invalid" and 'attribute "match" invalid at security level "may"' \
        in p.notes[0]
    assert tls_policy(_Conf(smtp_enforce_tls="yes", smtp_tls_enforce_peername="yes"),
                      "x").level == "verify"
    assert tls_policy(_Conf(smtp_enforce_tls="yes"), "x").level == "encrypt"
    assert tls_policy(_Conf(smtp_use_tls="yes"), "x").level == "may"
    p = tls_policy(_Conf(smtp_tls_security_level="dane-only"), "[x]:25")
    assert p.level == "invalid"


def test_protocol_range() -> None:
    from mailsim.tls.client import _protocol_range
    assert _protocol_range(">=TLSv1") == ("tlsv1", "tlsv1.3")
    assert _protocol_range("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1") == ("tlsv1.2", "tlsv1.3")
    assert _protocol_range(">=TLSv1.2 <=TLSv1.2") == ("tlsv1.2", "tlsv1.2")


def test_without_the_message_trace(tmp_path: Path, monkeypatch) -> None:
    """A Python without SSLContext._msg_callback: the summary line without the key
    exchange and the digest (what ssl itself tells)."""
    from mailsim.tls import client
    monkeypatch.setattr(client.HandshakeWatch, "attach", lambda self, ctx: None)
    _, a_log, _ = _lab(tmp_path, {"smtp_tls_security_level": "may"},
                       {"smtpd_tls_security_level": "may"}, self_signed=True)
    assert ("postfix/smtp[PID]: Untrusted TLS connection established to "
            "mx.example.org[127.0.0.2]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 "
            "(256/256 bits) server-signature RSA-PSS (2048 bits)") in a_log


def test_capath_needs_hashed_names(tmp_path: Path) -> None:
    from mailsim.tls.client import load_trust
    pem = (CERTS / "ca.pem").read_bytes()
    (tmp_path / "lab-ca.pem").write_bytes(pem)
    assert load_trust(None, tmp_path) == []
    (tmp_path / "1a2b3c4d.0").write_bytes(pem)
    assert len(load_trust(None, tmp_path)) == 1


def test_verify_picks_the_lowest_depth() -> None:
    """Postfix logs the first error at the lowest depth: a wrong name (depth 0) wins
    over an expired certificate found later at the same depth, and an unknown issuer
    of the leaf over everything."""
    import datetime as dt

    from cryptography import x509

    from mailsim.tls.client import verify_chain
    load = lambda n: x509.load_pem_x509_certificate((CERTS / n).read_bytes())  # noqa: E731
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert verify_chain([load("expired.pem")], [load("ca.pem")], [("localhost", False)],
                        now).code == 10
    assert verify_chain([load("expired.pem")], [load("ca.pem")], [("nope.example", False)],
                        now).code == 62
    assert verify_chain([load("mx.pem")], [], [("localhost", False)], now).code == 20
    assert verify_chain([load("mx-inter.pem"), load("inter.pem")], [load("ca.pem")],
                        [("mx.example.org", False)], now).code == 0


def test_socket_to_mailsim_serve(tmp_path: Path) -> None:
    """Over a real loopback socket to ``mailsim serve`` (mailsim's smtpd with STARTTLS):
    wrap_socket on the client side, the server's TLS engine on the other."""
    from conformance import ServerThread

    from mailsim.queue import QueueFile, Recipient
    from mailsim.smtp import SMTPClient
    from mailsim.tls import certs
    a = init_host(tmp_path / "a", hostname="client.example.net")
    b = init_host(tmp_path / "b", hostname="mx.example.org")
    files = certs.self_signed(b, "mx.example.org")
    with open(b.path("/etc/postfix/main.cf"), "a") as f:
        for k, v in {**files.settings(), "smtpd_tls_security_level": "may",
                     "mydestination": "example.org"}.items():
            f.write(f"{k} = {v}\n")
    with open(a.path("/etc/postfix/main.cf"), "a") as f:
        f.write("smtp_tls_security_level = encrypt\nsmtp_tls_loglevel = 1\n")
    a = Host(a.root)
    srv = ServerThread(b.root)
    try:
        qf = QueueFile("4B2A1160001", "alice@example.net", [Recipient("root@example.org")],
                       a.clock.now(), b"Subject: hi\n\nhello\n")
        r = SMTPClient(a).deliver(qf, qf.recipients, f"[127.0.0.1]:{srv.port}",
                                  active=a.clock.now())[0]
    finally:
        srv.close()
    assert r.status == "sent", r.text
    assert any(f"Untrusted TLS connection established to 127.0.0.1[127.0.0.1]:{srv.port}: "
               f"{TLS13}" in ln for ln in a.log.lines)
