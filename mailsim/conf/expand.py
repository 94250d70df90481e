"""``$name`` expansion in parameter values, as Postfix 3.7 does it.

Models util/mac_parse.c, util/mac_expand.c and global/compat_level.c
(postconf(5), "$name" syntax):

``$name``, ``${name}``, ``$(name)``
    the value of ``name``, expanded again (recursively); empty when the
    parameter is not defined.
``${name?text}``, ``${name?{text}}``
    ``text`` when ``name`` has a non-empty value, else nothing.
``${name:text}``, ``${name:{text}}``
    ``text`` when ``name`` is empty or undefined, else nothing.
``${name?{text1}:{text2}}``
    ``text1`` or ``text2``.
``${{text1} OP {text2} ? {text3} : {text4}}``
    relational expression, OP one of ``== != < <= > >=`` (numeric when both
    sides are all digits, else string order) or the same with the ``level``
    suffix (``<level``), which compares compatibility levels (``3.6 < 3.10``).
    Without ``?``/``:`` the expression itself gives ``true`` or nothing.
``$$``
    a literal ``$``.

Whitespace around ``{text}`` operands is ignored, inside it is kept. Errors
(``truncated macro reference``, ``empty macro name``, ``unreasonable macro
call nesting``, ...) are reported with Postfix's wording through ``warn`` and
set :data:`PARSE_ERROR` in the returned status; Postfix programs then stop
with ``fatal: macro processing error``. Expansion nests at most 100 levels.

>>> values = {"myhostname": "mail.example.com", "mydomain": "example.com",
...           "mydestination": "$myhostname, localhost.$mydomain", "empty": ""}
>>> expand("$mydestination", values.get)
('mail.example.com, localhost.example.com', 0)
>>> expand("${empty:{none}} ${myhostname?{set}} $$ $(mydomain)", values.get)[0]
'none set $ example.com'
>>> expand("${{3.6} <level {2} ? {subnet} : {host}}", values.get)[0]
'host'
>>> w = []
>>> expand("${myhostname", values.get, warn=w.append)[1] & PARSE_ERROR, w
(1, ['truncated macro reference: "${myhostname"'])
"""
from __future__ import annotations

import re
from typing import Callable

__all__ = ["expand", "scan", "compat_level", "format_compat_level", "PARSE_ERROR",
           "PARSE_UNDEF", "NESTING_LIMIT"]

#: status bit: a syntax error or runaway recursion was found
PARSE_ERROR = 1
#: status bit: some ``$name`` had no value at all
PARSE_UNDEF = 2
#: Postfix's limit on nested macro calls
NESTING_LIMIT = 100

Lookup = Callable[[str], "str | None"]
Warn = Callable[[str], None]

_WS = " \t\r\n\v\f"
_OPS = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">=": "ge", ">": "gt"}
_OPS_ANY = '"==" or "!="" or "<"" or "<="" or ">="" or ">"'
_EXT_SUFFIXES = ("level",)
_NUM = re.compile(r"[ \t\r\n\v\f]*[+-]?[0-9]+")
_TRUE, _FALSE = "true", ""


