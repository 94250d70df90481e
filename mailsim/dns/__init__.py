"""The virtual DNS of mailsim's labs: zone files, a name server in memory,
the simulated machine's resolver, and Postfix's DNS client library.

A lab's hosts all ask one :class:`DNS` (``host.dns``); nothing ever reaches a
real resolver. The modules follow the path of a question:

* :mod:`~mailsim.dns.zone` -- zone files (RFC 1035 master file syntax), with
  errors that name the file and line;
* :mod:`~mailsim.dns.server` -- :class:`DNS`: answers (NOERROR, NODATA,
  NXDOMAIN, SERVFAIL faults), a query log like the recordings' ``dns_queries``,
  and :meth:`DNS.dig` for notebooks;
* :mod:`~mailsim.dns.resolver` -- the C library: res_query (asks again after
  SERVFAIL), getaddrinfo/getnameinfo through ``/etc/hosts`` then the DNS, and
  smtpd(8)'s verified client name;
* :mod:`~mailsim.dns.lookup` -- Postfix's dns_lookup(): statuses and the
  texts smtp(8) logs (``Host or domain name not found. Name service error
  for name=... type=MX: Host not found, try again``, ``... (nullMX)``).

smtp(8)'s MX and address lookups through all this are in
:mod:`mailsim.smtp.addr`.

Postfix equivalent / on a real server: ``dig +noall +answer example.org MX``,
``host -t mx example.org``, ``getent hosts mail.example.com``.

Example
-------
>>> from mailsim.clock import SimClock
>>> dns = DNS.from_text('''$TTL 300
... example.org.      MX 10 mx1.example.org.
... example.org.      MX 20 mx2.example.net.
... mx1.example.org.  A  127.0.0.3
... mx2.example.net.  A  127.0.0.4''', clock=SimClock())
>>> print(dns.dig("example.org", "MX"))  # doctest: +NORMALIZE_WHITESPACE
example.org.		300	IN	MX	10 mx1.example.org.
example.org.		300	IN	MX	20 mx2.example.net.
>>> dns.queries[-1].key
('example.org', 'MX', 'NOERROR', 2)
>>> str(dns.queries[-1])
'09:00:00.000 example.org MX -> NOERROR ans=2'
"""
from .lookup import DNSResult, DNSStatus, dns_lookup, dns_lookup_v
from .names import valid_hostaddr, valid_hostname
from .resolver import (EAI, AddrInfoError, HErrno, PeerName, getaddrinfo, getnameinfo,
                       peer_hostname, res_query)
from .server import DNS, RCODES, Answer, Query, reverse_name
from .zone import RR, RTYPES, ZoneError, parse_zone

__all__ = ["DNS", "Answer", "Query", "RR", "ZoneError", "parse_zone", "reverse_name", "RCODES",
           "RTYPES", "res_query", "getaddrinfo", "getnameinfo", "peer_hostname", "PeerName",
           "AddrInfoError", "EAI", "HErrno", "dns_lookup", "dns_lookup_v", "DNSStatus",
           "DNSResult", "valid_hostname", "valid_hostaddr"]
