"""SMTP AUTH in smtpd (issue 6): replies, log lines, the Received: header, the restrictions,
the submission service, the sasldb commands -- against real Postfix 3.7.11 recordings.

tests/golden/auth/*.json were made by tools/record_auth.py: a private instance of
the real Postfix with Cyrus SASL (sasldb, smtpd.conf ``mech_list: PLAIN LOGIN``
unless a case says otherwise), users alice@example.com ("secret") and bob in
the realm real.example.net ("hunter2"). Each recording is replayed here against
a mailsim host configured the same way, in-process and over a real socket; every
reply must be identical (the random CRAM-MD5 challenge in its form only, the
response is computed from it as the recorder did), and so must smtpd's log lines
and, per message, cleanup's, qmgr's and virtual's, and the delivered mailbox
(queue ids, process ids and times masked).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "tools"))
from conformance import tls_certificate, wait_for_file  # noqa: E402
from record_client import read_text_reply  # noqa: E402
from mailsim import sasl  # noqa: E402
from mailsim.clock import SimClock  # noqa: E402
from mailsim.host import Host, init_host  # noqa: E402
from mailsim.serve import background, free_port  # noqa: E402
from mailsim.smtpd.client import EngineTLS, client_context  # noqa: E402

GOLDEN = Path(__file__).parent / "golden" / "auth"
CASES = sorted(p.stem for p in GOLDEN.glob("*.json"))
#: the instance's own folders: a mailsim host has its usual ones instead
PATHS = {"config_directory", "data_directory", "maillog_file", "maillog_file_prefixes",
         "queue_directory", "virtual_mailbox_base"}
ALICE = base64.b64encode(b"\0alice@example.com\0secret").decode()


def load(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text())


def build(rec: dict, root: Path, clock=None) -> Host:
    """A host like the recording's instance: its main.cf (less its folders), the TLS
    certificate, /etc/postfix/sasl/smtpd.conf, the users in /etc/sasldb2, the
    submission service in master.cf, real.example's virtual mailboxes."""
    init_host(root, hostname="real.example.net", force=True, clock=clock)
    conf = [ln for ln in rec["main_cf_effective"].splitlines()
            if ln.split("=", 1)[0].strip() not in PATHS]
    conf += ["maillog_file = /var/log/maillog", "virtual_mailbox_base = /var/vmail"]
    (root / "etc/postfix/main.cf").write_text("\n".join(conf) + "\n")
    (root / "var/vmail").mkdir(parents=True, exist_ok=True)
    host = Host(root, clock=clock)
    cert, key = tls_certificate("real.example.net")
    tls = host.path("/etc/postfix/tls")
    tls.mkdir(parents=True, exist_ok=True)
    (tls / "cert.pem").write_bytes(cert)
    (tls / "key.pem").write_bytes(key)
    if rec["smtpd_conf"] is not None:
        p = host.path("/etc/postfix/sasl/smtpd.conf")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rec["smtpd_conf"].replace("$BASE/etc/sasldb2", "/etc/sasldb2"))
    for u in rec["users"]:
        sasl.set_password(host, u["user"], u["realm"], u["password"])
    if rec.get("master_cf_submission"):
        with open(host.path("/etc/postfix/master.cf"), "a") as f:
            f.write(rec["master_cf_submission"].replace("127.0.0.1:$SUBPORT", "submission"))
    return Host(root, clock=clock)


def cram_response(reply: str, user: str, password: str) -> bytes:
    challenge = base64.b64decode(reply[4:].strip())
    digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
    return base64.b64encode(f"{user} {digest}".encode()) + b"\r\n"


def send_bytes(step: dict, replies: list[str]) -> bytes:
    if step.get("cram"):
        return cram_response(replies[-1], *step["cram"])
    return step["send"].encode("latin-1")


def service_of(session: dict) -> str | None:
    return "submission" if session["service"] == "submission" else None


