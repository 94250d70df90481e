"""Network tables: ``cidr:`` (Postfix's dict_cidr and cidr_match).

Models ``src/util/dict_cidr.c`` and ``cidr_match.c`` (cidr_table(5)):

* a rule is ``network/prefix result`` or ``address result``, IPv4 or IPv6
  (IPv6 may be written ``[2001:db8::]/32``); ``!pattern`` inverts it;
* ``if network/prefix`` ... ``endif`` blocks, nestable;
* the first matching rule wins; the key must be a literal address, anything
  else simply does not match;
* a network with host bits set is refused with Postfix's hint (``perhaps you
  should use "192.168.1.0/24" instead``); bad rules are skipped with a
  warning ``cidr map FILE, line N: ...: skipping this rule``.

Addresses are parsed with the C library's ``inet_pton`` (through
:func:`socket.inet_pton`), like Postfix.

Examples
--------
>>> m = CidrMap("cidr", "/etc/postfix/client_access", text='''
... 192.168.1.0/24   REJECT local net
... 2001:db8::/32    OK
... 10.1.2.3/16      REJECT
... ''')
>>> m.lookup("192.168.1.77"), m.lookup("2001:DB8::1"), m.lookup("10.0.0.1"), m.lookup("mail.example")
('REJECT local net', 'OK', None, None)
>>> m.messages
['warning: cidr map /etc/postfix/client_access, line 4: non-null host address bits in "10.1.2.3/16", perhaps you should use "10.1.0.0/16" instead: skipping this rule']
"""
from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from .base import DAEMON_FLAGS, Map, OpenFlags
from .source import ISSPACE, logical_lines

__all__ = ["CidrMap", "parse_cidr"]


@dataclass
class _Entry:
    op: str                     # "match", "if", "endif"
    lineno: int
    family: int = 0
    net: bytes = b""
    mask: bytes = b""
    match: bool = True
    value: str = ""
    endif: int | None = None


def _family(s: str) -> int:
    return socket.AF_INET6 if ":" in s else socket.AF_INET


def _pton(family: int, s: str) -> bytes | None:
    try:
        return socket.inet_pton(family, s)
    except (OSError, ValueError):
        return None


def _mask_bytes(nbytes: int, shift: int) -> bytes:
    bits = (1 << (nbytes * 8)) - 1 ^ ((1 << (nbytes * 8 - shift)) - 1)
    return bits.to_bytes(nbytes, "big")


def parse_cidr(pattern: str) -> tuple[int, bytes, bytes]:
    """``(family, network bytes, mask bytes)`` of a pattern; ValueError with Postfix's reason."""
    mask_search = pattern
    if pattern.startswith("["):
        pattern = pattern[1:]
        addr, sep, after = pattern.partition("]")
        if not sep:
            raise ValueError(f'missing \']\' character after "[{pattern}"')
        if after.startswith("/"):
            pattern = addr + after
        elif after:
            raise ValueError(f'garbage after "[{addr}]"')
        else:
            pattern = addr
        mask_search = pattern
    addr, slash, mask = mask_search.partition("/")
    family = _family(addr)
    nbytes = 16 if family == socket.AF_INET6 else 4
    nbits = nbytes * 8
    if slash:
        if not (mask.isascii() and mask.isdigit()) and mask != "":
            raise ValueError(f'bad mask value in "{addr}/{mask}"')
        shift = int(mask) if mask else 0
        if shift > nbits:
            raise ValueError(f'bad mask length in "{addr}/{mask}"')
        net = _pton(family, addr)
        if net is None:
            raise ValueError(f'bad network value in "{addr}/{mask}"')
        mbytes = _mask_bytes(nbytes, shift)
        masked = bytes(a & b for a, b in zip(net, mbytes))
        if masked != net:
            hint = socket.inet_ntop(family, masked)
            raise ValueError(f'non-null host address bits in "{addr}/{mask}", '
                             f'perhaps you should use "{hint}/{shift}" instead')
        return family, net, mbytes
    net = _pton(family, addr)
    if net is None:
        raise ValueError(f'bad address pattern: "{addr}"')
    return family, net, b"\xff" * nbytes


class CidrMap(Map):
    """A ``cidr:`` table, parsed at open. ``text`` is the file content or None for ``{...}``."""

    fixed = False

    def __init__(self, type_: str, name: str, text: str | None,
                 flags: OpenFlags = DAEMON_FLAGS, path: Path | None = None) -> None:
        super().__init__(type_, name, flags)
        if path is not None:
            self._watch(path)
        if text is None:
            from .source import inline_to_lines
            text = "".join(line + "\n" for line in inline_to_lines(name))
        self.entries: list[_Entry] = []
        stack: list[int] = []
        for lineno, line in logical_lines(text, name, self.warn):
            try:
                e = self._parse(lineno, line, len(stack))
            except ValueError as why:
                self.warn(f"cidr map {name}, line {lineno}: {why}: skipping this rule")
                continue
            if e.op == "if":
                stack.append(len(self.entries))
            elif e.op == "endif":
                self.entries[stack.pop()].endif = len(self.entries)
            self.entries.append(e)
        while stack:
            self.warn(f"cidr map {name}, line {self.entries[stack.pop()].lineno}: "
                      "IF has no matching ENDIF")

    @staticmethod
    def _parse(lineno: int, p: str, nesting: int) -> _Entry:
        low = p.lower()
        if low.startswith("if") and not (p[2:3].isascii() and p[2:3].isalnum()):
            rest = p[2:]
            match = True
            i = 0
            while i < len(rest) and (rest[i] == "!" or rest[i] in ISSPACE):
                if rest[i] == "!":
                    match = not match
                i += 1
            pat = rest[i:].rstrip(ISSPACE)
            if not pat:
                raise ValueError("no address pattern")
            fam, net, mask = parse_cidr(pat)
            return _Entry("if", lineno, fam, net, mask, match)
        if low.startswith("endif") and not (p[5:6].isascii() and p[5:6].isalnum()):
            if p[5:].strip(ISSPACE):
                raise ValueError("garbage after ENDIF")
            if nesting == 0:
                raise ValueError("ENDIF without IF")
            return _Entry("endif", lineno)
        match = True
        i = 0
        while i < len(p) and (p[i] == "!" or p[i] in ISSPACE):
            if p[i] == "!":
                match = not match
            i += 1
        j = i
        while j < len(p) and p[j] not in ISSPACE:
            j += 1
        pattern = p[i:j]
        value = p[j:].strip(ISSPACE)
        if not pattern:
            raise ValueError("no address pattern")
        fam, net, mask = parse_cidr(pattern)
        if not value:
            raise ValueError("no lookup result")
        return _Entry("match", lineno, fam, net, mask, match, value)

    @staticmethod
    def _hit(e: _Entry, addr: bytes) -> bool:
        inside = all((a & m) == n for a, m, n in zip(addr, e.mask, e.net))
        return inside == e.match

    def _lookup(self, key: str) -> str | None:
        fam = _family(key)
        addr = _pton(fam, key)
        if addr is None:
            return None
        i = 0
        while i < len(self.entries):
            e = self.entries[i]
            if e.op == "match":
                if e.family == fam and self._hit(e, addr):
                    return e.value
            elif e.op == "if":
                if not (e.family == fam and self._hit(e, addr)):
                    if e.endif is None:
                        return None
                    i = e.endif
            i += 1
        return None

    def describe(self) -> str:
        n = sum(1 for e in self.entries if e.op == "match")
        return f"{self.spec} ({n} rule{'s' if n != 1 else ''})"
