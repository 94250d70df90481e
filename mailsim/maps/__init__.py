"""Postfix lookup tables ("maps") for simulated hosts.

Models Postfix's dictionary layer (``src/util/dict_open.c`` and the
``dict_*.c`` modules; DATABASE_README): a table is named ``type:name``, and
:func:`open_map` returns a :class:`Map` that answers ``lookup(key)``.

Supported types (as on Debian 12 with the postfix-pcre and postfix-lmdb
plugins installed):

============  =================================================================
hash, btree   compiled by postmap/postalias into ``FILE.db``   (:mod:`.hashdb`)
lmdb          the same, in ``FILE.lmdb``                       (:mod:`.hashdb`)
texthash      the postmap source read directly                 (:mod:`.simple`)
inline        ``inline:{ key=value, { key = text } }``         (:mod:`.simple`)
static        ``static:value``, ``static:{ text }``            (:mod:`.simple`)
fail          every lookup fails                               (:mod:`.simple`)
regexp, pcre  pattern files or ``{ {rule} {rule} }``           (:mod:`.regexp`)
cidr          network/prefix tables                            (:mod:`.cidr`)
unix          ``passwd.byname``, ``group.byname`` of the host  (:mod:`.unix`)
nis           a host without NIS: never matches                (:mod:`.unix`)
proxy         ``proxy:TYPE:NAME``, transparent                 (here)
unionmap,     ``unionmap:{map, map}`` joins all results,       (here)
pipemap       ``pipemap:{map, map}`` feeds each result on
============  =================================================================

Any other type fails as in Postfix: ``unsupported dictionary type: foo``.
Paths in table names are paths of the simulated server; ``resolve`` maps
them into the host folder.

Examples
--------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> resolve = lambda p: root / p.lstrip("/")
>>> m = open_map("hash:/etc/postfix/virtual", resolve)     # no virtual.db yet
>>> try:
...     m.lookup("info@sue.nl")
... except MapError as e:
...     print(e.warning)
hash:/etc/postfix/virtual is unavailable. open database /etc/postfix/virtual.db: No such file or directory
>>> open_map("inline:{ a=1 }", resolve).lookup("A")
'1'
>>> try:
...     open_map("foo:bar", resolve)
... except MapError as e:
...     print(e)
unsupported dictionary type: foo
"""
from __future__ import annotations

import pathlib
import time
from typing import Callable, Iterator

from .base import DAEMON_FLAGS, Map, MapError, OpenFlags, SurrogateMap, errno_text
from .hashdb import DB_TYPES, CompiledError, HashMap, TableWriter, db_suffix

__all__ = ["MapError", "Map", "SurrogateMap", "open_map", "postalias_build", "split_spec",
           "SUPPORTED_TYPES", "OpenFlags"]

#: types ``postconf -m`` would list on this simulated Debian host
SUPPORTED_TYPES = ("btree", "cidr", "fail", "hash", "inline", "lmdb", "nis", "pcre", "pipemap",
                   "proxy", "regexp", "static", "texthash", "unionmap", "unix")


def split_spec(spec: str) -> tuple[str, str]:
    """``"hash:/etc/aliases"`` -> ``("hash", "/etc/aliases")``; MapError without a type."""
    type_, sep, name = spec.partition(":")
    if not sep or not type_ or not name:
        msg = f'open dictionary: expecting "type:name" form instead of "{spec}"'
        raise MapError(spec, msg)
    return type_, name


def _read_source(name: str, resolve: Callable[[str], pathlib.Path]) -> tuple[str | None, pathlib.Path | None, str | None]:
    """(text, path, error reason) of a pattern table's file; text None for ``{...}``."""
    if name.startswith("{"):
        return None, None, None
    path = resolve(name)
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape"), path, None
    except OSError as e:
        return None, path, f"open {name}: {errno_text(e)}"


class ProxyMap(Map):
    """``proxy:TYPE:NAME``: the proxymap service answers from the same table.

    Transparent here; Postfix's proxy_read_maps restriction is not modelled.
    """

    def __init__(self, inner: Map) -> None:
        super().__init__("proxy", inner.spec, inner.flags)
        self.inner = inner
        self.messages = inner.messages
        self.fixed = False

    def _lookup(self, key: str) -> str | None:
        return self.inner.lookup(key)

    def changed(self) -> bool:
        return self.inner.changed()

    def sequence(self) -> Iterator[tuple[str, str]]:
        raise MapError(self.spec, "can't sequence maps via the proxy service")

    def describe(self) -> str:
        return f"proxy:{self.inner.describe()}"


class ComboMap(Map):
    """``unionmap:{a, b}`` (all results, comma-joined) and ``pipemap:{a, b}`` (a pipeline)."""

    fixed = False

    def __init__(self, type_: str, name: str, maps: list[Map], flags: OpenFlags) -> None:
        super().__init__(type_, name, flags)
        self.maps = maps
        for m in maps:
            self.messages.extend(m.messages)

    def _lookup(self, key: str) -> str | None:
        if self.type == "unionmap":
            found = [r for r in (m.lookup(key) for m in self.maps) if r is not None]
            return ",".join(found) if found else None
        for m in self.maps:
            r = m.lookup(key)
            if r is None:
                return None
            key = r
        return key

    def changed(self) -> bool:
        return any(m.changed() for m in self.maps)

    def describe(self) -> str:
        return f"{self.type}:{{{', '.join(m.spec for m in self.maps)}}}"


