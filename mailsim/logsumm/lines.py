"""One Postfix log line, read as pflogsumm reads it; and how pflogsumm shortens
names and reject reasons. Part of :mod:`mailsim.logsumm`.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: the columns of the traffic tables, in pflogsumm's order
OUTCOMES = ("received", "delivered", "deferred", "bounced", "rejected")


# -- one log line ------------------------------------------------------------------------------
_SYSLOG = re.compile(r"(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) "
                     r"(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d) \S+ (?P<rest>.+)")
_RFC3339 = re.compile(r"(?P<y>\d{4})-(?P<mon>\d\d)-(?P<day>\d\d)T(?P<h>\d\d):(?P<m>\d\d):"
                      r"(?P<s>\d\d)(?:\.\d+)?(?:[+-]\d\d:\d\d|Z) \S+ (?P<rest>.+)")
_SOLARIS_ID = re.compile(r": \[ID \d+ [^\]]+\] ")


@dataclass(frozen=True)
class LogLine:
    """One Postfix log line, split up: time, service (``smtpd``, ``relay/smtp``), text.

    ``rest`` is everything after the host name (``postfix/smtpd[17]: ...``);
    ``year`` is None for syslog's traditional time stamps.
    """
    month: int          # 1..12
    day: int
    hour: int
    minute: int
    second: int
    year: int | None
    service: str
    text: str
    rest: str

    @property
    def word(self) -> str:
        """The first word of the text: a queue id, ``NOQUEUE``, ``warning``, ``connect``..."""
        m = re.match(r"[^:\s]+", self.text)
        return m.group(0) if m else ""

    def timestamp(self, year: int) -> float:
        """Seconds since the epoch (UTC), taking ``year`` when the line has none."""
        return float(calendar.timegm((self.year or year, self.month, self.day,
                                      self.hour, self.minute, self.second, 0, 0, 0)))


def _program(rest: str, syslog_name: str) -> tuple[str, str] | None:
    """(service, text) of ``postfix/smtpd[17]: text``; None for other programs."""
    m = re.match(rf"(?:postfix|{re.escape(syslog_name)})(?:/(?:smtps|submission))?/([^\[:]*)"
                 r"(?:\[\d+\])?: ?(.*)", rest)
    if m:
        return m.group(1), m.group(2)
    m = re.match(r"(postfix(?:-script)?)(?:\[\d+\])?: (.*)", rest)
    return (m.group(1), m.group(2)) if m else None


def parse_line(line: str, syslog_name: str = "postfix") -> LogLine | None:
    """Split a log line; None when it is not a Postfix line.

    >>> ln = parse_line("Nov 25 08:56:59 mail postfix/smtpd[15983]: connect from localhost[127.0.0.1]")
    >>> ln.service, ln.word, ln.hour
    ('smtpd', 'connect', 8)
    >>> parse_line("Nov 25 08:56:59 mail sshd[1]: Accepted publickey") is None
    True
    """
    line = _SOLARIS_ID.sub(": ", line.rstrip("\n"), count=1)
    m = _SYSLOG.match(line)
    if m and m.group("mon") in MONTHS:
        month, year = MONTHS.index(m.group("mon")) + 1, None
    else:
        m = _RFC3339.match(line)
        if not m:
            return None
        month, year = int(m.group("mon")), int(m.group("y"))
    prog = _program(m.group("rest"), syslog_name)
    if prog is None:
        return None
    return LogLine(month, int(m.group("day")), int(m.group("h")), int(m.group("m")),
                   int(m.group("s")), year, prog[0], prog[1], m.group("rest"))


# -- how pflogsumm shortens things --------------------------------------------------------------
def _trim(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` characters, the last three being ``...``."""
    return text if len(text) <= width else text[:width - 3] + "..."


def _trim_reply(text: str, width: int) -> str:
    """Shorten a remote server's reason: drop ``... said:`` prefixes, then leading
    ``word:`` parts, then cut.

    >>> _trim_reply("cannot update mailbox /var/mail/bob for user bob. error writing message: File too large", 66)
    'File too large'
    """
    while len(text) > width:
        if " said: " in text:
            text = text.rsplit(" said: ", 1)[1]
        elif ":" in text:
            text = text.split(":", 1)[1].lstrip(" ")
        else:
            return text[:width - 3] + "..."
    return text


