"""A simulated host: a folder shaped like a server's root.

``HOST/etc/postfix/main.cf``, ``HOST/etc/postfix/master.cf``, ``HOST/etc/aliases``,
``HOST/etc/passwd``, ``HOST/etc/hosts``, ``HOST/etc/hostname``,
``HOST/var/spool/postfix/...``, ``HOST/var/mail/USER``, ``HOST/var/log/``.
Every absolute path a configuration names (``hash:/etc/postfix/virtual``) is
read inside the folder, so a learner edits the same files, in the same formats,
as on a real server.

The host keeps the configuration it loaded until :meth:`Host.reload` -- like
Postfix, which reads main.cf when a daemon starts and again on
``postfix reload``.

Examples
--------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp()) / "mx"
>>> h = init_host(root, hostname="mail.example.com", users=["alice"])
>>> h.conf["myhostname"], h.conf["mydomain"]
('mail.example.com', 'example.com')
>>> h.path("/etc/postfix/virtual") == root / "etc/postfix/virtual"
True
>>> "alice" in h.users()
True
"""
from __future__ import annotations

import functools
import os
import random
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .clock import Clock, SimClock

if TYPE_CHECKING:  # pragma: no cover
    from .conf import MainConfig
    from .dns import DNS, PeerName
    from .maps import Map

__all__ = ["Host", "init_host", "PasswdEntry", "QUEUE_DIRS"]

#: the daemons whose process id a host keeps while it runs (attribute per daemon)
_DAEMON_PIDS = {"cleanup": "_cleanup_pid", "trivial-rewrite": "_trivial_pid"}

QUEUE_DIRS = ("incoming", "active", "deferred", "hold", "corrupt", "bounce",
              "defer", "trace", "flush", "maildrop", "pid")

SYSTEM_USERS = [
    ("root", 0, 0, "root", "/root", "/bin/bash"),
    ("daemon", 1, 1, "daemon", "/usr/sbin", "/usr/sbin/nologin"),
    ("bin", 2, 2, "bin", "/bin", "/usr/sbin/nologin"),
    ("sys", 3, 3, "sys", "/dev", "/usr/sbin/nologin"),
    ("mail", 8, 8, "mail", "/var/mail", "/usr/sbin/nologin"),
    ("nobody", 65534, 65534, "nobody", "/nonexistent", "/usr/sbin/nologin"),
    ("postfix", 101, 102, "", "/var/spool/postfix", "/usr/sbin/nologin"),
]


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str

    def line(self) -> str:
        return f"{self.name}:x:{self.uid}:{self.gid}:{self.gecos}:{self.home}:{self.shell}"


def _main_cf(hostname: str) -> str:
    domain = hostname.partition(".")[2] or "localdomain"
    return f"""\
# main.cf of a simulated Postfix host, written by "mailsim init".
# Format: postconf(5). "postconf -n" shows what is set here, "postconf -d" the
# defaults; after an edit run "postfix reload".

smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
biff = no

# appending .domain is the MUA's job.
append_dot_mydomain = no

readme_directory = no

# See http://www.postfix.org/COMPATIBILITY_README.html
compatibility_level = 3.6

# TLS (STARTTLS) is off on a new host: smtpd_tls_security_level is empty.

myhostname = {hostname}
mydomain = {domain}
myorigin = $mydomain
mydestination = $myhostname, localhost.$mydomain, localhost, $mydomain
relayhost =
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128
inet_interfaces = all
inet_protocols = ipv4
alias_maps = hash:/etc/aliases
alias_database = hash:/etc/aliases
recipient_delimiter = +
mailbox_size_limit = 0

# There is no syslog on a simulated host: Postfix's own logger writes here.
maillog_file = /var/log/maillog
"""


ALIASES = """\
# /etc/aliases -- see aliases(5). Run "newaliases" after editing this file.
postmaster:    root
mailer-daemon: postmaster
abuse:         postmaster
"""