def _open_combo(type_: str, name: str, resolve, flags: OpenFlags) -> Map:
    from .source import CHARS_BRACE, CHARS_COMMA_SP, extpar, mystrtokq
    inner, err = extpar(name, CHARS_BRACE, strip=True)
    if err:
        return SurrogateMap(type_, name, f"bad syntax: \"{type_}:{name}\"; need \"{type_}:{{type:name...}}\"",
                            flags=flags)
    specs = []
    rest = inner
    while True:
        tok, rest = mystrtokq(rest, CHARS_COMMA_SP, CHARS_BRACE)
        if tok is None:
            break
        specs.append(tok)
    if not specs:
        return SurrogateMap(type_, name, f"empty table: \"{type_}:{name}\"; need \"{type_}:{{type:name...}}\"",
                            flags=flags)
    return ComboMap(type_, name, [_open(s, resolve, flags) for s in specs], flags)


def _open(spec: str, resolve: Callable[[str], pathlib.Path], flags: OpenFlags) -> Map:
    type_, name = split_spec(spec)
    if type_ in DB_TYPES:
        path = resolve(name + db_suffix(type_))
        try:
            source = resolve(name)          # dict_db.c stat()s it: "older than source file"
        except Exception:                   # noqa: BLE001 - a link out of the host: nothing to compare
            source = None
        try:
            return HashMap(type_, name, path, flags, source=source)
        except CompiledError as e:
            return SurrogateMap(type_, name, str(e), watch=[path], flags=flags, note=e.note)
    if type_ in ("regexp", "pcre", "cidr"):
        text, path, why = _read_source(name, resolve)
        if why:
            return SurrogateMap(type_, name, why, watch=[path] if path else None, flags=flags)
        try:
            if type_ == "cidr":
                from .cidr import CidrMap
                return CidrMap(type_, name, text, flags, path)
            from .regexp import PatternMap
            return PatternMap(type_, name, text, flags, path)
        except ValueError as e:           # bad inline {...} syntax
            return SurrogateMap(type_, name, f"{type_} map: {e}", flags=flags)
    if type_ == "texthash":
        from .simple import open_texthash
        return open_texthash(name, resolve(name), flags)
    if type_ == "inline":
        from .simple import open_inline
        return open_inline(name, flags)
    if type_ == "static":
        from .simple import open_static
        return open_static(name, flags)
    if type_ == "fail":
        from .simple import FailMap
        return FailMap("fail", name, flags)
    if type_ == "unix":
        from .unix import UNIX_TABLES, UnixMap
        if name not in UNIX_TABLES:
            return SurrogateMap("unix", name, f"unknown table: unix:{name}", flags=flags)
        return UnixMap(name, resolve, flags)
    if type_ == "nis":
        from .unix import NisMap
        return NisMap(name, flags)
    if type_ == "proxy":
        return ProxyMap(_open(name, resolve, flags))
    if type_ in ("unionmap", "pipemap"):
        return _open_combo(type_, name, resolve, flags)
    raise MapError(spec, f"{spec} is unavailable. unsupported dictionary type: {type_}",
                   f"unsupported dictionary type: {type_}")


def open_map(spec: str, resolve: Callable[[str], pathlib.Path]) -> Map:
    """Open the table ``spec`` the way a Postfix daemon does.

    Never raises for a missing or broken file: the table then answers every
    lookup with :class:`MapError` (see :class:`SurrogateMap`). Raises
    :class:`MapError` for an unknown type or a name without ``type:``.
    """
    return _open(spec, resolve, DAEMON_FLAGS)


def postalias_build(host, spec: str) -> None:
    """Compile an aliases source into its ``.db``, as ``postalias spec`` does.

    ``host`` needs ``.path(str) -> Path``; ``host.conf["myhostname"]`` and
    ``host.clock`` are used for the NIS signature entries when present.
    Warnings are returned nowhere: use the postalias command to see them.
    """
    from .aliases import add_signatures, alias_entries
    type_, name = split_spec(spec)
    if type_ not in DB_TYPES:
        raise MapError(spec, f"unsupported map type for this operation: {type_}")
    src = host.path(name)
    text = src.read_bytes().decode("utf-8", "surrogateescape")
    w = TableWriter(type_, name)
    for k, v in alias_entries(text, name, lambda _m: None):
        w.append(k, v)
    add_signatures(w, _now(host), _myhostname(host))
    w.save(host.path(name + db_suffix(type_)), source=name)


def _now(host) -> float:
    clock = getattr(host, "clock", None)
    return clock.now() if clock is not None else time.time()


def _myhostname(host) -> str:
    conf = getattr(host, "conf", None)
    try:
        if conf is not None and conf["myhostname"]:
            return conf["myhostname"]
    except (KeyError, TypeError):
        pass
    import socket
    return socket.getfqdn()