def replay_engine(host: Host, session: dict, port: int) -> list[str]:
    """One recorded session into an engine (TLS after a 220 to STARTTLS)."""
    eng = host.smtpd("127.0.0.1", port, service=service_of(session))
    got: list[str] = []
    tls = None
    for step in session["dialogue"]:
        if step["send"] is None:
            out = eng.greeting()
        elif eng.closed:
            out = b""
        elif tls is not None:
            out = tls.exchange(send_bytes(step, got))
        else:
            out = eng.receive(send_bytes(step, got))
        got.append(out.decode("latin-1"))
        if step.get("starttls") and out.startswith(b"220") and not eng.closed:
            tls = EngineTLS(eng)
            tls.handshake()
    if not eng.closed:
        eng.lost()
    return got


def _read_reply(sock, buf: bytearray) -> str:
    return read_text_reply(sock, buf, errors=(socket.timeout, OSError))


def replay_socket(port: int, session: dict) -> list[str]:
    got: list[str] = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
        sock = plain
        buf = bytearray()
        for step in session["dialogue"]:
            if step["send"] is not None:
                try:
                    sock.sendall(send_bytes(step, got))
                except OSError:
                    got.append("")
                    continue
            got.append(_read_reply(sock, buf))
            if step.get("starttls") and got[-1].startswith("220"):
                sock = client_context().wrap_socket(plain)
        if sock is not plain:
            sock.close()
    return got


class ServiceServer:
    """``mailsim serve``'s protocol for one master.cf service, in a thread (simulated clock)."""

    def __init__(self, root: Path, service: str | None) -> None:
        from mailsim.serve import SMTPServerProtocol, Server
        self.srv = Server(root, clock=SimClock())
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(self.loop.create_server(
                lambda: SMTPServerProtocol(self.srv, service), "127.0.0.1", 0))
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(5)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# -- log lines ----------------------------------------------------------------------------------
_LINE = re.compile(r" (postfix(?:/[\w-]+)*)\[(\d+)\]: (.*)$")
_QID = re.compile(r"\b[0-9A-F]{10,12}\b")


def _mask(lines: list[str]) -> list[tuple[str, str, str]]:
    """(tag, pid, text) with queue ids numbered QID1, QID2 ... and volatile parts masked."""
    seen: dict[str, str] = {}
    out = []
    for ln in lines:
        m = _LINE.search(ln)
        if not m:
            continue
        tag, pid, text = m.groups()
        text = _QID.sub(lambda q: seen.setdefault(q.group(0), f"QID{len(seen) + 1}"), text)
        text = re.sub(r"pid \d+", "pid N", text)
        text = re.sub(r"delay=[\d.]+, delays=[\d./]+", "delay=D", text)
        text = re.sub(r"<\d{14}\.QID", "<DATE.QID", text)
        out.append((tag, pid, text))
    return out


def smtpd_lines(lines: list[str]) -> list[str]:
    """smtpd's lines (any syslog_name), and master's about an smtpd process of this log
    (not about the port probe's: the recorder's instance started with one)."""
    pids = {m.group(1) for m in (re.search(r"/smtpd\[(\d+)\]", ln) for ln in lines) if m}
    keep = [ln for ln in lines if re.search(r"/smtpd\[", ln)
            or re.search(r"/master\[\d+\]: .*smtpd pid (\d+) exit", ln)
            and re.search(r"smtpd pid (\d+) exit", ln).group(1) in pids]
    return [f"{tag}: {text}" for tag, _, text in _mask(keep)]


def messages(lines: list[str]) -> dict[str, list[str]]:
    """cleanup's, qmgr's and virtual's lines per message (they run concurrently in Postfix)."""
    out: dict[str, list[str]] = {}
    for tag, _, text in _mask(lines):
        m = re.match(r"(QID\d+): ", text)
        if m and tag.rsplit("/", 1)[1] in ("cleanup", "qmgr", "virtual"):
            out.setdefault(m.group(1), []).append(f"{tag}: {text}")
    return out


def mbox(text: str) -> str:
    text = _QID.sub("QID", text)
    text = re.sub(r"^From (\S+) .*$", r"From \1 DATE", text, flags=re.M)
    return re.sub(r"\w{3}, [ \d]\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000 \(UTC\)", "DATE", text)


def same_reply(expected: str, got: str) -> bool:
    q = lambda t: re.sub(r"queued as \w+", "queued as QID", t)
    if re.match(r"334 \S{30,}\r\n$", expected):          # a CRAM-MD5 challenge: its form
        m = re.match(r"334 (\S+)\r\n$", got)
        return bool(m) and re.fullmatch(rb"<\d+\.\d+@real\.example\.net>",
                                        base64.b64decode(m.group(1))) is not None
    return q(expected) == q(got)


