"""The mail log, written the way Postfix 3.7 writes it.

Postfix logs through syslog or, when ``maillog_file`` is set, through its own
postlogd. Both give lines of the form::

    Nov 25 08:56:59 mail postfix/smtpd[15983]: connect from localhost[127.0.0.1]

(the host field is the first label of ``myhostname``; the program name is
``$syslog_name/DAEMON``). When ``maillog_file`` is empty (Postfix's default) a
simulated host has no syslog daemon, so mailsim writes what Debian's rsyslog
would: the same lines in ``/var/log/mail.log``.

Parameters read: ``maillog_file`` (default empty), ``syslog_name`` (postfix),
``myhostname``.

Examples
--------
>>> from mailsim.clock import SimClock
>>> log = MailLog(None, "mail.example.com", SimClock(1795597019.0))
>>> log.line("smtpd", 15983, "connect from localhost[127.0.0.1]")
'Nov 25 08:56:59 mail postfix/smtpd[15983]: connect from localhost[127.0.0.1]'
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from .clock import Clock

__all__ = ["MailLog", "log_path"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def log_path(host) -> Path:
    """Where the host's log goes: ``maillog_file``, else the simulated syslog's mail.log."""
    name = host.conf.get("maillog_file") or ""
    return host.path(name) if name else host.path("/var/log/mail.log")


class MailLog:
    """Appends Postfix-format log lines to one file (or only keeps them in memory).

    ``lines`` keeps every line written in this process, so a notebook can show
    the log of what it just did without reading the file.
    """

    def __init__(self, path: Path | None, myhostname: str, clock: Clock,
                 syslog_name: str = "postfix") -> None:
        self.path = path
        self.short = myhostname.split(".")[0]
        self.clock = clock
        self.syslog_name = syslog_name
        self.lines: list[str] = []
        self._fd: int | None = None
        self._checked = 0.0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def stamp(self, t: float | None = None) -> str:
        tm = time.gmtime(self.clock.now() if t is None else t)
        return f"{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"

    def line(self, daemon: str, pid: int, text: str) -> str:
        """Format one line (without writing it)."""
        return f"{self.stamp()} {self.short} {self.syslog_name}/{daemon}[{pid}]: {text}"

    def write(self, daemon: str, pid: int, text: str) -> str:
        """Format, remember and append one line to the log file."""
        ln = self.line(daemon, pid, text)
        self.lines.append(ln)
        if self.path is not None:
            # One write() of a whole line on an O_APPEND descriptor: lines of
            # concurrent sessions never interleave inside a line. The file is
            # reopened when it was rotated or removed (as postlogd does).
            now = time.monotonic()
            if self._fd is None or (now - self._checked > 1.0 and not self.path.exists()):
                self.close()
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._checked = now
            os.write(self._fd, (ln + "\n").encode("utf-8", "surrogateescape"))
        return ln

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
