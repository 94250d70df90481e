"""A simulated machine's name service: the C library's stub resolver
(res_query(3)) and the ``hosts: files dns`` lookups behind getaddrinfo(3)
and getnameinfo(3), all asking the lab's :class:`~mailsim.dns.DNS`.

Postfix reaches the DNS two ways (tests/golden/postfix-3.7-multi/README.md):
smtp(8) calls res_query for MX and address records (:mod:`mailsim.dns.lookup`),
while smtpd(8) names its client with getnameinfo and getaddrinfo, which read
the host's ``/etc/hosts`` first and ask the DNS only for what is not there.
That is why 127.0.0.1 (``localhost`` in every etc/hosts) never shows in the
recordings' query log, while ``2.0.0.127.in-addr.arpa PTR`` does.

What the stub resolver does, as glibc's with one ``nameserver`` line:

* it asks each question as given (Postfix turns the search list off);
* after SERVFAIL it asks again, ``attempts`` times in all (2, glibc's
  RES_DFLRETRY) -- so the recordings show two queries for one failed lookup;
* the reply sets ``h_errno``: NXDOMAIN -> HOST_NOT_FOUND, SERVFAIL ->
  TRY_AGAIN, NOERROR without answer records -> NO_DATA.

getaddrinfo asks A for an IPv4-only request, AAAA for IPv6, both otherwise,
and fails with ``Name or service not known`` (the name does not exist),
``No address associated with hostname`` (no record of that kind) or
``Temporary failure in name resolution`` (the server failed).

Not simulated: several name servers, timeouts (a server that does not
answer), the search list, ``/etc/nsswitch.conf`` other than ``files dns``,
``/etc/host.conf``, nscd.

Examples
--------
>>> from mailsim.dns import DNS
>>> dns = DNS.from_text('''2.0.0.127.in-addr.arpa. 300 PTR mail.example.com.
... mail.example.com. 300 A 127.0.0.2''')
>>> hosts = [("127.0.0.1", ["localhost"])]
>>> getnameinfo("127.0.0.1", hosts=hosts, dns=dns), getnameinfo("127.0.0.2", hosts=hosts, dns=dns)
('localhost', 'mail.example.com')
>>> getaddrinfo("mail.example.com", 4, hosts=hosts, dns=dns)
['127.0.0.2']
>>> peer_hostname("127.0.0.2", hosts=hosts, dns=dns).name
'mail.example.com'
>>> print(*dns.queries, sep="\\n")
2.0.0.127.in-addr.arpa PTR -> NOERROR ans=1
mail.example.com A -> NOERROR ans=1
2.0.0.127.in-addr.arpa PTR -> NOERROR ans=1
mail.example.com A -> NOERROR ans=1
"""
from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .names import valid_hostaddr, valid_hostname
from .server import DNS, Answer, reverse_name

__all__ = ["HErrno", "EAI", "AddrInfoError", "PeerName", "res_query", "getaddrinfo",
           "getnameinfo", "peer_hostname", "files_addresses", "files_name", "ATTEMPTS"]

#: glibc's RES_DFLRETRY: how often a question is asked when the server fails
ATTEMPTS = 2

#: the host's /etc/hosts as (address, names) pairs (see Host.etc_hosts)
HostsFile = Iterable[tuple[str, Sequence[str]]]


class HErrno(enum.IntEnum):
    """netdb.h's h_errno after a resolver call."""
    NETDB_SUCCESS = 0
    HOST_NOT_FOUND = 1
    TRY_AGAIN = 2
    NO_RECOVERY = 3
    NO_DATA = 4


class EAI(enum.Enum):
    """getaddrinfo/getnameinfo errors with glibc's gai_strerror() texts."""
    NONAME = "Name or service not known"
    AGAIN = "Temporary failure in name resolution"
    NODATA = "No address associated with hostname"
    FAIL = "Non-recoverable failure in name resolution"

    @property
    def text(self) -> str:
        return self.value

    @property
    def temporary(self) -> bool:
        return self is EAI.AGAIN


class AddrInfoError(LookupError):
    """A failed getaddrinfo/getnameinfo; ``eai`` says why."""

    def __init__(self, eai: EAI) -> None:
        super().__init__(eai.text)
        self.eai = eai


def res_query(dns: DNS, name: str, rtype: str, *, attempts: int = ATTEMPTS) -> tuple[Answer, HErrno]:
    """Ask ``dns`` as the stub resolver does: again after SERVFAIL, then set h_errno.

    >>> dns = DNS()
    >>> res_query(dns, "x.servfail.example", "MX")[1].name, len(dns.queries)
    ('TRY_AGAIN', 2)
    """
    ans = dns.query(name, rtype)
    for _ in range(attempts - 1):
        if ans.rcode != "SERVFAIL":
            break
        ans = dns.query(name, rtype)
    if ans.rcode == "NXDOMAIN":
        return ans, HErrno.HOST_NOT_FOUND
    if ans.rcode == "SERVFAIL":
        return ans, HErrno.TRY_AGAIN
    if ans.rcode != "NOERROR":
        return ans, HErrno.NO_RECOVERY
    return ans, (HErrno.NETDB_SUCCESS if ans.records else HErrno.NO_DATA)


