"""virtual(8): the virtual mailbox delivery agent.

Postfix's ``virtual`` agent delivers mail for the domains in
``virtual_mailbox_domains`` -- mailboxes of users who have no account on the
machine. For a recipient it

1. looks the full address (folded to lower case) up in
   ``virtual_mailbox_maps`` (``user@domain``, without the ``+extension``,
   then the catch-all ``@domain``); not found: the recipient bounces with
   ``5.1.1 unknown user: "user@domain"``;
2. looks up the owner in ``virtual_uid_maps`` and ``virtual_gid_maps``
   (usually ``static:5000``): not found, a uid below
   ``virtual_minimum_uid`` or a gid of 0 defer the recipient with
   ``4.3.5 mail system configuration error`` and a warning that says which;
3. delivers to ``$virtual_mailbox_base/RESULT``: a result ending in ``/``
   is a Maildir (a file in ``tmp/``, then linked into ``new/``; the
   directories are made as needed), anything else an mbox file (a
   ``From`` line, ``>From`` quoting, an empty line at the end) whose
   directory must exist (else ``4.2.0 ... unable to create lock file``);
4. adds ``Return-Path:``, ``X-Original-To:`` (the original recipient) and
   ``Delivered-To:`` (the recipient) in front of the message;
5. logs ``to=<...>, relay=virtual, ..., status=sent (delivered to mailbox)``
   (or ``maildir``).

``virtual_mailbox_limit`` is the largest file virtual may write (Postfix
sets it as the process file size limit): an mbox that would grow past it
is left alone and the recipient bounces with ``5.2.2 delivery failed to
mailbox PATH: error writing message: File too large``.

Maildir file names are Postfix's: ``tmp/SECONDS.PPID.HOST`` while writing,
``new/SECONDS.VDEVICEIINODEMMICROSECONDS.HOST`` (device and inode in hex)
when done. On a simulated clock the device is fixed and the inode comes
from a per-host counter, so names are the same on every run.

Parameters read (Postfix defaults): virtual_mailbox_maps
(empty), virtual_mailbox_base (empty: Postfix stops with "do not specify
relative pathname"), virtual_uid_maps, virtual_gid_maps (empty),
virtual_minimum_uid (100), virtual_mailbox_limit (51200000),
message_size_limit (10240000), recipient_delimiter.

Not simulated: file ownership (no chown: uid/gid are checked, not used),
virtual_mailbox_lock (nothing else writes the files), strict_mailbox_ownership,
DSN success notices for NOTIFY=SUCCESS.

Examples
--------
>>> import tempfile
>>> from mailsim.host import init_host
>>> from mailsim.queue import QueueFile, Recipient
>>> h = init_host(tempfile.mkdtemp() + "/mx", hostname="mail.example.com")
>>> h = h.with_settings(virtual_mailbox_domains="vmail.example.net", virtual_mailbox_base="/var/vmail",
...     virtual_mailbox_maps="inline:{ anna@vmail.example.net=vmail.example.net/anna/ }",
...     virtual_uid_maps="static:5000", virtual_gid_maps="static:5000")
>>> qf = QueueFile("4B2A1160001", "alice@example.com", [Recipient("anna@vmail.example.net")],
...                h.clock.now(), b"Subject: hi\\n\\nhello\\n")
>>> deliver_virtual(h, qf, qf.recipients[0], active=h.clock.now(), pid=4242)
('2.0.0', 'sent', 'delivered to maildir')
>>> [p.parent.name for p in h.path("/var/vmail/vmail.example.net/anna").rglob("*.*")]
['new']
"""
from __future__ import annotations

import errno
import itertools
import os
import time
from pathlib import Path

from .table_open import log_open_messages
from .canonical import lookup_address, quote_local
from .log_adhoc import log_adhoc
from .local.mailbox import mbox_dsn      # Postfix's global mbox_dsn(), shared with local(8)
from .maps import MapError
from .queue import QueueFile, Recipient

__all__ = ["deliver_virtual", "mail_copy", "maildir_names", "VirtualError", "VirtualFatal", "Reason"]

