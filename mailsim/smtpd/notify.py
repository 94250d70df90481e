"""smtpd's transcript notice to the postmaster (smtpd_chat.c, smtpd.c chat_reset).

smtpd keeps a transcript of each session: every command line it read
(``In:  EHLO client.example.org``) and every reply line it sent (``Out: 250
2.1.0 Ok``), and a set of *error classes* its errors fell into. When the
session ends (or the transcript grows past ``smtpd_history_flush_threshold``
lines at EHLO, RSET or the end of a message) and one of those classes is in
``notify_classes``, the postmaster gets the transcript by mail, from the
double-bounce address::

    Subject: Postfix SMTP server: errors from localhost[127.0.0.1]

    Transcript of session follows.

     Out: 220 mail.example.com ESMTP Postfix (Debian/GNU)
     In:  EHLO client.example.org
     ...

The classes (postconf(5) notify_classes; Postfix's default is ``resource,
software``): ``software`` (a configuration error: ``451 4.3.5 Server
configuration error``), ``resource`` (no queue space, a queue file write
error), ``data`` (a table lookup failure: ``451 4.3.0 Temporary lookup
failure``), ``bounce`` (a message too big, too many hops; the notice then
goes to ``bounce_notice_recipient``), ``policy`` (a restriction's reject) and
``protocol`` (a command syntax or sequence error).

mailsim sets the class where the restriction code or the reply says which one
it is; replies that no restriction made get theirs from the reply itself
(:func:`reply_class`).

>>> t = Transcript()
>>> t.command("RCPT TO:<defertext@example.com>")
>>> t.reply("450 4.7.1 <defertext@example.com>: Recipient address rejected: Come back later")
>>> print("\\n".join(t.body_lines()))
 In:  RCPT TO:<defertext@example.com>
 Out: 450 4.7.1 <defertext@example.com>: Recipient address rejected: Come back
     later
"""
from __future__ import annotations

from ..bounce import line_wrap
from ..cleanup import rfc2822_date

__all__ = ["Transcript", "reply_class", "notice", "CLASSES"]

#: notify_classes names smtpd can set (2bounce and delay concern bounce(8))
CLASSES = ("bounce", "data", "policy", "protocol", "resource", "software")
_LENGTH, _INDENT = 78, 4      # smtpd_chat_notify(): LENGTH, INDENT


def _printable(text: str) -> str:
    """printable(text, '?'): every byte outside printable ASCII becomes '?'."""
    raw = text.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if 32 <= b < 127 else "?" for b in raw)


class Transcript:
    """One session's history (smtpd_chat.c's state->history) and error classes."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.errors: set[str] = set()

    def command(self, line: str) -> None:
        self.lines.append("In:  " + line)

    def reply(self, text: str) -> None:
        self.lines.extend("Out: " + ln for ln in text.split("\n"))

    def error(self, cls: str) -> None:
        self.errors.add(cls)

    def reset(self) -> None:
        self.lines.clear()
        self.errors.clear()

    def body_lines(self) -> list[str]:
        """The transcript as the notice prints it: printable, wrapped, one space in front."""
        return [" " + part for ln in self.lines
                for part in line_wrap(_printable(ln), _LENGTH, _INDENT)]


def reply_class(code: int, enhanced: str | None) -> str | None:
    """The error class of a 4xx/5xx reply that no restriction made (smtpd.c's choices).

    >>> reply_class(501, "5.5.4"), reply_class(552, "5.3.4"), reply_class(452, "4.3.1")
    ('protocol', 'bounce', 'resource')
    >>> reply_class(454, "4.7.0"), reply_class(250, "2.1.0"), reply_class(554, "5.7.1")
    ('software', None, 'policy')
    """
    if code < 400:
        return None
    e = enhanced or ""
    if e.endswith(".3.4") or e.endswith(".4.6") or e == "5.4.0":
        return "bounce"            # message too big, too many hops (mail loop)
    if e in ("4.3.1", "4.3.0") and code == 452 or e == "4.3.0" and code == 451:
        return "resource"          # no queue space; queue file write error
    if code == 454 and e == "4.7.0":
        return "software"          # TLS not available due to local problem
    if 500 <= code <= 504 or e.startswith("5.5.") or e.startswith("4.5."):
        return "protocol"
    return "policy"


def notice(host, session, transcript: Transcript, reason: str | None = None) -> str | None:
    """Mail the transcript to the postmaster if its errors are in notify_classes
    (smtpd_chat_notify); returns the new queue id, or None when nothing is sent."""
    wanted = {c.strip().lower() for c in host.conf.list("notify_classes")}
    if not transcript.lines or not transcript.errors & wanted:
        return None
    from ..bounce_notify import _double_bounce, post_mail
    c = host.conf
    to = c["bounce_notice_recipient"] if "bounce" in transcript.errors else c["error_notice_recipient"]
    now = host.clock.now()
    me = c["myhostname"]
    standard = c.get("header_from_format", "standard") == "standard"

    def build(queue_id: str) -> bytes:
        date = rfc2822_date(now)
        head = [f"Received: by {me} ({c.get('mail_name') or 'Postfix'})", f"\tid {queue_id}; {date}",
                f"Date: {date}"]
        if standard:
            head += [f"From: Mail Delivery System <MAILER-DAEMON@{me}>", f"To: Postmaster <{to}>"]
        else:
            head += [f"From: MAILER-DAEMON@{me} (Mail Delivery System)", f"To: {to} (Postmaster)"]
        head.append(f"Subject: {c.get('mail_name') or 'Postfix'} SMTP server: errors from "
                    f"{session.client_namaddr}")
        body = ["", "Transcript of session follows.", "", *transcript.body_lines(), ""]
        if reason:
            body.append(f"Session aborted, reason: {reason}")
        body += ["", "For other details, see the local mail logfile"]
        return ("\n".join(head + body) + "\n").encode("utf-8", "surrogateescape")

    return post_mail(host, _double_bounce(host), to, build)