# -- the recordings -----------------------------------------------------------------------------
def test_the_recordings_are_here():
    assert len(CASES) == 34, CASES
    for name in CASES:
        rec = load(name)
        assert rec["postfix_version"] == "3.7.11" and rec["id"] == name


@pytest.mark.parametrize("name", CASES)
def test_replies_and_log_as_recorded(name, tmp_path):
    rec = load(name)
    host = build(rec, tmp_path / "mx", clock=SimClock())
    host.auto_deliver = False
    before = len(host.log.lines)
    for i, session in enumerate(rec["sessions"]):
        got = replay_engine(host, session, 40000 + i)
        for step, have in zip(session["dialogue"], got):
            assert same_reply(step["reply"], have), (step["send"], step["reply"], have)
    host.run_queue()
    lines = host.log.lines[before:]
    assert smtpd_lines(lines) == smtpd_lines(rec["log"])
    expected = messages(rec["log"])
    for qid, have in messages(lines).items():
        want = expected.get(qid, [])
        if any("postfix/virtual" in ln for ln in want):       # delivered here (not relayed)
            assert have == want, qid
    if rec["mailboxes"].get("carol"):
        assert mbox(host.path("/var/vmail/carol").read_text()) == mbox(rec["mailboxes"]["carol"])


@pytest.mark.parametrize("name", CASES)
def test_replies_over_a_socket(name, tmp_path):
    """``mailsim serve``'s protocol on a real connection: the same replies and smtpd lines."""
    rec = load(name)
    build(rec, tmp_path / "mx")
    servers: dict[str | None, ServiceServer] = {}
    try:
        for session in rec["sessions"]:
            svc = service_of(session)
            if svc not in servers:
                servers[svc] = ServiceServer(tmp_path / "mx", svc)
            got = replay_socket(servers[svc].port, session)
            for step, have in zip(session["dialogue"], got):
                assert same_reply(step["reply"], have), (step["send"], step["reply"], have)
    finally:
        for s in servers.values():
            s.close()
    log = tmp_path / "mx/var/log/maillog"
    end = time.monotonic() + 5
    want = smtpd_lines(rec["log"])
    while smtpd_lines(log.read_text().splitlines()) != want and time.monotonic() < end:
        time.sleep(0.05)
    assert smtpd_lines(log.read_text().splitlines()) == want


# -- one reply or log line at a time, and what the recordings do not cover -----------------------
@pytest.fixture
def auth_host(make_host):
    """The course's usual host (mail.example.com) with AUTH on, PLAIN and LOGIN, two users."""
    def make(**cf):
        h = make_host({"smtpd_sasl_auth_enable": "yes", "mynetworks": "192.0.2.0/24", **cf})
        p = h.path("/etc/postfix/sasl/smtpd.conf")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n")
        sasl.set_password(h, "alice", "example.com", "secret")
        sasl.set_password(h, "bob", "mail.example.com", "hunter2")
        return h
    return make


def smtpd_texts(host) -> list[str]:
    return [ln.split("]: ", 1)[1] for ln in host.log.lines if "/smtpd[" in ln]


def test_ehlo_and_the_fixed_replies(auth_host):
    s = auth_host(broken_sasl_auth_clients="yes").session()
    ehlo = s.send("EHLO client.example.org").split("\n")
    assert ehlo[5:7] == ["250-AUTH PLAIN LOGIN", "250-AUTH=PLAIN LOGIN"]
    assert s.send("AUTH") == "501 5.5.4 Syntax: AUTH mechanism"
    assert s.send("AUTH PLAIN") == "334 "
    assert s.send("*") == "501 5.7.0 Authentication aborted"
    assert s.send(f"AUTH PLAIN {ALICE}") == "235 2.7.0 Authentication successful"
    assert s.send(f"AUTH PLAIN {ALICE}") == "503 5.5.1 Error: already authenticated"
    s.send("QUIT")
    assert smtpd_texts(s.host)[-2:] == [
        "warning: localhost[127.0.0.1]: SASL PLAIN authentication aborted",
        "disconnect from localhost[127.0.0.1] ehlo=1 auth=1/4 quit=1 commands=3/6"]


