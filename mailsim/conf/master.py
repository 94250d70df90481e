"""master.cf: services, their parsing, ``postconf -M/-F/-P`` display and edits.

Models postconf/postconf_master.c and the master.cf part of
postconf/postconf_edit.c (master(5)). A service entry is one logical line
(continuation lines start with whitespace, as in main.cf) with eight fields::

    service type private unpriv chroot wakeup maxproc command [args...]

``type`` is one of ``inet unix unix-dgram fifo pass``; ``private``,
``unpriv`` and ``chroot`` are ``y``, ``n`` or ``-``; ``wakeup`` is ``-`` or
digits with an optional ``?``; ``maxproc`` is ``-`` or digits. In the
arguments, ``{ text with spaces }`` is one argument, and daemon options are
normalized as postconf does: ``-oname=value`` becomes ``-o name=value``,
``-vo x=y`` becomes ``-v -o x=y``, ``-o { name = value }`` becomes
``-o name=value``.

Errors keep postconf's wording (``file /etc/postfix/master.cf: line 2: bad
field count``, ``invalid type field "unixx" in "..."``).

>>> entries = parse_master_cf("smtp inet n - y - - smtpd\\nrelay unix - - y - - smtp\\n"
...                           "  -o syslog_name=postfix/$service_name\\n")
>>> [(e.service, e.type, e.command, e.args, e.line) for e in entries]
[('smtp', 'inet', 'smtpd', [], 1), ('relay', 'unix', 'smtp', ['-o', 'syslog_name=postfix/$service_name'], 2)]
>>> print(format_entry(entries[1]), end="")
relay      unix  -       -       y       -       -       smtp -o syslog_name=postfix/$service_name
>>> entries[1].params
{'syslog_name': 'postfix/$service_name'}
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .parser import ConfigError, brace_tokens, logical_lines, split_nameval

__all__ = ["MasterEntry", "parse_master_cf", "read_master_cf", "format_entry", "format_field",
           "FIELD_NAMES", "MASTER_CF", "parse_service_pattern", "match_service",
           "edit_master_cf", "MasterEditError", "parse_entry_text"]

MASTER_CF = "/etc/postfix/master.cf"
FIELD_NAMES = ("service", "type", "private", "unprivileged", "chroot", "wakeup",
               "process_limit", "command")
TYPES = ("unix", "fifo", "inet", "pass", "unix-dgram")
_BLANKS = " \t\r\n"
_COLUMNS = (0, 11, 17, 25, 33, 41, 49, 57)
LINE_LIMIT = 80
INDENT = "    "
_VALUE_OPTIONS = "o"          # daemon options that take a value


@dataclass
class MasterEntry:
    """One master.cf service. ``argv`` holds all fields, normalized."""
    service: str
    type: str
    private: str
    unpriv: str
    chroot: str
    wakeup: str
    maxproc: str
    command: str
    args: list[str]
    line: int = 0
    text: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def argv(self) -> list[str]:
        return [self.service, self.type, self.private, self.unpriv, self.chroot,
                self.wakeup, self.maxproc, self.command, *self.args]

    @property
    def name_space(self) -> str:
        """``service/type``, how postconf names this entry."""
        return f"{self.service}/{self.type}"

    @property
    def program(self) -> str:
        """The daemon's program name (command without its path)."""
        return self.command.rsplit("/", 1)[-1]

    @property
    def params(self) -> dict[str, str]:
        """The ``-o name=value`` overrides, in order (a later one wins)."""
        out: dict[str, str] = {}
        args = self.args
        i = 0
        while i < len(args):
            arg = args[i]
            if not arg.startswith("-") or arg == "--":
                break
            if arg == "-o" and i + 1 < len(args):
                try:
                    name, value = split_nameval(args[i + 1])
                except ValueError:
                    pass
                else:
                    out[name] = value
                i += 1
            i += 1
        return out

    @property
    def readonly_params(self) -> dict[str, str]:
        """``process_name`` and ``service_name`` as this service's daemon sees them."""
        return {"process_name": self.program,
                "service_name": self.service if self.service != self.program else self.program}

    def set_field(self, index: int, value: str) -> None:
        """Replace field ``index`` (0-7); the command field takes its arguments too."""
        argv = self.argv
        if index == 7:
            argv = argv[:7] + _normalize(_split(value), self.warnings)
        else:
            argv[index] = value
        self._assign(argv)
        _check(argv, value)

    def _assign(self, argv: list[str]) -> None:
        (self.service, self.type, self.private, self.unpriv, self.chroot, self.wakeup,
         self.maxproc, self.command) = argv[:8]
        self.args = argv[8:]

    def set_param(self, name: str, value: str | None) -> bool:
        """Set (or with ``value=None`` remove) ``-o name=value``; True if it was there."""
        args = list(self.args)
        found = False
        i = 0
        while i < len(args):
            arg = args[i]
            if not arg.startswith("-") or arg == "--":
                break
            if arg[1:2] in _VALUE_OPTIONS and i + 1 < len(args):
                aval = args[i + 1]
                if arg == "-o" and aval.startswith(name + "="):
                    found = True
                    if value is None:
                        del args[i:i + 2]
                        continue
                    args[i + 1] = f"{name}={value}"
                i += 1
            i += 1
        if value is not None and not found:
            args[i:i] = ["-o", f"{name}={value}"]
        self.args = args
        return found