def _isalnum(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_")


def compat_level(text: str, warn: Warn | None = None) -> int | None:
    """Encode a compatibility level (``"3.6"``) as one comparable number.

    >>> compat_level("3.6") < compat_level("3.10")
    True
    >>> compat_level("2") == compat_level("2.0")
    True
    >>> compat_level("three") is None
    True
    """
    parts: list[int] = []
    rest = text
    for width in (None, 1023, 1023):
        m = _NUM.match(rest)
        if not m:
            break
        value = int(m.group(0))
        if value < 0 or (width is not None and value > width):
            break
        parts.append(value)
        rest = rest[m.end():]
        if rest == "":
            major, minor, patch = (parts + [0, 0])[:3]
            return (major << 20) | (minor << 10) | patch
        if not rest.startswith(".") or len(parts) == 3:
            break
        rest = rest[1:]
    if warn:
        warn(f'malformed compatibility level syntax: "{text}"')
    return None


def format_compat_level(level: int) -> str:
    """The text form of an encoded compatibility level (levels 0-2 have no minor).

    >>> format_compat_level(compat_level("3.6")), format_compat_level(compat_level("2.0"))
    ('3.6', '2')
    """
    major, minor, patch = level >> 20, (level >> 10) & 1023, level & 1023
    if major <= 2:
        return str(major)
    return f"{major}.{minor}" + (f".{patch}" if patch else "")


def _compare(delta: int, op: str) -> bool:
    return {"eq": delta == 0, "ne": delta != 0, "lt": delta < 0, "le": delta <= 0,
            "ge": delta >= 0, "gt": delta > 0}[op]


class _Context:
    """One mac_expand() call: result buffer, flags, status, nesting level."""

    def __init__(self, lookup: Lookup, recurse: bool, scanning: bool, warn: Warn | None):
        self.lookup = lookup
        self.recurse = recurse
        self.scanning = scanning
        self.warn = warn
        self.status = 0
        self.level = 0
        self.result: list[str] = []

    def error(self, message: str) -> int:
        if self.warn:
            self.warn(message)
        self.status |= PARSE_ERROR
        return self.status

    # -- mac_parse: split text into literals and $name expressions --------------------
    def parse(self, value: str) -> int:
        status = 0
        literal: list[str] = []
        i, n = 0, len(value)
        while i < n:
            c = value[i]
            if c != "$":
                literal.append(c)
                i += 1
                continue
            if i + 1 < n and value[i + 1] == "$":
                literal.append("$")
                i += 2
                continue
            if literal:
                status |= self.callback(False, "".join(literal))
                literal = []
            i += 1
            if i < n and value[i] in "({":
                open_c = value[i]
                close_c = ")" if open_c == "(" else "}"
                depth, j = 1, i + 1
                while depth > 0:
                    if j >= n:
                        if self.warn:
                            self.warn(f'truncated macro reference: "{value}"')
                        status |= PARSE_ERROR
                        break
                    if value[j] == open_c:
                        depth += 1
                    elif value[j] == close_c:
                        depth -= 1
                    j += 1
                if status & PARSE_ERROR:
                    break
                name = value[i + 1:j - 1]
                i = j
            else:
                j = i
                while j < n and _isalnum(value[j]):
                    j += 1
                name = value[i:j]
                i = j
            if not name:
                status |= PARSE_ERROR
                if self.warn:
                    self.warn(f'empty macro name: "{value}"')
                break
            status |= self.callback(True, name)
        if literal and not status & PARSE_ERROR:
            status |= self.callback(False, "".join(literal))
        return status

    # -- mac_expand_callback -------------------------------------------------------
    def callback(self, is_expr: bool, buf: str) -> int:
        if self.level > NESTING_LIMIT:
            self.error(f'unreasonable macro call nesting: "{buf}"')
        self.level += 1
        if self.status & PARSE_ERROR:
            return self.status
        if not is_expr:
            if not self.scanning:
                self.result.append(buf)
            self.level -= 1
            return self.status
        cp = buf
        ch = ""
        lookup: str | None
        k = len(cp) - len(cp.lstrip(_WS))
        if k < len(cp) and cp[k] == "{":
            ok, lookup, cp = self._relational(cp[k:])
            if not ok:
                return self.status
            if cp:
                ch = cp[0]
                if ch not in "?:":
                    return self.error(f'"?" or ":" expected at: "...}}>>>{cp[:20]}"')
                cp = cp[1:]
        else:
            start = k
            pos = k
            while True:
                ws = len(cp[pos:]) - len(cp[pos:].lstrip(_WS))
                nxt = cp[pos + ws] if pos + ws < len(cp) else ""
                if nxt == "":
                    name, ch, cp = cp[start:pos], "", ""
                    break
                if nxt in "?:":
                    name, ch, cp = cp[start:pos], nxt, cp[pos + ws + 1:]
                    break
                if not _isalnum(cp[pos]):
                    return self.error(f'attribute name syntax error at: "...{buf[:pos]}>>>{buf[pos:pos + 20]}"')
                pos += 1
            lookup = self.lookup(name)
        if ch == "?":
            if _starts_curly(cp):
                payload, cp = self._curly(cp)
                if payload is None:
                    return self.status
                iftrue = payload
            else:
                iftrue, cp = cp, ""
            if lookup or self.scanning:
                self.status |= self.parse(iftrue)
            if cp == "":
                self.level -= 1
                return self.status
            if cp[0] != ":":
                return self.error(f'":" expected at: "...{iftrue}}}>>>{cp[:20]}"')
            cp = cp[1:]
            ch = ":"
        if ch == ":":
            if _starts_curly(cp):
                payload, cp = self._curly(cp)
                if payload is None:
                    return self.status
                iffalse = payload
            else:
                iffalse, cp = cp, ""
            if not lookup or self.scanning:
                self.status |= self.parse(iffalse)
            if cp:
                return self.error(f'unexpected input at: "...{iffalse}}}>>>{cp[:20]}"')
        elif lookup is None:
            self.status |= PARSE_UNDEF
        elif lookup == "" or self.scanning:
            pass
        elif self.recurse:
            self.status |= self.parse(lookup)
        else:
            self.result.append(lookup)
        self.level -= 1
        return self.status

    def _curly(self, cp: str) -> tuple[str | None, str]:
        """Balance ``{...}`` at the start of ``cp`` (after whitespace); skip trailing whitespace."""
        cp = cp.lstrip(_WS)
        depth = 1
        for j in range(1, len(cp)):
            if cp[j] == "{":
                depth += 1
            elif cp[j] == "}":
                depth -= 1
                if depth <= 0:
                    return cp[1:j], cp[j + 1:].lstrip(_WS)
        self.error(f'unbalanced {{}} in attribute expression: "{cp}"')
        return None, ""

    def _relational(self, cp: str) -> tuple[bool, str | None, str]:
        left, cp = self._curly(cp)
        if left is None:
            return False, None, cp
        op_len = len(cp) - len(cp.lstrip("<>!=?+-*/~&|%"))
        op = cp[:op_len]
        if op not in _OPS:
            self.error(f'{_OPS_ANY} expected at: "...{left}}}>>>{cp[:20]}"')
            return False, None, cp
        rest = cp[op_len:]
        suffix = ""
        if rest[:1] and rest[0].isascii() and rest[0].isalnum():
            k = 1
            while k < len(rest) and rest[k].isascii() and rest[k].isalnum():
                k += 1
            suffix, rest = rest[:k], rest[k:]
            if suffix not in _EXT_SUFFIXES:
                self.error(f'bad operator suffix at: "...{op}>>>{suffix}"')
                return False, None, rest
        if not _starts_curly(rest):
            self.error(f'"{{expression}}" expected at: "...{{{left}}} {cp[:op_len]}>>>{rest[:20]}"')
            return False, None, rest
        right, rest = self._curly(rest)
        if right is None:
            return False, None, rest
        lval, lstat = _run(left, self.lookup, self.recurse, self.scanning, self.warn)
        rval, rstat = _run(right, self.lookup, self.recurse, self.scanning, self.warn)
        self.status |= lstat | rstat
        result: bool | None = None
        if not self.scanning:
            result = self._evaluate(lval, _OPS[op], suffix, rval)
            if result is None:
                self.status |= PARSE_ERROR
        if self.status & PARSE_ERROR:
            return False, None, rest
        if self.scanning:
            return True, None, rest
        return True, (_TRUE if result else _FALSE), rest

    def _evaluate(self, left: str, op: str, suffix: str, right: str) -> bool | None:
        if suffix == "level":
            lv = compat_level(left, self.warn)
            if lv is None:
                return None
            rv = compat_level(right, self.warn)
            if rv is None:
                return None
            return _compare(lv - rv, op)
        if left.isascii() and right.isascii() and left.isdigit() and right.isdigit():
            return _compare(int(left) - int(right), op)
        lb, rb = left.encode(), right.encode()
        return _compare((lb > rb) - (lb < rb), op)


def _starts_curly(cp: str) -> bool:
    return cp.lstrip(_WS)[:1] == "{"


def _run(pattern: str, lookup: Lookup, recurse: bool, scanning: bool,
         warn: Warn | None) -> tuple[str, int]:
    ctx = _Context(lookup, recurse, scanning, warn)
    try:
        status = ctx.parse(pattern)
    except RecursionError:
        status = ctx.error(f'unreasonable macro call nesting: "{pattern}"')
    return "".join(ctx.result), status | ctx.status


def expand(pattern: str, lookup: Lookup, *, recurse: bool = True,
           warn: Warn | None = None) -> tuple[str, int]:
    """Expand ``$name`` in ``pattern``; return ``(text, status)``.

    ``lookup(name)`` gives a parameter's raw value or None when it is not
    defined. With ``recurse`` (the default, like Postfix's configuration
    code) looked-up values are expanded too. ``status`` has
    :data:`PARSE_ERROR` after a syntax error (reported through ``warn``) and
    :data:`PARSE_UNDEF` when some name had no value.

    >>> expand("${{$n} == {1} ? {one} : {other}}", {"n": "1"}.get)
    ('one', 0)
    >>> expand("$nosuch", {}.get)
    ('', 2)
    """
    return _run(pattern, lookup, recurse, False, warn)


def scan(pattern: str, visit: Callable[[str], None], *, warn: Warn | None = None) -> int:
    """Call ``visit(name)`` for every ``$name`` in ``pattern``, in every branch.

    This is Postfix's MAC_EXP_FLAG_SCAN mode, used by postconf to find the
    parameter names a value refers to. Returns the parse status.

    >>> names = []
    >>> scan("${a?{$b}:{$c}} ${{$d} == {x}}", names.append) & PARSE_ERROR
    0
    >>> names
    ['a', 'b', 'c', 'd']
    """
    def lookup(name: str) -> str | None:
        visit(name)
        return None
    return _run(pattern, lookup, False, True, warn)[1]
