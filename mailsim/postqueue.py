"""``postqueue -p`` / ``mailq`` / ``sendmail -bp``, ``postqueue -j``, ``-f``, ``-s`` and ``-i``.

Models Postfix 3.7's showq(8) daemon plus postqueue's ``showq_compat.c``
(the classic listing) and ``showq_json.c`` (``-j``), reading mailsim's queue
files (:mod:`mailsim.queue`).

Listing order is showq's: the queues are scanned in the order maildrop,
incoming, active, deferred, hold; within a queue, in directory order (mailsim
sorts the file names, Postfix uses readdir order -- usually the same for a
handful of files). The id gets ``*`` in the active queue and ``!`` in the hold
queue.

The size is Postfix's *message size* (the size record of the queue file): the
content's record bytes, i.e. for each content line its length plus the two or
three bytes of record header (type byte + length) -- ``len(line) + 1 +
len(varint(len(line)))`` summed over lines without their LF. For a message of
short lines that is ``len(content) + number_of_lines``. The footer's Kbytes
is the sum of those sizes divided by 1024.

Deferral reasons: a recipient's reason comes from the defer logfile
``defer/ID`` (Postfix's bounce log format: ``recipient=...``/``reason=...``
blocks separated by blank lines; those recipients are listed first, in log
order, as showq does), else from the queue file's ``attrs["reason"]``, which
applies to every recipient not in the defer log.

Examples
--------
>>> import tempfile, pathlib
>>> from mailsim.host import init_host
>>> from mailsim.queue import QueueFile, Recipient, write_queue_file
>>> h = init_host(pathlib.Path(tempfile.mkdtemp()) / "h")
>>> import io; out = io.StringIO()
>>> main(h.root, ["-p"], out, io.StringIO()), out.getvalue()
(0, 'Mail queue is empty\\n')
>>> qf = QueueFile("18FD11602B3", "alice@example.com", [Recipient("user@other.org")],
...                1795597436.102353, b"Subject: hi\\n\\nhello\\n", {"reason": "no route"})
>>> _ = write_queue_file(h.spool, "deferred", qf)
>>> _ = main(h.root, ["-p"], out := io.StringIO(), io.StringIO()); print(out.getvalue(), end="")
-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------
18FD11602B3      22 Wed Nov 25 09:03:56  alice@example.com
                                                                    (no route)
                                         user@other.org
<BLANKLINE>
-- 0 Kbytes in 1 Request.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, TextIO

from .queue import QueueFile, read_queue_file

__all__ = ["main", "mailq_main", "sendmail_bp_main", "QueueEntry", "scan_queues", "flush_site",
           "flush_file", "message_size", "queue_label", "find_message", "defer_log", "listing"]

#: showq's scan order (maildrop has no mailsim queue files yet, but is scanned).
SHOWQ_ORDER = ("maildrop", "incoming", "active", "deferred", "hold")
#: queues hashed by default (hash_queue_names = deferred, defer; depth 1).
HASHED = ("deferred", "defer")

S_STRING_FORMAT = "%-11s %7s %-20s %s\n"
S_SENDER_FORMAT = "%-11s %7d %20.20s %s\n"


@dataclass
class QueueEntry:
    queue: str          # incoming, active, deferred, hold
    path: Path
    qf: QueueFile


def _varint_len(n: int) -> int:
    k = 1
    while n >= 128:
        n >>= 7
        k += 1
    return k


def message_size(content: bytes, line_limit: int = 2048) -> int:
    """Postfix's message size for ``content`` (record bytes of the content lines).

    smtpd hands cleanup a line longer than ``line_length_limit`` (2048) in
    pieces of that length, one queue-file record each, so a long line costs
    a few bytes more than a short one.

    >>> message_size(b"Subject: x\\n\\nbody\\n")   # (2+10) + (2+0) + (2+4)
    20
    >>> message_size(b"A" * 2500 + b"\\n")        # (3+2048) + (3+452)
    2506
    """
    if not content:
        return 0
    lines = content.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    total = 0
    for ln in lines:
        n = len(ln)
        while n > line_limit:
            total += 1 + _varint_len(line_limit) + line_limit
            n -= line_limit
        total += 1 + _varint_len(n) + n
    return total


def queued_size(qf: QueueFile) -> int:
    """The size qmgr logs and mailq shows: cleanup's SIZE record, else measured from the content.

    >>> from mailsim.queue import QueueFile
    >>> queued_size(QueueFile("A1", "", [], 0.0, b"Subject: x\\n\\nbody\\n"))
    20
    >>> queued_size(QueueFile("A1", "", [], 0.0, b"Subject: x\\n\\nbody\\n", size=22))
    22
    """
    return qf.size or message_size(qf.content)


def queue_label(queue: str, queue_id: str) -> str:
    """The name Postfix shows for a queue file: ``deferred/4/4F3601600F3``, ``hold/ID``.

    >>> queue_label("deferred", "4F3601600F3"), queue_label("active", "4F3601600F3")
    ('deferred/4/4F3601600F3', 'active/4F3601600F3')
    """
    if queue in HASHED:
        return f"{queue}/{queue_id[0]}/{queue_id}"
    return f"{queue}/{queue_id}"


def _files(d: Path) -> list[Path]:
    """Queue files under ``d`` (flat, or hashed one level deep), sorted by name."""
    out: list[Path] = []
    try:
        items = list(os.scandir(d))
    except FileNotFoundError:
        return out
    for e in items:
        if e.name.startswith("."):
            continue
        if e.is_dir():
            out += [Path(x.path) for x in os.scandir(e.path)
                    if x.is_file() and not x.name.startswith(".")]
        elif e.is_file():
            out.append(Path(e.path))
    return sorted(out, key=lambda p: p.name)


def scan_queues(spool: Path, queues=SHOWQ_ORDER) -> Iterator[QueueEntry]:
    """Every readable queue file, in showq's order; unreadable files are skipped."""
    for q in queues:
        for p in _files(spool / q):
            try:
                yield QueueEntry(q, p, read_queue_file(p))
            except (ValueError, OSError):
                continue


