"""trivial-rewrite's transport table: transport_maps, as transport(5) describes it.

Models ``src/trivial-rewrite/transport.c`` and the part of
``src/global/mail_addr_find.c`` it uses. After trivial-rewrite has decided a
recipient's address class and so its transport and next hop (see
:mod:`mailsim.trivial_rewrite`), the transport table may override either,
for any class but a virtual alias domain's.

The rules implemented, in transport(5)'s words where it has them:

**Search order** ("TABLE SEARCH ORDER"). For ``user+ext@sub.example.net`` the
keys are tried in this order, each key in every table of transport_maps
before the next key:

1. ``user+ext@sub.example.net`` -- the full address;
2. ``user@sub.example.net`` -- without the extension (only when
   ``recipient_delimiter`` is set and the local part has one; Postfix never
   splits ``postmaster``, ``mailer-daemon``, ``$double_bounce_sender``, nor,
   when ``-`` is a delimiter, ``owner-*`` and ``*-request``);
3. ``sub.example.net`` -- the domain;
4. ``.example.net``, ``.net`` -- "any subdomain of domain": Postfix 3.7's
   default, because ``parent_domain_matches_subdomains`` does not list
   transport_maps. When it does, the parents are tried without the dot
   (``example.net``, ``net``): "a domain name matches itself and its
   subdomains";
5. ``*`` -- "the special pattern * represents any address".

Keys 2-4 are *partial* keys: regexp, pcre and cidr tables are asked only
keys 1 and 5 (DICT_FLAG_FIXED). Fixed-string tables fold keys to lower case.
A local part that RFC 5322 must quote is asked quoted first, then as it is.

**Result format** ("RESULT FORMAT"): ``transport:nexthop``, split at the
first colon (so ``smtp:[192.0.2.1]:2525`` is transport ``smtp``, next hop
``[192.0.2.1]:2525``):

* ``transport:nexthop`` -- both replaced;
* ``transport:`` or ``transport`` -- "a non-null transport field with a null
  nexthop field resets the nexthop information to the recipient domain"
  (for ``error`` and ``retry`` the next hop, which is their text, becomes
  ``Address is undeliverable``);
* ``:nexthop`` -- "a null transport field with non-null nexthop field does
  not modify the transport information";
* ``:`` -- "do not change": what would happen without the table;
* ``error:5.1.1 text`` -- error(8) bounces with that status and text
  (``retry:4.x.x text`` defers); qmgr splits off the status code.

The next hop's syntax is the transport's (``[host]``, ``[host]:port``,
``host:service``, several separated by commas for smtp(8)); it is passed on
untouched.

Parameters read (Postfix 3.7 defaults): transport_maps (empty),
recipient_delimiter (empty; Debian's main.cf sets ``+``),
parent_domain_matches_subdomains (without transport_maps),
owner_request_special (yes), double_bounce_sender (double-bounce).

Trust: table results are the administrator's; any text is accepted as a
next hop (the delivery agent judges it). A table that cannot be read raises
:class:`mailsim.maps.MapError` (trivial-rewrite then reports a resolver
failure).

Not simulated: the 30-second cache of the ``*`` entry (tables are read
afresh at every lookup), ``unionmap``/``pipemap`` as pattern tables, and
sender_dependent_default_transport_maps / relocated_maps.

Examples
--------
>>> search_keys("jim+news@mail.example.net", delimiter="+")
['jim+news@mail.example.net', 'jim@mail.example.net', 'mail.example.net', '.example.net', '.net', '*']
>>> search_keys("jim@example.net", delimiter="+", parent_matches=True)
['jim@example.net', 'example.net', 'net', '*']
>>> table = {"example.net": "smtp:[127.0.0.4]", ".example.net": "relay:",
...          "bob@example.org": "error:5.1.1 bob has left", "*": ":[smarthost.example]"}
>>> t = TransportTable(["inline:{...}"], lambda spec, key: table.get(key), delimiter="+")
>>> m = t.lookup("jim@example.net", "smtp", "example.net"); (m.transport, m.nexthop)
('smtp', '[127.0.0.4]')
>>> m = t.lookup("jim@mx.example.net", "smtp", "mx.example.net"); (m.key, m.transport, m.nexthop)
('.example.net', 'relay', 'mx.example.net')
>>> t.lookup("bob+x@example.org", "smtp", "example.org").nexthop
'5.1.1 bob has left'
>>> m = t.lookup("ann@example.com", "local", "example.com"); (m.key, m.transport, m.nexthop)
('*', 'local', '[smarthost.example]')
>>> print(m.explain())
transport_maps inline:{...}: * -> ":[smarthost.example]": transport local (unchanged), nexthop [smarthost.example]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["TransportTable", "TransportMatch", "search_keys", "strip_extension", "update_entry",
           "PATTERN_TYPES", "WILDCARD", "UNDELIVERABLE"]

#: the wild-card key, unique to transport tables
WILDCARD = "*"
#: the next hop (text) of error/retry entries that give none
UNDELIVERABLE = "Address is undeliverable"
#: table types that match patterns: asked only full keys (the address and "*")
PATTERN_TYPES = ("regexp", "pcre", "cidr")
#: transports whose next hop is a reason text, not a destination
_TEXT_TRANSPORTS = ("error", "retry")


def strip_extension(local: str, delimiters: str, *, owner_request_special: bool = True,
                    double_bounce: str = "double-bounce") -> str | None:
    """The local part without its ``+extension`` (None when Postfix would not split it).

    Postfix's split_addr(): the first character of ``delimiters`` found splits;
    never ``postmaster``, ``mailer-daemon``, the double-bounce sender, nor a
    split that would leave an empty local part.

    >>> strip_extension("jim+news", "+"), strip_extension("jim", "+"), strip_extension("+x", "+")
    ('jim', None, None)
    >>> strip_extension("owner-list", "-"), strip_extension("list-request", "-+")
    (None, None)
    """
    if not delimiters:
        return None
    low = local.lower()
    if low in ("postmaster", "mailer-daemon", double_bounce.lower()):
        return None
    if "-" in delimiters and owner_request_special and (
            low.startswith("owner-") or (len(low) > 8 and low.endswith("-request"))):
        return None
    for i, ch in enumerate(local):
        if ch in delimiters:
            return local[:i] if i > 0 else None
    return None


def _domain_keys(domain: str, parent_matches: bool) -> list[str]:
    """The domain, then its parents: ``.parent`` forms, or bare with ``parent_matches``."""
    keys = []
    name = domain
    while name:
        keys.append(name)
        dot = name.find(".", 1)
        if dot < 0:
            break
        name = name[dot + 1:] if parent_matches else name[dot:]
    return keys


def _keys(address: str, delimiter: str, parent_matches: bool, owner_request_special: bool,
          double_bounce: str) -> list[tuple[str, bool]]:
    """(key, partial) in search order; partial keys skip pattern tables."""
    local, at, domain = address.rpartition("@")
    out: list[tuple[str, bool]] = [(address, False)]
    bare = strip_extension(local, delimiter, owner_request_special=owner_request_special,
                           double_bounce=double_bounce) if at else None
    if bare is not None:
        out.append((f"{bare}@{domain}", True))
    if at and domain:
        out += [(k, True) for k in _domain_keys(domain, parent_matches)]
    out.append((WILDCARD, False))
    return out


def search_keys(address: str, *, delimiter: str = "", parent_matches: bool = False) -> list[str]:
    """The keys transport_maps is asked for ``address``, in order (see the module docstring)."""
    return [k for k, _ in _keys(address, delimiter, parent_matches, True, "double-bounce")]


def update_entry(new_transport: str, new_nexthop: str, rcpt_domain: str, transport: str,
                 nexthop: str) -> tuple[str, str]:
    """Apply one table result (already split at its first colon) to (transport, nexthop).

    >>> update_entry("", "[gw.example]", "example.com", "smtp", "example.com")
    ('smtp', '[gw.example]')
    >>> update_entry("slow", "", "example.com", "smtp", "[relay.example]")
    ('slow', 'example.com')
    >>> update_entry("error", "", "example.com", "smtp", "example.com")
    ('error', 'Address is undeliverable')
    >>> update_entry("", "", "example.com", "relay", "[mx2.example]")
    ('relay', '[mx2.example]')
    """
    if not new_transport:                      # ":nexthop" or ":": keep the transport
        return transport, new_nexthop or nexthop
    if new_nexthop:
        return new_transport, new_nexthop
    if new_transport in _TEXT_TRANSPORTS:
        return new_transport, UNDELIVERABLE
    return new_transport, rcpt_domain


@dataclass(frozen=True)
class TransportMatch:
    """A transport table entry that applied: where it was found and what it gave."""
    table: str          # the table (``hash:/etc/postfix/transport``)
    key: str            # the key that matched (``example.net``, ``.example.net``, ``*``)
    value: str          # the entry's right-hand side, as written
    transport: str      # the transport after the entry
    nexthop: str        # the next hop after the entry
    old_transport: str  # what the address class gave
    old_nexthop: str

    def explain(self) -> str:
        """One line for a learner: which entry, and what it changed."""
        tr = self.transport + (" (unchanged)" if self.transport == self.old_transport else "")
        nh = self.nexthop + (" (unchanged)" if self.nexthop == self.old_nexthop else "")
        return (f"transport_maps {self.table}: {self.key} -> \"{self.value}\": "
                f"transport {tr}, nexthop {nh}")


def _is_pattern(spec: str) -> bool:
    typ, _, rest = spec.partition(":")
    if typ == "proxy":
        typ = rest.partition(":")[0]
    return typ in PATTERN_TYPES


class TransportTable:
    """The tables of transport_maps (``specs``), asked through ``lookup(spec, key)``,
    which answers the value or None and raises :class:`mailsim.maps.MapError` when a
    table cannot be read."""

    def __init__(self, specs: list[str], lookup: Callable[[str, str], "str | None"], *,
                 delimiter: str = "", parent_matches: bool = False,
                 owner_request_special: bool = True, double_bounce: str = "double-bounce") -> None:
        self.specs = list(specs)
        self._lookup = lookup
        self.delimiter = delimiter
        self.parent_matches = parent_matches
        self.owner_request_special = owner_request_special
        self.double_bounce = double_bounce

    @classmethod
    def from_conf(cls, conf, lookup: Callable[[str, str], "str | None"]) -> "TransportTable":
        """The table of a host's main.cf (``conf``, a :class:`mailsim.conf.MainConfig`)."""
        from .domains import parent_matches
        return cls(conf.list("transport_maps"), lookup,
                   delimiter=conf.get("recipient_delimiter") or "",
                   parent_matches=parent_matches(conf, "transport_maps"),
                   owner_request_special=conf.bool("owner_request_special"),
                   double_bounce=conf.get("double_bounce_sender") or "double-bounce")

    def __bool__(self) -> bool:
        return bool(self.specs)

    def find(self, address: str) -> tuple[str, str, str] | None:
        """The first entry for ``address``: (table, key, value), or None."""
        if not address or not self.specs:
            return None
        from .canonical import quote_local
        for key, partial in _keys(address, self.delimiter, self.parent_matches,
                                  self.owner_request_special, self.double_bounce):
            forms = [key]
            if "@" in key:                      # external (quoted) form first
                quoted = quote_local(key)
                if quoted != key:
                    forms.insert(0, quoted)
            for form in forms:
                for spec in self.specs:
                    if partial and _is_pattern(spec):
                        continue
                    value = self._lookup(spec, form)
                    if value is not None:
                        return spec, form, value
        return None

    def lookup(self, address: str, transport: str, nexthop: str,
               rcpt_domain: str | None = None) -> TransportMatch | None:
        """Apply the table to ``address`` whose class gave (``transport``, ``nexthop``);
        None when no entry matches. ``rcpt_domain`` defaults to the address's domain."""
        found = self.find(address)
        if found is None:
            return None
        spec, key, value = found
        if rcpt_domain is None:
            rcpt_domain = address.rpartition("@")[2]
        new_tr, _, new_nh = value.partition(":")
        tr, nh = update_entry(new_tr, new_nh, rcpt_domain, transport, nexthop)
        return TransportMatch(spec, key, value, tr, nh, transport, nexthop)
