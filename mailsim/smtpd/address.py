"""Address extraction from MAIL FROM / RCPT TO, as Postfix's smtpd does it.

Postfix parses the address argument with its RFC 822 tokenizer, so it accepts
more than RFC 5321 allows (``MAIL FROM:alice@example.com`` without brackets,
a space after the colon) unless ``strict_rfc821_envelopes = yes``. The address
is then used in *internal* (unquoted) form: ``<"a@b"@c>`` becomes ``a@b@c``,
and a source route ``<@relay:user@domain>`` is dropped.

Examples
--------
>>> extract_address("<alice@example.com>")
('alice@example.com', None)
>>> extract_address('<"user@other.org"@mail.example.com>')
('user@other.org@mail.example.com', None)
>>> extract_address("<@mail.example.com:user@other.org>")
('user@other.org', None)
>>> extract_address("<alice@@example.com>")[1]
'illegal'
>>> extract_address("alice@example.com", strict=True)[1]
'illegal'
"""
from __future__ import annotations

from ..maps.tok822 import ATOM, COMMENT, DOMLIT, QSTRING, scan

__all__ = ["extract_address", "split_argument"]



def split_argument(arg: str) -> tuple[str | None, str]:
    """Split ``<addr> PARAM=x ...`` into the address token and the rest.

    Returns ``(None, rest)`` when a ``<`` is never closed (Postfix's tokenizer
    error). The address token keeps its brackets.
    """
    s = arg.lstrip(" \t")
    if s.startswith("<"):
        i, depth, quoted = 0, 0, False
        while i < len(s):
            ch = s[i]
            if quoted:
                if ch == "\\":
                    i += 1
                elif ch == '"':
                    quoted = False
            elif ch == '"':
                quoted = True
            elif ch == "\\":
                i += 1
            elif ch == "<":
                depth += 1
            elif ch == ">":
                depth -= 1
                if depth == 0:
                    # anything glued to the ">" belongs to the same token ("<a@b>junk")
                    j = i + 1
                    while j < len(s) and s[j] not in " \t":
                        j += 1
                    return s[:j], s[j:]
            i += 1
        return None, ""
    tok, _, rest = s.partition(" ")
    return tok, rest


def extract_address(token: str, *, strict: bool = False) -> tuple[str, str | None]:
    """Return ``(internal_address, problem)``; problem is None or ``"illegal"``.

    The token is split with Postfix's RFC 822 scanner (:mod:`mailsim.maps.tok822`,
    shared with postalias): comments are dropped, a source route ``@a,@b:`` is
    removed, and what is left must be one address -- no two words side by side
    (``a b@x``), no doubled ``@``, no other specials.
    """
    if strict and not token.startswith("<"):
        return "", "illegal"
    inner = token[1:-1] if token.startswith("<") and token.endswith(">") else token
    if _unbalanced(inner):
        return "", "illegal"
    toks = [t for t in scan(inner) if t.type != COMMENT]
    if toks and toks[0].type == "@" and any(t.type == ":" for t in toks):
        toks = toks[next(i for i, t in enumerate(toks) if t.type == ":") + 1:]
    prev = None
    parts: list[str] = []
    for t in toks:
        if t.type in (ATOM, QSTRING, DOMLIT):
            if prev == "word":
                return "", "illegal"       # two words side by side: "a b@example.com"
            prev = "word"
            parts.append(f"[{t.text}]" if t.type == DOMLIT else t.text)
        elif t.type in ("@", "."):
            if t.type == "@" and prev == "@":
                return "", "illegal"       # "alice@@example.com"
            prev = t.type
            parts.append(t.type)
        elif t.type in ("%", "!", "|"):
            prev = t.type                  # routing operators are part of the local part
            parts.append(t.type)
        else:
            return "", "illegal"
    return "".join(parts), None


def _unbalanced(text: str) -> bool:
    """An unterminated quoted string, domain literal or comment."""
    quoted = False
    depth = 0
    literal = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if quoted:
            quoted = ch != '"'
        elif literal:
            literal = ch != "]"
        elif ch == '"':
            quoted = True
        elif ch == "[":
            literal = True
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        i += 1
    return quoted or literal or depth > 0