def find_message(spool: Path, queue_id: str, queues=("incoming", "active", "deferred", "hold")
                 ) -> QueueEntry | None:
    """The queue file with this id, searching ``queues`` in order."""
    for q in queues:
        for p in (spool / q / queue_id, spool / q / queue_id[:1] / queue_id):
            if p.is_file():
                try:
                    return QueueEntry(q, p, read_queue_file(p))
                except (ValueError, OSError):
                    return None
    return None


def defer_log(spool: Path, queue_id: str) -> list[tuple[str, str]]:
    """(recipient, reason) pairs from the defer logfile ``defer/[X/]ID``, if any."""
    for p in (spool / "defer" / queue_id, spool / "defer" / queue_id[:1] / queue_id):
        if p.is_file():
            break
    else:
        return []
    out = []
    for block in p.read_text(errors="replace").split("\n\n"):
        attrs = dict(ln.split("=", 1) for ln in block.splitlines() if "=" in ln)
        if "recipient" in attrs:
            out.append((attrs["recipient"], attrs.get("reason", "")))
    return out


def recipients_with_reasons(spool: Path, e: QueueEntry) -> list[tuple[str, str]]:
    """(address, reason) per recipient in showq's order (defer log first)."""
    logged = defer_log(spool, e.qf.queue_id)
    seen = {r for r, _ in logged}
    default = e.qf.attrs.get("reason", "") if e.queue != "incoming" else ""
    return logged + [(r.address, default) for r in e.qf.recipients if r.address not in seen]


def _sender(addr: str) -> str:
    return addr or "MAILER-DAEMON"          # empty_address_recipient


def listing(spool: Path) -> str:
    """The ``postqueue -p`` output for the queues under ``spool``."""
    out: list[str] = []
    count = total = 0
    for e in scan_queues(spool):
        out.append(S_STRING_FORMAT % ("-Queue ID-", "--Size--", "----Arrival Time----",
                                      "-Sender/Recipient-------") if count == 0 else "\n")
        qid = e.qf.queue_id + {"active": "*", "hold": "!"}.get(e.queue, "")
        size = queued_size(e.qf)
        total += size
        out.append(S_SENDER_FORMAT % (qid, size, time.asctime(time.localtime(int(e.qf.arrival))),
                                      _sender(e.qf.sender)))
        saved = ""
        for addr, why in recipients_with_reasons(spool, e):
            if why != saved:
                saved = why
                show = why or "reason unavailable"
                out.append(" " * max(0, 76 - len(show)) + f"({show})\n")
            out.append(S_STRING_FORMAT % ("", "", "", addr))
        count += 1
    if count == 0:
        return "Mail queue is empty\n"
    out.append(f"\n-- {total // 1024} Kbytes in {count} Request{'' if count == 1 else 's'}.\n")
    return "".join(out)


def json_listing(spool: Path) -> str:
    """The ``postqueue -j`` output: one JSON object per message, one per line."""
    lines = []
    for e in scan_queues(spool):
        rcpts = []
        for addr, why in recipients_with_reasons(spool, e):
            r = {"address": addr}
            if why:
                r["delay_reason"] = why
            rcpts.append(r)
        lines.append(json.dumps({
            "queue_name": e.queue, "queue_id": e.qf.queue_id, "arrival_time": int(e.qf.arrival),
            "message_size": queued_size(e.qf), "forced_expire": False,
            "sender": e.qf.sender, "recipients": rcpts}) + "\n")
    return "".join(lines)


