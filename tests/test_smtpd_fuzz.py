"""Seeded random sessions against smtpd: it never crashes, always answers in SMTP's
reply format, and every message it acknowledged with "queued as ID" is delivered,
deferred or bounced afterwards -- never lost.

The commands are drawn from SMTP's verbs with odd arguments (empty, NUL, 8-bit,
overlong, source routes, bad literals, ESMTP parameters), mixed with raw junk
(bare CR or LF, lone dots, 3,000-byte lines) under several configurations. A
failure names the seed and session, so it can be replayed.
"""
from __future__ import annotations

import random
import re

import pytest

from mailsim.host import init_host

VERBS = ["HELO", "EHLO", "MAIL FROM:", "RCPT TO:", "DATA", "BDAT", "RSET", "NOOP", "VRFY",
         "ETRN", "QUIT", "STARTTLS", "AUTH", "XCLIENT", "HELP", "EXPN", "", "mail from:",
         "rcpt to:"]
ARGS = ["", "<>", "<alice@example.org>", "<peter@example.com>", "peter", "<@a,@b:user@c>",
        "<a b@c>", '<"x y"@example.com>', "<user@[127.0.0.1]>", "<user@[IPv6:::1]>",
        "<user@[1.2.3]>", "SIZE=100", "SIZE=99999999999", "BODY=8BITMIME", "SMTPUTF8",
        "NOTIFY=SUCCESS", "ORCPT=rfc822;x@y", "RET=FULL", "ENVID=x", "AUTH=<>", "100",
        "0 LAST", "10 LAST", "x", "PLAIN", "PLAIN AGVsbG8=", "<p\u00e9ter@example.com>",
        "\x00", "\x7f", "=" * 600, "<" + "a" * 300 + "@example.com>"]
JUNK = [b"\r\n", b"\n", b"\r", b".\r\n", b"\x00", b"\xff\xfe",
        b"Subject: x\r\n\r\nbody\r\n.\r\n", b"line\nbare lf\r\n.\r\n", b"A" * 3000 + b"\r\n"]
SETTINGS = [{}, {"smtpd_sasl_auth_enable": "yes"}, {"smtpd_delay_reject": "no"},
            {"smtputf8_enable": "no"}, {"message_size_limit": "200"},
            {"smtpd_recipient_restrictions": "check_recipient_access hash:/etc/postfix/nosuch"},
            {"notify_classes": "bounce, data, policy, protocol, resource, software"},
            {"smtpd_forbid_bare_newline": "reject"}, {"soft_bounce": "yes"}]
REPLY = re.compile(r"^\d{3}[ -]")
QUEUED = re.compile(r"queued as ([0-9A-F]+)")


BODIES = [b"Subject: hi\r\n\r\nhello\r\n", b"no header at all\r\n", b"..leading dot\r\n",
          b"Subject: x\r\n" + b"B" * 2500 + b"\r\n", b"bare\nlf\r\n", b"8bit \xe9\xff\r\n", b""]


def _transaction(rng: random.Random) -> bytes:
    """A whole transaction, pipelined: MAIL, one or two RCPTs, DATA, a body, the dot."""
    rcpts = rng.sample(["<peter@example.com>", "<postmaster>", "<nosuch@example.com>",
                        "<user@other.org>", "<root@example.com>"], rng.randint(1, 2))
    out = b"MAIL FROM:" + rng.choice([b"<alice@example.org>", b"<>", b"<bob@example.com>"])
    out += rng.choice([b"", b" SIZE=50", b" BODY=8BITMIME", b" RET=HDRS ENVID=e1"]) + b"\r\n"
    out += b"".join(b"RCPT TO:" + r.encode() + b"\r\n" for r in rcpts)
    return out + b"DATA\r\n" + rng.choice(BODIES) + b".\r\n"


def _session(host, rng: random.Random) -> bytes:
    s = host.smtpd(rng.choice(["127.0.0.1", "192.0.2.7", "203.0.113.9"]))
    out = s.greeting()
    for _ in range(rng.randint(1, 25)):
        if rng.random() < 0.15:
            data = _transaction(rng)
        elif rng.random() < 0.8:
            line = rng.choice(VERBS) + (" " if rng.random() < 0.7 else "") + rng.choice(ARGS)
            data = line.encode("utf-8", "surrogateescape") + rng.choice([b"\r\n", b"\r\n", b"\n"])
        else:
            data = rng.choice(JUNK)
        out += s.receive(data)
        if s.closed:
            break
    if not s.closed:
        s.lost()
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sessions(seed, tmp_path):
    rng = random.Random(seed)
    base = init_host(tmp_path / "mx", users=["peter"])
    queued: list[str] = []
    for n in range(120):
        host = base.with_settings(**rng.choice(SETTINGS))
        out = _session(host, rng).decode("utf-8", "replace")
        for ln in out.split("\r\n")[:-1]:
            assert REPLY.match(ln), f"seed {seed} session {n}: not a reply line: {ln[:120]!r}"
        queued += QUEUED.findall(out)
        host.run_queue()
    assert len(queued) >= 10, f"seed {seed}: only {len(queued)} messages acknowledged"
    log = "\n".join(base.log.lines)
    for qid in queued:       # acknowledged: delivered, bounced, deferred -- or still queued
        assert re.search(rf"{qid}: to=<[^>]*>.* status=(sent|bounced|deferred)", log) or \
            any(base.spool.glob(f"*/{qid}")) or any(base.spool.glob(f"*/*/{qid}")), qid
