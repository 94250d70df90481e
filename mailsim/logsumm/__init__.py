"""A Postfix log summary, like pflogsumm's: what the mail server did, in numbers.

Models the report of ``pflogsumm`` (Debian package *pflogsumm*, the usual
answer to "how much mail did we handle, and what went wrong?"): it reads a
Postfix 3.7 log -- mailsim's (:func:`mailsim.maillog.log_path`) or a real
server's ``/var/log/mail.log`` -- and counts

* messages received (smtpd ``client=`` and pickup ``uid=``/``sender=``
  lines), delivered (``status=sent``, each recipient), forwarded (``sent``
  with ``forwarded as``), deferred (messages, and every ``status=deferred``
  line as a deferral), bounced (``status=bounced``);
* smtpd and cleanup restriction actions: rejected, reject warnings, held,
  discarded (``reject:``, ``reject_warning:``, ``hold:``, ``discard:``);
* bytes received / delivered (qmgr's ``size=``), senders, sending
  hosts/domains, recipients, recipient domains;
* traffic per hour of the day and per day, the top senders and recipients,
  the reject, bounce and deferral reasons, warnings, fatal errors, panics and
  master(8)'s messages.

The counting rules are pflogsumm 1.1.5's, so both tools give the same numbers
for the same log (tests/test_pflogsumm.py runs both): a message counts as
received only with a ``client=``/``pickup`` line, so bounces that Postfix
generates itself are delivered but never received; the "rejected" column of
the traffic tables counts every restriction action; "reject %" is rejected /
(delivered + rejected + discarded); reasons are shortened the same way.

:func:`summarize` returns a :class:`Summary` (plain counters, for notebooks
and :mod:`mailsim.plots`); :meth:`Summary.report` prints it laid out as
pflogsumm does; ``mailsim --root DIR logsumm [LOGFILE ...]`` is the command.

Reads: log lines only (no configuration); the program name prefix is
``postfix`` or ``--syslog-name``. Does not: select a day (``-d today``: a log
has no year and mailsim has no wall clock -- cut the log instead), ``-e``
message detail, ``--smtpd-stats``, ``--verp-mung``, ``-m``/``-i`` address
munging, ``--mailq``. Lines it does not know are skipped, as pflogsumm does.
The year, which syslog lines lack, comes from ``year`` (the per-day table
prints it). The order of equal counts is alphabetical (pflogsumm's is
random). Per-day rows always have five columns (pflogsumm leaves out the
trailing columns of a day that had none of that traffic).

The code is split by job: ``lines`` reads one log line (and shortens names as
pflogsumm does), this module counts, ``report`` prints.

Examples
--------
>>> log = [
...  "Nov 25 08:57:37 mail postfix/smtpd[17]: 16A: client=localhost[127.0.0.1]",
...  "Nov 25 08:57:37 mail postfix/qmgr[16]: 16A: from=<alice@example.com>, size=388, nrcpt=2 (queue active)",
...  "Nov 25 08:57:37 mail postfix/local[11]: 16A: to=<peter@example.com>, relay=local, delay=0.01, "
...  "delays=0.01/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)",
...  "Nov 25 08:57:37 mail postfix/local[11]: 16A: to=<nosuch@example.com>, relay=local, delay=0.01, "
...  'delays=0.01/0/0/0, dsn=5.1.1, status=bounced (unknown user: "nosuch")',
...  "Nov 25 08:58:00 mail postfix/smtpd[18]: NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 454 4.7.1 "
...  "<u@other.org>: Relay access denied; from=<a@example.net> to=<u@other.org> proto=ESMTP helo=<x>",
... ]
>>> s = summarize(log, year=2026)
>>> s.received, s.delivered, s.bounced, s.rejected, s.reject_percent, s.bytes_delivered
(1, 1, 1, 1, 50, 388)
>>> s.rejects["RCPT"]["Relay access denied"]
Counter({'192.0.2.7': 1})
>>> print(s.report().split("\\n\\n")[1])
      1   received
      1   delivered
      0   forwarded
      0   deferred
      1   bounced
      1   rejected (50%)
      0   reject warnings
      0   held
      0   discarded (0%)
"""
from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, TextIO

