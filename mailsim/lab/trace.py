"""Following one message across a lab's hosts, the way an administrator does.

On a real network a message is followed host by host with ``grep`` in the
mail logs: find its queue id on the first host (``grep 'message-id=<X>'``
or the id the client was given), read that id's lines (``client=``,
``message-id=``, qmgr's ``from=``, one ``to=... relay=... status=...`` per
attempt, ``removed``); a line ``status=sent (250 2.0.0 Ok: queued as
NEWID)`` with ``relay=NAME[ADDR]:PORT`` names the next host and the queue
id it gave the message there; go there and start again. The delivered copy
tells the same story backwards: each ``Received:`` header says ``by HOST
... id QID``. :func:`trace` does exactly this on every host of a lab (it
reads the logs and mailboxes, nothing else) and returns a :class:`Trace`:

* one :class:`Hop` per host and queue id, in the order the message took
  them (depth first: a message split between recipients forks);
* each hop's lines, its :class:`Delivery` attempts (deferrals with their
  instants: the retry timeline), its next hop, and the decision behind
  each recipient: the address class, transport and next hop that this
  host's trivial-rewrite gives it now (:class:`Routing`), and the reply;
* what the receiving smtpd said when it refused a recipient (its
  ``NOQUEUE: reject: RCPT`` line, which names the restriction's verdict);
* the ``Received:`` chain of the delivered copy, when a local mailbox
  holds it.

:meth:`Trace.to_text` is stable (no wall clock; the lab's simulated times)
for notebooks under nbval; :meth:`Trace.to_json` is for scripts. The
graphs of a trace are in :mod:`mailsim.route_graphs`.

Real-server equivalent: ``grep QID /var/log/mail.log`` on each host, then
``ssh NEXTHOST grep NEWID /var/log/mail.log``; ``postcat -q QID`` for a
message still queued.

Trust: log lines are read as text; a line that is not Postfix's is skipped.
Log lines carry no year: it is taken from the lab's clock.

Not shown: which restriction element accepted a recipient (smtpd logs only
refusals; :func:`mailsim.graphs.decide` replays the walk on a host), and
hops outside the lab beyond the first (a relay to a real MTA is one
"external" hand-off).

Examples
--------
>>> import tempfile, pathlib
>>> from mailsim.lab import Lab
>>> lab = Lab.init(pathlib.Path(tempfile.mkdtemp()) / "lab", from_lab="two-domains")
>>> r = lab.send("alice@example.com", "peter@example.org")
>>> t = trace(lab, r.queue_id)
>>> [(h.host, h.queue_id == r.queue_id) for h in t.hops]
[('mail', True), ('mx1', False)]
>>> t.hops[0].deliveries[0].next_queue_id == t.hops[1].queue_id
True
>>> print(t.to_text(log=False).splitlines()[0])
message <1.1@two-domains.lab> from <alice@example.com>: 2 hops, mail -> mx1
"""
from __future__ import annotations

import calendar
import json
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Iterable

from .config import LabError
from .duration import format_duration, format_instant

__all__ = ["trace", "Trace", "Hop", "Delivery", "Routing", "Received", "LogLine", "parse_line",
           "parse_status", "parse_received", "log_stamp"]

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_LINE = re.compile(r"^(?P<mon>\w{3}) +(?P<day>\d+) (?P<hh>\d\d):(?P<mm>\d\d):(?P<ss>\d\d) "
                   r"(?P<short>\S+) (?P<prog>[^\s\[]+)\[(?P<pid>\d+)\]: (?P<text>.*)$")
_QID = re.compile(r"^(?!NOQUEUE|warning|fatal|panic|error|statistics)([0-9A-Za-z]{6,}): (.*)$")
_STATUS = re.compile(r"^to=<(?P<to>[^>]*)>, (?:orig_to=<(?P<orig>[^>]*)>, )?relay=(?P<relay>[^,]+), "
                     r"(?:conn_use=\d+, )?delay=(?P<delay>[\d.]+), delays=(?P<delays>[\d./]+), "
                     r"dsn=(?P<dsn>[\d.]+), status=(?P<status>\w+)(?: \((?P<reason>.*)\))?$")
