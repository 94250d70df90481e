"""The defer logfile: why each recipient of a queued message is still waiting.

Models Postfix's ``src/global/bounce_log.c`` as used for ``defer/QUEUE_ID``.
When a delivery agent defers a recipient, bounce(8) appends one record to
``$queue_directory/defer/QUEUE_ID`` (blocks of ``name=value`` lines, an empty
line after each). Three readers use it:

* ``postqueue -p`` / ``mailq`` prints each recipient's reason from it;
* the delay warning (``delay_warning_time``) lists the delayed recipients;
* when the message expires (``maximal_queue_lifetime``), the non-delivery
  notification reports each recipient with its last reason and status.

The queue manager removes the file when it takes the message into the active
queue again, so it always holds the reasons of the latest attempt.

Examples
--------
>>> import tempfile, pathlib
>>> spool = pathlib.Path(tempfile.mkdtemp())
>>> append(spool, "4F3601600F3", DeferRecord("user@other.org", "user@other.org", "4.4.1",
...        "connect to 127.0.0.1[127.0.0.1]:2599: Connection refused"))
>>> print((spool / "defer/4/4F3601600F3").read_text(), end="")
orig_rcpt=user@other.org
recipient=user@other.org
offset=0
dsn_orig_rcpt=
notify_flags=0
status=4.4.1
action=delayed
reason=connect to 127.0.0.1[127.0.0.1]:2599: Connection refused
<BLANKLINE>
>>> [r.reason for r in read(spool, "4F3601600F3")]
['connect to 127.0.0.1[127.0.0.1]:2599: Connection refused']
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .queue import queue_dir

__all__ = ["DeferRecord", "append", "read", "remove", "path"]


@dataclass
class DeferRecord:
    """One recipient's entry: who, the DSN status and the reason of the deferral."""
    orig_rcpt: str
    recipient: str
    status: str
    reason: str
    dsn_orig_rcpt: str = ""
    notify: str = ""
    action: str = "delayed"
    #: "smtp; 450 4.2.0 ..." and "dns; mx1.example.org" when a server's reply caused
    #: the deferral (Postfix's diag_type/diag_text and mta_type/mta_mname)
    diagnostic: str = ""
    remote_mta: str = ""


def _typed(name_type: str, name_text: str, value: str) -> str:
    """``type; text`` as two attributes (none when empty)."""
    kind, _, text = value.partition(";")
    text = text[1:] if text.startswith(" ") else text
    return f"{name_type}={kind}\n{name_text}={text}\n" if value else ""


def path(spool: Path, queue_id: str) -> Path:
    """``defer/4/4F3601600F3``: the defer queue is hashed like ``deferred``."""
    return queue_dir(spool, "defer", queue_id) / queue_id


def append(spool: Path, queue_id: str, rec: DeferRecord) -> None:
    """Append one record (a single write, so a crash leaves whole records only)."""
    text = (f"orig_rcpt={rec.orig_rcpt}\nrecipient={rec.recipient}\noffset=0\n"
            f"dsn_orig_rcpt={rec.dsn_orig_rcpt}\nnotify_flags={rec.notify or 0}\n"
            f"status={rec.status}\naction={rec.action}\n"
            + _typed("diag_type", "diag_text", rec.diagnostic)
            + _typed("mta_type", "mta_mname", rec.remote_mta)
            + f"reason={rec.reason}\n\n")
    p = path(spool, queue_id)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except FileNotFoundError:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, text.encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)


def read(spool: Path, queue_id: str) -> list[DeferRecord]:
    """The records of ``defer/QUEUE_ID`` in the order they were written ([] if none)."""
    try:
        text = path(spool, queue_id).read_text("utf-8", "surrogateescape")
    except FileNotFoundError:
        return []
    out = []
    for block in text.split("\n\n"):
        a = dict(ln.split("=", 1) for ln in block.splitlines() if "=" in ln)
        if "recipient" in a:
            notify = a.get("notify_flags", "0")
            out.append(DeferRecord(a.get("orig_rcpt", ""), a["recipient"], a.get("status", "4.0.0"),
                                   a.get("reason", ""), a.get("dsn_orig_rcpt", ""),
                                   "" if notify == "0" else notify, a.get("action", "delayed"),
                                   _joined(a, "diag_type", "diag_text"),
                                   _joined(a, "mta_type", "mta_mname")))
    return out


def _joined(a: dict[str, str], name_type: str, name_text: str) -> str:
    return f"{a[name_type]}; {a[name_text]}" if a.get(name_type) and a.get(name_text) else ""


def remove(spool: Path, queue_id: str) -> None:
    try:
        path(spool, queue_id).unlink()
    except FileNotFoundError:
        pass