def test_not_enabled_and_tls_auth_only(make_host, auth_host):
    s = make_host().session()
    assert "AUTH" not in s.send("EHLO client.example.org")
    assert s.send(f"AUTH PLAIN {ALICE}") == "503 5.5.1 Error: authentication not enabled"
    h = auth_host(smtpd_tls_auth_only="yes", smtpd_tls_security_level="may",
                  smtpd_tls_cert_file="/etc/postfix/tls/cert.pem",
                  smtpd_tls_key_file="/etc/postfix/tls/key.pem")
    cert, key = tls_certificate()
    h.path("/etc/postfix/tls").mkdir(parents=True, exist_ok=True)
    h.path("/etc/postfix/tls/cert.pem").write_bytes(cert)
    h.path("/etc/postfix/tls/key.pem").write_bytes(key)
    s = h.session()
    assert "AUTH" not in s.send("EHLO client.example.org")
    assert s.send(f"AUTH PLAIN {ALICE}") == "503 5.5.1 Error: authentication not enabled"
    assert s.starttls().startswith("220 ")
    assert "250-AUTH PLAIN LOGIN" in s.send("EHLO client.example.org").split("\n")
    assert s.send(f"AUTH PLAIN {ALICE}") == "235 2.7.0 Authentication successful"


def test_pipelined_response_and_lost_connection(auth_host):
    h = auth_host()
    eng = h.smtpd()
    eng.greeting()
    eng.receive(b"EHLO client.example.org\r\n")
    out = eng.receive(f"AUTH PLAIN\r\n{ALICE}\r\nMAIL FROM:<alice@example.com>\r\n".encode())
    assert out == b"334 \r\n235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n"
    eng2 = h.smtpd()
    eng2.greeting()
    assert eng2.receive(b"AUTH LOGIN\r\n") == b"334 VXNlcm5hbWU6\r\n"
    eng2.lost()
    assert smtpd_texts(h)[-2:] == ["lost connection after AUTH from localhost[127.0.0.1]",
                                   "disconnect from localhost[127.0.0.1] auth=0/1 commands=0/1"]


def test_failures_count_towards_the_error_limits(auth_host):
    s = auth_host(smtpd_hard_error_limit="3", smtpd_error_sleep_time="0").session()
    wrong = base64.b64encode(b"\0alice@example.com\0wrong").decode()
    for _ in range(2):
        assert s.send(f"AUTH PLAIN {wrong}").startswith("535 5.7.8 ")
    assert s.send("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    assert s.send("*") == ("501 5.7.0 Authentication aborted\n"
                           "421 4.7.0 mail.example.com Error: too many errors")
    assert s.closed


def test_received_header_and_queue_file(auth_host):
    h = auth_host(smtpd_sasl_authenticated_header="yes")
    h.auto_deliver = False
    s = h.session()
    s.send("EHLO client.example.org")
    s.send("AUTH LOGIN")
    s.send(base64.b64encode(b"bob").decode())
    assert s.send(base64.b64encode(b"hunter2").decode()) == "235 2.7.0 Authentication successful"
    s.send("MAIL FROM:<bob@mail.example.com> AUTH=<bob@mail.example.com>")
    s.send("RCPT TO:<peter@example.com>")
    s.send("DATA")
    qid = s.message("Subject: hello\n\nhi\n").rsplit(" ", 1)[1]
    s.send("QUIT")
    from mailsim.queue import read_queue_file
    qf = read_queue_file(h.spool / "incoming" / qid)
    head = qf.content.decode().split("\n\tfor <", 1)[0]
    assert head == ("Received: from client.example.org (localhost [127.0.0.1])\n"
                    "\t(Authenticated sender: bob)\n"
                    f"\tby mail.example.com (Postfix) with ESMTPA id {qid}")
    assert (qf.attrs["sasl_method"], qf.attrs["sasl_username"], qf.attrs["sasl_sender"]) == \
        ("LOGIN", "bob", "<bob@mail.example.com>")
    assert (f"{qid}: client=localhost[127.0.0.1], sasl_method=LOGIN, sasl_username=bob, "
            "sasl_sender=<bob@mail.example.com>") in smtpd_texts(h)
    rc, out, err = run_cli(h.root, ["postcat", "-q", qid])
    assert "named_attribute: sasl_method=LOGIN\nnamed_attribute: sasl_username=bob\n" in out


