"""Pictures of a mail server's day, drawn from its log (what MRTG/munin graphs show).

Models no Postfix program: on a real server these pictures come from
pflogsumm's tables, ``mailgraph`` or a monitoring system reading the same
log. Three figures (each a :class:`matplotlib.figure.Figure`, made without
pyplot, so nothing is shown twice in a notebook and no GUI is needed):

* :func:`traffic_by_hour` -- messages per hour, a stacked bar per outcome
  (delivered, deferred, bounced, rejected; received as a line over them),
  from a :class:`mailsim.logsumm.Summary`: the hours of the day for a
  one-day log, the hours as they came for a longer one;
* :func:`queue_size` -- how many messages were in the queue over time, and
  how many of them deferred, reconstructed from log lines by
  :func:`queue_series`: a message is queued from cleanup's ``message-id=``
  line (or the first line qmgr writes about it) until a ``removed`` line or
  a cleanup reject/discard; it counts as deferred after a
  ``status=deferred`` line until qmgr takes it into the active queue again;
* :func:`reject_reasons` -- a horizontal bar per reject reason, from the
  summary's reject detail.

The data behind each figure is also available as plain numbers
(:func:`hourly_counts`, :func:`queue_series`, ``Summary.reject_reasons``),
which is what the tests check -- never pixels.

Reads: log lines (:mod:`mailsim.logsumm` parses them). Does not: draw live
data, per-domain or per-client plots, or anything pflogsumm does not count.

Examples
--------
>>> log = [
...   "Nov 25 09:00:00 mail postfix/cleanup[2]: 1A2B3C: message-id=<a@b>",
...   "Nov 25 09:00:00 mail postfix/qmgr[3]: 1A2B3C: from=<a@b.org>, size=300, nrcpt=1 (queue active)",
...   "Nov 25 09:00:01 mail postfix/smtp[4]: 1A2B3C: to=<u@c.org>, relay=none, delay=1, "
...   "delays=1/0/0/0, dsn=4.4.1, status=deferred (connect to c.org[192.0.2.1]:25: Connection refused)",
...   "Nov 25 10:30:00 mail postfix/qmgr[3]: 1A2B3C: from=<a@b.org>, size=300, nrcpt=1 (queue active)",
...   "Nov 25 10:30:01 mail postfix/smtp[4]: 1A2B3C: to=<u@c.org>, relay=c.org[192.0.2.1]:25, delay=5401, "
...   "delays=5400/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok)",
...   "Nov 25 10:30:01 mail postfix/qmgr[3]: 1A2B3C: removed",
... ]
>>> qs = queue_series(log, year=2026)
>>> list(zip(qs.queued, qs.deferred))
[(1, 0), (1, 1), (1, 0), (0, 0)]
>>> fig = queue_size(log, year=2026)
>>> [line.get_label() for line in fig.axes[0].get_lines()]
['in the queue', 'deferred']
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Iterable

from matplotlib.figure import Figure

from .logsumm import MONTHS, OUTCOMES, Summary, parse_line

__all__ = ["traffic_by_hour", "hourly_counts", "queue_size", "queue_series", "QueueSeries",
           "reject_reasons", "COLOURS", "STACKED"]

#: outcome colours (green delivered, amber deferred, red bounced, grey rejected)
COLOURS = {"received": "#1f4e79", "delivered": "#2e8b57", "deferred": "#f0a030",
           "bounced": "#c0392b", "rejected": "#7f7f7f"}
#: the outcomes stacked in :func:`traffic_by_hour`, bottom first
STACKED = ("delivered", "deferred", "bounced", "rejected")


# -- messages per hour --------------------------------------------------------------------------
def hourly_counts(summary: Summary, timeline: bool | None = None
                  ) -> tuple[list[str], dict[str, list[int]]]:
    """(hour labels, {outcome: counts}) for :func:`traffic_by_hour`.

    ``timeline`` False: the 24 hours of the day (summed over the days of the
    log); True: every hour from the first to the last one in the log;
    None: False for a log of one day, else True.

    >>> from mailsim.logsumm import summarize
    >>> s = summarize(["Nov 25 08:57:37 mail postfix/smtpd[1]: 16A: client=x[192.0.2.1]"])
    >>> labels, counts = hourly_counts(s)
    >>> labels[8], counts["received"][8], sum(counts["received"])
    ('08:00', 1, 1)
    """
    if timeline is None:
        timeline = summary.days > 1
    if not timeline:
        return [f"{h:02d}:00" for h in range(24)], {o: list(summary.per_hour[o]) for o in OUTCOMES}
    hours = _hour_range(sorted(summary.timeline))
    labels = [f"{MONTHS[m - 1]} {d} {h:02d}:00" for (_, m, d, h) in hours]
    return labels, {o: [summary.timeline.get(k, {}).get(o, 0) for k in hours] for o in OUTCOMES}


def _hour_range(keys: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Every (year, month, day, hour) from the first key to the last, gaps filled."""
    if not keys:
        return []
    import calendar
    first, last = (calendar.timegm(k[:3] + (k[3], 0, 0, 0, 0, 0)) for k in (keys[0], keys[-1]))
    out = []
    for t in range(int(first), int(last) + 1, 3600):
        tm = time.gmtime(t)
        out.append((tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour))
    return out


