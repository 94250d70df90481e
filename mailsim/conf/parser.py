"""Reading main.cf: logical lines and ``name = value`` pairs.

Models Postfix's ``readllines()`` (util/readlline.c), ``split_nameval()``
(util/split_nameval.c) and ``dict_load_fp()`` (util/dict.c), the code every
Postfix program uses to read main.cf (postconf(5), "SYNTAX"):

* A logical line starts with a non-whitespace character. A line that starts
  with whitespace continues the logical line before it; the physical lines
  are joined as they are (the newline goes, the leading whitespace stays).
* Comment lines (``#`` after optional whitespace), blank and empty lines are
  skipped and do not end a logical line. A ``#`` later in a line is text.
* ``name = value``: whitespace around ``=`` and at the end is removed. A
  missing ``=`` or name is fatal; Postfix says ``FILE, line N: missing '='
  after attribute name: "TEXT"`` (N is the first line of the logical line).
* Continuation text with nothing before it is skipped with a warning
  (``logical line must not start with whitespace``), not an error.
* A later definition of the same name wins, with a warning when the value
  differs (``overriding earlier entry``).

Nothing here is trusted beyond being text; nothing is expanded.

>>> p = parse_main_cf("# c\\nmydestination = a,\\n  b\\nrelayhost=[x]  \\n")
>>> [(e.name, e.value, e.line) for e in p.entries]
[('mydestination', 'a,  b', 2), ('relayhost', '[x]', 4)]
>>> try:
...     parse_main_cf("relayhost [mail.isp.net]\\n")
... except ConfigError as e:
...     print(e)
/etc/postfix/main.cf, line 1: missing '=' after attribute name: "relayhost [mail.isp.net]" -- write it as "name = value", e.g. "relayhost = [mail.isp.net]"
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

__all__ = ["ConfigError", "Entry", "ParsedMain", "logical_lines", "split_nameval",
           "parse_main_cf", "printable", "MAIN_CF"]

#: Where main.cf lives on the simulated server (used in messages).
MAIN_CF = "/etc/postfix/main.cf"

_SPACE = " \t\r\n\v\f"


class ConfigError(Exception):
    """A configuration problem that Postfix treats as fatal.

    ``message`` keeps Postfix's own wording; ``hint`` is mailsim's advice on
    how to fix it. ``str(e)`` is ``"FILE, line N: MESSAGE -- HINT"`` (the line
    part only when known, the hint part only when there is one).

    >>> str(ConfigError("/etc/postfix/main.cf", 3, "missing attribute name: \\"= x\\"",
    ...                 "put the parameter name before '='"))
    '/etc/postfix/main.cf, line 3: missing attribute name: "= x" -- put the parameter name before \\'=\\''
    """

    def __init__(self, file: str, line: int | None, message: str, hint: str = "", *,
                 postfix: str | None = None) -> None:
        self.file = file
        self.line = line
        self.message = message
        self.hint = hint
        self._postfix = postfix
        super().__init__(self.__str__())

    @property
    def postfix_text(self) -> str:
        """The text Postfix itself prints after ``fatal:`` (without mailsim's hint).

        Usually ``FILE, line N: MESSAGE``; some Postfix messages are worded
        differently (``file FILE: line N: bad field count``), given as ``postfix``.
        """
        if self._postfix is not None:
            return self._postfix
        where = self.file if self.line is None else f"{self.file}, line {self.line}"
        return f"{where}: {self.message}" if where else self.message

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}, line {self.line}"
        text = f"{where}: {self.message}" if where else self.message
        return text + (f" -- {self.hint}" if self.hint else "")



@dataclass(frozen=True)
class Entry:
    """One ``name = value`` of main.cf; ``line`` is where its logical line starts."""
    name: str
    value: str
    line: int


@dataclass
class ParsedMain:
    """Result of :func:`parse_main_cf`: entries in file order, and warnings."""
    entries: list[Entry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def printable(text: str) -> str:
    """Replace control characters by ``?``, as Postfix's logging does.

    >>> printable("a\\tb")
    'a?b'
    """
    return "".join("?" if (ord(c) < 32 or ord(c) == 127) else c for c in text)


def logical_lines(text: str, filename: str = MAIN_CF,
                  warnings: list[str] | None = None) -> Iterator[tuple[int, str]]:
    """Yield ``(first_line_number, logical_line)`` like Postfix's readllines().

    >>> list(logical_lines("a = 1\\n# x\\n\\n  2\\nb = 3"))
    [(1, 'a = 1  2'), (5, 'b = 3')]
    >>> w = []
    >>> list(logical_lines("  lost\\nb = 3\\n", warnings=w)), w
    ([(2, 'b = 3')], ['/etc/postfix/main.cf: logical line must not start with whitespace: "  lost"'])
    """
    cur: list[str] = []
    first = 0
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        stripped = line.strip(_SPACE)
        if not stripped or stripped.startswith("#"):
            continue
        if line[0] in _SPACE and cur:
            cur.append(line)
            continue
        if cur:
            yield from _finish(first, cur, filename, warnings)
        cur, first = [line], number
    if cur:
        yield from _finish(first, cur, filename, warnings)


def _finish(first: int, parts: list[str], filename: str,
            warnings: list[str] | None) -> Iterator[tuple[int, str]]:
    text = "".join(parts)
    if text[0] not in _SPACE:
        yield first, text
    elif warnings is not None:
        shown = text[:30] + ("..." if len(text) > 30 else "")
        warnings.append(f'{filename}: logical line must not start with whitespace: "{shown}"')


def split_nameval(text: str) -> tuple[str, str]:
    """Split ``name = value``; raise ValueError with Postfix's message.

    >>> split_nameval("  myhostname =  mail.example.com  ")
    ('myhostname', 'mail.example.com')
    >>> split_nameval("a b = c")
    Traceback (most recent call last):
    ...
    ValueError: missing '=' after attribute name
    """
    s = text.lstrip(_SPACE)
    if not s or s[0] == "=":
        raise ValueError("missing attribute name")
    m = re.match(r"[^\s=]+", s)
    assert m is not None
    name, rest = m.group(0), s[m.end():].lstrip(_SPACE)
    if not rest.startswith("="):
        raise ValueError("missing '=' after attribute name")
    return name, rest[1:].strip(_SPACE)


def _hint(err: str, text: str) -> str:
    if err == "missing attribute name":
        return "put the parameter name before '=', as in \"name = value\""
    words = text.split(None, 1)
    example = f', e.g. "{words[0]} = {words[1]}"' if len(words) == 2 and "=" not in text else ""
    return f'write it as "name = value"{example}'


def parse_main_cf(text: str, filename: str = MAIN_CF) -> ParsedMain:
    """Parse main.cf text into entries (all of them, duplicates included).

    Raises :class:`ConfigError` for a line Postfix refuses (its programs stop
    with ``fatal:``); collects Postfix's warnings in ``.warnings``.

    >>> p = parse_main_cf("myhostname = a\\nmyhostname = b\\n")
    >>> p.warnings
    ['/etc/postfix/main.cf, line 2: overriding earlier entry: myhostname=a']
    """
    out = ParsedMain()
    seen: dict[str, str] = {}
    for number, line in logical_lines(text, filename, out.warnings):
        line = line.split("\0", 1)[0]          # Postfix handles the line as a C string
        try:
            name, value = split_nameval(line)
        except ValueError as e:
            raise ConfigError(filename, number, f'{e}: "{line}"', _hint(str(e), line)) from None
        old = seen.get(name)
        if old is not None and old != value:
            out.warnings.append(f"{filename}, line {number}: overriding earlier entry: {name}={old}")
        seen[name] = value
        out.entries.append(Entry(name, value, number))
    return out


def brace_tokens(value: str, separators: str):
    """util/mystrtok.c mystrtokq(): split on ``separators`` outside ``{...}`` groups.

    Braces stay in the tokens; the callers decide what to strip.

    >>> list(brace_tokens("a, {b c} regexp:{{/x/ y}}", ", "))
    ['a', '{b c}', 'regexp:{{/x/ y}}']
    """
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in separators:
            i += 1
        if i >= n:
            return
        start, depth = i, 0
        while i < n:
            c = value[i]
            if c == "{":
                depth += 1
            elif depth > 0 and c == "}":
                depth -= 1
            elif depth == 0 and c in separators:
                break
            i += 1
        yield value[start:i]