#: the device number a simulated host's files live on (the recording machine's)
SIM_DEVICE = 0xFE00
_sim_inodes: dict[Path, itertools.count] = {}


class Reason(str):
    """A status text that also carries the DSN ``Diagnostic-Code:`` value.

    Postfix reports a failed write with the system's words
    (``x-unix; input/output error``) instead of ``X-Postfix; <text>``;
    bounce(8) reads it from ``.diagnostic`` (None: X-Postfix).

    >>> r = Reason("delivery failed", "x-unix; input/output error")
    >>> r, r.diagnostic
    ('delivery failed', 'x-unix; input/output error')
    """
    diagnostic: str | None

    def __new__(cls, text: str, diagnostic: str | None = None) -> "Reason":
        obj = super().__new__(cls, text)
        obj.diagnostic = diagnostic
        return obj


#: Diagnostic-Code of a failed write (dsb_unix with sys_exits EX_IOERR)
_IOERR = "x-unix; input/output error"


class VirtualError(Exception):
    """A recipient that could not be delivered: ``dsn`` and the status text."""

    def __init__(self, dsn: str, text: str, diagnostic: str | None = None) -> None:
        super().__init__(text)
        self.dsn, self.text = dsn, Reason(text, diagnostic)


class _Fatal(Exception):
    """A configuration error that stops virtual(8) (Postfix's msg_fatal)."""


# -- the bytes written ------------------------------------------------------------------------------
def _from_date(t: float) -> str:
    """asctime() of ``t`` in UTC: ``Wed Nov 25 12:49:06 2026``."""
    tm = time.gmtime(t)
    return time.strftime("%a %b ", tm) + f"{tm.tm_mday:2d}" + time.strftime(" %H:%M:%S %Y", tm)


def mail_copy(qf: QueueFile, rcpt: Recipient, now: float, *, mbox: bool) -> bytes:
    """The message as virtual writes it (Postfix's mail_copy()).

    Both forms get Return-Path:, X-Original-To: and Delivered-To:; an mbox
    entry also gets the ``From SENDER  DATE`` line, ``>From `` quoting and an
    empty line at the end.

    >>> qf = QueueFile("Q", "", [], 0.0, b"Subject: x\\n\\nFrom me\\n")
    >>> print(mail_copy(qf, Recipient("Anna@vmail.example.net", "info@x"), 0.0, mbox=True).decode(), end="")
    From MAILER-DAEMON  Thu Jan  1 00:00:00 1970
    Return-Path: <>
    X-Original-To: info@x
    Delivered-To: anna@vmail.example.net
    Subject: x
    <BLANKLINE>
    >From me
    <BLANKLINE>
    """
    sender = quote_local(qf.sender) if qf.sender else ""
    orig = rcpt.original
    head = ""
    if mbox:
        head += f"From {sender or 'MAILER-DAEMON'}  {_from_date(now)}\n"
    head += f"Return-Path: <{sender}>\n"
    if orig:
        head += f"X-Original-To: {quote_local(orig)}\n"
    head += f"Delivered-To: {quote_local(rcpt.address).lower()}\n"
    content = qf.content
    if content and not content.endswith(b"\n"):
        content += b"\n"
    if mbox:
        content = b"".join(b">" + ln if ln.startswith(b"From ") else ln
                           for ln in content.splitlines(keepends=True))
        content += b"\n"
    return head.encode("utf-8", "surrogateescape") + content


def maildir_names(start: float, pid: int, hostname: str, device: int, inode: int) -> tuple[str, str]:
    """(tmp name, new name) of a Maildir file, as virtual(8) makes them.

    >>> maildir_names(1795610948.524040, 18564, "vm", 0xfe00, 0x16e0a7)
    ('1795610948.P18564.vm', '1795610948.Vfe00I16e0a7M524040.vm')
    """
    sec = int(start)
    usec = int(round((start - sec) * 1_000_000))
    if usec >= 1_000_000:
        sec, usec = sec + 1, usec - 1_000_000
    return f"{sec}.P{pid}.{hostname}", f"{sec}.V{device:x}I{inode:x}M{usec}.{hostname}"


