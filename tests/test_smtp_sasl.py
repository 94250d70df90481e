"""smtp(8) with SASL AUTH to a smarthost, against real Postfix 3.7.11.

tests/golden/smtp-sasl/*.json were recorded by tools/record_smtp_sasl.py: a
private real Postfix (mailsim.realpostfix) with ``smtp_sasl_auth_enable = yes``,
a ``hash:`` password table made by the real postmap and the case's other
``smtp_sasl_*`` settings relayed a message from carol@real.example to a
scripted SMTP server (mailsim.smtp.peer) that offered ``AUTH ...`` (or not)
and answered PLAIN, LOGIN and CRAM-MD5 for relayuser/s3cret -- with
STARTTLS in two cases.

Here a mailsim host configured like that instance (its main.cf, the same table
compiled by mailsim's postmap) gets the same submission in process; its smtp(8)
delivers to the same scripted server in memory (ScriptedEngine through an
engine channel) and over a real loopback socket. Both must give Postfix's log,
line for line, and the same AUTH dialogue (the base64 included).
"""
from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from client_replay import (QID, EnginePeer, init_like, mask_remote,  # noqa: E402
                           run_recorded, unstamped)
from conformance import GOLDEN, numbered, per_message  # noqa: E402

from mailsim.host import Host, init_host  # noqa: E402
from mailsim.maps.commands import postmap_main  # noqa: E402
from mailsim.smtp.peer import Script  # noqa: E402

REC = GOLDEN / "smtp-sasl"
#: the TLS cases' certificates (tools/record_smtp_tls.py); the host finds them in /etc/postfix/tls
CERTS = GOLDEN / "smtp-tls/certs"
CASES = sorted(p.stem for p in REC.glob("*.json"))

#: the time in the Message-ID of a bounce(8) notice (wrong-password-hard)
NOTICE_ID = re.compile(r"(?<=message-id=<)\d{14}(?=\.)")


def mask_log(lines: list[str]) -> list[str]:
    """client_replay's masks (the auth-cache retry's 11 s delays too), and the notice's time."""
    text = NOTICE_ID.sub("YYYYMMDDHHMMSS", unstamped(lines))
    return numbered(QID, text, "QID").split("\n")


def build(rec: dict, root: Path) -> Host:
    """A host set up like the recording's instance: its main.cf (less its folders), the
    password table at /etc/postfix/sasl_passwd ($config_directory) compiled by postmap,
    the TLS certificates at /etc/postfix/tls ($CERTS in the recordings)."""
    init_like(rec, root, CERTS)
    if rec["sasl_passwd"]:
        (root / "etc/postfix/sasl_passwd").write_text(rec["sasl_passwd"])
        out, err = io.StringIO(), io.StringIO()
        assert postmap_main(root, ["hash:/etc/postfix/sasl_passwd"], out, err) == 0, err.getvalue()
    return Host(root)


def run(name: str, root: Path, mode: str):
    """Replay case ``name`` with the peer over a socket (``mode="socket"``) or in memory."""
    return run_recorded(REC / f"{name}.json", root, mode, build)


def test_the_recordings_are_here() -> None:
    assert len(CASES) == 22, CASES


@pytest.mark.parametrize("mode", ["memory", "socket"])
@pytest.mark.parametrize("name", CASES)
def test_log(name: str, mode: str, tmp_path: Path) -> None:
    """Every log line is Postfix's (the SASL warnings and reasons too), in Postfix's order
    per message."""
    rec, host, _ = run(name, tmp_path / "h", mode)
    got, want = mask_log(host.log.lines), mask_log(rec["log"])
    assert sorted(got) == sorted(want)
    assert per_message(got) == per_message(want)


@pytest.mark.parametrize("mode", ["memory", "socket"])
@pytest.mark.parametrize("name", CASES)
def test_remote_dialogue(name: str, mode: str, tmp_path: Path) -> None:
    """What the server saw: AUTH with the mechanism Cyrus would pick, the base64 responses,
    or no AUTH at all; then the mail (or QUIT) in the same writes."""
    rec, _, sessions = run(name, tmp_path / "h", mode)
    assert mask_remote(sessions) == mask_remote(rec["remote"])


# -- pieces Postfix was not recorded for ----------------------------------------------------------
def _client(tmp: Path, main_cf: dict[str, str], script: Script, passwd: str = ""):
    """A host whose smtp(8) delivers one message to the scripted peer at [127.0.0.1]:2525."""
    from mailsim.queue import QueueFile, Recipient
    from mailsim.smtp import SMTPClient
    root = tmp / "c"
    init_host(root, hostname="client.example.net")
    with open(root / "etc/postfix/main.cf", "a") as f:
        for k, v in main_cf.items():
            f.write(f"{k} = {v}\n")
    if passwd:
        (root / "etc/postfix/sasl_passwd").write_text(passwd)
        assert postmap_main(root, ["hash:/etc/postfix/sasl_passwd"], io.StringIO(),
                            io.StringIO()) == 0
    host = Host(root)
    peer = EnginePeer(script, None, "127.0.0.1", 2525)
    qf = QueueFile("4B2A1160001", "alice@example.net", [Recipient("root@example.org")],
                   host.clock.now(), b"Subject: hi\n\nhello\n")
    res = SMTPClient(host, connector=peer).deliver(qf, qf.recipients, "[127.0.0.1]:2525",
                                                   active=host.clock.now())
    return res[0], host, peer.sessions


