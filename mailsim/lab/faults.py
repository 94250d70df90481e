"""Faults in a lab: scripted, at simulated instants, undone when they end.

A fault is something that goes wrong on the network, the name service or a
host, from ``at`` until ``until``; the lab's clock starts and ends it
between queue runs, so the same lab gives the same run every time. What
the hosts do about it is Postfix's own behaviour -- deferrals with Postfix's
texts, retries on qmgr's backoff schedule, bounces when Postfix bounces:

=================  ===================  ===========================================================
kind               target               what happens (and what the sending host logs)
=================  ===================  ===========================================================
``host-down``      a host               ``postfix stop`` at ``at``, ``postfix start`` at
                                        ``until``; clients get ``connect to H[A]:25: Connection
                                        refused`` (4.4.1, deferred)
``link-cut``       two hosts            sessions between them fail: ``mode = "refused"``
                                        (default: ``Connection refused``), ``"timeout"`` (the
                                        client waits ``smtp_connect_timeout``, then ``Connection
                                        timed out``) or ``"unreachable"`` (``No route to host``)
``slow-link``      two hosts            a session over the link takes ``latency``; from
                                        ``smtp_connect_timeout`` (30s) on, connecting times out
``dns-servfail``   a DNS name           it and every name below it answer SERVFAIL: ``Host or
                                        domain name not found. Name service error for name=N
                                        type=MX: Host not found, try again`` (4.4.3, deferred)
``dns-nxdomain``   a DNS name           they do not exist: ``... type=A: Host not found``
                                        (5.4.4 -- Postfix *bounces* such mail)
``greylist``       a host               its smtpd answers ``450 4.2.0 <rcpt>: Recipient address
                                        rejected: Greylisted, see http://postgrey.schweikert.ch/
                                        help/DOMAIN.html`` to a (client /24, sender, recipient)
                                        triple until ``delay`` (300s) after its first attempt
``mailbox-full``   a host, ``user``     the user's mbox has reached ``mailbox_size_limit``;
                                        local(8) bounces: ``cannot update mailbox ... error
                                        writing message: File too large`` (5.2.2)
=================  ===================  ===========================================================

In lab.toml (``at`` and ``until`` count from the lab's ``start``; either may
be a date-time instead; ``duration`` may replace ``until``)::

    [[faults]]
    kind = "host-down"
    target = "relay"
    at = "10m"
    until = "1h10m"

From Python, ``lab.fault("link-cut", ["mail", "mx1"], at="5m", duration="1h",
mode="timeout")`` (``at`` counts from now), and from the shell ``mailsim lab
DIR fault link-cut mail mx1 --at 5m --for 1h --mode timeout``.

How the faults are made, and what is not Postfix
------------------------------------------------
* ``host-down`` is :meth:`Lab.stop` / :meth:`Lab.start`: the host logs
  ``postfix-script`` and ``master`` lines, and its queue manager restarts.
* ``greylist`` stands for a policy server such as postgrey behind
  ``check_policy_service`` at the end of smtpd_recipient_restrictions: the
  check runs after every Postfix restriction has accepted the recipient
  (for every client; mail to ``postmaster`` is never checked, as in
  Postfix). The reply text is postgrey's (1.3x defaults, with the 4.2.0 code
  its installations show), not Postfix's; the ``NOQUEUE: reject: RCPT``
  line is smtpd's. Postgrey's own log lines, auto-whitelisting and
  retry windows are not simulated. Replies elsewhere are untouched.
* ``mailbox-full`` appends one filler message to the user's mailbox so that
  its size reaches ``mailbox_size_limit`` (set one in the host's main.cf:
  Debian's ``0`` means no limit), and takes it out again when the fault
  ends. :meth:`Lab.mailbox` does not show the filler. Only mbox mailboxes.
* ``dns-*`` use the virtual DNS's fault sets (:attr:`mailsim.dns.DNS.servfail`);
  a lab without zone files has no DNS to break.

A lossy link is not a fault but a link property (``loss`` in ``[[links]]``,
see :mod:`mailsim.lab.network`). Not simulated: partial outages of one address of a host,
faults of the lab's outside client (``lab send``) other than a stopped host.

Examples
--------
>>> f = Fault("link-cut", ("mail", "mx1"), at=600.0, until=4200.0, mode="timeout")
>>> f.describe()
'link-cut mail <-> mx1 (timeout)'
>>> Fault.from_dict(f.to_dict()) == f
True
>>> parse_fault({"kind": "greylist", "target": "mx1", "at": "10m"}, start=0.0,
...             hosts=["mail", "mx1"]).at
600.0
>>> parse_fault({"kind": "link-cut", "target": "mx1"}, start=0.0, hosts=["mail", "mx1"])
Traceback (most recent call last):
...
mailsim.lab.faults.FaultError: ('target', 'a link-cut fault names two hosts: target = ["mail", "mx1"]')
"""
from __future__ import annotations

