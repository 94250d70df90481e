"""System tables: ``unix:passwd.byname``, ``unix:group.byname`` and ``nis:``.

Models ``src/util/dict_unix.c`` and ``dict_nis.c``.

``unix:passwd.byname`` asks getpwnam(3) -- on a simulated host, the host's
own ``/etc/passwd``. The key is folded to lower case; the result is the
passwd entry rebuilt as ``name:passwd:uid:gid:gecos:home:shell``. It is the
table behind Debian's ``local_recipient_maps = proxy:unix:passwd.byname
$alias_maps``. ``unix:group.byname`` reads ``/etc/group`` the same way
(``name:passwd:gid:member,member``). Any other name is refused with
``unknown table: unix:NAME``. If the file cannot be read, the lookup fails
(Postfix: ``cannot access UNIX password database``).

``nis:`` models a machine that is not an NIS client, which is what Debian
is unless ``nis`` is installed and configured: opening logs ``warning:
dict_nis_init: NIS domain name not set - NIS lookups disabled`` (once per
process in Postfix) and every lookup answers "not found" -- no error, so
Postfix's old default ``alias_maps = hash:/etc/aliases, nis:mail.aliases``
works without NIS.

Examples
--------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "etc").mkdir()
>>> _ = (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\\n")
>>> m = UnixMap("passwd.byname", lambda p: root / p.lstrip("/"))
>>> m.lookup("ROOT"), m.lookup("nobody")
('root:x:0:0:root:/root:/bin/bash', None)
>>> NisMap("mail.aliases").lookup("root") is None
True
"""
from __future__ import annotations

from pathlib import Path

from .base import DAEMON_FLAGS, Map, MapError, OpenFlags, Resolver, errno_text

__all__ = ["UnixMap", "NisMap", "UNIX_TABLES", "NIS_WARNING"]

UNIX_TABLES = {"passwd.byname": "/etc/passwd", "group.byname": "/etc/group"}
NIS_WARNING = "dict_nis_init: NIS domain name not set - NIS lookups disabled"


class UnixMap(Map):
    fixed = True

    def __init__(self, name: str, resolve: Resolver, flags: OpenFlags = DAEMON_FLAGS) -> None:
        super().__init__("unix", name, flags)
        self.file = UNIX_TABLES[name]
        self.path: Path = resolve(self.file)
        self._watch(self.path)

    def _records(self) -> list[list[str]]:
        try:
            text = self.path.read_text("utf-8", "surrogateescape")
        except OSError as e:
            what = "password" if self.name.startswith("passwd") else "group"
            raise MapError(self.spec, f"cannot access UNIX {what} database: {errno_text(e)}") from None
        out = []
        want = 7 if self.name.startswith("passwd") else 4
        for line in text.splitlines():
            f = line.split(":")
            if len(f) == want and f[0] and not line.startswith(("#", "+", "-")):
                out.append(f)
        return out

    def _lookup(self, key: str) -> str | None:
        for f in self._records():
            if f[0] == key:
                if self.name.startswith("passwd"):
                    try:
                        f[2], f[3] = str(int(f[2])), str(int(f[3]))
                    except ValueError:
                        continue
                return ":".join(f)
        return None

    def describe(self) -> str:
        return f"{self.spec} (the host's {self.file})"


class NisMap(Map):
    fixed = True

    def __init__(self, name: str, flags: OpenFlags = DAEMON_FLAGS) -> None:
        super().__init__("nis", name, flags)
        self.warn(NIS_WARNING)

    def _lookup(self, key: str) -> str | None:
        return None

    def describe(self) -> str:
        return f"{self.spec} (no NIS on this host: never matches)"
