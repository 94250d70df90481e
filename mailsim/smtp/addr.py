"""smtp(8)'s next-hop parsing and server address lookup (Postfix's smtp_addr.c
and the destination parsing of smtp_connect.c).

A next hop comes from trivial-rewrite (or the transport table) as
``[127.0.0.1]:2526``, ``[mx.example.net]``, ``mx.example.net:587`` or
``example.net``; several may be listed, separated by commas or spaces.
Brackets mean "this host, no MX lookup"; without brackets, and with DNS
lookups enabled, Postfix looks up the MX records of the domain.

Two worlds, chosen by ``host.dns``:

**A lab's virtual DNS** (``host.dns`` is a :class:`mailsim.dns.DNS`): the
lookups of Postfix's smtp_domain_addr() and smtp_host_addr(), in Postfix's
order, so the DNS query log matches the recordings'
(tests/golden/postfix-3.7-multi/):

* ``[host]`` (or DNS support disabled): the host's address records only.
* ``domain``: its MX records, sorted by preference (equal preferences keep
  the answer's order); then the address records of *every* MX host, in that
  order, before any connection. An MX host whose lookup fails is skipped;
  the others are used.
* No MX records (NODATA or NXDOMAIN): the domain's own address records --
  so a domain that does not exist bounces with the text of the *A* lookup:
  ``Host or domain name not found. Name service error for name=D type=A:
  Host not found`` (5.4.4).
* MX lookup SERVFAIL: ``... name=D type=MX: Host not found, try again``
  (4.4.3, deferred; ``ignore_mx_lookup_error = yes`` tries the A records).
* Null MX (``MX 0 .``, RFC 7505): ``Domain D does not accept mail (nullMX)`` (5.1.0).
* No MX host has an address: the last lookup's text and status (NXDOMAIN:
  5.4.4), and smtp(8)'s ``warning: no MX host for D has a valid address record``
  (``smtp_defer_if_no_mx_address_found = yes`` makes it 4.x.x).
* This host among the MX hosts (its address in inet_interfaces or
  proxy_interfaces; port 25 only): the list is cut before its own preference
  (a backup MX sends only to better MX hosts); nothing left: ``mail for D
  loops back to myself`` (5.4.6), or ``unable to find primary relay for D``
  (4.4.4) when better MX hosts exist but have no address.
* Addresses of equal preference are shuffled with the host's seeded random
  generator (``smtp_randomize_addresses``), then sorted by preference
  (``smtp_address_preference``) and balanced between IPv4 and IPv6
  (``smtp_balance_inet_protocols``); ``smtp_mx_address_limit`` cuts the list.

**No DNS** (``host.dns is None``): a name is looked up in the host's
``etc/hosts`` only -- what Postfix does with ``smtp_dns_support_level =
disabled`` and ``smtp_host_lookup = native`` -- and a domain stands for a
host of that name (no MX records). A name that etc/hosts does not know is
treated as on a machine whose DNS server does not answer: the mail is
deferred with the reason Postfix gives for the lookup method main.cf
selects (recorded in tests/golden/smtp-client/):

* native: ``unable to look up host NAME: Temporary failure in name resolution`` (4.4.4)
* dns: ``Host or domain name not found. Name service error for name=NAME
  type=MX: Host not found, try again`` (4.4.3; ``type=A`` for ``[NAME]``)

:func:`lookup_failure` also knows the texts for a DNS that says the name does
not exist (NXDOMAIN: 5.4.4, the mail bounces).

:func:`resolve` is the replaceable step: :class:`mailsim.smtp.SMTPClient`
takes any function ``(host, NextHop) -> list[ServerAddress]`` that raises
:class:`LookupFailure`. With the virtual DNS it returns a
:class:`ServerList`, which also carries the warnings smtp(8) logs and
whether this host is an MX host of the destination (then Postfix tries no
further next hop); a :class:`LookupFailure` carries them too.

Parameters read (Postfix defaults): ``smtp_tcp_port`` (smtp = 25),
``smtp_dns_support_level`` (empty: enabled), ``smtp_host_lookup`` (dns),
``inet_protocols`` (all; Debian ipv4 after install), ``smtp_mx_address_limit`` (5),
``inet_interfaces`` and ``proxy_interfaces`` (through ``host.own_addresses()``),
``smtp_randomize_addresses`` (yes), ``smtp_address_preference`` (any),
``smtp_balance_inet_protocols`` (yes), ``ignore_mx_lookup_error`` (no),
``smtp_defer_if_no_mx_address_found`` (no), ``smtp_cname_overrides_servername`` (no).

Not simulated: DNSSEC and DANE (``smtp_dns_support_level = dnssec`` acts as
enabled), the DNS reply filter, IDNA names, ``smtp_mx_session_limit`` and
``best_mx_transport`` (smtp_connect.c's business), ``fallback_relay``.

Examples
--------
>>> parse_nexthop("[127.0.0.1]:2526")
NextHop(text='[127.0.0.1]:2526', host='127.0.0.1', port=2526, bracketed=True)
>>> parse_nexthop("example.net").port, parse_nexthop("mx.example.net:submission").port
(25, 587)
>>> split_nexthops("[a.example], [b.example]:2525")
['[a.example]', '[b.example]:2525']

With a virtual DNS:

>>> import tempfile
>>> from mailsim.host import init_host
>>> from mailsim.dns import DNS
>>> h = init_host(tempfile.mkdtemp() + "/mail", hostname="mail.example.com")
>>> h.dns = DNS.from_text('''example.org.     300 MX 10 mx1.example.org.
... example.org.     300 MX 20 mx2.example.net.
... mx1.example.org. 300 A 127.0.0.3
... mx2.example.net. 300 A 127.0.0.4
... nullmx.example.  300 MX 0 .''')
>>> [f"{a.name}[{a.addr}]" for a in resolve(h, parse_nexthop("example.org"))]
['mx1.example.org[127.0.0.3]', 'mx2.example.net[127.0.0.4]']
>>> print(*h.dns.queries, sep="\\n")
example.org MX -> NOERROR ans=2
mx1.example.org A -> NOERROR ans=1
mx2.example.net A -> NOERROR ans=1
>>> try:
...     resolve(h, parse_nexthop("nullmx.example"))
... except LookupFailure as e:
...     print(e.dsn, e.reason)
5.1.0 Domain nullmx.example does not accept mail (nullMX)
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Callable, Sequence

__all__ = ["NextHop", "ServerAddress", "ServerList", "LookupFailure", "parse_nexthop",
           "split_nexthops", "resolve", "dns_resolve", "lookup_failure", "hosts_file_addresses",
           "Resolver", "SERVICES", "TRY_AGAIN", "NOT_FOUND"]

#: the TCP service names Postfix accepts without /etc/services (filter_known_tcp_port)
SERVICES = {"smtp": 25, "submission": 587, "smtps": 465, "submissions": 465, "lmtp": 24}


@dataclass(frozen=True)
class NextHop:
    """One parsed destination: ``host`` without brackets, the TCP ``port``."""
    text: str
    host: str
    port: int
    bracketed: bool


@dataclass(frozen=True)
class ServerAddress:
    """One server to try: the name Postfix logs and its address (``name[addr]``)."""
    name: str
    addr: str
    pref: int = 0


class ServerList(list):
    """The servers of a next hop (``list[ServerAddress]``), with what else smtp(8)
    learned while finding them: ``warnings`` to log (without ``warning:``), and
    ``i_am_mx`` -- this host is an MX host of the destination, so Postfix tries
    no further next hop (no fall-back relay)."""

    def __init__(self, servers: Sequence[ServerAddress] = (), *, warnings: Sequence[str] = (),
                 i_am_mx: bool = False) -> None:
        super().__init__(servers)
        self.warnings = list(warnings)
        self.i_am_mx = i_am_mx


class LookupFailure(Exception):
    """No server address: ``dsn`` (4.x.x or 5.x.x) and the reason Postfix logs;
    ``warnings`` and ``i_am_mx`` as in :class:`ServerList`."""

    def __init__(self, dsn: str, reason: str, *, warnings: Sequence[str] = (),
                 i_am_mx: bool = False) -> None:
        super().__init__(reason)
        self.dsn = dsn
        self.reason = reason
        self.warnings = list(warnings)
        self.i_am_mx = i_am_mx


#: the replaceable lookup step: (host, next hop) -> addresses, or LookupFailure
Resolver = Callable[[object, NextHop], "list[ServerAddress]"]


def split_nexthops(nexthop: str) -> list[str]:
    """A next-hop list split on commas and white space, as smtp_connect does."""
    return nexthop.replace(",", " ").split()


def _port(service: str, text: str) -> int:
    if service.isdigit():
        port = int(service)
        if not 0 < port < 65536:
            raise ValueError(f"bad network port: {service} for destination: {text}")
        return port
    try:
        return SERVICES[service.lower()]
    except KeyError:
        raise ValueError(f"unknown service: {service}/tcp") from None


def parse_nexthop(text: str, default_service: str = "smtp") -> NextHop:
    """``[host]:port``, ``[host]``, ``host:port`` or ``host`` (Postfix's host_port()).

    A malformed next hop raises ValueError with Postfix's fatal error text.
    """
    if text.startswith("["):
        inside, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"missing \"]\" in server description: {text}")
        host = inside[5:] if inside.lower().startswith("ipv6:") else inside
        return NextHop(text, host, _port(rest[1:] or default_service, text), True)
    host, sep, service = text.rpartition(":")
    if not sep or ":" in host:          # no port, or a bare IPv6 address
        return NextHop(text, text, _port(default_service, text), False)
    return NextHop(text, host, _port(service or default_service, text), False)


def _families(conf) -> tuple[int, ...]:
    protos = {p.lower() for p in conf.list("inet_protocols")}
    if "all" in protos:
        return (4, 6)
    return tuple(v for v, name in ((4, "ipv4"), (6, "ipv6")) if name in protos) or (4,)


def hosts_file_addresses(host, name: str) -> list[str]:
    """Addresses of ``name`` in the host's etc/hosts, in file order (native lookup)."""
    want = name.lower().rstrip(".")
    fams = _families(host.conf)
    out: list[str] = []
    for addr, names in host.etc_hosts():
        if want in (n.lower() for n in names):
            try:
                if ipaddress.ip_address(addr).version in fams and addr not in out:
                    out.append(addr)
            except ValueError:
                continue
    return out


def _dns_enabled(conf) -> bool:
    """smtp_dns_support_level is not ``disabled``: MX lookups for unbracketed next hops."""
    return (conf.get("smtp_dns_support_level") or "").lower() != "disabled"


def _lookup_methods(conf) -> set[str]:
    """smtp_host_lookup, forced to native when smtp_dns_support_level = disabled."""
    if not _dns_enabled(conf):
        return {"native"}
    return {m.lower() for m in conf.list("smtp_host_lookup")} or {"dns"}


#: what the name service says about a name etc/hosts does not know
TRY_AGAIN = "try-again"      # no DNS server answers (a machine without DNS): defer
NOT_FOUND = "not-found"      # the DNS says the name does not exist (NXDOMAIN)


def lookup_failure(host, name: str, *, mx: bool = False, answer: str = TRY_AGAIN) -> LookupFailure:
    """Postfix's status and reason when ``name`` has no address (smtp_addr.c).

    ``mx``: the name is a domain whose MX records were asked for (no
    brackets, DNS enabled). ``answer``: :data:`TRY_AGAIN` or :data:`NOT_FOUND`.
    All eight texts are recorded in tests/golden/smtp-client/*-not-found* and
    *-dns-down*.
    """
    methods = _lookup_methods(host.conf)
    rtype = "AAAA" if _families(host.conf) == (6,) else "A"

    def dns_text(t: str, what: str) -> str:
        return f"Host or domain name not found. Name service error for name={name} type={t}: {what}"

    if answer == TRY_AGAIN:
        if mx:
            return LookupFailure("4.4.3", dns_text("MX", "Host not found, try again"))
        if "dns" in methods:
            return LookupFailure("4.4.3", dns_text(rtype, "Host not found, try again"))
        return LookupFailure("4.4.4", f"unable to look up host {name}: "
                                      "Temporary failure in name resolution")
    if "native" in methods:
        return LookupFailure("5.4.4", f"unable to look up host {name}: Name or service not known")
    return LookupFailure("5.4.4", dns_text(rtype, "Host not found"))


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def resolve(host, hop: NextHop, *, unknown: str = TRY_AGAIN) -> list[ServerAddress]:
    """The servers for ``hop``: through ``host.dns`` when the host has one
    (:func:`dns_resolve`), else an address literal as is, a name from etc/hosts.

    Without DNS, a name etc/hosts does not know gets the answer ``unknown``: by
    default "try again", as on a machine whose DNS server does not answer, so
    the mail waits in the deferred queue. With port 25 an address of this host
    itself is a mail loop (``mail for NAME loops back to myself``, 5.4.6).
    """
    if getattr(host, "dns", None) is not None:
        return dns_resolve(host, hop)
    if _is_address(hop.host):
        out = [ServerAddress(hop.host, hop.host)]
    else:
        addrs = hosts_file_addresses(host, hop.host)
        if not addrs:
            mx = not hop.bracketed and _dns_enabled(host.conf)
            raise lookup_failure(host, hop.host, mx=mx, answer=unknown)
        out = [ServerAddress(hop.host, a) for a in addrs]
    if hop.port == 25 and set(host.own_addresses()) & {a.addr for a in out}:
        raise LookupFailure("5.4.6", f"mail for {hop.host} loops back to myself")
    limit = host.conf.int("smtp_mx_address_limit")
    return out[:limit] if limit > 0 else out


# -- through the virtual DNS (smtp_addr.c) ------------------------------------------------------

class _Why:
    """The lookup part of Postfix's DSN buffer: a status and the latest failure text."""

    def __init__(self) -> None:
        self.dsn = ""
        self.reason = ""

    @property
    def soft(self) -> bool:
        return self.dsn.startswith("4")

    def set(self, dsn: str, reason: str | None = None) -> None:
        self.dsn = dsn
        if reason is not None:
            self.reason = reason

    def reset(self) -> None:
        self.dsn = self.reason = ""


def _address_types(conf) -> list[str]:
    """The address record types inet_protocols asks for, in Postfix's order."""
    return ["A" if v == 4 else "AAAA" for v in _families(conf)]


def _server_name(conf, asked: str, rr) -> str:
    """The name logged for an address (SMTP_HNAME): the name asked, or with
    smtp_cname_overrides_servername the name the record was found under."""
    if conf.bool("smtp_cname_overrides_servername"):
        return rr.name.rstrip(".")
    return asked


def _addr_one(host, name: str, pref: int, why: _Why) -> list[ServerAddress]:
    """The addresses of one host name (smtp_addr_one): a literal, DNS, native."""
    from ..dns import EAI, AddrInfoError, DNSStatus, dns_lookup_v, getaddrinfo
    conf = host.conf
    fams = _families(conf)
    if _is_address(name) and ipaddress.ip_address(name).version in fams:
        return [ServerAddress(name, str(ipaddress.ip_address(name)), pref)]
    methods = _lookup_methods(conf)
    if "dns" in methods:
        r = dns_lookup_v(host.dns, name, _address_types(conf))
        if r.status == DNSStatus.OK:
            return [ServerAddress(_server_name(conf, name, rr), rr.address, pref) for rr in r.records]
        why.reason = r.why
        if r.status == DNSStatus.FAIL:
            why.set("4.4.3" if why.soft else "5.4.3")
        elif r.status == DNSStatus.INVAL:
            why.set("4.4.4" if why.soft else "5.4.4")
        elif r.status == DNSStatus.POLICY:
            why.set("4.7.0")
        elif r.status == DNSStatus.NOTFOUND:
            why.set("4.4.4" if why.soft else "5.4.4")
        else:
            why.set("4.4.3")
        if r.status != DNSStatus.NOTFOUND:
            return []
    if "native" in methods:
        family = fams[0] if len(fams) == 1 else None
        try:
            addrs = getaddrinfo(name, family, hosts=host.etc_hosts(), dns=host.dns)
        except AddrInfoError as e:
            nohost = e.eai in (EAI.AGAIN, EAI.NODATA, EAI.NONAME)
            soft = why.soft or e.eai.temporary
            why.set(("4.4.4" if nohost else "4.3.0") if soft else ("5.4.4" if nohost else "5.3.0"),
                    f"unable to look up host {name}: {e.eai.text}")
            return []
        found = [a for a in addrs if ipaddress.ip_address(a).version in fams]
        if not found:
            why.set("4.4.4" if why.soft else "5.4.4", f"{name}: host not found")
        return [ServerAddress(name, a, pref) for a in found]
    return []


def _find_self(host, addrs: list[ServerAddress]) -> ServerAddress | None:
    """The first address in the list where this host listens (smtp_find_self)."""
    mine = set()
    for a in host.own_addresses():
        try:
            mine.add(ipaddress.ip_address(a))
        except ValueError:
            continue
    for a in addrs:
        if ipaddress.ip_address(a.addr) in mine:
            return a
    return None


def _family_rank(conf, addr: ServerAddress) -> int:
    pref = (conf.get("smtp_address_preference") or "any").lower()
    v = ipaddress.ip_address(addr.addr).version
    if pref == "ipv4":
        return 0 if v == 4 else 1
    if pref == "ipv6":
        return 0 if v == 6 else 1
    return 0


def _shuffle_equal(host, addrs: list[ServerAddress]) -> list[ServerAddress]:
    """Postfix shuffles the list, then sorts it by preference: addresses of equal
    preference end up in random order. The same, drawing from the host's seeded
    generator only for groups of two or more."""
    out: list[ServerAddress] = []
    for pref in sorted({a.pref for a in addrs}):
        group = [a for a in addrs if a.pref == pref]
        if len(group) > 1:
            host.rng.shuffle(group)
        out += group
    return out


def _balance(conf, addrs: list[ServerAddress]) -> list[ServerAddress]:
    """smtp_balance_inet_proto: keep both IPv4 and IPv6 within smtp_mx_address_limit."""
    limit = conf.int("smtp_mx_address_limit")
    v4 = sum(1 for a in addrs if ipaddress.ip_address(a.addr).version == 4)
    v6 = len(addrs) - v4
    if limit <= 0 or not conf.bool("smtp_balance_inet_protocols") or not (v4 and v6) \
            or v4 + v6 <= limit:
        return addrs
    if v6 <= limit // 2:
        want = {6: v6, 4: limit - v6}
    elif v4 <= limit // 2:
        want = {4: v4, 6: limit - v4}
    else:
        first_v4 = ipaddress.ip_address(addrs[0].addr).version == 4
        want = {4: (limit + first_v4) // 2}
        want[6] = limit - want[4]
    out = []
    for a in addrs:
        v = ipaddress.ip_address(a.addr).version
        if want[v] > 0:
            out.append(a)
            want[v] -= 1
    return out


def _order(host, addrs: list[ServerAddress], *, sort: bool = True) -> list[ServerAddress]:
    """Shuffle, sort and balance a list of two or more addresses."""
    conf = host.conf
    if len(addrs) < 2:
        return addrs
    if conf.bool("smtp_randomize_addresses"):
        if sort:
            addrs = _shuffle_equal(host, addrs)
        else:
            addrs = list(addrs)
            host.rng.shuffle(addrs)
    if sort:
        addrs = sorted(addrs, key=lambda a: (a.pref, _family_rank(conf, a)))
    return _balance(conf, addrs)


def _host_addr(host, name: str, loop_detect: bool, why: _Why) -> list[ServerAddress]:
    """A host's own addresses, no MX lookup (smtp_host_addr)."""
    why.reset()
    addrs = _addr_one(host, name, 0, why)
    if addrs and loop_detect and _find_self(host, addrs) is not None:
        why.set("5.4.6", f"mail for {name} loops back to myself")
        return []
    # Postfix sorts a host's addresses only when both protocols are on
    return _order(host, addrs, sort=len(_families(host.conf)) > 1)


def _domain_addr(host, name: str, loop_detect: bool, why: _Why,
                 warnings: list[str]) -> tuple[list[ServerAddress], bool]:
    """The MX hosts' addresses of a domain, or its own (smtp_domain_addr);
    also whether this host is one of its MX hosts."""
    from ..dns import DNSStatus, dns_lookup
    conf = host.conf
    why.reset()
    r = dns_lookup(host.dns, name, "MX")
    if r.status == DNSStatus.NOTFOUND:
        return _host_addr(host, name, loop_detect, why), False
    if r.status != DNSStatus.OK:
        why.reason = r.why
        why.set({DNSStatus.INVAL: "5.4.4", DNSStatus.NULLMX: "5.1.0", DNSStatus.POLICY: "4.7.0",
                 DNSStatus.FAIL: "5.4.3"}.get(r.status, "4.4.3"))
        if r.status in (DNSStatus.RETRY, DNSStatus.INVAL, DNSStatus.FAIL) \
                and conf.bool("ignore_mx_lookup_error"):
            return _host_addr(host, name, loop_detect, why), False
        return [], False
    mx = sorted(r.records, key=lambda rr: rr.preference)      # stable: answer order kept
    best_pref = mx[0].preference
    addrs: list[ServerAddress] = []
    for rr in mx:
        addrs += _addr_one(host, rr.exchange.rstrip("."), rr.preference, why)
    if not addrs:
        if conf.bool("smtp_defer_if_no_mx_address_found") and why.dsn.startswith("5"):
            why.set("4" + why.dsn[1:])
        warnings.append(f"no MX host for {name} has a valid address record")
        return [], False
    best_found = addrs[0].pref
    me = _find_self(host, addrs) if loop_detect else None
    if me is not None:
        addrs = [a for a in addrs if a.pref < me.pref]
        if not addrs:
            if best_pref != best_found:
                why.set("4.4.4", f"unable to find primary relay for {name}")
            else:
                why.set("5.4.6", f"mail for {name} loops back to myself")
    return _order(host, addrs), me is not None


def dns_resolve(host, hop: NextHop) -> ServerList:
    """The servers for ``hop`` through ``host.dns``, in Postfix's lookup order
    (see the module's description); raises :class:`LookupFailure`."""
    conf = host.conf
    why, warnings = _Why(), []
    loop_detect = hop.port == 25
    if not hop.bracketed and _dns_enabled(conf):
        addrs, i_am_mx = _domain_addr(host, hop.host, loop_detect, why, warnings)
    else:
        addrs, i_am_mx = _host_addr(host, hop.host, loop_detect, why), False
    if not addrs:
        if not why.dsn:
            why.set("4.3.0", "server unavailable or unable to receive mail")
        raise LookupFailure(why.dsn, why.reason, warnings=warnings, i_am_mx=i_am_mx)
    limit = conf.int("smtp_mx_address_limit")
    return ServerList(addrs[:limit] if limit > 0 else addrs, warnings=warnings, i_am_mx=i_am_mx)
