"""POSIX regular expressions (glibc's ``regcomp``) translated to Python ``re``.

Postfix's ``regexp:`` tables use the C library's POSIX regex: extended syntax
(ERE) by default, basic syntax (BRE) when a rule toggles the ``x`` flag. This
module translates a pattern into an equivalent Python pattern and reports
the errors glibc's ``regerror`` would (``Unmatched ( or \\(``, ``Invalid
preceding regular expression``, ...), so a broken rule is skipped with the
same warning as on Debian.

What it handles like glibc: ERE operators ``| * + ? {m,n} ( )``; a
repetition operator at the start of an expression is an error, repeated
operators stack (``a**``, ``a+?`` means ``(a+)?``, never a lazy quantifier);
a lone ``)`` and a ``{`` without an interval are literal or an error as in
glibc; ``^`` and ``$`` are anchors anywhere; bracket expressions with
``[:class:]``, ``[=c=]``, ``[.c.]``, a leading ``]``, and a literal
backslash; GNU escapes ``\\w \\W \\s \\S \\b \\B \\< \\> \\` \\'`` and back
references ``\\1``-``\\9``; any other escaped character is itself -- so
``\\d`` is not a digit but the letter ``d``, and in a case-insensitive
pattern (the regexp: default) glibc's escaped lower-case letters match
nothing at all: ``/^a\\d$/`` matches neither ``a5`` nor ``ad`` (``/^a\\d$/i``
matches ``ad``), as learners are surprised to find.

Known differences: POSIX picks the leftmost-*longest* match and its
sub-matches, Python the leftmost-first: ``(a|ab)(c|bcd)`` on ``abcd`` gives
different ``$1``. Case-insensitive matching and ``\\w`` are ASCII-only (the C
locale). Collating elements other than single characters are not supported.

Examples
--------
>>> translate(r"^(.*)@example\\.com$")
('^(.*)@example\\\\.com\\\\Z', 1)
>>> translate("a+?")[0]
'(?:a+)?'
>>> translate("*a")
Traceback (most recent call last):
...
mailsim.maps.posix_re.RegexError: Invalid preceding regular expression
>>> translate("[[:digit:]]+")[0]
'[0-9]+'
"""
from __future__ import annotations

import re

__all__ = ["RegexError", "translate", "compile_posix"]

# glibc's regerror() texts
BADPAT = "Invalid regular expression"
ECTYPE = "Invalid character class name"
EESCAPE = "Trailing backslash"
ESUBREG = "Invalid back reference"
EBRACK = "Unmatched [, [^, [:, [., or [="
EPAREN = "Unmatched ( or \\("
EBRACE = "Unmatched \\{"
BADBR = "Invalid content of \\{\\}"
ERANGE = "Invalid range end"
BADRPT = "Invalid preceding regular expression"
EEND = "Premature end of regular expression"
ESIZE = "Regular expression too big"
ECOLLATE = "Invalid collation character"

DUP_MAX = 0x7FFF

_CLASSES = {
    "alpha": "A-Za-z", "upper": "A-Z", "lower": "a-z", "digit": "0-9",
    "xdigit": "0-9A-Fa-f", "space": " \\t\\n\\r\\f\\v", "blank": " \\t",
    "alnum": "0-9A-Za-z", "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "print": " -~", "graph": "!-~", "cntrl": "\\x00-\\x1f\\x7f",
}
_ESCAPES = {
    "w": "[0-9A-Za-z_]", "W": "[^0-9A-Za-z_]", "s": "[ \\t\\n\\r\\f\\v]", "S": "[^ \\t\\n\\r\\f\\v]",
    "b": "\\b", "B": "\\B", "<": "\\b(?=[0-9A-Za-z_])", ">": "\\b(?<=[0-9A-Za-z_])",
    "`": "\\A", "'": "\\Z",
}


class RegexError(ValueError):
    """A pattern glibc would refuse; ``str()`` is glibc's regerror() text."""


