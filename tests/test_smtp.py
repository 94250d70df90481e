"""smtp(8): mailsim's SMTP client against what Postfix 3.7.11's client sent and logged.

tests/golden/smtp-client/*.json were recorded by tools/record_smtp_client.py:
real Postfix delivered one message to a scripted peer (mailsim.smtp.peer)
that recorded every byte. Here mailsim's client delivers the same queue file
(the message Postfix queued: its Received header plus what the client
submitted) to the same scripted peer, and must send the same bytes, in the
same writes, and log the same lines (dates, pids, queue ids and delays masked).
"""
from __future__ import annotations

import json
import re
import socket
import sys
from functools import partial
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conformance import GOLDEN, build_host  # noqa: E402

from mailsim.host import init_host  # noqa: E402
from mailsim.postqueue import message_size  # noqa: E402
from mailsim.queue import QueueFile, Recipient, read_queue_file  # noqa: E402
from mailsim.serve import background, free_port  # noqa: E402
from mailsim.smtp import (HostConnector, LookupFailure, ServerAddress, SMTPClient,  # noqa: E402
                          parse_nexthop)
from mailsim.smtp.addr import NOT_FOUND, TRY_AGAIN, resolve  # noqa: E402
from mailsim.smtp.peer import Script, ScriptedServer  # noqa: E402
from mailsim.smtp.proto import ServerReply, data_bytes, quote_821, xtext  # noqa: E402

RECORDED = GOLDEN / "smtp-client"
CORPUS = GOLDEN / "postfix-3.7"
MULTI = GOLDEN / "postfix-3.7-multi"
CASES = sorted(p.stem for p in RECORDED.glob("*.json"))
RECORDED_PORT = 2527

STAMP = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ ")
PID = re.compile(r"\[\d+\]:")
QID = re.compile(r"\b[0-9A-F]{10,12}\b")
DELAYS = re.compile(r"delay=[\d.]+, delays=[\d./]+")


def mask(line: str, port: int | None = None, recorded_port: int = RECORDED_PORT) -> str:
    line = STAMP.sub("", line)
    line = PID.sub("[PID]:", line)
    line = QID.sub("QID", line)
    line = DELAYS.sub("delay=D, delays=D", line)
    if port is not None:
        line = line.replace(f":{port}", f":{recorded_port}")
    return line


def smtp_lines(lines: list[str]) -> list[str]:
    return [ln for ln in lines if "/smtp[" in ln]


# -- the queue file Postfix delivered, rebuilt from a recording ------------------------------

def _xtext_decode(s: str) -> str:
    return re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), s)


def queued_message(rec: dict, host) -> tuple[QueueFile, list[Recipient]]:
    """The envelope from the submission, the content as Postfix's queue held it."""
    sends = [s["send"] for s in rec["submit"] if s["send"]]
    mail = next(s for s in sends if s.startswith("MAIL FROM:"))
    sender = mail[len("MAIL FROM:<"):mail.index(">")]
    attrs: dict[str, str] = {}
    for p in mail.strip().split()[2:]:
        k, _, v = p.partition("=")
        attrs[k.lower()] = _xtext_decode(v) if k.upper() == "ENVID" else v.upper() \
            if k.upper() in ("RET", "BODY") else v
    rcpts = []
    for s in sends:
        if s.startswith("RCPT TO:"):
            addr = s[len("RCPT TO:<"):s.index(">")]
            notify = orcpt = ""
            for p in s.strip().split()[2:]:
                k, _, v = p.partition("=")
                if k.upper() == "NOTIFY":
                    notify = ",".join(x.upper() for x in v.split(","))
                elif k.upper() == "ORCPT":
                    orcpt = _xtext_decode(v)
            rcpts.append(Recipient(addr, addr, notify, orcpt or f"rfc822;{addr}"))
    data = next(s for s in sends if s.endswith("\r\n.\r\n"))
    lines = [ln[1:] if ln.startswith(".") else ln for ln in data[:-len("\r\n.\r\n")].split("\r\n")]
    content = ("\n".join(lines) + "\n").encode("latin-1")
    received = received_header(rec)
    qf = QueueFile("4F3601600F3", sender, rcpts, host.clock.now(), received + content, attrs)
    # Postfix's qmgr hands recipients over sorted by domain, then address
    order = sorted(rcpts, key=lambda r: (r.address.rpartition("@")[2].lower(), r.address))
    return qf, order


