"""Zone files: the master file format of RFC 1035 (section 5), as a lab's
``zones/*.zone`` and the recordings' ``"zones"`` text use it.

One file may hold records of several zones (the recordings' zone holds
example.com, example.org, example.net ... and 127.in-addr.arpa): every SOA
record marks the apex of a zone, and the virtual DNS answers negative
queries with the SOA of the closest enclosing apex.

Syntax understood
-----------------
* ``$TTL 300`` (RFC 2308; units ``s m h d w`` as in BIND: ``1h30m``) and
  ``$ORIGIN example.com.``; ``;`` starts a comment (outside quotes);
  ``( ... )`` continues a record over several lines (as SOA records often do).
* ``owner [ttl] [class] type rdata``: an absolute owner ends with a dot;
  a relative one has ``$ORIGIN`` appended; ``@`` is ``$ORIGIN``; a line that
  begins with a blank has the owner of the record before it. TTL and class
  may come in either order; the class must be ``IN``. A record without a TTL
  takes ``$TTL``, else the last TTL written, else 3600.
* Types: ``SOA NS A AAAA MX CNAME TXT PTR``. ``MX 0 .`` is a null MX
  (RFC 7505): the domain accepts no mail. TXT takes quoted strings (with
  ``\\"`` and ``\\\\``) or bare words, at most 255 characters each.

Checked, with the file and line in the message and a hint how to fix it: the
things above, address syntax, MX preferences (0..65535), label and name
lengths (63/255), and a CNAME beside other data at one name (RFC 1034 3.6.2).

Not simulated: ``$INCLUDE`` (every file of a lab's ``zones/`` is loaded
anyway), wildcards, other classes and types, ``\\DDD`` escapes in names,
``$GENERATE``.

Examples
--------
>>> rrs = parse_zone('''$ORIGIN example.org.
... $TTL 300
... @      MX 10 mx1          ; primary
...        MX 20 mx2.example.net.
... mx1    A  127.0.0.3
... ''', "example.org.zone")
>>> [str(r) for r in rrs]
['example.org. 300 IN MX 10 mx1.example.org.', 'example.org. 300 IN MX 20 mx2.example.net.', 'mx1.example.org. 300 IN A 127.0.0.3']
>>> rrs[0].preference, rrs[0].exchange
(10, 'mx1.example.org.')
>>> parse_zone("nullmx.example. 300 MX 0 .")[0].exchange
'.'
>>> parse_zone("www A 192.0.2.1", "lab/zones/example.zone")
Traceback (most recent call last):
  ...
mailsim.dns.zone.ZoneError: lab/zones/example.zone:1: relative name 'www' but no $ORIGIN
    fix: write the name in full with the final dot ('www.example.com.'), or put '$ORIGIN example.com.' above it
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Iterator

__all__ = ["RR", "ZoneError", "parse_zone", "RTYPES", "absolute_name"]

#: the record types the virtual DNS knows
RTYPES = ("SOA", "NS", "A", "AAAA", "MX", "CNAME", "TXT", "PTR")
_CLASSES = ("IN", "CH", "HS", "CS")
_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TTL_RE = re.compile(r"^(\d+)$|^(\d+[smhdw])+$", re.I)
_LABEL_RE = re.compile(r"^[A-Za-z0-9_*]([A-Za-z0-9_-]*)$")
#: how each type's data is written, for the hints
_EXAMPLES = {
    "SOA": "example.com. SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 300",
    "NS": "example.com. NS ns.example.com.",
    "A": "mail.example.com. A 192.0.2.25",
    "AAAA": "mail.example.com. AAAA 2001:db8::25",
    "MX": "example.com. MX 10 mail.example.com.",
    "CNAME": "www.example.com. CNAME mail.example.com.",
    "TXT": 'example.com. TXT "v=spf1 mx -all"',
    "PTR": "25.2.0.192.in-addr.arpa. PTR mail.example.com.",
}


class ZoneError(ValueError):
    """A zone file that cannot be loaded: ``filename:line: message`` and a fix."""

    def __init__(self, filename: str, line: int, message: str, hint: str = "") -> None:
        self.filename, self.line, self.message, self.hint = filename, line, message, hint
        text = f"{filename}:{line}: {message}"
        super().__init__(text + (f"\n    fix: {hint}" if hint else ""))


@dataclass(frozen=True)
class RR:
    """One resource record. ``name`` is absolute and lower case (``mx1.example.org.``);
    ``rdata`` holds the typed fields: A/AAAA ``(address,)``, MX ``(preference,
    exchange)``, CNAME/PTR/NS ``(target,)``, TXT the strings, SOA ``(mname, rname,
    serial, refresh, retry, expire, minimum)``. ``source`` (``file:line``) is not
    part of the record's identity.

    >>> RR("example.org.", 300, "MX", (10, "mx1.example.org.")).text
    '10 mx1.example.org.'
    """
    name: str
    ttl: int
    rtype: str
    rdata: tuple
    source: str = field(default="", compare=False, repr=False)

    @property
    def text(self) -> str:
        """The record data in master-file form (as dig prints it)."""
        if self.rtype == "TXT":
            return " ".join('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
                            for s in self.rdata)
        return " ".join(str(x) for x in self.rdata)

    def __str__(self) -> str:
        return f"{self.name} {self.ttl} IN {self.rtype} {self.text}"

    # -- typed views ------------------------------------------------------------------------
    @property
    def preference(self) -> int:
        """An MX record's preference."""
        return self.rdata[0] if self.rtype == "MX" else 0

    @property
    def exchange(self) -> str:
        """An MX record's mail host (``.`` for a null MX)."""
        return self.rdata[1] if self.rtype == "MX" else ""

    @property
    def address(self) -> str:
        """An A or AAAA record's address."""
        return self.rdata[0] if self.rtype in ("A", "AAAA") else ""

    @property
    def target(self) -> str:
        """The name a CNAME, PTR or NS record points to."""
        return self.rdata[0] if self.rtype in ("CNAME", "PTR", "NS") else ""