def test_decisions_explain_permit_sasl_authenticated(auth_host):
    s = auth_host().session()
    s.send("EHLO client.example.org")
    s.send("MAIL FROM:<alice@example.com>")
    assert s.send("RCPT TO:<x@example.org>").startswith("454 4.7.1 ")
    assert "permit_sasl_authenticated -> DUNNO (not logged in)" in s.decisions[-1].explain()
    s.send("RSET")
    s.send(f"AUTH PLAIN {ALICE}")
    s.send("MAIL FROM:<alice@example.com>")
    assert s.send("RCPT TO:<x@example.org>") == "250 2.1.5 Ok"
    assert ("permit_sasl_authenticated -> OK (logged in as alice@example.com (PLAIN))"
            in s.decisions[-1].explain())


def test_a_listed_mechanism_mailsim_does_not_simulate(auth_host):
    h = auth_host()
    h.path("/etc/postfix/sasl/smtpd.conf").unlink()       # every installed mechanism
    s = h.session()
    assert ("250-AUTH SCRAM-SHA-512 SCRAM-SHA-384 SCRAM-SHA-256 SCRAM-SHA-224 SCRAM-SHA-1 "
            "DIGEST-MD5 CRAM-MD5 NTLM PLAIN LOGIN") in s.send("EHLO x").split("\n")
    assert s.send("AUTH DIGEST-MD5") == "535 5.7.8 Error: authentication failed: no mechanism available"
    assert smtpd_texts(h)[-1] == ("warning: localhost[127.0.0.1]: SASL DIGEST-MD5 authentication "
                                  "failed: no mechanism available, sasl_username=(unavailable)")


def test_missing_sasldb_is_a_temporary_failure(auth_host):
    """Modelled on the recorder's first attempt (a sasldb smtpd could not open): 454."""
    h = auth_host()
    h.path("/etc/sasldb2").unlink()
    s = h.session()
    s.send("EHLO x")
    assert s.send(f"AUTH PLAIN {ALICE}") == \
        "454 4.7.0 Temporary authentication failure: generic failure"
    assert smtpd_texts(h)[-3:] == [
        "warning: SASL authentication problem: unable to open Berkeley db /etc/sasldb2: "
        "No such file or directory",
        "warning: SASL authentication failure: Password verification failed",
        "warning: localhost[127.0.0.1]: SASL PLAIN authentication failed: generic failure, "
        "sasl_username=alice@example.com"]


def test_sendmail_bs_has_no_auth(auth_host):
    from mailsim.sendmail.standalone import StandAloneSession
    h = auth_host()
    eng = StandAloneSession(h, "root", h.log)
    eng.greeting()
    assert "AUTH" not in eng.receive(b"EHLO x\r\n").decode()
    assert eng.receive(f"AUTH PLAIN {ALICE}\r\n".encode()) == \
        b"503 5.5.1 Error: authentication not enabled\r\n"


def test_bad_settings_stop_smtpd(auth_host):
    h = auth_host(smtpd_sasl_type="foo")
    assert h.smtpd().closed
    assert smtpd_texts(h)[-2:] == ["warning: unsupported SASL server implementation: foo",
                                   "fatal: SASL per-process initialization failed"]
    h = auth_host(smtpd_sasl_security_options="noanonymous, nosuch")
    assert h.smtpd().closed
    assert smtpd_texts(h)[-3:] == [
        'warning: unknown SASL security options value "nosuch" in "noanonymous, nosuch"',
        "warning: bad per-session SASL security properties",
        "fatal: SASL per-connection initialization failed"]
    h = auth_host(smtpd_sasl_mechanism_filter="cram-md5")
    assert h.smtpd().closed
    assert smtpd_texts(h)[-1] == ("fatal: smtpd_sasl_mechanism_filter discards all mechanisms "
                                  "in 'PLAIN LOGIN'")
    s = auth_host(smtpd_sasl_mechanism_filter="login").session()
    assert "250-AUTH LOGIN" in s.send("EHLO x").split("\n")
    assert s.send(f"AUTH PLAIN {ALICE}").startswith("235 ")     # only EHLO is filtered


