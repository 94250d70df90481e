"""``postsuper``: delete, hold, release and requeue queued mail (superuser only).

Models postsuper(1) of Postfix 3.7 for mailsim's queue files:

* ``-d ID|ALL|-`` delete (default queues: hold, incoming, active, deferred),
* ``-h ID|ALL|-`` put on hold (from incoming, active, deferred),
* ``-H ID|ALL|-`` release from hold (to the deferred queue, as Postfix does),
* ``-r ID|ALL|-`` requeue (Postfix moves the file to maildrop for pickup and
  cleanup to process again; mailsim has no pickup, so the file goes to the
  incoming queue unchanged),
* trailing ``queue`` names restrict which queues are searched.

Messages go to stderr *and* to the mail log, as Postfix's msg_info() does:
a named id gives ``postsuper: ID: removed`` / ``placed on hold`` /
``released from hold`` / ``requeued``; ``ALL`` gives only the summary
(``postsuper: Deleted: 1 message``), exactly as observed on Postfix 3.7.
Deleting also removes the message's defer/bounce/trace logfiles.

Who runs it: the simulated user is ``$MAILSIM_USER`` (default root). Anyone
else gets ``postsuper: fatal: use of this command is reserved for the
superuser`` and exit status 1.

Examples
--------
>>> import io, tempfile, pathlib
>>> from mailsim.host import init_host
>>> from mailsim.queue import QueueFile, Recipient, write_queue_file
>>> h = init_host(pathlib.Path(tempfile.mkdtemp()) / "h")
>>> _ = write_queue_file(h.spool, "deferred",
...     QueueFile("18FD11602B3", "alice@example.com", [Recipient("u@other.org")], 0.0, b"x\\n"))
>>> err = io.StringIO(); main(h.root, ["-h", "18FD11602B3"], io.StringIO(), err)
0
>>> print(err.getvalue(), end="")
postsuper: 18FD11602B3: placed on hold
postsuper: Placed on hold: 1 message
>>> (h.spool / "hold/18FD11602B3").exists()
True
>>> err = io.StringIO(); main(h.root, ["-d", "ALL"], io.StringIO(), err), err.getvalue()
(0, 'postsuper: Deleted: 1 message\\n')
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TextIO

from .postqueue import _files
from .queue import queue_dir

__all__ = ["main"]

MESSAGE_QUEUES = ("hold", "incoming", "active", "deferred")
DEFAULTS = {"-d": ("hold", "incoming", "active", "deferred"),
            "-h": ("incoming", "active", "deferred"),
            "-H": ("hold",),
            "-r": ("hold", "incoming", "active", "deferred")}
TARGET = {"-h": "hold", "-H": "deferred", "-r": "incoming"}
PER_ID = {"-d": "removed", "-h": "placed on hold", "-H": "released from hold", "-r": "requeued"}
SUMMARY = {"-d": "Deleted", "-h": "Placed on hold", "-H": "Released from hold", "-r": "Requeued"}
QUEUE_ID_OK = re.compile(r"^[A-Za-z0-9]{1,100}$")     # mail_queue_id_ok(): alnum (and _)
USAGE = ("usage: postsuper [-c config_dir] [-d queue_id (delete)] "
         "[-h queue_id (hold)] [-H queue_id (un-hold)] [-p (purge temporary files)] "
         "[-r queue_id (requeue)] [-s (structure fix)] [-S (sanitize)] [-v (verbose)] [queue...]")


class _Out:
    def __init__(self, host, err: TextIO) -> None:
        self.host, self.err, self.pid = host, err, None

    def info(self, text: str) -> None:
        self.err.write(f"postsuper: {text}\n")
        if self.pid is None:
            self.pid = self.host.next_pid()
        self.host.log.write("postsuper", self.pid, text)


def _locate(spool: Path, queue_id: str, queues) -> Path | None:
    for q in queues:
        for p in (spool / q / queue_id, spool / q / queue_id[:1] / queue_id):
            if p.is_file():
                return p
    return None


def _remove_logs(spool: Path, queue_id: str) -> None:
    for q in ("defer", "bounce", "trace"):
        for p in (spool / q / queue_id, spool / q / queue_id[:1] / queue_id):
            try:
                p.unlink()
            except (FileNotFoundError, IsADirectoryError):
                pass


def _act(spool: Path, op: str, path: Path) -> None:
    if op == "-d":
        path.unlink()
        _remove_logs(spool, path.name)
    else:
        dest = queue_dir(spool, TARGET[op], path.name) / path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)


def main(root: Path, argv: list[str], out: TextIO, err: TextIO, *, stdin: TextIO | None = None) -> int:
    from .host import Host
    host = Host(root)
    log = _Out(host, err)
    user = os.environ.get("MAILSIM_USER", "root")
    if user != "root":
        log.info("fatal: use of this command is reserved for the superuser")
        return 1
    ops: list[tuple[str, str]] = []
    queues: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in DEFAULTS:
            if i + 1 >= len(argv):
                log.info(f"fatal: {USAGE}")
                return 1
            ops.append((a, argv[i + 1]))
            i += 2
        elif a in ("-v", "-s", "-p", "-S"):
            i += 1                      # structure checks: mailsim's queue needs none
        elif a == "-c":
            i += 2
        elif a.startswith("-"):
            log.info(f"fatal: {USAGE}")
            return 1
        else:
            if a not in MESSAGE_QUEUES:
                log.info(f"fatal: invalid directory name: {a}")
                return 1
            queues.append(a)
            i += 1
    spool = host.spool
    counts: dict[str, int] = {}
    for op, arg in ops:
        qs = tuple(queues) or DEFAULTS[op]
        if op in ("-h",):
            qs = tuple(q for q in qs if q != "hold")
        if op == "-H":
            qs = ("hold",)
        if arg == "ALL":
            for q in qs:
                for p in _files(spool / q):
                    _act(spool, op, p)
                    counts[op] = counts.get(op, 0) + 1
            continue
        ids = [ln.strip() for ln in (stdin or sys.stdin).read().splitlines()] if arg == "-" else [arg]
        for qid in filter(None, ids):
            if not QUEUE_ID_OK.match(qid):
                log.info(f"warning: invalid mail queue id: {qid}")
                continue
            p = _locate(spool, qid, qs)
            if p is None:
                continue
            _act(spool, op, p)
            log.info(f"{qid}: {PER_ID[op]}")
            counts[op] = counts.get(op, 0) + 1
    for op in ("-r", "-h", "-H", "-d"):
        n = counts.get(op, 0)
        if n:
            log.info(f"{SUMMARY[op]}: {n} message{'' if n == 1 else 's'}")
    return 0
