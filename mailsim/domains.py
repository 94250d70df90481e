"""Domain and network lists: Postfix's match_list for domains and addresses.

Models ``src/util/match_list.c``/``match_ops.c`` as the Postfix daemons use them
for ``mydestination``, ``relay_domains``, ``virtual_*_domains`` and
``mynetworks``: an entry is a name, ``.name`` (subdomains), ``!entry``
(exclusion), ``/file/name`` (more entries, one per line) or ``type:table``
(looked up). Whether ``example.com`` also matches ``sub.example.com`` is decided
by ``parent_domain_matches_subdomains`` (Postfix default lists relay_domains,
mynetworks, smtpd_access_maps among others, but not mydestination).

Examples
--------
>>> match_domain("sub.example.com", ["example.com"], parent_matches=True)
True
>>> match_domain("sub.example.com", ["example.com"], parent_matches=False)
False
>>> match_domain("sub.example.com", [".example.com"], parent_matches=False)
True
>>> match_network("127.0.0.1", ["127.0.0.0/8"])
True
>>> match_network("192.0.2.7", ["127.0.0.0/8", "[::1]/128"])
False
"""
from __future__ import annotations

import ipaddress
from typing import Callable

__all__ = ["match_domain", "match_network", "parent_matches"]

Lookup = Callable[[str, str], "str | None"]   # (table spec, key) -> result


def parent_matches(conf, param: str) -> bool:
    """Does ``param`` let ``example.com`` match its subdomains (parent_domain_matches_subdomains)?"""
    return param in conf.list("parent_domain_matches_subdomains")


def _expand_entries(entries: list[str], read_file: Callable[[str], str] | None) -> list[str]:
    out: list[str] = []
    for e in entries:
        neg = e.startswith("!")
        body = e[1:] if neg else e
        if body.startswith("/") and read_file is not None:
            for line in read_file(body).splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    out.extend(("!" if neg else "") + t for t in line.replace(",", " ").split())
        else:
            out.append(e)
    return out


def match_domain(domain: str, entries: list[str], *, parent_matches: bool,
                 lookup: Lookup | None = None,
                 read_file: Callable[[str], str] | None = None,
                 trace: list | None = None) -> bool:
    """Does ``domain`` match the domain list ``entries``?

    ``lookup(spec, key)`` answers ``type:table`` entries (it may raise the
    table's error); ``trace`` collects ``(spec, key, result)`` for explanations.
    """
    d = domain.lower().rstrip(".")
    for e in _expand_entries(entries, read_file):
        neg = e.startswith("!")
        pat = (e[1:] if neg else e).lower()
        hit = False
        if ":" in pat and not pat.startswith("["):
            if lookup is not None:
                keys = [d]
                if parent_matches:
                    parts = d.split(".")
                    keys += [".".join(parts[i:]) for i in range(1, len(parts))]
                else:
                    parts = d.split(".")
                    keys += ["." + ".".join(parts[i:]) for i in range(1, len(parts))]
                for k in keys:
                    r = lookup(pat, k)
                    if trace is not None:
                        trace.append((pat, k, r))
                    if r is not None:
                        hit = True
                        break
        elif pat.startswith("."):
            hit = d.endswith(pat)
        else:
            hit = d == pat or (parent_matches and d.endswith("." + pat))
        if hit:
            return not neg
    return False


def match_network(addr: str, entries: list[str], *, lookup: Lookup | None = None,
                  trace: list | None = None) -> bool:
    """Does the client address ``addr`` match the network list (``mynetworks`` syntax)?"""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for e in entries:
        neg = e.startswith("!")
        pat = e[1:] if neg else e
        hit = False
        if ":" in pat and not pat.startswith("[") and "/" not in pat.split(":", 1)[0] \
                and pat.split(":", 1)[0].isalpha():
            if lookup is not None:
                r = lookup(pat, str(ip))
                if trace is not None:
                    trace.append((pat, str(ip), r))
                hit = r is not None
        else:
            p = pat.replace("[", "").replace("]", "")
            try:
                net = ipaddress.ip_network(p, strict=False)
                hit = ip in net
            except ValueError:
                hit = False
        if hit:
            return not neg
    return False