def absolute_name(name: str) -> str:
    """``name`` in lower case with one final dot (the root is ``.``).

    >>> absolute_name("Mail.Example.COM"), absolute_name("."), absolute_name("a.b.")
    ('mail.example.com.', '.', 'a.b.')
    """
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


# -- reading the text ---------------------------------------------------------------------------

class _Tok(str):
    """A token; ``quoted`` is true for a "quoted string"."""
    quoted = False


def _quoted(text: str) -> _Tok:
    t = _Tok(text)
    t.quoted = True
    return t


def _records(text: str, filename: str) -> Iterator[tuple[int, bool, list[_Tok]]]:
    """(line, begins with blank, tokens) for each record or directive; parentheses
    join lines, comments and blank lines vanish."""
    depth, start, indented, toks = 0, 0, False, []
    for lineno, line in enumerate(text.splitlines(), 1):
        if depth == 0:
            start, indented, toks = lineno, line[:1] in (" ", "\t"), []
        i, n = 0, len(line)
        while i < n:
            c = line[i]
            if c in " \t\r":
                i += 1
            elif c == ";":
                break
            elif c == "(":
                depth, i = depth + 1, i + 1
            elif c == ")":
                if depth == 0:
                    raise ZoneError(filename, lineno, "')' without '('",
                                    "remove it, or open the group with '(' on the record's first line")
                depth, i = depth - 1, i + 1
            elif c == '"':
                buf, j = [], i + 1
                while j < n and line[j] != '"':
                    if line[j] == "\\" and j + 1 < n:
                        j += 1
                    buf.append(line[j])
                    j += 1
                if j >= n:
                    raise ZoneError(filename, lineno, "unterminated quoted string",
                                    'close the string with " on the same line')
                toks.append(_quoted("".join(buf)))
                i = j + 1
            else:
                j = i
                while j < n and line[j] not in ' \t\r;()"':
                    j += 1
                toks.append(_Tok(line[i:j]))
                i = j
        if depth == 0 and toks:
            yield start, indented, toks
    if depth:
        raise ZoneError(filename, start, "'(' is never closed", "add the matching ')'")


