"""Tables without a compiled file: ``texthash:``, ``inline:``, ``static:``, ``fail:``.

Models ``src/util/dict_thash.c``, ``dict_inline.c``, ``dict_static.c`` and
``dict_fail.c``:

* ``texthash:FILE`` reads the postmap-format source itself when opened (no
  ``.db``); a line without a value is skipped with ``expected format: key
  whitespace value -- ignoring this line``. A duplicate key warns only when
  the opener asked for warnings (postmap); a daemon opens texthash without
  duplicate handling, and Postfix then refuses the whole table (``FILE,
  line N: duplicate entry: "key"``) -- reproduced here.
* ``inline:{ key=value, { key = text with spaces } }`` -- a later key
  replaces an earlier one; bad syntax makes the table unusable with Postfix's
  ``need "inline:{name=value...}"`` message.
* ``static:value`` / ``static:{ text with spaces }`` answers every key.
* ``fail:NAME`` fails every lookup (Postfix logs nothing itself).

Examples
--------
>>> m = open_inline("{ a=1, { b = two words }, C=3 }")
>>> m.lookup("A"), m.lookup("b"), m.lookup("c"), m.lookup("d")
('1', 'two words', '3', None)
>>> open_static("{ 550 no thanks }").lookup("anything")
'550 no thanks'
>>> open_inline("{}").reason
'bad syntax: "inline:{}"; need "inline:{name=value...}"'
"""
from __future__ import annotations

from pathlib import Path

from .base import DAEMON_FLAGS, Map, MapError, OpenFlags, SurrogateMap
from .source import (CHARS_BRACE, CHARS_COMMA_SP, ISSPACE, UnbalancedQuote, balpar, extpar,
                     logical_lines, mystrtokq, split_key_value)

__all__ = ["DictMap", "StaticMap", "FailMap", "open_inline", "open_static", "open_texthash",
           "split_qnameval"]


class DictMap(Map):
    """An in-memory fixed-string table (Postfix's ``internal`` dict_ht)."""

    fixed = True

    def __init__(self, type_: str, name: str, flags: OpenFlags = DAEMON_FLAGS) -> None:
        super().__init__(type_, name, flags)
        self.table: dict[str, str] = {}

    def put(self, key: str, value: str) -> None:
        self.table[key.lower() if self.flags.fold else key] = value

    def _lookup(self, key: str) -> str | None:
        return self.table.get(key)

    def sequence(self):
        return iter(list(self.table.items()))

    def describe(self) -> str:
        n = len(self.table)
        return f"{self.spec} ({n} {'entry' if n == 1 else 'entries'})"


class StaticMap(Map):
    fixed = False

    def __init__(self, name: str, value: str, flags: OpenFlags = DAEMON_FLAGS) -> None:
        super().__init__("static", name, flags)
        self.value = value

    def _lookup(self, key: str) -> str | None:
        return self.value

    def describe(self) -> str:
        return f"{self.spec} (always {self.value!r})"


class FailMap(Map):
    fixed = False

    def _lookup(self, key: str) -> str | None:
        raise MapError(self.spec, "", "Application error")

    def describe(self) -> str:
        return f"{self.spec} (fails every lookup)"


def split_qnameval(s: str) -> tuple[str, str]:
    """``key = value`` with an optionally quoted key; ValueError with Postfix's reason."""
    i = 0
    while i < len(s) and s[i] in ISSPACE:
        i += 1
    if i >= len(s):
        raise ValueError("no key found; expected format: key = value")
    key_start, in_quotes = i, False
    while i < len(s):
        ch = s[i]
        if ch == "\\":
            i += 1
            if i >= len(s):
                break
        elif ch in ISSPACE or ch == "=":
            if not in_quotes:
                break
        elif ch == '"':
            in_quotes = not in_quotes
        i += 1
    if in_quotes:
        raise ValueError("unbalanced '\"'")
    key = s[key_start:i]
    j = i
    while j < len(s) and s[j] in ISSPACE:
        j += 1
    if j >= len(s) or s[j] != "=":
        raise ValueError("missing '=' after attribute name")
    return key, s[j + 1:].strip(ISSPACE)


def open_inline(name: str, flags: OpenFlags = DAEMON_FLAGS) -> Map:
    """``inline:{...}``: a DictMap, or a SurrogateMap with Postfix's complaint."""
    need = 'need "inline:{name=value...}"'
    ln = balpar(name, CHARS_BRACE)
    if ln == 0 or ln != len(name) or name[1:ln - 1] == "":
        return SurrogateMap("inline", name, f'bad syntax: "inline:{name}"; {need}', flags=flags)
    m = DictMap("inline", name, flags)
    rest = name[1:ln - 1]
    err = None
    count = 0
    while True:
        tok, rest = mystrtokq(rest, CHARS_COMMA_SP, CHARS_BRACE)
        if tok is None:
            break
        if tok.startswith("{"):
            tok, err = extpar(tok, CHARS_BRACE, strip=True)
            if err:
                break
        try:
            k, v = split_qnameval(tok)
        except ValueError as e:
            err = str(e)
            break
        m.put(k, v)
        count += 1
    if err is not None or count == 0:
        return SurrogateMap("inline", name,
                            f'{err or "empty table"}: "inline:{name}"; {need}', flags=flags)
    return m


def open_static(name: str, flags: OpenFlags = DAEMON_FLAGS) -> Map:
    value = name
    if name.startswith("{"):
        value, err = extpar(name, CHARS_BRACE, strip=True)
        if err:
            return SurrogateMap("static", name, f"bad static:name syntax: {err}", flags=flags)
    return StaticMap(name, value, flags)


def open_texthash(name: str, path: Path, flags: OpenFlags = DAEMON_FLAGS) -> Map:
    """``texthash:FILE``: read the source now, like postmap would build it."""
    try:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError as e:
        from .base import errno_text
        return SurrogateMap("texthash", name, f"open database {name}: {errno_text(e)}",
                            watch=[path], flags=flags)
    m = DictMap("texthash", name, flags)
    m._watch(path)
    for lineno, line in logical_lines(text, name, m.warn):
        try:
            key, value = split_key_value(line)
        except UnbalancedQuote:
            m.warn(f"{name}, line {lineno}: unbalanced '\"' in '{line}' -- ignoring this line")
            continue
        if not key or not value:
            m.warn(f"{name}, line {lineno}: expected format: key whitespace value"
                   " -- ignoring this line")
            continue
        if key.endswith(":"):
            m.warn(f'{name}, line {lineno}: record is in "key: value" format; '
                   "is this an alias file?")
        if m.lookup(key) is not None:
            if flags.dup == "ignore":
                pass
            elif flags.dup == "replace":
                m.put(key, value)
            elif flags.dup == "warn":
                m.warn(f'{name}, line {lineno}: duplicate entry: "{key}"')
            else:
                s = SurrogateMap("texthash", name, f'{name}, line {lineno}: duplicate entry: "{key}"',
                                 watch=[path], flags=flags)
                s.messages[:0] = m.messages
                return s
        else:
            m.put(key, value)
    return m