# -- master.cf services -------------------------------------------------------------------------
SUBMISSION = ("submission inet n       -       y       -       -       smtpd\n"
              "  -o syslog_name=postfix/$service_name\n"
              "  -o smtpd_sasl_auth_enable=yes\n"
              "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n")


def test_submission_service_overrides(auth_host):
    h = auth_host(smtpd_sasl_auth_enable="no")
    with open(h.path("/etc/postfix/master.cf"), "a") as f:
        f.write(SUBMISSION)
    assert "AUTH" not in h.session().send("EHLO x")
    s = h.session(service=587)
    assert "250-AUTH PLAIN LOGIN" in s.send("EHLO x").split("\n")
    s.send("MAIL FROM:<alice@example.com>")
    assert s.send("RCPT TO:<x@example.org>") == \
        "554 5.7.1 <x@example.org>: Recipient address rejected: Access denied"
    s.send("RSET")
    assert s.send(f"AUTH PLAIN {ALICE}").startswith("235 ")
    s.send("MAIL FROM:<alice@example.com>")
    assert s.send("RCPT TO:<x@example.org>") == "250 2.1.5 Ok"
    s.send("QUIT")
    tags = {ln.split()[4].split("[")[0] for ln in h.log.lines}
    assert "postfix/submission/smtpd" in tags and "postfix/smtpd" in tags
    assert h.conf["smtpd_sasl_auth_enable"] == "no"          # main.cf is not changed
    # an unknown service: main.cf alone
    assert "AUTH" not in h.session(service="smtps").send("EHLO x")


def test_lab_session_on_port_587(tmp_path):
    """A lab session to port 587 reaches master.cf's submission service."""
    from mailsim.lab import Lab
    lab = Lab.init(tmp_path / "lab", from_lab="single-host")
    mx = lab.host("mail")
    with open(mx.path("/etc/postfix/master.cf"), "a") as f:
        f.write(SUBMISSION)
    sasl.set_password(mx, "alice", "example.com", "secret")
    s = lab.session("mail", port=587)
    assert "250-AUTH" in s.send("EHLO client.example")
    assert s.send(f"AUTH PLAIN {ALICE}").startswith("235 ")
    assert "AUTH" not in lab.session("mail").send("EHLO client.example")