from .lines import (MONTHS, OUTCOMES, LogLine, _lower_domain, _reject_entry, _trim, _trim_reply,
                    client_domain, parse_line)
from .report import format_report

__all__ = ["LogLine", "Summary", "RecipientDomain", "parse_line", "summarize", "read_log",
           "summarize_host", "format_report", "client_domain", "main", "OUTCOMES", "MONTHS"]


# -- the summary ----------------------------------------------------------------------------------
Nested = dict[str, dict[str, Counter]]


@dataclass
class RecipientDomain:
    """Deliveries to one recipient domain."""
    sent: int = 0
    bytes: int = 0
    defers: int = 0
    delay_total: float = 0.0
    delay_max: float = 0.0

    @property
    def delay_avg(self) -> float:
        return self.delay_total / self.sent if self.sent else 0.0


@dataclass
class Summary:
    """Counters of one log (see the module docstring for what counts as what)."""
    received: int = 0
    delivered: int = 0
    forwarded: int = 0
    deferred: int = 0                 # messages with at least one deferral
    deferrals: int = 0                # status=deferred lines
    bounced: int = 0
    rejected: int = 0
    reject_warnings: int = 0
    held: int = 0
    discarded: int = 0
    bytes_received: int = 0
    bytes_delivered: int = 0
    year: int = 2026
    #: sender -> messages / bytes; sending domain -> messages / bytes
    senders: Counter = field(default_factory=Counter)
    sender_bytes: Counter = field(default_factory=Counter)
    sending_domains: Counter = field(default_factory=Counter)
    sending_domain_bytes: Counter = field(default_factory=Counter)
    #: recipient -> deliveries / bytes; recipient domain -> RecipientDomain
    recipients: Counter = field(default_factory=Counter)
    recipient_bytes: Counter = field(default_factory=Counter)
    recipient_domains: dict[str, RecipientDomain] = field(default_factory=dict)
    #: outcome (OUTCOMES) -> 24 counts by hour of day, summed over all days
    per_hour: dict[str, list[int]] = field(
        default_factory=lambda: {o: [0] * 24 for o in OUTCOMES})
    #: (year, month, day) -> {outcome: count}
    per_day: dict[tuple[int, int, int], Counter] = field(default_factory=dict)
    #: every (year, month, day) with a Postfix line
    day_set: set[tuple[int, int, int]] = field(default_factory=set)
    #: (year, month, day, hour) -> {outcome: count}: the hours as they came, for plots
    timeline: dict[tuple[int, int, int, int], Counter] = field(default_factory=dict)
    #: stage (RCPT, MAIL, header...) -> reason -> {address or client: count}
    rejects: Nested = field(default_factory=dict)
    reject_warning_detail: Nested = field(default_factory=dict)
    holds: Nested = field(default_factory=dict)
    discards: Nested = field(default_factory=dict)
    #: service -> {reason: count}; relay -> {reason: count}
    deferral_detail: dict[str, Counter] = field(default_factory=dict)
    bounce_detail: dict[str, Counter] = field(default_factory=dict)
    smtp_failures: dict[str, Counter] = field(default_factory=dict)
    warnings: dict[str, Counter] = field(default_factory=dict)
    fatals: dict[str, Counter] = field(default_factory=dict)
    panics: dict[str, Counter] = field(default_factory=dict)
    master: Counter = field(default_factory=Counter)
    #: queue id -> recipient, for deliveries whose message size was not in the log
    no_size: dict[str, str] = field(default_factory=dict)
    # per-message state while reading
    _sizes: dict[str, int] = field(default_factory=dict, repr=False)
    _origin: dict[str, str] = field(default_factory=dict, repr=False)
    _deferred_ids: set[str] = field(default_factory=set, repr=False)

    # -- derived numbers ---------------------------------------------------------------
    @property
    def reject_percent(self) -> int:
        """Rejected as a whole percentage of delivered + rejected + discarded."""
        total = self.delivered + self.rejected + self.discarded
        return int(self.rejected * 100 / total) if total else 0

    @property
    def discard_percent(self) -> int:
        total = self.delivered + self.rejected + self.discarded
        return int(self.discarded * 100 / total) if total else 0

    @property
    def days(self) -> int:
        """How many days the log covers (days with any Postfix line)."""
        return len(self.day_set)

    @property
    def recipient_domain_count(self) -> int:
        """Recipient domains that had at least one delivery."""
        return sum(1 for d in self.recipient_domains.values() if d.sent)

    def totals(self) -> dict[str, int]:
        """The Grand Totals as a dict (the numbers the report's first block shows)."""
        return {"received": self.received, "delivered": self.delivered,
                "forwarded": self.forwarded, "deferred": self.deferred,
                "deferrals": self.deferrals, "bounced": self.bounced,
                "rejected": self.rejected, "reject_warnings": self.reject_warnings,
                "held": self.held, "discarded": self.discarded,
                "bytes_received": self.bytes_received, "bytes_delivered": self.bytes_delivered,
                "senders": len(self.senders), "sending_domains": len(self.sending_domains),
                "recipients": len(self.recipients),
                "recipient_domains": self.recipient_domain_count}

    def reject_reasons(self) -> Counter:
        """Rejects by short reason (all stages together), for a bar chart."""
        out: Counter = Counter()
        for reasons in self.rejects.values():
            for reason, who in reasons.items():
                out[reason] += sum(who.values())
        return out

    def report(self, **options) -> str:
        """The text report, laid out as pflogsumm's (options: see :func:`format_report`)."""
        return format_report(self, **options)

    # -- reading ------------------------------------------------------------------------
    def _tally(self, ln: LogLine, outcome: str) -> None:
        self.per_hour[outcome][ln.hour] += 1
        day = (ln.year or self.year, ln.month, ln.day)
        self.per_day.setdefault(day, Counter())[outcome] += 1
        self.timeline.setdefault(day + (ln.hour,), Counter())[outcome] += 1

    def _touch_day(self, ln: LogLine) -> None:
        self.day_set.add((ln.year or self.year, ln.month, ln.day))

    def add(self, ln: LogLine) -> None:
        """Count one parsed line."""
        self._touch_day(ln)
        word = ln.word
        if ln.service == "cleanup" and self._cleanup_action(ln):
            return
        if word in ("warning", "fatal", "panic"):
            table = {"warning": self.warnings, "fatal": self.fatals, "panic": self.panics}[word]
            reason = ln.rest.rsplit(f"{word}: ", 1)[-1]
            table.setdefault(ln.service, Counter())[_trim(reason, 66)] += 1
        elif word in ("reject", "reject_warning", "hold", "discard"):
            self._action(ln, word)
        elif ln.service == "master":
            self.master[ln.rest.rsplit(": ", 1)[-1]] += 1
        elif ln.service in ("smtpd", "postscreen"):
            self._smtpd(ln)
        else:
            self._queue_line(ln)

    def _cleanup_action(self, ln: LogLine) -> bool:
        """header_checks/body_checks/milter actions logged by cleanup(8)."""
        m = re.search(r"\b((?:milter-)?reject|warning|hold|discard): "
                      r"(header|body|END-OF-MESSAGE) (.*)$", ln.text)
        if not m:
            return False
        action, where, what = m.groups()
        what = _trim(re.sub(r"( from \S+?)?; from=<.*$", "", what), 64)
        table = {"reject": self.rejects, "milter-reject": self.rejects,
                 "warning": self.reject_warning_detail, "hold": self.holds,
                 "discard": self.discards}[action]
        table.setdefault(ln.service, {}).setdefault(where, Counter())[what] += 1
        self._count_action(action.replace("milter-", "").replace("warning", "reject_warning"))
        self._tally(ln, "rejected")
        return True

    def _count_action(self, action: str) -> None:
        if action == "reject":
            self.rejected += 1
        elif action == "reject_warning":
            self.reject_warnings += 1
        elif action == "hold":
            self.held += 1
        else:
            self.discarded += 1

    def _action(self, ln: LogLine, action: str) -> None:
        """An smtpd restriction action: count it and file its reason."""
        self._count_action(action)
        self._tally(ln, "rejected")
        table = {"reject": self.rejects, "reject_warning": self.reject_warning_detail,
                 "hold": self.holds, "discard": self.discards}[action]
        stage, reason, who = _reject_entry(ln.rest)
        table.setdefault(stage, {}).setdefault(reason, Counter())[who] += 1

    def _smtpd(self, ln: LogLine) -> None:
        m = re.match(r"\w+: client=(.+?)(?:,|$)", ln.text)
        if m:
            self._received(ln, client_domain(m.group(1)))
            return
        m = re.match(r"\w+: (reject(?:_warning)?|hold|discard): ", ln.text)
        if m:
            self._action(ln, m.group(1))

    def _received(self, ln: LogLine, origin: str) -> None:
        self.received += 1
        self._tally(ln, "received")
        self._origin[ln.word] = origin

    def _queue_line(self, ln: LogLine) -> None:
        """qmgr's from=/size= line, a delivery agent's to= line, pickup, smtp failures."""
        m = re.search(r"from=<([^>]*)>, size=(\d+)", ln.text)
        if m:
            self._sender(ln.word, m.group(1), int(m.group(2)))
            return
        m = re.search(r"to=<([^>]*)>, (?:orig_to=<[^>]*>, )?relay=([^,]+), (?:conn_use=[^,]+, )?"
                      r"delay=([^,]+), (?:delays=[^,]+, )?(?:dsn=[^,]+, )?status=(\S+)(.*)$",
                      ln.text)
        if m:
            self._delivery(ln, *m.groups())
        elif ln.service == "pickup" and re.search(r": (?:sender|uid)=", ln.text):
            self._received(ln, "pickup")
        elif ln.service == "smtp":
            self._smtp_failure(ln.text)

    def _sender(self, qid: str, addr: str, size: int) -> None:
        if self._sizes.get(qid):
            return                      # qmgr logs it again on every retry
        addr = _lower_domain(addr) if addr else "from=<>"
        self._sizes[qid] = size
        origin = self._origin.pop(qid, None)
        if origin is None:              # not received here: a bounce, a forward...
            return
        m = re.match(r"[^@]+@(.+)$", addr)
        domain = m.group(1) if m else (addr if origin == "pickup" else origin)
        self.sending_domains[domain] += 1
        self.sending_domain_bytes[domain] += size
        self.senders[addr] += 1
        self.sender_bytes[addr] += size
        self.bytes_received += size

    def _delivery(self, ln: LogLine, addr: str, relay: str, delay: str, status: str,
                  after: str) -> None:
        addr = _lower_domain(addr)
        domain = re.sub(r"^[^@]+@", "", addr)
        try:
            seconds = float(delay)
        except ValueError:
            seconds = 0.0
        if status == "sent":
            if "forwarded as " in after:
                self.forwarded += 1
                return
            self._sent(ln, addr, domain, seconds)
        elif status == "deferred":
            self._deferred(ln, domain, seconds)
        elif status == "bounced":
            m = re.search(r", status=bounced \((.+)\)", ln.text)
            reason = re.sub(r"^\d{3} ", "", _trim_reply(m.group(1) if m else "", 66))
            self.bounce_detail.setdefault(relay, Counter())[reason] += 1
            self.bounced += 1
            self._tally(ln, "bounced")

    def _sent(self, ln: LogLine, addr: str, domain: str, seconds: float) -> None:
        d = self.recipient_domains.setdefault(domain, RecipientDomain())
        d.sent += 1
        d.delay_total += seconds
        d.delay_max = max(d.delay_max, seconds)
        self.recipients[addr] += 1
        self.delivered += 1
        self._tally(ln, "delivered")
        size = self._sizes.get(ln.word)
        if size:
            d.bytes += size
            self.recipient_bytes[addr] += size
            self.bytes_delivered += size
        else:
            self.recipient_bytes[addr] += 0
            self.no_size[ln.word] = addr

    def _deferred(self, ln: LogLine, domain: str, seconds: float) -> None:
        m = re.search(r", status=deferred \(([^)]+)", ln.text)
        reason = _trim_reply(m.group(1) if m else "", 65)
        reason = re.sub(r"^connect to ", "", re.sub(r"^\d{3} ", "", reason))
        self.deferral_detail.setdefault(ln.service, Counter())[reason] += 1
        self.deferrals += 1
        self._tally(ln, "deferred")
        if ln.word not in self._deferred_ids:
            self._deferred_ids.add(ln.word)
            self.deferred += 1
        d = self.recipient_domains.setdefault(domain, RecipientDomain())
        d.defers += 1
        d.delay_max = max(d.delay_max, seconds)

    def _smtp_failure(self, text: str) -> None:
        m = (re.match(r".* connect to (\S+?): ([^;]+); address \S+ port.*$", text)
             or re.match(r".* connect to ([^\[]+)\[\S+?\]: (.+?) \(port \d+\)$", text))
        if m:
            self.smtp_failures.setdefault(m.group(2).lower(), Counter())[m.group(1)] += 1


