"""pickup(8): takes the messages postdrop(1) left in ``maildrop`` and feeds them to cleanup(8).

Mail from the ``sendmail`` command does not enter the queue directly.
postdrop(1) writes it into ``/var/spool/postfix/maildrop`` and pokes the
FIFO ``public/pickup``; the pickup daemon (``pickup unix n - y 60 1 pickup``
in master.cf: one process, woken at least every 60 s) then, for every
complete file there:

1. asks cleanup(8) for a new queue file -- its queue id is the one the rest of
   the log uses (the maildrop file's own id is never logged);
2. logs ``QID: uid=UID from=<sender>`` (the sender as the user gave it, the
   uid of the file's owner);
3. prepends its own header, naming the user only by number::

       Received: by mail.example.com (Postfix, from userid 1006)
               id 4AC871600F5; Wed, 25 Nov 2026 09:03:50 +0000 (UTC)

   (dated when postdrop wrote the file); a message whose first line starts
   with white space gets an empty line first, so that it does not continue
   that header -- it becomes the body;
4. passes envelope and content to cleanup(8), which canonicalizes the
   addresses, adds Message-Id:/Date:/From:, logs the message-id and queues
   the mail in ``incoming`` (:func:`mailsim.cleanup.submit`);
5. removes the maildrop file.

A file that is not a queue file is deleted, with the warnings Postfix's
record reader gives (``warning: maildrop/ID: unexpected EOF in data, record
type 83 length 117`` then ``warning: uid=0: unexpected or malformed record
type -2``): the warnings describe what Postfix's parser made of the file's
first bytes. A file whose owner bits are not ``rwx`` (postdrop sets them only
when the file is complete) is left alone, as are names that cannot be queue
ids.

Parameters read (Postfix defaults): myhostname, mail_name (Postfix),
line_length_limit (2048: the longest record the reader accepts).

Not simulated: content_filter, receive_override_options, the ``orig_id=``
form for mail requeued by ``postsuper -r`` (mailsim's postsuper does not use
maildrop), a retry of files cleanup could not take for a temporary reason
(they stay for the next run), files in Postfix's own binary queue format
(deleted without a warning).

Examples
--------
>>> import tempfile
>>> from mailsim.host import init_host
>>> from mailsim.postdrop import postdrop
>>> from mailsim.queue import Recipient
>>> h = init_host(tempfile.mkdtemp() + "/mx", users=["peter"])
>>> _ = postdrop(h, sender="root", recipients=[Recipient("peter", "peter")],
...              content=b"Subject: hi\\n\\nhello\\n", attrs={"full_name": "root"})
>>> ids = run(h)
>>> [ln.split(": ", 1)[1] for ln in h.log.lines if "pickup" in ln] == [f"{ids[0]}: uid=0 from=<root>"]
True
>>> list((h.spool / "maildrop").iterdir())
[]
>>> malformed_record_warnings(b"Subject: x\\n\\nhi\\n", "maildrop/4B2A11600F1", 0)
['maildrop/4B2A11600F1: unexpected EOF in data, record type 83 length 117', 'uid=0: unexpected or malformed record type -2']
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from .cleanup import CleanupError, rfc2822_date, submit
from .postdrop import READY_MODE
from .queue import QueueFile, Recipient, read_queue_file

__all__ = ["run", "pickup_file", "received", "malformed_record_warnings", "REC_TYPE_ENVELOPE"]

#: record types Postfix accepts in the envelope segment of a maildrop file
REC_TYPE_ENVELOPE = "MCTcFILSDRO/WVA>K<ion"
REC_TYPE_EOF = -1
REC_TYPE_ERROR = -2

_QUEUE_ID = re.compile(r"^[A-Za-z0-9_]{1,255}$")
#: attributes of the maildrop file that go on to cleanup (uid and user stay behind)
_PASSED = ("rewrite_context", "envid", "ret", "encoding", "trace_flags", "verp_delimiters")
DAY = 86400
HOUR = 3600


def _pid(host) -> int:
    """One pickup process per host (master.cf: process limit 1)."""
    pid = getattr(host, "_pickup_pid", None)
    if pid is None:
        pid = host.next_pid()
        setattr(host, "_pickup_pid", pid)
    return pid


def _log(host, text: str) -> None:
    host.log.write("pickup", _pid(host), text)


def received(myhostname: str, mail_name: str, uid: int, queue_id: str, when: float) -> str:
    """pickup's Received: header (two lines).

    >>> received("mail.example.com", "Postfix", 1006, "4AC871600F5", 1795597430.0).split("\\n")
    ['Received: by mail.example.com (Postfix, from userid 1006)', '\\tid 4AC871600F5; Wed, 25 Nov 2026 09:03:50 +0000 (UTC)']
    """
    return (f"Received: by {myhostname} ({mail_name}, from userid {uid})\n"
            f"\tid {queue_id}; {rfc2822_date(when)}")


# -- files that are not queue files ---------------------------------------------------------------
def _read_length(data: bytes, pos: int, label: str, rtype: int) -> tuple[int, int, str | None]:
    """A record's length field (7 bits a byte, low first): (length, new pos, warning)."""
    length = shift = 0
    while True:
        if shift >= 32:
            return 0, pos, f"{label}: too many length bits, record type {rtype}"
        if pos >= len(data):
            return 0, pos, f"{label}: unexpected EOF reading length, record type {rtype}"
        byte = data[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length, pos, None
        shift += 7


def _next_record(data: bytes, pos: int, label: str, limit: int) -> tuple[int, int, list[str]]:
    """Postfix's rec_get() on raw bytes: (record type or EOF/ERROR, new pos, warnings)."""
    if pos >= len(data):
        return REC_TYPE_EOF, pos, []
    rtype = data[pos]
    length, pos, warning = _read_length(data, pos + 1, label, rtype)
    if warning:
        return REC_TYPE_ERROR, pos, [warning]
    if length > limit:
        return REC_TYPE_ERROR, pos + length, [f"{label}: illegal length {length}, record type {rtype}"]
    if pos + length > len(data):
        return REC_TYPE_ERROR, len(data), [
            f"{label}: unexpected EOF in data, record type {rtype} length {length}"]
    return rtype, pos + length, []


def malformed_record_warnings(data: bytes, label: str, uid: int, limit: int = 2048) -> list[str]:
    """The warnings pickup logs for a maildrop file holding ``data`` (not a queue file).

    Reads records as Postfix would until one is malformed or not allowed in
    the envelope. Returns [] if the envelope is well formed (a file in
    Postfix's own format, which mailsim does not read).
    """
    pos = 0
    while True:
        rtype, pos, warnings = _next_record(data, pos, label, limit)
        if rtype < 0 or chr(rtype) not in REC_TYPE_ENVELOPE:
            return warnings + [f"uid={uid}: unexpected or malformed record type {rtype}"]
        if chr(rtype) == "M":
            return []


# -- one file ---------------------------------------------------------------------------------------
def _ready(path: Path, host) -> bool:
    """mail_open_ok(): a regular file named like a queue id, marked complete by postdrop."""
    if not _QUEUE_ID.match(path.name):
        return False
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode):
        _log(host, f"warning: maildrop/{path.name}: uid 0: not a regular file")
        return False
    return st.st_mode & 0o700 == READY_MODE & 0o700


