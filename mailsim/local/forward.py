"""Forwarding: local(8) resubmits mail for other addresses as new messages.

Models ``src/local/forward.c`` and ``indirect.c``. Addresses that local(8)
does not deliver itself -- an alias member or ``.forward`` line in another
domain, a local user named in someone's ``.forward``, every member of an
alias that has an ``owner-`` alias, every address in an ``:include:``
file -- are collected while one queue-file recipient is expanded. When the
expansion is over, and nothing in it was deferred, each group of addresses
with the same Delivered-To address and envelope sender becomes one new
message, posted through cleanup(8) (:func:`mailsim.cleanup.submit`), and
local(8) logs, for the recipient it was given::

    QID: to=<peter@example.com>, relay=local, ..., dsn=2.0.0, status=sent (forwarded as NEWQID)

The new message is the old one with two headers on top::

    Received: by mail.example.com (Postfix)
    \tid NEWQID; Wed, 25 Nov 2026 12:43:15 +0000 (UTC)
    Delivered-To: jim@example.com

``Delivered-To:`` (when ``prepend_delivered_header`` has ``forward``) is
the address that was being delivered, lower case; it is what stops mail
loops (see :mod:`mailsim.local.recipient`). The envelope sender stays the
original one unless an ``owner-NAME`` alias exists: then it is
``owner-NAME@$myorigin`` (``expand_owner_alias = yes``: the owner alias'
value), and the original recipient and DSN ORCPT are not passed on.
Otherwise each forwarded recipient keeps its original recipient
(``orig_to=``).

If some part of the expansion was deferred, nothing is forwarded: the
whole recipient is tried again later.

Not simulated: when cleanup refuses the forwarded copy, Postfix's cleanup
bounces it to the sender itself; mailsim bounces (or defers) the
recipient with cleanup's reply instead.
"""
from __future__ import annotations

from ..queue import Recipient
from .state import Attr, Run, fail, sent

__all__ = ["forward_append", "forward_finish", "forwarded_content"]

#: message attributes that travel with a forwarded copy (forward_open's PASS_ATTR)
_PASSED = ("client_name", "client_address", "helo_name", "protocol", "rewrite_context")


def forward_append(run: Run, a: Attr) -> int:
    """Remember ``a.rcpt`` for the copy of (Delivered-To, sender) ``a`` belongs to."""
    key = (a.delivered or a.rcpt.address, a.sender)
    run.forwards.setdefault(key, []).append(
        Recipient(a.rcpt.address, a.rcpt.orig, a.rcpt.notify, a.rcpt.orcpt))
    return 0


def forwarded_content(host, qf_content: bytes, delivered: str) -> bytes:
    """The message as forwarded: Delivered-To: (if configured), then the original."""
    if "forward" in host.conf.list("prepend_delivered_header"):
        head = f"Delivered-To: {delivered.lower()}\n"
        return head.encode("utf-8", "surrogateescape") + qf_content
    return qf_content


def received_by(host, queue_id: str, when: float) -> str:
    """The Received: header of a forwarded copy (no "from" part: it is local)."""
    from ..cleanup import rfc2822_date
    return (f"Received: by {host.conf['myhostname']} ({host.conf['mail_name']})\n"
            f"\tid {queue_id}; {rfc2822_date(when)}")


def _attrs(run: Run) -> dict[str, str]:
    """Client attributes and the message's DSN RET/ENVID (forward_open sends the
    delivery request's, also for mailing lists)."""
    qa = run.qf.attrs
    return {k: qa[k] for k in _PASSED + ("ret", "envid") if qa.get(k)}


def forward_finish(run: Run, top: Attr, cancel: int) -> int:
    """Post the collected copies (unless ``cancel``) and log ``forwarded as``."""
    if cancel:
        run.forwards.clear()
        return cancel
    from ..cleanup import CleanupError, submit
    host = run.host
    status = 0
    for (delivered, sender), rcpts in run.forwards.items():
        f = host.new_queue_file()
        when = host.clock.now()
        try:
            qf = submit(host, sender=sender, recipients=rcpts, origin="local",
                        content=forwarded_content(host, run.qf.content, delivered),
                        received=received_by(host, f.queue_id, when),
                        attrs=_attrs(run), file=f)
        except CleanupError as e:
            status |= fail(run, top, e.dsn, e.text)
            continue
        run.outcome.forwarded.append(qf.queue_id)
        sent(run, top, f"forwarded as {qf.queue_id}", record=False)
    run.forwards.clear()
    return status