def init_host(root: str | os.PathLike, hostname: str = "mail.example.com",
              users: list[str] | tuple[str, ...] = (), *, clock: Clock | None = None,
              force: bool = False) -> "Host":
    """Create a new host folder at ``root`` (like installing Debian's postfix).

    Writes a Debian-like main.cf, Debian's master.cf, /etc/aliases with the
    required aliases (and its compiled ``aliases.db``), /etc/passwd with the
    system accounts and ``users``, /etc/hosts, /etc/hostname and the spool.
    """
    from .conf import default_master_cf
    root = Path(root)
    if (root / "etc/postfix/main.cf").exists() and not force:
        raise FileExistsError(f"{root} already holds a host (etc/postfix/main.cf exists)")
    for d in ("etc/postfix", "var/mail", "var/log", "home"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for q in QUEUE_DIRS:
        (root / "var/spool/postfix" / q).mkdir(parents=True, exist_ok=True)
    short = hostname.split(".")[0]
    (root / "etc/hostname").write_text(hostname + "\n")
    (root / "etc/hosts").write_text(
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname} {short}\n"
        "::1\t\tlocalhost ip6-localhost ip6-loopback\n")
    (root / "etc/postfix/main.cf").write_text(_main_cf(hostname))
    (root / "etc/postfix/master.cf").write_text(default_master_cf())
    (root / "etc/aliases").write_text(ALIASES)
    entries = [PasswdEntry(*u) for u in SYSTEM_USERS]
    for i, name in enumerate(users):
        entries.append(PasswdEntry(name, 1000 + i, 1000 + i, name, f"/home/{name}", "/bin/bash"))
        (root / "home" / name).mkdir(parents=True, exist_ok=True)
    (root / "etc/passwd").write_text("".join(e.line() + "\n" for e in entries))
    host = Host(root, clock=clock)
    from .maps import postalias_build
    postalias_build(host, "hash:/etc/aliases")
    return host


def _memoized(conf):
    """A loaded configuration never changes (reload builds a new one), so the
    daemons' many questions about it are answered once each."""
    for name in ("list", "bool", "int", "get", "time", "raw", "expand"):
        setattr(conf, name, functools.lru_cache(maxsize=None)(getattr(type(conf), name).__get__(conf)))
    return conf


_LIVE: "dict[Path, weakref.ref]" = {}


