"""local(8)'s writers: UNIX mailboxes, /file destinations and maildirs.

Models ``src/local/mailbox.c`` (deliver_mailbox: which of mailbox_transport,
mailbox_command, maildir or mbox; deliver_mailbox_file), ``file.c``,
``maildir.c`` and the global helpers they use: ``mail_copy.c`` (what is
written), ``mbox_open.c``/``dot_lockfile.c``/``safe_open.c`` (how the file
is opened) and ``mbox_dsn()`` (which errors defer and which bounce).

What is written (``mail_copy``):

* mbox (mailbox, /file): ``From SENDER  DATE`` line, ``Return-Path:``,
  ``X-Original-To:`` (the original recipient), ``Delivered-To:`` (when
  ``prepend_delivered_header`` has ``file``), the queued message with
  ``>From `` quoting, and one empty line;
* maildir: the same headers without the From_ line, no quoting, no empty
  line, in ``tmp/SEC.PPID.HOSTNAME``, then linked to
  ``new/SEC.VdevIinoMusec.HOSTNAME`` (device and inode in hex, the
  microseconds of the start time in decimal) and removed from ``tmp/``.
  Missing ``tmp/``, ``new/`` and ``cur/`` are created.

How it fails, with Postfix's texts: a lock file that cannot be created
(``unable to create lock file /home/u/Mail/inbox.lock: No such file or
directory``), a mailbox that is a directory (``cannot open file: Is a
directory``), a maildir under a regular file (``create maildir file ...:
Not a directory``), a message that would grow the file past
``mailbox_size_limit`` (``error writing message: File too large``, 5.2.2).
5.x.x errors bounce, 4.x.x ones (a lock held by someone else) defer.

Parameters: ``mail_spool_directory`` (``/var/mail``), ``home_mailbox``
(empty), ``mailbox_size_limit`` (51200000), ``prepend_delivered_header``
(``command, file, forward``), ``enable_original_recipient`` (yes),
``allow_mail_to_files`` (``alias, forward``).

The directory ``mail_spool_directory`` names is taken to exist (it is part
of the machine: Debian's package creates /var/mail); home directories and
the directories of /file destinations are not created.

Not simulated: file ownership and permissions (the host folder belongs to
whoever runs mailsim, so ``strict_mailbox_ownership`` and the recipient's
rights are not checked), kernel locks (``mailbox_delivery_lock`` is taken
as ``dotlock``; a lock file that exists defers at once instead of being
retried ``deliver_lock_attempts`` times and broken after
``stale_lock_time``), symbolic links, biff.

Example
-------
>>> from mailsim.queue import QueueFile, Recipient
>>> qf = QueueFile("4B2A1160001", "alice@example.org", [Recipient("marc@example.com")],
...                0.0, b"Subject: hi\\n\\nFrom here\\n")
>>> print(mail_copy(qf, "marc@example.com", "marc@example.com", MBOX, 1795597019.0).decode(),
...       end="")
From alice@example.org  Wed Nov 25 08:56:59 2026
Return-Path: <alice@example.org>
X-Original-To: marc@example.com
Delivered-To: marc@example.com
Subject: hi
<BLANKLINE>
>From here
<BLANKLINE>
>>> quote_822_local("john doe@example.com"), quote_822_local("a.b@example.com")
('"john doe"@example.com', 'a.b@example.com')
"""
from __future__ import annotations

import errno
import mmap
import os
import stat
import time
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..maps.base import MapError
from ..queue import QueueFile
from .command import deliver_command, deliver_pass
from .state import Attr, Run, UserAttr, defer, fail, find_maps, names, sent, verifying

__all__ = ["mail_copy", "quote_822_local", "mbox_dsn", "CopyError", "deliver_mailbox",
           "deliver_mailbox_file",
           "deliver_file", "deliver_maildir", "FROM", "RETURN_PATH", "ORIG_RCPT",
           "DELIVERED", "QUOTE", "BLANK", "MBOX"]

# mail_copy() flags (global/mail_copy.h)
FROM, RETURN_PATH, ORIG_RCPT, DELIVERED, QUOTE, BLANK = 1, 2, 4, 8, 16, 32
MBOX = FROM | RETURN_PATH | ORIG_RCPT | DELIVERED | QUOTE | BLANK

