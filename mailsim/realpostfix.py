"""A private instance of the machine's real Postfix (Debian's package), on loopback.

For the tests and benchmarks that put mailsim next to the real thing, and
for a teacher who wants both in one notebook. The instance lives in a
folder of its own -- its own ``main.cf`` and ``master.cf``, queue, data
directory and log file -- and is started with ``postfix -c DIR start``, so
the machine's ``/etc/postfix`` and its default instance are never touched;
:func:`postfix_instance` stops it and removes the folder afterwards.

Its SMTP service listens on ``127.0.0.1:PORT`` only. Mail for the given
users of the domain ``real.example`` is delivered by virtual(8) into
``vmail/USER`` files owned by ``nobody`` (no accounts are made on the
machine); everything else goes
where the given ``main.cf`` settings say (``transport_maps``, ``relayhost``).

Needs root (Postfix's master runs as root) and ``/usr/sbin/postfix``;
:func:`unavailable` says why not when it cannot run.

Real-server equivalent: ``postmulti`` instances do the same with a
registry; this is the hand-made form (``postfix -c``).
"""
from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["RealPostfix", "postfix_instance", "unavailable", "DOMAIN"]

POSTFIX = "/usr/sbin/postfix"
#: the domain the instance delivers itself (virtual mailboxes)
DOMAIN = "real.example"


def unavailable() -> str | None:
    """Why a private Postfix instance cannot run here (None: it can)."""
    if not os.path.exists(POSTFIX):
        return "real Postfix is not installed (Debian package postfix)"
    if os.geteuid() != 0:
        return "real Postfix needs root to start its master process"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "the postfix account is missing (reinstall Debian's postfix package)"
    return None


@dataclass
class RealPostfix:
    """A running instance: where it listens and what it wrote."""
    base: Path
    port: int

    @property
    def config_directory(self) -> Path:
        return self.base / "etc"

    def log(self) -> list[str]:
        """The lines of its log file (``maillog_file``)."""
        try:
            return (self.base / "maillog").read_text("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return []

    def mailbox(self, user: str) -> str:
        """The mbox file virtual(8) delivered ``user@real.example``'s mail into ('' if none)."""
        try:
            return (self.base / "vmail" / user).read_text("latin-1")
        except FileNotFoundError:
            return ""

    def wait_for(self, text: str, timeout: float = 20.0) -> bool:
        """Wait until a log line contains ``text``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(text in ln for ln in self.log()):
                return True
            time.sleep(0.05)
        return False

    def postfix(self, *args: str) -> subprocess.CompletedProcess:
        """``postfix -c DIR ARGS`` (start, stop, reload, ...)."""
        return subprocess.run([POSTFIX, "-c", str(self.config_directory), *args],
                              capture_output=True, text=True, timeout=60)


def _master_cf(port: int) -> str:
    """The machine's master.cf, with no chroot and ``smtp inet`` on 127.0.0.1:PORT."""
    out = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        f = line.split()
        if line[:1] in ("#", " ", "\t") or len(f) < 8:
            out.append(line)
            continue
        if f[0] == "smtp" and f[1] == "inet":
            f[0] = f"127.0.0.1:{port}"
        f[4] = "n"                               # chroot: the private folders are outside it
        out.append("  ".join(f))
    return "\n".join(out) + "\n"


def _main_cf(base: Path, settings: dict[str, str], users: tuple[str, ...]) -> str:
    nobody = pwd.getpwnam("nobody")
    conf = {
        "compatibility_level": "3.6",
        "queue_directory": f"{base}/spool",
        "data_directory": f"{base}/lib",
        "maillog_file": f"{base}/maillog",
        "maillog_file_prefixes": str(base),
        "myhostname": "real.example.net",
        "mydestination": "",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "smtp_host_lookup": "native",            # no DNS: nothing leaves the machine
        "disable_dns_lookups": "yes",
        "virtual_mailbox_domains": DOMAIN,
        "virtual_mailbox_base": f"{base}/vmail",
        # virtual(8) allows no regexp substitution here: one entry per user
        "virtual_mailbox_maps": "inline:{ " + ", ".join(f"{u}@{DOMAIN}={u}" for u in users) + " }",
        "alias_maps": "",                        # Debian's default also asks NIS
        "virtual_uid_maps": f"static:{nobody.pw_uid}",
        "virtual_gid_maps": f"static:{nobody.pw_gid}",
    }
    conf.update(settings)
    return "".join(f"{k} = {v}\n" for k, v in conf.items())


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


@contextlib.contextmanager
def postfix_instance(port: int, main_cf: dict[str, str] | None = None,
                     users: tuple[str, ...] = ("carol", "dave"),
                     setup: Callable[[Path], None] | None = None) -> Iterator[RealPostfix]:
    """Start a private Postfix on 127.0.0.1:``port``; stop and remove it after the ``with``.

    ``main_cf``: settings added to (or replacing) the instance's own, e.g.
    ``{"transport_maps": "inline:{ example.org=smtp:[127.0.0.1]:2598 }"}``.
    ``setup(base)`` runs after main.cf and master.cf are written and before the
    start: it may add files to the instance's folder (``base/etc/sasl/smtpd.conf``,
    more master.cf services), which is removed with the instance.
    """
    why = unavailable()
    if why:
        raise RuntimeError(why)
    base = Path(tempfile.mkdtemp(prefix="mailsim-postfix."))
    base.chmod(0o755)                           # the postfix account must reach lib/ and spool/
    pf = RealPostfix(base, port)
    try:
        for d in ("etc", "spool", "lib", "vmail"):
            (base / d).mkdir()
        shutil.chown(base / "lib", "postfix")
        nobody = pwd.getpwnam("nobody")
        os.chown(base / "vmail", nobody.pw_uid, nobody.pw_gid)
        for name in ("dynamicmaps.cf",):
            if Path("/etc/postfix", name).exists():
                shutil.copy(Path("/etc/postfix", name), base / "etc" / name)
        if Path("/etc/postfix/dynamicmaps.cf.d").is_dir():
            shutil.copytree("/etc/postfix/dynamicmaps.cf.d", base / "etc/dynamicmaps.cf.d")
        (base / "etc/master.cf").write_text(_master_cf(port))
        (base / "etc/main.cf").write_text(_main_cf(base, main_cf or {}, users))
        if setup is not None:
            setup(base)
        r = pf.postfix("start")
        end = time.monotonic() + 20
        while not _port_open(port):
            if time.monotonic() > end:
                raise RuntimeError(f"real Postfix did not start: {r.stdout}{r.stderr}"
                                   + "\n".join(pf.log()[-5:]))
            time.sleep(0.05)
        yield pf
    finally:
        pf.postfix("stop")
        end = time.monotonic() + 10
        while _port_open(port) and time.monotonic() < end:
            time.sleep(0.05)
        shutil.rmtree(base, ignore_errors=True)
