"""postdrop(1): the set-gid helper that puts a message into the ``maildrop`` queue.

On a Postfix host, ``sendmail`` (and ``sendmail -bs``, through smtpd) never
writes the queue itself: it pipes the message to ``postdrop``, which is
set-group-id ``postdrop`` and so may create a file in the otherwise closed
``/var/spool/postfix/maildrop``. postdrop

* refuses users that ``authorized_submit_users`` does not list
  (``postdrop: fatal: User alice(1006) is not allowed to submit mail``);
* keeps only the named attributes a user may set (rewrite context, DSN
  ENVID/RET/NOTIFY, body encoding, trace flags) and warns about others;
* writes the file under a new queue id, and when it is complete gives it the
  mode ``0744`` (owner rwx): pickup(8) ignores files not marked so, which is
  how it never reads half-written mail;
* wakes pickup(8) through the FIFO ``public/pickup``.

Here the file is a mailsim queue file (:mod:`mailsim.queue`) whose ``attrs``
also carry what Postfix learns from the file's owner: ``uid`` and ``user``.
The envelope stays as the user gave it (``root``, not yet
``root@example.com``): rewriting is cleanup(8)'s job, after pickup.

Parameters read (Postfix defaults): authorized_submit_users (static:anyone).

Not simulated: local_login_sender_maps (Postfix 3.6's check of -f senders),
the file size limit (message_size_limit) on the maildrop file, the
``-c``/``-v`` options.

Examples
--------
>>> import tempfile
>>> from mailsim.host import init_host
>>> from mailsim.queue import Recipient, read_queue_file
>>> h = init_host(tempfile.mkdtemp() + "/mx", users=["alice"])
>>> p = postdrop(h, sender="alice", recipients=[Recipient("peter", "peter")],
...              content=b"Subject: hi\\n\\nhello\\n", user="alice")
>>> p.parent.name, oct(p.stat().st_mode & 0o777)
('maildrop', '0o744')
>>> qf = read_queue_file(p)
>>> qf.sender, qf.attrs["uid"], qf.attrs["user"]
('alice', '1000', 'alice')
>>> user_allowed(h.with_settings(authorized_submit_users="root"), "authorized_submit_users", "alice")
False
"""
from __future__ import annotations

import os
from pathlib import Path

from .queue import QueueFile, Recipient, write_queue_file

__all__ = ["postdrop", "user_allowed", "new_maildrop_id", "PostdropError", "READY_MODE", "ALLOWED_ATTRS"]

#: the mode postdrop gives a complete maildrop file (MAIL_QUEUE_STAT_READY: owner rwx)
READY_MODE = 0o744

#: attributes a user may put into a maildrop file (postdrop.c's filter)
ALLOWED_ATTRS = {"rewrite_context", "full_name", "envid", "ret", "encoding", "trace_flags",
                 "verp_delimiters"}


class PostdropError(Exception):
    """postdrop refused the message (its ``fatal:`` text)."""


def _acl_items(value: str) -> list[str]:
    return [x for x in value.replace(",", " ").split() if x]


def user_allowed(host, param: str, user: str) -> bool:
    """Postfix's check_user_acl_byuid(): may ``user`` do what ``param`` guards?

    ``param`` is authorized_submit_users, authorized_mailq_users or
    authorized_flush_users: a list of login names and ``type:table`` lookups,
    each optionally negated with ``!``; the first match decides, no match
    denies. A list starting with ``static:`` allows everybody. A user missing
    from /etc/passwd is matched as ``unknown``.
    """
    acl = host.conf.get(param) or ""
    if acl.startswith("static:"):
        return True
    name = user if user in host.users() else "unknown"
    for item in _acl_items(acl):
        negate = item.startswith("!")
        pattern = item[1:] if negate else item
        if ":" in pattern and not pattern.startswith("/"):
            hit = pattern.startswith("static:") or host.open_map(pattern).lookup(name) is not None
        else:
            hit = pattern.lower() == name.lower()
        if hit:
            return not negate
    return False


def new_maildrop_id(host) -> str:
    """A queue id no file in maildrop has (Postfix names the file after its inode)."""
    while True:
        qid = host.new_queue_id()
        if not (host.spool / "maildrop" / qid).exists():
            return qid


def _filter_attrs(host, attrs: dict[str, str], uid: int) -> dict[str, str]:
    """Keep the attributes users may set; warn about the others, as postdrop does."""
    out = {}
    for name, value in attrs.items():
        if name in ALLOWED_ATTRS:
            out[name] = value
        else:
            _log(host, f"warning: uid={uid}: ignoring attribute record: {name[:200]}={value[:200]}")
    return out


def _log(host, text: str) -> None:
    host.log.write("postdrop", host.next_pid(), text)


def postdrop(host, *, sender: str, recipients: list[Recipient], content: bytes,
             user: str = "root", attrs: dict[str, str] | None = None,
             queue_id: str | None = None) -> Path:
    """Write one message into ``maildrop`` as ``user`` and return the file's path.

    ``sender`` and the recipients are as the user gave them. ``queue_id``:
    the id the caller already announced (smtpd -bs says "queued as" it);
    by default a new one. Raises :class:`PostdropError` when
    ``authorized_submit_users`` does not allow ``user``. Does not wake
    pickup: in-process the caller runs :func:`mailsim.pickup.run`.
    """
    entry = host.users().get(user)
    uid = entry.uid if entry is not None else -1
    if not user_allowed(host, "authorized_submit_users", user):
        raise PostdropError(f"User {user}({uid}) is not allowed to submit mail")
    spool = host.spool
    qid = queue_id or new_maildrop_id(host)
    kept = _filter_attrs(host, dict(attrs or {}), uid)
    kept.update(uid=str(uid), user=user)
    qf = QueueFile(qid, sender, list(recipients), host.clock.now(), content, kept)
    path = write_queue_file(spool, "maildrop", qf)
    os.chmod(path, READY_MODE)
    _wake_pickup(spool)
    return path


def _wake_pickup(spool: Path) -> None:
    """Write "W" into ``public/pickup`` if a pickup process listens (never blocks)."""
    fifo = spool / "public" / "pickup"
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        os.write(fd, b"W")
    except OSError:
        pass
    finally:
        os.close(fd)