#: the device number mailsim puts into maildir file names on a simulated clock
SIM_DEVICE = 0x801

_SPECIALS = set('()<>@,;:\\"[] ')


class CopyError(Exception):
    """A failed open or write: ``dsn`` and Postfix's reason text."""

    def __init__(self, dsn: str, reason: str, diagnostic: str | None = None) -> None:
        super().__init__(reason)
        self.dsn = dsn
        self.reason = reason
        #: the DSN's Diagnostic-Code when it is not "X-Postfix; reason": a write
        #: error is reported as the sysexits text of EX_IOERR (mail_copy's dsb_unix)
        self.diagnostic = diagnostic


def mbox_dsn(err: int, default: str) -> str:
    """Postfix's mbox_dsn(): which errno defers (4.x.x) and which bounces."""
    if err in (errno.EAGAIN, errno.ESTALE):
        return "4.2.0"
    if err == errno.ENOSPC:
        return "4.3.0"
    if err in (errno.EDQUOT, errno.EFBIG):
        return "5.2.2"
    return default


def quote_822_local(addr: str) -> str:
    """Quote the local part when it is not an RFC 822 dot-string (quote_822_local)."""
    at = addr.rfind("@")
    local, rest = (addr[:at], addr[at:]) if at >= 0 else (addr, "")
    if local and not local.startswith(".") and not local.endswith(".") and ".." not in local \
            and not any(c in _SPECIALS or ord(c) < 32 or ord(c) == 127 for c in local):
        return addr
    quoted = "".join("\\" + c if c in '"\\\r' else c for c in local)
    return f'"{quoted}"{rest}'


def _asctime(t: float) -> str:
    """``Wed Nov 25 08:56:59 2026`` (asctime of the host's local time, UTC)."""
    tm = time.gmtime(t)
    return time.strftime("%a %b ", tm) + f"{tm.tm_mday:2d}" + time.strftime(" %H:%M:%S %Y", tm)


def mail_copy(qf: QueueFile, orig_rcpt: str, delivered: str, flags: int, now: float,
              *, sender: str | None = None, enable_orcpt: bool = True) -> bytes:
    """The bytes Postfix's mail_copy() writes for ``qf`` with ``flags``."""
    sender = qf.sender if sender is None else sender
    head = ""
    if flags & FROM:
        head += f"From {quote_822_local(sender) if sender else 'MAILER-DAEMON'}  {_asctime(now)}\n"
    if flags & RETURN_PATH:
        head += f"Return-Path: <{quote_822_local(sender) if sender else ''}>\n"
    if flags & ORIG_RCPT and enable_orcpt and orig_rcpt:
        head += f"X-Original-To: {quote_822_local(orig_rcpt)}\n"
    if flags & DELIVERED:
        head += f"Delivered-To: {quote_822_local(delivered)}\n"
    content = qf.content
    if content and not content.endswith(b"\n"):
        content += b"\n"
    if flags & QUOTE:
        lines = content.split(b"\n")
        content = b"\n".join(b">" + ln if ln.startswith(b"From ") else ln for ln in lines)
    if flags & BLANK:
        content += b"\n"
    return head.encode("utf-8", "surrogateescape") + content


def copy_flags(host, base: int) -> int:
    """``base`` without DELIVERED unless prepend_delivered_header lists ``file``."""
    if "file" not in host.conf.list("prepend_delivered_header"):
        base &= ~DELIVERED
    return base


def size_limit(host) -> int:
    """mailbox_size_limit: Postfix sets it as the file size limit of local(8)."""
    return host.conf.int("mailbox_size_limit")


def _inside(host, name: str) -> Path:
    try:
        return host.path(name)
    except PermissionError:
        raise CopyError("5.2.0", "cannot open file: Permission denied") from None


