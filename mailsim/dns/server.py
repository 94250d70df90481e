"""The virtual DNS of a lab: the name server every simulated host asks.

It plays the part of the small DNS server of the multi-host recordings
(tests/golden/postfix-3.7-multi/README.md): authoritative for the zone text,
answering from memory -- nothing ever goes to a real resolver.

* A name with records of the asked type: NOERROR and the records, in zone
  order. A CNAME is followed as a recursive server does: the answer holds the
  CNAME records and then the target's records, and the rcode is the one of
  the last name in the chain (RFC 6604).
* A name that exists without records of that type (an empty non-terminal
  such as ``0.0.127.in-addr.arpa`` included, RFC 8020): NOERROR with no
  records (NODATA) and the SOA of the closest enclosing zone as authority.
* A name that does not exist: NXDOMAIN, with that SOA (none outside every zone).
* Faults: every name in :attr:`DNS.servfail`, and every name below one,
  answers SERVFAIL -- by default ``servfail.example``, the recording server's
  convention. :attr:`DNS.nxdomain` works the same way for NXDOMAIN (a domain
  that vanished), whatever the zone says.

Every question is logged in :attr:`DNS.queries`, in the order asked, like the
recordings' ``dns_queries`` (without the client's port)::

    09:48:23.347 example.org MX -> NOERROR ans=2

The time is the ``clock``'s (UTC, as the hosts' logs); without a clock the
time is left out. Who retries after SERVFAIL, and who follows CNAMEs for
Postfix, is the client's business: see :mod:`mailsim.dns.resolver`.

Not simulated: zone cuts and delegation (every zone is served by this one
server), wildcards, DNSSEC, truncation/TCP, TTL countdown and caching, glue.

Examples
--------
>>> dns = DNS.from_text('''$TTL 300
... example.org.       SOA ns.example.org. hostmaster.example.org. 1 3600 600 86400 300
... example.org.       MX  10 mx1.example.org.
... mx1.example.org.   A   127.0.0.3
... www.example.org.   CNAME mx1.example.org.
... ''')
>>> dns.query("example.org", "MX")
Answer(example.org MX -> NOERROR ans=1)
>>> dns.query("mx1.example.org", "MX").rcode, dns.query("nosuch.example.org", "A").rcode
('NOERROR', 'NXDOMAIN')
>>> print(dns.dig("www.example.org"))  # doctest: +NORMALIZE_WHITESPACE
www.example.org.	300	IN	CNAME	mx1.example.org.
mx1.example.org.	300	IN	A	127.0.0.3
>>> dns.query("a.servfail.example", "A").rcode
'SERVFAIL'
>>> print(*dns.queries, sep="\\n")
example.org MX -> NOERROR ans=1
mx1.example.org MX -> NOERROR ans=0
nosuch.example.org A -> NXDOMAIN ans=0
www.example.org A -> NOERROR ans=2
a.servfail.example A -> SERVFAIL ans=0
"""
from __future__ import annotations

import ipaddress
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .zone import RR, absolute_name, parse_zone

__all__ = ["DNS", "Answer", "Query", "RCODES", "reverse_name"]

#: the answers the virtual DNS gives
RCODES = ("NOERROR", "NXDOMAIN", "SERVFAIL")
#: a CNAME chain longer than this is answered SERVFAIL, as by a resolver that gives up
CNAME_CHAIN_LIMIT = 16


def reverse_name(addr: str) -> str:
    """The PTR query name of an address (``in-addr.arpa`` / ``ip6.arpa``), no final dot.

    >>> reverse_name("127.0.0.2")
    '2.0.0.127.in-addr.arpa'
    """
    return ipaddress.ip_address(addr).reverse_pointer


def _below(name: str, domains: Iterable[str]) -> bool:
    """``name`` (absolute) is one of ``domains`` or a name below one."""
    for d in domains:
        d = absolute_name(d)
        if name == d or name.endswith("." + d) or d == ".":
            return True
    return False