# -- parsing ------------------------------------------------------------------------------
def _split(text: str) -> list[str]:
    """argv_splitq(): split on blanks, keeping ``{...}`` groups (braces included)."""
    return list(brace_tokens(text, _BLANKS))


def _balpar(text: str) -> int:
    depth = 0
    for i, c in enumerate(text):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return 0


def extpar(text: str) -> tuple[str, str | None]:
    """Strip one ``{...}`` group and the whitespace inside it; return (text, error).

    Models util/extpar.c with EXTPAR_FLAG_STRIP.

    >>> extpar("{ a b }")
    ('a b', None)
    >>> extpar("{a}b")
    ('a', 'syntax error after \\'}\\' in "{a}b"')
    """
    if not text.startswith("{"):
        return text, f"no '{{' at start of text in \"{text}\""
    n = _balpar(text)
    if n == 0:
        return text[1:].strip(" \t\r\n\v\f"), f"missing '}}' in \"{text}\""
    err = f"syntax error after '}}' in \"{text}\"" if n < len(text) else None
    return text[1:n - 1].strip(" \t\r\n\v\f"), err


def _normalize(argv: list[str], warnings: list[str]) -> list[str]:
    """pcf_normalize_daemon_args(): canonical daemon options and ``{}`` arguments."""
    argv = list(argv)

    def extract(i: int) -> None:
        argv[i], err = extpar(argv[i])
        if err:
            warnings.append(f"master.cf: {err}")

    f = 8
    while f < len(argv):
        arg = argv[f]
        if not arg.startswith("-") or arg == "--":
            break
        for pos in range(2, len(arg)):
            if arg[pos] in _VALUE_OPTIONS:
                argv.insert(f + 1, "-" + arg[pos:])
                argv[f] = arg = arg[:pos]
                break
        if arg[1:2] not in _VALUE_OPTIONS and len(arg) > 1:
            f += 1
            continue
        if len(arg) > 2:
            argv.insert(f + 1, arg[2:])
            argv[f] = arg[:2]
            f += 1
            do_extract = argv[f].startswith("{")
        elif f + 1 < len(argv):
            f += 1
            do_extract = argv[f].startswith("{")
        else:
            do_extract = False
        if do_extract:
            extract(f)
            if argv[f - 1][1:2] == "o":
                try:
                    name, value = split_nameval(argv[f])
                except ValueError as e:
                    warnings.append(f'master.cf: {e}: "{argv[f]}"')
                else:
                    argv[f] = f"{name}={value}"
        f += 1
    for i in range(f, len(argv)):
        if argv[i].startswith("{"):
            extract(i)
    return argv


class _EntryError(Exception):
    """A master.cf entry postconf refuses; ``located`` says if the text has file/line."""

    def __init__(self, message: str, located: bool) -> None:
        super().__init__(message)
        self.located = located


def _check(argv: list[str], raw: str) -> None:
    """pcf_check_master_entry(): per-field syntax."""
    flat = raw.replace("\n", " ")
    if argv[1] not in TYPES:
        raise _EntryError(f'invalid type field "{argv[1]}" in "{flat}"', False)
    for i in (2, 3, 4):
        if len(argv[i]) != 1 or argv[i] not in "yn-":
            raise _EntryError(f'invalid {FIELD_NAMES[i]} field "{argv[i]}" in "{flat}"', False)
    w = argv[5]
    n = len(w) - 1 if w.endswith("?") else len(w)
    if not (w.startswith("-") and n == 1) and len(w) - len(w.lstrip("0123456789")) != n:
        raise _EntryError(f'invalid wakeup field "{w}" in "{flat}"', False)
    m = argv[6]
    if m != "-" and m.lstrip("0123456789") != "":
        raise _EntryError(f'invalid process_limit field "{m}" in "{flat}"', False)