def _break_stale_lock(host, lock: Path) -> None:
    """dot_lockfile(): a lock file older than ``stale_lock_time`` (500s) was left by a
    process that died; it is removed. Its age is real time: the file is real."""
    try:
        age = time.time() - lock.stat().st_mtime
    except OSError:
        return
    if age > host.conf.time("stale_lock_time"):
        try:
            lock.unlink()
        except FileNotFoundError:
            pass


@contextmanager
def open_mbox(host, name: str, *, lock_may_fail: bool,
              warn) -> Iterator[tuple[int, os.stat_result]]:
    """Dot-lock and open (or create) the mbox file ``name`` for appending.

    Yields the descriptor and its status; raises :class:`CopyError` with
    Postfix's text. The lock file ``name.lock`` exists only while the
    message is written, as with Postfix.
    """
    path = _inside(host, name)
    try:
        st = os.stat(path)
    except OSError:
        st = None
    lock: Path | None = None
    if st is None or stat.S_ISREG(st.st_mode):
        try:
            _break_stale_lock(host, Path(f"{path}.lock"))
            os.close(os.open(f"{path}.lock", os.O_WRONLY | os.O_EXCL | os.O_CREAT, 0))
            lock = Path(f"{path}.lock")
        except OSError as e:
            why = f"unable to create lock file {name}.lock: {os.strerror(e.errno)}"
            if e.errno == errno.EEXIST:
                raise CopyError("4.2.0", why) from None
            if not lock_may_fail:
                raise CopyError(mbox_dsn(e.errno, "5.2.0"), why) from None
            warn(why)
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o600)
        except OSError as e:
            what = "cannot open file" if st is not None else "cannot create file exclusively"
            raise CopyError(mbox_dsn(e.errno, "5.2.0"), f"{what}: {os.strerror(e.errno)}") from None
        try:
            yield fd, os.fstat(fd)
        finally:
            os.close(fd)
    finally:
        if lock is not None:
            try:
                lock.unlink()
            except FileNotFoundError:
                pass


def already_appended(path: Path, data: bytes) -> bool:
    r"""Does the mailbox already hold this very copy (all but its From_ line)?

    Only asked after a crash (``host.in_doubt``, see mailsim.qmgr): the queue
    manager may have died between the append and its journal line, and the
    recipient may have been deferred since (other mail arrived after the
    copy), so the whole mailbox is searched. The copy carries this
    recipient's Delivered-To: and the message's own Received: header with its
    queue id, so it cannot be confused with another message.

    >>> import tempfile; box = Path(tempfile.mkdtemp()) / "peter"
    >>> _ = box.write_bytes(b"From a  Mon\nX: 1\n\nFrom b  Tue\nX: 2\n\n")
    >>> already_appended(box, b"From a  Wed\nX: 1\n\n"), already_appended(box, b"From c\nX: 3\n")
    (True, False)
    """
    body = data.split(b"\n", 1)[1]
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return False
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return m.find(body) >= 0


def maildir_holds(host, path: str, data: bytes) -> bool:
    """The Maildir form of :func:`already_appended`: a file in ``new/`` or ``cur/``
    with exactly this content."""
    for sub in ("new/", "cur/"):
        try:
            folder = host.path(path + sub)
            names = os.listdir(folder)
        except (OSError, PermissionError):
            continue
        for name in names:
            f = folder / name
            try:
                if f.stat().st_size == len(data) and f.read_bytes() == data:
                    return True
            except OSError:
                continue
    return False


def write_all(fd: int, data: bytes, limit: int, regular: bool) -> None:
    """Append ``data``; past ``limit`` the write fails like Postfix's (EFBIG) and the
    file keeps its old size."""
    if regular and limit and os.fstat(fd).st_size + len(data) > limit:
        raise CopyError("5.2.2", "error writing message: File too large",
                        "x-unix; input/output error")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _special(name: str) -> bool:
    """/dev/null: the one device a simulated host has (it swallows everything)."""
    return name == "/dev/null"


