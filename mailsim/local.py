"""local(8): alias expansion and delivery to a UNIX mailbox (first form).

Postfix's local delivery agent takes a message from the queue manager for a
recipient in a local domain (``mydestination``) and:

1. looks the recipient's local part up in every table of ``alias_maps``
   (``hash:/etc/aliases``); an alias's right-hand side is a list
   ``a, b, c`` whose members are expanded again (recursively), where
   ``:include:/file`` reads more members from a file, ``/file`` names a file
   to append to and ``|command`` a command to run. An alias that names itself
   (``root: root, backup``) is not expanded again: that member goes to the
   user's own mailbox. Duplicates are delivered once.
2. delivers to the UNIX mailbox ``$mail_spool_directory/USER`` (or
   ``~/$home_mailbox``) in mbox form: a ``From SENDER  DATE`` line, then
   ``Return-Path:``, ``X-Original-To:``, ``Delivered-To:``, the message as
   queued (it starts with the Received: header cleanup added), ``>From ``
   quoting of lines starting with ``From ``, and one empty line.
3. logs ``to=<...>, orig_to=<...>, relay=local, delay=..., delays=a/b/c/d,
   dsn=..., status=sent (delivered to mailbox)``.

Parameters read (Postfix 3.7 defaults):

* ``alias_maps`` (``hash:/etc/aliases, nis:mail.aliases``; Debian sets
  ``hash:/etc/aliases``)
* ``mail_spool_directory`` (``/var/mail``), ``home_mailbox`` (empty)
* ``mailbox_size_limit`` (``51200000``; 0 = no limit): a mailbox that would
  grow past it is left unchanged and the recipient bounces with
  ``5.2.2 cannot update mailbox ... error writing message: File too large``
  (Postfix sets the file size resource limit, so the write fails with EFBIG)
* ``recipient_delimiter`` (empty; Debian ``+``): ``user+ext`` is looked up as
  ``user+ext`` then ``user``
* ``myorigin`` (``$myhostname``): bare names in aliases become ``name@$myorigin``
* ``delay_max_res`` (2): resolution of the logged delays

Not simulated (yet): ``mailbox_command``, ``mailbox_transport``,
``fallback_transport``, ``.forward`` files, maildir (``home_mailbox = Maildir/``),
owner- aliases, locking. File and command destinations are returned by
:func:`expand_aliases`, marked, but never executed.

Example
-------
>>> import tempfile, pathlib
>>> from mailsim.host import init_host
>>> from mailsim.queue import QueueFile, Recipient
>>> h = init_host(pathlib.Path(tempfile.mkdtemp()) / "mx", users=["marc"])
>>> [tuple(e) for e in expand_aliases(h, "postmaster@example.com")]
[('root', 'postmaster@example.com')]
>>> qf = QueueFile("4B2A1160001", "alice@example.org",
...                [Recipient("marc@example.com")], h.clock.now(),
...                content=b"Subject: hi\\n\\nFrom here\\n")
>>> deliver_mbox(h, qf, qf.recipients[0], "marc", "marc@example.com")
'delivered to mailbox'
>>> print(h.path("/var/mail/marc").read_text().split("\\n", 1)[1], end="")
Return-Path: <alice@example.org>
X-Original-To: marc@example.com
Delivered-To: marc@example.com
Subject: hi
<BLANKLINE>
>From here
<BLANKLINE>
>>> format_tv(0, 12345), format_tv(0, 4000), format_tv(12, 600000)
('0.01', '0', '13')
"""
from __future__ import annotations

import os
import time
from typing import NamedTuple

from .log_adhoc import format_tv, log_adhoc
from .queue import QueueFile, Recipient

__all__ = ["Expansion", "expand_aliases", "deliver_mbox", "log_delivery", "format_tv",
           "mailbox_path", "recipient_address", "FILE", "COMMAND", "FORWARD"]