def parse_entry_text(text: str, line: int = 0) -> MasterEntry:
    """Parse one logical master.cf line; raise ValueError with postconf's message."""
    argv = _split(text)
    if len(argv) < 8:
        raise _EntryError("bad field count", True)
    _check(argv, text)
    warnings: list[str] = []
    argv = _normalize(argv, warnings)
    e = MasterEntry(*argv[:8], args=argv[8:], line=line, text=text, warnings=warnings)
    return e


_HINTS = {
    "bad field count": "a service needs 8 fields: service type private unpriv chroot "
                       "wakeup maxproc command (use - for a default); continuation "
                       "lines must start with whitespace",
    "type": "the type is one of inet, unix, unix-dgram, fifo, pass",
    "private": "use y, n or - (default)",
    "unprivileged": "use y, n or - (default)",
    "chroot": "use y, n or - (default)",
    "wakeup": "use - or a number of seconds (optionally followed by ?)",
    "process_limit": "use - (default_process_limit) or a number",
}


def _error(err: _EntryError, filename: str, line: int) -> ConfigError:
    msg = str(err)
    key = msg if msg in _HINTS else (msg.split()[1] if msg.startswith("invalid ") else "")
    postfix = f"file {filename}: line {line}: {msg}" if err.located else msg
    return ConfigError(filename, line, msg, _HINTS.get(key, ""), postfix=postfix)


def parse_master_cf(text: str, filename: str = MASTER_CF,
                    warnings: list[str] | None = None) -> list[MasterEntry]:
    """Parse master.cf text; :class:`ConfigError` names file and line on a bad entry.

    >>> try:
    ...     parse_master_cf("smtp inet n - y - - smtpd\\nbroken unix - - y -\\n")
    ... except ConfigError as e:
    ...     print(e.postfix_text)
    file /etc/postfix/master.cf: line 2: bad field count
    """
    out: list[MasterEntry] = []
    for number, line in logical_lines(text, filename, warnings):
        try:
            entry = parse_entry_text(line, number)
        except _EntryError as err:
            raise _error(err, filename, number) from None
        if warnings is not None:
            warnings.extend(entry.warnings)
        out.append(entry)
    return out