_RELAY = re.compile(r"^(?P<name>[^\[\s]+)\[(?P<addr>[^\]]+)\]:(?P<port>\d+)$")
_TARGET = re.compile(r"(?:connect to|host) (?P<name>[^\s\[]+)\[(?P<addr>[^\]]+)\](?::(?P<port>\d+))?")
_QUEUED_AS = re.compile(r"queued as (\S+?)\)?$")
_FORWARDED = re.compile(r"^forwarded as (\S+)$")
_NOTIFY = re.compile(r"^(sender|postmaster) (non-delivery|delay|delivery status|success) "
                     r"notification: (\S+)$")
_REJECT = re.compile(r"^NOQUEUE: reject: RCPT from \S+: (?P<reply>.*); from=<(?P<from>[^>]*)> "
                     r"to=<(?P<to>[^>]*)>")
_RECEIVED = re.compile(r"^from (?P<from>.*?)\s+by (?P<by>\S+)(?: \([^)]*\))?(?: with (?P<with>\S+))?"
                       r"(?: id (?P<id>\S+))?(?:\s+for <[^>]*>)?;\s*(?P<date>.*)$", re.S)


# -- the log -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogLine:
    """One line of a host's mail log, taken apart.

    ``program`` is syslog's tag (``postfix/relay/smtp``), ``qid`` the queue
    id the line starts with (None for ``connect from``, ``NOQUEUE``, ...),
    ``text`` what follows the queue id, ``index`` the line's number in the log.
    """
    host: str
    index: int
    time: float
    program: str
    pid: int
    qid: str | None
    text: str
    raw: str

    @property
    def daemon(self) -> str:
        """The program's last part: ``smtp``, ``local``, ``qmgr``."""
        return self.program.rsplit("/", 1)[-1]

    @property
    def service(self) -> str:
        """The master.cf service that logged it: ``relay`` for ``postfix/relay/smtp``."""
        parts = self.program.split("/")
        return parts[-2] if len(parts) > 2 else parts[-1]


def _year_of(now: float) -> int:
    return time.gmtime(now).tm_year


def parse_line(host: str, index: int, raw: str, now: float) -> LogLine | None:
    """A log line taken apart; the year is the one that puts it at or before ``now``.

    >>> ln = parse_line("mail", 0, "Nov 25 09:00:00 mail postfix/smtp[7]: 0008916022A: "
    ...                 "to=<p@example.org>, relay=none, delay=0, delays=0/0/0/0, dsn=4.4.1, "
    ...                 "status=deferred (connect to mx1[127.0.0.3]:25: Connection refused)", 1795597300.0)
    >>> ln.qid, ln.service, format_instant(ln.time)
    ('0008916022A', 'smtp', '2026-11-25 09:00:00 UTC')
    >>> parse_line("mail", 0, "not a log line", 0.0) is None
    True
    """
    m = _LINE.match(raw)
    if not m or m["mon"] not in _MONTHS:
        return None
    year = _year_of(now)
    stamp = (int(m["day"]), int(m["hh"]), int(m["mm"]), int(m["ss"]))
    t = calendar.timegm((year, _MONTHS[m["mon"]], *stamp, 0, 0, 0))
    if t > now + 86400:                     # December's lines read in January
        t = calendar.timegm((year - 1, _MONTHS[m["mon"]], *stamp, 0, 0, 0))
    text = m["text"]
    q = _QID.match(text)
    return LogLine(host, index, float(t), m["prog"], int(m["pid"]), q.group(1) if q else None,
                   q.group(2) if q else text, raw)


def parse_status(text: str) -> dict | None:
    """The fields of a delivery agent's ``to=<...>, relay=..., status=...`` text.

    >>> s = parse_status("to=<p@example.org>, relay=mx1.example.org[127.0.0.3]:25, delay=0, "
    ...                  "delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 0AB12)")
    >>> s["status"], s["relay"], s["reason"]
    ('sent', 'mx1.example.org[127.0.0.3]:25', '250 2.0.0 Ok: queued as 0AB12')
    """
    m = _STATUS.match(text)
    return m.groupdict() if m else None


# -- what a trace holds ----------------------------------------------------------------------------
@dataclass
class Routing:
    """trivial-rewrite's answer for one recipient on one host (as configured now)."""
    recipient: str
    klass: str
    transport: str
    nexthop: str
    why: list[str] = field(default_factory=list)     # trivial-rewrite's steps, in order

    def text(self) -> str:
        return f"address class {self.klass}, transport {self.transport}, nexthop {self.nexthop}"