# -- table lookups ----------------------------------------------------------------------------------
def _find(host, addr: str, param: str) -> str | None:
    """``addr`` in the tables of ``param`` (mail_addr_find order); MapError passes through."""
    found = lookup_address(host, host.conf.list(param), addr)
    return None if found is None else found[0]


def _atol(text: str) -> int:
    """C's atol(): optional sign and leading digits, 0 if none."""
    s = text.strip()
    sign, i = 1, 0
    if s[:1] in "+-" and s:
        sign, i = (-1 if s[0] == "-" else 1), 1
    j = i
    while j < len(s) and s[j].isdigit():
        j += 1
    return sign * int(s[i:j]) if j > i else 0


def _warn(host, pid: int, text: str) -> None:
    host.log.write("virtual", pid, f"warning: {text}")


def _owner(host, user: str, pid: int) -> tuple[int, int]:
    """(uid, gid) from virtual_uid_maps / virtual_gid_maps, checked as virtual(8) does."""
    def lookup(param: str) -> str | None:
        try:
            return _find(host, user, param)
        except MapError:
            return None
    uid_res = lookup("virtual_uid_maps")
    if uid_res is None:
        _warn(host, pid, f"recipient {user}: not found in virtual_uid_maps")
        raise VirtualError("4.3.5", "mail system configuration error")
    if _atol(uid_res) < host.conf.int("virtual_minimum_uid"):
        _warn(host, pid, f"recipient {user}: bad uid {uid_res} in virtual_uid_maps")
        raise VirtualError("4.3.5", "mail system configuration error")
    gid_res = lookup("virtual_gid_maps")
    if gid_res is None:
        _warn(host, pid, f"recipient {user}: not found in virtual_gid_maps")
        raise VirtualError("4.3.5", "mail system configuration error")
    if _atol(gid_res) <= 0:
        _warn(host, pid, f"recipient {user}: bad gid {gid_res} in virtual_gid_maps")
        raise VirtualError("4.3.5", "mail system configuration error")
    return _atol(uid_res), _atol(gid_res)


def _file_limit(host) -> int:
    """virtual_mailbox_limit, after virtual(8)'s start-up checks (0: no limit)."""
    c = host.conf
    limit = c.int("virtual_mailbox_limit")
    if limit > 0:
        msg = c.int("message_size_limit")
        if msg <= 0:
            raise _Fatal("configuration error: virtual_mailbox_limit is limited but "
                         "message_size_limit is unlimited")
        if limit < msg:
            raise _Fatal("configuration error: virtual_mailbox_limit is smaller than "
                         "message_size_limit")
    return max(limit, 0)


# -- delivery ----------------------------------------------------------------------------------------
def _deliver_mbox(host, qf: QueueFile, rcpt: Recipient, mailbox: str, limit: int) -> str:
    path = host.path(mailbox)
    where = f"delivery failed to mailbox {mailbox}: "
    if not path.parent.is_dir():
        err = errno.ENOTDIR if path.parent.exists() else errno.ENOENT
        raise VirtualError(mbox_dsn(err, "4.2.0"), where + f"unable to create lock file {mailbox}.lock: "
                           f"{os.strerror(err)}")
    if path.is_dir():
        raise VirtualError(mbox_dsn(errno.EISDIR, "4.2.0"), where + "cannot open file: Is a directory")
    data = mail_copy(qf, rcpt, host.clock.now(), mbox=True)
    size = path.stat().st_size if path.exists() else 0
    if limit and size + len(data) > limit:
        # the write stops at the file size limit (EFBIG); Postfix truncates back
        raise VirtualError("5.2.2", where + "error writing message: File too large", _IOERR)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    return "delivered to mailbox"


def _inode(host, fd: int) -> tuple[int, int]:
    """(device, inode) of the new Maildir file: real ones on the wall clock."""
    if not host.clock.simulated:
        st = os.fstat(fd)
        return st.st_dev, st.st_ino
    counter = _sim_inodes.setdefault(host.root, itertools.count(0x16E0A0))
    return SIM_DEVICE, next(counter)


