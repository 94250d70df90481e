"""bounce(8): the delivery status notifications Postfix 3.7 writes.

What bounce(8) does
-------------------
Delivery agents (local, smtp, ...) do not write notifications themselves:
they ask the bounce(8) daemon (services ``bounce``, ``defer``, ``trace``) to
append one record per recipient to a per-message log file.  When qmgr has
finished with a message it asks bounce(8) to turn that log into a
multipart/report notification (RFC 3464), which bounce posts through
cleanup(8) as a new message from the null sender ``<>``:

* **failure** -- "Undelivered Mail Returned to Sender": some recipients
  bounced.  Returns the full message, or only its headers with
  ``RET=HDRS`` or when the message is larger than ``bounce_size_limit``.
* **delay** -- "Delayed Mail (still being retried)": sent once, when a
  message has been queued longer than ``delay_warning_time``.  Headers only.
* **success** -- "Successful Mail Delivery Report": for recipients that
  asked ``NOTIFY=SUCCESS``.  Headers only.
* **verify** -- "Mail Delivery Status Report": ``sendmail -v`` / ``-bv``.
  Headers only; Action is ``delivered``/``deliverable``/``undeliverable``.

The notification goes to the envelope sender.  Postfix also sends
*postmaster copies* ("Postmaster Copy: Undelivered Mail", headers only,
``Auto-Submitted: auto-generated``) depending on these parameters
(Postfix 3.7 defaults, as ``postconf -d`` prints them):

``notify_classes = resource, software``
    which problem classes the postmaster hears about (``bounce`` adds a
    copy of every failure notification, ``delay`` of delay warnings,
    ``2bounce`` of undeliverable bounces).
``bounce_notice_recipient = postmaster``
    who gets the ``bounce`` class postmaster copies.
``2bounce_notice_recipient = postmaster``
    who gets bounces that cannot be delivered (double bounces).
``delay_notice_recipient = postmaster``
    who gets the ``delay`` class postmaster copies.
``delay_warning_time = 0h``
    when to send a delay warning; ``0`` disables them.
``bounce_size_limit = 50000``
    above this many bytes only the headers are returned.
``maximal_queue_lifetime = 5d``
    shown in delay warnings (``Will-Retry-Until:`` and the text).

This module only *builds* the notification text (what cleanup receives from
bounce, plus the Received:/Date:/Message-Id: headers cleanup adds, in the
order Postfix 3.7.11 writes them); it decides nothing about when to send.
Layout follows src/bounce/bounce_notify_util.c and bounce_templates.c.

Example
-------
>>> r = RecipientStatus("nosuch@example.com", status="5.1.1", action="failed",
...                     reason='unknown user: "nosuch"',
...                     orcpt="rfc822;nosuch@example.com")
>>> msg = build_dsn({"myhostname": "mail.example.com", "mydomain": "example.com"},
...                 queue_id="16A671602B1", dsn_queue_id="198521602B4",
...                 sender="alice@example.com", arrival=1795597057.0,
...                 now=1795597057.0, recipients=[r],
...                 original=b"Subject: hi\\n\\nbody\\n", kind="failure")
>>> print(msg.decode().splitlines()[0:3])
['Received: by mail.example.com (Postfix)', '\\tid 198521602B4; Wed, 25 Nov 2026 08:57:37 +0000 (UTC)', 'Date: Wed, 25 Nov 2026 08:57:37 +0000 (UTC)']
>>> b'<nosuch@example.com>: unknown user: "nosuch"' in msg
True
>>> b'boundary="16A671602B1.1795597057/mail.example.com"' in msg
True
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping

from .cleanup import rfc2822_date

Kind = Literal["failure", "success", "delay", "verify"]

#: Postfix 3.7 defaults of the parameters that steer bounce(8).
DEFAULTS: dict[str, str] = {
    "notify_classes": "resource, software",
    "bounce_notice_recipient": "postmaster",
    "2bounce_notice_recipient": "postmaster",
    "delay_notice_recipient": "postmaster",
    "delay_warning_time": "0h",
    "bounce_size_limit": "50000",
    "maximal_queue_lifetime": "5d",
}

_SUBJECT = {
    "failure": "Undelivered Mail Returned to Sender",
    "delay": "Delayed Mail (still being retried)",
    "success": "Successful Mail Delivery Report",
    "verify": "Mail Delivery Status Report",
}
_POSTMASTER_SUBJECT = {
    "failure": "Postmaster Copy: Undelivered Mail",
    "delay": "Postmaster Warning: Delayed Mail",
}

_BODY = {
    "failure": [
        "This is the mail system at host $myhostname.",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients. It's attached below.",
        "",
        "For further assistance, please send mail to postmaster.",
        "",
        "If you do so, please include this problem report. You can",
        "delete your own text from the attached returned message.",
        "",
        "                   The mail system",
    ],
    "delay": [
        "This is the mail system at host $myhostname.",
        "",
        "####################################################################",
        "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #",
        "####################################################################",
        "",
        "Your message could not be delivered for more than $delay_warning_time_hours hour(s).",
        "It will be retried until it is $maximal_queue_lifetime_days day(s) old.",
        "",
        "For further assistance, please send mail to postmaster.",
        "",
        "If you do so, please include this problem report. You can",
        "delete your own text from the attached returned message.",
        "",
        "                   The mail system",
    ],
    "success": [
        "This is the mail system at host $myhostname.",
        "",
        "Your message was successfully delivered to the destination(s)",
        "listed below. If the message was delivered to mailbox you will",
        "receive no further notifications. Otherwise you may still receive",
        "notifications of mail delivery errors from other systems.",
        "",
        "                   The mail system",
    ],
    "verify": [
        "This is the mail system at host $myhostname.",
        "",
        "Enclosed is the mail delivery report that you requested.",
        "",
        "                   The mail system",
    ],
}

_LENGTH = 79  # bounce_print_wrap(): LENGTH
_INDENT = 4   # bounce_print_wrap(): INDENT

_TIME_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass
class RecipientStatus:
    """One bounce-log record: a recipient and what happened to it.

    ``reason`` is the delivery agent's text (``unknown user: "nosuch"``,
    ``delivery via local: delivered to mailbox``); ``diagnostic`` the
    ``type; text`` of Diagnostic-Code: when the agent had one
    (``smtp; 550 5.1.1 ...``, ``x-unix; input/output error``), otherwise
    ``X-Postfix; <reason>`` is used.  ``orcpt`` is the DSN ORCPT value as
    stored in the queue file (``rfc822;peter@example.com``).
    """

    address: str
    orig_address: str = ""
    status: str = "5.0.0"
    action: str = "failed"
    reason: str = ""
    diagnostic: str | None = None
    orcpt: str = ""
    remote_mta: str | None = None  # "dns; mx.example.net"

    @property
    def diagnostic_code(self) -> str:
        return self.diagnostic or f"X-Postfix; {self.reason}"

    @property
    def text_line(self) -> str:
        """The line for the human-readable part, before wrapping."""
        orig = self.orig_address
        # bounce_log_read() drops orig_addr when it equals the address.
        if orig and orig.lower() != self.address.lower():
            return f"<{self.address}> (expanded from <{orig}>): {self.reason}"
        return f"<{self.address}>: {self.reason}"


def line_wrap(text: str, length: int = _LENGTH, indent: int = _INDENT) -> list[str]:
    """Postfix util/line_wrap.c: break at blanks so lines stay within
    ``length`` columns; continuation lines are indented by ``indent``.

    >>> line_wrap('<bob@example.com>: cannot update mailbox /var/mail/bob for user bob. error writing message: File too large')
    ['<bob@example.com>: cannot update mailbox /var/mail/bob for user bob. error', '    writing message: File too large']
    """
    out: list[str] = []
    curr_indent = 0
    start = 0
    word = 0
    n = len(text)
    while word is not None:
        m = re.compile(r"[ \t]").search(text, word)
        next_space = m.start() if m else n
        if word > start and next_space - start > length - curr_indent:
            out.append(" " * curr_indent + text[start:word].rstrip())
            while word < n and text[word].isspace():
                word += 1
            if start == 0:
                curr_indent += indent
            start = word
        word = next_space + 1 if next_space < n else None
    out.append(" " * curr_indent + text[start:].rstrip())
    return out


def _conf(host_like: Any) -> Callable[[str, str], str]:
    conf = getattr(host_like, "conf", host_like)

    def get(name: str, default: str = "") -> str:
        try:
            value = conf[name]
        except KeyError:
            value = None
        if value is None:
            value = DEFAULTS.get(name, default)
        # plain dicts: expand $name / ${name} once more (MainConfig already did)
        if isinstance(conf, Mapping) and "$" in value:
            value = re.sub(r"\$\{?(\w+)\}?", lambda mm: get(mm.group(1)), value)
        return value
    return get


def _seconds(value: str, default_unit: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", value)
    if not m:
        return 0
    return int(m.group(1)) * _TIME_UNITS[m.group(2) or default_unit]


def _is_header(line: str) -> bool:
    """IS_HEADER() of bounce_original(): continuation or ``name:``."""
    return line[:1] in (" ", "\t") or re.match(r"[!-9;-~]+[ \t]*:", line) is not None


def message_id(now: float, dsn_queue_id: str, myhostname: str) -> str:
    """``<YYYYMMDDhhmmss.QUEUEID@myhostname>``: what cleanup adds."""
    return "<%s.%s@%s>" % (time.strftime("%Y%m%d%H%M%S", time.gmtime(now)), dsn_queue_id, myhostname)


def boundary(queue_id: str, now: float, myhostname: str) -> str:
    """``QUEUEID.TIME/myhostname``: bounce_mail_init()'s MIME boundary."""
    return f"{queue_id}.{int(now)}/{myhostname}"


