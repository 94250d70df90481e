"""Reading table source text the way Postfix does.

Models ``src/util/readlline.c`` (logical lines), the ``key whitespace value``
split shared by ``postmap.c`` and ``dict_thash.c``, and the small string
helpers behind ``inline:``/``static:`` and ``regexp:{...}`` names
(``balpar.c``, ``extpar.c``, ``mystrtok.c``'s ``mystrtokq``,
``dict_stream.c``'s inline-to-multiline conversion).

Logical lines (readllines):

* empty lines, whitespace-only lines and lines whose first non-blank
  character is ``#`` are dropped -- even between a line and its continuation;
* a line that starts with whitespace continues the previous one (the newline
  is dropped, the leading whitespace is kept);
* text that starts with whitespace at the top of a logical line is skipped
  with ``logical line must not start with whitespace``;
* a warning names the *first* physical line of the logical line.

Examples
--------
>>> msgs = []
>>> list(logical_lines("a x\\n  # note\\n\\tmore\\n# c\\nb y\\n", "virtual", msgs.append))
[(1, 'a x\\tmore'), (5, 'b y')]
>>> split_key_value('info@sue.nl     gerda  ')
('info@sue.nl', 'gerda')
>>> split_key_value('"a b" c')
('"a b"', 'c')
>>> inline_to_lines("{{/^[^A-Z]/ Bogus}}")
['/^[^A-Z]/ Bogus']
>>> mystrtokq("{ a = 1 }, b=2", ", \\t\\r\\n", "{}")
('{ a = 1 }', ' b=2')
"""
from __future__ import annotations

from typing import Callable, Iterator

__all__ = ["ISSPACE", "logical_lines", "split_key_value", "balpar", "extpar", "mystrtokq",
           "inline_to_lines", "CHARS_COMMA_SP", "CHARS_BRACE", "UnbalancedQuote"]

#: C isspace() in the C locale
ISSPACE = " \t\n\v\f\r"
CHARS_COMMA_SP = ", \t\r\n"
CHARS_BRACE = "{}"


def _isspace(ch: str) -> bool:
    return ch != "" and ch in ISSPACE


def logical_lines(text: str, path: str, warn: Callable[[str], None]) -> Iterator[tuple[int, str]]:
    """Yield ``(first_line_number, logical_line)`` pairs of ``text``.

    ``path`` names the stream in warnings (Postfix's ``VSTREAM_PATH``);
    ``warn`` receives each warning's text.
    """
    pos = 0
    n = len(text)
    lineno = 0
    while True:
        buf = ""
        first = 0
        while True:
            nl = text.find("\n", pos)
            if nl < 0:
                line, pos, eof_hit = text[pos:], n, True
                ended = False
            else:
                line, pos, eof_hit = text[pos:nl], nl + 1, False
                ended = True
            if ended or line:
                lineno += 1
            stripped = line.lstrip(ISSPACE)
            if stripped == "" or stripped.startswith("#"):
                pass  # comment, empty or blank line: dropped
            else:
                if buf == "":
                    first = lineno
                buf += line
            if eof_hit or pos >= n:
                break
            if buf:
                nxt = text[pos]
                if nxt != "#" and not _isspace(nxt):
                    break
        if buf and _isspace(buf[0]):
            warn(f'{path}: logical line must not start with whitespace: '
                 f'"{buf[:30]}{"..." if len(buf) > 30 else ""}"')
            if pos >= n:
                return
            continue
        if buf:
            yield first, buf
        if pos >= n:
            return


class UnbalancedQuote(ValueError):
    """A key with an odd number of unescaped double quotes."""


def split_key_value(line: str) -> tuple[str, str]:
    """Split a postmap/texthash logical line into key and value.

    The key ends at the first whitespace outside double quotes (a backslash
    escapes the next character); the key keeps its quotes. The value loses
    surrounding whitespace. Raises :class:`UnbalancedQuote`.
    """
    in_quotes = False
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch == "\\":
            i += 1
            if i >= n:
                break
        elif _isspace(ch):
            if not in_quotes:
                break
        elif ch == '"':
            in_quotes = not in_quotes
        i += 1
    if in_quotes:
        raise UnbalancedQuote(line)
    key = line[:i]
    value = line[i + 1:] if i < n else ""
    return key, value.strip(ISSPACE)


def balpar(s: str, parens: str) -> int:
    """Length of the balanced ``parens`` group at the start of ``s``, 0 if none."""
    if not s or s[0] != parens[0]:
        return 0
    level = 1
    for i in range(1, len(s)):
        if s[i] == parens[1]:
            level -= 1
            if level == 0:
                return i + 1
        elif s[i] == parens[0]:
            level += 1
    return 0


def extpar(s: str, parens: str, strip: bool) -> tuple[str, str | None]:
    """Remove the outer ``parens`` of ``s``: (inner text, error or None)."""
    err = None
    if not s or s[0] != parens[0]:
        err = f"no '{parens[0]}' at start of text in \"{s}\""
        inner = s
    else:
        ln = balpar(s, parens)
        if ln == 0:
            err = f"missing '{parens[1]}' in \"{s}\""
            inner = s[1:]
        else:
            if ln < len(s):
                err = f"syntax error after '{parens[1]}' in \"{s}\""
            inner = s[1:ln - 1]
    if strip:
        inner = inner.strip(ISSPACE)
    return inner, err


def mystrtokq(src: str, sep: str, parens: str) -> tuple[str | None, str]:
    """Next token of ``src`` split at ``sep`` outside ``parens``: (token, rest)."""
    i = 0
    while i < len(src) and src[i] in sep:
        i += 1
    if i >= len(src):
        return None, ""
    start, level = i, 0
    while i < len(src):
        ch = src[i]
        if ch == parens[0]:
            level += 1
        elif level > 0 and ch == parens[1]:
            level -= 1
        elif level == 0 and ch in sep:
            return src[start:i], src[i + 1:]
        i += 1
    return src[start:], ""


def inline_to_lines(name: str) -> list[str]:
    """The rule lines of an inline pattern table name ``{ {rule} {rule} }``.

    Raises ValueError with Postfix's message when the syntax is wrong.
    """
    inner, err = extpar(name, CHARS_BRACE, strip=False)
    lines: list[str] = []
    rest = inner
    while err is None:
        tok, rest = mystrtokq(rest, CHARS_COMMA_SP, CHARS_BRACE)
        if tok is None:
            break
        rule, err = extpar(tok, CHARS_BRACE, strip=True)
        if err is None:
            lines.append(rule)
    if err is not None:
        raise ValueError(err)
    return lines