def _class_char(ch: str) -> str:
    return re.escape(ch) if ch not in "-" else "\\-"


def _bracket(p: str, i: int) -> tuple[str, int]:
    """Translate a bracket expression starting after '['; return (python, next index)."""
    n = len(p)
    neg = False
    if i < n and p[i] == "^":
        neg, i = True, i + 1
    parts: list[str] = []
    first = True
    prev_char: str | None = None       # last single character, for ranges
    while True:
        if i >= n:
            raise RegexError(EBRACK)
        ch = p[i]
        if ch == "]" and not first:
            i += 1
            break
        first = False
        if ch == "[" and i + 1 < n and p[i + 1] in ":=.":
            kind = p[i + 1]
            end = p.find(kind + "]", i + 2)
            if end < 0:
                raise RegexError(EBRACK)
            name = p[i + 2:end]
            i = end + 2
            if kind == ":":
                if name not in _CLASSES:
                    raise RegexError(ECTYPE)
                parts.append(_CLASSES[name])
                prev_char = None
                continue
            if len(name) != 1:
                raise RegexError(ECOLLATE)
            ch_lit = name
        else:
            ch_lit = ch
            i += 1
        # a range?
        if i + 1 < n and p[i] == "-" and p[i + 1] != "]":
            i += 1
            if p[i] == "[" and i + 1 < n and p[i + 1] in "=.":
                kind = p[i + 1]
                end = p.find(kind + "]", i + 2)
                if end < 0:
                    raise RegexError(EBRACK)
                hi = p[i + 2:end]
                if len(hi) != 1:
                    raise RegexError(ECOLLATE)
                i = end + 2
            elif p[i] == "[" and i + 1 < n and p[i + 1] == ":":
                raise RegexError(ERANGE)
            else:
                hi = p[i]
                i += 1
            if ord(hi) < ord(ch_lit):
                raise RegexError(ERANGE)
            parts.append(f"{_class_char(ch_lit)}-{_class_char(hi)}")
            prev_char = None
            continue
        parts.append(_class_char(ch_lit))
        prev_char = ch_lit
    del prev_char
    return "[" + ("^" if neg else "") + "".join(parts) + "]", i