@dataclass
class Delivery:
    """One delivery attempt for one recipient: a ``to=... status=...`` line.

    ``target``/``target_addr`` is the server tried (from ``relay=``, or from
    ``connect to NAME[ADDR]`` in the reason when nothing answered);
    ``target_host`` the lab host at that address (None outside the lab);
    ``next_queue_id`` the id in ``queued as``/``forwarded as``;
    ``remote_reject`` the receiving smtpd's ``NOQUEUE: reject`` text for this
    recipient, when it refused it; ``context`` the same process's lines just
    before (``connect to ...: Connection refused``), and ``tried`` those of
    them about another server than the one finally used (the MX fallback:
    ``server``, ``addr``, lab ``host`` or None, ``text``).
    """
    time: float
    recipient: str
    orig_to: str | None
    relay: str
    transport: str
    agent: str
    delay: str
    delays: str
    dsn: str
    status: str
    reply: str
    target: str | None = None
    target_addr: str | None = None
    target_host: str | None = None
    next_queue_id: str | None = None
    next_hop: int | None = None            # index in Trace.hops
    remote_reject: str | None = None
    context: list[str] = field(default_factory=list)
    tried: list[dict] = field(default_factory=list)    # servers given up on before this one

    @property
    def on_host(self) -> bool:
        """Delivered (or tried) on the host itself: local, virtual, pipe ... (no server)."""
        return self.target_addr is None and self.relay != "none"


@dataclass
class Received:
    """One ``Received:`` header of the delivered copy (newest first)."""
    by: str
    id: str | None
    from_: str
    with_: str | None
    date: str
    hop: int | None = None                 # index in Trace.hops of the queue id it names