def received_header(rec: dict) -> bytes:
    """The Received: header Postfix's cleanup put on top (taken from what it sent)."""
    for session in rec["sessions"]:
        for step in session:
            if step["client"].startswith("Received: "):
                out = []
                for i, ln in enumerate(step["client"].split("\r\n")):
                    if i and not ln.startswith(("\t", " ")):
                        break
                    out.append(ln)
                return ("\n".join(out) + "\n").encode("latin-1")
    # no content was sent: cleanup's header, as smtpd(8) composes it, has the same size
    qid = re.search(r"qmgr\[\d+\]: (\w+): from=", "\n".join(rec["log"])).group(1)
    rcpts = [s["send"] for s in rec["submit"] if (s["send"] or "").startswith("RCPT TO:")]
    date = "Wed, 25 Nov 2026 12:50:12 +0000 (UTC)"
    tail = f"\n\tfor <{rcpts[0][9:rcpts[0].index('>')]}>; {date}" if len(rcpts) == 1 \
        else f";\n\t{date}"
    return (f"Received: from client.example.org (localhost [127.0.0.1])\n"
            f"\tby mail.example.com (Postfix) with ESMTP id {qid}{tail}\n").encode()


def nexthop_of(rec: dict, rcpts: list[Recipient], port: int | None) -> str:
    relayhost = rec["main_cf"].get("relayhost", "")
    if relayhost and port is not None:
        return relayhost.replace(f":{RECORDED_PORT}", f":{port}")
    return relayhost or rcpts[0].address.rpartition("@")[2]


def replay(case: str, tmp_path: Path):
    rec = json.loads((RECORDED / f"{case}.json").read_text())
    peer = ScriptedServer(Script.from_dict(rec["script"])) if rec["peer"] else None
    port = peer.port if peer else None
    main_cf = dict(rec["main_cf"])
    if port is not None:
        main_cf["relayhost"] = main_cf["relayhost"].replace(f":{RECORDED_PORT}", f":{port}")
    host = build_host({"id": case, "users": ["alice"], "main_cf": main_cf}, tmp_path / "mx")
    qf, rcpts = queued_message(rec, host)
    # the recording's DNS stub said NXDOMAIN (the name does not exist) or SERVFAIL
    answer = TRY_AGAIN if rec.get("dns_answer") == "SERVFAIL" else NOT_FOUND
    try:
        results = SMTPClient(host, resolver=partial(resolve, unknown=answer)).deliver(
            qf, rcpts, nexthop_of(rec, rcpts, port), active=host.clock.now())
        if peer:
            peer.wait_idle()
    finally:
        if peer:
            peer.close()
    return rec, host, results, peer, port


@pytest.mark.parametrize("case", CASES)
def test_recorded_case(case, tmp_path):
    rec, host, results, peer, port = replay(case, tmp_path)
    if peer is not None:
        assert peer.sessions == rec["sessions"]          # the same bytes, in the same writes
    want = [mask(ln) for ln in smtp_lines(rec["log"])]
    got = [mask(ln, port) for ln in smtp_lines(host.log.lines)]
    assert got == want
    statuses = [m.group(1) for m in (re.search(r"status=(\w+)", ln) for ln in want) if m]
    assert [r.status for r in results] == statuses


DATE = re.compile(r"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(UTC\)")


