"""The postmap, postalias and newaliases commands for a simulated host.

Models ``src/postmap/postmap.c``, ``src/postalias/postalias.c`` and
``newaliases`` (``sendmail -bi``, which runs postalias on every table of
``alias_database``). Options, messages and exit codes are those of Postfix
3.7.11 on Debian 12 (checked against the real programs, see
``tests/golden/maps/``):

* options are parsed like getopt with a leading ``+``: the first non-option
  ends them (``postmap virtual -q x`` tries to build a table named ``-q``);
* ``-q KEY`` prints the first value found and exits 0, else exits 1 silently;
  ``-q -`` reads keys from standard input, one per line, and prints ``key
  TAB value`` (postalias: ``key: TAB value``) for each key found;
* ``-s`` lists the first table only, in database order (see
  :mod:`mailsim.maps.bdb_order`; texthash and inline tables list in
  insertion order where Postfix uses a per-process random order);
* ``-d KEY`` removes a key (exit 1 if absent); ``-i`` adds entries read from
  standard input; ``-f`` no case folding; ``-n``/``-N`` without/with a
  trailing NUL; ``-r`` replace, ``-w`` ignore duplicates; ``-b``/``-h`` with
  ``-q -`` take the keys from a message's body/header lines (no MIME parsing:
  ``-m`` is accepted and ignored); ``-F`` is not simulated;
* problems: ``postmap: warning: ...`` on stderr; ``postmap: fatal: ...``
  and exit status 1.

Paths are paths of the simulated server, read inside the host folder ``root``;
a relative table name is taken relative to ``/etc/postfix``. ``-c DIR`` reads
``DIR/main.cf`` inside the host. Real postmap also logs its warnings to the
mail log; mailsim's commands only print them.

Examples
--------
>>> import io, tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "etc/postfix").mkdir(parents=True)
>>> _ = (root / "etc/postfix/main.cf").write_text("myhostname = mail.example.com\\n")
>>> _ = (root / "etc/postfix/virtual").write_text("info@sue.nl  gerda\\n")
>>> out, err = io.StringIO(), io.StringIO()
>>> postmap_main(root, ["hash:/etc/postfix/virtual"], out, err)
0
>>> postmap_main(root, ["-q", "INFO@sue.nl", "hash:/etc/postfix/virtual"], out, err), out.getvalue()
(0, 'gerda\\n')
>>> postmap_main(root, ["/etc/postfix/nosuch"], out, err), err.getvalue()
(1, 'postmap: fatal: open /etc/postfix/nosuch: No such file or directory\\n')
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from . import _open
from .aliases import add_signatures, alias_entries
from .base import Map, MapError, OpenFlags, SurrogateMap, errno_text
from .hashdb import DB_TYPES, CompiledError, TableWriter, db_suffix, read_compiled
from .source import UnbalancedQuote, logical_lines, split_key_value

__all__ = ["postmap_main", "postalias_main", "newaliases_main"]

#: types that dict_open knows but mkmap cannot create
_KNOWN_TYPES = ("btree", "cidr", "environ", "fail", "hash", "inline", "internal", "lmdb",
                "memcache", "nis", "pcre", "pipemap", "proxy", "randmap", "regexp",
                "socketmap", "static", "tcp", "texthash", "unionmap", "unix")


class Fatal(Exception):
    """msg_fatal(): print ``PROG: fatal: TEXT`` and exit 1."""


# -- host access ---------------------------------------------------------------------------------
def _resolver(root: Path):
    root = Path(root).resolve()

    def resolve(p: str) -> Path:
        s = os.fspath(p)
        if not s.startswith("/"):
            s = "/etc/postfix/" + s
        out = (root / os.path.normpath(s).lstrip("/")).resolve()
        if out != root and root not in out.parents:
            raise Fatal(f"{p}: outside the simulated host")
        return out
    return resolve


def _read_main_cf(path: Path) -> dict[str, str]:
    """Minimal main.cf reader (name = value, continuation lines)."""
    params: dict[str, str] = {}
    try:
        text = path.read_text("utf-8", "surrogateescape")
    except OSError:
        return params
    for _n, line in logical_lines(text, str(path), lambda _w: None):
        name, eq, value = line.partition("=")
        if eq:
            params[name.strip()] = " ".join(value.split())
    return params


class _Config:
    """The few main.cf parameters these commands read.

    Uses :class:`mailsim.conf.MainConfig` through :class:`mailsim.host.Host`
    when available; falls back to a minimal reader of main.cf with ``$name``
    expansion.
    """

    DEFAULTS = {"default_database_type": "hash", "alias_database": "hash:/etc/aliases",
                "smtputf8_enable": "yes", "mydomain": "localdomain"}

    def __init__(self, root: Path, config_dir: str | None, resolve) -> None:
        self.root = Path(root)
        self.host = None
        self._params: dict[str, str] | None = None
        if config_dir in (None, "/etc/postfix"):
            try:
                from ..host import Host
                self.host = Host(root)
            except Exception:  # conf package missing or broken: fall back
                self.host = None
        if self.host is None:
            self._params = _read_main_cf(resolve((config_dir or "/etc/postfix") + "/main.cf"))
            hn = self._params.get("myhostname") or self._hostname_file()
            self._params.setdefault("myhostname", hn)

    def _hostname_file(self) -> str:
        try:
            name = (self.root / "etc/hostname").read_text().split()[0]
        except (OSError, IndexError):
            name = "localhost"
        return name if "." in name else name + ".localdomain"

    def get(self, name: str) -> str:
        if self.host is not None:
            try:
                v = self.host.conf.get(name)
                if v is not None:
                    return v
            except Exception:
                pass
            return self.DEFAULTS.get(name, "")
        assert self._params is not None
        raw = self._params.get(name, self.DEFAULTS.get(name, ""))
        for _ in range(10):
            new = re.sub(r"\$(\{(\w+)\}|\((\w+)\)|(\w+))",
                         lambda m: self._params.get(m.group(2) or m.group(3) or m.group(4), ""), raw)
            if new == raw:
                break
            raw = new
        return raw

    def list(self, name: str) -> list[str]:
        if self.host is not None:
            try:
                return list(self.host.conf.list(name))
            except Exception:
                pass
        # TODO: drop this fallback once mailsim.conf (Host(root).conf) is always present
        return [x for x in re.split(r"[\s,]+", self.get(name)) if x]

    def now(self) -> float:
        if self.host is not None:
            return self.host.clock.now()
        from ..clock import SimClock
        return SimClock().now()


# -- shared machinery ------------------------------------------------------------------------------
def _printable(s: str) -> str:
    return "".join(c if c.isprintable() and not 0xDC80 <= ord(c) <= 0xDCFF else "?" for c in s)


@dataclass
class _Opts:
    query: str | None = None
    delkey: str | None = None
    sequence: bool = False
    incremental: bool = False
    fold: bool = True
    nul: bool = True
    dup: str = "warn"
    body: bool = False
    header: bool = False
    mime: bool = False
    rhs_file: bool = False
    config_dir: str | None = None
    files: list[str] = field(default_factory=list)


class _Command:
    prog = "postmap"
    optstring = "bc:d:fFhimnNopq:rsuUvw"
    usage_text = "[-bfFhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file..."

    def __init__(self, root: Path, out: TextIO, err: TextIO, stdin: TextIO | None = None) -> None:
        self.root = Path(root)
        self.out = out
        self.err = err
        self.stdin = stdin if stdin is not None else sys.stdin
        self.resolve = _resolver(self.root)
        self.conf: _Config | None = None

    # -- messages
    def warning(self, text: str) -> None:
        self.err.write(f"{self.prog}: warning: {_printable(text)}\n")

    def message(self, line: str) -> None:
        """A dict message such as ``warning: ...`` or ``error: ...``."""
        self.err.write(f"{self.prog}: {_printable(line)}\n")

    def usage(self) -> None:
        raise Fatal(f"usage: {self.prog} {self.usage_text}")

    # -- getopt("+...")
    def parse(self, argv: list[str]) -> _Opts:
        o = _Opts()
        takes_arg = {c for c, nxt in zip(self.optstring, self.optstring[1:] + " ") if nxt == ":"}
        letters = set(self.optstring.replace(":", ""))
        i = 0
        while i < len(argv):
            a = argv[i]
            if a == "--":
                i += 1
                break
            if not a.startswith("-") or a == "-":
                break
            j = 1
            while j < len(a):
                c = a[j]
                if c not in letters:
                    self.err.write(f"{self.prog}: invalid option -- '{c}'\n")
                    self.usage()
                if c in takes_arg:
                    if j + 1 < len(a):
                        arg = a[j + 1:]
                    elif i + 1 < len(argv):
                        i += 1
                        arg = argv[i]
                    else:
                        self.err.write(f"{self.prog}: option requires an argument -- '{c}'\n")
                        self.usage()
                    self.option(o, c, arg)
                    break
                self.option(o, c, None)
                j += 1
            i += 1
        o.files = argv[i:]
        return o

    def option(self, o: _Opts, c: str, arg: str | None) -> None:
        if c == "N":
            o.nul = True
        elif c == "n":
            o.nul = False
        elif c == "b":
            o.body = True
        elif c == "h":
            o.header = True
        elif c == "m":
            o.mime = True
        elif c == "F":
            o.rhs_file = True
        elif c == "c":
            o.config_dir = arg
        elif c == "d":
            if o.sequence or o.query is not None or o.delkey is not None:
                raise Fatal("specify only one of -s -q or -d")
            o.delkey = arg
        elif c == "q":
            if o.sequence or o.query is not None or o.delkey is not None:
                raise Fatal("specify only one of -s -q or -d")
            o.query = arg
        elif c == "s":
            if o.query is not None or o.delkey is not None:
                raise Fatal("specify only one of -s or -q or -d")
            o.sequence = True
        elif c == "f":
            o.fold = False
        elif c == "i":
            o.incremental = True
        elif c == "r":
            o.dup = "replace"
        elif c == "w":
            o.dup = "ignore"
        # -o -p -u -U -v: accepted, nothing to simulate

    # -- tables
    def split(self, arg: str) -> tuple[str, str]:
        type_, sep, name = arg.partition(":")
        if not sep:
            return self.conf.get("default_database_type") or "hash", arg
        if not type_ or not name:
            raise Fatal(f'open dictionary: expecting "type:name" form instead of "{type_}:{name}"')
        return type_, name

    def open(self, type_: str, name: str, o: _Opts) -> Map:
        """dict_open3() in a command: an unusable table is fatal."""
        try:
            m = _open(f"{type_}:{name}", self.resolve, OpenFlags(fold=o.fold, dup=o.dup))
        except MapError as e:
            raise Fatal(e.reason) from None
        if isinstance(m, SurrogateMap):
            if m.note:
                self.err.write(m.note + "\n")
            raise Fatal(m.reason)
        for line in m.messages:
            self.message(line)
        return m

    def bdb_note(self, e: CompiledError) -> None:
        if e.note:
            self.err.write(e.note + "\n")

    def value_warnings(self, type_: str, name: str, key: str, value: str) -> None:
        if value == "":
            self.warning(f"table {type_}:{name}: key {key}: empty string result is not allowed")
            self.warning(f"table {type_}:{name} should return NO RESULT in case of NOT FOUND")

    def lookup(self, m: Map, key: str) -> str | None:
        try:
            return m.lookup(key)
        except MapError as e:
            raise Fatal(f"table {m.spec}: query error: {e.reason}") from None

    # -- main
    def run(self, argv: list[str]) -> int:
        try:
            o = self.parse(argv)
            self.conf = _Config(self.root, o.config_dir, self.resolve)
            return self.main(o)
        except Fatal as e:
            self.err.write(f"{self.prog}: fatal: {_printable(str(e))}\n")
            return 1

    def main(self, o: _Opts) -> int:
        if (o.query != "-") and (o.body or o.header or o.mime) and self.prog == "postmap":
            raise Fatal('specify -b -h or -m only with "-q -"')
        if o.rhs_file:
            raise Fatal("mailsim does not simulate postmap -F")
        if o.delkey is not None:
            if not o.files:
                self.usage()
            if o.delkey == "-":
                keys = [line for line in self.stdin.read().splitlines()]
            else:
                keys = [o.delkey]
            found = False
            for arg in o.files:
                found |= self.delete(*self.split(arg), keys, o)
            return 0 if found else 1
        if o.query is not None:
            if not o.files:
                self.usage()
            if o.query == "-":
                return 0 if self.queries(o) else 1
            for arg in o.files:
                type_, name = self.split(arg)
                m = self.open(type_, name, o)
                value = self.lookup(m, o.query)
                if value is not None:
                    self.value_warnings(type_, name, o.query, value)
                    self.out.write(value + "\n")
                    return 0
            return 1
        if o.sequence:
            if not o.files:
                return 1
            self.seq(*self.split(o.files[0]), o)
            return 0
        if not o.files:
            self.usage()
        for arg in o.files:
            self.build(*self.split(arg), o)
        return 0

    def query_keys(self, o: _Opts) -> list[str]:
        lines = self.stdin.read().splitlines()
        if not (o.header or o.body):
            return lines
        keys: list[str] = []
        i = 0
        while i < len(lines) and lines[i] != "":
            hdr = lines[i]
            i += 1
            while i < len(lines) and lines[i][:1] in (" ", "\t") and lines[i] != "":
                hdr += "\n" + lines[i]
                i += 1
            if o.header:
                keys.append(hdr)
        if o.body:
            keys.extend(lines[i + 1:])
        return keys

    def output_line(self, key: str, value: str) -> str:
        return f"{key}\t{value}\n"

    def queries(self, o: _Opts) -> bool:
        maps: list[Map | None] = [None] * len(o.files)
        found = False
        for key in self.query_keys(o):
            for n, arg in enumerate(o.files):
                if maps[n] is None:
                    maps[n] = self.open(*self.split(arg), o)
                m = maps[n]
                value = self.lookup(m, key)
                if value is not None:
                    self.value_warnings(m.type, m.name, key, value)
                    self.out.write(self.output_line(key, value))
                    found = True
                    break
        return found

    def seq(self, type_: str, name: str, o: _Opts) -> None:
        if type_ == "proxy":
            raise Fatal("can't sequence maps via the proxy service")
        m = self.open(type_, name, o)
        try:
            items = list(m.sequence())
        except MapError as e:
            raise Fatal(e.reason if e.reason.startswith("table ")
                        else f"table {type_}:{name}: sequence operation is not supported") from None
        for k, v in items:
            if k == "":
                self.warning(f"table {type_}:{name}: empty lookup key value is not allowed")
            elif v == "":
                self.value_warnings(type_, name, k, v)
            self.out.write(self.output_line(k, v))

    def delete(self, type_: str, name: str, keys: list[str], o: _Opts) -> bool:
        if type_ == "proxy":
            raise Fatal(f"{type_}:{name}: deletes via the proxy service are not simulated")
        if type_ not in DB_TYPES:
            m = self.open(type_, name, o)     # unknown types and missing files fail first
            if type_ == "fail":
                raise Fatal(f"table {type_}:{name}: delete error: Application error")
            raise Fatal(f"{type_}:{name} map requires O_RDONLY access mode")
        db = self.resolve(name + db_suffix(type_))
        try:
            entries = read_compiled(db, type_, name + db_suffix(type_))
        except CompiledError as e:
            self.bdb_note(e)
            raise Fatal(str(e)) from None
        w = TableWriter(type_, name, fold=o.fold, nul=o.nul, dup=o.dup, entries=entries)
        found = False
        for k in keys:
            found |= w.delete(k)
        if found:
            w.save(db, source=self._source_of(db))
        return found

    @staticmethod
    def _source_of(db: Path) -> str | None:
        import json
        try:
            return json.loads(db.read_text("utf-8")).get("source")
        except (OSError, ValueError):
            return None

    # -- building
    def writer(self, type_: str, name: str, o: _Opts) -> tuple[TableWriter, Path]:
        """mkmap_open(): check the type, load existing entries with -i."""
        if type_ not in DB_TYPES:
            if type_ == "fail":
                raise Fatal(f"table {type_}:{name}: write error: Application error")
            if type_ in _KNOWN_TYPES:
                raise Fatal(f"unsupported dictionary type: {type_} does not support bulk-mode creation.")
            raise Fatal(f"unsupported dictionary type: {type_}. Is the postfix-{type_} package installed?")
        db = self.resolve(name + db_suffix(type_))
        entries = None
        if o.incremental and db.exists():
            try:
                entries = read_compiled(db, type_, name + db_suffix(type_))
            except CompiledError as e:
                self.bdb_note(e)
                raise Fatal(str(e)) from None
        return TableWriter(type_, name, fold=o.fold, nul=o.nul, dup=o.dup, entries=entries), db

    def source_text(self, type_: str, name: str, o: _Opts) -> tuple[str, str]:
        """The source to read and its name in messages (``stdin`` with -i)."""
        if o.incremental:
            return self.stdin.read(), "stdin"
        if type_ == "proxy":
            raise Fatal("can't create maps via the proxy service")
        try:
            data = self.resolve(name).read_bytes()
        except OSError as e:
            raise Fatal(f"open {name}: {errno_text(e)}") from None
        return data.decode("utf-8", "surrogateescape"), name

    def flush(self, w: TableWriter) -> None:
        for line in w.messages:
            self.message(line)
        w.messages.clear()

    def build(self, type_: str, name: str, o: _Opts) -> None:
        text, label = self.source_text(type_, name, o)
        w, db = self.writer(type_, name, o)
        for lineno, line in logical_lines(text, label, self.warning):
            if any(0xDC80 <= ord(c) <= 0xDCFF for c in line):
                self.warning(f'{label}, line {lineno}: non-UTF-8 input "{line}" -- ignoring this line')
                continue
            try:
                key, value = split_key_value(line)
            except UnbalancedQuote:
                self.warning(f"{label}, line {lineno}: unbalanced '\"' in '{line}' -- ignoring this line")
                continue
            if not key or not value:
                self.warning(f"{label}, line {lineno}: expected format: key whitespace value")
                continue
            if key.endswith(":"):
                self.warning(f'{label}, line {lineno}: record is in "key: value" format; '
                             "is this an alias file?")
            w.append(key, value)
            self.flush(w)
        w.save(db, source=None if o.incremental else name)


class _Postalias(_Command):
    prog = "postalias"
    optstring = "Nc:d:finopq:rsuvw"
    usage_text = "[-Nfinoprsuvw] [-c config_dir] [-d key] [-q key] [map_type:]file..."

    def output_line(self, key: str, value: str) -> str:
        return f"{key}:\t{value}\n"

    def build(self, type_: str, name: str, o: _Opts) -> None:
        text, label = self.source_text(type_, name, o)
        w, db = self.writer(type_, name, o)
        for key, value in alias_entries(text, label, self.message):
            w.append(key, value)
            self.flush(w)
        add_signatures(w, self.conf.now(), self.conf.get("myhostname"), incremental=o.incremental)
        self.flush(w)
        w.save(db, source=None if o.incremental else name)


def postmap_main(root: Path, argv: list[str], out: TextIO, err: TextIO) -> int:
    """``postmap ARGV`` on the host at ``root``; returns the exit status."""
    return _Command(root, out, err).run(list(argv))


def postalias_main(root: Path, argv: list[str], out: TextIO, err: TextIO) -> int:
    """``postalias ARGV`` on the host at ``root``; returns the exit status."""
    return _Postalias(root, out, err).run(list(argv))


def newaliases_main(root: Path, argv: list[str], out: TextIO, err: TextIO) -> int:
    """``newaliases``: postalias on every table of ``alias_database``.

    Like sendmail -bi, it runs one postalias for all tables (messages say
    ``postalias:``) and fails if that postalias fails.
    """
    cmd = _Postalias(root, out, err)
    resolve = _resolver(Path(root))
    conf = _Config(Path(root), None, resolve)
    maps = conf.list("alias_database")
    if not maps:
        return 0
    return cmd.run(["--", *maps])
