"""Durations and instants of a lab's simulated clock.

A lab runs for "5d", "90m", "1h30m" or a number of seconds; it starts at an
instant written as in lab.toml (a TOML date-time, or ``2026-11-25 09:00``,
always UTC). Postfix's own time parameters (``queue_run_delay = 300s``) take
one unit letter; a lab duration may chain several (``1h30m``), since it is
not a Postfix setting.

Not modelled: time zones (every lab runs in UTC, as the recordings did).

Examples
--------
>>> parse_duration("5d"), parse_duration("1h30m"), parse_duration(90), parse_duration("2.5s")
(432000.0, 5400.0, 90.0, 2.5)
>>> parse_instant("2026-11-25 09:00") == 1795597200.0
True
>>> format_instant(1795597200.0)
'2026-11-25 09:00:00 UTC'
"""
from __future__ import annotations

import calendar
import datetime as _dt
import re

__all__ = ["parse_duration", "parse_instant", "format_instant", "format_duration", "UNITS"]

#: seconds per unit letter (Postfix's s m h d w)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``: a number (seconds) or number-unit pairs (``1h30m``).

    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    ValueError: bad duration 'soon': write a number and a unit (s, m, h, d or w), e.g. 90m or 1h30m
    """
    if isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}: write a number of seconds or e.g. 90m")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"bad duration {value!r}: time cannot run backwards")
        return float(value)
    text = str(value).strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m or (m.group(2) == "" and m.end() != len(text)):
            break
        total += float(m.group(1)) * UNITS[m.group(2) or "s"]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"bad duration {value!r}: write a number and a unit "
                         "(s, m, h, d or w), e.g. 90m or 1h30m")
    return total


def parse_instant(value: "str | int | float | _dt.datetime | _dt.date") -> float:
    """Seconds since the epoch for a lab's start: a TOML date-time, an ISO text
    (``2026-11-25T09:00:00Z``, ``2026-11-25 09:00``) or a number. Naive times are UTC.

    >>> parse_instant("2026-11-25T09:00:00Z") == parse_instant("2026-11-25 09:00:00")
    True
    """
    if isinstance(value, bool):
        raise ValueError(f"bad start time {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, _dt.datetime):
        dt = value
    elif isinstance(value, _dt.date):
        dt = _dt.datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip().replace("Z", "+00:00").replace(" UTC", "")
        try:
            dt = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"bad start time {value!r}: write it as 2026-11-25 09:00 "
                             "or 2026-11-25T09:00:00Z (UTC)") from None
    if dt.tzinfo is not None:
        return dt.timestamp()
    return calendar.timegm(dt.timetuple()) + dt.microsecond / 1e6


def format_instant(t: float) -> str:
    """``YYYY-MM-DD HH:MM:SS UTC`` (whole seconds)."""
    return _dt.datetime.fromtimestamp(int(t), _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(seconds: float) -> str:
    """A short human form: ``2d3h``, ``90s``, ``0s``.

    >>> format_duration(183600), format_duration(59), format_duration(0.4)
    ('2d3h', '59s', '0s')
    """
    s = int(seconds)
    out = []
    for unit in ("d", "h", "m", "s"):
        n, s = divmod(s, UNITS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out) or "0s"
