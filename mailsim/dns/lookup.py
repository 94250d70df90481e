"""Postfix's DNS client library (src/dns/dns_lookup.c): dns_lookup() and
dns_lookup_v(), over the simulated machine's stub resolver.

A lookup gives a status, the records of the asked type and, on failure,
Postfix's text, which smtp(8) puts in its log line and bounce:

===========  =======================  ==================================================
status       when                     text
===========  =======================  ==================================================
OK           records found
NOTFOUND     NXDOMAIN, or NODATA      Host or domain name not found. Name service error
                                      for name=N type=T: Host not found  (NODATA: Host
                                      found but no data record of requested type)
RETRY        SERVFAIL (after the      ... type=T: Host not found, try again
             resolver's retry)
NULLMX       an ``MX 0 .`` record     Domain N does not accept mail (nullMX)
FAIL         other server errors      ... type=T: Non-recoverable error
NOTFOUND     N is an address, or no   Name service error for N: invalid host or domain
             valid host name          name  (and no query is sent)
===========  =======================  ==================================================

A reply that holds only a CNAME makes Postfix ask again for the CNAME's
target (up to 10 times: ``Name server loop for N``). dns_lookup_v asks one
name for several types in turn (A, then AAAA) and keeps the best status:
OK, then POLICY, RETRY, INVAL, FAIL, NULLMX, NOTFOUND (dns.h), with the text
of the last failure of that rank.

Not simulated: DNSSEC (``RES_USE_DNSSEC``, the AD bit), the DNS reply
filter (``smtp_dns_reply_filter``: no POLICY status), negative-cache TTLs,
``dns_rr_list_limit`` (100).

Examples
--------
>>> from mailsim.dns import DNS
>>> dns = DNS.from_text('''example.org. 300 MX 10 mx1.example.org.
... nullmx.example. 300 MX 0 .''')
>>> r = dns_lookup(dns, "example.org", "MX"); r.status.name, [x.exchange for x in r.records]
('OK', ['mx1.example.org.'])
>>> dns_lookup(dns, "nullmx.example", "MX").why
'Domain nullmx.example does not accept mail (nullMX)'
>>> dns_lookup(dns, "nosuch.example", "A").why
'Host or domain name not found. Name service error for name=nosuch.example type=A: Host not found'
>>> dns_lookup(dns, "example.org", "A").why
'Host or domain name not found. Name service error for name=example.org type=A: Host found but no data record of requested type'
>>> dns_lookup(dns, "127.0.0.1", "MX").why
'Name service error for 127.0.0.1: invalid host or domain name'
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Sequence

from .names import valid_hostaddr, valid_hostname
from .resolver import HErrno, res_query
from .server import DNS
from .zone import RR

__all__ = ["DNSStatus", "DNSResult", "dns_lookup", "dns_lookup_v", "dns_strerror"]

#: how often dns_lookup follows a CNAME before "Name server loop"
CNAME_LIMIT = 10


class DNSStatus(enum.IntEnum):
    """dns.h's result codes; a higher value is a better result."""
    NOTFOUND = -6
    NULLMX = -5
    FAIL = -4
    INVAL = -3
    RETRY = -2
    POLICY = -1
    OK = 0


_STRERROR = {HErrno.HOST_NOT_FOUND: "Host not found",
             HErrno.TRY_AGAIN: "Host not found, try again",
             HErrno.NO_RECOVERY: "Non-recoverable error",
             HErrno.NO_DATA: "Host found but no data record of requested type"}


def dns_strerror(herr: HErrno) -> str:
    """Postfix's text for a resolver error (dns_strerror.c)."""
    return _STRERROR.get(herr, f"Unknown error {int(herr)}")


@dataclass
class DNSResult:
    """One lookup: ``status``, the ``records`` of the asked type(s), the failure text ``why``."""
    status: DNSStatus
    records: list[RR] = field(default_factory=list)
    why: str = ""
    rcode: str = ""


def _query_error(name: str, rtype: str, herr: HErrno) -> DNSResult:
    why = (f"Host or domain name not found. Name service error for name={name} "
           f"type={rtype}: {dns_strerror(herr)}")
    status = {HErrno.NO_RECOVERY: DNSStatus.FAIL, HErrno.HOST_NOT_FOUND: DNSStatus.NOTFOUND,
              HErrno.NO_DATA: DNSStatus.NOTFOUND}.get(herr, DNSStatus.RETRY)
    return DNSResult(status, [], why)


def dns_lookup(dns: DNS, name: str, rtype: str) -> DNSResult:
    """Look ``name`` up for records of ``rtype`` as Postfix's dns_lookup() does."""
    rtype = rtype.upper()
    if valid_hostaddr(name) or (name != "." and not valid_hostname(name, wildcard=True)):
        return DNSResult(DNSStatus.NOTFOUND, [],
                         f"Name service error for {name}: invalid host or domain name", "NXDOMAIN")
    for _ in range(CNAME_LIMIT):
        ans, herr = res_query(dns, name, rtype)
        if herr != HErrno.NETDB_SUCCESS:
            res = _query_error(name, rtype, herr)
            res.rcode = ans.rcode
            return res
        found = ans.of_type(rtype)
        if rtype == "MX" and any(r.exchange == "." for r in found):
            return DNSResult(DNSStatus.NULLMX, [], f"Domain {name} does not accept mail (nullMX)",
                             ans.rcode)
        if found:
            return DNSResult(DNSStatus.OK, found, "", ans.rcode)
        cnames = ans.of_type("CNAME")
        if not cnames:
            return DNSResult(DNSStatus.NOTFOUND, [],
                             f"Name service error for name={name} type={rtype}: "
                             "Malformed or unexpected name server reply", ans.rcode)
        name = cnames[-1].target.rstrip(".")
    return DNSResult(DNSStatus.NOTFOUND, [], f"Name server loop for {name}")


def dns_lookup_v(dns: DNS, name: str, rtypes: Sequence[str]) -> DNSResult:
    """Look ``name`` up for each type in ``rtypes`` (Postfix's dns_lookup_v()):
    all records found, and the best status with its text."""
    records: list[RR] = []
    best: DNSResult | None = None
    res = DNSResult(DNSStatus.NOTFOUND)
    for i, rtype in enumerate(rtypes):
        res = dns_lookup(dns, name, rtype)
        records += res.records
        if i == len(rtypes) - 1:
            break
        if best is None or res.status >= best.status:
            best = res
    if best is not None and res.status < best.status:
        res = best
    return DNSResult(res.status, records, res.why, res.rcode)
