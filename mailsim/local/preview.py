"""Helpers that show parts of local(8) on their own (notebooks, explanations).

:func:`expand_aliases` lists what ``alias_maps`` turns an address into,
without delivering anything: a preview for learners. It follows aliases,
``:include:`` files and self-references, but not ``.forward`` files, and it
does not decide what is forwarded -- :func:`mailsim.local.deliver_local`
does the real thing. :func:`deliver_mbox` appends one message to one user's
mailbox and raises :class:`DeliveryError` instead of logging.

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
"""
from __future__ import annotations

from typing import NamedTuple

from ..log_adhoc import log_adhoc
from ..queue import QueueFile, Recipient
from .mailbox import MBOX, CopyError, mail_copy, open_mbox, write_all
from .recipient import parse_tokens

__all__ = ["Expansion", "expand_aliases", "deliver_mbox", "DeliveryError", "log_delivery",
           "mailbox_path", "recipient_address", "mbox_entry", "FILE", "COMMAND", "FORWARD"]

#: markers for destinations that are not a local user's mailbox
FILE = "file"
COMMAND = "command"
FORWARD = "forward"

MAX_LEVEL = 100


class Expansion(NamedTuple):
    """One result of alias expansion: ``dest`` and the original recipient.

    ``dest`` is a local user name (``"peter"``), a file (``"/var/log/x"``), a
    command (``"|/usr/bin/procmail"``) or, for a member in another domain, the
    full address (``"bob@example.org"``). :attr:`kind` tells which.
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


def _local_part(host, addr: str) -> str | None:
    """The local part of ``addr`` if it is in a local domain (or has none)."""
    local, at, domain = addr.rpartition("@")
    if not at:
        return addr
    return local if host.trivial_rewrite().is_local_domain(domain.lower().rstrip(".")) else None


def _lookup_alias(host, name: str) -> str | None:
    for spec in host.conf.list("alias_maps"):
        r = host.open_map(spec).lookup(name)
        if r is not None:
            return r
    return None


def expand_aliases(host, recipient: str) -> list[Expansion]:
    """Expand ``recipient`` through ``alias_maps`` (a preview; see the module docstring).

    Returns (destination, original recipient) pairs in order, without
    duplicates. A recipient with no alias comes back as its own user name
    (whether or not that user exists).
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
        if not m:
            return
        if m.startswith(("|", "/")):
            add(m)
            return
        if m.lower().startswith(":include:"):
            try:
                text = host.path(m[len(":include:"):].strip()).read_text()
            except OSError:
                return
            for line in text.splitlines():
                if not line.startswith("#"):
                    for x in parse_tokens(line):
                        expand(x, parent, level + 1)
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
                for x in parse_tokens(rhs):
                    expand(x, key, level + 1)
                return
        add(name)

    expand(recipient, None, 0)
    return out


def recipient_address(host, dest: str) -> str:
    """The address local(8) logs for an expanded destination (``user@$myorigin``)."""
    if "@" in dest or dest.startswith(("|", "/")):
        return dest
    return f"{dest}@{host.conf['myorigin']}"


def mailbox_path(host, user: str) -> str:
    """The mailbox file local(8) appends to, as the server names it."""
    home_mailbox = host.conf.get("home_mailbox") or ""
    if home_mailbox:
        ent = host.users().get(user)
        home = ent.home if ent else f"/home/{user}"
        return home.rstrip("/") + "/" + home_mailbox
    return host.conf["mail_spool_directory"].rstrip("/") + "/" + user


def mbox_entry(qf: QueueFile, rcpt: str, orig_to: str, now: float) -> bytes:
    """The bytes local(8) appends to an mbox for one message."""
    return mail_copy(qf, orig_to, rcpt, MBOX, now)


class DeliveryError(Exception):
    """A delivery that failed: ``dsn`` (e.g. 5.2.2) and the status text."""

    def __init__(self, dsn: str, text: str) -> None:
        super().__init__(text)
        self.dsn = dsn
        self.text = text

    @property
    def status(self) -> str:
        return "bounced" if self.dsn.startswith("5") else "deferred"


def deliver_mbox(host, qf: QueueFile, recipient: Recipient, user: str, orig_to: str) -> str:
    """Append ``qf`` to ``user``'s mailbox; returns the status text for the log.

    ``recipient`` is the queue file's recipient (its address becomes
    Delivered-To), ``orig_to`` the original recipient (X-Original-To).
    Raises :class:`DeliveryError` for a bounce or deferral (unknown user,
    mailbox full, mailbox not writable).
    """
    users = host.users()
    delim = host.conf.get("recipient_delimiter") or ""
    if user not in users:
        for d in delim:                  # user+ext: the mailbox is user's
            if d in user:
                user = user.split(d, 1)[0]
                break
    if user not in users:
        raise DeliveryError("5.1.1", f'unknown user: "{user}"')
    name = mailbox_path(host, user)
    data = mail_copy(qf, orig_to, recipient.address, MBOX, host.clock.now())
    try:
        with open_mbox(host, name, lock_may_fail=False, warn=lambda text: None) as (fd, st):
            write_all(fd, data, host.conf.int("mailbox_size_limit"), True)
    except CopyError as e:
        raise DeliveryError(e.dsn, f"cannot update mailbox {name} for user {user}. {e.reason}") \
            from None
    return "delivered to mailbox"


def log_delivery(host, qf: QueueFile, to: str, orig_to: str, status_text: str,
                 dsn: str = "2.0.0", status: str = "sent", *,
                 active: float | None = None, handoff: float | None = None,
                 done: float | None = None, pid: int | None = None) -> str:
    """Write local(8)'s delivery line (``relay=local``) and return it; see
    :func:`mailsim.log_adhoc.log_adhoc` for the delays."""
    return log_adhoc(host, "local", host.next_pid() if pid is None else pid, qf, to, orig_to,
                     "local", status_text, dsn, status, active=active, conn=handoff,
                     done=done)
