"""mailsim.bounce against the notifications Postfix 3.7.11 wrote.

Each recorded notification is rebuilt from facts visible in its scenario:
the queue ids (log / Received: header), the time (boundary timestamp; Date,
Arrival-Date and Message-Id are at one-second resolution and the scenarios
ran within one second), the sender and recipients (dialogue / log) and the
original message (the DATA the client sent, behind the Received: header
smtpd + cleanup add; for the sendmail commands, the headers returned in
the notification itself).  The comparison is byte-for-byte on the whole
notification; the local(8) delivery headers and the mbox ``From `` line
are cut off the recorded text first.  A second, masked comparison (ids,
dates, boundary timestamp) documents that only volatile parts could differ.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mailsim.bounce import RecipientStatus, build_dsn, line_wrap
from mailsim.cleanup import received_header

GOLDEN = Path(__file__).parent / "golden" / "postfix-3.7"
CONF = {"myhostname": "mail.example.com", "mydomain": "example.com", "myorigin": "$mydomain"}


def _split_mbox(mbox: str) -> list[str]:
    """Messages of an mbox, without the ``From `` line and the separator."""
    msgs = re.split(r"(?m)^From \S+  \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n", mbox)
    out = []
    for m in msgs[1:]:
        assert m.endswith("\n\n")
        out.append(m[:-1])
    return out


def _strip_local_headers(msg: str) -> str:
    """Drop what local(8) prepended: Return-Path, X-Original-To, Delivered-To."""
    lines = msg.split("\n")
    while lines[0].split(":")[0] in ("Return-Path", "X-Original-To", "Delivered-To"):
        lines.pop(0)
    return "\n".join(lines)


def _facts(dsn: str) -> dict:
    qid, ts = re.search(r'boundary="([0-9A-F]+)\.(\d+)/', dsn).groups()
    return {
        "queue_id": qid,
        "now": float(ts),
        "dsn_queue_id": re.search(r"^\tid ([0-9A-F]+);", dsn, re.M).group(1),
    }


def _mask(text: str) -> str:
    text = re.sub(r"\b[0-9A-F]{10,12}\b", "QID", text)
    text = re.sub(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000 \(UTC\)", "DATE", text)
    text = re.sub(r"<\d{14}\.QID@", "<MSGID@", text)
    return re.sub(r"QID\.\d+/", "QID.TS/", text)


def _queued_content(scenario: dict, qid: str, when: float) -> bytes:
    """What cleanup stored for the scenario's SMTP message: smtpd's Received:
    header and the DATA (CRLF -> LF, dot-unstuffed, without the final dot)."""
    rcpts = [re.match(r"RCPT TO:<([^>]*)>", s["send"]).group(1)
             for s in scenario["dialogue"] if (s["send"] or "").startswith("RCPT TO:")]
    data_i = next(i for i, s in enumerate(scenario["dialogue"]) if s["send"] == "DATA\r\n")
    data = scenario["dialogue"][data_i + 1]["send"]
    assert data.endswith("\r\n.\r\n")
    body = data[:-3].replace("\r\n", "\n")
    body = "\n".join(l[1:] if l.startswith(".") else l for l in body.split("\n"))
    helo = re.match(r"EHLO (\S+)", scenario["dialogue"][1]["send"]).group(1)
    rec = received_header(helo=helo, name="localhost", addr="127.0.0.1",
                          myhostname="mail.example.com", proto="ESMTP", queue_id=qid,
                          rcpt=rcpts[0] if len(rcpts) == 1 else None, when=when)
    return (rec + "\n" + body).encode()


def _check(recorded: str, built: bytes) -> None:
    assert _mask(built.decode()) == _mask(recorded)  # structure and wording
    assert built.decode() == recorded                # and byte-identical


SMTP_CASES = {
    # scenario: (sender, recipients, kind, ret, envid)
    "bounce-alias-missing": ("alice@example.com", [RecipientStatus(
        "nosuchuser@example.com", "ghost@example.com", "5.1.1", "failed",
        'unknown user: "nosuchuser"', orcpt="rfc822;ghost@example.com")], "failure", None, None),
    "unknown-user-accepted-bounce": ("alice@example.com", [RecipientStatus(
        "nosuch@example.com", "nosuch@example.com", "5.1.1", "failed",
        'unknown user: "nosuch"', orcpt="rfc822;nosuch@example.com")], "failure", None, None),
    "mailbox-quota": ("alice@example.com", [RecipientStatus(
        "bob@example.com", "bob@example.com", "5.2.2", "failed",
        "cannot update mailbox /var/mail/bob for user bob. error writing message: File too large",
        diagnostic="x-unix; input/output error", orcpt="rfc822;bob@example.com")],
        "failure", None, None),
    "dsn-success": ("alice@example.com", [RecipientStatus(
        "peter@example.com", "peter@example.com", "2.0.0", "delivered",
        "delivery via local: delivered to mailbox", orcpt="rfc822;peter@example.com")],
        "success", "HDRS", "oracle-123"),
}


@pytest.mark.parametrize("name", sorted(SMTP_CASES))
def test_smtp_scenario_notification(name: str) -> None:
    scenario = json.loads((GOLDEN / f"{name}.json").read_text())
    (recorded,) = _split_mbox(scenario["mailboxes"]["alice"])
    recorded = _strip_local_headers(recorded)
    f = _facts(recorded)
    sender, rcpts, kind, ret, envid = SMTP_CASES[name]
    built = build_dsn(CONF, queue_id=f["queue_id"], dsn_queue_id=f["dsn_queue_id"],
                      sender=sender, arrival=f["now"], now=f["now"], recipients=rcpts,
                      original=_queued_content(scenario, f["queue_id"], f["now"]),
                      kind=kind, ret=ret, envid=envid)
    _check(recorded, built)


def _returned_part(dsn: str) -> bytes:
    """The message headers returned in a recorded notification, minus the
    Return-Path: bounce(8) adds (the sendmail originals are not recorded)."""
    last = dsn.rsplit("\n--", 2)[-2]
    part = last.split("\n\n", 1)[1]
    assert part.startswith("Return-Path: ")
    return (part.split("\n", 1)[1]).encode()


# sendmail commands: (mailbox, index) -> (sender, recipients, kind)
VERIFY = "delivery via local: delivers to mailbox"
COMMAND_CASES = {
    ("marc", 0): ("root@example.com", [RecipientStatus(
        "peter@example.com", "peter", "2.0.0", "deliverable", VERIFY,
        orcpt="rfc822;peter@example.com")], "verify"),
    ("marc", 1): ("root@example.com", [
        RecipientStatus("peter@example.com", "staff@example.com", "2.0.0", "deliverable", VERIFY,
                        orcpt="rfc822;staff@example.com"),
        RecipientStatus("gerda@example.com", "staff@example.com", "2.0.0", "deliverable", VERIFY,
                        orcpt="rfc822;staff@example.com")], "verify"),
    ("marc", 2): ("root@example.com", [RecipientStatus(
        "nosuch@example.com", "nosuch@example.com", "5.1.1", "undeliverable",
        'delivery via local: unknown user: "nosuch"', orcpt="rfc822;nosuch@example.com")],
        "verify"),
    ("alice", 0): ("alice@example.com", [RecipientStatus(
        "gerda@example.com", "info@sue.nl", "2.0.0", "deliverable", VERIFY,
        orcpt="rfc822;info@sue.nl")], "verify"),
    ("alice", 1): ("alice@example.com", [RecipientStatus(
        "nosuch@example.com", "nosuch", "5.1.1", "failed", 'unknown user: "nosuch"',
        orcpt="rfc822;nosuch@example.com")], "failure"),
}


@pytest.mark.parametrize("case", sorted(COMMAND_CASES), ids=lambda c: f"{c[0]}-{c[1]}")
def test_sendmail_command_notification(case: tuple[str, int]) -> None:
    mailboxes = json.loads((GOLDEN / "commands.json").read_text())["mailboxes_after_sendmail_commands"]
    dsns = [m for m in _split_mbox(mailboxes[case[0]]) if m.startswith("Return-Path: <>")]
    recorded = _strip_local_headers(dsns[case[1]])
    f = _facts(recorded)
    sender, rcpts, kind = COMMAND_CASES[case]
    original = _returned_part(recorded)  # failure: full message, else headers
    built = build_dsn(CONF, queue_id=f["queue_id"], dsn_queue_id=f["dsn_queue_id"],
                      sender=sender, arrival=f["now"], now=f["now"], recipients=rcpts,
                      original=original, kind=kind, ret=None, envid=None)
    _check(recorded, built)


def test_all_recorded_notifications_covered() -> None:
    mailboxes = json.loads((GOLDEN / "commands.json").read_text())["mailboxes_after_sendmail_commands"]
    found = {(box, i) for box, text in mailboxes.items()
             for i, m in enumerate(m for m in _split_mbox(text) if m.startswith("Return-Path: <>"))}
    assert found == set(COMMAND_CASES)


def test_line_wrap_postfix_width() -> None:
    s = "<gerda@example.com> (expanded from <info@sue.nl>): delivery via local: delivers to mailbox"
    assert line_wrap(s) == [s[:79], "    to mailbox"]  # exactly 79 columns fit
    assert line_wrap("short") == ["short"]
    assert line_wrap("x" * 100 + " y") == ["x" * 100, "    y"]  # overlong words stay whole


def test_headers_only_above_bounce_size_limit() -> None:
    big = b"Subject: big\n\n" + b"x" * 60000 + b"\n"
    r = RecipientStatus("bob@example.com", status="5.2.2", reason="too big")
    out = build_dsn(CONF, queue_id="AAA", dsn_queue_id="BBB", sender="a@example.com",
                    arrival=0, now=0, recipients=[r], original=big, kind="failure")
    assert b"Content-Description: Undelivered Message Headers" in out
    assert b"Content-Type: text/rfc822-headers" in out
    assert b"xxx" not in out and b"Arrival-Date" not in out


def test_delay_warning() -> None:
    conf = dict(CONF, delay_warning_time="4h")
    r = RecipientStatus("bob@example.net", status="4.4.1", action="delayed",
                        reason="connect to mx.example.net: Connection refused")
    out = build_dsn(conf, queue_id="AAA", dsn_queue_id="BBB", sender="a@example.com",
                    arrival=0, now=4 * 3600, recipients=[r], original=b"Subject: x\n\nbody\n",
                    kind="delay").decode()
    assert "Subject: Delayed Mail (still being retried)\n" in out
    assert "more than 4 hour(s).\nIt will be retried until it is 5 day(s) old." in out
    assert "Action: delayed\n" in out
    assert "Will-Retry-Until: Tue,  6 Jan 1970 00:00:00 +0000 (UTC)" in out     # mail_date: %e
    assert "Content-Description: Undelivered Message Headers" in out and "body" not in out


def test_deferred_then_bounce_multi_host() -> None:
    """postfix-3.7-multi/06: a delay warning after delay_warning_time=60s and
    the final bounce after maximal_queue_lifetime=150s (arrival != now,
    Will-Retry-Until:, wrapped Diagnostic-Code:, 'Undelivered Message Headers')."""
    import email.utils

    scenario = json.loads((GOLDEN.parent / "postfix-3.7-multi" / "06-deferred-then-bounce.json").read_text())
    conf = dict(CONF, delay_warning_time="60s", maximal_queue_lifetime="150s")
    warning, bounce = (_strip_local_headers(m) for m in
                       _split_mbox(scenario["mailboxes"]["alice@mail.example.com"]))
    arrival = email.utils.parsedate_to_datetime(
        re.search(r"^Arrival-Date: (.*) \(UTC\)$", bounce, re.M).group(1)).timestamp()
    original = _returned_part(bounce)  # the full message, as returned by the bounce
    reason = "connect to mx.down.example[127.0.0.10]:25: Connection refused"
    for recorded, kind, action in ((warning, "delay", "delayed"), (bounce, "failure", "failed")):
        f = _facts(recorded)
        r = RecipientStatus("peter@down.example", "peter@down.example", "4.4.1", action, reason,
                            orcpt="rfc822;peter@down.example")
        built = build_dsn(conf, queue_id=f["queue_id"], dsn_queue_id=f["dsn_queue_id"],
                          sender="alice@example.com", arrival=arrival, now=f["now"],
                          recipients=[r], original=original, kind=kind)
        _check(recorded, built)


def test_accepts_a_host(tmp_path) -> None:
    from mailsim.host import init_host

    h = init_host(tmp_path / "mx", hostname="mail.example.com", users=["alice"])
    r = RecipientStatus("nosuch@example.com", status="5.1.1", reason='unknown user: "nosuch"')
    out = build_dsn(h, queue_id="AAA", dsn_queue_id="BBB", sender="alice", arrival=1.0, now=1.0,
                    recipients=[r], original=b"Subject: x\n\nbody\n").decode()
    assert "From: Mail Delivery System <MAILER-DAEMON@example.com>\nSubject:" in out
    assert "\nTo: alice@example.com\n" in out and "\nbody\n" in out
