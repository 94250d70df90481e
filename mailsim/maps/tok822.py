"""RFC 822 tokens, as postalias uses them to read aliases(5) lines.

Models the parts of Postfix's ``src/global/tok822_parse.c`` that
``postalias`` needs: ``tok822_scan`` (split text into atoms, quoted
strings, comments, domain literals and operators), ``tok822_internalize``
(the key: quotes removed) and ``tok822_externalize`` (the value: quoted where
needed, a space after each comma). That is why ``staff: peter,gerda`` is
stored as ``peter, gerda`` and ``\\root`` as ``root``.

Operators are ``|``, ``%``, ``!`` and the RFC 822 specials ``()<>@,;:\\".[]``;
inside quoted strings, domain literals and backslash escapes, space, tab, CR
and LF all become a plain space.

Examples
--------
>>> externalize(scan('b,c ,  d'))
'b, c, d'
>>> externalize(scan('"|/usr/bin/prog arg1  arg2", user'))
'"|/usr/bin/prog arg1  arg2", user'
>>> externalize(scan('Full Name <fn@example.com>'))
'Full Name <fn@example.com>'
>>> externalize(scan(r'\\root, a\\,b'))
'root, "a,b"'
>>> internalize(scan('"quoted name"'))
'quoted name'
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Token", "scan", "internalize", "externalize", "ATOM", "QSTRING", "COMMENT", "DOMLIT"]

ATOM, QSTRING, COMMENT, DOMLIT = "atom", "qstring", "comment", "domlit"
SPECIALS = '()<>@,;:\\".[]'
OPCHARS = "|%!" + SPECIALS
_SPACE_TAB_CR_LF = " \t\r\n"


@dataclass
class Token:
    type: str       # ATOM, QSTRING, COMMENT, DOMLIT, or the operator character itself
    text: str = ""

    @property
    def operator(self) -> bool:
        return self.type not in (ATOM, QSTRING, COMMENT, DOMLIT)


def _collect(s: str, i: int, stop) -> tuple[str, int]:
    """COLLECT: characters until ``stop(ch)``; backslash escapes the next one."""
    out = []
    n = len(s)
    while i < n:
        ch = s[i]
        if ch == "\\":
            i += 1
            if i >= n:
                break
            ch = s[i]
        elif stop(ch):
            break
        out.append(" " if ch in _SPACE_TAB_CR_LF else ch)
        i += 1
    return "".join(out), i


def _comment(s: str, i: int) -> tuple[str, int]:
    """A (possibly nested) comment, kept in external form with its parentheses."""
    out = ["("]
    level, n = 1, len(s)
    while i < n:
        ch = s[i]
        out.append(ch)
        i += 1
        if ch == "(":
            level += 1
        elif ch == ")":
            level -= 1
            if level == 0:
                break
        elif ch == "\\":
            if i >= n:
                break
            out.append(s[i])
            i += 1
    return "".join(out), i


def _needs_quotes(text: str) -> bool:
    return any(ch == " " or ord(ch) < 32 or ord(ch) == 127 or ch in OPCHARS for ch in text)


def scan(s: str) -> list[Token]:
    """Split ``s`` into tokens (``tok822_scan``)."""
    toks: list[Token] = []
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        i += 1
        if ch in _SPACE_TAB_CR_LF:
            continue
        if ch == "(":
            text, i = _comment(s, i)
            toks.append(Token(COMMENT, text))
        elif ch == "[":
            text, i = _collect(s, i, lambda c: c == "]")
            i += 1 if i < n else 0
            toks.append(Token(DOMLIT, text))
        elif ch == '"':
            text, i = _collect(s, i, lambda c: c == '"')
            i += 1 if i < n else 0
            toks.append(Token(QSTRING, text))
        elif ch != "\\" and ch in OPCHARS:
            toks.append(Token(ch))
        else:
            text, i = _collect(s, i - 1, lambda c: c in _SPACE_TAB_CR_LF or c in OPCHARS)
            toks.append(Token(QSTRING if _needs_quotes(text) else ATOM, text))
    return toks


def _space_after(toks: list[Token], k: int) -> bool:
    if k + 1 >= len(toks):
        return False
    t, nxt = toks[k], toks[k + 1]
    if t.type == "," or nxt.type == "<":
        return True
    return not t.operator and not nxt.operator


def internalize(toks: list[Token]) -> str:
    """Tokens back to text, unquoted (``tok822_internalize``)."""
    out = []
    for k, t in enumerate(toks):
        if t.type == DOMLIT:
            out.append("[" + t.text + "]")
        elif t.operator:
            out.append(t.type)
        else:
            out.append(t.text)
        if _space_after(toks, k):
            out.append(" ")
    return "".join(out)


def _quoted(text: str, quote_set: str) -> str:
    return "".join("\\" + ch if ch in quote_set else ch for ch in text)


def externalize(toks: list[Token]) -> str:
    """Tokens back to text, quoted where needed (``tok822_externalize``)."""
    out = []
    for k, t in enumerate(toks):
        if t.type == ",":
            out.append(", ")
            continue
        if t.type in (ATOM, COMMENT):
            out.append(t.text)
        elif t.type == QSTRING:
            out.append('"' + _quoted(t.text, '"\\\r\n') + '"')
        elif t.type == DOMLIT:
            out.append("[" + _quoted(t.text, "\\\r\n") + "]")
        else:
            out.append(t.type)
        if _space_after(toks, k):
            out.append(" ")
    return "".join(out)
