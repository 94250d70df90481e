"""One sendmail invocation: who runs it, where its words go, and its exit statuses.

Part of :mod:`mailsim.sendmail` (Postfix's ``src/sendmail/sendmail.c``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, TextIO

EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75

# modes of operation (sendmail.c's SM_MODE_*)
ENQUEUE, NEWALIAS, MAILQ, DAEMON, USER, FLUSHQ, IGNORE = (
    "enqueue", "newalias", "mailq", "daemon", "user", "flushq", "ignore")

# flags: sendmail's own, and the delivery request trace flags it passes on
FLAG_AEOF = 1 << 0                 # a line with "." ends the input
FLAG_XRCPT = 1 << 1                # -t
USR_VRFY = 1 << 9                  # -bv (DEL_REQ_FLAG_USR_VRFY)
RECORD = 1 << 10                   # -v  (DEL_REQ_FLAG_RECORD)
TRACE_FLAGS = USR_VRFY | RECORD

GETOPT_LIST = "A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx"
DSN_NOTIFY = ("NEVER", "SUCCESS", "FAILURE", "DELAY")

#: headers that -t reads: name -> is it a Resent- header (header_opts.c, HDR_OPT_XRECIP)
EXTRACT_HEADERS = {"to": False, "cc": False, "bcc": False,
                   "resent-to": True, "resent-cc": True, "resent-bcc": True}


class Fatal(Exception):
    """msg_fatal_status(): the text after ``fatal:`` and the exit status."""

    def __init__(self, text: str, status: int = EX_TEMPFAIL, program: str | None = None) -> None:
        super().__init__(text)
        self.text, self.status, self.program = text, status, program


# -- who runs the command, and where its words go ------------------------------------------------
@dataclass
class _Run:
    """One invocation: the host, the invoking user, and its stdout/stderr."""
    host: object
    prog: str
    user: str
    uid: int
    out: TextIO
    err: TextIO
    env: Mapping[str, str]
    stdin: Callable[[], bytes]
    _pid: int | None = None

    @property
    def pid(self) -> int:
        if self._pid is None:
            self._pid = self.host.next_pid()
        return self._pid

    @property
    def can_log(self) -> bool:
        """sendmail is not set-gid: only root reaches postlogd's socket (maillog_file)."""
        return self.user == "root" or not self.host.conf.get("maillog_file")

    def log(self, text: str, daemon: str = "sendmail", pid: int | None = None) -> None:
        if self.can_log or daemon in ("postqueue", "postfix-script"):
            self.host.log.write(daemon, self.pid if pid is None else pid, text)

    def warn(self, text: str) -> None:
        self.err.write(f"{self.prog}: warning: {text}\n")
        self.log(f"warning: {text}")

    def who(self, sender: str) -> str:
        """``saved_sender(uid)``, the prefix of enqueue's errors."""
        return f"{sender}({self.uid})"