def summarize(lines: Iterable[str], *, syslog_name: str = "postfix",
              year: int = 2026) -> Summary:
    """Read log lines (str) and count them into a :class:`Summary`.

    ``year`` is the year of syslog time stamps (they have none).
    """
    s = Summary(year=year)
    for raw in lines:
        ln = parse_line(raw, syslog_name)
        if ln is not None:
            s.add(ln)
    return s


def read_log(path: str | Path) -> list[str]:
    """The lines of a log file (bytes that are not UTF-8 are kept as they are)."""
    return Path(path).read_text("utf-8", "surrogateescape").splitlines()


# -- the command --------------------------------------------------------------------------------------
class _UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="logsumm", add_help=False,
                                description="Summarize a Postfix log, as pflogsumm does.")
    p.add_argument("--help", action="store_true")
    p.add_argument("-h", type=int, default=None, dest="top_hosts", metavar="CNT",
                   help="top CNT host/domain lines")
    p.add_argument("-u", type=int, default=None, dest="top_users", metavar="CNT",
                   help="top CNT sender/recipient lines")
    p.add_argument("--detail", type=int, default=None, metavar="CNT",
                   help="top CNT lines everywhere not set otherwise")
    p.add_argument("-q", action="store_true", dest="quiet", help="leave out empty sections")
    p.add_argument("--problems-first", "--problems_first", action="store_true")
    p.add_argument("--syslog-name", "--syslog_name", default=None)
    p.add_argument("--year", type=int, default=None, help="year of the log's time stamps")
    p.add_argument("logfile", nargs="*")

    def error(message: str):
        raise _UsageError(message)
    p.error = error  # type: ignore[method-assign]
    return p


