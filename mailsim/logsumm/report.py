"""The text report in pflogsumm's layout (Grand Totals, per-day and per-hour
traffic, domains, users, problems). Part of :mod:`mailsim.logsumm`.
"""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from .lines import MONTHS, OUTCOMES, _sort_key

if TYPE_CHECKING:
    from . import Summary

# -- the report ------------------------------------------------------------------------------------
def _scaled(value: float) -> tuple[int, str]:
    """(number, unit): ``k`` above 512k, ``m`` above 512m, else a space."""
    if value > 536870912:
        return int(value / 1048576), "m"
    if value > 524288:
        return int(value / 1024), "k"
    return int(value), " "


def _units(value: float) -> str:
    """A count as pflogsumm prints it: 6 wide, then its unit.

    >>> _units(42), _units(1160000)
    ('    42 ', '  1132k')
    """
    n, unit = _scaled(value)
    return f"{n:6d}{unit}"


def _time_units(seconds: float) -> str:
    if seconds > 3600:
        return f"{seconds / 3600:5.1f} h"
    if seconds > 60:
        return f"{seconds / 60:5.1f} m"
    return f"{seconds:5.1f} s"


def _title(text: str) -> str:
    return f"\n{text}\n{'-' * len(text)}\n"


def _list_title(text: str, empty: bool, quiet: bool) -> str | None:
    if empty:
        return None if quiet else f"\n{text}: none\n"
    return f"\n{text}\n{'-' * len(text)}\n"