import datetime as _dt
import errno
import ipaddress
import os
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .duration import parse_duration, parse_instant

if TYPE_CHECKING:                       # the lab imports this module
    from .lab import Lab

__all__ = ["Fault", "FaultError", "FaultSchedule", "Greylist", "KINDS", "LINK_MODES",
           "parse_fault", "GREYLIST_DELAY", "check_mailbox_fault", "hide_filler", "mbox_path"]

#: every kind of fault, and what its target is
KINDS = {
    "host-down": "host", "link-cut": "link", "slow-link": "link", "dns-servfail": "name",
    "dns-nxdomain": "name", "greylist": "host", "mailbox-full": "host",
}
#: how a cut link fails a connection, and the system's text for it
LINK_MODES = {"refused": errno.ECONNREFUSED, "timeout": errno.ETIMEDOUT,
              "unreachable": errno.EHOSTUNREACH}
#: postgrey's default --delay
GREYLIST_DELAY = 300.0
#: the keys a [[faults]] entry may have
KEYS = {"kind", "target", "at", "until", "duration", "mode", "latency", "delay", "user",
        "description"}


class FaultError(ValueError):
    """A fault described wrongly: ``(key, text)`` -- lab.toml names the line of ``key``."""


@dataclass
class Fault:
    """One fault: ``kind`` on ``target`` from ``at`` until ``until`` (instants, None:
    until ended by hand). ``state`` is pending, active or over; ``data`` keeps what
    the fault must remember (greylisted triples, the mailbox filler)."""
    kind: str
    target: tuple[str, ...]
    at: float
    until: float | None = None
    mode: str = ""
    latency: float = 0.0
    delay: float = GREYLIST_DELAY
    user: str = ""
    description: str = ""
    origin: str = "api"           # "lab.toml" or "api"
    state: str = "pending"
    data: dict = field(default_factory=dict)

    def describe(self) -> str:
        """``host-down relay``, ``link-cut mail <-> mx1 (timeout)``, ..."""
        what = " <-> ".join(self.target) if KINDS[self.kind] == "link" else self.target[0]
        extra = {"link-cut": self.mode or "refused",
                 "slow-link": f"latency {self.latency:g}s",
                 "greylist": f"delay {self.delay:g}s",
                 "mailbox-full": f"user {self.user}"}.get(self.kind)
        return f"{self.kind} {what}" + (f" ({extra})" if extra else "")

    def signature(self) -> str:
        """What identifies a lab.toml fault across commands (its definition)."""
        return repr((self.kind, self.target, self.at, self.until, self.mode, self.latency,
                     self.delay, self.user))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["target"] = list(self.target)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Fault":
        d = dict(d)
        d["target"] = tuple(d["target"])
        return cls(**d)


# -- parsing ------------------------------------------------------------------------------------
def _instant(v: Any, base: float, key: str) -> float:
    """An offset from ``base`` ("10m", 600) or an instant (a TOML date-time, a datetime)."""
    if isinstance(v, (_dt.datetime, _dt.date)):
        return parse_instant(v)
    try:
        return base + parse_duration(v)
    except ValueError:
        pass
    try:
        if isinstance(v, str) and v[:1].isdigit() and "-" in v:
            return parse_instant(v)
    except ValueError:
        pass
    raise FaultError(key, f"{key} = {v!r}: write a time from the start (\"10m\", \"1h30m\") "
                          "or a date-time (2026-11-25T10:00:00Z)")