@dataclass
class Hop:
    """One host's part: the message under one queue id there."""
    host: str
    hostname: str
    queue_id: str
    arrived: float
    source: str                            # smtpd, pickup, cleanup (made on the host), unknown
    client: str | None = None              # NAME[ADDR] from client=
    message_id: str | None = None
    sender: str | None = None
    size: int | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    routing: list[Routing] = field(default_factory=list)
    notifications: list[str] = field(default_factory=list)    # "sender non-delivery notification: ID"
    expired: float | None = None
    removed: float | None = None
    queue: str | None = None               # incoming/active/deferred/hold while still queued
    previous: int | None = None            # index in Trace.hops
    depth: int = 0
    lines: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``HOST/QUEUEID``: the node name in the route graph."""
        return f"{self.host}/{self.queue_id}"

    def attempts(self, recipient: str | None = None) -> list[Delivery]:
        """The delivery attempts (of ``recipient``), in time order."""
        return [d for d in self.deliveries if recipient is None or d.recipient == recipient]

    def recipients(self) -> list[str]:
        out: list[str] = []
        for d in self.deliveries:
            if d.recipient not in out:
                out.append(d.recipient)
        return out

    def outcome(self, recipient: str) -> Delivery | None:
        """The last attempt for ``recipient`` (sent, bounced, or the latest deferral)."""
        ds = self.attempts(recipient)
        return ds[-1] if ds else None


@dataclass
class Trace:
    """A message's route across a lab: :attr:`hops` in the order it took them."""
    ident: str
    hops: list[Hop]
    received: list[Received] = field(default_factory=list)
    received_where: str | None = None      # "mx1, mailbox of peter"
    now: float = 0.0

    @property
    def message_id(self) -> str | None:
        return next((h.message_id for h in self.hops if h.message_id), None)

    @property
    def sender(self) -> str | None:
        return next((h.sender for h in self.hops if h.sender is not None), None)

    def route(self) -> list[str]:
        """``HOST/QUEUEID`` of every hop, in order."""
        return [h.name for h in self.hops]

    def retried(self) -> list[tuple[Hop, str]]:
        """(hop, recipient) pairs that were deferred at least once."""
        return [(h, r) for h in self.hops for r in h.recipients()
                if any(d.status == "deferred" for d in h.attempts(r))]

    def outcomes(self) -> list[tuple[Hop, Delivery]]:
        """Where each recipient's journey ends: delivered, bounced, handed outside, or waiting."""
        out = []
        for h in self.hops:
            for r in h.recipients():
                d = h.outcome(r)
                if d is not None and d.next_hop is None:
                    out.append((h, d))
        return out

    # -- text ------------------------------------------------------------------------------------
    def summary(self) -> str:
        hosts = " -> ".join(h.host for h in self.hops)
        n = len(self.hops)
        mid = self.message_id
        who = f"message {mid}" if mid else f"message {self.ident}"
        frm = f" from <{self.sender}>" if self.sender is not None else ""
        return f"{who}{frm}: {n} hop{'s' if n != 1 else ''}, {hosts}"

    def to_text(self, *, log: bool = True) -> str:
        """The trace for a reader: the route, each hop (decisions, attempts, log lines
        with ``log``), the retry timelines and the Received chain. Stable: only the
        lab's simulated times appear."""
        out = [self.summary()]
        for h, d in self.outcomes():
            out.append(f"  {d.recipient}: {_outcome_text(h, d)}")
        for i, h in enumerate(self.hops, 1):
            out += [""] + _hop_text(self, i, h, log)
        for h, r in self.retried():
            out += ["", *_timeline_text(self, h, r)]
        if self.received:
            out += ["", f"Received headers of the delivered copy ({self.received_where}), newest first:"]
            for rc in self.received:
                tag = f"  <- hop {rc.hop + 1}" if rc.hop is not None else ""
                out.append(f"  by {rc.by} id {rc.id or '-'} from {rc.from_}{tag}")
        return "\n".join(out) + "\n"

    def as_dict(self) -> dict:
        """Plain data (what :meth:`to_json` writes); times in seconds since the epoch
        and as ``YYYY-MM-DD HH:MM:SS UTC``; hops numbered from 1 (``n``, ``previous``,
        ``next_hop``), as in :meth:`to_text`."""
        hops = []
        for i, h in enumerate(self.hops):
            d = asdict(h)
            d["n"] = i + 1
            d["name"] = h.name
            d["arrived_at"] = format_instant(h.arrived)
            d["previous"] = None if h.previous is None else h.previous + 1
            for dv in d["deliveries"]:
                dv["at"] = format_instant(dv["time"])
                dv["next_hop"] = None if dv["next_hop"] is None else dv["next_hop"] + 1
            hops.append(d)
        return {"ident": self.ident, "message_id": self.message_id, "sender": self.sender,
                "route": self.route(), "hops": hops,
                "outcomes": [{"hop": self.hops.index(h) + 1, "recipient": d.recipient,
                              "status": d.status, "text": _outcome_text(h, d)}
                             for h, d in self.outcomes()],
                "received": [{"by": r.by, "id": r.id, "from": r.from_, "with": r.with_,
                              "date": r.date, "hop": None if r.hop is None else r.hop + 1}
                             for r in self.received],
                "received_where": self.received_where}

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`as_dict` as JSON (keys in a fixed order)."""
        return json.dumps(self.as_dict(), indent=indent)

    def __repr__(self) -> str:
        return f"<Trace {self.summary()}>"

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(self.to_text(log=False).rstrip("\n"))


def log_stamp(t: float) -> str:
    """``Nov 25 09:00:00``: an instant as the mail log writes it (UTC).

    >>> log_stamp(1795597200.0)
    'Nov 25 09:00:00'
    """
    tm = time.gmtime(t)
    return f"{_MONTH_NAMES[tm.tm_mon - 1]} {tm.tm_mday:2d} {tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"


def _outcome_text(h: Hop, d: Delivery) -> str:
    if d.status == "sent" and d.target_addr and d.target_host is None:
        return f"handed to {d.target}[{d.target_addr}] outside the lab by {h.host} at {log_stamp(d.time)}"
    if d.status == "sent":
        return f"{d.reply} on {h.host} at {log_stamp(d.time)}"
    if d.status == "deferred":
        where = f"in {h.host}'s {h.queue} queue" if h.queue else f"on {h.host}"
        return f"deferred {where} since {log_stamp(d.time)} ({d.reply})"
    return f"{d.status} by {h.host} at {log_stamp(d.time)} ({d.reply})"


def _hop_text(t: Trace, i: int, h: Hop, log: bool) -> list[str]:
    out = [f"{i}. {h.host} {h.queue_id}  ({h.hostname})"]
    came = {"smtpd": f"from {h.client} by smtpd", "pickup": "from the maildrop by pickup (sendmail)",
            "cleanup": "made on this host (a forwarded copy or a notification)"}.get(
        h.source, "(its first lines are not in the log)")
    if h.previous is not None:
        came += f", from hop {h.previous + 1} ({t.hops[h.previous].name})"
    out.append(f"   received {log_stamp(h.arrived)} {came}")
    if h.message_id:
        out.append(f"   message-id={h.message_id}")
    if h.sender is not None:
        out.append(f"   from=<{h.sender}>" + (f", size={h.size}" if h.size is not None else ""))
    for r in h.routing:
        out.append(f"   {r.recipient}: {r.text()}")
        out += [f"      {w}" for w in r.why]
    for d in h.deliveries:
        where = f" -> hop {d.next_hop + 1} ({t.hops[d.next_hop].name})" if d.next_hop is not None else ""
        out.append(f"   {log_stamp(d.time)}  {d.recipient}  {d.status} via {d.transport}, "
                   f"relay={d.relay}: {d.reply}{where}")
        if d.remote_reject:
            out.append(f"      {d.target_host}'s smtpd: {d.remote_reject}")
    for n in h.notifications:
        out.append(f"   {n}")
    if h.expired is not None:
        limit = "bounce_queue_lifetime" if h.sender == "" else "maximal_queue_lifetime"
        out.append(f"   {log_stamp(h.expired)}  expired ({limit}), returned to sender")
    if h.removed is not None:
        out.append(f"   {log_stamp(h.removed)}  removed")
    elif h.queue:
        out.append(f"   still in the {h.queue} queue")
    if log:
        out.append("   log:")
        out += [f"     {ln}" for ln in h.lines]
    return out


def _timeline_text(t: Trace, h: Hop, rcpt: str) -> list[str]:
    ds = h.attempts(rcpt)
    n = sum(d.status == "deferred" for d in ds)
    last = ds[-1].status
    then = "" if last == "deferred" else f", then {last}"
    out = [f"retries of {h.name} for {rcpt}: {n} deferred{then}"]
    for d in ds:
        out.append(f"   {log_stamp(d.time)}  +{format_duration(d.time - h.arrived):<8} {d.status:<9}"
                   f"{d.reply}")
    return out


# -- reading the lab -------------------------------------------------------------------------------
def _hops_of(lab, name: str, now: float) -> list[Hop]:
    """Every queue id's story in host ``name``'s log, one Hop each (a queue id used again
    after ``removed`` starts a new Hop)."""
    host = lab.host(name)
    hostname = host.conf["myhostname"]
    lines = [ln for i, raw in enumerate(lab.log(name))
             if (ln := parse_line(name, i, raw, now)) is not None]
    open_: dict[str, Hop] = {}
    hops: list[Hop] = []
    for k, ln in enumerate(lines):
        if ln.qid is None:
            continue
        h = open_.get(ln.qid)
        if h is None:
            h = Hop(name, hostname, ln.qid, ln.time, "unknown")
            open_[ln.qid] = h
            hops.append(h)
        _read(h, ln, lines, k)
        if h.removed is not None:
            del open_[ln.qid]
    for h in open_.values():
        h.queue = _queue_of(host, h.queue_id)
    return hops


def _context(lines: list[LogLine], k: int) -> list[str]:
    """Lines just before ``lines[k]`` from the same process that name no queue id
    (``connect to ...: Connection refused`` before a delivery)."""
    out = []
    ln = lines[k]
    j = k - 1
    while j >= 0 and lines[j].program == ln.program and lines[j].pid == ln.pid and lines[j].qid is None:
        if lines[j].text.startswith(("connect from", "disconnect from")):
            break
        out.insert(0, lines[j].raw)
        j -= 1
    return out


def _read(h: Hop, ln: LogLine, lines: list[LogLine], k: int) -> None:
    text = ln.text
    ctx = _context(lines, k) if ln.daemon not in ("qmgr", "cleanup", "smtpd", "pickup") else []
    h.lines += ctx + [ln.raw]
    if text.startswith("client="):
        h.source, h.client = "smtpd", text[7:].split(",")[0]
    elif text.startswith("uid=") and ln.daemon == "pickup":
        h.source = "pickup"
    elif text.startswith("message-id="):
        h.message_id = text[len("message-id="):]
        if h.source == "unknown" and ln.daemon == "cleanup" and len(h.lines) == 1:
            h.source = "cleanup"
    elif text.startswith("from=<") and ln.daemon == "qmgr":
        m = re.match(r"from=<([^>]*)>(?:, size=(\d+))?", text)
        if m:
            h.sender = m.group(1)
            if m.group(2):
                h.size = int(m.group(2))
        if "status=expired" in text:
            h.expired = ln.time
    elif text == "removed":
        h.removed = ln.time
    elif _NOTIFY.match(text):
        h.notifications.append(text)
    elif (s := parse_status(text)):
        h.deliveries.append(_delivery(ln, s, ctx))


def _delivery(ln: LogLine, s: dict, ctx: list[str]) -> Delivery:
    d = Delivery(ln.time, s["to"], s["orig"], s["relay"], ln.service, ln.daemon, s["delay"],
                 s["delays"], s["dsn"], s["status"], s["reason"] or "", context=ctx)
    m = _RELAY.match(d.relay)
    if m:
        d.target, d.target_addr = m["name"], m["addr"]
    elif d.relay == "none" and (m := _TARGET.search(d.reply)):
        d.target, d.target_addr = m["name"], m["addr"]
    if d.status == "sent":
        q = _QUEUED_AS.search(d.reply) if d.target_addr else _FORWARDED.match(d.reply)
        if q:
            d.next_queue_id = q.group(1)
    return d


def _queue_of(host, qid: str) -> str | None:
    for q in ("incoming", "active", "deferred", "hold", "corrupt"):
        base = host.spool / q
        if base.is_dir() and (any(base.glob(qid)) or any(base.glob(f"**/{qid}"))):
            return q
    return None


def _rejects(lab, name: str, now: float) -> list[LogLine]:
    return [ln for i, raw in enumerate(lab.log(name))
            if "NOQUEUE: " in raw and (ln := parse_line(name, i, raw, now)) is not None]


def _routing(lab, h: Hop) -> list[Routing]:
    """trivial-rewrite on the hop's host, for each recipient it delivered (or tried to)."""
    try:
        tr = lab.host(h.host).trivial_rewrite()
    except Exception:                      # a main.cf the host would refuse: no decision shown
        return []
    out = []
    for r in h.recipients():
        try:
            res = tr.resolve(r)
        except Exception as e:             # noqa: BLE001 -- shown, not raised
            out.append(Routing(r, "?", "?", "?", [f"{type(e).__name__}: {e}"]))
            continue
        out.append(Routing(r, res.klass, res.transport, res.nexthop, list(res.why)))
    return out