@pytest.mark.parametrize("case", ["pipelining", "no-pipelining", "dsn", "8bitmime", "line-folding"])
def test_end_to_end_through_mailsim_smtpd(case, tmp_path):
    """The whole way: the recorded submission into mailsim's smtpd and cleanup, the
    queue file out through mailsim's client; what the peer gets is what Postfix
    sent (the Received header's queue id and date masked)."""
    rec = json.loads((RECORDED / f"{case}.json").read_text())
    with ScriptedServer(Script.from_dict(rec["script"])) as peer:
        main_cf = dict(rec["main_cf"], relayhost=f"[127.0.0.1]:{peer.port}")
        host = build_host({"id": case, "users": ["alice"], "main_cf": main_cf}, tmp_path / "mx")
        eng = host.smtpd("127.0.0.1", 40000)
        eng.greeting()
        for step in rec["submit"]:
            if step["send"]:
                eng.receive(step["send"].encode("latin-1"))
        qf = read_queue_file(next((host.spool / "incoming").iterdir()))
        rcpts = sorted(qf.recipients, key=lambda r: (r.address.rpartition("@")[2].lower(), r.address))
        SMTPClient(host).deliver(qf, rcpts, main_cf["relayhost"], active=host.clock.now())
        peer.wait_idle()

    def norm(text: str) -> str:
        return DATE.sub("DATE", re.sub(r"ESMTP id \w+", "ESMTP id QID", text))
    assert [norm(st["client"]) for st in peer.sessions[0]] == \
        [norm(st["client"]) for st in rec["sessions"][0]]


def test_size_is_qmgrs_size(tmp_path):
    """SIZE= is the message size qmgr logs, for every recording that sent it."""
    n = 0
    for case in CASES:
        rec = json.loads((RECORDED / f"{case}.json").read_text())
        sizes = re.findall(r"size=(\d+), nrcpt", "\n".join(rec["log"]))
        sent = re.findall(r" SIZE=(\d+)", json.dumps(rec["sessions"]))
        if sent:
            host = build_host({"id": case, "users": [], "main_cf": {}}, tmp_path / case)
            qf, _ = queued_message(rec, host)
            assert sent[0] == sizes[0] == str(message_size(qf.content))
            n += 1
    assert n >= 5


# -- the conformance corpus's smtp(8) lines ----------------------------------------------------

def corpus_host(tmp_path, relayhost: str, name="mx"):
    return build_host({"id": "t", "users": ["alice"], "main_cf": {"relayhost": relayhost}},
                      tmp_path / name)


def message(host, rcpts: list[str], qid="4F3601600F3") -> QueueFile:
    return QueueFile(qid, "alice@example.com", [Recipient(r, r, "", f"rfc822;{r}") for r in rcpts],
                     host.clock.now(), b"Subject: test\n\nhello\n")


def test_connection_refused_like_queue_deferred(tmp_path):
    """queue-deferred.log: the connect line once, then one deferral per recipient."""
    port = free_port()
    host = corpus_host(tmp_path, f"[127.0.0.1]:{port}")
    qf = message(host, ["user2@other.org", "user@other.org"])
    res = SMTPClient(host).deliver(qf, qf.recipients, f"[127.0.0.1]:{port}", active=host.clock.now())
    want = smtp_lines((CORPUS / "logs/queue-deferred.log").read_text().splitlines())
    assert [mask(ln, port, 2599) for ln in smtp_lines(host.log.lines)] == [mask(ln) for ln in want]
    assert [(r.status, r.dsn, r.relay) for r in res] == [("deferred", "4.4.1", "none")] * 2


def test_connection_refused_like_commands_json(tmp_path):
    cmds = json.loads((CORPUS / "commands.json").read_text())
    want = [ln for ln in json.dumps(cmds).split("\\n") if "postfix/smtp[" in ln]
    want = smtp_lines((CORPUS / "logs/commands.log").read_text().splitlines()) or want
    port = free_port()
    host = corpus_host(tmp_path, f"[127.0.0.1]:{port}")
    qf = message(host, ["user@other.org"])
    SMTPClient(host).deliver(qf, qf.recipients, f"[127.0.0.1]:{port}", active=host.clock.now())
    assert [mask(ln, port, 2599) for ln in smtp_lines(host.log.lines)] == \
        [mask(ln) for ln in want[:2]]


@pytest.mark.parametrize("scenario,transport", [("relay-insider", "smtp"),
                                                ("relay-domains", "relay")])