def parse_fault(d: dict, *, start: float, hosts: list[str], origin: str = "api") -> Fault:
    """A :class:`Fault` from a ``[[faults]]`` table or the API's keywords; times count
    from ``start``. Raises :class:`FaultError` ``(key, text)``."""
    for k in d:
        if k not in KEYS:
            raise FaultError(k, f"unknown key {k!r} in [[faults]] -- the keys are: "
                                f"{', '.join(sorted(KEYS))}")
    kind = d.get("kind")
    if kind not in KINDS:
        raise FaultError("kind", f"kind = {kind!r}: the kinds of fault are "
                                 f"{', '.join(KINDS)}")
    raw = d.get("target")
    targets = [raw] if isinstance(raw, str) else raw
    if not isinstance(targets, list) or not targets or \
            not all(isinstance(t, str) and t for t in targets):
        raise FaultError("target", f"a {kind} fault needs a target: "
                                   + _target_example(kind))
    what = KINDS[kind]
    if what == "link":
        if len(targets) != 2:
            raise FaultError("target", f"a {kind} fault names two hosts: target = "
                                       "[\"mail\", \"mx1\"]")
        if targets[0] == targets[1]:
            raise FaultError("target", f"a link joins two different hosts, not {targets[0]!r} "
                                       "to itself")
    elif len(targets) != 1:
        raise FaultError("target", f"a {kind} fault has one target: " + _target_example(kind))
    if what in ("host", "link"):
        for t in targets:
            if t not in hosts:
                raise FaultError("target", f"no host {t!r} in this lab -- the hosts are: "
                                           f"{', '.join(hosts)}")
    else:
        targets = [targets[0].lower().rstrip(".")]
    at = _instant(d.get("at", 0), start, "at")
    if "until" in d and "duration" in d:
        raise FaultError("duration", "give until or duration, not both")
    until = None
    if "until" in d:
        until = _instant(d["until"], start, "until")
    elif "duration" in d:
        try:
            until = at + parse_duration(d["duration"])
        except ValueError as e:
            raise FaultError("duration", f"duration: {e}") from None
    if until is not None and until <= at:
        raise FaultError("until" if "until" in d else "duration",
                         "the fault must end after it begins (until is counted from the "
                         "lab's start, like at)")
    f = Fault(kind, tuple(targets), at, until, origin=origin,
              description=str(d.get("description", "")))
    if kind == "link-cut":
        f.mode = str(d.get("mode", "refused"))
        if f.mode not in LINK_MODES:
            raise FaultError("mode", f"mode = {f.mode!r}: a cut link is {', '.join(LINK_MODES)}")
    elif "mode" in d:
        raise FaultError("mode", "only a link-cut fault has a mode")
    if kind == "slow-link":
        try:
            f.latency = parse_duration(d.get("latency", "10s"))
        except ValueError as e:
            raise FaultError("latency", f"latency: {e}") from None
    if kind == "greylist":
        try:
            f.delay = parse_duration(d.get("delay", GREYLIST_DELAY))
        except ValueError as e:
            raise FaultError("delay", f"delay: {e}") from None
    if kind == "mailbox-full":
        user = d.get("user")
        if not isinstance(user, str) or not user:
            raise FaultError("user", "a mailbox-full fault names the user whose mailbox is "
                                     "full: user = \"peter\"")
        f.user = user
    return f


def _target_example(kind: str) -> str:
    return {"host": 'target = "mx1"', "link": 'target = ["mail", "mx1"]',
            "name": 'target = "example.org"'}[KINDS[kind]]


# -- greylisting ----------------------------------------------------------------------------------
class Greylist:
    """A postgrey-like policy for one host's smtpd: ``triples`` maps
    ``client-net/sender/recipient`` to the time (whole seconds) of its first attempt;
    a retry ``delay`` seconds later or more passes."""

    def __init__(self, delay: float, triples: dict[str, float], clock) -> None:
        self.delay = delay
        self.triples = triples
        self.clock = clock

    @staticmethod
    def key(client: str, sender: str, recipient: str) -> str:
        """postgrey's triple: the client's /24 (IPv4; an IPv6 address whole), sender,
        recipient, in lower case.

        >>> Greylist.key("192.0.2.77", "Alice@example.com", "peter@example.org")
        '192.0.2/alice@example.com/peter@example.org'
        """
        try:
            ip = ipaddress.ip_address(client)
            net = ".".join(client.split(".")[:3]) if ip.version == 4 else str(ip)
        except ValueError:
            net = client
        return f"{net}/{sender.lower()}/{recipient.lower()}"

    def hook(self, engine) -> None:
        """Attach to one smtpd session: after Postfix's restrictions accept a RCPT."""
        checker = engine.checker
        original = checker.check_rcpt

        def check_rcpt(stage: str, recipient: str):
            d = original(stage, recipient)
            if stage == "RCPT" and d.reply is None and d.action == "permit" \
                    and recipient.lower() != "postmaster":
                self._check(engine, d, recipient)
            return d
        checker.check_rcpt = check_rcpt

    def _check(self, engine, d, recipient: str) -> None:
        from ..reply import Reply
        from ..smtpd.check import Step
        sender = engine.tx.sender if engine.tx is not None else ""
        key = self.key(engine.client_addr, sender, recipient)
        now = int(self.clock.now())              # postgrey counts whole seconds
        first = self.triples.setdefault(key, now)
        waited = now - first
        if waited >= self.delay:
            d.steps.append(Step("lab greylisting", "check_policy_service (postgrey)", "DUNNO",
                                f"triplet found, first seen {waited:.0f}s ago"))
            return
        domain = recipient.rpartition("@")[2] or recipient
        r = Reply(450, "4.2.0", f"<{recipient}>: Recipient address rejected: Greylisted, "
                                f"see http://postgrey.schweikert.ch/help/{domain}.html")
        engine.log_whatsup("reject", f"{r.code} {r.enhanced} {r.text}")
        reason = "new" if waited == 0 else f"early-retry ({self.delay - waited:.0f}s missing)"
        d.steps.append(Step("lab greylisting", "check_policy_service (postgrey)", "DEFER", reason))
        d.reply, d.action = r, "reject"