@dataclass(frozen=True)
class Answer:
    """The server's reply: ``rcode``, the answer ``records`` (a CNAME chain first),
    the ``authority`` (an SOA for a negative answer)."""
    qname: str
    qtype: str
    rcode: str
    records: tuple[RR, ...] = ()
    authority: tuple[RR, ...] = ()

    @property
    def count(self) -> int:
        """The answer count (``ans=`` of the query log)."""
        return len(self.records)

    @property
    def nodata(self) -> bool:
        """NOERROR without a record of the asked type."""
        return self.rcode == "NOERROR" and not self.of_type()

    def of_type(self, rtype: str | None = None) -> list[RR]:
        """The answer records of ``rtype`` (default: the asked type)."""
        want = rtype or self.qtype
        return [r for r in self.records if r.rtype == want]

    def __repr__(self) -> str:
        return f"Answer({self.qname.rstrip('.') or '.'} {self.qtype} -> {self.rcode} ans={self.count})"


@dataclass(frozen=True)
class Query:
    """One logged question: when (simulated seconds, or None), what, and the answer."""
    time: float | None
    qname: str
    qtype: str
    rcode: str
    count: int

    def __str__(self) -> str:
        text = f"{self.qname} {self.qtype} -> {self.rcode} ans={self.count}"
        if self.time is None:
            return text
        tm = time.gmtime(self.time)
        ms = int(round(self.time * 1000)) % 1000
        return f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}.{ms:03d} {text}"

    @property
    def key(self) -> tuple[str, str, str, int]:
        """What two runs must agree on: (qname, qtype, rcode, count)."""
        return (self.qname, self.qtype, self.rcode, self.count)

    @classmethod
    def parse(cls, line: str) -> "Query":
        """A recordings' ``dns_queries`` line; the time (then seconds since
        midnight) and the ``address:port`` source are optional.

        >>> Query.parse("09:48:23.347 127.0.0.1:49649 example.org MX -> NOERROR ans=2").key
        ('example.org', 'MX', 'NOERROR', 2)
        """
        m = re.fullmatch(r"(?:(\d\d):(\d\d):(\d\d)\.(\d{3}) )?(?:\S+:\d+ )?(\S+) (\S+) -> (\S+) ans=(\d+)",
                         line.strip())
        if m is None:
            raise ValueError(f"not a DNS query log line: {line!r}")
        t = None
        if m.group(1):
            t = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3)) + int(m.group(4)) / 1000
        return cls(t, m.group(5), m.group(6).upper(), m.group(7), int(m.group(8)))


