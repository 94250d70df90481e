"""A lab: several simulated Postfix hosts on one virtual network and one clock.

:class:`Lab` is the API behind ``mailsim lab DIR ...`` and the notebooks::

    lab = Lab.load("labs/two-domains")          # creates hosts/NAME/ on first load
    lab.send("alice@example.com", "peter@example.org", via="mail")
    lab.run(until="5d")                         # retries, on every host, in time order
    print(lab.mailq("mail")); print(*lab.log("mx1"), sep="\\n")
    print(lab.mailbox("mx1", "peter"))

Every message passes through the same code as on one host -- smtpd,
cleanup, qmgr, local(8) or smtp(8) -- and smtp(8) reaches the next host's
smtpd through an in-memory connection (:mod:`mailsim.lab.network`). The
hosts share one :class:`~mailsim.clock.SimClock`, so their logs, Received
headers and queue listings tell one consistent story, and the same seed
gives the same run. Each host has ``host.dns`` (the lab's virtual DNS,
from ``zones/*.zone``, when the lab has zone files) and knows its own
address from its ``/etc/hosts``.

Real-server equivalents: :meth:`Lab.send` is a client's SMTP session
(``swaks --server``), :meth:`Lab.flush` is ``postqueue -f``,
:meth:`Lab.stop` / :meth:`Lab.start` / :meth:`Lab.reload` are ``postfix
stop|start|reload``, :meth:`Lab.mailq` is ``mailq``.

Faults (:mod:`mailsim.lab.faults`) -- a host down, a link cut or slow, DNS
SERVFAIL or NXDOMAIN, greylisting, a full mailbox -- come from lab.toml's
``[[faults]]`` or :meth:`Lab.fault`, and start and end at their simulated
instants while :meth:`Lab.run` moves the clock.

Not simulated: the time deliveries take (a link's latency and connect
timeouts aside).

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "lab.toml").write_text('''
... [lab]
... name = "tiny"
... [[hosts]]
... name = "mail"
... address = "127.0.0.2"
... hostname = "mail.example.com"
... users = ["alice", "peter"]
... ''')
>>> lab = Lab.load(d)
>>> r = lab.send("alice@example.com", "peter@example.com", via="mail")
>>> r.ok, r.queue_id == lab.log("mail")[1].split()[5].rstrip(":")
(True, True)
>>> "Subject: lab message 1" in lab.mailbox("mail", "peter")
True
>>> lab.mailq("mail")
'Mail queue is empty\\n'
"""
from __future__ import annotations

import datetime as _dt
import errno
import os
import re
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..cleanup import rfc2822_date
from ..clock import SimClock
from ..host import Host
from ..postqueue import json_listing, listing
from ..smtpd.client import Session
from .build import create_host
from .config import LabConfig, LabError, load_lab_toml, unknown_host
from .duration import parse_duration, parse_instant
from .faults import (LINK_MODES, Fault, FaultError, FaultSchedule, check_mailbox_fault,
                     hide_filler, parse_fault)
from .network import Connection, LabConnector, Network, listening_ports
from .scheduler import Scheduler
from .state import HostState, LabState, STATE_FILE, pack_rng, read_state, unpack_rng, write_state

__all__ = ["Lab", "SendResult", "LabSession", "shipped_labs", "SHIPPED"]

#: the labs that come with mailsim (data/labs/NAME/lab.toml)
SHIPPED = Path(__file__).resolve().parents[2] / "data" / "labs"


def shipped_labs() -> list[str]:
    """Names of the labs shipped in data/labs."""
    if not SHIPPED.is_dir():
        return []
    return sorted(p.name for p in SHIPPED.iterdir() if (p / "lab.toml").is_file())


