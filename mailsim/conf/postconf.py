"""The ``postconf`` command for a simulated host (Postfix 3.7's postconf(1)).

Models postconf/postconf.c (options and their compatibility matrix),
postconf_main.c and postconf_print.c (showing main.cf parameters),
postconf_user.c and postconf_unused.c (user-defined, undefined and unused
parameters), postconf_edit.c (``-e``, ``-#``, ``-X``) and, through
:mod:`mailsim.conf.master`, postconf_master.c (``-M``, ``-F``, ``-P``).

Output is Postfix's, byte for byte, for the same main.cf and master.cf
(checked against recordings of the real program in
``tests/golden/postconf/``). Known differences, all deliberate:

* Postfix reads main.cf several times, so it repeats some warnings
  (``overriding earlier entry``, ``logical line must not start with
  whitespace``); mailsim says each once.
* Where Postfix walks a hash table (the order of ``-e`` additions for new
  names, of ``unused``/``read-only`` warnings) its order is random per run;
  mailsim uses command-line and file order.
* ``-e`` on a main.cf whose last line lacks a newline: Postfix glues the new
  line onto it (``a = 1b = 2``); mailsim starts a new line.
* For a parameter named on the command line that Postfix knows but mailsim
  does not simulate, stderr gets ``postconf: mailsim: NAME is accepted but
  not simulated``. ``-a -A -b -t -T -m`` (SASL, TLS, templates, map types)
  are not simulated.

Reads: ``config_directory`` (``-c``), every main.cf and master.cf setting.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Callable, TextIO

from .defaults import LEGACY, RAW, READONLY, builtin_defaults, service_parameter_names
from .expand import PARSE_ERROR, expand as mac_expand, scan as mac_scan
from .master import (FIELD_NAMES, MasterEditError, MasterEntry, edit_master_cf, format_entry,
                     format_field, match_service, parse_master_cf, parse_service_pattern)
from .params import MainConfig
from .parser import ConfigError, parse_main_cf, printable, split_nameval
from .simulated import SIMULATED

__all__ = ["main", "edit_main_cf", "print_line"]

CONFIG_DIR = "/etc/postfix"
_OPTSTRING = "aAbc:C:deEfFhHlmMno:pPtT:vxX#"
LINE_LIMIT = 80
_SEPARATORS = " \t\r\n"

# option bits, in Postfix's order (postconf.h)
SHOW_NONDEF, SHOW_DEFS, HIDE_NAME, SHOW_MAPS, EDIT_CONF, SHOW_LOCKS, SHOW_EVAL = (1 << i for i in range(7))
SHOW_SASL_SERV, SHOW_SASL_CLNT, COMMENT_OUT, MASTER_ENTRY, FOLD_LINE, EDIT_EXCL = (1 << i for i in range(7, 13))
MASTER_FLD, MAIN_PARAM, EXP_DSN_TEMPL, PARAM_CLASS, MAIN_OVER, DUMP_DSN_TEMPL = (1 << i for i in range(13, 19))
MASTER_PARAM, HIDE_VALUE, SHOW_TLS = (1 << i for i in range(19, 22))

_OPTION_BITS = {
    "a": SHOW_SASL_SERV, "A": SHOW_SASL_CLNT, "b": EXP_DSN_TEMPL, "d": SHOW_DEFS,
    "e": EDIT_CONF, "f": FOLD_LINE, "F": MASTER_FLD, "#": COMMENT_OUT, "h": HIDE_NAME,
    "H": HIDE_VALUE, "l": SHOW_LOCKS, "m": SHOW_MAPS, "M": MASTER_ENTRY, "n": SHOW_NONDEF,
    "o": MAIN_OVER, "p": MAIN_PARAM, "P": MASTER_PARAM, "t": DUMP_DSN_TEMPL, "T": SHOW_TLS,
    "x": SHOW_EVAL, "X": EDIT_EXCL,
}
# names in the order of Postfix's pcf_compat_names table (used in messages)
_NAMES = [("-a", SHOW_SASL_SERV), ("-A", SHOW_SASL_CLNT), ("-b", EXP_DSN_TEMPL),
          ("-C", PARAM_CLASS), ("-d", SHOW_DEFS), ("-e", EDIT_CONF), ("-f", FOLD_LINE),
          ("-F", MASTER_FLD), ("-h", HIDE_NAME), ("-H", HIDE_VALUE), ("-l", SHOW_LOCKS),
          ("-m", SHOW_MAPS), ("-M", MASTER_ENTRY), ("-n", SHOW_NONDEF), ("-o", MAIN_OVER),
          ("-p", MAIN_PARAM), ("-P", MASTER_PARAM), ("-t", DUMP_DSN_TEMPL), ("-T", SHOW_TLS),
          ("-x", SHOW_EVAL), ("-X", EDIT_EXCL), ("-#", COMMENT_OUT)]
_MAJOR = (SHOW_SASL_SERV | SHOW_SASL_CLNT | EXP_DSN_TEMPL | SHOW_LOCKS | SHOW_MAPS
          | DUMP_DSN_TEMPL | MAIN_PARAM | MASTER_ENTRY | MASTER_FLD | MASTER_PARAM | SHOW_TLS)
_INCOMPATIBLE = [
    _MAJOR,
    SHOW_DEFS | EDIT_CONF | SHOW_NONDEF | COMMENT_OUT | EDIT_EXCL,
    FOLD_LINE | EDIT_CONF | COMMENT_OUT | EDIT_EXCL,
    SHOW_EVAL | EDIT_CONF | COMMENT_OUT | EDIT_EXCL,
    MAIN_OVER | SHOW_DEFS | EDIT_CONF | COMMENT_OUT | EDIT_EXCL,
    HIDE_NAME | EDIT_CONF | COMMENT_OUT | EDIT_EXCL | HIDE_VALUE,
]
_COMPATIBLE = [
    (SHOW_SASL_SERV, 0), (SHOW_SASL_CLNT, 0), (EXP_DSN_TEMPL, 0), (SHOW_LOCKS, 0),
    (SHOW_MAPS, 0), (SHOW_TLS, 0), (DUMP_DSN_TEMPL, 0),
    (MAIN_PARAM, EDIT_CONF | EDIT_EXCL | COMMENT_OUT | FOLD_LINE | HIDE_NAME | PARAM_CLASS
     | SHOW_EVAL | SHOW_DEFS | SHOW_NONDEF | MAIN_OVER | HIDE_VALUE),
    (MASTER_ENTRY, EDIT_CONF | EDIT_EXCL | COMMENT_OUT | FOLD_LINE | MAIN_OVER | SHOW_EVAL),
    (MASTER_FLD, EDIT_CONF | FOLD_LINE | HIDE_NAME | MAIN_OVER | SHOW_EVAL | HIDE_VALUE),
    (MASTER_PARAM, EDIT_CONF | EDIT_EXCL | FOLD_LINE | HIDE_NAME | MAIN_OVER | SHOW_EVAL
     | HIDE_VALUE),
    (PARAM_CLASS, MAIN_PARAM | SHOW_DEFS | SHOW_NONDEF),
]
_CLASSES = {"builtin": {"builtin"}, "service": {"service"}, "user": {"user"},
            "all": {"builtin", "service", "user"}}
_USAGE = ("usage: postconf [-a (server SASL types)] [-A (client SASL types)] "
          "[-b (bounce templates)] [-c config_dir] [-c param_class] "
          "[-d (parameter defaults)] [-e (edit configuration)] [-f (fold lines)] "
          "[-F (master.cf fields)] [-h (no names)] [-H (no values)] [-l (lock types)] "
          "[-m (map types)] [-M (master.cf)] [-n (non-default parameters)] "
          "[-o name=value (override parameter value)] [-p (main.cf, default)] "
          "[-P (master.cf parameters)] [-t (bounce templates)] "
          "[-T compile-version|run-version|public-key-algorithms] [-v (verbose)] "
          "[-x (expand parameter values)] [-X (exclude)] [-# (comment-out)] [name...]")
_LOCK_TYPES = ("flock", "fcntl", "dotlock")


class _Fatal(Exception):
    """postconf stops with ``postconf: fatal: MESSAGE`` and exit status 1.

    ``hint`` (mailsim's advice) is printed after Postfix's message.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def _lines(text: str) -> list[str]:
    """Physical lines with their newlines (only "\\n" ends a line, as in Postfix)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def _names(mask: int) -> str:
    return " ".join(name for name, bit in _NAMES if mask & bit)


def print_line(text: str, fold: bool = False) -> str:
    """Normalize whitespace (and fold at 80 columns with ``fold``), as postconf prints.

    >>> print_line("mydestination = a,\\n   b,\\tc")
    'mydestination = a, b, c\\n'
    >>> print_line("x = " + "word " * 20, fold=True)
    'x = word word word word word word word word word word word word word word word\\n    word word word word word\\n'
    """
    out: list[str] = []
    line_len = 0
    for word in text.replace("\t", " ").replace("\r", " ").replace("\n", " ").split(" "):
        if not word:
            continue
        if line_len > 0:
            if not fold or line_len + len(word) < LINE_LIMIT:
                out.append(" ")
                line_len += 1
            else:
                out.append("\n    ")
                line_len = 4
        out.append(word)
        line_len += len(word)
    return "".join(out) + "\n"


# -- main.cf editing (postconf_edit.c) ------------------------------------------------------
def edit_main_cf(text: str, action: str, args: list[str], filename: str = CONFIG_DIR + "/main.cf",
                 warn: Callable[[str], None] | None = None) -> str:
    """Edit main.cf text like ``postconf -e name=value...`` (``action`` ``"e"``),
    ``postconf -# name...`` (``"#"``) or ``postconf -X name...`` (``"X"``).

    A setting is replaced where it is (its continuation lines go, comments
    stay); new names are appended in command-line order.

    >>> print(edit_main_cf("# mine\\nrelayhost = a\\n  b\\nbiff = no\\n", "e",
    ...                    ["relayhost = [smtp.isp]", "mynetworks = 10.0.0.0/8"]), end="")
    # mine
    relayhost = [smtp.isp]
    biff = no
    mynetworks = 10.0.0.0/8
    """
    table: dict[str, list] = {}
    for arg in args:
        if "\n" in arg:
            raise _Fatal("-e, -X, or -# accepts no multi-line input")
        cp = arg.lstrip(" \t\r\n\v\f")
        if cp.startswith("#"):
            raise _Fatal("-e, -X, or -# accepts no comment input")
        value: str | None
        if action == "e":
            try:
                name, value = split_nameval(cp)
            except ValueError as e:
                raise _Fatal(f'{e}: "{cp}"') from None
        else:
            if cp == "":
                raise _Fatal("-X or -# requires non-blank parameter names")
            if "=" in cp:
                raise _Fatal("-X or -# requires parameter names without value")
            name, value = cp, None     # Postfix does not trim trailing blanks here
        if name in table:
            if warn:
                shown = table[name][0] if table[name][0] is not None else "(null)"
                warn(f"ignoring earlier request: '{name} = {shown}'")
            del table[name]
        table[name] = [value, 0]
    out: list[str] = []
    interesting = False
    for line in _lines(text):
        stripped = line.lstrip(" \t\r\n\v\f")
        if not stripped or stripped.startswith("#"):
            out.append(line)
            continue
        if line[0] in " \t\r\n\v\f":
            if not interesting:
                out.append(line)
            elif action == "#":
                out.append("#" + line)
            continue
        key = line
        for i, c in enumerate(line):
            if c in " \t\r\n\v\f=":
                key = line[:i]
                break
        req = table.get(key)
        interesting = req is not None
        if req is None:
            out.append(line)
            continue
        req[1] += 1
        if req[1] == 2 and warn:
            warn(f'{filename}: multiple entries for "{key}"')
        if action == "e":
            out.append(f"{key} = {req[0]}\n")
        elif action == "#":
            out.append("#" + line)
    if action == "e":
        additions = [f"{k} = {v[0]}\n" for k, v in table.items() if v[1] == 0]
        if additions and out and not out[-1].endswith("\n"):
            out.append("\n")
        out += additions
    return "".join(out)


def _write(path: Path, text: str) -> None:
    """Replace a file atomically (Postfix writes FILE.tmp, then renames it)."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        try:
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        except OSError:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _host_defaults(root: Path) -> dict[str, str]:
    """The machine-dependent defaults of the host at ``root`` (and its raw name)."""
    from ..host import Host
    host = Host.__new__(Host)      # only the folder: no log, no queue, no main.cf parsing
    host.root = Path(root).resolve()
    try:
        out = dict(host.host_defaults())
        out.setdefault("hostname", host.hostname_file())
    except (AttributeError, OSError):
        out = {}
    return out


# -- the command ----------------------------------------------------------------------------
class _Postconf:
    def __init__(self, root: Path, out: TextIO, err: TextIO) -> None:
        self.root = Path(root)
        self.out = out
        self.err = err
        self.mode = 0
        self.config_dir = CONFIG_DIR
        self.config_dir_given = False
        self.classes = _CLASSES["all"]
        self.overrides: list[str] = []
        self.names: list[str] = []
        self.main_order: list[str] = []

    # -- messages ------------------------------------------------------------------------
    def warn(self, text: str) -> None:
        self.err.write(f"postconf: warning: {printable(text)}\n")

    def note(self, text: str) -> None:
        self.err.write(f"postconf: mailsim: {text}\n")

    @property
    def main_cf(self) -> str:
        return f"{self.config_dir}/main.cf"

    @property
    def master_cf(self) -> str:
        return f"{self.config_dir}/master.cf"

    def path(self, name: str) -> Path:
        rel = os.path.normpath(self.config_dir + "/" + name).lstrip("/")
        return self.root / rel

    # -- option parsing (getopt with "+": options stop at the first name) -----------------------
    def parse_options(self, argv: list[str]) -> None:
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg == "--":
                i += 1
                break
            if not arg.startswith("-") or arg == "-":
                break
            j = 1
            while j < len(arg):
                ch = arg[j]
                if ch not in _OPTSTRING or ch == ":":
                    self.err.write(f"postconf: invalid option -- '{ch}'\n")
                    raise _Fatal(_USAGE)
                takes = _OPTSTRING[_OPTSTRING.index(ch) + 1: _OPTSTRING.index(ch) + 2] == ":"
                if takes:
                    if j + 1 < len(arg):
                        optarg = arg[j + 1:]
                    elif i + 1 < len(argv):
                        i += 1
                        optarg = argv[i]
                    else:
                        self.err.write(f"postconf: option requires an argument -- '{ch}'\n")
                        raise _Fatal(_USAGE)
                    self.option(ch, optarg)
                    break
                self.option(ch, None)
                j += 1
            i += 1
        self.names = argv[i:]

    def option(self, ch: str, optarg: str | None) -> None:
        if ch == "c":
            self.config_dir = optarg or CONFIG_DIR
            self.config_dir_given = True
        elif ch == "C":
            classes: set[str] = set()
            for word in (optarg or "").replace(",", " ").split():
                if word.lower() not in _CLASSES:
                    raise _Fatal(f'unknown -C option value "{word}" in "{optarg}"')
                classes |= _CLASSES[word.lower()]
            self.classes = classes
        elif ch == "v":
            pass
        else:
            if ch == "o":
                self.overrides.append(optarg or "")
            self.mode |= _OPTION_BITS[ch]

    def check_options(self) -> None:
        for group in _INCOMPATIBLE:
            both = self.mode & group
            if both & (both - 1):
                raise _Fatal(f"specify one of {_names(both)}")
        for major, allowed in _COMPATIBLE:
            if self.mode & major:
                excess = self.mode & ~(major | allowed)
                if excess:
                    raise _Fatal(f"with option {_names(major)}, do not specify {_names(excess)}")

    # -- reading the configuration ------------------------------------------------------------
    def read_main(self, host_defaults: dict[str, str]) -> MainConfig:
        try:
            text = self.path("main.cf").read_text()
        except OSError as e:
            hint = ""
            if not self.path("main.cf").parent.exists():
                hint = f"{self.root} is not a mailsim host (create one with: mailsim init {self.root})"
            raise _Fatal(f"open {self.main_cf}: {e.strerror}", hint) from None
        try:
            parsed = parse_main_cf(text, self.main_cf)
        except ConfigError as e:
            raise _Fatal(e.postfix_text, e.hint) from None
        for w in parsed.warnings:
            self.warn(w)
        conf = MainConfig.from_text(text, host_defaults, self.main_cf, services=())
        explicit = dict(conf.explicit)
        if self.config_dir_given:
            explicit["config_directory"] = self.config_dir
        for arg in self.overrides:
            try:
                name, value = split_nameval(arg)
            except ValueError as e:
                raise _Fatal(f"invalid parameter override: {arg}: {e}") from None
            explicit[name] = value
        self.main_order = [e.name for e in parsed.entries]
        return MainConfig(explicit, filename=self.main_cf, host_defaults=host_defaults,
                          services=(), warnings=conf.warnings, lines=conf.lines,
                          readonly_assignments=conf.readonly_assignments)

    def read_master(self, fail_on_open: bool) -> list[MasterEntry]:
        try:
            text = self.path("master.cf").read_text()
        except OSError as e:
            if fail_on_open:
                raise _Fatal(f"open {self.master_cf}: {e.strerror}") from None
            self.warn(f"open {self.master_cf}: {e.strerror}")
            return []
        warnings: list[str] = []
        try:
            entries = parse_master_cf(text, self.master_cf, warnings)
        except ConfigError as e:
            raise _Fatal(e.postfix_text, e.hint) from None
        finally:
            for w in warnings:
                self.warn(w)
        return entries

    # -- the parameter table (builtin, service, user, legacy) ---------------------------------------
    def build_table(self, conf: MainConfig, master: list[MasterEntry], user: bool) -> None:
        services = [(e.service, e.program) for e in master]
        self.conf = MainConfig(conf.explicit, filename=conf.filename,
                               host_defaults=conf.host_defaults, services=services,
                               lines=conf.lines, readonly_assignments=conf.readonly_assignments)
        if self.config_dir_given:
            self.conf._defaults["config_directory"] = self.config_dir
        self.master = master
        self.table: dict[str, str] = {}
        for name in builtin_defaults():
            self.table[name] = "builtin"
        for name in service_parameter_names(services):
            self.table[name] = "service"
        for name in LEGACY:
            self.table[name] = "legacy"
        self.local_params = [dict(e.params) for e in master]
        self.local_valid: list[set[str]] = [set() for _ in master]
        if user:
            self.register_user()

    def register_user(self) -> None:
        """postconf_user.c: which user-defined names are valid; undefined $names."""
        explicit = self.conf.explicit
        rest_classes: set[str] = set()

        def flag(ref: str, local: int | None) -> None:
            supplied = False
            if local is not None and ref in self.local_params[local]:
                supplied = True
                self.local_valid[local].add(ref)
            elif ref in explicit:
                supplied = True
                self.table.setdefault(ref, "user")
            if local is None:
                for i, params in enumerate(self.local_params):
                    if ref in params:
                        supplied = True
                        self.local_valid[i].add(ref)
            if not supplied and ref not in self.table:
                source = "master.cf" if local is not None else "main.cf"
                self.warn(f"{self.config_dir}/{source}: undefined parameter: {ref}")

        def namespace(params: dict[str, str], local: int | None,
                      order: list[tuple[str, str, bool]]) -> None:
            source = "master.cf" if local is not None else "main.cf"
            if "smtpd_restriction_classes" in params:
                value = mac_expand(params["smtpd_restriction_classes"], params.get)[0]
                for word in value.replace(",", " ").split():
                    if local is None:
                        rest_classes.add(word)
                    flag(word, local)
            for name, value, readonly in order:
                if local is not None and name in rest_classes:
                    self.local_valid[local].add(name)
                if name in self.table:
                    if name in READONLY or readonly:
                        self.warn(f"{self.config_dir}/{source}: read-only parameter "
                                  f"assignment: {name}={value}")
                        params.pop(name, None)
                        continue
                    if self.table[name] == "legacy":
                        self.table[name] = "user"
                    if name in RAW:
                        continue
                mac_scan(value, lambda ref: flag(ref, local), warn=self.warn)

        for i, params in enumerate(self.local_params):
            if params:
                namespace(params, i, [(k, v, False) for k, v in list(params.items())])
        for name, kind in list(self.table.items()):
            if name in RAW or name in explicit or kind == "user":
                continue
            default = self.conf.default(name) or ""
            if "$" in default:
                for ref in _default_refs(default):
                    if ref not in self.table:
                        flag(ref, None)
        order = self.main_entries()
        namespace(explicit, None, order)

    def main_entries(self) -> list[tuple[str, str, bool]]:
        """main.cf settings (and -o overrides) in file order, read-only ones included."""
        out: list[tuple[str, str, bool]] = []
        seen: set[str] = set()
        for name in self.main_order:
            if name in seen:
                continue
            seen.add(name)
            if name in self.conf.readonly_assignments:
                out.append((name, self.conf.readonly_assignments[name], True))
            elif name in self.conf.explicit:
                out.append((name, self.conf.explicit[name], False))
        for name, value in self.conf.explicit.items():
            if name not in seen:
                out.append((name, value, False))
        return out

    def flag_unused(self, main: bool) -> None:
        if main:
            for name, value in self.conf.explicit.items():
                if name not in self.table:
                    self.warn(f"{self.main_cf}: unused parameter: {name}={value}")
        for i, params in enumerate(self.local_params):
            for name, value in params.items():
                if name not in self.table and name not in self.local_valid[i]:
                    self.warn(f"{self.master_cf}: unused parameter: {name}={value}")

    # -- values ---------------------------------------------------------------------------
    def lookup(self, name: str, local: int | None = None) -> str | None:
        """pcf_lookup_parameter_value() for $name expansion (never "non-default only")."""
        if not self.mode & SHOW_DEFS:
            if local is not None:
                ro = self.master[local].readonly_params
                if name in ro:
                    return ro[name]
                if name in self.local_params[local]:
                    return self.local_params[local][name]
            if name in self.conf.explicit:
                return self.conf.explicit[name]
        if name in self.table:
            return self.conf.default(name) or ""
        return None

    def expand(self, value: str, local: int | None = None) -> str:
        result, status = mac_expand(value, lambda n: self.lookup(n, local), warn=self.warn)
        if status & PARSE_ERROR:
            raise _Fatal("macro processing error")
        return result

    def value_of(self, name: str) -> str | None:
        if self.mode & SHOW_DEFS:
            return self.conf.default(name) or "" if self.table.get(name) != "user" else ""
        if name in self.conf.explicit:
            return self.conf.explicit[name]
        if self.mode & SHOW_NONDEF:
            return None
        return self.conf.default(name) or ""

    def print_parameter(self, name: str) -> None:
        value = self.value_of(name)
        if value is None:
            return
        fold = bool(self.mode & FOLD_LINE)
        if self.mode & HIDE_VALUE:
            self.out.write(print_line(name, fold))
            return
        if self.mode & SHOW_EVAL and name not in RAW:
            value = self.expand(value)
        if self.mode & HIDE_NAME:
            self.out.write(print_line(value, fold))
        else:
            self.out.write(print_line(f"{name} = {value}", fold))

    def show_parameters(self) -> None:
        if not self.names:
            for name in sorted(self.table):
                if self.table[name] in self.classes:
                    self.print_parameter(name)
            return
        for name in self.names:
            if name not in self.table:
                self.warn(f"{name}: unknown parameter")
                continue
            self.print_parameter(name)
            if self.table[name] != "user" and name not in SIMULATED:
                self.note(f"{name} is accepted but not simulated")

    # -- master.cf display --------------------------------------------------------------------
    def show_master_entries(self) -> None:
        reqs = []
        for raw in self.names:
            pat = parse_service_pattern(raw, 1, 2)
            if pat is None:
                raise _Fatal("-M option requires service_name[/type]")
            reqs.append([raw, pat, 0])
        fold = bool(self.mode & FOLD_LINE)
        for i, entry in enumerate(self.master):
            expand = (lambda v, i=i: self.expand(v, i)) if self.mode & SHOW_EVAL else None
            if not reqs:
                self.out.write(format_entry(entry, fold, expand))
            for req in reqs:
                if match_service(req[1], entry.service, entry.type):
                    req[2] += 1
                    self.out.write(format_entry(entry, fold, expand))
        for raw, _, count in reqs:
            if count == 0:
                self.warn(f'unmatched request: "{raw}"')

    def show_master_fields(self) -> None:
        reqs = []
        for raw in self.names:
            pat = parse_service_pattern(raw, 1, 3)
            if pat is None:
                raise _Fatal("-F option requires service_name[/type[/field]]")
            if pat[2] != "*" and pat[2] not in FIELD_NAMES:
                raise _Fatal(f'invalid service attribute name: "{pat[2]}"')
            reqs.append([raw, pat, 0])
        kw = dict(hide_name=bool(self.mode & HIDE_NAME), hide_value=bool(self.mode & HIDE_VALUE),
                  fold=bool(self.mode & FOLD_LINE))
        for i, entry in enumerate(self.master):
            expand = (lambda v, i=i: self.expand(v, i)) if self.mode & SHOW_EVAL else None
            fields: list[int] = []
            if not reqs:
                fields = list(range(8))
            for req in reqs:
                if match_service(req[1], entry.service, entry.type):
                    req[2] += 1
                    fields += list(range(8)) if req[1][2] == "*" else [FIELD_NAMES.index(req[1][2])]
            for f in fields:
                self.out.write(format_field(entry, f, expand=expand, **kw))
        for raw, _, count in reqs:
            if count == 0:
                self.warn(f'unmatched request: "{raw}"')

    def print_master_param(self, i: int, name: str, value: str) -> None:
        ns = self.master[i].name_space
        fold = bool(self.mode & FOLD_LINE)
        if self.mode & HIDE_VALUE:
            self.out.write(print_line(f"{ns}/{name}", fold))
            return
        if self.mode & SHOW_EVAL:
            value = self.expand(value, i)
        if self.mode & HIDE_NAME:
            self.out.write(print_line(value, fold))
        else:
            self.out.write(print_line(f"{ns}/{name} = {value}", fold))

    def show_master_params(self) -> None:
        reqs = []
        for raw in self.names:
            pat = parse_service_pattern(raw, 1, 3)
            if pat is None:
                raise _Fatal("-P option requires service_name[/type[/parameter]]")
            reqs.append([raw, pat, 0])
        for i, entry in enumerate(self.master):
            params = self.local_params[i]
            if not params:
                continue
            if not reqs:
                for name in sorted(params):
                    self.print_master_param(i, name, params[name])
            for req in reqs:
                if not match_service(req[1], entry.service, entry.type):
                    continue
                if req[1][2] == "*":
                    for name in sorted(params):
                        self.print_master_param(i, name, params[name])
                    req[2] += 1
                elif req[1][2] in params:
                    self.print_master_param(i, req[1][2], params[req[1][2]])
                    req[2] += 1
        for raw, _, count in reqs:
            if count == 0:
                self.warn(f'unmatched request: "{raw}"')

    # -- run -----------------------------------------------------------------------------------
    def run(self, argv: list[str]) -> int:
        self.parse_options(argv)
        master_modes = MASTER_ENTRY | MASTER_FLD | MASTER_PARAM
        edit_modes = EDIT_CONF | COMMENT_OUT | EDIT_EXCL
        if not self.mode & _INCOMPATIBLE[0]:
            self.mode |= MAIN_PARAM
        if self.mode & (MAIN_PARAM | master_modes) and self.names and "=" in self.names[0]:
            self.mode |= EDIT_CONF
        self.check_options()
        if self.mode & EDIT_CONF and not self.names:
            raise _Fatal("-e requires name=value argument")
        unsupported = [n for n, bit in _NAMES if bit & (SHOW_SASL_SERV | SHOW_SASL_CLNT
                       | EXP_DSN_TEMPL | DUMP_DSN_TEMPL | SHOW_TLS | SHOW_MAPS) & self.mode]
        if unsupported:
            self.note(f"option {unsupported[0]} is not simulated (SASL, TLS, bounce templates "
                      "and map types are outside mailsim)")
            return 1
        if self.mode & SHOW_LOCKS:
            self.out.write("".join(t + "\n" for t in _LOCK_TYPES))
            return 0
        hd = _host_defaults(self.root)
        if self.mode & master_modes and not self.mode & edit_modes:
            master = self.read_master(fail_on_open=True)
            conf = self.read_main(hd)
            self.build_table(conf, master, user=True)
            if self.mode & MASTER_FLD:
                self.show_master_fields()
            elif self.mode & MASTER_PARAM:
                self.show_master_params()
            else:
                self.show_master_entries()
            self.flag_unused(main=False)
            return 0
        if self.mode & edit_modes:
            if not self.names:
                raise _Fatal("missing service argument")
            action = "e" if self.mode & EDIT_CONF else "#" if self.mode & COMMENT_OUT else "X"
            if self.mode & master_modes:
                kind = "M" if self.mode & MASTER_ENTRY else "F" if self.mode & MASTER_FLD else "P"
                path = self.path("master.cf")
                try:
                    text = path.read_text()
                except OSError as e:
                    raise _Fatal(f"open {self.master_cf} for reading: {e.strerror}") from None
                try:
                    new = edit_master_cf(text, kind, action, self.names, self.master_cf, self.warn)
                except MasterEditError as e:
                    raise _Fatal(str(e)) from None
            else:
                path = self.path("main.cf")
                try:
                    text = path.read_text()
                except OSError as e:
                    raise _Fatal(f"open {self.main_cf} for reading: {e.strerror}") from None
                new = edit_main_cf(text, action, self.names, self.main_cf, self.warn)
            _write(path, new)
            return 0
        if self.mode & SHOW_DEFS:
            conf = MainConfig({}, filename=self.main_cf, host_defaults=hd, services=())
        else:
            conf = self.read_main(hd)
        master = self.read_master(fail_on_open=False)
        self.build_table(conf, master, user=not self.mode & SHOW_DEFS)
        self.show_parameters()
        if not self.mode & SHOW_DEFS:
            self.flag_unused(main=True)
        return 0


_REFS: dict[str, tuple[str, ...]] = {}


def _default_refs(value: str) -> tuple[str, ...]:
    """The $names a default value refers to (cached: defaults never change)."""
    if value not in _REFS:
        names: list[str] = []
        mac_scan(value, names.append)
        _REFS[value] = tuple(names)
    return _REFS[value]


def main(root: Path, argv: list[str], out: TextIO, err: TextIO) -> int:
    """Run ``postconf ARGV`` on the host folder ``root``; return the exit status.

    >>> import io, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     root = pathlib.Path(tmp)
    ...     (root / "etc/postfix").mkdir(parents=True)
    ...     _ = (root / "etc/postfix/main.cf").write_text("myhostname = mail.example.com\\n")
    ...     out, err = io.StringIO(), io.StringIO()
    ...     main(root, ["-x", "mydestination"], out, err), out.getvalue()
    (0, 'mydestination = mail.example.com, localhost.example.com, localhost\\n')
    """
    cmd = _Postconf(Path(root), out, err)
    try:
        return cmd.run(list(argv))
    except _Fatal as e:
        err.write(f"postconf: fatal: {printable(str(e))}\n")
        if e.hint:
            err.write(f"postconf: mailsim: hint: {e.hint}\n")
        return 1