def deliver_mailbox(run: Run, a: Attr, u: UserAttr) -> tuple[bool, int]:
    """The user's mailbox (or the transport/command that replaces it); (found, status)."""
    host = run.host
    a = a.down()
    if run.been_here(f"mailbox {a.local}"):
        return True, 0
    try:
        transport = find_maps(host, host.conf.list("mailbox_transport_maps"), a.user)
        command = find_maps(host, host.conf.list("mailbox_command_maps"), a.user)
    except MapError:                          # details are in the log (the table's warning)
        return True, defer(run, a, "4.3.0", "table lookup failure")
    if transport is not None:
        return True, deliver_pass(run, a, transport)
    if host.conf.get("mailbox_transport"):
        return True, deliver_pass(run, a, host.conf["mailbox_transport"])
    pw = host.users().get(a.user)
    if pw is None:
        return False, 0
    u = UserAttr.of(pw)
    if command is None:
        command = host.conf.get("mailbox_command") or None
    home_mailbox = host.conf.get("home_mailbox") or ""
    spool = host.conf["mail_spool_directory"]
    if command is not None:
        return True, deliver_command(run, a, u, command)
    if home_mailbox.endswith("/"):
        return True, deliver_maildir(run, a, u, f"{u.home}/{home_mailbox}")
    if spool.endswith("/"):
        return True, deliver_maildir(run, a, u, f"{spool}{a.user}/")
    return True, deliver_mailbox_file(run, a, u)


def deliver_mailbox_file(run: Run, a: Attr, u: UserAttr) -> int:
    """The UNIX mailbox: ``$mail_spool_directory/USER`` or ``~/$home_mailbox``."""
    host = run.host
    a = a.down()
    home_mailbox = host.conf.get("home_mailbox") or ""
    if home_mailbox:
        mailbox = f"{u.home}/{home_mailbox}"
    else:
        spool = host.conf["mail_spool_directory"]
        mailbox = f"{spool}/{a.user}"
        _machine_spool(host, spool)
    if (v := verifying(run, a, "mailbox")) is not None:
        return v
    data = mail_copy(run.qf, a.rcpt.orig, a.delivered or a.rcpt.address,
                     copy_flags(host, MBOX), host.clock.now(),
                     enable_orcpt=host.conf.bool("enable_original_recipient"))
    try:
        with open_mbox(host, mailbox, lock_may_fail=False, warn=run.warn) as (fd, st):
            if not stat.S_ISREG(st.st_mode):
                raise CopyError("5.2.0", f"destination {mailbox} is not a regular file")
            if not (host.in_doubt and already_appended(_inside(host, mailbox), data)):
                write_all(fd, data, size_limit(host), True)
    except CopyError as e:
        return fail(run, a, e.dsn, f"cannot update mailbox {mailbox} for user {a.user}. {e.reason}",
                    diagnostic=e.diagnostic)
    return sent(run, a, "delivered to mailbox")


def _machine_spool(host, spool: str) -> None:
    """The mail spool directory is part of the machine (Debian's package makes
    /var/mail): a simulated host has the one main.cf names. Home mailboxes
    and files get no such help, as on a real server."""
    try:
        path = host.path(spool)
    except PermissionError:
        return
    if not os.path.lexists(path):
        path.mkdir(parents=True, exist_ok=True)


def deliver_file(run: Run, a: Attr, u: UserAttr, path: str) -> int:
    """A ``/file/name`` destination of an alias, .forward or :include: file."""
    host = run.host
    a = a.down()
    if run.been_here(f"file {u.uid} {path}"):
        return 0
    if not names(host.conf["allow_mail_to_files"], "allow_mail_to_files") & a.exp_type:
        return fail(run, a, "5.7.1", "mail to file is restricted")
    if path.endswith("/"):
        return deliver_maildir(run, a, u, path)
    if (v := verifying(run, a, f"file: {path}")) is not None:
        return v
    data = mail_copy(run.qf, a.rcpt.orig, a.delivered or a.rcpt.address,
                     copy_flags(host, MBOX), host.clock.now(),
                     enable_orcpt=host.conf.bool("enable_original_recipient"))
    if _special(path):
        return sent(run, a, f"delivered to file: {path}")
    try:
        with open_mbox(host, path, lock_may_fail=True, warn=run.warn) as (fd, st):
            regular = stat.S_ISREG(st.st_mode)
            if regular and st.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
                raise CopyError("5.7.1", "file is executable")
            write_all(fd, data, size_limit(host), regular)
    except CopyError as e:
        return fail(run, a, e.dsn, f"cannot append message to file {path}: {e.reason}")
    return sent(run, a, f"delivered to file: {path}")