@dataclass
class SendResult:
    """One client session of :meth:`Lab.send`: what was said, and the queue id."""
    via: str
    client: str
    dialogue: list[tuple[str, str]] = field(default_factory=list)   # (command, reply)
    queue_id: str | None = None
    refused: str | None = None       # the connection failed: why

    @property
    def ok(self) -> bool:
        """The message was accepted (the server gave it a queue id)."""
        return self.queue_id is not None

    def transcript(self) -> str:
        """The session as a client sees it (``C:`` / ``S:`` lines)."""
        if self.refused:
            return f"connect: {self.refused}\n"
        out = []
        for cmd, reply in self.dialogue:
            if cmd:
                first, _, rest = cmd.partition("\n")
                out.append(f"C: {first}" + (" ... (message)" if rest else ""))
            out += [f"S: {ln}" for ln in reply.split("\n") if ln]
        return "\n".join(out) + "\n"


class LabSession(Session):
    """An SMTP session from a client into a lab host; when it ends, the lab delivers
    what it queued (on every host it reaches) at once, as a real network would."""

    def __init__(self, lab: "Lab", host: Host, client_addr: str, service=None) -> None:
        self.lab = lab
        super().__init__(host, client_addr, service=service)

    def _ended(self) -> None:
        self.lab.settle()


def _host_seed(seed: int, name: str) -> int:
    return zlib.crc32(f"{seed}/{name}".encode())