def _mid(ident: str) -> str:
    ident = ident.strip()
    return ident if ident.startswith("<") else f"<{ident}>"


def trace(lab, ident: str) -> Trace:
    """Follow the message ``ident`` -- a Message-ID (with or without ``<>``) or a queue
    id on any host -- across ``lab``'s hosts; see the module docstring.

    Raises :class:`~mailsim.lab.config.LabError` when no host's log knows it.
    """
    now = lab.clock.now()
    order = list(lab.hosts)
    all_hops: list[Hop] = []
    for name in order:
        all_hops += _hops_of(lab, name, now)
    by_key: dict[tuple[str, str], list[Hop]] = {}
    for h in all_hops:
        by_key.setdefault((h.host, h.queue_id), []).append(h)
    ident = ident.strip()
    start = [h for h in all_hops if h.queue_id == ident]
    if not start:
        start = [h for h in all_hops if h.message_id == _mid(ident)]
    if not start:
        raise LabError(f"trace: no queue id or Message-ID {ident!r} in the log of any host "
                       f"({', '.join(order)}) -- find one with: mailsim lab DIR log HOST")

    def successor(h: Hop, d: Delivery) -> Hop | None:
        if d.status != "sent" or d.next_queue_id is None:
            return None
        where = h.host if d.target_addr is None else lab.network.host_at(d.target_addr)
        cands = [c for c in by_key.get((where, d.next_queue_id), []) if c.arrived <= d.time + 1]
        return cands[-1] if cands else None

    nxt: dict[int, list[tuple[Delivery, Hop]]] = {}
    prev: dict[int, Hop] = {}
    for h in all_hops:
        for d in h.deliveries:
            s = successor(h, d)
            if s is not None:
                d.target_host = s.host
                nxt.setdefault(id(h), []).append((d, s))
                prev.setdefault(id(s), h)
            elif d.target_addr:
                d.target_host = lab.network.host_at(d.target_addr)
            for ln in d.context if d.relay != "none" else ():
                m = _TARGET.search(ln)
                if m and m["addr"] != d.target_addr:
                    d.tried.append({"server": m["name"], "addr": m["addr"],
                                    "host": lab.network.host_at(m["addr"]),
                                    "text": ln.split("]: ", 1)[-1]})
    # the component of the start hops, walked from its roots depth first
    roots: list[Hop] = []
    for h in start:
        while id(h) in prev:
            h = prev[id(h)]
        if h not in roots:
            roots.append(h)
    hops: list[Hop] = []

    def walk(h: Hop, depth: int, parent: int | None) -> None:
        if any(x is h for x in hops):
            return
        h.depth, h.previous = depth, parent
        hops.append(h)
        me = len(hops) - 1
        for d, s in nxt.get(id(h), []):
            walk(s, depth + 1, me)
            d.next_hop = next(i for i, x in enumerate(hops) if x is s)

    for r in sorted(roots, key=lambda h: (h.arrived, order.index(h.host))):
        walk(r, 0, None)
    rejects = {name: None for name in order}
    for h in hops:
        h.routing = _routing(lab, h)
        for d in h.deliveries:
            if d.status in ("bounced", "deferred") and d.target_host and " said: " in d.reply:
                if rejects[d.target_host] is None:
                    rejects[d.target_host] = _rejects(lab, d.target_host, now)
                d.remote_reject = next(
                    (ln.text for ln in rejects[d.target_host]
                     if (m := _REJECT.match(ln.text)) and m["to"] == d.recipient
                     and abs(ln.time - d.time) <= 1), None)
    t = Trace(ident, hops, now=now)
    _received_chain(lab, t)
    return t