# -- the schedule ---------------------------------------------------------------------------------
class FaultSchedule:
    """The lab's faults in the order they were declared; starts and ends them."""

    def __init__(self, faults: list[Fault] | None = None) -> None:
        self.faults: list[Fault] = list(faults or [])

    def __iter__(self):
        return iter(self.faults)

    def __len__(self) -> int:
        return len(self.faults)

    def next_time(self) -> float | None:
        """The next instant at which a fault starts or ends (None: nothing scheduled)."""
        times = [f.at for f in self.faults if f.state == "pending"]
        times += [f.until for f in self.faults if f.state == "active" and f.until is not None]
        return min(times) if times else None

    def due(self, now: float) -> list[tuple[float, int, str]]:
        """(time, index, "start"|"end") of every event at or before ``now``, in order."""
        out = []
        for i, f in enumerate(self.faults):
            if f.state == "pending" and f.at <= now:
                out.append((f.at, i, "start"))
                if f.until is not None and f.until <= now:
                    out.append((f.until, i, "end"))
            elif f.state == "active" and f.until is not None and f.until <= now:
                out.append((f.until, i, "end"))
        return sorted(out)

    def fire(self, lab: "Lab", now: float) -> int:
        """Start and end, in time order, every fault due by ``now``; how many events."""
        n = 0
        for _, i, what in self.due(now):
            f = self.faults[i]
            if what == "start" and f.state == "pending":
                begin(lab, f)
                f.state = "active"
            elif what == "end" and f.state == "active":
                end(lab, f)
                f.state = "over"
            n += 1
        return n

    def restore(self, lab: "Lab") -> None:
        """Re-make the in-memory effects of the active faults (after loading the lab)."""
        for f in self.faults:
            if f.state == "active":
                apply(lab, f)

    def active(self, kind: str | None = None) -> list[Fault]:
        return [f for f in self.faults if f.state == "active" and (kind is None or f.kind == kind)]


# -- what each kind does ----------------------------------------------------------------------------
def begin(lab: "Lab", f: Fault) -> None:
    """A fault starts: one-off actions, then its in-memory effects."""
    if f.kind == "host-down":
        if lab.network.is_up(f.target[0]):
            lab.stop(f.target[0])
    elif f.kind in ("dns-servfail", "dns-nxdomain"):
        names = lab.dns.servfail if f.kind == "dns-servfail" else lab.dns.nxdomain
        f.data["added"] = f.target[0] not in names
    elif f.kind == "mailbox-full":
        _fill_mailbox(lab, f)
    apply(lab, f)


def apply(lab: "Lab", f: Fault) -> None:
    """The in-memory effects of an active fault (idempotent)."""
    net = lab.network
    if f.kind == "link-cut":
        net.cuts[frozenset(f.target)] = f.mode or "refused"
    elif f.kind == "slow-link":
        net.slow[frozenset(f.target)] = f.latency
    elif f.kind in ("dns-servfail", "dns-nxdomain"):
        (lab.dns.servfail if f.kind == "dns-servfail" else lab.dns.nxdomain).add(f.target[0])
    elif f.kind == "greylist" and id(f) not in lab._greylists:
        gl = Greylist(f.delay, f.data.setdefault("triples", {}), lab.clock)
        net.smtpd_hooks.setdefault(f.target[0], []).append(gl.hook)
        lab._greylists[id(f)] = gl.hook