def _ttl(tok: str, filename: str, line: int) -> int:
    if not _TTL_RE.match(tok):
        raise ZoneError(filename, line, f"bad TTL '{tok}'",
                        "write seconds (300) or with units (5m, 1h30m, 1d)")
    if tok.isdigit():
        value = int(tok)
    else:
        value = sum(int(num) * _TTL_UNITS[unit.lower()]
                    for num, unit in re.findall(r"(\d+)([smhdw])", tok, re.I))
    if value > 0x7FFFFFFF:
        raise ZoneError(filename, line, f"TTL {tok} is too large", "use at most 2147483647 seconds")
    return value


def _is_ttl(tok: str) -> bool:
    return not getattr(tok, "quoted", False) and bool(_TTL_RE.match(tok))


def _name(tok: str, origin: str | None, filename: str, line: int) -> str:
    """An owner or target name made absolute (``@`` is the origin)."""
    if getattr(tok, "quoted", False):
        raise ZoneError(filename, line, f'a name cannot be a quoted string: "{tok}"',
                        "write the name without quotes")
    if tok == "@":
        if origin is None:
            raise ZoneError(filename, line, "'@' but no $ORIGIN",
                            "write the zone's name in full ('example.com.'), or put "
                            "'$ORIGIN example.com.' above it")
        return origin
    if tok == ".":
        return "."
    if tok.endswith("."):
        full = tok.lower()
    elif origin is None:
        raise ZoneError(filename, line, f"relative name '{tok}' but no $ORIGIN",
                        f"write the name in full with the final dot ('{tok}.example.com.'), "
                        "or put '$ORIGIN example.com.' above it")
    else:
        full = tok.lower() + "." + (origin if origin != "." else "")
    labels = full[:-1].split(".")
    for label in labels:
        if not label:
            raise ZoneError(filename, line, f"empty label in name '{tok}'",
                            "remove the doubled dot")
        if len(label) > 63:
            raise ZoneError(filename, line, f"label '{label[:20]}...' of '{tok}' is longer than 63 characters",
                            "shorten it")
        if not _LABEL_RE.match(label) or ("*" in label and label != "*"):
            raise ZoneError(filename, line, f"bad character in name '{tok}'",
                            "names use letters, digits, '-' and '_' (and '.' between labels)")
        if label == "*":
            raise ZoneError(filename, line, f"wildcard name '{tok}' is not simulated",
                            "list each name explicitly")
    if len(full) > 255:
        raise ZoneError(filename, line, f"name '{tok[:40]}...' is longer than 255 characters",
                        "shorten it")
    return full


def _count(rtype: str, args: list[_Tok], n: int, filename: str, line: int) -> None:
    if len(args) != n:
        got = " ".join(args) or "nothing"
        raise ZoneError(filename, line, f"{rtype} needs {n} field{'s' if n > 1 else ''} of data, got: {got}",
                        f"write it as '{_EXAMPLES[rtype]}'")


def _rdata(rtype: str, args: list[_Tok], origin: str | None, filename: str, line: int) -> tuple:
    """The typed data of one record (see :class:`RR`)."""
    if rtype in ("A", "AAAA"):
        _count(rtype, args, 1, filename, line)
        cls = ipaddress.IPv4Address if rtype == "A" else ipaddress.IPv6Address
        try:
            return (str(cls(args[0])),)
        except ValueError:
            other = "AAAA" if rtype == "A" else "A"
            raise ZoneError(filename, line, f"'{args[0]}' is not an IPv{4 if rtype == 'A' else 6} address",
                            f"write it as '{_EXAMPLES[rtype]}' (an IPv{6 if rtype == 'A' else 4} "
                            f"address belongs in an {other} record)") from None
    if rtype == "MX":
        _count(rtype, args, 2, filename, line)
        if not args[0].isdigit() or int(args[0]) > 65535:
            raise ZoneError(filename, line, f"MX preference '{args[0]}' is not a number from 0 to 65535",
                            f"write it as '{_EXAMPLES['MX']}' (lower preference = tried first; "
                            "'MX 0 .' is a null MX)")
        return (int(args[0]), _name(args[1], origin, filename, line))
    if rtype in ("CNAME", "PTR", "NS"):
        _count(rtype, args, 1, filename, line)
        return (_name(args[0], origin, filename, line),)
    if rtype == "TXT":
        if not args:
            _count(rtype, args, 1, filename, line)
        for s in args:
            if len(s) > 255:
                raise ZoneError(filename, line, "a TXT string is longer than 255 characters",
                                'split it into several quoted strings: "first part" "second part"')
        return tuple(str(s) for s in args)
    # SOA
    _count(rtype, args, 7, filename, line)
    names = (_name(args[0], origin, filename, line), _name(args[1], origin, filename, line))
    if not args[2].isdigit() or int(args[2]) > 0xFFFFFFFF:
        raise ZoneError(filename, line, f"SOA serial '{args[2]}' is not a number",
                        f"write it as '{_EXAMPLES['SOA']}'")
    return names + (int(args[2]),) + tuple(_ttl(a, filename, line) for a in args[3:])