# -- the delivered copy's Received headers ---------------------------------------------------------
def _messages(mbox: str) -> Iterable[str]:
    return (m for m in re.split(r"(?m)^(?=From \S+ +\w{3} \w{3} )", mbox) if m.strip())


def _headers(msg: str, name: str) -> list[str]:
    head = msg.split("\n\n", 1)[0]
    out = []
    for m in re.finditer(rf"(?mi)^{name}:[ \t]*(.*(?:\n[ \t].*)*)", head):
        out.append(re.sub(r"\s*\n[ \t]+", " ", m.group(1)).strip())
    return out


def parse_received(value: str) -> Received | None:
    """One Received header (unfolded) taken apart.

    >>> r = parse_received("from mail.example.com (mail.example.com [127.0.0.2]) by mx1.example.org "
    ...                    "(Postfix) with ESMTP id 0AB12 for <p@example.org>; "
    ...                    "Wed, 25 Nov 2026 09:00:00 +0000 (UTC)")
    >>> r.by, r.id, r.from_
    ('mx1.example.org', '0AB12', 'mail.example.com (mail.example.com [127.0.0.2])')
    """
    m = _RECEIVED.match(value)
    if not m:
        return None
    return Received(m["by"], m["id"], m["from"], m["with"], m["date"])


def _received_chain(lab, t: Trace) -> None:
    """Find the delivered copy of a locally delivered recipient and read its Received chain."""
    for h in t.hops:
        for d in h.deliveries:
            if d.status != "sent" or d.target_addr is not None or d.next_queue_id is not None:
                continue
            host = lab.host(h.host)
            users = sorted(host.users())
            local = d.recipient.rpartition("@")[0] or d.recipient
            for user in ([local] if local in users else []) + [u for u in users if u != local]:
                for msg in _messages(lab.mailbox(h.host, user)):
                    chain = [r for r in map(parse_received, _headers(msg, "Received")) if r]
                    if chain and chain[0].id == h.queue_id:
                        for rc in chain:
                            rc.hop = next((i for i, x in enumerate(t.hops) if x.queue_id == rc.id
                                           and lab.host(x.host).conf["myhostname"] == rc.by), None)
                        t.received, t.received_where = chain, f"{h.host}, mailbox of {user}"
                        return
