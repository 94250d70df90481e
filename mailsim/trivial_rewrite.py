"""trivial-rewrite(8): canonical address form and address classes.

Postfix's trivial-rewrite answers two questions for every address:

* **rewrite** (canonicalize): ``user`` -> ``user@$myorigin``
  (``append_at_myorigin``), ``user@host`` -> ``user@host.$mydomain``
  (``append_dot_mydomain``), source routes removed, a trailing dot dropped.
* **resolve**: which *address class* the domain belongs to, and so which
  transport delivers it. The classes, in Postfix's order of precedence:

  ======================  ==============================  =====================
  class                   domain is listed in             transport
  ======================  ==============================  =====================
  local                   mydestination, inet_interfaces  local_transport
                          / proxy_interfaces literals
  virtual alias (alias)   virtual_alias_domains           (error: must be
                                                          aliased)
  virtual mailbox         virtual_mailbox_domains         virtual_transport
  relay                   relay_domains                   relay_transport
  default                 anything else                   default_transport
                                                          (or relayhost)
  ======================  ==============================  =====================

Then, as resolve.c does, the next hop is settled in three steps:

1. the class's own next hop: the recipient domain (local, virtual, relay
   and default classes), replaced by ``relayhost`` for relay and default;
2. a next hop written in the class's transport parameter
   (``relay_transport = relay:[mx2.example]``, ``local_transport =
   local:$myhostname``) overrides both;
3. ``transport_maps`` (:mod:`mailsim.transport`, transport(5)) may replace
   transport and next hop -- for every class except a virtual alias domain's.
   A table that cannot be read is a resolver failure: Postfix's qmgr then
   defers the recipient (``retry`` transport, ``4.3.0 address resolver
   failure``); :attr:`Resolved.fail` says so and the answer is already that.

:attr:`Resolved.why` explains each step for learners, naming the transport
table entry that applied.

Routing operators in a local address are resolved as Postfix does:
``user%other.org@$mydestination`` (``allow_percent_hack``) and
``other.org!user@$mydestination`` (``swap_bangpath``) become
``user@other.org`` and are resolved again -- which is why they do not fool
``reject_unauth_destination``.

Parameters read: myorigin, mydomain, myhostname, mydestination, inet_interfaces,
proxy_interfaces, virtual_alias_domains, virtual_mailbox_domains, relay_domains,
relayhost, local_transport, virtual_transport, relay_transport,
default_transport, allow_percent_hack, swap_bangpath, append_at_myorigin,
append_dot_mydomain, parent_domain_matches_subdomains, show_user_unknown_table_name,
transport_maps (with recipient_delimiter, owner_request_special, double_bounce_sender).

Examples
--------
>>> from mailsim.conf import MainConfig
>>> c = MainConfig.from_text("myhostname = mail.example.com\\nmydomain = example.com\\nmyorigin = $mydomain\\n"
...     "mydestination = $myhostname, localhost, $mydomain\\nvirtual_alias_domains = sue.nl\\n")
>>> r = TrivialRewrite(c)
>>> r.resolve("peter@EXAMPLE.com").klass, r.resolve("info@sue.nl").klass
('local', 'alias')
>>> res = r.resolve("user%other.org@mail.example.com")
>>> res.klass, res.recipient
('default', 'user@other.org')
>>> r.rewrite("petra")
'petra@example.com'

With a transport table (``transport_maps``), applied after the class is decided:

>>> c2 = MainConfig.from_text("myhostname = mail.example.com\\nmydomain = example.com\\n"
...     "relayhost = [smarthost.example]\\ntransport_maps = inline:{ example.net=smtp:[127.0.0.4] }\\n")
>>> res = TrivialRewrite(c2, lookup=lambda spec, key: {"example.net": "smtp:[127.0.0.4]"}.get(key)
...                      ).resolve("jim@example.net")
>>> res.klass, res.transport, res.nexthop
('default', 'smtp', '[127.0.0.4]')
>>> print(*res.why, sep="\\n")
example.net is not a local, virtual or relay domain
default class: transport smtp (default_transport), nexthop [smarthost.example] (relayhost)
transport_maps inline:{ example.net=smtp:[127.0.0.4] }: example.net -> "smtp:[127.0.0.4]": transport smtp (unchanged), nexthop [127.0.0.4]
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable

from .domains import match_domain, parent_matches
from .maps import MapError
from .transport import TransportMatch, TransportTable

__all__ = ["TrivialRewrite", "Resolved", "split_address", "CLASSES"]

CLASSES = ("local", "alias", "virtual", "relay", "default")


def ipv4_problem(addr: str) -> str | None:
    """What valid_ipv4_hostaddr() says about a malformed dotted quad (None: well formed).

    >>> ipv4_problem("1.2.3"), ipv4_problem("::1"), ipv4_problem("1.2.3.4")
    ('invalid octet count: 1.2.3', 'invalid character 58(decimal): ::1', None)
    >>> ipv4_problem("1.2.3.256"), ipv4_problem("1..2.3"), ipv4_problem("0.1.2.3")
    ('invalid octet value: 1.2.3.256', 'misplaced dot: 1..2.3', 'bad initial octet value: 0.1.2.3')
    """
    shown = addr[:100]
    in_byte = False
    count = value = 0
    for i, ch in enumerate(addr):
        if ch.isascii() and ch.isdigit():
            if not in_byte:
                in_byte, value = True, 0
                count += 1
            value = value * 10 + int(ch)
            if value > 255:
                return f"invalid octet value: {shown}"
        elif ch == ".":
            if not in_byte or i + 1 == len(addr):
                return f"misplaced dot: {shown}"
            if count == 1 and value == 0 and addr.lstrip("0."):
                return f"bad initial octet value: {shown}"
            in_byte = False
        else:
            return f"invalid character {ord(ch.encode('utf-8', 'surrogateescape')[:1])}(decimal): {shown}"
    if count != 4:
        return f"invalid octet count: {shown}"
    return None


def split_address(addr: str) -> tuple[str, str]:
    """Split at the rightmost ``@``: ``("user", "domain")``; domain "" if none."""
    local, at, domain = addr.rpartition("@")
    if not at:
        return addr, ""
    return local, domain


@dataclass
class Resolved:
    """What trivial-rewrite answers: transport, nexthop, recipient and class."""

    address: str                  # the address asked about
    recipient: str                # the resolved recipient (routing operators undone)
    klass: str                    # local | alias | virtual | relay | default
    transport: str
    nexthop: str
    why: list[str] = field(default_factory=list)   # human-readable steps, for explanations
    routed: bool = False          # routing operators (%, !, @) were undone on the way
    error: bool = False           # not a valid address (Postfix's RESOLVE_FLAG_ERROR)
    fail: bool = False            # a table could not be read (RESOLVE_FLAG_FAIL): retry later
    transport_entry: "TransportMatch | None" = None   # the transport_maps entry that applied

    @property
    def domain(self) -> str:
        return split_address(self.recipient)[1]


class TrivialRewrite:
    """Rewriting and resolving with one host's configuration.

    ``lookup(spec, key)`` answers table entries in domain lists;
    ``own_addresses`` are the host's interface addresses (for ``user@[ip]``).
    """

    def __init__(self, conf, *, lookup: Callable[[str, str], "str | None"] | None = None,
                 own_addresses: list[str] | None = None,
                 read_file: Callable[[str], str] | None = None,
                 warn: Callable[[str], None] | None = None,
                 started: Callable[[], None] | None = None) -> None:
        self.conf = conf
        self.lookup = lookup
        self.read_file = read_file
        #: logs one of trivial-rewrite's warnings (text after "warning: ")
        self.warn = warn or (lambda text: None)
        #: called before the first request: the process starts and opens its tables
        self._started = started
        self.own = set(own_addresses or ["127.0.0.1", "::1"])
        self._dom_cache: dict[tuple[str, str], bool] = {}
        self._transport_table: TransportTable | None = None

    # -- rewrite ----------------------------------------------------------------------
    def _start(self) -> None:
        if self._started is not None:
            started, self._started = self._started, None
            started()

    def rewrite(self, addr: str) -> str:
        """Canonicalize an address in the "local" context (envelope addresses)."""
        self._start()
        c = self.conf
        if addr == "" or addr.endswith("@"):
            return addr
        a = addr
        if a.startswith("@") and ":" in a:          # source route @a,@b:user@c
            a = a.split(":", 1)[1]
        local, domain = split_address(a)
        if not domain:
            if "@" in a or (c.bool("swap_bangpath") and "!" in a) or \
                    (c.bool("allow_percent_hack") and "%" in a):
                return a
            if c.bool("append_at_myorigin"):
                return f"{a}@{c['myorigin']}"
            return a
        if domain.endswith("."):
            domain = domain.rstrip(".")
        if c.bool("append_dot_mydomain") and "." not in domain and not domain.startswith("["):
            domain = f"{domain}.{c['mydomain']}"
        return f"{local}@{domain}"

    # -- domain classes -----------------------------------------------------------------
    def in_list(self, domain: str, param: str) -> bool:
        """Is ``domain`` in the domain list ``param``? A table in the list that cannot be
        read raises MapError, after the two warnings of match_list.c (the table's own,
        then "PARAM: TYPE:NAME: table lookup problem"); no answer is remembered then."""
        key = (domain, param)
        if key not in self._dom_cache:
            try:
                found = match_domain(
                    domain, self.conf.list(param), parent_matches=parent_matches(self.conf, param),
                    lookup=self.lookup, read_file=self.read_file)
            except MapError as e:
                if e.warning:
                    self.warn(e.warning)
                self.warn(f"{param}: {e.spec}: table lookup problem")
                raise
            self._dom_cache[key] = found
        return self._dom_cache[key]

    def _class_of(self, domain: str, param: str) -> bool:
        """in_list, where a table error makes the address unresolvable (resolve.c:
        "PARAM lookup failure", then RESOLVE_FLAG_FAIL: smtpd answers 451 4.3.0)."""
        try:
            return self.in_list(domain, param)
        except MapError:
            self.warn(f"{param} lookup failure")
            raise

    def _nag_lists(self, domain: str) -> None:
        """resolve.c looks a local domain up in the virtual domain lists too, to nag about
        a domain listed twice; a table that fails there costs only its warnings."""
        if not self.conf.bool("helpful_warnings"):
            return
        for param in ("virtual_alias_domains", "virtual_mailbox_domains"):
            if self.conf.list(param):
                try:
                    self.in_list(domain, param)
                except MapError:
                    pass

    def is_local_domain(self, domain: str, *, gripe: bool = False) -> bool:
        """mydestination, or an address literal of one of our own interfaces.

        With ``gripe`` (trivial-rewrite resolving), a malformed IPv4 literal is logged
        as resolve_local.c's valid_mailhost_addr(DO_GRIPE) does."""
        d = domain.lower().rstrip(".")
        if d.startswith("[") and d.endswith("]"):
            lit = d[1:-1]
            if gripe and not lit.startswith("ipv6:"):
                problem = ipv4_problem(domain.rstrip(".")[1:-1])
                if problem:
                    self.warn(f"valid_ipv4_hostaddr: {problem}")
            if lit.startswith("ipv6:"):
                lit = lit[5:]
            try:
                return str(ipaddress.ip_address(lit)) in self.own
            except ValueError:
                return False
        return self.in_list(d, "mydestination")

    def domain_class(self, domain: str) -> str:
        d = domain.lower().rstrip(".")
        if self.is_local_domain(d):
            return "local"
        if self._class_of(d, "virtual_alias_domains"):
            return "alias"
        if self._class_of(d, "virtual_mailbox_domains"):
            return "virtual"
        if self._class_of(d, "relay_domains"):
            return "relay"
        return "default"

    # -- resolve ------------------------------------------------------------------------
    def resolve(self, addr: str) -> Resolved:
        """Resolve ``addr`` to (class, transport, nexthop, recipient), like trivial-rewrite."""
        self._start()
        c = self.conf
        why: list[str] = []
        routed = False
        a = self.rewrite(addr)
        if a != addr:
            why.append(f"rewrite: {addr or '<>'} -> {a}")
        for _ in range(10):
            if a.endswith("@") and not c.bool("resolve_null_domain"):
                return self._final(addr, a, "default", why, routed)
            local, domain = split_address(a)
            if domain:
                dom = domain.lower().rstrip(".")
                if self.is_local_domain(domain, gripe=True):
                    self._nag_lists(dom)
                    why.append(f"{dom} is local (mydestination or own address)")
                    if "@" in local or (c.bool("allow_percent_hack") and "%" in local) or \
                            (c.bool("swap_bangpath") and "!" in local):
                        a = local
                        routed = True
                        continue
                    return self._final(addr, f"{local}@{domain}", "local", why, routed)
                klass = self.domain_class(dom)
                why.append(self._class_reason(dom, klass))
                return self._final(addr, f"{local}@{domain}", klass, why, routed)
            # no domain left
            if c.bool("allow_percent_hack") and "%" in a:
                l, _, d = a.rpartition("%")
                a = f"{l}@{d}"
                why.append(f"percent hack: -> {a}")
                continue
            if c.bool("swap_bangpath") and "!" in a:
                d, _, l = a.partition("!")
                a = f"{l}@{d}"
                why.append(f"bang path: -> {a}")
                continue
            return self._final(addr, f"{a}@{c['myhostname']}" if a else a, "local", why, routed)
        return self._final(addr, a, "default", why, routed)

    @staticmethod
    def _class_reason(dom: str, klass: str) -> str:
        return {
            "alias": f"{dom} is in virtual_alias_domains",
            "virtual": f"{dom} is in virtual_mailbox_domains",
            "relay": f"{dom} is in relay_domains",
            "default": f"{dom} is not a local, virtual or relay domain",
        }.get(klass, f"{dom}: {klass}")

    #: which parameter names each class's transport (resolve.c's "blame")
    _TRANSPORT_PARAM = {"local": "local_transport", "virtual": "virtual_transport",
                        "relay": "relay_transport", "default": "default_transport"}

    @property
    def transport_table(self) -> TransportTable:
        """transport_maps of this configuration (empty when the parameter is)."""
        if self._transport_table is None:
            lookup = self.lookup or (lambda spec, key: None)
            self._transport_table = TransportTable.from_conf(self.conf, lookup)
        return self._transport_table

    def _final(self, addr: str, rcpt: str, klass: str, why: list[str], routed: bool = False) -> Resolved:
        c = self.conf
        # the next hop is the domain in lower case: qmgr names its queues so (qmgr_message.c)
        domain = split_address(rcpt)[1].lower().rstrip(".")
        error = not self.valid_domain(domain) or (
            rcpt.startswith("-") and not c.bool("allow_min_user"))
        if error:
            why.append(f"{domain or '(empty domain)'} is not a valid domain: the address is malformed")
        if klass == "alias":
            tr = "error"
            nh = "5.1.1 User unknown" + (" in virtual alias table"
                                         if c.bool("show_user_unknown_table_name") else "")
            why.append(f"alias class: transport error, \"{nh}\" (an address of a virtual alias "
                       "domain must be aliased; transport_maps is not consulted)")
            return Resolved(addr, rcpt, klass, tr, nh, why, routed, error)
        param = self._TRANSPORT_PARAM[klass]
        tr, explicit = self._transport(c[param], "")
        nh, source = domain, "the recipient domain"
        if klass in ("relay", "default") and c.get("relayhost"):
            nh, source = c["relayhost"], "relayhost"
        if explicit:
            nh, source = explicit, param
        why.append(f"{klass} class: transport {tr} ({param}), nexthop {nh} ({source})")
        res = Resolved(addr, rcpt, klass, tr, nh, why, routed, error)
        if error:
            return res
        table = self.transport_table
        if table:
            try:
                m = table.lookup(rcpt, tr, nh, domain)
            except MapError as e:
                why.append(f"transport_maps lookup failure ({e.warning or e}): the recipient "
                           "is deferred, 4.3.0 address resolver failure")
                res.fail = True
                res.transport, res.nexthop = "retry", "4.3.0 address resolver failure"
                return res
            if m is None:
                why.append(f"transport_maps ({', '.join(table.specs)}): no entry for {rcpt}")
            else:
                why.append(m.explain())
                res.transport, res.nexthop, res.transport_entry = m.transport, m.nexthop, m
        return res

    @staticmethod
    def valid_domain(domain: str) -> bool:
        """A host name or an address literal, as trivial-rewrite accepts them."""
        from .smtpd.check import valid_hostname, valid_literal
        if domain.startswith("["):
            return valid_literal(domain)
        return valid_hostname(domain)

    @staticmethod
    def _transport(value: str, default_nexthop: str) -> tuple[str, str]:
        tr, _, nh = value.partition(":")
        return tr, nh or default_nexthop