def parse_zone(text: str, filename: str = "zone", origin: str | None = None) -> list[RR]:
    """The records of a zone file, in file order; :class:`ZoneError` for a mistake.

    ``origin`` is the ``$ORIGIN`` in force at the top (none by default: names
    must then be absolute until a ``$ORIGIN`` line).
    """
    cur_origin = absolute_name(origin) if origin else None
    default_ttl: int | None = None
    last_ttl: int | None = None
    owner: str | None = None
    out: list[RR] = []
    for line, indented, toks in _records(text, filename):
        head = toks[0]
        if head.startswith("$") and not head.quoted:
            directive = head.upper()
            if directive in ("$TTL", "$ORIGIN") and len(toks) != 2:
                raise ZoneError(filename, line, f"{directive} needs one value",
                                "write '$TTL 300'" if directive == "$TTL" else "write '$ORIGIN example.com.'")
            if directive == "$TTL":
                default_ttl = _ttl(toks[1], filename, line)
            elif directive == "$ORIGIN":
                cur_origin = _name(toks[1], cur_origin, filename, line)
            elif directive == "$INCLUDE":
                raise ZoneError(filename, line, "$INCLUDE is not simulated",
                                "put the records in this file, or in another file of the lab's "
                                "zones/ folder (every *.zone file there is loaded)")
            else:
                raise ZoneError(filename, line, f"unknown directive {head}",
                                "the directives are $TTL and $ORIGIN")
            continue
        if indented:
            if owner is None:
                raise ZoneError(filename, line, "record without an owner name",
                                "start the line with the name (no blank before it)")
        else:
            owner = _name(toks.pop(0), cur_origin, filename, line)
        ttl: int | None = None
        while toks and not toks[0].quoted and (_is_ttl(toks[0]) or toks[0].upper() in _CLASSES):
            tok = toks.pop(0)
            if tok.upper() in _CLASSES:
                if tok.upper() != "IN":
                    raise ZoneError(filename, line, f"class {tok.upper()} is not simulated",
                                    "use class IN (or leave the class out)")
            else:
                ttl = last_ttl = _ttl(tok, filename, line)
        if not toks:
            raise ZoneError(filename, line, "record without a type",
                            f"write e.g. '{_EXAMPLES['A']}'")
        rtype = toks.pop(0).upper()
        if rtype not in RTYPES:
            raise ZoneError(filename, line, f"record type '{rtype}' is not simulated",
                            "the types are " + ", ".join(RTYPES))
        if ttl is None:
            ttl = default_ttl if default_ttl is not None else last_ttl if last_ttl is not None else 3600
        rr = RR(owner, ttl, rtype, _rdata(rtype, toks, cur_origin, filename, line),
                f"{filename}:{line}")
        if rr not in out:
            out.append(rr)
    _check_cnames(out, filename)
    return out


def _check_cnames(rrs: list[RR], filename: str) -> None:
    """RFC 1034 3.6.2: a name with a CNAME has no other data (and one CNAME only)."""
    by_name: dict[str, list[RR]] = {}
    for rr in rrs:
        group = by_name.setdefault(rr.name, [])
        group.append(rr)
        if len(group) > 1 and any(r.rtype == "CNAME" for r in group):
            line = int(rr.source.rpartition(":")[2] or 0)
            raise ZoneError(filename, line, f"{rr.name} has a CNAME and other records",
                            "a name with a CNAME can have no other record (RFC 1034 3.6.2): "
                            "give the records to the CNAME's target, or remove the CNAME")