def _check_time(host, qid: str, arrival: float) -> float:
    """Warn about time-warped files (pickup_copy); returns the arrival time to use."""
    now = host.clock.now()
    if arrival > now + 2 * HOUR:
        _log(host, f"warning: {qid}: message dated {int(arrival - now)} seconds into the future")
        return now
    if arrival < now - DAY:
        _log(host, f"warning: {qid}: message has been queued for {int((now - arrival) // DAY)} days")
    return arrival


def _cleanup_attrs(qf: QueueFile) -> dict[str, str]:
    attrs = {k: qf.attrs[k] for k in _PASSED if qf.attrs.get(k)}
    full = qf.attrs.get("full_name")
    if full is not None:
        attrs["full_name"] = full
        if full:
            attrs["sender_fullname"] = full
    return attrs


def pickup_file(host, path: Path) -> str | None:
    """Hand one maildrop file to cleanup; returns the new queue id (None if none).

    The file is removed unless cleanup failed for a reason worth a retry.
    """
    data = path.read_bytes()
    try:
        qf = read_queue_file(path)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        # the owner of a file that postdrop did not write: the host's administrator
        for w in malformed_record_warnings(data, f"maildrop/{path.name}", 0,
                                           host.conf.int("line_length_limit")):
            _log(host, f"warning: {w}")
        path.unlink(missing_ok=True)
        return None
    f = host.new_queue_file()
    arrival = _check_time(host, f.queue_id, qf.arrival)
    uid = int(qf.attrs.get("uid", "0"))
    _log(host, f"{f.queue_id}: uid={uid} from=<{qf.sender}>")
    content = qf.content
    if content[:1] in (b" ", b"\t"):
        content = b"\n" + content          # not a continuation of our Received: header
    rec = received(host.conf["myhostname"], host.conf.get("mail_name") or "Postfix", uid,
                   f.queue_id, arrival)
    recipients = [Recipient(r.address, r.orig or r.address, r.notify, r.orcpt) for r in qf.recipients]
    try:
        submit(host, sender=qf.sender, recipients=recipients, content=content, origin="pickup",
               received=rec, attrs=_cleanup_attrs(qf), file=f)
    except CleanupError as e:
        if e.kind in ("write", "defer"):
            return None                    # keep the file: the next run tries again
    path.unlink(missing_ok=True)
    return f.queue_id


def run(host) -> list[str]:
    """One pickup service run: every ready maildrop file, until a scan removes none.

    Returns the queue ids cleanup gave the messages, in order.
    """
    ids: list[str] = []
    maildrop = host.spool / "maildrop"
    while True:
        try:
            names = sorted(os.listdir(maildrop))
        except FileNotFoundError:
            return ids
        removed = 0
        for name in names:
            path = maildrop / name
            if not _ready(path, host):
                continue
            qid = pickup_file(host, path)
            if qid is not None:
                ids.append(qid)
            removed += not path.exists()
        if not removed:
            return ids