def _deliver_maildir(host, qf: QueueFile, rcpt: Recipient, mailbox: str, limit: int,
                     pid: int) -> str:
    start = host.clock.now()
    base = host.path(mailbox)
    hostname = host.hostname_file()
    tmp_name, _ = maildir_names(start, pid, hostname, 0, 0)
    tmp = base / "tmp" / tmp_name
    where = "maildir delivery failed: "
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError:
            os.makedirs(tmp.parent, 0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise VirtualError(mbox_dsn(e.errno, "4.2.0"), where + f"create maildir file "
                           f"{mailbox}tmp/{tmp_name}: {os.strerror(e.errno)}") from None
    try:
        dev, ino = _inode(host, fd)
        _, new_name = maildir_names(start, pid, hostname, dev, ino)
        data = mail_copy(qf, rcpt, host.clock.now(), mbox=False)
        if limit and len(data) > limit:
            raise VirtualError("5.2.2", where + "error writing message: File too large", _IOERR)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.close(fd)
        fd = -1
        new = base / "new" / new_name
        try:
            os.link(tmp, new)
        except FileNotFoundError:
            os.makedirs(base / "cur", 0o700, exist_ok=True)
            os.makedirs(base / "new", 0o700, exist_ok=True)
            os.link(tmp, new)
        except OSError as e:
            raise VirtualError(mbox_dsn(e.errno, "4.2.0"), where + f"create maildir file "
                               f"{mailbox}new/{new_name}: {os.strerror(e.errno)}") from None
    finally:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return "delivered to maildir"


def _deliver(host, qf: QueueFile, rcpt: Recipient, pid: int) -> str:
    """One recipient, start to end: the status text, or VirtualError / _Fatal."""
    limit = _file_limit(host)
    base = host.conf["virtual_mailbox_base"]
    if not base.startswith("/"):
        raise _Fatal(f"do not specify relative pathname: virtual_mailbox_base = {base}")
    user = rcpt.address.lower()
    try:
        result = _find(host, user, "virtual_mailbox_maps")
    except MapError as e:
        _warn(host, pid, e.warning)
        raise VirtualError("4.3.5", "mail system configuration error") from None
    if result is None:
        raise VirtualError("5.1.1", f'unknown user: "{user}"')
    mailbox = f"{base}/{result}"
    _owner(host, user, pid)
    if mailbox.endswith("/"):
        return _deliver_maildir(host, qf, rcpt, mailbox, limit, pid)
    return _deliver_mbox(host, qf, rcpt, mailbox, limit)


class VirtualFatal(Exception):
    """virtual(8) refused to start (a configuration error); it has logged ``fatal:``."""


def deliver_virtual(host, qf: QueueFile, rcpt: Recipient, *, active: float,
                    pid: int) -> tuple[str, str, str]:
    """Deliver ``qf`` to one recipient of a virtual mailbox domain and log it.

    Returns ``(dsn, status, text)`` -- ``("2.0.0", "sent", "delivered to
    mailbox")``, ``("5.1.1", "bounced", 'unknown user: "..."')``, ... --
    after logging the ``to=<...>, relay=virtual`` line. ``text`` is a
    :class:`Reason`: its ``.diagnostic`` is the DSN Diagnostic-Code when it
    is not ``X-Postfix; text``. A configuration
    error that stops Postfix's virtual (relative virtual_mailbox_base, a
    limit below message_size_limit) logs ``fatal: ...`` and raises
    :class:`VirtualFatal`: like local(8), the agent does not start, master
    throttles it and the message stays in the active queue.
    """
    relay = "virtual"
    log_open_messages(host, "virtual", pid)
    try:
        dsn, status, text = "2.0.0", "sent", _deliver(host, qf, rcpt, pid)
    except VirtualError as e:
        dsn, text = e.dsn, e.text
        status = "bounced" if dsn.startswith("5") else "deferred"
    except _Fatal as e:
        # virtual(8) exits at start-up; master throttles it and the mail waits in active
        host.log.write("virtual", pid, f"fatal: {e}")
        raise VirtualFatal(str(e)) from None
    log_adhoc(host, "virtual", pid, qf, rcpt.address, rcpt.orig, relay, text, dsn, status,
              active=active)
    return dsn, status, text