def read_master_cf(path: str | Path, filename: str = MASTER_CF,
                   warnings: list[str] | None = None) -> list[MasterEntry]:
    """Read and parse a master.cf file (``filename`` is the name used in messages)."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(filename, None, f"open {filename}: {e.strerror}",
                          "a host needs etc/postfix/master.cf (mailsim init writes Debian's)",
                          postfix=f"open {filename}: {e.strerror}") from None
    return parse_master_cf(text, filename, warnings)


# -- display ------------------------------------------------------------------------------
def _has_blank(s: str) -> bool:
    return any(c in _BLANKS for c in s)


def _format_args(argv: list[str], start: int, line_len: int, fold: bool,
                 expand: Callable[[str], str] | None, extra: int) -> tuple[str, int]:
    out: list[str] = []
    in_daemon = True
    f = start
    while f < len(argv):
        arg = argv[f]
        arg_len = len(arg)
        aval = None
        need_parens = False
        if in_daemon:
            if not arg.startswith("-") or arg == "--":
                in_daemon = False
            elif arg[1:2] in _VALUE_OPTIONS and f + 1 < len(argv):
                aval = argv[f + 1]
                line_len = LINE_LIMIT
                if arg == "-o" and expand is not None:
                    aval = expand(aval)
                arg_len += len(aval) + extra
                need_parens = _has_blank(aval)
                if need_parens:
                    arg_len += 2
        else:
            need_parens = _has_blank(arg)
        if line_len > len(INDENT):
            if not fold or line_len + 1 + arg_len < LINE_LIMIT:
                out.append(" ")
                line_len += 1
            else:
                out.append("\n" + INDENT)
                line_len = len(INDENT)
        text = arg
        if not in_daemon and need_parens:
            text = "{" + arg + "}"
        out.append(text)
        line_len += len(text)
        if aval is not None:
            shown = "{" + aval + "}" if need_parens else aval
            out.append(" " + shown)
            f += 1
            line_len = LINE_LIMIT
        f += 1
    return "".join(out), line_len


def format_entry(entry: MasterEntry, fold: bool = False,
                 expand: Callable[[str], str] | None = None) -> str:
    """One entry as ``postconf -M`` prints it (``fold`` = ``-Mf``, ``expand`` = ``-Mx``)."""
    argv = entry.argv
    parts: list[str] = []
    line_len = 0
    for i in range(8):
        if line_len > 0:
            while True:
                parts.append(" ")
                line_len += 1
                if line_len >= _COLUMNS[i]:
                    break
        parts.append(argv[i])
        line_len += len(argv[i])
    rest, _ = _format_args(argv, 8, line_len, fold, expand, 3)
    return "".join(parts) + rest + "\n"


def format_field(entry: MasterEntry, index: int, *, hide_name: bool = False,
                 hide_value: bool = False, fold: bool = False,
                 expand: Callable[[str], str] | None = None) -> str:
    """One field as ``postconf -F`` prints it: ``service/type/field = value``."""
    argv = entry.argv
    out = ""
    if not hide_name:
        out += f"{argv[0]}/{argv[1]}/{FIELD_NAMES[index]}"
    if not hide_name and not hide_value:
        out += " = "
    if not hide_value:
        if out and len(out) + len(argv[index]) > LINE_LIMIT:
            out += "\n" + INDENT
            line_len = len(INDENT)
        else:
            line_len = len(out)
        out += argv[index]
        line_len += len(argv[index])
        if index == 7:
            rest, _ = _format_args(argv, 8, line_len, fold, expand, 1)
            out += rest
    return out + "\n"


# -- service patterns (postconf_match.c) ------------------------------------------------------
def parse_service_pattern(pattern: str, min_expr: int, max_expr: int) -> list[str] | None:
    """``service[/type[/x]]`` -> components padded with ``*``; None if malformed.

    >>> parse_service_pattern("smtp", 1, 2), parse_service_pattern("x/y/z", 1, 2)
    (['smtp', '*'], None)
    """
    if pattern.startswith("/"):
        return None
    parts = [p for p in pattern.split("/") if p]
    if not min_expr <= len(parts) <= max_expr:
        return None
    if any(p != "*" and "*" in p for p in parts):
        return None
    return parts + ["*"] * (max_expr - len(parts))


def match_service(pattern: list[str], service: str, type_: str) -> bool:
    """Does ``[service, type, ...]`` (``*`` = any) match this service?"""
    return pattern[0] in ("*", service) and pattern[1] in ("*", type_)


# -- editing (postconf -Me, -M#, -MX, -Fe, -Pe, -PX) -------------------------------------------------
class MasterEditError(Exception):
    """A fatal error of a master.cf edit, in postconf's words."""


@dataclass
class _Request:
    raw: str
    pattern: list[str]
    value: str | None
    field_index: int = -1
    param: str = ""
    count: int = 0


def _info_line(line: str) -> bool:
    s = line.lstrip(" \t\r\n\v\f")
    return bool(s) and not s.startswith("#")


