"""Compiled tables: ``hash:``, ``btree:`` and ``lmdb:`` (Postfix's dict_db / dict_lmdb).

Models ``src/util/dict_db.c``, ``dict_lmdb.c`` and ``src/global/mkmap_db.c``
as far as a learner can see them:

* a daemon answers only from the compiled file that postmap/postalias wrote,
  ``FILE.db`` (``FILE.lmdb`` for lmdb) -- editing the source changes nothing
  until postmap runs again;
* a missing or unreadable compiled file makes the table a surrogate: the open
  logs ``error: open database FILE.db: No such file or directory`` and every
  lookup fails with ``hash:FILE is unavailable. open database ...``;
* keys and values are stored with a trailing NUL (``DICT_FLAG_TRY1NULL``,
  Linux's default; ``postmap -n`` stores none) and lookups try both forms;
* a duplicate key keeps the first value and warns ``FILE.db: duplicate entry:
  "key"`` (``-r`` replaces, ``-w`` ignores silently);
* opening a table whose source file is newer than ``FILE.db`` warns
  ``database FILE.db is older than source file FILE`` -- but only when the
  source changed more than 100 seconds ago (wall-clock time, whole seconds,
  as dict_db.c's ``st_mtime < time() - 100``), so that a postmap run right
  after an edit is not nagged. Postfix's daemons and ``postmap -q/-s/-d``
  open tables this way (``DICT_FLAG_LOCK``); building a table does not. Here
  the warning goes to :attr:`Map.messages`, which ``postmap -q/-s`` and
  ``postalias -q/-s`` print and the daemons log when they start
  (:mod:`mailsim.table_open`).

What is trusted: the compiled file is mailsim's own JSON (a header naming
mailsim, the table type and its source, then the entries in insertion order),
not Berkeley DB -- so real Postfix cannot read it and vice versa. Opening it
as another type (``btree:`` on a hash file) fails like DB does, with
``open database FILE.db: Invalid argument``. ``postmap -s`` order is
computed by :mod:`mailsim.maps.bdb_order`.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> w = TableWriter("hash", "/etc/postfix/virtual")
>>> w.append("Info@Sue.NL", "gerda"); w.append("info@sue.nl", "other")
>>> w.messages
['warning: /etc/postfix/virtual.db: duplicate entry: "info@sue.nl"']
>>> w.save(d / "virtual.db", source="/etc/postfix/virtual")
>>> m = HashMap("hash", "/etc/postfix/virtual", d / "virtual.db")
>>> m.lookup("INFO@sue.nl"), m.lookup("nobody")
('gerda', None)
>>> m.describe()
'hash:/etc/postfix/virtual (compiled virtual.db, 1 entry)'

The source was edited after postmap, long enough ago:

>>> _ = (d / "virtual").write_text("info@sue.nl gerda")
>>> now = time.time()
>>> os.utime(d / "virtual.db", (now - 300, now - 300))
>>> os.utime(d / "virtual", (now - 200, now - 200))
>>> HashMap("hash", "/etc/postfix/virtual", d / "virtual.db", source=d / "virtual").messages
['warning: database /etc/postfix/virtual.db is older than source file /etc/postfix/virtual']
>>> os.utime(d / "virtual", (now - 60, now - 60))        # edited a minute ago: no warning yet
>>> HashMap("hash", "/etc/postfix/virtual", d / "virtual.db", source=d / "virtual").messages
[]
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Iterator

from .base import DAEMON_FLAGS, Map, OpenFlags, errno_text
from .bdb_order import btree_order, hash_order

__all__ = ["DB_TYPES", "db_suffix", "HashMap", "TableWriter", "read_compiled", "CompiledError",
           "FORMAT_TAG", "source_is_newer"]

#: compiled types and the suffix of the file Postfix makes
DB_TYPES = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb"}
FORMAT_TAG = "mailsim compiled Postfix lookup table"
FORMAT_VERSION = 1


def db_suffix(type_: str) -> str:
    return DB_TYPES[type_]


class CompiledError(Exception):
    """A compiled table that cannot be read; ``str()`` is Postfix's reason.

    ``note`` is what Berkeley DB itself prints first when the file has the
    wrong format (``BDB0641 __db_meta_setup: FILE: unexpected file type or
    format``), or None.
    """

    def __init__(self, reason: str, note: str | None = None) -> None:
        super().__init__(reason)
        self.note = note


Entry = tuple[str, str, bool]          # key, value, stored with a trailing NUL


def source_is_newer(db_path: Path, source: Path, now: float | None = None) -> bool:
    """dict_db.c's test: the source is newer than the compiled file, and older than 100 s.

    Times are whole seconds (``st_mtime``, ``time()``); ``now`` defaults to
    the wall clock, as in Postfix (file times are real). A missing file: False.
    """
    try:
        src = source.stat().st_mtime_ns // 1_000_000_000
        db = db_path.stat().st_mtime_ns // 1_000_000_000
    except OSError:
        return False
    now_s = int(time.time() if now is None else now)
    return db < src < now_s - 100


def read_compiled(path: Path, type_: str, display: str) -> list[Entry]:
    """The entries of a compiled table file.

    ``display`` is the file name as Postfix would print it. Raises
    :class:`CompiledError` with ``open database DISPLAY: ...``.
    """
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CompiledError(f"open database {display}: {errno_text(e)}") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
        if doc.get("mailsim") != FORMAT_TAG:
            raise ValueError("not a mailsim table")
        if doc.get("type") != type_:
            raise ValueError("another table type")
        return [(str(k), str(v), bool(n)) for k, v, n in doc["entries"]]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        where = os.path.join(os.path.dirname(display) or ".", os.path.basename(display))
        note = (f"BDB0641 __db_meta_setup: {where}: unexpected file type or format"
                if type_ != "lmdb" else None)
        raise CompiledError(f"open database {display}: Invalid argument", note) from None


class HashMap(Map):
    """A compiled table, read once at open (``hash:``, ``btree:``, ``lmdb:``).

    ``source`` is the host path of the source file ``name``: when given, the
    open checks its age as dict_db.c / dict_lmdb.c do (see the module docstring).
    """

    fixed = True

    def __init__(self, type_: str, name: str, db_path: Path,
                 flags: OpenFlags = DAEMON_FLAGS, entries: list[Entry] | None = None,
                 source: Path | None = None) -> None:
        super().__init__(type_, name, flags)
        self.db_path = db_path
        self._watch(db_path)
        self.entries: list[Entry] = entries if entries is not None else read_compiled(
            db_path, type_, name + db_suffix(type_))
        self._index: dict[tuple[str, bool], str] = {(k, n): v for k, v, n in self.entries}
        if source is not None and source_is_newer(db_path, source):
            self.warn(f"database {name}{db_suffix(type_)} is older than source file {name}")

    def _lookup(self, key: str) -> str | None:
        v = self._index.get((key, True))
        return v if v is not None else self._index.get((key, False))

    def sequence(self) -> Iterator[tuple[str, str]]:
        keys = [k.encode("utf-8", "surrogateescape") + (b"\0" if n else b"")
                for k, _, n in self.entries]
        if self.type == "hash":
            vals = [v.encode("utf-8", "surrogateescape") + (b"\0" if n else b"")
                    for _, v, n in self.entries]
            order = hash_order(keys, vals)
        else:
            order = btree_order(keys)
        for i in order:
            yield self.entries[i][0], self.entries[i][1]

    def describe(self) -> str:
        n = len(self.entries)
        return (f"{self.spec} (compiled {os.path.basename(self.name)}{db_suffix(self.type)}, "
                f"{n} {'entry' if n == 1 else 'entries'})")


class TableWriter:
    """Builds or updates a compiled table, as postmap/postalias do (``mkmap``).

    ``dup`` is ``"warn"`` (default), ``"ignore"`` (``-w``) or ``"replace"``
    (``-r``); ``fold`` folds keys to lower case (default; ``-f`` turns it off);
    ``nul`` stores keys and values with a trailing NUL (``-N``/default vs ``-n``).
    Warnings go to :attr:`messages` as ``warning: ...`` lines.
    """

    def __init__(self, type_: str, name: str, *, fold: bool = True, dup: str = "warn",
                 nul: bool = True, entries: list[Entry] | None = None) -> None:
        self.type = type_
        self.name = name
        self.fold = fold
        self.dup = dup
        self.nul = nul
        self.messages: list[str] = []
        self._entries: dict[tuple[str, bool], str] = {}
        for k, v, n in entries or []:
            self._entries[(k, n)] = v

    @property
    def dict_name(self) -> str:
        """The name dict_db logs: the compiled file's name."""
        return self.name + db_suffix(self.type)

    def append(self, key: str, value: str, *, fold: bool | None = None,
               nul: bool | None = None, dup: str | None = None) -> None:
        fold = self.fold if fold is None else fold
        nul = self.nul if nul is None else nul
        dup = self.dup if dup is None else dup
        if fold:
            key = key.lower()
        if (key, nul) in self._entries:
            if dup == "replace":
                self._entries[(key, nul)] = value
            elif dup == "warn":
                self.messages.append(f'warning: {self.dict_name}: duplicate entry: "{key}"')
            return
        self._entries[(key, nul)] = value

    def delete(self, key: str) -> bool:
        """Remove ``key`` (either NUL form); True if it was there (``postmap -d``)."""
        if self.fold:
            key = key.lower()
        found = False
        for nul in (True, False):
            if (key, nul) in self._entries:
                del self._entries[(key, nul)]
                found = True
                break
        return found

    def entries(self) -> list[Entry]:
        return [(k, v, n) for (k, n), v in self._entries.items()]

    def save(self, path: Path, *, source: str | None = None) -> None:
        doc = {
            "mailsim": FORMAT_TAG,
            "version": FORMAT_VERSION,
            "note": "stands in for the Berkeley DB / LMDB file Postfix makes; "
                    "rebuild it with postmap or postalias",
            "type": self.type,
            "source": source,
            "entries": [[k, v, n] for k, v, n in self.entries()],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=0) + "\n", "utf-8",
                       errors="surrogateescape")
        os.replace(tmp, path)