class DNS:
    """The lab's name server: records in memory, faults, and a log of every query.

    ``clock``: anything with ``now()`` (the lab's :class:`~mailsim.clock.SimClock`),
    for the query log's times. ``servfail`` / ``nxdomain``: names that, with
    every name below them, answer SERVFAIL / NXDOMAIN (settable sets).
    """

    def __init__(self, records: Iterable[RR] = (), *, clock=None,
                 servfail: Iterable[str] = ("servfail.example",),
                 nxdomain: Iterable[str] = ()) -> None:
        self.clock = clock
        self.servfail: set[str] = set(servfail)
        self.nxdomain: set[str] = set(nxdomain)
        self.queries: list[Query] = []
        self._by_name: dict[str, list[RR]] = {}
        self._names: set[str] = {"."}         # every name that exists, empty non-terminals too
        self.add(records)

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str, filename: str = "zone", *, origin: str | None = None,
                  **kw) -> "DNS":
        """A DNS serving the zone-file ``text`` (errors name ``filename`` and the line)."""
        return cls(parse_zone(text, filename, origin), **kw)

    @classmethod
    def load(cls, paths: str | os.PathLike | Iterable[str | os.PathLike], **kw) -> "DNS":
        """A DNS serving zone files; a folder stands for its ``*.zone`` files (sorted)."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        files: list[Path] = []
        for p in map(Path, paths):
            files += sorted(p.glob("*.zone")) if p.is_dir() else [p]
        dns = cls(**kw)
        for f in files:
            dns.add(parse_zone(f.read_text(encoding="utf-8"), str(f)))
        return dns

    def add(self, records: Iterable[RR]) -> None:
        """Serve more records (a duplicate is kept once)."""
        for rr in records:
            group = self._by_name.setdefault(rr.name, [])
            if rr not in group:
                group.append(rr)
            labels = rr.name.rstrip(".").split(".")
            for i in range(len(labels)):
                self._names.add(".".join(labels[i:]) + ".")

    def records(self, name: str | None = None) -> list[RR]:
        """Every record served (of one name), in zone order."""
        if name is not None:
            return list(self._by_name.get(absolute_name(name), ()))
        return [rr for group in self._by_name.values() for rr in group]

    # -- answering -------------------------------------------------------------------------
    def _soa(self, name: str) -> tuple[RR, ...]:
        """The SOA of the closest zone apex at or above ``name``."""
        labels = name.rstrip(".").split(".")
        for i in range(len(labels)):
            apex = ".".join(labels[i:]) + "."
            soa = [r for r in self._by_name.get(apex, ()) if r.rtype == "SOA"]
            if soa:
                return (soa[0],)
        return ()

    def answer(self, name: str, rtype: str) -> Answer:
        """The reply to one question, without logging it."""
        qname, qtype = absolute_name(name), rtype.upper()
        chain: list[RR] = []
        cur = qname
        for _ in range(CNAME_CHAIN_LIMIT):
            if _below(cur, self.servfail):
                return Answer(qname, qtype, "SERVFAIL", tuple(chain))
            if _below(cur, self.nxdomain) or cur not in self._names:
                return Answer(qname, qtype, "NXDOMAIN", tuple(chain), self._soa(cur))
            here = self._by_name.get(cur, [])
            found = [r for r in here if r.rtype == qtype]
            cname = [r for r in here if r.rtype == "CNAME"]
            if found or not cname:
                return Answer(qname, qtype, "NOERROR", tuple(chain + found),
                              () if found else self._soa(cur))
            chain.append(cname[0])
            cur = cname[0].target
        return Answer(qname, qtype, "SERVFAIL", tuple(chain))

    def query(self, name: str, rtype: str = "A") -> Answer:
        """Answer ``name``/``rtype`` as the server does, and log the question."""
        ans = self.answer(name, rtype)
        t = self.clock.now() if self.clock is not None else None
        shown = name.rstrip(".") or "."
        self.queries.append(Query(t, shown, ans.qtype, ans.rcode, ans.count))
        return ans

    def query_log(self) -> list[str]:
        """The query log as text lines."""
        return [str(q) for q in self.queries]

    # -- for notebooks ---------------------------------------------------------------------
    def dig(self, name: str, rtype: str = "A", *, short: bool = False,
            comments: bool = False) -> str:
        """What ``dig +noall +answer NAME TYPE`` (``+short``; ``+comments``) prints.

        With ``comments`` the header tells NXDOMAIN (no such name) from NODATA
        (status NOERROR, ANSWER: 0: the name exists, the type does not); the
        query id is the number of the question in the query log.

        >>> dns = DNS.from_text("nullmx.example. 300 MX 0 .")
        >>> print(dns.dig("nullmx.example", "MX"))  # doctest: +NORMALIZE_WHITESPACE
        nullmx.example.		300	IN	MX	0 .
        >>> dns.dig("nosuch.example")       # NXDOMAIN: no answer lines, as dig
        ''
        >>> print(dns.dig("nosuch.example", comments=True))
        ;; Got answer:
        ;; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 3
        ;; flags: qr aa rd; QUERY: 1, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 0
        >>> print(dns.dig("nullmx.example", "A", comments=True).splitlines()[1])
        ;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4
        """
        if rtype.upper() == "PTR" and _is_address(name):
            name = reverse_name(name)               # dig -x
        ans = self.query(name, rtype)
        if short:
            return "\n".join(r.text for r in ans.records)
        lines = [_dig_line(r) for r in ans.records]
        if comments:
            head = [";; Got answer:",
                    f";; ->>HEADER<<- opcode: QUERY, status: {ans.rcode}, id: {len(self.queries)}",
                    f";; flags: qr aa rd; QUERY: 1, ANSWER: {ans.count}, "
                    f"AUTHORITY: {len(ans.authority)}, ADDITIONAL: 0"]
            lines = head + (["", ";; ANSWER SECTION:"] + lines if lines else [])
        return "\n".join(lines)

    def __repr__(self) -> str:
        n = sum(len(g) for g in self._by_name.values())
        return f"<DNS {n} records, {len(self.queries)} queries>"


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _dig_line(rr: RR) -> str:
    """One record as dig prints it: the owner padded with tabs to column 24."""
    tabs = max(1, (24 - len(rr.name) + 7) // 8)
    return f"{rr.name}{chr(9) * tabs}{rr.ttl}\tIN\t{rr.rtype}\t{rr.text}"