def _by_count(counts: dict[str, int | float], limit: int) -> list[tuple[str, float]]:
    """Highest first, ties in :func:`_sort_key` order; ``limit`` < 0 means all."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], _sort_key(kv[0]), kv[0]))
    return items if limit < 0 else items[:limit]


def _grand_totals(s: Summary) -> list[str]:
    out = [_title("Grand Totals"), "messages\n\n"]
    n = [(s.received, "received"), (s.delivered, "delivered"), (s.forwarded, "forwarded")]
    out += [f" {_units(v)}  {label}\n" for v, label in n]
    more = "  ({}{} deferrals)".format(*_scaled(s.deferrals)) if s.deferrals else ""
    out.append(f" {_units(s.deferred)}  deferred{more}\n")
    out.append(f" {_units(s.bounced)}  bounced\n")
    out.append(f" {_units(s.rejected)}  rejected ({s.reject_percent}%)\n")
    out.append(f" {_units(s.reject_warnings)}  reject warnings\n")
    out.append(f" {_units(s.held)}  held\n")
    out.append(f" {_units(s.discarded)}  discarded ({s.discard_percent}%)\n\n")
    t = s.totals()
    for key, label in (("bytes_received", "bytes received"), ("bytes_delivered", "bytes delivered"),
                       ("senders", "senders"), ("sending_domains", "sending hosts/domains"),
                       ("recipients", "recipients"), ("recipient_domains", "recipient hosts/domains")):
        out.append(f" {_units(t[key])}  {label}\n")
    return out + ["\n"]


_TABLE_HEAD = ("    {what}          received  delivered   deferred    bounced     rejected\n"
               "    --------------------------------------------------------------------\n")


def _per_day(s: Summary) -> list[str]:
    out = [_title("Per-Day Traffic Summary"), _TABLE_HEAD.format(what="date")]
    for (y, mon, day) in sorted(s.per_day):
        c = s.per_day[(y, mon, day)]
        out.append(f"    {MONTHS[mon - 1]} {day:2d} {y}" + "".join(
            f"    {_units(c[o])}" for o in OUTCOMES) + "\n")
    return out


def _per_hour(s: Summary) -> list[str]:
    days = s.days
    out = [_title("Per-Hour Traffic " + ("Daily Average" if days > 1 else "Summary")),
           _TABLE_HEAD.format(what="time")]
    for h in range(24):
        cells = (s.per_hour[o][h] / days + 0.5 if days else s.per_hour[o][h] for o in OUTCOMES)
        out.append(f"    {h:02d}00-{h + 1:02d}00  " + "".join(f"    {_units(v)}" for v in cells) + "\n")
    return out


def _recipient_domains(s: Summary, limit: int) -> list[str]:
    if limit == 0:
        return []
    top = f"(top {limit})" if limit > 0 else ""
    out = [_title(f"Host/Domain Summary: Message Delivery {top}"),
           " sent cnt  bytes   defers   avg dly max dly host/domain\n"
           " -------- -------  -------  ------- ------- -----------\n"]
    rows = sorted(s.recipient_domains.items(), key=lambda kv: (-kv[1].sent, -kv[1].bytes, kv[0]))
    for name, d in rows if limit < 0 else rows[:limit]:
        out.append(f" {_units(d.sent)}  {_units(d.bytes)}  {_units(d.defers)}  "
                   f"{_time_units(d.delay_avg)}  {_time_units(d.delay_max)}  {name}\n")
    return out


def _sending_domains(s: Summary, limit: int) -> list[str]:
    if limit == 0:
        return []
    top = f"(top {limit})" if limit > 0 else ""
    out = [_title(f"Host/Domain Summary: Messages Received {top}"),
           " msg cnt   bytes   host/domain\n -------- -------  -----------\n"]
    rows = sorted(s.sending_domains, key=lambda d: (-s.sending_domains[d],
                                                    -s.sending_domain_bytes[d], d))
    for name in rows if limit < 0 else rows[:limit]:
        out.append(f" {_units(s.sending_domains[name])}  "
                   f"{_units(s.sending_domain_bytes[name])}  {name}\n")
    return out


def _users(counts: Counter, title: str, limit: int, quiet: bool) -> list[str]:
    if limit == 0:
        return []
    head = _list_title(f"top {limit} {title}" if limit > 0 else title, not counts, quiet)
    if head is None:
        return []
    return [head] + [f" {_units(v)}  {k}\n" for k, v in _by_count(counts, limit)]


def _nested_lines(table: dict, limit: int, depth: int = 1) -> list[str]:
    """Indented groups (sorted by name), totals above the innermost counts."""
    pad = "  " * depth
    out = []
    for key in sorted(table):
        inner = table[key]
        if isinstance(inner, dict) and not isinstance(inner, Counter):
            out.append(f"{pad}{key}\n")
            out += _nested_lines(inner, limit, depth + 1)
            continue
        top = f" (top {limit})" if limit > 0 else ""
        out.append(f"{pad}{key}{top} (total: {sum(inner.values())})\n")
        out += [f"{pad}  {_units(v)}  {k}\n" for k, v in _by_count(inner, limit)]
    return out


def _nested(table: dict, title: str, limit: int, quiet: bool) -> list[str]:
    head = _list_title(title, not table, quiet)
    return [] if head is None else [head] + _nested_lines(table, limit)


def _problems(s: Summary, detail: int, quiet: bool) -> list[str]:
    out: list[str] = []
    if detail != 0:
        out += _nested(s.deferral_detail, "message deferral detail", detail, quiet)
        out += _nested(s.bounce_detail, "message bounce detail (by relay)", detail, quiet)
        out += _nested(s.rejects, "message reject detail", detail, quiet)
        out += _nested(s.reject_warning_detail, "message reject warning detail", detail, quiet)
        out += _nested(s.holds, "message hold detail", detail, quiet)
        out += _nested(s.discards, "message discard detail", detail, quiet)
        out += _nested(s.smtp_failures, "smtp delivery failures", detail, quiet)
        out += _nested(s.warnings, "Warnings", detail, quiet)
    out += _nested(s.fatals, "Fatal Errors", -1, quiet)
    out += _nested(s.panics, "Panics", -1, quiet)
    head = _list_title("Master daemon messages", not s.master, quiet)
    if head is not None:
        out += [head] + [f" {_units(v)}  {k}\n" for k, v in _by_count(s.master, -1)]
    return out


def format_report(s: Summary, *, top_hosts: int = -1, top_users: int = -1, detail: int = -1,
                  problems_first: bool = False, quiet: bool = False) -> str:
    """pflogsumm's report of ``s``: Grand Totals, traffic per day and hour, domains,
    users, then the problems (first, with ``problems_first``).

    ``top_hosts``/``top_users``/``detail`` (pflogsumm's ``-h``/``-u``/``--detail``)
    cut the lists to that many lines; -1 shows all, 0 leaves the section out.
    ``quiet`` (``-q``) leaves out sections that have nothing to show.
    """
    out = _grand_totals(s)
    if problems_first:
        out += _problems(s, detail, quiet)
    if s.days > 1:
        out += _per_day(s)
    out += _per_hour(s)
    out += _recipient_domains(s, top_hosts)
    out += _sending_domains(s, top_hosts)
    out += _users(s.senders, "Senders by message count", top_users, quiet)
    out += _users(s.recipients, "Recipients by message count", top_users, quiet)
    out += _users(s.sender_bytes, "Senders by message size", top_users, quiet)
    out += _users(s.recipient_bytes, "Recipients by message size", top_users, quiet)
    if s.no_size:
        out.append(_title("Messages with no size data"))
        out += [f" {q}  {s.no_size[q]}\n" for q in sorted(s.no_size)]
    if not problems_first:
        out += _problems(s, detail, quiet)
    return "".join(out)