def test_sent_to_smtp_sink(scenario, transport, tmp_path):
    """The corpus relayed to Postfix's smtp-sink, which answers "250 2.0.0 Ok"."""
    with ScriptedServer(Script(dot="250 2.0.0 Ok")) as peer:
        host = corpus_host(tmp_path, f"[127.0.0.1]:{peer.port}")
        qf = message(host, ["user@other.org"])
        res = SMTPClient(host, transport=transport).deliver(
            qf, qf.recipients, f"[127.0.0.1]:{peer.port}", active=host.clock.now())
        peer.wait_idle()
    want = smtp_lines((CORPUS / f"logs/{scenario}.log").read_text().splitlines())
    assert [mask(ln, peer.port, 2526) for ln in smtp_lines(host.log.lines)] == \
        [mask(ln) for ln in want]
    assert res[0].relay == f"127.0.0.1[127.0.0.1]:{peer.port}" and res[0].status == "sent"


def test_smarthost_by_name_from_etc_hosts(tmp_path):
    """05-smarthost, the office host: relayhost = [smtp.isp.example.net], a name."""
    rec = json.loads((MULTI / "05-smarthost.json").read_text())
    want = [ln for ln in rec["logs"]["office"] if "/smtp[" in ln]
    with ScriptedServer(Script(dot="250 2.0.0 Ok: queued as F3A091764D1"), host="127.0.0.5") as peer:
        relayhost = f"[smtp.isp.example.net]:{peer.port}"
        h = init_host(tmp_path / "office", hostname="gw.office.example")
        with open(h.root / "etc/hosts", "a") as f:
            f.write("127.0.0.5\tsmtp.isp.example.net\n")
        qf = QueueFile("ED7AB17642D", "bob@office.example",
                       [Recipient("peter@example.org", "peter@example.org")], h.clock.now(),
                       b"Subject: via smarthost\n\nHello,\n")
        SMTPClient(h).deliver(qf, qf.recipients, relayhost, active=h.clock.now())
        peer.wait_idle()
    assert [mask(ln, peer.port, 25) for ln in smtp_lines(h.log.lines)] == [mask(ln) for ln in want]


def test_next_hop_down_through_a_resolver(tmp_path):
    """06-deferred-then-bounce: an MX host where nothing listens. The MX lookup is
    a resolver plugged in (mailsim has no DNS yet); the retry 19 s later logs
    delay=19, delays=19/0/0/0 like Postfix."""
    rec = json.loads((MULTI / "06-deferred-then-bounce.json").read_text())
    want = [ln for ln in rec["logs"]["mail"] if "/smtp[" in ln][:4]
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.10", 25)) == 0:
            pytest.skip("something listens on 127.0.0.10:25")

    def mx(host, hop):
        assert hop.host == "down.example" and not hop.bracketed
        return [ServerAddress("mx.down.example", "127.0.0.10", 10)]

    h = init_host(tmp_path / "mail", hostname="mail.example.com")
    qf = QueueFile("8432B176461", "alice@example.com", [Recipient("peter@down.example",
                   "peter@down.example")], h.clock.now(), b"Subject: next hop down\n\nx\n")
    client = SMTPClient(h, resolver=mx)
    client.deliver(qf, qf.recipients, "down.example", active=h.clock.now())
    h.clock.advance(19)
    res = client.deliver(qf, qf.recipients, "down.example", active=h.clock.now())
    got = smtp_lines(h.log.lines)
    assert [mask(ln) for ln in got] == [mask(ln) for ln in want]
    assert "delay=19, delays=19/0/0/0" in got[3] and res[0].dsn == "4.4.1"


# -- end to end: from one simulated host to another ------------------------------------------------

def two_hosts(tmp_path):
    a = init_host(tmp_path / "a", hostname="mail.example.com", users=["alice"])
    b = init_host(tmp_path / "b", hostname="mx.example.org", users=["user"])
    return a, b


