"""cleanup(8)'s one-to-many mapping: virtual alias expansion and duplicate recipients.

Models Postfix's ``src/cleanup/cleanup_map1n.c`` and the recipient half of
``cleanup_out_recipient.c``. Every envelope recipient is looked up in
virtual_alias_maps (mail_addr_find's order: ``user+ext@domain``,
``user@domain``, ``user`` when the domain is local, ``@domain``); each address
of a result replaces it and is looked up again, until no table has it.

* An address that maps to itself (``a@x -> a@x, b@x``) is kept and not looked
  up again -- the usual way to deliver and copy at once.
* More than ``virtual_alias_expansion_limit`` addresses, more than
  ``virtual_alias_recursion_limit`` rounds for one address, or a result
  longer than ``virtual_alias_address_length_limit`` stop the message:
  cleanup logs ``warning: QID: unreasonable virtual_alias_maps map expansion
  size for ADDR -- message not accepted, try again later`` (nesting, result)
  and the client gets ``451 4.6.0 Alias expansion error``.
* A table that cannot be read: ``warning: QID: virtual_alias_maps map lookup
  problem for ADDR -- message not accepted, try again later``; the client gets
  ``451 4.3.0 Error: queue file write error`` (CLEANUP_STAT_WRITE).
* Duplicates are dropped (``duplicate_filter_limit`` remembered, case
  folded): with enable_original_recipient = yes two recipients are the same
  when address, original recipient and DSN attributes are the same.
* The original recipient (``Recipient.orig``) and ORCPT stay with every
  address of the expansion; local(8) logs it as ``orig_to=``. With NOTIFY
  containing SUCCESS, SUCCESS is taken off the expanded recipients (Postfix
  then sends an "expanded" success notice; that notice is not simulated).

Parameters read (Postfix defaults): virtual_alias_maps ($virtual_maps),
virtual_alias_recursion_limit (1000), virtual_alias_expansion_limit (1000),
virtual_alias_address_length_limit (1000), duplicate_filter_limit (1000),
enable_original_recipient (yes), propagate_unmatched_extensions
(canonical, virtual), recipient_delimiter.

Examples
--------
>>> import tempfile
>>> from mailsim.host import init_host
>>> h = init_host(tempfile.mkdtemp() + "/mx", hostname="mail.example.com")
>>> h = h.with_settings(virtual_alias_maps="inline:{ info@sue.nl=gerda, @unix.nl=jim, "
...                     "{team@sue.nl=team@sue.nl, bob} }")
>>> expand(h, "info@sue.nl", "Q", 1), expand(h, "x@unix.nl", "Q", 1)
(['gerda@example.com'], ['jim@example.com'])
>>> expand(h, "team@sue.nl", "Q", 1)
['team@sue.nl', 'bob@example.com']
"""
from __future__ import annotations

from .canonical import ExpansionTrouble, addr_map
from .maps import MapError
from .queue import Recipient

__all__ = ["expand", "expand_recipients", "DuplicateFilter", "TITLE"]

#: the name Postfix uses for the table list in its warnings (maps->title)
TITLE = "virtual_alias_maps"


def _warn(host, pid: int, text: str, status: str) -> ExpansionTrouble:
    host.log.write("cleanup", pid, f"warning: {text}")
    return ExpansionTrouble(text, status)


def expand(host, addr: str, queue_id: str, pid: int) -> list[str]:
    """The addresses ``addr`` expands to in virtual_alias_maps (``[addr]`` if none).

    Raises :class:`mailsim.canonical.ExpansionTrouble` (after logging
    Postfix's warning) when a limit is exceeded or a table fails.
    """
    specs = host.conf.list("virtual_alias_maps")
    if not specs:
        return [addr]
    c = host.conf
    exp_limit = c.int("virtual_alias_expansion_limit")
    rec_limit = c.int("virtual_alias_recursion_limit")
    len_limit = c.int("virtual_alias_address_length_limit")
    propagate = "virtual" in {w.lower() for w in c.list("propagate_unmatched_extensions")}
    done_self: set[str] = set()          # addresses that expanded into themselves
    out = [addr]
    i = 0
    while i < len(out):
        if len(out) > exp_limit:
            raise _warn(host, pid, f"{queue_id}: unreasonable {TITLE} map expansion size for "
                        f"{addr} -- message not accepted, try again later", "defer")
        rounds = 0
        while out[i].lower() not in done_self:
            if rounds >= rec_limit:
                raise _warn(host, pid, f"{queue_id}: unreasonable {TITLE} map nesting for "
                            f"{addr} -- message not accepted, try again later", "defer")
            try:
                result = addr_map(host, specs, out[i], propagate=propagate)
            except MapError:
                result, failed = None, True
            else:
                failed = result == []
            if failed:
                raise _warn(host, pid, f"{queue_id}: {TITLE} map lookup problem for {addr} -- "
                            "message not accepted, try again later", "write")
            if result is None:
                break
            lhs = out[i]
            for j, new in enumerate(result):
                if len(new) > len_limit:
                    raise _warn(host, pid, f"{queue_id}: unreasonable {TITLE} result "
                                f"{new[:300]}... -- message not accepted, try again later", "defer")
                if j == 0:
                    out[i] = new
                else:
                    out.append(new)
                if new.lower() == lhs.lower():
                    done_self.add(lhs.lower())
            rounds += 1
        i += 1
    return out


class DuplicateFilter:
    """cleanup's been_here table: remembers up to duplicate_filter_limit keys (case folded).

    >>> d = DuplicateFilter(2)
    >>> d.seen("a"), d.seen("A"), d.seen("b"), d.seen("c"), d.seen("c")
    (False, True, False, False, False)
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.keys: set[str] = set()

    def seen(self, key: str) -> bool:
        k = key.lower()
        if k in self.keys:
            return True
        if self.limit <= 0 or len(self.keys) < self.limit:
            self.keys.add(k)
        return False


def _notify_after_expansion(notify: str) -> str:
    """NOTIFY minus SUCCESS (NEVER if SUCCESS was all) for the addresses of an expansion."""
    words = [w for w in notify.split(",") if w]
    if "SUCCESS" not in [w.upper() for w in words]:
        return notify
    rest = [w for w in words if w.upper() != "SUCCESS"]
    return ",".join(rest) if rest else "NEVER"


def expand_recipients(host, recipients: list[Recipient], queue_id: str, pid: int,
                      *, use_maps: bool = True) -> list[Recipient]:
    """Expand every recipient and drop duplicates, in order (cleanup_out_recipient).

    ``Recipient.address`` must already be canonical (rewritten, canonical
    maps applied). ``use_maps`` False: duplicates are still dropped.
    """
    dups = DuplicateFilter(host.conf.int("duplicate_filter_limit"))
    with_orig = host.conf.bool("enable_original_recipient")
    out: list[Recipient] = []
    for r in recipients:
        notify = r.notify
        addrs = [r.address]
        if use_maps and host.conf.list("virtual_alias_maps"):
            addrs = expand(host, r.address, queue_id, pid)
            if len(addrs) > 1 or addrs[0] != r.address:
                notify = _notify_after_expansion(notify)
        for a in addrs:
            key = f"{r.orcpt}\n{notify}\n{r.orig}\n{a}" if with_orig else a
            if not dups.seen(key):
                out.append(Recipient(a, r.orig, notify, r.orcpt))
    return out