def build_dsn(host_like: Any, *, queue_id: str, dsn_queue_id: str, sender: str,
              arrival: float, now: float, recipients: list[RecipientStatus],
              original: bytes, kind: Kind = "failure",
              ret: Literal["FULL", "HDRS"] | None = None, envid: str | None = None,
              encoding: str = "8bit", postmaster_copy: bool = False,
              to: str | None = None, message_size: int | None = None) -> bytes:
    """The complete notification (header + body, LF line ends) as it
    reaches a mailbox, minus the delivery agent's Return-Path:,
    X-Original-To: and Delivered-To:.

    ``original`` is the queued message content (headers and body as cleanup
    stored them, starting with Postfix's own Received: header).  ``to`` is
    the notification recipient (default: ``sender``, qualified with
    ``$myorigin``; postmaster copies go to ``bounce_notice_recipient``).
    ``encoding`` is the original's body encoding: ``8bit`` (what Postfix
    3.7.11 records for SMTP and sendmail mail) or ``7bit``.
    """
    if kind not in _SUBJECT:
        raise ValueError(f"unknown notification kind {kind!r}")
    get = _conf(host_like)
    myhostname = get("myhostname")
    myorigin = get("myorigin") or get("mydomain")

    def qualify(addr: str) -> str:
        return addr if "@" in addr or not addr else f"{addr}@{myorigin}"

    if to is None:
        to = (get("delay_notice_recipient" if kind == "delay" else "bounce_notice_recipient")
              if postmaster_copy else sender)
    to = qualify(to)
    bnd = boundary(queue_id, now, myhostname)
    date = rfc2822_date(now)
    eight = encoding.lower() != "7bit"
    lines: list[str] = []
    add = lines.append

    # -- message header (cleanup adds Received:, Date:, Message-Id:)
    add(f"Received: by {myhostname} (Postfix)")
    add(f"\tid {dsn_queue_id}; {date}")
    add(f"Date: {date}")
    add(f"From: Mail Delivery System <MAILER-DAEMON@{myorigin}>")
    subject = _POSTMASTER_SUBJECT.get(kind, _SUBJECT[kind]) if postmaster_copy else _SUBJECT[kind]
    add(f"Subject: {subject}")
    add(f"To: {to}")
    add("Auto-Submitted: " + ("auto-generated" if postmaster_copy else "auto-replied"))
    add("MIME-Version: 1.0")
    add("Content-Type: multipart/report; report-type=delivery-status;")
    add(f'\tboundary="{bnd}"')
    add(f"Content-Transfer-Encoding: {'8bit' if eight else '7bit'}")
    add("Message-Id: " + message_id(now, dsn_queue_id, myhostname))
    add("")
    add("This is a MIME-encapsulated message.")

    # -- human-readable part
    add("")
    add(f"--{bnd}")
    add("Content-Description: Notification")
    add(f"Content-Type: text/plain; charset={'utf-8' if eight else 'us-ascii'}")
    if eight:
        add(f"Content-Transfer-Encoding: {encoding}")
    add("")
    macros = {
        "myhostname": myhostname,
        "delay_warning_time_hours": str(_seconds(get("delay_warning_time"), "h") // 3600),
        "maximal_queue_lifetime_days": str(_seconds(get("maximal_queue_lifetime"), "d") // 86400),
    }
    for line in ([] if postmaster_copy else _BODY[kind]):   # postmaster gets no boiler-plate
        lines.append(re.sub(r"\$(\w+)", lambda mm: macros.get(mm.group(1), mm.group(0)), line))
    for r in recipients:
        add("")
        lines.extend(line_wrap(r.text_line))

    # -- machine-readable part
    add("")
    add(f"--{bnd}")
    add("Content-Description: Delivery report")
    add("Content-Type: message/delivery-status")
    add("")
    add(f"Reporting-MTA: dns; {myhostname}")
    if envid:
        add(f"Original-Envelope-Id: {envid}")
    add(f"X-Postfix-Queue-ID: {queue_id}")
    # the null sender is shown as mail_addr_mail_daemon(): MAILER-DAEMON@$myhostname
    add(f"X-Postfix-Sender: rfc822; {sender or 'MAILER-DAEMON@' + myhostname}")
    if arrival > 0:
        add(f"Arrival-Date: {rfc2822_date(arrival)}")
    max_queue = _seconds(get("maximal_queue_lifetime"), "d")
    for r in recipients:
        add("")
        add(f"Final-Recipient: rfc822; {r.address}")
        if r.orcpt:
            add(f"Original-Recipient: {r.orcpt}")
        elif r.orig_address:
            add(f"Original-Recipient: rfc822; {r.orig_address}")
        add(f"Action: {'failed' if kind == 'failure' else r.action}")
        add(f"Status: {r.status}")
        if r.remote_mta:
            lines.extend(line_wrap(f"Remote-MTA: {r.remote_mta}"))
        lines.extend(line_wrap(f"Diagnostic-Code: {r.diagnostic_code}"))
        if kind == "delay":
            add(f"Will-Retry-Until: {rfc2822_date(arrival + max_queue)}")

    # -- the original message, or its headers
    # a postmaster copy has the headers only, a double bounce (ret FULL) the whole message
    headers_only = kind != "failure" or ret == "HDRS" or (postmaster_copy and ret != "FULL")
    limit = int(get("bounce_size_limit") or 0)
    size = len(original) if message_size is None else message_size
    if limit > 0 and (size <= 0 or size > limit):
        headers_only = True
    add("")
    add(f"--{bnd}")
    add("Content-Description: %s%s" % ("Undelivered " if kind in ("failure", "delay") else "",
                                       "Message Headers" if headers_only else "Message"))
    add("Content-Type: " + ("text/rfc822-headers" if headers_only else "message/rfc822"))
    if eight:
        add(f"Content-Transfer-Encoding: {encoding}")
    add("")
    add(f"Return-Path: <{sender or 'MAILER-DAEMON@' + myhostname}>")
    text = original.decode("utf-8", "surrogateescape").replace("\r\n", "\n")
    body_lines = text.split("\n")
    if body_lines and body_lines[-1] == "":
        body_lines.pop()
    for line in body_lines:
        if headers_only and not _is_header(line):
            break
        add(line)
    add("")
    add(f"--{bnd}--")
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