def test_relay_to_mailsim_serve(tmp_path):
    """A's client delivers to B's smtpd served on a real socket (mailsim serve)."""
    a, b = two_hosts(tmp_path)
    qf = message(a, ["user@example.org"])
    with background(b.root) as port:
        res = SMTPClient(a).deliver(qf, qf.recipients, f"[127.0.0.1]:{port}", active=a.clock.now())
    assert res[0].status == "sent" and res[0].dsn == "2.0.0"
    qid = re.fullmatch(r"250 2\.0\.0 Ok: queued as (\w+)", res[0].text).group(1)
    blog = (b.root / "var/log/maillog").read_text()
    assert f"{qid}: client=localhost[127.0.0.1]" in blog
    assert f"relay=127.0.0.1[127.0.0.1]:{port}," in smtp_lines(a.log.lines)[0]
    # B's queue manager may already have delivered it: look in the queue, then the mailbox
    files = [p for p in b.spool.glob(f"*/{qid}")]
    if files:
        arrived = read_queue_file(files[0])
        assert (arrived.sender, [r.address for r in arrived.recipients]) == \
            ("alice@example.com", ["user@example.org"])
        # cleanup added Message-Id:, Date: and From: after it (a local client's mail)
        assert b"\nSubject: test\n" in arrived.content and arrived.content.endswith(b"\n\nhello\n")
    else:
        box = (b.root / "var/mail/user").read_text()
        assert f"id {qid}" in box and "Return-Path: <alice@example.com>" in box


def test_host_connector_reaches_the_submission_service_on_587(tmp_path):
    """[b]:587 in memory is master.cf's submission service with its -o overrides,
    as a socket to port 587 would be; port 25 is the plain smtp service."""
    a, b = two_hosts(tmp_path)
    with open(b.path("/etc/postfix/master.cf"), "a") as f:
        f.write("submission inet n       -       y       -       -       smtpd\n"
                "  -o syslog_name=postfix/submission\n")
    for port in (587, 25):
        qf = QueueFile("4F3601600F3", "alice@example.com", [Recipient("user@example.org")],
                       a.clock.now(), b"Subject: test\n\nhi\n")
        res = SMTPClient(a, connector=HostConnector({"127.0.0.2": b})).deliver(
            qf, qf.recipients, f"[127.0.0.2]:{port}", active=a.clock.now())
        assert res[0].status == "sent", res[0].text
    tags = [ln.split()[4].split("[")[0] for ln in b.log.lines if "client=" in ln]
    assert tags == ["postfix/submission/smtpd", "postfix/smtpd"]


def test_relay_in_memory_with_host_connector(tmp_path):
    """The same without sockets: HostConnector feeds B's smtpd engine directly."""
    a, b = two_hosts(tmp_path)
    qf = QueueFile("4F3601600F3", "alice@example.com",
                   [Recipient("user@example.org", "user@example.org", "SUCCESS",
                              "rfc822;user@example.org"),
                    Recipient("ghost@example.org", "ghost@example.org", "", "")],
                   a.clock.now(), b"Subject: test\n\n.dot\n")
    res = SMTPClient(a, connector=HostConnector({"127.0.0.2": b})).deliver(
        qf, qf.recipients, "[127.0.0.2]", active=a.clock.now())
    assert [(r.recipient.address, r.status, r.dsn) for r in res] == [
        ("ghost@example.org", "bounced", "5.1.1"), ("user@example.org", "sent", "2.0.0")]
    assert res[0].text == ("host 127.0.0.2[127.0.0.2] said: 550 5.1.1 <ghost@example.org>: "
                           "Recipient address rejected: User unknown in local recipient table "
                           "(in reply to RCPT TO command)")
    assert not res[1].relayed_notice             # B offers DSN: no "relayed" notice
    qid = res[1].text.rsplit(" ", 1)[1]
    arrived = read_queue_file(b.spool / "incoming" / qid)
    assert b"Subject: test\n" in arrived.content and arrived.content.endswith(b"\n\n.dot\n")
    assert arrived.recipients[0].notify == "SUCCESS"
    assert any(f"{qid}: client=localhost[127.0.0.1]" in ln for ln in b.log.lines)