def traffic_by_hour(summary: Summary, *, timeline: bool | None = None,
                    title: str = "Messages per hour") -> Figure:
    """Stacked bars per hour: delivered, deferred (deferrals), bounced, rejected; received
    as a line. Each bar series is an ``ax.containers`` entry labelled with its outcome.

    >>> from mailsim.logsumm import summarize
    >>> s = summarize(["Nov 25 08:57:37 mail postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[192.0.2.1]: "
    ...                "454 4.7.1 <a@b.c>: Relay access denied; from=<> to=<a@b.c> proto=SMTP helo=<x>"])
    >>> ax = traffic_by_hour(s).axes[0]
    >>> [c.get_label() for c in ax.containers]
    ['delivered', 'deferred', 'bounced', 'rejected']
    >>> [int(p.get_height()) for p in ax.containers[3]][7:10]
    [0, 1, 0]
    """
    labels, counts = hourly_counts(summary, timeline)
    fig = Figure(figsize=(max(8.0, 0.35 * len(labels)), 4.0), layout="constrained")
    ax = fig.add_subplot()
    x = list(range(len(labels)))
    bottom = [0] * len(labels)
    for outcome in STACKED:
        ax.bar(x, counts[outcome], bottom=bottom, label=outcome, color=COLOURS[outcome], width=0.8)
        bottom = [b + v for b, v in zip(bottom, counts[outcome])]
    ax.plot(x, counts["received"], label="received", color=COLOURS["received"],
            marker=".", linewidth=1.2)
    step = max(1, len(labels) // 24)
    ax.set_xticks(x[::step], labels[::step], rotation=90 if len(labels) > 24 else 45,
                  fontsize=8)
    ax.set_ylabel("log events (deferred: every attempt)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return fig


# -- the queue over time ---------------------------------------------------------------------------
@dataclass
class QueueSeries:
    """The queue after each change: ``times`` (seconds since the epoch), messages
    ``queued`` (in any queue) and, of those, ``deferred``."""
    times: list[float] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)

    def peak(self) -> tuple[float, int]:
        """(time, size) of the largest queue (the first time, if it was reached twice)."""
        if not self.queued:
            return (0.0, 0)
        i = max(range(len(self.queued)), key=lambda k: (self.queued[k], -k))
        return self.times[i], self.queued[i]


_QID = re.compile(r"[0-9A-Za-z]{6,}")


def _queue_event(service: str, qid: str, text: str) -> str | None:
    """What a line means for the queue: ``in``, ``active``, ``deferred``, ``out`` or None."""
    if not _QID.fullmatch(qid) or qid == "NOQUEUE":
        return None
    rest = text[len(qid):]
    if rest.startswith(": removed"):
        return "out"
    if service == "cleanup" and re.match(r": (?:milter-)?(?:reject|discard): ", rest):
        return "out"
    if service == "cleanup" and rest.startswith(": message-id="):
        return "in"
    if "status=deferred" in rest:
        return "deferred"
    if service == "qmgr" and rest.endswith("(queue active)"):
        return "active"
    return None


def queue_series(lines: Iterable[str], *, year: int = 2026,
                 syslog_name: str = "postfix") -> QueueSeries:
    """Replay the log's queue events into a :class:`QueueSeries` (one point per change)."""
    state: dict[str, str] = {}            # qid -> "queued" | "deferred"
    out = QueueSeries()
    n_def = 0
    for raw in lines:
        ln = parse_line(raw, syslog_name)
        if ln is None:
            continue
        ev = _queue_event(ln.service, ln.word, ln.text)
        if ev is None:
            continue
        before = (len(state), n_def)
        was = state.get(ln.word)
        if ev == "out":
            state.pop(ln.word, None)
        elif ev == "deferred":
            state[ln.word] = "deferred"
        elif ev == "active" or was is None:
            state[ln.word] = "queued"
        n_def += (state.get(ln.word) == "deferred") - (was == "deferred")
        if (len(state), n_def) != before:
            out.times.append(ln.timestamp(year))
            out.queued.append(len(state))
            out.deferred.append(n_def)
    return out


def queue_size(lines: Iterable[str], *, year: int = 2026, syslog_name: str = "postfix",
               title: str = "Messages in the queue") -> Figure:
    """Step lines of the queue size and of its deferred part over time (see :func:`queue_series`)."""
    import datetime as dt
    qs = queue_series(lines, year=year, syslog_name=syslog_name)
    when = [dt.datetime.fromtimestamp(t, dt.timezone.utc) for t in qs.times]
    fig = Figure(figsize=(8.0, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.step(when, qs.queued, where="post", label="in the queue", color=COLOURS["received"])
    ax.step(when, qs.deferred, where="post", label="deferred", color=COLOURS["deferred"])
    ax.set_ylabel("messages")
    ax.set_xlabel("time (UTC)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    return fig


# -- reject reasons -------------------------------------------------------------------------------
def reject_reasons(summary: Summary, *, top: int = 10,
                   title: str = "Why smtpd rejected mail") -> Figure:
    """One horizontal bar per reject reason (the ``top`` most frequent, most at the top).

    >>> from mailsim.logsumm import summarize
    >>> s = summarize(["Nov 25 08:57:37 mail postfix/smtpd[1]: NOQUEUE: reject: RCPT from x[192.0.2.1]: "
    ...                "454 4.7.1 <a@b.c>: Relay access denied; from=<> to=<a@b.c> proto=SMTP helo=<x>"])
    >>> ax = reject_reasons(s).axes[0]
    >>> [(t.get_text(), int(p.get_width())) for t, p in zip(ax.get_yticklabels(), ax.patches)]
    [('Relay access denied', 1)]
    """
    items = sorted(summary.reject_reasons().items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    items.reverse()                       # barh draws bottom-up: most frequent on top
    fig = Figure(figsize=(9.0, max(2.0, 0.4 * len(items) + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    ax.barh(range(len(items)), [v for _, v in items], color=COLOURS["rejected"])
    ax.set_yticks(range(len(items)), [_short(k) for k, _ in items], fontsize=8)
    ax.set_xlabel("rejected requests")
    ax.set_title(title if items else title + " (no rejects)")
    return fig


def _short(reason: str, width: int = 72) -> str:
    return reason if len(reason) <= width else reason[:width - 3] + "..."
