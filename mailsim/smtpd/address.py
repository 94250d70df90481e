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

__all__ = ["extract_address", "split_argument", "tokenize822"]

_SPECIALS = set('()<>@,;:\\".[]')


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


def tokenize822(text: str) -> list[tuple[str, str]] | None:
    """RFC 822 tokens as ``(kind, value)``: atom, quoted, literal, or a special char.

    Comments are dropped. Returns None on an unterminated quote/literal/comment.
    """
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t":
            out.append(("space", " "))
            i += 1
        elif ch == '"':
            j, buf = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(text[j])
                j += 1
            if j >= n:
                return None
            out.append(("quoted", "".join(buf)))
            i = j + 1
        elif ch == "(":
            depth, j = 1, i + 1
            while j < n and depth:
                if text[j] == "\\":
                    j += 1
                elif text[j] == "(":
                    depth += 1
                elif text[j] == ")":
                    depth -= 1
                j += 1
            if depth:
                return None
            i = j
        elif ch == "[":
            j = text.find("]", i)
            if j < 0:
                return None
            out.append(("literal", text[i:j + 1]))
            i = j + 1
        elif ch in _SPECIALS:
            out.append((ch, ch))
            i += 1
        else:
            j = i
            while j < n and text[j] not in _SPECIALS and text[j] not in " \t":
                j += 1
            out.append(("atom", text[i:j]))
            i = j
    return out


def extract_address(token: str, *, strict: bool = False) -> tuple[str, str | None]:
    """Return ``(internal_address, problem)``; problem is None or ``"illegal"``."""
    if strict and not token.startswith("<"):
        return "", "illegal"
    inner = token
    if inner.startswith("<") and inner.endswith(">"):
        inner = inner[1:-1]
    toks = tokenize822(inner)
    if toks is None:
        return "", "illegal"
    # drop a source route: @a,@b:
    words = [t for t in toks if t[0] != "space"]
    if words and words[0][0] == "@" and any(t[0] == ":" for t in words):
        k = next(i for i, t in enumerate(toks) if t[0] == ":")
        toks = toks[k + 1:]
    # validity: no two words in a row, no doubled @, no stray specials
    prev = None
    parts: list[str] = []
    for kind, val in toks:
        if kind == "space":
            prev = prev if prev != "word" else "word-space"
            continue
        if kind in ("atom", "quoted", "literal"):
            if prev in ("word", "word-space"):
                return "", "illegal"
            prev = "word"
            parts.append(val)
        elif kind in ("@", "."):
            if kind == "@" and prev == "@":
                return "", "illegal"
            prev = kind
            parts.append(val)
        else:
            return "", "illegal"
    return "".join(parts), None