class Lab:
    """A lab folder loaded: ``hosts`` (name -> :class:`~mailsim.host.Host`), one ``clock``,
    the ``network``, the ``dns`` (None without zone files). Use :meth:`load`."""

    def __init__(self, root: Path, config: LabConfig, clock: SimClock, hosts: dict[str, Host],
                 network: Network, dns=None, sent: int = 0) -> None:
        self.root = root
        self.config = config
        self.clock = clock
        self.hosts = hosts
        self.network = network
        self.dns = dns
        self.sent = sent
        self.autosave = True
        self.scheduler = Scheduler(hosts, clock, network.is_up)
        self.faults = FaultSchedule()
        self._greylists: dict[int, object] = {}      # active greylist faults' smtpd hooks

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, root: str | os.PathLike, *, create: bool = True, force: bool = False) -> "Lab":
        """Load the lab in folder ``root``; create missing host folders (``create``),
        or rebuild every host folder and restart the clock (``force``)."""
        root = Path(root)
        if SHIPPED in root.resolve().parents and (root / "lab.toml").is_file():
            raise LabError(f"{root} is a shipped lab: work on a copy of it -- "
                           f"mailsim lab MYLAB init --from {root.resolve().name}")
        cfg = load_lab_toml(root / "lab.toml")
        state = None if force else read_state(root)
        if force:
            (root / STATE_FILE).unlink(missing_ok=True)
        clock = SimClock(state.now if state else cfg.start)
        dns = _load_dns(root, clock)
        network = Network({h.name: h.addresses for h in cfg.hosts}, cfg.links, cfg.bridges,
                          seed=cfg.seed)
        ca = _lab_ca(root, cfg, clock, force)
        hosts: dict[str, Host] = {}
        for spec in cfg.hosts:
            hroot = root / "hosts" / spec.name
            seed = _host_seed(cfg.seed, spec.name)
            if force or not (hroot / "etc/postfix/main.cf").is_file():
                if not create:
                    raise LabError(f"{hroot}: host {spec.name!r} has no folder yet -- "
                                   f"create it with: mailsim lab {root} init")
                # without zone files etc/hosts is the lab's name service
                others = [] if dns is not None else [o for o in cfg.hosts if o.name != spec.name]
                host = create_host(hroot, spec, others, clock=clock, seed=seed, force=force,
                                   filename=cfg.filename, ca=ca)
            else:
                host = Host(hroot, clock=clock, seed=seed)
            hosts[spec.name] = host
        lab = cls(root, cfg, clock, hosts, network, dns, state.sent if state else 0)
        for name, host in hosts.items():
            lab._attach(name, host)
            hs = state.hosts.get(name) if state else None
            if hs is not None:
                lab._restore(name, host, hs)
            else:
                host.qmgr                       # postfix start: qmgr's heartbeat begins now
        lab._load_faults(state.faults if state else [])
        if lab.autosave:
            lab.save()
        return lab

    @classmethod
    def init(cls, root: str | os.PathLike, *, from_lab: str | None = None,
             force: bool = False) -> "Lab":
        """``mailsim lab DIR init``: copy a shipped lab (``from_lab``) into ``root`` if
        asked, then create the host folders (``force``: afresh)."""
        root = Path(root)
        if from_lab is not None:
            src = SHIPPED / from_lab
            if not (src / "lab.toml").is_file():
                raise LabError(f"no shipped lab {from_lab!r} -- the shipped labs are: "
                               f"{', '.join(shipped_labs()) or '(none)'}")
            if (root / "lab.toml").exists() and not force:
                raise LabError(f"{root}/lab.toml exists -- use --force to replace the lab")
            root.mkdir(parents=True, exist_ok=True)
            for item in src.iterdir():
                if item.name in ("hosts", STATE_FILE):
                    continue
                dest = root / item.name
                if item.is_dir():
                    shutil.copytree(item, dest, dirs_exist_ok=True)
                else:
                    shutil.copy2(item, dest)
        return cls.load(root, create=True, force=force)

    def _attach(self, name: str, host: Host) -> None:
        """Wire a host into the lab: its connector, the DNS, no delivery behind the lab's back."""
        host.auto_deliver = False           # the lab's scheduler runs every queue manager
        host.dns = self.dns
        host.smtp_connector = LabConnector(self.network, self.hosts, name, self.clock)

    # A host's "processes" (the counters behind pids and queue ids, the seeded
    # generator, the daemons' pids, qmgr's heartbeat) are saved and restored through
    # Host.process_state() and QueueManager.process_state(), so a run split over
    # several commands is the run made in one process.
    def _restore(self, name: str, host: Host, hs: HostState) -> None:
        q = host.qmgr                           # its pid is drawn here, then replaced
        if hs.qmgr_pid:
            q.restore_process_state({"pid": hs.qmgr_pid, "started": hs.qmgr_started,
                                     "next_scan": hs.qmgr_next_scan, "agents": hs.qmgr_agents})
        if hs.rng:                              # the counters last: they were drawn from above
            unpack_rng(host.rng, hs.rng)
        host.restore_process_state({"pid": hs.pid, "queue_ids": hs.queue_ids,
                                    "daemons": hs.daemons})
        if not hs.up:
            self.network.down.add(name)

    def reload_dns(self) -> None:
        """Read ``zones/*.zone`` again after they were edited (``rndc reload`` on a name
        server); faults in force stay, the query log goes on.

        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "lab.toml").write_text('[[hosts]]\\nname = "mx"\\naddress = "127.0.0.3"\\n'
        ...                                 'hostname = "mx.example.org"\\n')
        >>> (d / "zones").mkdir()
        >>> _ = (d / "zones/example.org.zone").write_text("mx.example.org. 300 A 127.0.0.3\\n")
        >>> lab = Lab.load(d)
        >>> lab.dns.dig("example.org", "MX")
        ''
        >>> with open(d / "zones/example.org.zone", "a") as f:
        ...     _ = f.write("example.org. 300 MX 10 mx.example.org.\\n")
        >>> lab.reload_dns(); lab.dns.dig("example.org", "MX", short=True)
        '10 mx.example.org.'
        """
        old = self.dns
        dns = _load_dns(self.root, self.clock)
        if dns is not None and old is not None:
            dns.servfail, dns.nxdomain = old.servfail, old.nxdomain
            dns.queries = old.queries
        self.dns = dns
        for host in self.hosts.values():
            host.dns = dns

    def save(self) -> None:
        """Write state.json (the clock, who is up, the processes' ids, qmgr's heartbeat)."""
        hosts = {}
        for name, host in self.hosts.items():
            p, q = host.process_state(), host.qmgr.process_state()
            hosts[name] = HostState(self.network.is_up(name), p["pid"], p["queue_ids"],
                                    pack_rng(host.rng), p["daemons"], q["pid"], q["started"],
                                    q["next_scan"], q["agents"])
        write_state(self.root, LabState(self.clock.now(), self.sent, hosts,
                                        [f.to_dict() for f in self.faults]))

    def _changed(self) -> None:
        if self.autosave:
            self.save()

    # -- looking things up -------------------------------------------------------------------
    def host(self, name: str) -> Host:
        """The host called ``name`` (a :class:`LabError` naming the known hosts otherwise)."""
        try:
            return self.hosts[name]
        except KeyError:
            raise LabError(unknown_host(name, list(self.hosts))) from None

    @property
    def now(self) -> float:
        return self.clock.now()

    def address(self, name: str) -> str:
        """The first address of host ``name``."""
        self.host(name)
        return self.network.addresses[name][0]

    # -- mail in ------------------------------------------------------------------------------
    def session(self, via: str, client: str | None = None, port: int = 25) -> LabSession:
        """An SMTP session from ``client`` (default [lab] client) into host ``via``.

        Raises :class:`LabError` when ``via`` is down or does not listen on ``port``
        (or a link-cut fault separates a lab host at ``client`` from it).
        """
        host = self.host(via)
        client = client or self.config.client
        addr = self.address(via)
        now = self.clock.now()
        cut = self.network.cut(self.network.host_at(client), via)
        if cut is not None:
            reason = os.strerror(LINK_MODES[cut])
            self.network.connections.append(Connection(now, client, client, via, addr, port, reason))
            raise LabError(f"connect to {via}[{addr}]:{port}: {reason} -- a link-cut fault "
                           f"separates {self.network.host_at(client)} from {via}")
        if not self.network.is_up(via) or port not in listening_ports(host):
            reason = os.strerror(errno.ECONNREFUSED)
            self.network.connections.append(Connection(now, client, client, via, addr, port, reason))
            raise LabError(f"connect to {via}[{addr}]:{port}: {reason}"
                           + (f" -- {via} is stopped (start it: lab.start({via!r}))"
                              if not self.network.is_up(via) else ""))
        self.network.connections.append(Connection(now, client, client, via, addr, port, "connected"))
        # the master.cf service on that port (587: submission, with its -o overrides)
        return LabSession(self, self.network.hooked(via, host), client,
                          service=None if port == 25 else port)

    def send(self, from_: str, to: str | list[str], *, via: str | None = None,
             message: str | bytes | None = None, client: str | None = None,
             helo: str = "client.example", subject: str | None = None) -> SendResult:
        """Send one message: an SMTP session from ``client`` into host ``via`` (default:
        the host of the sender's domain, else the first host), then deliver at once
        what that starts. Without ``message`` a small one is written (From, To,
        Subject, Date, Message-ID)."""
        rcpts = [to] if isinstance(to, str) else list(to)
        if not rcpts:
            raise LabError("send: no recipient -- give at least one --to address")
        via = via or self._home_host(from_)
        self.host(via)                          # an unknown host is an error, not a refusal
        client = client or self.config.client
        result = SendResult(via, client)
        try:
            s = self.session(via, client)
        except LabError as e:
            result.refused = str(e)
            return result
        if isinstance(message, bytes):
            message = message.decode("utf-8", "surrogateescape")
        if message is None:
            message = self._message(from_, rcpts, subject)
        result.dialogue.append(("", s.banner))
        steps = [f"EHLO {helo}", f"MAIL FROM:<{from_}>"] + [f"RCPT TO:<{r}>" for r in rcpts]
        ok = s.banner.startswith("220")
        accepted = 0
        for cmd in steps if ok else []:
            reply = s.send(cmd)
            result.dialogue.append((cmd, reply))
            if cmd.startswith("MAIL") and not reply.startswith("2"):
                break
            if cmd.startswith("RCPT") and reply.startswith("2"):
                accepted += 1
        if ok and accepted:
            reply = s.send("DATA")
            result.dialogue.append(("DATA", reply))
            if reply.startswith("354"):
                reply = s.message(message)
                result.dialogue.append((message, reply))
                m = re.search(r"queued as (\S+)", reply)
                if reply.startswith("2") and m:
                    result.queue_id = m.group(1)
        if not s.closed:
            result.dialogue.append(("QUIT", s.send("QUIT")))
        self._changed()
        return result

    def _home_host(self, sender: str) -> str:
        domain = sender.rpartition("@")[2].lower()
        for name, host in self.hosts.items():
            if domain and domain in (host.conf["mydomain"].lower(), host.conf["myhostname"].lower()):
                return name
        return next(iter(self.hosts))

    def _message(self, from_: str, rcpts: list[str], subject: str | None) -> str:
        self.sent += 1
        date = rfc2822_date(self.clock.now()).replace(" (UTC)", "")
        return (f"From: <{from_}>\nTo: {', '.join(f'<{r}>' for r in rcpts)}\n"
                f"Subject: {subject or f'lab message {self.sent}'}\nDate: {date}\n"
                f"Message-ID: <{self.sent}.{self.config.seed}@{self.config.name or 'lab'}.lab>\n"
                "\nHello,\nthis is a test message.\n")

    # -- time ------------------------------------------------------------------------------------
    def settle(self) -> int:
        """Deliver, at the present instant, everything every host has just queued."""
        n = self.scheduler.settle()
        self._changed()
        return n

    def run(self, until: "str | float | _dt.datetime | None" = None) -> int:
        """Fast-forward the lab's clock, running every host's queue manager in time order
        and starting and ending faults at their instants.

        ``until``: a duration from now (``"5d"``, ``"90m"``, ``300``), an instant
        (a :class:`datetime.datetime`, UTC when naive), or None: until no host
        has mail waiting (faults still to come that no mail waits for are left
        for a later run). Returns how many messages the queue managers handled.
        """
        end: float | None
        if until is None:
            end = None
        elif isinstance(until, (_dt.datetime, _dt.date)):
            end = parse_instant(until)
            if end < self.clock.now():
                raise LabError(f"run: {until} is in the past of the lab's clock")
        else:
            try:
                end = self.clock.now() + parse_duration(until)
            except ValueError as e:
                raise LabError(f"run: {e}") from None
        n = 0
        while True:
            self._fire_faults()
            t = self.faults.next_time()
            if t is None or (end is not None and t > end) or \
                    (end is None and not self._mail_waiting()):
                break
            n += self.scheduler.run(max(t, self.clock.now()), inclusive=False)
        n += self.scheduler.run(end)
        self._changed()
        return n

    def _mail_waiting(self) -> bool:
        """Some host, up or down, has mail in its incoming, active or deferred queue."""
        return any(True for host in self.hosts.values()
                   for _ in _queue_files(host.spool, ("incoming", "active", "deferred")))

    # -- faults ------------------------------------------------------------------------------------
    def fault(self, kind: str, target: "str | list[str]", *, at=None, until=None, duration=None,
              mode: str | None = None, latency=None, delay=None, user: str | None = None,
              description: str = "") -> Fault:
        """Schedule a fault (see :mod:`mailsim.lab.faults`): ``kind`` on ``target`` (a
        host, two hosts, or a DNS name) from ``at`` (a duration from now, or an instant;
        default now) until ``until`` (likewise) or for ``duration`` (default: until
        :meth:`end_fault`). A fault due now starts at once."""
        d: dict = {"kind": kind, "target": target, "description": description}
        now = self.clock.now()
        for key, value in (("at", at), ("until", until), ("duration", duration),
                           ("mode", mode), ("latency", latency), ("delay", delay),
                           ("user", user)):
            if value is not None:
                d[key] = value
        try:
            f = parse_fault(d, start=now, hosts=list(self.hosts))
        except FaultError as e:
            raise LabError(f"fault: {e.args[1]}") from None
        if f.at < now - 1e-3:
            raise LabError("fault: it would start in the past of the lab's clock")
        self._check_fault(f)
        self.faults.faults.append(f)
        self._fire_faults()
        self._changed()
        return f

    def end_fault(self, index: int) -> Fault:
        """End fault number ``index`` (as :meth:`fault_table` numbers them) now."""
        try:
            f = self.faults.faults[index - 1] if index >= 1 else None
        except IndexError:
            f = None
        if f is None:
            raise LabError(f"no fault {index} -- the faults are numbered from 1 "
                           f"(mailsim lab DIR fault list)")
        now = self.clock.now()
        if f.state == "pending":
            f.state = "over"                     # it never started
        elif f.state == "active":
            f.until = now
            self._fire_faults()
        self._changed()
        return f

    def fault_table(self) -> list[dict]:
        """One row per fault: number, kind, target, from, until, state, description."""
        rows = []
        for i, f in enumerate(self.faults, 1):
            rows.append({"n": i, "kind": f.kind, "target": list(f.target), "what": f.describe(),
                         "at": f.at, "until": f.until, "state": f.state, "origin": f.origin,
                         "description": f.description})
        return rows

    def _check_fault(self, f: Fault) -> None:
        """What a fault needs from the lab, checked when it is declared."""
        if f.kind.startswith("dns-") and self.dns is None:
            raise LabError(f"a {f.kind} fault needs the lab's DNS -- add zone files in "
                           "zones/*.zone")
        if f.kind == "mailbox-full" and f.state == "pending":
            check_mailbox_fault(self, f)

    def _load_faults(self, saved: list[dict]) -> None:
        """lab.toml's faults (with their saved state) and the ones added by commands."""
        old = [Fault.from_dict(d) for d in saved]
        by_sig: dict[str, list[Fault]] = {}
        for f in old:
            if f.origin == "lab.toml":
                by_sig.setdefault(f.signature(), []).append(f)
        faults = []
        for f in self.config.faults:
            same = by_sig.get(f.signature())
            faults.append(same.pop(0) if same else Fault.from_dict(f.to_dict()))
        faults += [f for f in old if f.origin != "lab.toml"]
        for f in faults:
            self._check_fault(f)
        self.faults = FaultSchedule(faults)
        self.faults.restore(self)
        self._fire_faults()

    def _fire_faults(self) -> None:
        self.faults.fire(self, self.clock.now())

    # -- postfix and postqueue on a host ---------------------------------------------------------
    def flush(self, name: str) -> int:
        """``postqueue -f`` on host ``name``: retry its deferred mail now."""
        host = self.host(name)
        if not self.network.is_up(name):
            raise LabError(f"postqueue: fatal: {name}: the Postfix mail system is not running "
                           f"(start it: lab.start({name!r}))")
        self.scheduler.skip_idle_heartbeats(name)
        n = host.qmgr.run(flush=True) + self.scheduler.settle()
        self._changed()
        return n

    def stop(self, name: str) -> None:
        """``postfix stop`` on host ``name``: it refuses connections and delivers nothing."""
        host = self.host(name)
        if not self.network.is_up(name):
            raise LabError(f"postfix/postfix-script: fatal: {name}: the Postfix mail system "
                           "is not running")
        host.log.write("postfix-script", host.next_pid(), "stopping the Postfix mail system")
        host.log.write("master", host.master_pid(), "terminating on signal 15")
        self.network.down.add(name)
        self._changed()

    def start(self, name: str) -> None:
        """``postfix start`` on host ``name``: main.cf is read afresh, a new queue manager
        takes over (and scans the deferred queue at once)."""
        host = self.host(name)
        if self.network.is_up(name):
            raise LabError(f"postfix/postfix-script: fatal: {name}: the Postfix mail system "
                           "is already running")
        host.log.write("postfix-script", host.next_pid(), "starting the Postfix mail system")
        host.reload()
        host.log.write("master", host.master_pid(), "daemon started -- version 3.7.11, "
                                                    "configuration /etc/postfix")
        self.network.down.discard(name)      # reload() gave it a new queue manager
        self.scheduler.settle()
        self._changed()

    def reload(self, name: str) -> None:
        """``postfix reload`` on host ``name``: main.cf and the tables are read again."""
        host = self.host(name)
        if not self.network.is_up(name):
            raise LabError(f"postfix/postfix-script: fatal: {name}: the Postfix mail system "
                           "is not running")
        host.log.write("postfix-script", host.next_pid(), "refreshing the Postfix mail system")
        host.log.write("master", host.master_pid(), "reload -- version 3.7.11, "
                                                    "configuration /etc/postfix")
        host.reload()
        self._changed()

    def mailq(self, name: str, *, as_json: bool = False) -> str:
        """``mailq`` (``postqueue -p``; ``postqueue -j`` with ``as_json``) on host ``name``."""
        host = self.host(name)
        return json_listing(host.spool) if as_json else listing(host.spool)

    def log(self, name: str) -> list[str]:
        """Every line of host ``name``'s mail log (its maillog_file, else mail.log)."""
        host = self.host(name)
        path = host.log.path
        try:
            return path.read_text("utf-8", "surrogateescape").splitlines() if path else \
                list(host.log.lines)
        except FileNotFoundError:
            return []

    def mailbox(self, name: str, user: str) -> str:
        """The mailbox of ``user`` on host ``name`` as text ('' when it has no mail):
        ``$mail_spool_directory/USER``, ``~/$home_mailbox``, or a maildir's messages."""
        host = self.host(name)
        pw = host.users().get(user)
        home_mailbox = host.conf.get("home_mailbox") or ""
        spool = host.conf["mail_spool_directory"]
        if home_mailbox and pw is not None:
            path = host.path(f"{pw.home}/{home_mailbox}")
        else:
            path = host.path(f"{spool.rstrip('/')}/{user}")
        if path.is_dir():                   # a maildir: its messages in file-name order
            files = sorted(p for sub in ("new", "cur") for p in (path / sub).glob("*") if p.is_file())
            return "".join(p.read_text("utf-8", "surrogateescape") for p in files)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return ""
        # a mailbox-full fault's filler is not the user's mail
        return hide_filler(self, name, user, data).decode("utf-8", "surrogateescape")

    def status(self) -> list[dict]:
        """One row per host: name, addresses, hostname, up, messages queued."""
        rows = []
        for name, host in self.hosts.items():
            queued = sum(1 for _ in _queue_files(host.spool))
            rows.append({"name": name, "addresses": list(self.network.addresses[name]),
                         "hostname": host.conf["myhostname"], "up": self.network.is_up(name),
                         "queued": queued})
        return rows

    def trace(self, ident: str):
        """A message's route across hosts, by Message-ID or any host's queue id
        (:func:`mailsim.lab.trace.trace`; ``mailsim lab DIR trace ID``)."""
        from .trace import trace
        return trace(self, ident)

    def __repr__(self) -> str:
        return f"<Lab {self.config.name!r}: {', '.join(self.hosts)} at {self.clock.now():.3f}>"


def _queue_files(spool: Path, queues=("incoming", "active", "deferred", "hold")):
    for q in queues:
        for dirpath, _dirs, files in os.walk(spool / q):
            for f in files:
                if not f.startswith("."):
                    yield Path(dirpath) / f


def _lab_ca(root: Path, cfg: LabConfig, clock, force: bool):
    """lab.toml's ``[lab] ca``: the lab CA in ``LAB/ca/``, made on first load (and
    again with ``force``); None without one."""
    if cfg.ca is None:
        return None
    from ..tls import certs
    d = root / "ca"
    if force or not (d / "ca.crt").is_file() or not (d / "ca.key").is_file():
        return certs.make_ca(d, cfg.ca, clock=clock)
    return certs.load_ca(d, clock=clock)


def _has_zones(root: Path) -> bool:
    return any((root / "zones").glob("*.zone"))


def _load_dns(root: Path, clock):
    """The lab's DNS from zones/*.zone (None without zone files)."""
    if not _has_zones(root):
        return None
    from ..dns import DNS
    try:
        return DNS.load(root / "zones", clock=clock)
    except ValueError as e:                 # ZoneError names the file and line
        raise LabError(str(e)) from None
