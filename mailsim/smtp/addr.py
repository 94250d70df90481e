"""smtp(8)'s next-hop parsing and server address lookup (Postfix's smtp_addr.c
and the destination parsing of smtp_connect.c).

A next hop comes from trivial-rewrite (or the transport table) as
``[127.0.0.1]:2526``, ``[mx.example.net]``, ``mx.example.net:587`` or
``example.net``; several may be listed, separated by commas or spaces.
Brackets mean "this host, no MX lookup"; without brackets, and with DNS
lookups enabled, Postfix looks up the MX records of the domain.

mailsim has no DNS yet (the virtual DNS of the labs comes later), so a name
is looked up in the host's ``etc/hosts`` only -- what Postfix does with
``smtp_dns_support_level = disabled`` and ``smtp_host_lookup = native`` --
and a domain stands for a host of that name (no MX records). A name that
etc/hosts does not know is treated as on a machine whose DNS server does not
answer: the mail is deferred with the reason Postfix gives for the lookup
method main.cf selects (recorded in tests/golden/smtp-client/):

* native: ``unable to look up host NAME: Temporary failure in name resolution`` (4.4.4)
* dns: ``Host or domain name not found. Name service error for name=NAME
  type=MX: Host not found, try again`` (4.4.3; ``type=A`` for ``[NAME]``)

:func:`lookup_failure` also knows the texts for a DNS that says the name does
not exist (NXDOMAIN: 5.4.4, the mail bounces), for the virtual DNS to use.

:func:`resolve` is the replaceable step: :class:`mailsim.smtp.SMTPClient`
takes any function ``(host, NextHop) -> list[ServerAddress]`` that raises
:class:`LookupFailure`, so a virtual DNS can plug in.

Parameters read (Postfix defaults): ``smtp_tcp_port`` (smtp = 25),
``smtp_dns_support_level`` (empty: enabled), ``smtp_host_lookup`` (dns),
``inet_protocols`` (all; Debian ipv4 after install), ``smtp_mx_address_limit`` (5).

Examples
--------
>>> parse_nexthop("[127.0.0.1]:2526")
NextHop(text='[127.0.0.1]:2526', host='127.0.0.1', port=2526, bracketed=True)
>>> parse_nexthop("example.net").port, parse_nexthop("mx.example.net:submission").port
(25, 587)
>>> split_nexthops("[a.example], [b.example]:2525")
['[a.example]', '[b.example]:2525']
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Callable

__all__ = ["NextHop", "ServerAddress", "LookupFailure", "parse_nexthop", "split_nexthops",
           "resolve", "lookup_failure", "hosts_file_addresses", "Resolver", "SERVICES",
           "TRY_AGAIN", "NOT_FOUND"]

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


class LookupFailure(Exception):
    """No server address: ``dsn`` (4.x.x or 5.x.x) and the reason Postfix logs."""

    def __init__(self, dsn: str, reason: str) -> None:
        super().__init__(reason)
        self.dsn = dsn
        self.reason = reason


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
    """The servers for ``hop``: an address literal as is, a name from etc/hosts.

    A name etc/hosts does not know gets the answer ``unknown``: by default
    "try again", as on a machine whose DNS server does not answer, so the
    mail waits in the deferred queue. With port 25 an address of this host
    itself is a mail loop (``mail for NAME loops back to myself``, 5.4.6).
    """
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