def flush(host) -> None:
    """Ask qmgr to retry every deferred message: the FIFO of a running ``serve``,
    else the queue manager of the host object this process uses for the folder."""
    from .host import Host
    if host.clock.simulated:
        (Host.live(host.root) or host).run_queue(flush=True)
        return
    host.wake_qmgr(b"F")


USAGE = "usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site"
#: postqueue's msg_cleanup() hook turns every fatal error into EX_UNAVAILABLE
EX_UNAVAILABLE = 69


def _fatal(host, err: TextIO, text: str) -> int:
    """msg_fatal_status(): stderr and the log (postqueue is set-gid: it can log)."""
    err.write(f"postqueue: fatal: {text}\n")
    host.log.write("postqueue", host.next_pid(), f"fatal: {text}")
    return EX_UNAVAILABLE


def _cut(text: str) -> str:
    return text[:100] + ("..." if len(text) > 100 else "")


def _deliver_flushed(host) -> None:
    """After flush(8) moved mail to incoming: qmgr delivers it (in-process: at once)."""
    from .host import Host
    live = Host.live(host.root) or host
    if host.clock.simulated and host.qmgr_wanted and getattr(live, "auto_deliver", True):
        host.qmgr_wanted = False
        live.run_queue()


def flush_site(host, site: str, err: TextIO) -> int:
    """``postqueue -s site`` (``sendmail -qRsite``): flush(8) delivers the site's mail."""
    from . import flush as fflush
    from .smtpd.check import valid_hostname, valid_literal
    bad = not valid_literal(site) if site.startswith("[") else \
        (site.endswith(".") or not valid_hostname(site))
    if bad:
        return _fatal(host, err, f'Cannot flush mail queue - invalid destination: "{_cut(site)}"')
    status = fflush.send_site(host, site)
    if status == fflush.OK:
        _deliver_flushed(host)
        return 0
    if status == fflush.BAD:
        return _fatal(host, err, f'Invalid request: "{site}"')
    if status == fflush.DENY:
        return _fatal(host, err, f'Flush service is not configured for destination "{site}"')
    return _fatal(host, err, "Cannot flush mail queue - mail system is down")


def flush_file(host, queue_id: str, err: TextIO) -> int:
    """``postqueue -i queue_id`` (``sendmail -qIqueue_id``): deliver one message now."""
    from . import flush as fflush
    if not fflush.queue_id_ok(queue_id):
        return _fatal(host, err, f'Cannot flush queue ID - invalid name: "{_cut(queue_id)}"')
    status = fflush.send_file(host, queue_id)
    if status == fflush.OK:
        _deliver_flushed(host)
        return 0
    if status == fflush.BAD:
        return _fatal(host, err, f'Invalid request: "{queue_id}"')
    return _fatal(host, err, "Cannot flush mail queue - mail system is down")


def main(root: Path, argv: list[str], out: TextIO, err: TextIO, *, host=None) -> int:
    """postqueue(1): ``-p`` list, ``-j`` JSON list, ``-f`` flush, ``-s SITE`` / ``-i ID``
    flush one site's mail / one message (through flush(8), :mod:`mailsim.flush`).

    ``-f`` asks the queue manager to retry all deferred mail now. Under
    ``mailsim serve`` that is a trigger on qmgr's FIFO; in a notebook the
    host's own queue manager runs at once, on its clock. ``-s`` and ``-i``
    move the messages back to ``incoming`` and wake the queue manager.
    Nothing is printed on success; exit status 0. ``host``: the Host object
    to use for ``root`` (its log gets postqueue's fatal lines).
    """
    from .host import Host
    host = host if host is not None else Host(root)
    args = [a for a in argv if a not in ("-v",)]
    if args in (["-p"], []):
        out.write(listing(host.spool))
        return 0
    if args == ["-j"]:
        out.write(json_listing(host.spool))
        return 0
    if args == ["-f"]:
        flush(host)
        return 0
    if len(args) == 2 and args[0] == "-s":
        return flush_site(host, args[1], err)
    if len(args) == 2 and args[0] == "-i":
        return flush_file(host, args[1], err)
    err.write(f"postqueue: fatal: {USAGE}\n")
    return 64


def mailq_main(root: Path, argv: list[str], out: TextIO, err: TextIO) -> int:
    """``mailq`` (= ``sendmail -bp`` = ``postqueue -p``)."""
    return main(root, ["-p"], out, err)


def sendmail_bp_main(root: Path, argv: list[str], out: TextIO, err: TextIO) -> int:
    """``sendmail -bp`` only (the sendmail command proper lives elsewhere)."""
    if argv != ["-bp"]:
        err.write("sendmail: fatal: only -bp is supported by this entry point\n")
        return 64
    return main(root, ["-p"], out, err)