#: markers for destinations that are not a local user's mailbox
FILE = "file"
COMMAND = "command"
FORWARD = "forward"

MAX_LEVEL = 100          # Postfix: "alias database loop" past this depth


class Expansion(NamedTuple):
    """One result of alias expansion: ``dest`` and the original recipient.

    ``dest`` is a local user name (``"peter"``), a file (``"/var/log/x"``), a
    command (``"|/usr/bin/procmail"``) or, for a member in another domain, the
    full address (``"bob@example.org"``). :func:`kind` tells which.
    """
    dest: str
    orig: str

    @property
    def kind(self) -> str:
        if self.dest.startswith("|"):
            return COMMAND
        if self.dest.startswith("/"):
            return FILE
        if "@" in self.dest:
            return FORWARD
        return "mailbox"


def _split_list(text: str) -> list[str]:
    """Split an alias right-hand side on commas/whitespace, keeping quoted parts."""
    out, cur, quote = [], "", False
    for ch in text:
        if ch == '"':
            quote = not quote
            cur += ch
        elif not quote and (ch == "," or ch in " \t\r\n"):
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out


def _local_part(host, addr: str) -> str | None:
    """The local part of ``addr`` if it is in a local domain (or has none)."""
    local, at, domain = addr.rpartition("@")
    if not at:
        return addr
    d = domain.lower().rstrip(".")
    try:
        if host.trivial_rewrite().is_local_domain(d):
            return local
    except Exception:  # pragma: no cover - fall back to mydestination by name
        pass
    mine = {x.lower() for x in host.conf.list("mydestination")}
    return local if d in mine else None


def _lookup_alias(host, name: str) -> str | None:
    for spec in host.conf.list("alias_maps"):
        r = host.open_map(spec).lookup(name)
        if r is not None:
            return r
    return None


def expand_aliases(host, recipient: str) -> list[Expansion]:
    """Expand ``recipient`` through ``alias_maps`` as local(8) does.

    Returns (destination, original recipient) pairs in delivery order, without
    duplicates. A recipient with no alias comes back as its own user name
    (whether or not that user exists: :func:`deliver_mbox` decides that).
    """
    delim = host.conf.get("recipient_delimiter") or ""
    out: list[Expansion] = []
    seen: set[str] = set()

    def add(dest: str) -> None:
        if dest not in seen:
            seen.add(dest)
            out.append(Expansion(dest, recipient))

    def expand(member: str, parent: str | None, level: int) -> None:
        m = member.strip()
        if m.startswith('"') and m.endswith('"') and len(m) > 1:
            m = m[1:-1]
        if not m:
            return
        if m.startswith("|"):
            add(m)
            return
        if m.lower().startswith(":include:"):
            path = m[len(":include:"):].strip()
            try:
                text = host.path(path).read_text()
            except OSError:
                return
            for line in text.splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    for x in _split_list(line):
                        expand(x, parent, level + 1)
            return
        if m.startswith("/"):
            add(m)
            return
        local = _local_part(host, m)
        if local is None:
            add(m)
            return
        name = local.lower()
        if level > MAX_LEVEL:
            add(name)
            return
        keys = [name]
        if delim:
            for d in delim:
                if d in name:
                    base = name.split(d, 1)[0]
                    if base and base not in keys:
                        keys.append(base)
                    break
        for key in keys:
            if parent is not None and key == parent:
                break                    # alias names itself: deliver to the user
            rhs = _lookup_alias(host, key)
            if rhs is not None:
                for x in _split_list(rhs):
                    expand(x, key, level + 1)
                return
        add(name)

    expand(recipient, None, 0)
    return out


def recipient_address(host, dest: str) -> str:
    """The address local(8) logs for an expanded destination (``user@$myorigin``)."""
    if "@" in dest or dest.startswith(("|", "/")):
        return dest
    return f"{dest}@{host.conf.get('myorigin') or host.conf['myhostname']}"


