"""cleanup(8), first form: from smtpd's DATA to a queue file in ``incoming``.

Postfix's cleanup daemon receives the envelope and content from smtpd,
prepends the ``Received:`` header that smtpd composed, adds missing
Message-Id/Date/From headers for local clients, logs the message-id, refuses a
message whose queue file would outgrow message_size_limit, and writes the
queue file. This first form does that -- atomically, so a message
acknowledged with 250 is on disk -- and leaves header rewriting, canonical
maps, header/body checks and virtual alias expansion to the delivery part of
mailsim (they are Postfix cleanup's jobs too).

Parameters read: myhostname, mail_name, message_size_limit,
always_add_missing_headers, local_header_rewrite_clients.

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


#: Postfix queue-file bytes for the envelope records of a message from
#: alice@example.com to peter@example.com, client localhost[127.0.0.1], HELO
#: client.example.org (size, time and attribute records): measured on
#: Postfix 3.7.11 (tests/golden/postfix-3.7-recorded/size-boundary-small.json).
_ENVELOPE_BASE = 684


def _record(n: int) -> int:
    """Bytes of one queue-file record with ``n`` bytes of data (type, length, data)."""
    return 1 + (1 if n < 128 else 2 if n < 16384 else 3) + n


def queue_file_size(session, tx, content: bytes, received: str, added_headers: list[str]) -> int:
    """An estimate of the size Postfix's queue file would have for this message.

    cleanup(8) refuses a message ("552 5.3.4 Error: message file too big") when
    its queue file would outgrow ``message_size_limit``; that file holds the
    envelope records, the Received header and any headers cleanup adds, as well
    as the message. mailsim's queue files have another format, so it counts what
    Postfix's would hold: exact for the message and headers, calibrated for the
    envelope.
    """
    size = _ENVELOPE_BASE
    size += len(tx.sender) - len("alice@example.com")
    size += 2 * (len(session.helo_name or "") - len("client.example.org"))
    size += 3 * (len(session.client_name) - len("localhost"))
    size += 3 * (len(session.client_addr) - len("127.0.0.1"))
    for i, r in enumerate(tx.recipients):
        extra = 3 * len(r.address) + len(r.orcpt) + len(r.notify)
        size += extra - (3 * len("peter@example.com") + len("rfc822;peter@example.com")) if i == 0 \
            else extra + 20
    for line in received.split("\n") + added_headers:
        size += _record(len(line))
    for line in content.split(b"\n")[:-1] if content else []:
        size += _record(len(line))
    return size


_HEADER_NAME = re.compile(rb"^([!-9;-~]+):")


def split_headers(content: bytes) -> tuple[list[bytes], bytes]:
    """(header lines, rest): headers end at the first line that is not one (is_header())."""
    lines = content.split(b"\n")
    heads: list[bytes] = []
    i = 0
    while i < len(lines) - 1:
        ln = lines[i]
        if _HEADER_NAME.match(ln) or (heads and ln[:1] in (b" ", b"\t")):
            heads.append(ln)
            i += 1
        else:
            break
    return heads, b"\n".join(lines[i:])


def _is_local_client(host, session) -> bool:
    """local_header_rewrite_clients (default permit_inet_interfaces) or always_add_missing_headers."""
    c = host.conf
    if c.bool("always_add_missing_headers"):
        return True
    for item in c.list("local_header_rewrite_clients"):
        it = item.lower()
        if it == "permit_inet_interfaces" and session.client_addr in host.own_addresses():
            return True
        if it == "permit_mynetworks":
            from .domains import match_network
            if match_network(session.client_addr, c.list("mynetworks")):
                return True
        if it == "static:all":
            return True
    return False


def missing_headers(host, session, tx, heads: list[bytes], now: float) -> list[str]:
    """The headers cleanup adds when they are missing: Message-Id, Date, From."""
    if not _is_local_client(host, session):
        return []
    names = {m.group(1).lower() for h in heads if (m := _HEADER_NAME.match(h))}
    out = []
    if b"message-id" not in names:
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
        out.append(f"Message-Id: <{stamp}.{tx.queue_id}@{host.conf['myhostname']}>")
    if b"date" not in names:
        out.append(f"Date: {rfc2822_date(now)}")
    if b"from" not in names:
        out.append(f"From: {tx.sender or 'MAILER-DAEMON'}")
    return out


def _checks(host, session, tx, kind: str, lines: list[bytes]) -> tuple[str | None, list[bytes]]:
    """header_checks / body_checks (header_checks(5)): returns (reject text or None, lines kept).

    Supported actions: REJECT, DISCARD, HOLD, WARN, IGNORE, PREPEND, REPLACE,
    DUNNO/OK; FILTER, REDIRECT and BCC are logged and remembered.
    """
    specs = host.conf.list("header_checks" if kind == "header" else "body_checks")
    if not specs:
        return None, lines
    who = (f"from {session.client_namaddr}; from=<{tx.sender}> to=<{tx.recipients[0].address}> "
           f"proto={session.protocol} helo=<{session.helo_name or ''}>")
    kept: list[bytes] = []
    for raw in lines:
        text = raw.decode("utf-8", "surrogateescape")
        value = None
        for spec in specs:
            try:
                value = host.open_map(spec).lookup(text)
            except Exception:     # a broken table: Postfix defers; keep going here
                value = None
            if value is not None:
                break
        if value is None:
            kept.append(raw)
            continue
        word, _, arg = value.partition(" ")
        action = word.upper()
        arg = arg.strip()
        log = f"{tx.queue_id}: {action.lower()}: {kind} {text} {who}"
        if action == "REJECT":
            m = re.match(r"^([45]\.\d{1,3}\.\d{1,3})\s+(.*)$", arg)
            dsn, why = (m.group(1), m.group(2)) if m else ("5.7.1", arg or "message content rejected")
            host.log.write("cleanup", host.cleanup_pid(), f"{log}: {dsn} {why}")
            return f"{dsn} {why}", kept
        if action in ("DISCARD",):
            host.log.write("cleanup", host.cleanup_pid(), log + (f": {arg}" if arg else ""))
            session.tx_discard = True
            kept.append(raw)
        elif action in ("HOLD", "WARN"):
            name = "warning" if action == "WARN" else "hold"
            host.log.write("cleanup", host.cleanup_pid(),
                           f"{tx.queue_id}: {name}: {kind} {text} {who}" + (f": {arg}" if arg else ""))
            if action == "HOLD":
                session.tx_hold = True
            kept.append(raw)
        elif action == "IGNORE":
            continue
        elif action in ("PREPEND", "REPLACE"):
            host.log.write("cleanup", host.cleanup_pid(), f"{log}: {arg}")
            if action == "PREPEND":
                kept.append(arg.encode("utf-8", "surrogateescape"))
                kept.append(raw)
            else:
                kept.append(arg.encode("utf-8", "surrogateescape"))
        elif action in ("DUNNO", "OK"):
            kept.append(raw)
        elif action in ("FILTER", "REDIRECT", "BCC"):
            host.log.write("cleanup", host.cleanup_pid(), f"{log}: {arg}")
            session.tx_actions.append((action, arg))
            kept.append(raw)
        else:
            host.log.write("cleanup", host.cleanup_pid(),
                           f"warning: unknown command in {kind}_checks map: {value}")
            kept.append(raw)
    return None, kept


def _logical_headers(heads: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for h in heads:
        if out and h[:1] in (b" ", b"\t"):
            out[-1] += b"\n" + h
        else:
            out.append(h)
    return out


def cleanup_smtpd(host, session, tx, content: bytes) -> bool | str:
    """Write one message received by smtpd into the incoming queue, and log it.

    Returns True when queued; False when the queue file would exceed
    message_size_limit (smtpd answers "552 5.3.4 Error: message file too
    big"); or the "5.7.1 text" of a header/body_checks REJECT (smtpd answers 550).
    """
    now = host.clock.now()
    proto = ("UTF8" if tx.params.get("SMTPUTF8") else "") + session.protocol
    rcpt = tx.recipients[0].orig if len(tx.recipients) == 1 else None
    rec = received_header(helo=session.helo_name, name=session.client_name, addr=session.client_addr,
                          myhostname=host.conf["myhostname"], proto=proto, queue_id=tx.queue_id,
                          rcpt=rcpt, when=now, mail_name=host.conf.get("mail_name") or "Postfix")
    if session.tx_discard:
        tx.file.abort()
        return True
    heads, rest = split_headers(content)
    why, checked = _checks(host, session, tx, "header", _logical_headers(heads))
    if why is not None:
        tx.file.abort()
        return why
    if checked != _logical_headers(heads):
        heads = [ln for h in checked for ln in h.split(b"\n")]
    added = missing_headers(host, session, tx, heads, now)
    limit = host.conf.int("message_size_limit")
    if limit and queue_file_size(session, tx, content, rec, added) > limit:
        tx.file.abort()
        return False
    pid = host.cleanup_pid()
    msgid = next((h.split(b":", 1)[1].strip().decode("utf-8", "replace") for h in heads
                  if h[:11].lower() == b"message-id:"), None)
    if msgid is None:
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
        msgid = f"<{stamp}.{tx.queue_id}@{host.conf['myhostname']}>"
    host.log.write("cleanup", pid, f"{tx.queue_id}: message-id={msgid}")
    body_lines = rest.split(b"\n")[:-1]
    if body_lines and body_lines[0] == b"":
        body_lines = body_lines[1:]          # the empty line that ends the headers
    why, _ = _checks(host, session, tx, "body", body_lines)
    if why is not None:
        tx.file.abort()
        return why
    if session.tx_discard:
        tx.file.abort()
        return True
    if added:
        body = rest if rest.startswith(b"\n") or not rest else b"\n" + rest
        content = b"".join(h + b"\n" for h in heads) + "".join(a + "\n" for a in added).encode() + body
    qf = QueueFile(tx.queue_id, tx.sender, tx.recipients, now,
                   rec.encode() + b"\n" + content,
                   {"client_name": session.client_name, "client_address": session.client_addr,
                    "helo_name": session.helo_name or "", "protocol": proto,
                    **{k.lower(): v for k, v in tx.params.items()}},
                   hold=session.tx_hold)
    # a HOLD action (access table or header_checks) parks the message in the hold queue
    tx.file.commit(qf, queue="hold" if session.tx_hold else "incoming")
    return True