def test_host_connector_refuses_unknown_address(tmp_path):
    a, b = two_hosts(tmp_path)
    qf = message(a, ["user@example.org"])
    res = SMTPClient(a, connector=HostConnector({"127.0.0.2": b})).deliver(
        qf, qf.recipients, "[127.0.0.3]:25", active=a.clock.now())
    assert res[0].text == "connect to 127.0.0.3[127.0.0.3]:25: Connection refused"


# -- behaviour from Postfix's source, where nothing was recorded ----------------------------------

def test_never_leaves_the_machine(tmp_path):
    host = corpus_host(tmp_path, "")
    qf = message(host, ["user@example.net"])

    def public(h, hop):
        return [ServerAddress("mx.example.net", "192.0.2.25")]

    res = SMTPClient(host, resolver=public).deliver(qf, qf.recipients, "example.net",
                                                    active=host.clock.now())
    assert res[0].status == "deferred" and res[0].dsn == "4.4.1"
    assert "mailsim never leaves this machine: 192.0.2.25 is not a loopback address" in res[0].text


def test_second_address_after_refused_first(tmp_path):
    """A name with two addresses: the refused one is logged and skipped."""
    with ScriptedServer(host="127.0.0.1") as peer:
        host = corpus_host(tmp_path, "")
        with open(host.root / "etc/hosts", "a") as f:
            f.write("127.0.0.9\trelay.example.net\n127.0.0.1\trelay.example.net\n")
        qf = message(host, ["user@other.org"])
        res = SMTPClient(host).deliver(qf, qf.recipients, f"[relay.example.net]:{peer.port}",
                                       active=host.clock.now())
        peer.wait_idle()
    lines = [mask(ln) for ln in smtp_lines(host.log.lines)]
    assert lines[0] == f"postfix/smtp[PID]: connect to relay.example.net[127.0.0.9]:{peer.port}: " \
                       "Connection refused"
    assert res[0].status == "sent" and res[0].relay == f"relay.example.net[127.0.0.1]:{peer.port}"


def test_soft_error_at_first_server_tries_the_next(tmp_path):
    """smtp_trouble.c: a 4xx from a server that is not the last one only logs
    ``QID: reason``; the recipient goes to the next server."""
    with ScriptedServer(Script(greeting="421 4.3.2 busy"), host="127.0.0.1") as busy, \
            ScriptedServer(host="127.0.0.1") as ok:
        host = corpus_host(tmp_path, "")
        qf = message(host, ["user@other.org"])
        res = SMTPClient(host).deliver(
            qf, qf.recipients, f"[127.0.0.1]:{busy.port}, [127.0.0.1]:{ok.port}",
            active=host.clock.now())
        busy.wait_idle()
        ok.wait_idle()
    lines = [mask(ln) for ln in smtp_lines(host.log.lines)]
    assert lines[0] == ("postfix/smtp[PID]: QID: host 127.0.0.1[127.0.0.1] refused to talk to "
                        "me: 421 4.3.2 busy")
    assert res[0].status == "sent" and busy.sessions[0][-1]["client"] == "QUIT\r\n"


def test_soft_bounce_logs_softbounce(tmp_path):
    with ScriptedServer(Script(rcpt_default="550 5.1.1 unknown")) as peer:
        host = corpus_host(tmp_path, "").with_settings(soft_bounce="yes")
        qf = message(host, ["user@other.org"])
        res = SMTPClient(host).deliver(qf, qf.recipients, f"[127.0.0.1]:{peer.port}",
                                       active=host.clock.now())
        peer.wait_idle()
    assert (res[0].status, res[0].dsn) == ("deferred", "4.1.1")
    assert "dsn=4.1.1, status=SOFTBOUNCE (host 127.0.0.1[127.0.0.1] said: 550 5.1.1 unknown" \
        in host.log.lines[-1]


