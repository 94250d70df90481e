"""cleanup(8), first form: from smtpd's DATA to a queue file in ``incoming``.

Postfix's cleanup daemon receives the envelope and content from smtpd,
prepends the ``Received:`` header that smtpd composed, logs the message-id and
writes the queue file. This first form does exactly that -- atomically, so a
message acknowledged with 250 is on disk -- and leaves header rewriting,
missing-header completion, canonical maps and virtual alias expansion to the
delivery part of mailsim (they are Postfix cleanup's jobs too).

Parameters read: myhostname, mail_name, hopcount_limit (not yet enforced).

Examples
--------
>>> received_header(helo="client.example.org", name="localhost", addr="127.0.0.1",
...     myhostname="mail.example.com", proto="ESMTP", queue_id="2AB9616003F",
...     rcpt="peter@example.com", when=1795597019.0)
'Received: from client.example.org (localhost [127.0.0.1])\\n\\tby mail.example.com (Postfix) with ESMTP id 2AB9616003F\\n\\tfor <peter@example.com>; Wed, 25 Nov 2026 08:56:59 +0000 (UTC)'
"""
from __future__ import annotations

import email.utils
import re
import time

from .queue import QueueFile

__all__ = ["received_header", "rfc2822_date", "cleanup_smtpd"]

_MSGID = re.compile(rb"^message-id:[ \t]*(.*?)[ \t]*$", re.I | re.M)


def rfc2822_date(t: float) -> str:
    """``Wed, 25 Nov 2026 08:56:59 +0000 (UTC)`` -- Postfix's date form, in UTC."""
    return email.utils.formatdate(t, usegmt=False).replace("-0000", "+0000") + " (UTC)"


def received_header(*, helo: str | None, name: str, addr: str, myhostname: str, proto: str,
                    queue_id: str, rcpt: str | None, when: float, mail_name: str = "Postfix") -> str:
    """The Received: header smtpd gives cleanup (``for <rcpt>`` only with one recipient)."""
    h = f"Received: from {helo or name} ({name} [{addr}])\n\tby {myhostname} ({mail_name}) with {proto} id {queue_id}"
    if rcpt is not None:
        h += f"\n\tfor <{rcpt}>; {rfc2822_date(when)}"
    else:
        h += f"; {rfc2822_date(when)}"
    return h


def _header_block(content: bytes) -> bytes:
    end = content.find(b"\n\n")
    return content if end < 0 else content[: end + 1]


def cleanup_smtpd(host, session, tx, content: bytes) -> None:
    """Write one message received by smtpd into the incoming queue, and log it."""
    now = host.clock.now()
    proto = ("UTF8" if tx.params.get("SMTPUTF8") else "") + session.protocol
    rcpt = tx.recipients[0].orig if len(tx.recipients) == 1 else None
    rec = received_header(helo=session.helo_name, name=session.client_name, addr=session.client_addr,
                          myhostname=host.conf["myhostname"], proto=proto, queue_id=tx.queue_id,
                          rcpt=rcpt, when=now, mail_name=host.conf.get("mail_name") or "Postfix")
    if session.tx_discard:
        tx.file.abort()
        return
    pid = host.cleanup_pid()
    m = _MSGID.search(_header_block(content))
    if m:
        msgid = m.group(1).decode("utf-8", "replace")
    else:
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
        msgid = f"<{stamp}.{tx.queue_id}@{host.conf['myhostname']}>"
    host.log.write("cleanup", pid, f"{tx.queue_id}: message-id={msgid}")
    qf = QueueFile(tx.queue_id, tx.sender, tx.recipients, now,
                   rec.encode() + b"\n" + content,
                   {"client_name": session.client_name, "client_address": session.client_addr,
                    "helo_name": session.helo_name or "", "protocol": proto,
                    **{k.lower(): v for k, v in tx.params.items()}},
                   hold=session.tx_hold)
    tx.file.commit(qf)