def translate(pattern: str, extended: bool = True, newline: bool = False,
              icase: bool = False) -> tuple[str, int]:
    """Translate a POSIX pattern: (Python pattern, number of capture groups).

    ``extended`` is REG_EXTENDED (ERE), ``newline`` REG_NEWLINE, ``icase``
    REG_ICASE. Raises :class:`RegexError` with glibc's message.
    """
    out: list[list[str]] = [[]]           # per open group: list of atoms ("" alternation marks)
    stack: list[int] = []                 # group numbers of open groups
    closed: set[int] = set()
    nsub = 0
    i, n = 0, len(pattern)
    p = pattern
    eol = "$" if newline else "\\Z"

    def cur() -> list[str]:
        return out[-1]

    def can_repeat() -> bool:
        c = cur()
        return bool(c) and c[-1] not in ("|", "^")

    def repeat(q: str) -> None:
        c = cur()
        atom = c.pop()
        if atom.endswith(("*", "+", "?", "}")) or atom in ("\\b", "\\B", "\\A", "\\Z", "$", "^") \
                or atom.startswith("\\b("):
            atom = f"(?:{atom})"
        c.append(atom + q)

    def interval(j: int, close: str) -> tuple[str, int]:
        end = p.find(close, j)
        if end < 0:
            raise RegexError(EBRACE)
        body = p[j:end]
        m = re.fullmatch(r"(\d*)(,(\d*))?", body)
        if not m or (m.group(1) == "" and m.group(2) is None):
            raise RegexError(BADBR)
        lo = int(m.group(1) or 0)
        hi = None if m.group(2) is not None and m.group(3) == "" else (
            int(m.group(3)) if m.group(2) is not None else lo)
        if lo > DUP_MAX or (hi is not None and hi > DUP_MAX):
            raise RegexError(ESIZE)
        if hi is not None and hi < lo:
            raise RegexError(BADBR)
        q = "{%d}" % lo if hi == lo and m.group(2) is None else "{%d,%s}" % (lo, "" if hi is None else hi)
        return q, end + len(close)

    while i < n:
        ch = p[i]
        i += 1
        if ch == "\\":
            if i >= n:
                raise RegexError(EESCAPE)
            e = p[i]
            i += 1
            if not extended and e in "(){}|+?":
                ch = {"(": "(", ")": ")", "{": "{", "}": "}", "|": "|", "+": "+", "?": "?"}[e]
                if e == "(":
                    nsub += 1
                    stack.append(nsub)
                    out.append([])
                    continue
                if e == ")":
                    if not stack:
                        raise RegexError("Unmatched ) or \\)")
                    g = stack.pop()
                    closed.add(g)
                    body = "".join(out.pop())
                    cur().append(f"({body})")
                    continue
                if e == "{":
                    if not can_repeat():
                        if not cur():
                            cur().append("\\{")
                            continue
                        raise RegexError(BADRPT)
                    q, i = interval(i, "\\}")
                    repeat(q)
                    continue
                if e == "}":
                    cur().append("\\}")
                    continue
                if e == "|":
                    cur().append("|")
                    continue
                if e in "+?":
                    if not can_repeat():
                        cur().append(re.escape(e))
                        continue
                    repeat(e)
                    continue
            if e.isdigit() and e != "0":
                if int(e) not in closed:
                    raise RegexError(ESUBREG)
                cur().append(f"(?:\\{e})")
                continue
            if e in _ESCAPES:
                cur().append(_ESCAPES[e])
                continue
            if icase and "a" <= e <= "z":
                cur().append("(?!)")      # glibc quirk: never matches under REG_ICASE
                continue
            cur().append(re.escape(e))
            continue
        if ch == "[":
            cls, i = _bracket(p, i)
            cur().append(cls)
            continue
        if ch == ".":
            cur().append(".")
            continue
        if extended:
            if ch == "(":
                nsub += 1
                stack.append(nsub)
                out.append([])
                continue
            if ch == ")":
                if not stack:
                    cur().append("\\)")
                    continue
                g = stack.pop()
                closed.add(g)
                body = "".join(out.pop())
                cur().append(f"({body})")
                continue
            if ch == "|":
                cur().append("|")
                continue
            if ch in "*+?":
                if not can_repeat():
                    raise RegexError(BADRPT)
                repeat(ch)
                continue
            if ch == "{":
                if not can_repeat():
                    raise RegexError(BADRPT)
                q, i = interval(i, "}")
                repeat(q)
                continue
            if ch == "^":
                cur().append("^")
                continue
            if ch == "$":
                cur().append(eol)
                continue
        else:
            if ch == "*":
                if not can_repeat():
                    cur().append("\\*")
                    continue
                repeat("*")
                continue
            if ch == "^":
                c = cur()
                if not c or c[-1] == "|":
                    cur().append("^")
                else:
                    cur().append("\\^")
                continue
            if ch == "$":
                rest = p[i:]
                if rest == "" or rest.startswith("\\)") or rest.startswith("\\|"):
                    cur().append(eol)
                else:
                    cur().append("\\$")
                continue
        cur().append(re.escape(ch))
    if stack:
        raise RegexError(EPAREN)
    return "".join(out[0]), nsub


def compile_posix(pattern: str, *, icase: bool = True, extended: bool = True,
                  newline: bool = False) -> tuple[re.Pattern[str], int]:
    """Compile a POSIX pattern: (compiled Python regex, number of groups)."""
    py, nsub = translate(pattern, extended, newline, icase)
    flags = re.ASCII | (re.IGNORECASE if icase else 0) | (re.MULTILINE if newline else re.DOTALL)
    try:
        return re.compile(py, flags), nsub
    except re.error as e:  # pragma: no cover - translation bug safety net
        raise RegexError(BADPAT) from e