def test_smtputf8_required_but_not_offered(tmp_path):
    with ScriptedServer(Script(ehlo=["peer.example", "PIPELINING", "8BITMIME"])) as peer:
        host = corpus_host(tmp_path, "")
        qf = QueueFile("4F3601600F3", "alice@example.com",
                       [Recipient("j\u00f6rg@other.org", "j\u00f6rg@other.org")],
                       host.clock.now(), b"Subject: x\n\nx\n", {"smtputf8": "yes"})
        res = SMTPClient(host).deliver(qf, qf.recipients, f"[127.0.0.1]:{peer.port}",
                                       active=host.clock.now())
        peer.wait_idle()
    assert (res[0].status, res[0].dsn) == ("bounced", "5.6.7")
    assert res[0].text == "SMTPUTF8 is required, but was not offered by host 127.0.0.1[127.0.0.1]"
    assert [s["client"] for s in peer.sessions[0]][-1] == "QUIT\r\n"


def test_relayed_notice_without_dsn_at_the_server(tmp_path):
    with ScriptedServer(Script(ehlo=["peer.example", "PIPELINING"])) as peer:
        host = corpus_host(tmp_path, "")
        qf = QueueFile("4F3601600F3", "alice@example.com",
                       [Recipient("u@other.org", "u@other.org", "SUCCESS,FAILURE", "rfc822;u@other.org")],
                       host.clock.now(), b"Subject: x\n\nx\n")
        res = SMTPClient(host).deliver(qf, qf.recipients, f"[127.0.0.1]:{peer.port}",
                                       active=host.clock.now())
        peer.wait_idle()
    assert res[0].status == "sent" and res[0].relayed_notice


def test_own_address_on_port_25_is_a_loop(tmp_path):
    host = corpus_host(tmp_path, "")
    qf = message(host, ["user@other.org"])
    res = SMTPClient(host).deliver(qf, qf.recipients, "[127.0.0.1]", active=host.clock.now())
    assert (res[0].status, res[0].dsn, res[0].text) == (
        "bounced", "5.4.6", "mail for 127.0.0.1 loops back to myself")


@pytest.mark.parametrize("text,host,port,bracketed", [
    ("[127.0.0.1]:2526", "127.0.0.1", 2526, True), ("[mx.example.net]", "mx.example.net", 25, True),
    ("mx.example.net:587", "mx.example.net", 587, False), ("example.net", "example.net", 25, False),
    ("[ipv6:::1]:25", "::1", 25, True)])
def test_parse_nexthop(text, host, port, bracketed):
    hop = parse_nexthop(text)
    assert (hop.host, hop.port, hop.bracketed) == (host, port, bracketed)


def test_formatting_helpers():
    assert xtext("rfc822;a+b=c@example.org", "=") == "rfc822;a+2Bb+3Dc@example.org"
    assert quote_821("a..b@example.org") == '"a..b"@example.org'
    assert ServerReply(250, ("250-first", "250 2.0.0 second")).dsn == "2.0.0"
    assert ServerReply(550, ("550 4.1.1 mismatched",)).dsn == "5.0.0"
    assert ServerReply(354, ("354 go ahead",)).dsn == "5.5.0"
    assert data_bytes(b"a" * 998 + b"\n", 998) == (b"a" * 998 + b"\r\n", False)
    assert data_bytes(b"a" * 999 + b"\n", 998) == (b"a" * 998 + b"\r\n a\r\n", True)


def test_unknown_name_is_deferred_by_default(tmp_path):
    """No DNS yet: a name etc/hosts does not know waits in the queue ("try again"),
    with the reason of the lookup method main.cf selects (recorded *-dns-down)."""
    host = corpus_host(tmp_path, "")
    with pytest.raises(LookupFailure) as e:
        resolve(host, parse_nexthop("nosuch.example.invalid"))
    assert (e.value.dsn, e.value.reason) == (
        "4.4.4", "unable to look up host nosuch.example.invalid: Temporary failure in name resolution")
    dflt = init_host(tmp_path / "default")          # Postfix's defaults: DNS, MX lookups
    qf = message(dflt, ["user@other.org"])
    res = SMTPClient(dflt).deliver(qf, qf.recipients, "other.org", active=dflt.clock.now())
    assert (res[0].status, res[0].dsn, res[0].text) == (
        "deferred", "4.4.3", "Host or domain name not found. Name service error for "
                             "name=other.org type=MX: Host not found, try again")