def _clock_year(host) -> int:
    """The year on the host's clock (syslog time stamps have none)."""
    import time
    return time.gmtime(host.clock.now()).tm_year


def summarize_host(host, *, year: int | None = None) -> Summary:
    """The summary of a simulated host's log (:func:`mailsim.maillog.log_path`);
    a host that has logged nothing yet gives an empty summary."""
    from ..maillog import log_path
    path = log_path(host)
    lines = read_log(path) if path.exists() else []
    return summarize(lines, syslog_name=host.conf.get("syslog_name") or "postfix",
                     year=_clock_year(host) if year is None else year)


def main(root: Path, argv: list[str], out: TextIO, err: TextIO) -> int:
    """``mailsim --root DIR logsumm [-h CNT] [-u CNT] [--detail CNT] [-q]
    [--problems-first] [--syslog-name NAME] [--year YYYY] [LOGFILE ...]``.

    Without a LOGFILE, the host's own log. Exit status 0; 1 if a file cannot
    be read; 2 for a usage error.
    """
    from ..host import Host
    p = _parser()
    try:
        a = p.parse_args(argv)
    except _UsageError as e:
        err.write(f"logsumm: {e}\n{p.format_usage()}")
        return 2
    if a.help:
        out.write(p.format_help())
        return 0
    host = None
    try:
        host = Host(root)
    except FileNotFoundError as e:
        if not a.logfile:
            err.write(f"logsumm: {e}\n")
            return 1
    if a.logfile:
        lines: list[str] = []
        for f in a.logfile:
            try:
                lines += read_log(f)
            except OSError as e:
                err.write(f"logsumm: cannot read {f}: {e.strerror}\n")
                return 1
        s = summarize(lines, syslog_name=a.syslog_name or "postfix",
                      year=a.year or (_clock_year(host) if host else 2026))
    else:
        s = summarize_host(host, year=a.year)
    detail = -1 if a.detail is None else a.detail
    out.write(s.report(top_hosts=detail if a.top_hosts is None else a.top_hosts,
                       top_users=detail if a.top_users is None else a.top_users,
                       detail=detail, problems_first=a.problems_first, quiet=a.quiet))
    return 0