def end(lab: "Lab", f: Fault) -> None:
    """A fault ends: its effects are undone."""
    net = lab.network
    if f.kind == "host-down":
        if not net.is_up(f.target[0]):
            lab.start(f.target[0])
    elif f.kind == "link-cut":
        net.cuts.pop(frozenset(f.target), None)
        for other in lab.faults.active("link-cut"):      # another cut of the same link
            if other is not f:
                net.cuts[frozenset(other.target)] = other.mode or "refused"
    elif f.kind == "slow-link":
        net.slow.pop(frozenset(f.target), None)
        for other in lab.faults.active("slow-link"):
            if other is not f:
                net.slow[frozenset(other.target)] = other.latency
    elif f.kind in ("dns-servfail", "dns-nxdomain"):
        names = lab.dns.servfail if f.kind == "dns-servfail" else lab.dns.nxdomain
        still = any(o is not f and o.target == f.target for o in lab.faults.active(f.kind))
        if f.data.get("added", True) and not still:
            names.discard(f.target[0])
    elif f.kind == "greylist":
        hook = lab._greylists.pop(id(f), None)
        hooks = net.smtpd_hooks.get(f.target[0], [])
        if hook in hooks:
            hooks.remove(hook)
    elif f.kind == "mailbox-full":
        _empty_mailbox(lab, f)


# -- mailbox-full ------------------------------------------------------------------------------------
def mbox_path(lab: "Lab", host_name: str, user: str) -> str:
    """The user's mbox as a path of the simulated server (LabError for a maildir)."""
    from .config import LabError
    host = lab.host(host_name)
    pw = host.users().get(user)
    home_mailbox = host.conf.get("home_mailbox") or ""
    if home_mailbox and pw is None:
        raise LabError(f"mailbox-full: no user {user!r} on {host_name} (etc/passwd)")
    if home_mailbox.endswith("/"):
        raise LabError(f"mailbox-full: {user}'s mailbox on {host_name} is a maildir "
                       f"(home_mailbox = {home_mailbox}); mailbox_size_limit applies to "
                       "mbox files only")
    if home_mailbox:
        return f"{pw.home}/{home_mailbox}"
    return f"{host.conf['mail_spool_directory'].rstrip('/')}/{user}"


def _filler(size: int, user: str, now: float) -> bytes:
    """``size`` bytes of mbox text: one old message filling the mailbox."""
    tm = time.gmtime(now)          # an mbox From_ line: the day padded with a blank
    stamp = time.strftime("%a %b ", tm) + f"{tm.tm_mday:2d}" + time.strftime(" %H:%M:%S %Y", tm)
    head = (f"From MAILER-DAEMON  {stamp}\nFrom: lab <MAILER-DAEMON>\n"
            f"Subject: old mail filling {user}'s mailbox (mailbox-full fault)\n\n").encode()
    if size <= len(head) + 2:
        return b"\n" * max(size, 0)
    line = b"This line stands for old mail that nobody has deleted yet." + b" " * 12 + b"\n"
    body_len = size - len(head) - 1
    body = line * (body_len // len(line))
    body += b"\n" * (body_len - len(body))
    return head + body + b"\n"


def check_mailbox_fault(lab: "Lab", f: Fault) -> str:
    """The mbox a mailbox-full fault fills (LabError when the host cannot have one full)."""
    from .config import LabError
    name = f.target[0]
    if lab.host(name).conf.int("mailbox_size_limit") <= 0:
        raise LabError(f"mailbox-full on {name}: mailbox_size_limit = 0 means no mailbox is "
                       f"ever full -- give {name} a limit first (postconf -e "
                       "mailbox_size_limit=10240000, or mailbox_size_limit in [hosts.main_cf])")
    return mbox_path(lab, name, f.user)


def _fill_mailbox(lab: "Lab", f: Fault) -> None:
    name, user = f.target[0], f.user
    host = lab.host(name)
    rel = check_mailbox_fault(lab, f)
    limit = host.conf.int("mailbox_size_limit")
    path = host.path(rel)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = 0
    filler = _filler(limit - size, user, lab.clock.now()) if size < limit else b""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, filler)
    finally:
        os.close(fd)
    f.data.update(path=rel, offset=size, size=len(filler))


def _empty_mailbox(lab: "Lab", f: Fault) -> None:
    host = lab.host(f.target[0])
    path = host.path(f.data.get("path") or mbox_path(lab, f.target[0], f.user))
    offset, size = int(f.data.get("offset", 0)), int(f.data.get("size", 0))
    try:
        with open(path, "r+b") as fh:
            fh.seek(offset + size)
            tail = fh.read()
            fh.seek(offset)
            fh.truncate()
            fh.write(tail)
    except FileNotFoundError:
        pass


def hide_filler(lab: "Lab", host_name: str, user: str, data: bytes) -> bytes:
    """A mailbox's bytes without the filler of an active mailbox-full fault."""
    for f in lab.faults.active("mailbox-full"):
        if f.target[0] == host_name and f.user == user and f.data.get("size"):
            off, size = int(f.data["offset"]), int(f.data["size"])
            data = data[:off] + data[off + size:]
    return data