def edit_master_cf(text: str, kind: str, action: str, args: list[str],
                   filename: str = MASTER_CF, warn: Callable[[str], None] | None = None) -> str:
    """Edit master.cf text like ``postconf -M|-F|-P`` with ``-e``, ``-#`` or ``-X``.

    ``kind`` is ``"M"``, ``"F"`` or ``"P"``; ``action`` is ``"e"`` (set), ``"#"``
    (comment out) or ``"X"`` (remove). Returns the new text; raises
    :class:`MasterEditError` with postconf's message.

    >>> print(edit_master_cf("smtp inet n - y - - smtpd\\n", "F", "e", ["smtp/inet/chroot = n"]), end="")
    smtp       inet  n       -       n       -       -       smtpd
    """
    opts = "-Me, -Fe, -Pe, -X, or -#"
    reqs: list[_Request] = []
    for raw in args:
        if "\n" in raw:
            raise MasterEditError(f"{opts} accept no multi-line input")
        cp = raw.lstrip(" \t\r\n\v\f")
        if cp.startswith("#"):
            raise MasterEditError(f"{opts} accept no comment input")
        value: str | None = None
        if action == "e":
            try:
                pattern_text, value = split_nameval(cp)
            except ValueError as e:
                raise MasterEditError(f'{e}: "{raw}"') from None
        else:
            if "=" in cp:
                raise MasterEditError("-X or -# requires names without value")
            pattern_text = cp          # trailing blanks stay, as in Postfix
        req = _Request(raw, [], value)
        if kind == "M":
            pat = parse_service_pattern(pattern_text, 2, 2)
            if pat is None:
                raise MasterEditError("-Me, -MX or -M# requires service_name/type")
        elif kind == "F":
            pat = parse_service_pattern(pattern_text, 3, 3)
            if pat is None:
                raise MasterEditError("-Fe or -FX requires service_name/type/field_name")
            if pat[2] == "*":
                raise MasterEditError("-Fe does not accept wild-card field name")
            if pat[2] not in FIELD_NAMES:
                raise MasterEditError(f'invalid service attribute name: "{pat[2]}"')
            req.field_index = FIELD_NAMES.index(pat[2])
            if action == "e" and req.field_index < 7 and _has_blank(value or ""):
                raise MasterEditError("-Fe does not accept whitespace in non-command field")
        else:
            pat = parse_service_pattern(pattern_text, 3, 3)
            if pat is None:
                raise MasterEditError("-Pe or -PX requires service_name/type/parameter")
            if pat[2] == "*":
                raise MasterEditError("-Pe does not accept wild-card parameter name")
            req.param = pat[2]
            if action == "e" and _has_blank(value or ""):
                raise MasterEditError("-Pe does not accept whitespace in parameter value")
        req.pattern = pat
        reqs.append(req)

    def parse_new(value: str, raw: str) -> MasterEntry:
        try:
            return parse_entry_text(value)
        except _EntryError as e:
            raise MasterEditError(f'{e}: "{raw}"' if e.located else str(e)) from None

    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)
    out: list[str] = []
    matched = False
    i = 0
    lineno = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        lineno += 1
        if not _info_line(line):
            out.append(line)
            continue
        if line[0] in " \t\r\n\v\f":
            if not matched:
                out.append(line)
            elif action == "#":
                out.append("#" + line)
            continue
        matched = False
        words = line.split()
        if len(words) < 2:
            raise MasterEditError(f"file {filename}: line {lineno}: specify service name "
                                  "and type on the same line")
        name, type_ = words[0], words[1]
        if "=" in name:
            raise MasterEditError(f'file {filename}: line {lineno}: service name syntax "{name}" '
                                  f"is unsupported with {opts}")
        if re.search(r"[=/]", type_):
            raise MasterEditError(f'file {filename}: line {lineno}: service type syntax "{type_}" '
                                  f"is unsupported with {opts}")
        new_entry: MasterEntry | None = None
        for req in reqs:
            tentative = None
            use_tentative = False
            if kind == "M" and action == "e":
                tentative = parse_new(req.value or "", req.raw)
            if match_service(req.pattern, name, type_):
                matched = True
                req.count += 1
                if action == "e" or (kind == "P" and action == "X"):
                    if kind in "FP":
                        if new_entry is None:
                            full = line
                            while i < len(lines) and (lines[i][:1] == "#" or lines[i][:1] in " \t\r\n\v\f"):
                                nxt = lines[i]
                                i += 1
                                if _info_line(nxt):
                                    full += nxt
                                else:
                                    out.append(nxt)
                            try:
                                new_entry = parse_entry_text(full, lineno)
                            except _EntryError as e:
                                msg = f"file {filename}: line {lineno}: {e}" if e.located else str(e)
                                raise MasterEditError(msg) from None
                        if kind == "F":
                            try:
                                new_entry.set_field(req.field_index, req.value or "")
                            except _EntryError as e:
                                raise MasterEditError(str(e)) from None
                        else:
                            new_entry.set_param(req.param, req.value if action == "e" else None)
                    elif req.count == 1:
                        use_tentative = True
            elif tentative is not None and match_service([tentative.service, tentative.type],
                                                         name, type_):
                matched = True
                req.count += 1
                if req.count == 1:
                    use_tentative = True
            if tentative is not None and use_tentative:
                new_entry = tentative
        if new_entry is not None:
            out.append(format_entry(new_entry, fold=True))
        elif not matched:
            out.append(line)
        elif action == "#":
            out.append("#" + line)
    for req in reqs:
        if req.count == 0:
            if kind == "M" and action == "e":
                out.append(format_entry(parse_new(req.value or "", req.raw), fold=True))
            elif kind != "M" and warn:
                warn(f'unmatched service_name/type: "{req.raw}"')
    return "".join(out)