class Host:
    """A simulated Postfix host living in the folder ``root``.

    ``clock`` defaults to a :class:`~mailsim.clock.SimClock` (deterministic);
    ``seed`` seeds everything random (queue ids, pids).
    """

    def __init__(self, root: str | os.PathLike, *, clock: Clock | None = None,
                 seed: int = 0) -> None:
        self.root = Path(root).resolve()
        if not (self.root / "etc/postfix/main.cf").is_file():
            raise FileNotFoundError(
                f"{self.root} is not a mailsim host: etc/postfix/main.cf is missing "
                f"(create one with: mailsim init {root})")
        live = Host.live(self.root)
        # commands run from a notebook (postqueue, postsuper, sendmail ...) build their
        # own Host for the same folder: they share the live host's simulated clock
        self.clock: Clock = clock or (live.clock if live is not None else SimClock())
        self.rng = random.Random(seed)
        #: the name server this machine asks (a lab's virtual DNS); None: etc/hosts only.
        #: A command's own Host for a live host's folder asks the same one.
        self.dns: "DNS | None" = live.dns if live is not None else None
        self._maps: dict[str, "Map"] = {}
        self._pid = 1000 + self.rng.randrange(0, 20000)
        self.conf: "MainConfig" = self._load_conf()
        #: in-process: deliver queued mail when a session ends (as qmgr would at once)
        self.auto_deliver = True
        self.qmgr_wanted = False
        #: recipients being delivered again after a crash (see mailsim.qmgr, "Crash safety")
        self.in_doubt: set[str] = set()
        self._setup()
        # the live host is the one a notebook (or test) made on a simulated clock; a
        # command's own Host, or a wall-clock one (serve, a shell command), never replaces it
        if live is None or (clock is not None and self.clock.simulated):
            _LIVE[self.root] = weakref.ref(self)

    @staticmethod
    def live(root: str | os.PathLike) -> "Host | None":
        """The host object this process made last for ``root`` (and still uses), if any."""
        ref = _LIVE.get(Path(root).resolve())
        return ref() if ref is not None else None

    def _setup(self) -> None:
        """(Re)build what depends on main.cf: the log and the queue-id generator."""
        from .maillog import MailLog, log_path
        from .queue import QueueIdGenerator
        self._spool = self.path(self.conf.get("queue_directory") or "/var/spool/postfix")
        self._hosts_cache: tuple[float, list] | None = None
        old = getattr(self, "log", None)
        if old is not None:
            old.close()
        self.log = MailLog(log_path(self), self.conf["myhostname"], self.clock,
                           self.conf.get("syslog_name") or "postfix")
        if not hasattr(self, "_qids"):
            self._qids = QueueIdGenerator(self.rng.randrange(0, 1 << 30))
        self._trivial = None
        self._conflicts: dict[str, str] = {}

    # -- files ---------------------------------------------------------------------
    def path(self, p: str | os.PathLike) -> Path:
        """Map an absolute path of the simulated server into the host folder.

        Relative paths are taken relative to /etc/postfix, as Postfix does for
        table names without a leading slash.
        """
        s = os.fspath(p)
        if not s.startswith("/"):
            s = "/etc/postfix/" + s
        rel = os.path.normpath(s).lstrip("/")
        out = (self.root / rel).resolve()
        if out != self.root and self.root not in out.parents:
            raise PermissionError(f"{s}: outside the host folder {self.root}")
        return out

    def hostname_file(self) -> str:
        try:
            return (self.root / "etc/hostname").read_text().split()[0]
        except (OSError, IndexError):
            return "localhost.localdomain"

    # -- configuration -------------------------------------------------------------
    def _load_conf(self) -> "MainConfig":
        from .conf import MainConfig
        return _memoized(MainConfig.load(self.root / "etc/postfix/main.cf",
                                         host_defaults=self.host_defaults()))

    def host_defaults(self) -> dict[str, str]:
        """Defaults that Postfix computes from the machine (``postconf -d`` shows them)."""
        name = self.hostname_file()
        return {
            # the machine's name; Postfix makes "name" into "name.$mydomain"
            "hostname": name,
            # the host's interfaces: mynetworks follows mynetworks_style from these
            "interfaces": "127.0.0.1/8 ::1/128",
            "process_id": str(os.getpid()),
        }

    def with_settings(self, **settings: str) -> "Host":
        """A view of this host with main.cf settings changed in memory only.

        Like ``postconf -o name=value`` for one command: nothing is written, so a
        notebook can try "what if mynetworks were ..." without editing main.cf.

        >>> import tempfile
        >>> h = init_host(tempfile.mkdtemp() + "/mx")
        >>> h.with_settings(mynetworks="192.0.2.0/24").conf["mynetworks"]
        '192.0.2.0/24'
        >>> h.conf["mynetworks"] != "192.0.2.0/24"
        True
        """
        other = object.__new__(Host)
        other.__dict__.update(self.__dict__)
        conf = self.conf
        for name, value in settings.items():
            conf = conf.set(name, value)
        other.conf = _memoized(conf)
        other._trivial = None
        return other

    def reload(self) -> None:
        """Re-read main.cf and reopen tables, as ``postfix reload`` does.

        As on a real server the daemons start afresh: a new queue manager
        (new pid, its queue scans counted from now, no throttled transport)
        takes over what is in the active queue.
        """
        self.conf = self._load_conf()
        self._maps.clear()
        self._setup()
        for name in _DAEMON_PIDS.values():                  # new daemon processes
            self.__dict__.pop(name, None)
        if self.__dict__.get("_qmgr") is not None:
            from .qmgr import QueueManager
            self._qmgr = QueueManager(self)

    # -- processes, ids, names ----------------------------------------------------------------
    def process_state(self) -> dict:
        """What only a running system remembers: the last process id handed out, the
        counter behind queue ids and the pids of the cleanup and trivial-rewrite
        processes (:meth:`restore_process_state` goes on from there; a lab saves it
        between two commands). The seeded generator is :attr:`rng`.

        >>> import tempfile, pathlib
        >>> h = init_host(pathlib.Path(tempfile.mkdtemp()) / "h")
        >>> pid = h.cleanup_pid(); h2 = Host(h.root)      # the next command, a new process
        >>> h2.restore_process_state(h.process_state()); h2.cleanup_pid() == pid
        True
        """
        daemons = {d: self.__dict__[a] for d, a in _DAEMON_PIDS.items() if a in self.__dict__}
        return {"pid": self._pid, "queue_ids": self._qids.counter, "daemons": daemons}

    def restore_process_state(self, state: dict) -> None:
        """Go on from a :meth:`process_state` (missing entries are left as they are)."""
        if state.get("pid"):
            self._pid = state["pid"]
        if state.get("queue_ids"):
            self._qids.counter = state["queue_ids"]
        for daemon, attr in _DAEMON_PIDS.items():
            if daemon in state.get("daemons", {}):
                self.__dict__[attr] = state["daemons"][daemon]

    def next_pid(self) -> int:
        """A process id for the next daemon instance: deterministic under a simulated
        clock, the real process id under ``serve`` (one smtpd process, many sessions)."""
        if not self.clock.simulated:
            return os.getpid()
        self._pid += 1 + self.rng.randrange(0, 3)
        return self._pid

    def new_queue_id(self) -> str:
        """A Postfix-style short queue id (counter-based; see :meth:`new_queue_file`)."""
        return self._qids.next(self.clock.tick())

    def new_queue_file(self):
        """Create the incoming queue file for a new message; its id names it.

        On a simulated clock the id comes from a seeded counter (stable runs);
        on the wall clock from the file's inode, as in Postfix.
        """
        from .queue import IncomingFile
        now = self.clock.tick()
        sim = self.clock.simulated
        return IncomingFile(self.spool, lambda ino: self._qids.next(now, None if sim else ino))

    def wake_qmgr(self, request: bytes = b"I") -> None:
        """cleanup(8)'s trigger after it wrote a message into ``incoming``.

        On a real server cleanup writes one byte ("I") into the FIFO
        ``public/qmgr`` and the queue manager wakes up. Under ``serve`` the
        qmgr process reads that FIFO; in-process the host notes that a queue
        run is wanted and :meth:`run_queue` (called when a session closes)
        does it. Never blocks and never fails: a missing or unread FIFO only
        means qmgr finds the mail on its next periodic scan.
        """
        self.qmgr_wanted = True
        fifo = self.spool / "public" / "qmgr"
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:               # no FIFO (in-process) or no reader yet
            return
        try:
            os.write(fd, request)
        except OSError:
            pass
        finally:
            os.close(fd)

    # -- the queue manager ---------------------------------------------------------------
    @property
    def qmgr(self):
        """This host's queue manager (one per host; it keeps the retry schedule)."""
        q = self.__dict__.get("_qmgr")
        if q is None:
            from .qmgr import QueueManager
            q = self._qmgr = QueueManager(self)
        return q

    def run_queue(self, *, flush: bool = False) -> int:
        """Let qmgr deliver what is due now (``flush``: every deferred message too,
        as ``postqueue -f``); returns how many messages it handled.

        On a real server this happens by itself; in-process it happens when a
        session ends (see :attr:`auto_deliver`) or when you call it.
        """
        return self.qmgr.run(flush=flush)

    def advance(self, duration: str | float) -> int:
        """Fast-forward the simulated clock (``"5d"``, ``"90m"``, ``300``), running every
        queue scan that falls due on the way, as a real server would in that time.

        >>> import tempfile
        >>> h = init_host(tempfile.mkdtemp() + "/mx")
        >>> t0 = h.clock.now(); _ = h.advance("2h"); h.clock.now() - t0
        7200.0
        """
        seconds = (self.conf.set("mailsim_advance", duration).time("mailsim_advance", "s")
                   if isinstance(duration, str) else float(duration))
        return self.qmgr.advance(seconds)

    @property
    def spool(self) -> Path:
        """The queue directory (queue_directory, /var/spool/postfix) inside the host."""
        return self._spool

    def etc_hosts(self) -> list[tuple[str, list[str]]]:
        """(address, names) pairs from the host's etc/hosts."""
        out: list[tuple[str, list[str]]] = []
        p = self.root / "etc/hosts"
        try:
            mtime = p.stat().st_mtime_ns
            if self._hosts_cache is not None and self._hosts_cache[0] == mtime:
                return self._hosts_cache[1]
            text = p.read_text()
        except OSError:
            return out
        for line in text.splitlines():
            f = line.split("#", 1)[0].split()
            if len(f) >= 2:
                out.append((f[0], f[1:]))
        self._hosts_cache = (mtime, out)
        return out

    def reverse_lookup(self, addr: str) -> str:
        """The client name smtpd logs (``localhost`` for 127.0.0.1), or ``unknown``.

        Without :attr:`dns`, the first name etc/hosts gives ``addr``. With a DNS,
        the name smtpd(8) verifies (see :meth:`client_name`).
        """
        if self.dns is not None:
            return self.client_name(addr).name
        for a, names in self.etc_hosts():
            if a == addr:
                return names[0]
        return "unknown"

    def client_name(self, addr: str) -> "PeerName":
        """smtpd(8)'s names for a client at ``addr``, through ``hosts: files dns``:
        a PTR lookup, kept only when a forward lookup of the name gives ``addr``
        back (``unknown`` otherwise), with the warnings smtpd logs.

        >>> import tempfile
        >>> from mailsim.dns import DNS
        >>> h = init_host(tempfile.mkdtemp() + "/mx1", hostname="mx1.example.org")
        >>> h.dns = DNS.from_text("2.0.0.127.in-addr.arpa. 300 PTR mail.example.com.")
        >>> h.client_name("127.0.0.1").name
        'localhost'
        >>> c = h.client_name("127.0.0.2")
        >>> c.name, c.reverse_name
        ('unknown', 'mail.example.com')
        >>> c.warnings[0]
        'hostname mail.example.com does not resolve to address 127.0.0.2: Name or service not known'
        """
        from .dns import peer_hostname
        return peer_hostname(addr, hosts=self.etc_hosts(), dns=self.dns)

    def forward_lookup(self, name: str, family: int | None = None) -> list[str]:
        """The addresses of ``name`` as getaddrinfo(3) finds them on this machine:
        etc/hosts, then :attr:`dns` if set (``family`` 4, 6 or None for both);
        an empty list when there are none.

        >>> import tempfile
        >>> h = init_host(tempfile.mkdtemp() + "/mx1", hostname="mx1.example.org")
        >>> h.forward_lookup("localhost", 4), h.forward_lookup("nosuch.example")
        (['127.0.0.1'], [])
        """
        from .dns import AddrInfoError, getaddrinfo
        try:
            return getaddrinfo(name, family, hosts=self.etc_hosts(), dns=self.dns)
        except AddrInfoError:
            return []

    def own_addresses(self) -> list[str]:
        """Addresses of this host's interfaces that inet_interfaces listens on."""
        iface = self.conf.list("inet_interfaces")
        mine = {"127.0.0.1", "::1"}
        names = {self.conf["myhostname"], self.conf["myhostname"].split(".")[0]}
        for a, ns in self.etc_hosts():
            if names & set(ns) and not a.startswith("127.0.1."):
                mine.add(a)
        if not iface or "all" in [i.lower() for i in iface]:
            return sorted(mine)
        out = set()
        for i in iface:
            if i.lower() == "loopback-only" or i == "localhost":
                out |= {"127.0.0.1", "::1"}
            else:
                out.add(i.strip("[]"))
        return sorted(out | set(self.conf.list("proxy_interfaces")))

    def trivial_rewrite(self):
        """This host's trivial-rewrite (cached until reload)."""
        if self._trivial is None:
            from .trivial_rewrite import TrivialRewrite
            from .table_open import log_open_messages
            self._trivial = TrivialRewrite(
                self.conf, lookup=lambda spec, key: self.open_map(spec).lookup(key),
                own_addresses=self.own_addresses(),
                read_file=lambda p: self.path(p).read_text(),
                warn=lambda text: self.log.write("trivial-rewrite", self.rewrite_pid(),
                                                 f"warning: {text}"),
                started=lambda: log_open_messages(self, "trivial-rewrite", self.rewrite_pid))
            self._warn_domain_conflicts(self._trivial)
        return self._trivial

    def _warn_domain_conflicts(self, tr) -> None:
        for param in ("virtual_alias_domains", "virtual_mailbox_domains", "relay_domains"):
            for d in self.conf.list(param):
                if ":" in d or d.startswith("/") or d.startswith("!"):
                    continue
                if param == "relay_domains" and d in self.conf.list("mydestination"):
                    continue
                if tr.in_list(d.lower(), "mydestination") and param != "relay_domains":
                    self.domain_conflicts[d.lower()] = param

    @property
    def domain_conflicts(self) -> dict[str, str]:
        """Domains listed in mydestination and a virtual domain list (read at reload)."""
        return self._conflicts

    def warn_if_conflict(self, domain: str) -> None:
        """trivial-rewrite's warning for a domain listed as local *and* virtual."""
        d = domain.lower().rstrip(".")
        param = self.domain_conflicts.get(d)
        if param:
            self.log.write("trivial-rewrite", self.rewrite_pid(),
                           f"warning: do not list domain {d} in BOTH mydestination and {param}")

    def master_pid(self) -> int:
        """The pid master(8) logs with: the serve process, or a fixed simulated one."""
        if not self.clock.simulated:
            try:
                return int((self.spool / "pid/master.pid").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                return os.getpid()
        return 1000

    def cleanup_pid(self) -> int:
        if not hasattr(self, "_cleanup_pid"):
            self._cleanup_pid = self.next_pid()
        return self._cleanup_pid

    def rewrite_pid(self) -> int:
        if not hasattr(self, "_trivial_pid"):
            self._trivial_pid = self.next_pid()
        return self._trivial_pid

    # -- table searches -----------------------------------------------------------------------
    def _find(self, specs: list[str], keys: list[str], trace: list | None) -> tuple[str, str] | None:
        """Try each key in every table before the next key, as Postfix's mail_addr_find
        calls maps_find() once per key form (user@domain, user, @domain)."""
        for k in keys:
            for spec in specs:
                m = self.open_map(spec)
                r = m.lookup(k)
                if trace is not None:
                    trace.append((spec, k, r))
                if r is not None:
                    return k, r
        return None

    def address_find(self, addr: str, specs: list[str], trivial=None, *,
                     trace: list | None = None) -> tuple[str, str] | None:
        """Look ``addr`` up in ``specs`` in mail_addr_find's order (see :mod:`mailsim.mail_addr_find`).

        Used for virtual_alias_maps, virtual_mailbox_maps, relay_recipient_maps and
        the canonical maps. Raises :class:`mailsim.maps.MapError` if a table is unusable.
        """
        from .mail_addr_find import search_keys
        if not specs:
            return None
        tr = trivial or self.trivial_rewrite()
        domain = addr.rpartition("@")[2]
        keys = search_keys(addr, delimiter=self.conf.get("recipient_delimiter") or "",
                           local=bool(domain) and tr.is_local_domain(domain))
        return self._find(specs, keys, trace)

    def virtual_alias_find(self, addr: str, trivial=None, *, trace: list | None = None):
        """Look ``addr`` up in virtual_alias_maps."""
        return self.address_find(addr, self.conf.list("virtual_alias_maps"), trivial, trace=trace)

    def local_recipient_find(self, addr: str, specs: list[str], *,
                             trace: list | None = None) -> tuple[str, str] | None:
        """Look a local recipient up in local_recipient_maps (full address, then user name)."""
        from .mail_addr_find import localpart_keys
        keys = [addr.lower()] + localpart_keys(addr, delimiter=self.conf.get("recipient_delimiter") or "")
        return self._find(specs, keys, trace)

    # -- SMTP -------------------------------------------------------------------------------
    def smtpd(self, client_addr: str = "127.0.0.1", client_port: int = 0,
              service: str | int | None = None):
        """A raw smtpd protocol engine for one connection (bytes in, bytes out).

        ``service``: the master.cf service the client connected to (a name such as
        ``submission`` or a port such as ``587``); its ``-o`` overrides apply."""
        from .smtpd.session import SMTPDSession
        return SMTPDSession(self, client_addr, client_port, service=service)

    def session(self, client_addr: str = "127.0.0.1", service: str | int | None = None):
        """An in-process SMTP session, for notebooks and tests (see :mod:`mailsim.smtpd.client`)."""
        from .smtpd.client import Session
        return Session(self, client_addr, service=service)

    # -- tables ----------------------------------------------------------------------
    def master_entries(self) -> list:
        """The services of etc/postfix/master.cf (re-read when the file changes)."""
        from .conf.master import read_master_cf
        p = self.root / "etc/postfix/master.cf"
        try:
            stamp = p.stat().st_mtime_ns
        except OSError:
            stamp = None
        cached = getattr(self, "_master_cache", None)
        if cached is None or cached[0] != stamp:
            cached = (stamp, read_master_cf(p) if stamp is not None else [])
            self._master_cache = cached
        return cached[1]

    def open_map(self, spec: str) -> "Map":
        """Open (and cache) one lookup table such as ``hash:/etc/postfix/virtual``.

        A cached table whose files changed on disk is reopened, as Postfix's
        daemons restart when a table changes.
        """
        from .maps import open_map
        m = self._maps.get(spec)
        if m is None or m.changed():
            m = open_map(spec, self.path)
            self._maps[spec] = m
        return m

    def maps(self, param: str) -> list["Map"]:
        """Open every table listed in the parameter ``param`` (e.g. ``alias_maps``)."""
        return [self.open_map(s) for s in self.conf.list(param)]

    # -- users -----------------------------------------------------------------------
    def users(self) -> dict[str, PasswdEntry]:
        """The host's local accounts, from its etc/passwd."""
        out: dict[str, PasswdEntry] = {}
        try:
            text = (self.root / "etc/passwd").read_text()
        except OSError:
            return out
        for line in text.splitlines():
            f = line.split(":")
            if len(f) >= 7 and not line.startswith("#"):
                try:
                    out.setdefault(f[0], PasswdEntry(f[0], int(f[2]), int(f[3]), f[4], f[5], f[6]))
                except ValueError:
                    continue
        return out