def mailbox_path(host, user: str) -> str:
    """The mailbox file local(8) appends to, as the server names it."""
    home_mailbox = host.conf.get("home_mailbox") or ""
    if home_mailbox:
        ent = host.users().get(user)
        home = ent.home if ent else f"/home/{user}"
        return home.rstrip("/") + "/" + home_mailbox
    spool = host.conf.get("mail_spool_directory") or "/var/mail"
    return spool.rstrip("/") + "/" + user


def _from_date(t: float) -> str:
    """asctime() form of ``t`` (the host runs on UTC): ``Wed Nov 25 08:56:59 2026``."""
    tm = time.gmtime(t)
    return time.strftime("%a %b ", tm) + f"{tm.tm_mday:2d}" + time.strftime(" %H:%M:%S %Y", tm)


def mbox_entry(qf: QueueFile, rcpt: str, orig_to: str, now: float) -> bytes:
    """The bytes local(8) appends to an mbox for one message (mail_copy with MAIL_COPY_MBOX)."""
    sender = qf.sender
    head = (f"From {sender or 'MAILER-DAEMON'}  {_from_date(now)}\n"
            f"Return-Path: <{sender}>\n"
            f"X-Original-To: {orig_to}\n"
            f"Delivered-To: {rcpt.lower()}\n").encode("utf-8", "surrogateescape")
    content = qf.content
    if content and not content.endswith(b"\n"):
        content += b"\n"
    lines = content.split(b"\n")
    body = b"\n".join(b">" + ln if ln.startswith(b"From ") else ln for ln in lines)
    return head + body + b"\n"


def deliver_mbox(host, qf: QueueFile, recipient: Recipient, user: str, orig_to: str) -> str:
    """Append ``qf`` to ``user``'s mailbox; returns the status text for the log.

    ``recipient`` is the queue file's recipient (its address becomes
    Delivered-To), ``orig_to`` the original recipient (X-Original-To).
    Raises :class:`DeliveryError` for a bounce (unknown user, mailbox full).
    """
    users = host.users()
    delim = host.conf.get("recipient_delimiter") or ""
    if user not in users and delim:
        # user+ext: the mailbox is user's (the extension is only logged / in Delivered-To)
        for d in delim:
            if d in user:
                user = user.split(d, 1)[0]
                break
    if user not in users:
        raise DeliveryError("5.1.1", f'unknown user: "{user}"')
    name = mailbox_path(host, user)
    path = host.path(name)
    data = mbox_entry(qf, recipient.address, orig_to, host.clock.now())
    limit = int(host.conf.get("mailbox_size_limit") or 0)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = 0
    if limit and size + len(data) > limit:
        # Postfix writes until EFBIG, then truncates the mailbox back to `size`.
        raise DeliveryError("5.2.2", f"cannot update mailbox {name} for user {user}. "
                            "error writing message: File too large")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    return "delivered to mailbox"


class DeliveryError(Exception):
    """A delivery that failed: ``dsn`` (e.g. 5.2.2) and the status text."""

    def __init__(self, dsn: str, text: str) -> None:
        super().__init__(text)
        self.dsn = dsn
        self.text = text

    @property
    def status(self) -> str:
        return "bounced" if self.dsn.startswith("5") else "deferred"


def log_delivery(host, qf: QueueFile, to: str, orig_to: str, status_text: str,
                 dsn: str = "2.0.0", status: str = "sent", *,
                 active: float | None = None, handoff: float | None = None,
                 done: float | None = None, pid: int | None = None) -> str:
    """Write local(8)'s delivery line (``relay=local``) and return it; see
    :func:`mailsim.log_adhoc.log_adhoc` for the delays."""
    return log_adhoc(host, "local", host.next_pid() if pid is None else pid, qf, to, orig_to,
                     "local", status_text, dsn, status, active=active, conn=handoff,
                     done=done)