AUTH_EHLO = ["peer.example", "PIPELINING", "AUTH PLAIN LOGIN", "8BITMIME"]


def test_dummy_mail_auth(tmp_path: Path) -> None:
    """smtp_send_dummy_mail_auth = yes: MAIL FROM gets AUTH=<> after a successful AUTH."""
    r, _, sessions = _client(
        tmp_path, {"smtp_sasl_auth_enable": "yes", "smtp_send_dummy_mail_auth": "yes",
                   "smtp_sasl_security_options": "",
                   "smtp_sasl_password_maps": "hash:/etc/postfix/sasl_passwd"},
        Script(ehlo=AUTH_EHLO, auth={"users": {"u": "p"}}), "[127.0.0.1]:2525 u:p\n")
    assert r.status == "sent", r.text
    assert any(s["client"].startswith("MAIL FROM:<alice@example.net> AUTH=<>")
               for s in sessions[0])


def test_sender_dependent(tmp_path: Path) -> None:
    """smtp_sender_dependent_authentication = yes: the sender's entry comes first."""
    r, _, sessions = _client(
        tmp_path, {"smtp_sasl_auth_enable": "yes", "smtp_sasl_security_options": "",
                   "smtp_sender_dependent_authentication": "yes",
                   "smtp_sasl_password_maps": "hash:/etc/postfix/sasl_passwd"},
        Script(ehlo=AUTH_EHLO, auth={"users": {"alice": "a"}}),
        "alice@example.net alice:a\n[127.0.0.1]:2525 u:p\n")
    assert r.status == "sent", r.text
    assert sessions[0][2]["client"] == "AUTH PLAIN AGFsaWNlAGE=\r\n"


def test_no_password_maps_is_fatal(tmp_path: Path) -> None:
    """smtp_sasl_auth_enable = yes without a table: Postfix's smtp(8) dies at start-up
    (recorded: ``fatal: specify a password table ...``); the mail waits."""
    r, host, sessions = _client(tmp_path, {"smtp_sasl_auth_enable": "yes"},
                                Script(ehlo=AUTH_EHLO))
    assert (r.status, r.dsn) == ("deferred", "4.3.0")
    assert sessions == []
    assert any("fatal: specify a password table via the `smtp_sasl_password_maps' "
               "configuration parameter" in ln for ln in host.log.lines)


def test_auth_cache_forgets_a_changed_password(tmp_path: Path) -> None:
    """A cached 535 holds only for the password that failed (its SHA-1 is in the entry):
    after postmap with a new password, smtp(8) tries AUTH again."""
    from mailsim.queue import QueueFile, Recipient
    from mailsim.smtp import SMTPClient
    root = tmp_path / "c"
    init_host(root, hostname="client.example.net")
    with open(root / "etc/postfix/main.cf", "a") as f:
        f.write("smtp_sasl_auth_enable = yes\nsmtp_sasl_security_options =\n"
                "smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd\n"
                "smtp_sasl_auth_cache_name = proxy:btree:/var/lib/postfix/sasl_auth_cache\n")
    host = Host(root)
    peer = EnginePeer(Script(ehlo=AUTH_EHLO, auth={"users": {"u": "right"}}), None,
                      "127.0.0.1", 2525)

    def attempt(password: str):
        (root / "etc/postfix/sasl_passwd").write_text(f"[127.0.0.1]:2525 u:{password}\n")
        assert postmap_main(root, ["hash:/etc/postfix/sasl_passwd"], io.StringIO(),
                            io.StringIO()) == 0
        qf = QueueFile("4B2A1160001", "alice@example.net", [Recipient("root@example.org")],
                       host.clock.now(), b"Subject: hi\n\nhello\n")
        return SMTPClient(host, connector=peer).deliver(qf, qf.recipients, "[127.0.0.1]:2525",
                                                        active=host.clock.now())[0]

    r1, r2 = attempt("wrong"), attempt("wrong")
    assert (r1.dsn, r2.dsn) == ("4.7.8", "4.7.8")
    assert r2.text.startswith("SASL [CACHED] authentication failed; server 127.0.0.1 said: 535")
    assert not any(s["client"].startswith("AUTH") for s in peer.sessions[1])
    r3 = attempt("right")
    assert r3.status == "sent", r3.text