_IP4 = r"(?:\d{1,3}\.){3}\d{1,3}"
_SHORT_TLD = re.compile(r"^(?:.*)\.([^.]+)\.([^.]{3}|[^.]{2,3}\.[^.]{2})$")


def client_domain(client: str) -> str:
    """The domain of an smtpd client ``name[addr]``: the last two labels of the name,
    or the address when the name is ``unknown``.

    >>> client_domain("mail.example.com[192.0.2.1]"), client_domain("unknown[192.0.2.7]")
    ('example.com', '192.0.2.7')
    >>> client_domain("localhost[127.0.0.1]")
    'localhost'
    """
    m = (re.match(rf"([^\[]*)\[({_IP4})\]", client)
         or re.match(r"([^/]*)/([0-9a-f.:]+)", client, re.I)
         or re.match(r"([^\[(/]*)[\[(/]([^\])]+)[\])]:?\d*$", client))
    name, addr = (m.group(1), m.group(2)) if m else ("", "")
    if name in ("", "unknown"):
        return addr
    short = _SHORT_TLD.match(name)
    return f"{short.group(1)}.{short.group(2)}".lower() if short else name


def _sort_key(name: str) -> str:
    """Order of equal counts: IPv4 addresses numerically, names by reversed labels."""
    first = name.split()[0] if name.split() else ""
    if re.fullmatch(_IP4, first):
        return "".join(chr(int(o)) for o in first.split("."))
    return "".join(reversed(re.split(r"[.@]", first))).lower()


def _lower_domain(addr: str) -> str:
    """``User@Example.COM`` -> ``User@example.com`` (the local part keeps its case)."""
    local, at, domain = addr.partition("@")
    return local + at + domain.lower() if at else addr


# -- restriction actions (reject, reject_warning, hold, discard) --------------------------------
_ACTION = re.compile(r".* \b(?:reject(?:_warning)?|hold|discard): (\S+) from (\S+?): (.*)$")


def _short_reason(stage: str, reply: str) -> str:
    """The reason pflogsumm files a restriction action under."""
    if stage in ("RCPT", "DATA", "CONNECT"):
        r = re.sub(r"^(\d{3} <).*?(>:)", r"\1\2", reply)
        r = re.sub(r"^(?:\d{3} \d\.\d\.\d )(Protocol error);.*$", r"\1", r)
        r = re.sub(r"^(?:.*?[:;] )(?:\[[^\]]+\] )?([^;,]+)[;,].*$", r"\1", r)
        r = re.sub(r"^((?:Sender|Recipient) address rejected: [^:]+):.*$", r"\1", r)
        return re.sub(r"(client|Client host|Sender address) .+? blocked", "blocked", r)
    if stage == "MAIL":
        return re.sub(r"^\d{3} (?:<.+>: )?([^;:]+)[;:]?.*$", r"\1", reply)
    return re.sub(r"^(?:.*[:;] )?([^,]+).*$", r"\1", reply)


def _reject_entry(rest: str) -> tuple[str, str, str]:
    """(stage, reason, who) for one smtpd restriction action line."""
    m = _ACTION.match(rest)
    stage, client, reply = m.groups() if m else ("", "", "")
    reason = _short_reason(stage, reply)
    to = (re.search(r"to=<([^>]+)>", reply) or re.search(r"\d{3} <([^>]+)>: User unknown ", reply)
          or re.search(r"to=<(.*?)(?:[, ]|$)", reply))
    frm = re.search(r"from=<([^>]+)>", reply)
    if reason.startswith("Sender address rejected:"):
        return stage, reason, frm.group(1) if frm else "<>"
    if re.match(r"(Recipient address rejected:|User unknown( |$))", reason):
        return stage, reason, to.group(1) if to else "<>"
    special = re.match(r".*?\d{3} (Improper use of SMTP command pipelining);.*$", reason)
    if special:
        src = re.match(r".+? from (\S+?):.*$", rest)
        return stage, special.group(1), src.group(1) if src else ""
    special = re.match(r".*?\d{3} (Message size exceeds fixed limit);.*$", reason)
    if special:
        return stage, special.group(1), client_domain(client)
    special = re.match(r".*?\d{3} (Server configuration (?:error|problem));.*$", reason)
    if special:
        return stage, "(Local) " + special.group(1), client_domain(client)
    return stage, reason, client_domain(client)
