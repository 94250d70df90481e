"""mail_addr_find: the order in which Postfix looks an address up in a table.

Models ``src/global/mail_addr_find.c`` as used for virtual_alias_maps,
virtual_mailbox_maps, relay_recipient_maps, canonical maps and (with the
local part only) local_recipient_maps:

1. ``user+ext@domain``, then ``user@domain`` (``recipient_delimiter``)
2. ``user+ext``, ``user`` -- only when the domain is local (mydestination,
   own address literals) or the table is local_recipient_maps/alias_maps
3. ``@domain`` -- the catch-all

Keys are folded to lower case (hash tables are built that way). A table that
cannot be read raises :class:`mailsim.maps.MapError`, which the caller turns
into Postfix's "Temporary lookup failure".

Examples
--------
>>> search_keys("Info+x@Sue.NL", delimiter="+", local=False)
['info+x@sue.nl', 'info@sue.nl', '@sue.nl']
>>> search_keys("peter@example.com", delimiter="", local=True)
['peter@example.com', 'peter', '@example.com']
"""
from __future__ import annotations

from .trivial_rewrite import split_address

__all__ = ["search_keys", "localpart_keys"]


def _strip_ext(local: str, delimiter: str) -> str:
    for ch in delimiter:
        if ch in local:
            return local.split(ch, 1)[0]
    return local


def search_keys(addr: str, *, delimiter: str, local: bool, catchall: bool = True) -> list[str]:
    """The keys Postfix tries for ``addr``, in order."""
    a = addr.lower()
    user, domain = split_address(a)
    base = _strip_ext(user, delimiter) if delimiter else user
    keys = [a]
    if base != user:
        keys.append(f"{base}@{domain}" if domain else base)
    if domain and local:
        keys.append(user)
        if base != user:
            keys.append(base)
    if domain and catchall:
        keys.append(f"@{domain}")
    out: list[str] = []
    for k in keys:
        if k not in out:
            out.append(k)
    return out


def localpart_keys(addr: str, *, delimiter: str) -> list[str]:
    """Keys for tables indexed by user name (local_recipient_maps, alias_maps)."""
    user = split_address(addr.lower())[0]
    base = _strip_ext(user, delimiter) if delimiter else user
    return [user] if base == user else [user, base]
