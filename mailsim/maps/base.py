"""The lookup-table interface every map type implements (Postfix's ``DICT``).

Models ``src/util/dict.h``, ``dict_open.c`` and ``dict_surrogate.c``:

* A table is opened once (a daemon does it at start-up) and then answers
  lookups. Opening reads whatever the type needs (a compiled ``.db``, a
  regexp file); problems found while reading are *messages* (``warning: ...``)
  that Postfix logs at open time, kept in :attr:`Map.messages`.
* A table that cannot be opened at all (missing ``.db``, missing regexp file,
  bad ``inline:`` syntax) becomes a *surrogate*, as in Postfix 3.x daemons: the
  open logs ``error: <reason>`` and every later lookup fails with the warning
  ``TYPE:NAME is unavailable. <reason>`` -- the caller answers "Temporary
  lookup failure". Commands such as postmap instead stop with
  ``postmap: fatal: <reason>`` (:attr:`SurrogateMap.reason`).
* Keys of fixed-string tables (hash, texthash, inline, unix) are folded to
  lower case at lookup (``DICT_FLAG_FOLD_FIX``, which every Postfix daemon and
  postmap without ``-f`` use); pattern tables (regexp, pcre, cidr) see the key
  as it is.

Nothing here reads the host: file access goes through the ``resolve``
function that :func:`mailsim.maps.open_map` received.

Examples
--------
>>> s = SurrogateMap("hash", "/etc/postfix/virtual",
...                  "open database /etc/postfix/virtual.db: No such file or directory")
>>> s.messages
['error: open database /etc/postfix/virtual.db: No such file or directory']
>>> try:
...     s.lookup("x")
... except MapError as e:
...     print(e.warning)
hash:/etc/postfix/virtual is unavailable. open database /etc/postfix/virtual.db: No such file or directory
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["MapError", "Map", "SurrogateMap", "OpenFlags", "DAEMON_FLAGS", "Resolver",
           "FileStamp", "stamp", "errno_text"]

#: maps an absolute path of the simulated server to a path in the host folder
Resolver = Callable[[str], Path]


class MapError(Exception):
    """A table could not be used: Postfix logs ``warning`` and answers "Temporary lookup failure".

    ``str(e)`` is the bare reason (``unsupported dictionary type: foo``);
    ``warning`` is the text Postfix logs after ``warning:`` (empty for
    ``fail:`` tables, which fail without logging anything themselves).
    """

    def __init__(self, spec: str, warning: str, reason: str | None = None) -> None:
        self.spec = spec
        self.warning = warning
        self.reason = reason if reason is not None else warning
        super().__init__(self.reason)


@dataclass(frozen=True)
class OpenFlags:
    """The ``dict_flags`` that matter to mailsim.

    ``fold``: fold fixed-string keys to lower case (``DICT_FLAG_FOLD_FIX``).
    ``dup``: what a table built from text does with a duplicate key: ``"warn"``
    (postmap's default: keep the first, warn), ``"ignore"`` (``-w``),
    ``"replace"`` (``-r``) or ``None`` (daemons: texthash then refuses the table).
    """
    fold: bool = True
    dup: str | None = None


#: what Postfix daemons pass (maps_create with DICT_FLAG_LOCK | DICT_FLAG_FOLD_FIX)
DAEMON_FLAGS = OpenFlags(fold=True, dup=None)


FileStamp = tuple[int, int] | None


def stamp(path: Path) -> FileStamp:
    """(mtime_ns, size) of a file, None when it does not exist."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def errno_text(e: OSError) -> str:
    """The C library's text for an OSError, as Postfix's ``%m`` prints it."""
    return os.strerror(e.errno) if e.errno else str(e)


class Map:
    """One opened lookup table.

    Subclasses set :attr:`type`, :attr:`name`, fill :attr:`messages` while
    opening, record the files they read in :attr:`_files`, and implement
    :meth:`_lookup`.
    """

    type: str = ""
    #: fixed-string tables fold the query to lower case; pattern tables don't
    fixed: bool = True

    def __init__(self, type_: str, name: str, flags: OpenFlags = DAEMON_FLAGS) -> None:
        self.type = type_
        self.name = name
        self.flags = flags
        #: what Postfix logs while opening this table ("warning: ...", "error: ...")
        self.messages: list[str] = []
        self._files: dict[Path, FileStamp] = {}

    @property
    def spec(self) -> str:
        return f"{self.type}:{self.name}"

    # -- the interface --------------------------------------------------------------
    def lookup(self, key: str) -> str | None:
        """The result for ``key``, None if not found; raises :class:`MapError` if unusable."""
        if self.fixed and self.flags.fold:
            key = key.lower()
        return self._lookup(key)

    def _lookup(self, key: str) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError

    def changed(self) -> bool:
        """True if a file behind this table changed since it was opened."""
        return any(stamp(p) != s for p, s in self._files.items())

    def describe(self) -> str:
        """One line for the course's explanations."""
        return self.spec

    def sequence(self) -> Iterator[tuple[str, str]]:
        """Every (key, value) in database order, as ``postmap -s`` prints them.

        Raises :class:`MapError` for types that cannot be listed (Postfix:
        "sequence operation is not supported").
        """
        raise MapError(self.spec, f"table {self.spec}: sequence operation is not supported")

    # -- helpers for subclasses ----------------------------------------------------------
    def _watch(self, path: Path) -> FileStamp:
        s = stamp(path)
        self._files[path] = s
        return s

    def warn(self, text: str) -> None:
        self.messages.append("warning: " + text)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"


class SurrogateMap(Map):
    """A table that could not be opened (Postfix's ``dict_surrogate``).

    Every lookup raises :class:`MapError` with ``TYPE:NAME is unavailable.
    REASON``. :meth:`changed` turns true when the file that was missing (or
    broken) changes, so a host reopens the table once the learner fixes it.
    """

    fixed = False

    def __init__(self, type_: str, name: str, reason: str,
                 watch: list[Path] | None = None, flags: OpenFlags = DAEMON_FLAGS,
                 note: str | None = None) -> None:
        super().__init__(type_, name, flags)
        self.reason = reason
        #: what a library printed on stderr before the failure (Berkeley DB's BDB0641 line)
        self.note = note
        self.messages.append("error: " + reason)
        for p in watch or []:
            self._watch(p)

    def _lookup(self, key: str) -> str | None:
        raise MapError(self.spec, f"{self.spec} is unavailable. {self.reason}", self.reason)

    def sequence(self) -> Iterator[tuple[str, str]]:
        raise MapError(self.spec, f"{self.spec} is unavailable. {self.reason}", self.reason)

    def describe(self) -> str:
        return f"{self.spec} (unavailable: {self.reason})"