# -- saslpasswd2 and sasldblistusers2 -------------------------------------------------------------
def run_cli(root: Path, argv: list[str], stdin: str = "", monkeypatch=None) -> tuple[int, str, str]:
    from mailsim.cli import run_command
    out, err = io.StringIO(), io.StringIO()
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc = run_command(root, argv[0], argv[1:], out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def test_saslpasswd2_and_sasldblistusers2(tmp_path, monkeypatch):
    h = init_host(tmp_path / "mx", hostname="mail.example.com")
    assert run_cli(h.root, ["sasldblistusers2"], monkeypatch=monkeypatch) == \
        (0, "", "listusers failed\n")
    assert run_cli(h.root, ["saslpasswd2", "-p", "-c", "-u", "example.com", "alice"], "secret\n",
                   monkeypatch)[0] == 0
    assert run_cli(h.root, ["saslpasswd2", "-p", "bob"], "pw", monkeypatch)[0] == 0   # default realm
    assert run_cli(h.root, ["sasldblistusers2"])[1] == \
        "alice@example.com: userPassword\nbob@mail.example.com: userPassword\n"
    assert oct(h.path("/etc/sasldb2").stat().st_mode & 0o777) == "0o640"
    assert run_cli(h.root, ["saslpasswd2", "-p", "-c", "carol"], "\n", monkeypatch) == \
        (7, "", "saslpasswd2: invalid parameter supplied\n")
    rc, _, err = run_cli(h.root, ["saslpasswd2"], monkeypatch=monkeypatch)
    assert rc == 1 and "usage: saslpasswd2 [-v] [-c [-p] [-n]] [-d]" in err
    assert run_cli(h.root, ["saslpasswd2", "-d", "-u", "example.com", "alice"])[0] == 0
    assert run_cli(h.root, ["saslpasswd2", "-d", "nobody"])[0] == 0      # silently nothing
    assert run_cli(h.root, ["sasldblistusers2"])[1] == "bob@mail.example.com: userPassword\n"
    # -f: another file (the recorder's instances keep theirs next to smtpd.conf)
    run_cli(h.root, ["saslpasswd2", "-p", "-f", "/etc/postfix/sasldb2", "-u", "x.org", "u"], "p",
            monkeypatch)
    assert run_cli(h.root, ["sasldblistusers2", "-f", "/etc/postfix/sasldb2"])[1] == \
        "u@x.org: userPassword\n"
    # the new password works at once
    h2 = Host(h.root)
    h2.path("/etc/postfix/main.cf").write_text(
        h2.path("/etc/postfix/main.cf").read_text() + "smtpd_sasl_auth_enable = yes\n")
    s = Host(h.root).session()
    bob = base64.b64encode(b"\0bob\0pw").decode()
    assert s.send(f"AUTH PLAIN {bob}").startswith("235 ")


# -- real clients on a real socket ----------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``mailsim serve`` with port 25's service and a submission service (STARTTLS
    required, AUTH, relaying for logged-in users), as in tests/golden/auth/submission.json."""
    rec = load("submission")
    root = tmp_path_factory.mktemp("auth") / "mx"
    build(rec, root)
    sub = free_port()
    with background(root, processes=1, services={"submission": sub}) as port:
        yield root, port, sub


def test_smtplib_login_on_the_submission_port(served):
    root, port, sub = served
    with smtplib.SMTP("127.0.0.1", sub, timeout=10) as c:
        c.ehlo("client.example.org")
        assert not c.has_extn("auth")
        c.starttls(context=client_context())
        c.ehlo("client.example.org")
        assert c.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            c.login("alice@example.com", "wrong")
        assert e.value.smtp_code == 535
        assert c.login("alice@example.com", "secret") == (235, b"2.7.0 Authentication successful")
        assert c.sendmail("alice@example.com", ["carol@real.example"],
                          b"Subject: via smtplib\r\n\r\nhello from smtplib\r\n") == {}
    box = wait_for_file(root / "var/vmail/carol", b"hello from smtplib").decode()
    assert re.search(r"with ESMTPSA id [0-9A-F]+\n\tfor <carol@real.example>", box)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:         # port 25: no AUTH
        c.ehlo("client.example.org")
        assert not c.has_extn("auth")


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed (apt-get install swaks)")
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_auth(served, mech):
    root, port, sub = served
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{sub}", "--tls", "--auth", mech,
                        "--auth-user", "alice@example.com", "--auth-password", "secret",
                        "--from", "alice@example.com", "--to", "carol@real.example",
                        "--helo", "client.example.org", "--body", f"hello from swaks {mech}"],
                       capture_output=True, text=True, timeout=30)
    if "Net::SSLeay" in r.stdout + r.stderr and r.returncode != 0:
        pytest.skip("swaks lacks TLS support (apt-get install libnet-ssleay-perl)")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<~  235 2.7.0 Authentication successful" in r.stdout
    assert "<~  250 2.0.0 Ok: queued as" in r.stdout
    wait_for_file(root / "var/vmail/carol", f"hello from swaks {mech}".encode())
    log = (root / "var/log/maillog").read_text()
    assert f"sasl_method={mech}, sasl_username=alice@example.com" in log


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed (apt-get install swaks)")
def test_swaks_wrong_password(served):
    root, port, sub = served
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{sub}", "--tls", "--auth", "PLAIN",
                        "--auth-user", "alice@example.com", "--auth-password", "nope",
                        "--from", "alice@example.com", "--to", "carol@real.example",
                        "--helo", "client.example.org"], capture_output=True, text=True, timeout=30)
    if "Net::SSLeay" in r.stdout + r.stderr and r.returncode != 0 and "535" not in r.stdout:
        pytest.skip("swaks lacks TLS support (apt-get install libnet-ssleay-perl)")
    assert r.returncode != 0
    assert "<~* 535 5.7.8 Error: authentication failed: authentication failure" in r.stdout
