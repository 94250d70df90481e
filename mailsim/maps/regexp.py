"""Pattern tables: ``regexp:`` and ``pcre:`` (Postfix's dict_regexp and dict_pcre).

Models ``src/util/dict_regexp.c`` and ``dict_pcre.c`` (regexp_table(5),
pcre_table(5)):

* a rule is ``/pattern/flags result``; any non-alphanumeric character may
  delimit the pattern; ``!/pattern/`` matches when the pattern does not;
  regexp: also ``/pattern1/!/pattern2/`` (match 1 and not 2);
* ``if /pattern/`` ... ``endif`` blocks, nestable; ``IF``/``ENDIF`` in any case;
* matching is case-insensitive by default; the flag ``i`` *toggles* that
  (``/^Bob/i`` is case-sensitive). regexp flags: ``i m x`` (``x`` turns POSIX
  extended syntax *off*); pcre flags: ``i m s x A E U X``;
* ``$1``, ``${1}``, ``$(1)`` in the result are replaced by the matched
  substrings (an unmatched group gives nothing), ``$$`` is a ``$``;
* the first matching rule wins; broken rules are skipped with Postfix's
  warnings, kept in :attr:`Map.messages` (``warning: regexp map FILE, line
  N: ...``), logged when a daemon opens the table and printed by postmap;
* the name may be a file or an inline list of rules ``{ {rule} {rule} }``,
  as in the default ``smtpd_forbidden_commands = CONNECT GET POST
  regexp:{{/^[^A-Z]/ Bogus}}`` (one rule ``/^[^A-Z]/ Bogus``: a command that
  does not start with a letter -- case-insensitive, so ``[^A-Z]`` also
  excludes a-z, as with glibc's REG_ICASE);
* the lookup key is not case-folded (pattern tables see it as it is).

regexp uses glibc's POSIX regex; mailsim translates it (see
:mod:`mailsim.maps.posix_re` for what differs). pcre tables use Python's
``re``, which is close to PCRE for what mail tables use; a pattern Python
cannot compile is skipped with ``error in regex at offset N: <Python's
message>`` (PCRE2's own wording differs). ``U`` (ungreedy) and ``E`` are
not supported and are ignored.

Examples
--------
>>> m = PatternMap("regexp", "{{/^[^A-Z]/ Bogus}}", text=None)
>>> m.lookup("GET"), m.lookup("connect"), m.lookup("\\x16\\x03")
(None, None, 'Bogus')
>>> m = PatternMap("regexp", "/etc/postfix/canonical", text=r'''
... /^(.*)@example\\.com$/   ${1}@example.org
... if !/^postmaster@/
... /^(.*)@old\\.example$/   $1@new.example
... endif
... ''')
>>> m.lookup("Alice@example.com"), m.lookup("bob@OLD.example"), m.lookup("postmaster@old.example")
('Alice@example.org', 'bob@new.example', None)
>>> m = PatternMap("regexp", "x", text="/(a/ bad\\n/^Bob/i only-Bob\\n")
>>> m.messages
['warning: regexp map x, line 1: Unmatched ( or \\\\(']
>>> m.lookup("bob"), m.lookup("Bob")
(None, 'only-Bob')
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .base import DAEMON_FLAGS, Map, OpenFlags
from .posix_re import RegexError, compile_posix
from .source import ISSPACE, logical_lines

__all__ = ["PatternMap", "parse_replacement"]


@dataclass
class _Rule:
    op: str                                   # "match", "if", "endif"
    lineno: int
    expr: re.Pattern[str] | None = None
    match: bool = True
    expr2: re.Pattern[str] | None = None
    match2: bool = True
    parts: list[str | int] = field(default_factory=list)
    max_sub: int = 0
    endif: int | None = None                  # index of the matching endif rule
    anchored: bool = False


def _isalnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def parse_replacement(text: str, warn: Callable[[str], None], kind: str, mapname: str,
                      lineno: int) -> tuple[list[str | int], int] | None:
    """Split a result into literal text and ``$n`` references (Postfix's mac_parse + prescan).

    Returns (parts, highest $n) or None when the result is unusable (after
    printing Postfix's warnings through ``warn``).
    """
    parts: list[str | int] = []
    lit: list[str] = []
    error = False
    max_sub = 0
    i, n = 0, len(text)
    oor = "out-of-range" if kind == "regexp" else "out of range"
    while i < n:
        ch = text[i]
        if ch != "$":
            lit.append(ch)
            i += 1
            continue
        if i + 1 < n and text[i + 1] == "$":
            lit.append("$")
            i += 2
            continue
        if lit:
            parts.append("".join(lit))
            lit = []
        i += 1
        if i < n and text[i] in "({":
            close = ")" if text[i] == "(" else "}"
            opener = text[i]
            level, j = 1, i + 1
            while level > 0:
                if j >= n:
                    warn(f'truncated macro reference: "{text}"')
                    return None
                if text[j] == opener:
                    level += 1
                if text[j] == close:
                    level -= 1
                j += 1
            name = text[i + 1:j - 1]
            i = j
        else:
            j = i
            while j < n and (_isalnum(text[j]) or text[j] == "_"):
                j += 1
            name = text[i:j]
            i = j
        if name == "":
            warn(f'empty macro name: "{text}"')
            return None
        if not name.isdigit() or not name.isascii():
            warn(f'{kind} map {mapname}, line {lineno}: non-numeric replacement index "{name}"')
            error = True
            continue
        num = int(name)
        if num < 1:
            warn(f'{kind} map {mapname}, line {lineno}: {oor} replacement index "{name}"')
            error = True
            continue
        max_sub = max(max_sub, num)
        parts.append(num)
    if lit and not error:
        parts.append("".join(lit))
    if error:
        return None
    return parts, max_sub


class PatternMap(Map):
    """A ``regexp:`` or ``pcre:`` table, compiled at open.

    ``text`` is the file's content, or None for an inline ``{...}`` name.
    """

    fixed = False

    def __init__(self, type_: str, name: str, text: str | None,
                 flags: OpenFlags = DAEMON_FLAGS, path: Path | None = None) -> None:
        super().__init__(type_, name, flags)
        self.kind = type_
        self.rules: list[_Rule] = []
        if path is not None:
            self._watch(path)
        if text is None:
            from .source import inline_to_lines
            text = "".join(line + "\n" for line in inline_to_lines(name))
        self._parse(text)

    # -- parsing ------------------------------------------------------------------------------
    def _w(self, lineno: int, text: str) -> None:
        self.warn(f"{self.kind} map {self.name}, line {lineno}: {text}")

    def _parse(self, text: str) -> None:
        stack: list[int] = []
        for lineno, line in logical_lines(text, self.name, self.warn):
            line = line.rstrip(ISSPACE)
            if not line:
                continue
            rule = self._parse_line(lineno, line, len(stack))
            if rule is None:
                continue
            if rule.op == "if":
                stack.append(len(self.rules))
            elif rule.op == "endif":
                self.rules[stack.pop()].endif = len(self.rules)
            self.rules.append(rule)
        while stack:
            self._w(self.rules[stack.pop()].lineno, "IF has no matching ENDIF")

    def _get_pattern(self, lineno: int, s: str, i: int):
        """Parse ``[!...]/re/flags``; return (regexp text, options, match, next index) or None."""
        match = True
        while i < len(s) and (s[i] == "!" or s[i] in ISSPACE):
            if s[i] == "!":
                match = not match
            i += 1
        if i >= len(s):
            self._w(lineno, "no regexp: skipping this rule")
            return None
        delim = s[i]
        i += 1
        start = i
        while i < len(s):
            if s[i] == "\\":
                if i + 1 < len(s):
                    i += 1
                else:
                    break
            elif s[i] == delim:
                break
            i += 1
        if i >= len(s) or s[i] != delim:
            what = "skipping" if self.kind == "regexp" else "ignoring"
            self._w(lineno, f'no closing regexp delimiter "{delim}": {what} this rule')
            return None
        pattern = s[start:i]
        i += 1
        if self.kind == "regexp":
            opts = {"icase": True, "extended": True, "newline": False}
            while i < len(s) and s[i] not in ISSPACE and s[i] != "!":
                c = s[i]
                if c == "i":
                    opts["icase"] = not opts["icase"]
                elif c == "m":
                    opts["newline"] = not opts["newline"]
                elif c == "x":
                    opts["extended"] = not opts["extended"]
                else:
                    self._w(lineno, f'unknown regexp option "{c}": skipping this rule')
                    return None
                i += 1
        else:
            opts = {"icase": True, "dotall": True, "multiline": False, "verbose": False,
                    "anchored": False}
            while i < len(s) and s[i] not in ISSPACE:
                c = s[i]
                if c == "i":
                    opts["icase"] = not opts["icase"]
                elif c == "m":
                    opts["multiline"] = not opts["multiline"]
                elif c == "s":
                    opts["dotall"] = not opts["dotall"]
                elif c == "x":
                    opts["verbose"] = not opts["verbose"]
                elif c == "A":
                    opts["anchored"] = not opts["anchored"]
                elif c in "EU":
                    pass  # DOLLAR_ENDONLY / UNGREEDY: not modelled
                elif c == "X":
                    self._w(lineno, f'ignoring obsolete regexp option "{c}"')
                else:
                    self._w(lineno, f'unknown regexp option "{c}": skipping this rule')
                    return None
                i += 1
        return pattern, opts, match, i

    def _compile(self, lineno: int, pattern: str, opts: dict) -> tuple[re.Pattern[str], int] | None:
        if self.kind == "regexp":
            try:
                return compile_posix(pattern, icase=opts["icase"], extended=opts["extended"],
                                     newline=opts["newline"])
            except RegexError as e:
                self._w(lineno, str(e))
                return None
        fl = ((re.IGNORECASE if opts["icase"] else 0) | (re.DOTALL if opts["dotall"] else 0)
              | (re.MULTILINE if opts["multiline"] else 0) | (re.VERBOSE if opts["verbose"] else 0))
        try:
            rx = re.compile(pattern, fl)
        except re.error as e:
            self._w(lineno, f"error in regex at offset {e.pos or 0}: {e.msg}")
            return None
        return rx, rx.groups

    def _parse_line(self, lineno: int, line: str, nesting: int) -> _Rule | None:
        if not _isalnum(line[0]):
            got = self._get_pattern(lineno, line, 0)
            if got is None:
                return None
            pattern, opts, match, i = got
            second = None
            if self.kind == "regexp" and i < len(line) and line[i] == "!":
                second = self._get_pattern(lineno, line, i)
                if second is None:
                    return None
                i = second[3]
            while i < len(line) and line[i] in ISSPACE:
                i += 1
            result = line[i:]
            if not result:
                self._w(lineno, "no replacement text: using empty string")
            parsed = parse_replacement(result, self.warn, self.kind, self.name, lineno)
            if parsed is None:
                self._w(lineno, "bad replacement syntax: skipping this rule")
                return None
            parts, max_sub = parsed
            if max_sub > 0 and not match:
                self._w(lineno, "$number found in negative match replacement text: "
                                "skipping this rule")
                return None
            comp = self._compile(lineno, pattern, opts)
            if comp is None:
                return None
            expr, nsub = comp
            if max_sub > nsub:
                self._w(lineno, f'out of range replacement index "{max_sub}": skipping this rule')
                return None
            rule = _Rule("match", lineno, expr, match, parts=parts, max_sub=max_sub,
                         anchored=bool(opts.get("anchored")))
            if second is not None:
                comp2 = self._compile(lineno, second[0], second[1])
                if comp2 is None:
                    return None
                rule.expr2, rule.match2 = comp2[0], second[2]
            return rule
        low = line.lower()
        if low.startswith("if") and not _isalnum(line[2:3] or " "):
            i = 2
            while i < len(line) and line[i] in ISSPACE:
                i += 1
            got = self._get_pattern(lineno, line, i)
            if got is None:
                return None
            pattern, opts, match, i = got
            while i < len(line) and line[i] in ISSPACE:
                i += 1
            if i < len(line):
                self._w(lineno, f'ignoring extra text after IF statement: "{line[i:]}"')
                self._w(lineno, "do not prepend whitespace to statements between IF and ENDIF")
            comp = self._compile(lineno, pattern, opts)
            if comp is None:
                return None
            return _Rule("if", lineno, comp[0], match, anchored=bool(opts.get("anchored")))
        if low.startswith("endif") and not _isalnum(line[5:6] or " "):
            if nesting == 0:
                self._w(lineno, "ignoring ENDIF without matching IF")
                return None
            if line[5:].strip(ISSPACE):
                self._w(lineno, "ignoring extra text after ENDIF")
            return _Rule("endif", lineno)
        self._w(lineno, "ignoring unrecognized request")
        return None

    # -- lookups ---------------------------------------------------------------------------------
    @staticmethod
    def _exec(rx: re.Pattern[str], key: str, anchored: bool) -> re.Match[str] | None:
        return rx.match(key) if anchored else rx.search(key)

    def _lookup(self, key: str) -> str | None:
        i = 0
        rules = self.rules
        while i < len(rules):
            r = rules[i]
            if r.op == "match":
                m = self._exec(r.expr, key, r.anchored)
                if (m is not None) != r.match:
                    i += 1
                    continue
                if r.expr2 is not None and (self._exec(r.expr2, key, False) is not None) != r.match2:
                    i += 1
                    continue
                out = []
                for part in r.parts:
                    if isinstance(part, int):
                        out.append((m.group(part) or "") if m is not None else "")
                    else:
                        out.append(part)
                return "".join(out)
            if r.op == "if":
                if (self._exec(r.expr, key, r.anchored) is not None) == r.match:
                    i += 1
                    continue
                if r.endif is None:
                    return None
                i = r.endif + 1
                continue
            i += 1
        return None

    def describe(self) -> str:
        n = sum(1 for r in self.rules if r.op == "match")
        where = "inline" if self.name.startswith("{") else Path(self.name).name
        return f"{self.spec} ({where}, {n} rule{'s' if n != 1 else ''})"
