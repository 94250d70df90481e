"""The queue on disk: Postfix-style queue ids and queue files.

Models the part of Postfix's ``src/global/mail_queue.c`` and ``mail_stream.c``
that names and writes queue files. A queue file lives in
``HOST/var/spool/postfix/QUEUE/QUEUE_ID`` (QUEUE is incoming, active, deferred,
hold or corrupt). It is written under a temporary name and renamed into place
in one step, so a process killed at any moment leaves either no file or a
complete one: a message acknowledged with 250 is never half on disk.

Queue ids are Postfix's "short" form: five hex digits of the microseconds of
the arrival time, then the queue file's inode number in hex. As in Postfix the
file is created when the first recipient is accepted (:class:`IncomingFile`),
and under ``serve`` its real inode number makes the id unique across smtpd
processes; on a simulated clock a seeded per-host counter stands in for the
inode, so ids are the same on every run.

File format (mailsim's own; ``postcat`` will show it like Postfix's): one line
``mailsim-queue 1``, one line of JSON with the envelope, a blank line, then the
message content with LF line ends.

Examples
--------
>>> ids = QueueIdGenerator(seed=0)
>>> qid = ids.next(1795597019.177046)
>>> qid[:5], len(qid)
('2B396', 11)
"""
from __future__ import annotations

import itertools
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["QueueIdGenerator", "QueueFile", "Recipient", "IncomingFile", "write_queue_file",
           "read_queue_file", "QUEUE_NAMES", "HASHED_QUEUES", "queue_dir"]

QUEUE_NAMES = ("incoming", "active", "deferred", "hold", "corrupt")
#: hash_queue_names (deferred, defer) with hash_queue_depth 1: Postfix keeps these
#: queues in subdirectories named after the id's first character (deferred/4/4F36...)
HASHED_QUEUES = ("deferred", "defer")


def queue_dir(spool: Path, queue: str, queue_id: str) -> Path:
    """The directory a queue file lives in: ``deferred/4/`` for 4F3601600F3, ``active/``.

    >>> queue_dir(Path("/q"), "deferred", "4F3601600F3"), queue_dir(Path("/q"), "active", "4F3")
    (PosixPath('/q/deferred/4'), PosixPath('/q/active'))
    """
    d = spool / queue
    return d / queue_id[:1] if queue in HASHED_QUEUES else d
MAGIC = b"mailsim-queue 1\n"


class QueueIdGenerator:
    """Makes Postfix-style short queue ids: ``%05X`` of microseconds + inode in hex."""

    def __init__(self, seed: int = 0) -> None:
        rng = random.Random(seed)
        self._inode = 0x160000 + rng.randrange(0, 0x300)

    @property
    def counter(self) -> int:
        """The counter behind the ids (it stands in for the queue file's inode)."""
        return self._inode

    @counter.setter
    def counter(self, value: int) -> None:
        self._inode = value

    def next(self, now: float, inode: int | None = None) -> str:
        """The id for a file created at ``now``; ``inode`` None means "use the counter"."""
        if inode is None:
            self._inode += 1
            inode = self._inode
        usec = int(round(now * 1_000_000)) % 1_000_000
        return f"{usec:05X}{inode:X}"


_seq = itertools.count(1)


class IncomingFile:
    """A queue file being received: created at the first accepted RCPT, as Postfix does.

    :meth:`commit` writes the whole file and renames it to its queue id in one
    step; :meth:`abort` removes it (the client went away or sent RSET).
    """

    def __init__(self, spool: Path, make_id) -> None:
        self.dir = spool / "incoming"
        self.tmp = self.dir / f".tmp.{os.getpid()}.{next(_seq)}"
        try:
            self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.queue_id: str = make_id(os.fstat(self.fd).st_ino)

    def commit(self, qf: "QueueFile", *, fsync: bool = False, queue: str = "incoming") -> Path:
        """Write the file and rename it to ``QUEUE/queue_id`` in one step (``hold`` for held mail)."""
        data = MAGIC + json.dumps(qf.envelope(), sort_keys=True).encode() + b"\n\n" + qf.content
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
            if fsync:
                os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.fd = -1
        final = self.dir.parent / queue / self.queue_id
        try:
            os.replace(self.tmp, final)
        except FileNotFoundError:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.tmp, final)
        return final

    @property
    def pending(self) -> bool:
        """Neither committed nor aborted yet."""
        return self.fd >= 0

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass


@dataclass
class Recipient:
    """One envelope recipient as a queue file holds it.

    ``orig`` is the original recipient, as the client gave it (cleanup's ORCP
    record): ``None`` when none was recorded, in which case it is the address
    itself. It can be recorded empty: ``sendmail ''`` gives the empty address,
    which cleanup turns into $empty_address_recipient while the original stays
    empty (local then logs no ``orig_to=`` and adds no X-Original-To:).

    >>> Recipient("peter@example.com").original
    'peter@example.com'
    >>> Recipient("MAILER-DAEMON@example.com", "").original
    ''
    """

    address: str                 # after rewriting, internal form
    orig: str | None = None      # as the client gave it (original_recipient); None: not recorded
    notify: str = ""             # DSN NOTIFY= (e.g. "SUCCESS,FAILURE"), empty if not given
    orcpt: str = ""              # DSN ORCPT= (e.g. "rfc822;peter@example.com")

    @property
    def original(self) -> str:
        """The original recipient: ``orig`` if recorded, else the address."""
        return self.address if self.orig is None else self.orig


@dataclass
class QueueFile:
    queue_id: str
    sender: str
    recipients: list[Recipient]
    arrival: float
    content: bytes = b""
    attrs: dict[str, str] = field(default_factory=dict)   # client, helo, protocol, ret, envid ...
    hold: bool = False
    warn_time: float = 0.0       # when to send the delay warning (0: not set, -1: sent)
    size: int = 0                # cleanup's SIZE record: content bytes as records (0: not recorded)
    filter: str = ""             # FILT record: FILTER action's transport:nexthop (qmgr routes by it)
    redirect: str = ""           # RDR record: REDIRECT action's address (qmgr delivers there)

    def envelope(self) -> dict:
        """Everything but the content, as plain data (JSON-ready)."""
        return {"queue_id": self.queue_id, "sender": self.sender,
                "recipients": [vars(r) for r in self.recipients], "arrival": self.arrival,
                "attrs": self.attrs, "hold": self.hold,
                **({"warn_time": self.warn_time} if self.warn_time else {}),
                **({"size": self.size} if self.size else {}),
                **({"filter": self.filter} if self.filter else {}),
                **({"redirect": self.redirect} if self.redirect else {})}


def write_queue_file(spool: Path, queue: str, qf: QueueFile, *, fsync: bool = False) -> Path:
    """Write ``qf`` atomically into ``spool/queue/`` (hashed for deferred) and return its path."""
    d = queue_dir(spool, queue, qf.queue_id)
    final = d / qf.queue_id
    tmp = d / f".{qf.queue_id}.tmp"
    data = MAGIC + json.dumps(qf.envelope(), sort_keys=True).encode() + b"\n\n" + qf.content
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except FileNotFoundError:
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    return final


def read_queue_file(path: Path) -> QueueFile:
    """Read a queue file written by :func:`write_queue_file`."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path}: not a mailsim queue file")
    head, _, content = data[len(MAGIC):].partition(b"\n\n")
    env = json.loads(head)
    env["recipients"] = [Recipient(**r) for r in env["recipients"]]
    return QueueFile(content=content, **env)