def _make_dirs(host, name: str) -> None:
    host.path(name).mkdir(mode=0o700, parents=True, exist_ok=True)


def maildir_names(run: Run, a: Attr, start: float, fd: int | None) -> tuple[str, str]:
    """(tmp name, new name) as Postfix makes them; on a simulated clock the device
    and inode numbers are made up (deterministically) instead of read from the file."""
    host = run.host
    sec, usec = divmod(int(round(start * 1_000_000)), 1_000_000)
    hostname = host.hostname_file()
    if host.clock.simulated or fd is None:
        dev = SIM_DEVICE
        seed = f"{run.qf.queue_id} {a.rcpt.address} {usec}".encode()
        ino = 0x100000 + zlib.crc32(seed) % 0xE00000
    else:
        st = os.fstat(fd)
        dev, ino = st.st_dev, st.st_ino
    return f"{sec}.P{run.pid}.{hostname}", f"{sec}.V{dev:x}I{ino:x}M{usec}.{hostname}"


def deliver_maildir(run: Run, a: Attr, u: UserAttr, path: str) -> int:
    """qmail-style maildir delivery into ``path`` (which ends in ``/``)."""
    host = run.host
    a = a.down()
    if (v := verifying(run, a, "maildir")) is not None:
        return v
    start = host.clock.now()
    flags = copy_flags(host, RETURN_PATH | ORIG_RCPT | DELIVERED)
    data = mail_copy(run.qf, a.rcpt.orig, a.delivered or a.rcpt.address, flags, start,
                     enable_orcpt=host.conf.bool("enable_original_recipient"))
    if host.in_doubt and maildir_holds(host, path, data):
        return sent(run, a, "delivered to maildir")     # the copy made before a crash
    tmpdir, newdir, curdir = path + "tmp/", path + "new/", path + "cur/"
    tmpname = maildir_names(run, a, start, None)[0]
    tmpfile = tmpdir + tmpname
    try:
        fd = _create(host, tmpfile, tmpdir)
    except OSError as e:
        return _maildir_failed(run, a, u, e.errno, f"create maildir file {tmpfile}: "
                               f"{os.strerror(e.errno)}")
    try:
        newfile = newdir + maildir_names(run, a, start, fd)[1]
        try:
            write_all(fd, data, size_limit(host), True)
        except CopyError as e:
            return _maildir_failed(run, a, u, errno.EFBIG, e.reason)
        finally:
            os.close(fd)
        try:
            _link(host, tmpfile, newfile, (curdir, newdir))
        except OSError as e:
            return _maildir_failed(run, a, u, e.errno, f"create maildir file {newfile}: "
                                   f"{os.strerror(e.errno)}")
    finally:
        try:
            host.path(tmpfile).unlink()
        except OSError:
            pass
    return sent(run, a, "delivered to maildir")


def _create(host, name: str, directory: str) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return os.open(host.path(name), flags, 0o600)
    except FileNotFoundError:
        _make_dirs(host, directory)
        return os.open(host.path(name), flags, 0o600)


def _link(host, src: str, dst: str, dirs: tuple[str, str]) -> None:
    target = host.path(dst)
    while target.exists():     # a made-up inode number that is taken: take the next one
        target = target.with_name(target.name.replace("I", "I1", 1))
    try:
        os.link(host.path(src), target)
    except FileNotFoundError:
        for d in dirs:
            _make_dirs(host, d)
        os.link(host.path(src), target)


def _maildir_failed(run: Run, a: Attr, u: UserAttr, err: int, reason: str) -> int:
    if err == errno.EACCES:
        run.warn(f"maildir access problem for UID/GID={u.uid}/{u.gid}: {reason}")
        run.warn("perhaps you need to create the maildirs in advance")
    dsn = "5.2.2" if err == errno.EFBIG else mbox_dsn(err, "5.2.0")
    return fail(run, a, dsn, f"maildir delivery failed: {reason}")