# -- the "files" source: /etc/hosts -----------------------------------------------------------

def _same_addr(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def _family(addr: str) -> int:
    return ipaddress.ip_address(addr).version


def files_addresses(hosts: HostsFile, name: str, family: int | None = None) -> list[str]:
    """The addresses /etc/hosts lists for ``name``, in file order."""
    want = name.lower().rstrip(".")
    out: list[str] = []
    for addr, names in hosts:
        if want in (n.lower() for n in names) and valid_hostaddr(addr):
            if (family is None or _family(addr) == family) and addr not in out:
                out.append(addr)
    return out


def files_name(hosts: HostsFile, addr: str) -> str | None:
    """The first name /etc/hosts gives ``addr``, or None."""
    for a, names in hosts:
        if names and _same_addr(a, addr):
            return names[0]
    return None


# -- getaddrinfo / getnameinfo ---------------------------------------------------------------

def getaddrinfo(name: str, family: int | None = None, *, hosts: HostsFile = (),
                dns: DNS | None = None) -> list[str]:
    """The addresses of ``name`` (``family`` 4, 6 or None for both) through
    ``files dns``; raises :class:`AddrInfoError`."""
    if valid_hostaddr(name):
        if family is None or _family(name) == family:
            return [str(ipaddress.ip_address(name))]
        raise AddrInfoError(EAI.NONAME)
    found = files_addresses(hosts, name, family)
    if found:
        return found
    if dns is None:
        raise AddrInfoError(EAI.NONAME)
    types = {4: ["A"], 6: ["AAAA"]}.get(family or 0, ["A", "AAAA"])
    errors: list[HErrno] = []
    for rtype in types:
        ans, herr = res_query(dns, name.rstrip("."), rtype)
        found += [r.address for r in ans.of_type(rtype) if r.address not in found]
        errors.append(herr if herr or ans.of_type(rtype) else HErrno.NO_DATA)
    if found:
        return found
    if HErrno.TRY_AGAIN in errors:
        raise AddrInfoError(EAI.AGAIN)
    if HErrno.NO_RECOVERY in errors:
        raise AddrInfoError(EAI.FAIL)
    if all(e == HErrno.HOST_NOT_FOUND for e in errors):
        raise AddrInfoError(EAI.NONAME)
    raise AddrInfoError(EAI.NODATA)


def getnameinfo(addr: str, *, hosts: HostsFile = (), dns: DNS | None = None) -> str:
    """The name of ``addr`` (NI_NAMEREQD) through ``files dns``; raises :class:`AddrInfoError`."""
    name = files_name(hosts, addr)
    if name is not None:
        return name
    if dns is None:
        raise AddrInfoError(EAI.NONAME)
    ans, herr = res_query(dns, reverse_name(addr), "PTR")
    ptr = ans.of_type("PTR")
    if ptr:
        return ptr[0].target.rstrip(".") or "."
    if herr == HErrno.TRY_AGAIN:
        raise AddrInfoError(EAI.AGAIN)
    if herr == HErrno.NO_RECOVERY:
        raise AddrInfoError(EAI.FAIL)
    raise AddrInfoError(EAI.NONAME)


@dataclass(frozen=True)
class PeerName:
    """smtpd(8)'s names for its client: ``name`` (verified, or ``unknown``),
    ``reverse_name`` (what the PTR lookup said), whether a failure was
    ``temporary``, and the warnings smtpd logs."""
    name: str
    reverse_name: str
    temporary: bool = False
    warnings: tuple[str, ...] = field(default=())


def peer_hostname(addr: str, *, hosts: HostsFile = (), dns: DNS | None = None) -> PeerName:
    """The client name as smtpd(8) finds it (smtpd_peer.c): the address's name,
    kept only when a forward lookup of that name gives the address back."""
    try:
        name = getnameinfo(addr, hosts=hosts, dns=dns)
    except AddrInfoError as e:
        return PeerName("unknown", "unknown", e.eai.temporary)
    if valid_hostaddr(name):
        return PeerName("unknown", "unknown", False, (f"numeric hostname: {name}",))
    if not valid_hostname(name):
        return PeerName("unknown", "unknown")
    try:
        addrs = getaddrinfo(name, _family(addr), hosts=hosts, dns=dns)
    except AddrInfoError as e:
        return PeerName("unknown", name, e.eai.temporary,
                        (f"hostname {name} does not resolve to address {addr}: {e.eai.text}",))
    if not any(_same_addr(a, addr) for a in addrs):
        return PeerName("unknown", name, False, (f"hostname {name} does not resolve to address {addr}",))
    return PeerName(name, name)
