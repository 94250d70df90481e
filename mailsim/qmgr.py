"""qmgr(8): the queue manager -- from ``incoming`` to the delivery agents, retries, bounces.

What Postfix's queue manager does, and mailsim with it
------------------------------------------------------
* It scans ``incoming`` whenever cleanup(8) says there is new mail, and
  ``deferred`` every ``queue_run_delay`` (its heartbeat, counted from qmgr's
  start). A deferred file is eligible when its modification time -- the time
  of its next attempt -- is not in the future.
* It moves each message into ``active`` (one ``rename``), removes its old
  defer logfile, logs ``QID: from=<sender>, size=N, nrcpt=N (queue active)``,
  sorts the recipients, resolves each with trivial-rewrite(8) and hands it
  to the delivery agent of its transport, as master.cf names it: local(8),
  virtual(8), smtp(8) (also the ``relay`` service), error(8) for a virtual
  alias domain address that has no alias, discard(8).
* Agents log one ``to=<...>, relay=..., status=...`` line per recipient.
  Delivered and bounced recipients are done; bounced ones are reported to
  the sender by bounce(8) (:mod:`mailsim.bounce_notify`), deferred ones are
  written to the defer logfile ``defer/QID`` (:mod:`mailsim.bounce_log`).
* When every recipient is done, the queue file is removed (``QID:
  removed``). Otherwise, if the message is older than
  ``maximal_queue_lifetime`` (``bounce_queue_lifetime`` for the null sender)
  it logs ``from=<...>, status=expired, returned to sender``, bounces what is
  left with the last reasons, and removes it; else, past
  ``delay_warning_time``, it sends one delay warning; and it moves the file
  to ``deferred`` with its time stamp set to the next attempt: now plus the
  message's age, kept between ``minimal_backoff_time`` and
  ``maximal_backoff_time`` (so retries come at growing intervals).

Crash safety
------------
A message is always in exactly one queue directory (every move is one
``rename``). A message with several recipients has a journal
``active/.QID.done`` in ``active``: one line per recipient its agent is done
with (one ``write`` each; Postfix marks delivered recipients in the queue
file itself). A queue manager that starts -- for example after ``kill -9``
-- first takes over what is in ``active``, skips the recipients the journal
marks done, and delivers the others "in doubt" (``host.in_doubt``): local(8)
then checks whether the mailbox already holds that very copy before it
appends another. A recipient deferred while in doubt (its mailbox still
locked by the killed process, say) keeps the mark in the deferred queue
file (attribute ``in_doubt``) for its next attempt. Deferring rewrites the
active file in place and then renames it into ``deferred``, so no kill leaves
a message in two queues. (A remote delivery in doubt is sent again, as
Postfix does: Postfix itself may deliver twice after a crash; mailsim's
local delivery does not.)

The clock
---------
All times come from the host's clock: under ``serve`` the wall clock, in
process a :class:`~mailsim.clock.SimClock`, which :meth:`QueueManager.advance`
moves from one scheduled queue run to the next, so a notebook can watch five
days of retries in a second.

Parameters read (Postfix 3.7 defaults): queue_run_delay (300s),
minimal_backoff_time (300s), maximal_backoff_time (4000s),
maximal_queue_lifetime (5d), bounce_queue_lifetime (5d),
delay_warning_time (0h = off), default_destination_recipient_limit
(50; per transport ``smtp_destination_recipient_limit``), and through the agents everything they read.

Not simulated: concurrency and rate limits per destination, recipient
limits per delivery other than smtp_destination_recipient_limit, the
``hold`` queue's release (postsuper -H moves mail back to ``deferred``).

Example
-------
>>> import tempfile, pathlib
>>> from mailsim.host import init_host
>>> from mailsim.queue import QueueFile, Recipient, write_queue_file
>>> h = init_host(pathlib.Path(tempfile.mkdtemp()) / "mx", users=["marc"])
>>> _ = write_queue_file(h.spool, "incoming", QueueFile("4B2A1160001", "alice@example.org",
...     [Recipient("marc@example.com")], h.clock.now(), b"Subject: hi\\n\\nhello\\n"))
>>> QueueManager(h).run()
1
>>> [ln.split(": ", 1)[1] for ln in h.log.lines if "qmgr" in ln]
['4B2A1160001: from=<alice@example.org>, size=22, nrcpt=1 (queue active)', '4B2A1160001: removed']
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import bounce_log
from .bounce import RecipientStatus
from .cleanup import CleanupError
from .bounce_notify import notify_delay, notify_failure, notify_success, notify_trace, wants
from .log_adhoc import log_adhoc
from .postqueue import queued_size
from .queue import (HASHED_QUEUES, QueueFile, Recipient, queue_dir, read_queue_file,
                    write_queue_file)

__all__ = ["QueueManager", "MessageResult", "TRANSPORT_UNAVAILABLE"]

#: the reason for recipients whose transport has no delivery agent in mailsim
TRANSPORT_UNAVAILABLE = "mail transport unavailable"
#: trace_flags (DEL_REQ_FLAG_*): a probe that delivers nothing (sendmail -bv), and a
#: delivery that also reports (sendmail -v)
TRACE_ONLY = 512 | 256
RECORD = 1024


@dataclass
class MessageResult:
    """What happened to one message in one delivery attempt."""
    queue_id: str
    delivered: list[str] = field(default_factory=list)      # addresses, status=sent
    bounced: list[RecipientStatus] = field(default_factory=list)
    deferred: list[Recipient] = field(default_factory=list)
    dsn_queue_id: str | None = None
    removed: bool = False
    expired: bool = False
    trace: list[RecipientStatus] = field(default_factory=list)   # every recipient's fate


class AgentFatal(Exception):
    """A delivery agent exited at startup (it has logged its ``fatal:`` line)."""

    def __init__(self, transport: str, program: str, pid: int) -> None:
        super().__init__(f"{program} pid {pid} exited")
        self.transport, self.program, self.pid = transport, program, pid


@dataclass
class Outcome:
    """One recipient's result from its delivery agent (alias expansion may give several)."""
    delivered: list[RecipientStatus] = field(default_factory=list)
    bounced: list[RecipientStatus] = field(default_factory=list)
    deferred: tuple[str, str] | None = None       # (dsn, reason): the recipient stays queued
    #: a deferral's Remote-MTA and Diagnostic-Code ("dns; NAME", "smtp; REPLY"), kept in
    #: the defer logfile for the delay warning and the bounce when the message expires
    remote_mta: str | None = None
    diagnostic: str | None = None


def _key(r: Recipient) -> str:
    return f"{r.orig}\t{r.address}"


class QueueManager:
    """The queue manager of one host (see the module docstring)."""

    def __init__(self, host) -> None:
        self.host = host
        self.pid = host.next_pid()
        self.started = host.clock.now()
        self.next_scan = self.started           # the deferred queue is scanned at start
        self.recovered = False
        self._pids: dict[str, int] = {}
        self.throttled: set[str] = set()        # transports whose agent could not start
        self._warned: set[str] = set()
        self._queued: dict[int, Recipient] = {}  # agent's recipient -> the queue file's
        self.results: list[MessageResult] = []

    # -- helpers ---------------------------------------------------------------------------
    def process_state(self) -> dict:
        """This qmgr process: its pid, when it started, its next deferred-queue scan
        and its delivery agents' pids (a lab saves them between two commands)."""
        return {"pid": self.pid, "started": self.started, "next_scan": self.next_scan,
                "agents": dict(self._pids)}

    def restore_process_state(self, state: dict) -> None:
        """Go on as the process :meth:`process_state` described."""
        self.pid, self.started, self.next_scan = state["pid"], state["started"], state["next_scan"]
        self._pids = dict(state["agents"])

    def agent_pid(self, service: str) -> int:
        """One process per delivery service serves this queue manager (as recorded)."""
        if service not in self._pids:
            self._pids[service] = self.host.next_pid()
        return self._pids[service]

    @property
    def local_pid(self) -> int:
        return self.agent_pid("local")

    def _log(self, text: str) -> None:
        self.host.log.write("qmgr", self.pid, text)

    def _files(self, queue: str) -> list[Path]:
        """The queue files of ``queue`` by name (deferred/ is hashed one level deep)."""
        d = self.host.spool / queue
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        out = []
        for e in entries:
            if e.name.startswith("."):
                continue
            if queue in HASHED_QUEUES and e.is_dir():
                out += sorted((Path(x.path) for x in os.scandir(e.path)
                               if not x.name.startswith(".")), key=lambda p: p.name)
            else:
                out.append(Path(e.path))
        return out

    def deferred_due(self, now: float | None = None) -> list[Path]:
        """Deferred files whose next attempt has come (mtime <= now + 1, as Postfix)."""
        now = self.host.clock.now() if now is None else now
        out = []
        for p in self._files("deferred"):
            try:
                if p.stat().st_mtime <= now + 1:
                    out.append(p)
            except FileNotFoundError:
                pass
        return out

    def next_attempt(self) -> float | None:
        """The earliest next-attempt time of a deferred message (None: nothing deferred)."""
        times = []
        for p in self._files("deferred"):
            try:
                times.append(p.stat().st_mtime)
            except FileNotFoundError:
                pass
        return min(times) if times else None

    # -- scheduling ------------------------------------------------------------------------
    def run(self, *, flush: bool = False) -> int:
        """One wake-up at the clock's present time; returns how many messages it handled.

        Takes over ``active`` (first call only), scans ``deferred`` when the
        heartbeat is due (every deferred message with ``flush``, as
        ``postqueue -f``), then ``incoming`` until it stays empty (bounces and
        forwarded mail are new incoming mail).
        """
        n = 0
        self._programs: dict[str, str | None] = {}
        if not self.recovered:
            self.recovered = True
            for p in self._files("active"):     # left by a queue manager that died
                self.results.append(self._handle(p, recovering=True))
                n += 1
        now = self.host.clock.now()
        if flush or now >= self.next_scan:
            delay = max(1, self.host.conf.time("queue_run_delay"))
            while self.next_scan <= now:
                self.next_scan += delay
            for p in (self._files("deferred") if flush else self.deferred_due(now)):
                n += self._take(p)
        for _ in range(100):
            batch = self._files("incoming")
            if not batch:
                break
            for p in batch:
                n += self._take(p)
        self.host.qmgr_wanted = False
        return n

    def advance(self, seconds: float) -> int:
        """Fast-forward the simulated clock by ``seconds``, running every queue scan
        that falls due on the way (the deferred-queue heartbeat); returns messages handled."""
        clock = self.host.clock
        end = clock.now() + seconds
        n = self.run()
        while True:
            due = self.next_attempt()
            if due is None:
                break
            # the first heartbeat at which that message is eligible
            delay = max(1, self.host.conf.time("queue_run_delay"))
            t = self.next_scan
            while t + 1 < due:
                t += delay
            if t > end:
                break
            if t > clock.now():
                clock.advance(t - clock.now())
            self.next_scan = min(self.next_scan, t)
            n += self.run()
        if end > clock.now():
            clock.advance(end - clock.now())
        return n + self.run()

    # -- one message -----------------------------------------------------------------------
    def _take(self, path: Path) -> int:
        active = self.host.spool / "active" / path.name
        try:
            os.replace(path, active)            # one step: never in two queues
        except FileNotFoundError:
            try:
                active.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, active)
            except FileNotFoundError:           # another queue manager took it
                return 0
        # the reasons of the last attempt go (also for a message that flush(8) moved
        # from deferred to incoming for ETRN: qmgr_message_alloc resets the defer log)
        bounce_log.remove(self.host.spool, path.name)
        self.results.append(self._handle(active))
        return 1

    def _corrupt(self, active: Path, queue: str = "active") -> MessageResult:
        dest = self.host.spool / "corrupt" / active.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(active, dest)
        self._log(f'warning: saving corrupt file "{active.name}" from queue "{queue}" '
                  f'to queue "corrupt"')
        return MessageResult(active.name)

    def _handle(self, active: Path, recovering: bool = False) -> MessageResult:
        host = self.host
        try:
            qf = read_queue_file(active)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return self._corrupt(active)
        journal = active.parent / f".{qf.queue_id}.done"
        done = _read_journal(journal) if recovering else set()
        self._journal_each, self._recovering, self._doubt = False, recovering, set()
        res = MessageResult(qf.queue_id)
        t_active = host.clock.now()
        self._log(f"{qf.queue_id}: from=<{qf.sender}>, size={queued_size(qf)}, "
                  f"nrcpt={qf.attrs.get('nrcpt') or len(qf.recipients)} (queue active)")
        tr = host.trivial_rewrite()
        self._queued.clear()
        routes = {}
        for i, r in enumerate(qf.recipients):
            if qf.redirect and i > 0:
                break                   # qmgr_message.c: REDIRECT delivers once per message
            if _key(r) not in done:
                resolved, transport, nexthop = self._route(qf, r)
                self._queued[id(resolved)] = r
                routes[_key(r)] = (resolved, transport, nexthop)
        # Postfix's order: transport, next hop, domain (ignoring case), address
        todo_routes = sorted(routes.values(), key=lambda t: (
            t[1], t[2], t[0].address.rpartition("@")[2].lower(), t[0].address))
        todo = [self._queued[id(r)] for r, _, _ in todo_routes]
        groups: dict[tuple[str, str], list[Recipient]] = {}
        for rcpt, transport, nexthop in todo_routes:
            groups.setdefault((transport, nexthop), []).append(rcpt)
        success: list[RecipientStatus] = []
        failed: list[tuple[RecipientStatus, str]] = []
        if any(t in self.throttled for _, t, _ in todo_routes):
            return res                          # stays in active until qmgr restarts
        # after a crash every recipient not marked done may have been delivered already;
        # a recipient still in doubt when deferred stays so (the queue file's "in_doubt")
        doubt = {k for k in qf.attrs.get("in_doubt", "").split("\n") if k}
        host.in_doubt = {_key(r) for r in todo if recovering or _key(r) in doubt}
        self._doubt = set(host.in_doubt)
        self._journal_each = len(todo) > 1      # one recipient: removing the file says "done"
        try:
            self._deliver_all(qf, groups, t_active, res, journal, success, failed)
        except AgentFatal as e:
            self._throttle(e)
            return res
        host.in_doubt = set()
        bpid = self.agent_pid("bounce")
        tflags = int(qf.attrs.get("trace_flags") or 0)
        if tflags & (TRACE_ONLY | RECORD):
            self._report(qf, res, tflags, bpid)
            if tflags & TRACE_ONLY:
                failed = success = []           # a probe: nothing was delivered or bounced
        if failed:
            try:
                ids = notify_failure(host, qf, failed, bpid)
                res.dsn_queue_id = ids[0] if ids else None
            except CleanupError as e:
                self._bounce_failed(qf, e, failed, res, journal)
        if success:
            try:
                notify_success(host, qf, success, bpid)
            except CleanupError as e:       # a lost success notice loses no mail
                self._log(f"warning: {qf.queue_id}: trace service failure: {e.text}")
        if res.deferred:
            self._defer(qf, active, res, journal)
        else:
            self._remove(qf, active, journal)
            res.removed = True
        return res

    def _route(self, qf: QueueFile, r: Recipient) -> tuple[Recipient, str, str]:
        """(recipient for the agent, transport, nexthop): qmgr_message.c, qmgr_message_resolve().

        A REDIRECT address replaces the recipient (rewritten to canonical form,
        then resolved; the original recipient stays). A FILTER transport:nexthop
        overrides the resolver (not for address probes); without a nexthop it is
        default_filter_nexthop, else the recipient's domain, else $myhostname.
        """
        tr = self.host.trivial_rewrite()
        address = tr.rewrite(qf.redirect) if qf.redirect else r.address
        tflags = int(qf.attrs.get("trace_flags") or 0)
        if qf.filter and not qf.redirect and not tflags & TRACE_ONLY:
            transport, _, nexthop = qf.filter.partition(":")
            if not nexthop:
                domain = address.rpartition("@")[2] if "@" in address else ""
                nexthop = self.host.conf["default_filter_nexthop"] or domain \
                    or self.host.conf["myhostname"]
            return r, transport, nexthop
        rs = tr.resolve(address)
        # the agent gets trivial-rewrite's recipient (peter -> peter@$myhostname)
        new = rs.recipient or address
        resolved = r if new == r.address else replace(r, address=new, orig=r.original)
        return resolved, rs.transport, rs.nexthop

    def _deliver_all(self, qf: QueueFile, groups, t_active: float, res: MessageResult,
                     journal: Path, success: list, failed: list) -> None:
        host = self.host
        for (transport, nexthop), rcpts in groups.items():
            local = self._program(transport) == "local"
            for agent_rcpt, out in self._deliver(qf, transport, nexthop, rcpts, t_active):
                rcpt = self._queued.get(id(agent_rcpt), agent_rcpt)   # as in the queue file
                res.delivered.extend(s.address for s in out.delivered)
                # trace(8)'s form names the agent: "delivery via local: unknown user: ..."
                res.trace.extend(out.delivered + [
                    replace(st, reason=f"delivery via local: {st.reason}") if local else st
                    for st in out.bounced])
                if wants(rcpt.notify, "SUCCESS"):
                    success.extend(out.delivered)
                res.bounced.extend(out.bounced)
                failed.extend((st, rcpt.notify) for st in out.bounced)
                if out.deferred is not None:
                    dsn, reason = out.deferred
                    res.deferred.append(rcpt)
                    bounce_log.append(host.spool, qf.queue_id, bounce_log.DeferRecord(
                        rcpt.original, rcpt.address, dsn, reason,
                        rcpt.orcpt, rcpt.notify, diagnostic=out.diagnostic or "",
                        remote_mta=out.remote_mta or ""))
                    # defer_append() tells flush(8) too: ETRN / postqueue -s find it
                    _flush_add(host, agent_rcpt.address, qf.queue_id)
                elif self._journal_each:
                    _append_journal(journal, _key(rcpt))

    def _bounce_failed(self, qf: QueueFile, e, failed, res: MessageResult, journal: Path) -> None:
        """The notification could not be posted (cleanup refused it, e.g. over
        message_size_limit): the bounced recipients stay queued instead of being lost."""
        self._log(f"warning: {qf.queue_id}: bounce or trace service failure: {e.text}")
        addresses = {st.orig_address or st.address for st, _ in failed}
        for r in qf.recipients:
            if r.original in addresses or r.address in addresses:
                if r not in res.deferred:
                    res.deferred.append(r)
                    bounce_log.append(self.host.spool, qf.queue_id, bounce_log.DeferRecord(
                        r.original, r.address, "4.3.0",
                        "bounce or trace service failure", r.orcpt, r.notify))
        res.bounced = []

    def _report(self, qf: QueueFile, res: MessageResult, tflags: int, bpid: int) -> None:
        """``sendmail -bv`` / ``-v``: "Mail Delivery Status Report" with every recipient's
        fate, to the sender (bounce(8)'s trace service)."""
        if not qf.sender:
            self.host.log.write("bounce", bpid, f"{qf.queue_id}: not sending trace/success "
                                                "notification for single-bounce message")
            return
        probe = bool(tflags & TRACE_ONLY)
        rows = []
        for st in res.trace:
            st = RecipientStatus(**{**vars(st)})
            if probe:
                st.action = "deliverable" if st.action == "delivered" else "undeliverable"
            rows.append(st)
        notify_trace(self.host, qf, rows, bpid)

    def _throttle(self, e: "AgentFatal") -> None:
        """A delivery agent died at startup: master(8) logs it and throttles the service;
        the message stays in ``active`` until the queue manager starts again."""
        master = self.host.master_pid()
        path = f"/usr/lib/postfix/sbin/{e.program}"
        self.host.log.write("master", master, f"warning: process {path} pid {e.pid} exit status 1")
        self.host.log.write("master", master, f"warning: {path}: bad command startup -- throttling")
        self.throttled.add(e.transport)

    def _remove(self, qf: QueueFile, active: Path, journal: Path) -> None:
        active.unlink()
        stale = [journal] if self._journal_each or self._recovering else []
        if qf.attrs.get("reason"):              # it was deferred before: its defer log
            stale.append(bounce_log.path(self.host.spool, qf.queue_id))
        for p in stale:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        self._log(f"{qf.queue_id}: removed")

    def _defer(self, qf: QueueFile, active: Path, res: MessageResult, journal: Path) -> None:
        host = self.host
        now = host.clock.now()
        lifetime = host.conf.time("maximal_queue_lifetime" if qf.sender else "bounce_queue_lifetime")
        records = bounce_log.read(host.spool, qf.queue_id)
        if now >= qf.arrival + lifetime:
            self._log(f"{qf.queue_id}: from=<{qf.sender}>, status=expired, returned to sender")
            failed = [(RecipientStatus(r.recipient, r.orig_rcpt, r.status, "failed", r.reason,
                                       diagnostic=r.diagnostic or None,
                                       orcpt=r.dsn_orig_rcpt or f"rfc822;{r.orig_rcpt}",
                                       remote_mta=r.remote_mta or None), r.notify)
                      for r in records]
            try:
                notify_failure(host, qf, failed, self.agent_pid("bounce"))
            except CleanupError as e:       # the message stays queued, as in Postfix
                self._log(f"warning: {qf.queue_id}: bounce or trace service failure: {e.text}")
                self._requeue(qf, active, res.deferred or qf.recipients, journal, now)
                return
            res.expired = True
            res.removed = True
            self._remove(qf, active, journal)
            return
        if qf.warn_time > 0 and now >= qf.warn_time - 1:
            delayed = [(RecipientStatus(r.recipient, r.orig_rcpt, r.status, "delayed", r.reason,
                                        diagnostic=r.diagnostic or None,
                                        orcpt=r.dsn_orig_rcpt or f"rfc822;{r.orig_rcpt}",
                                        remote_mta=r.remote_mta or None), r.notify)
                       for r in records]
            notify_delay(host, qf, delayed, self.agent_pid("bounce"))
            qf.warn_time = -1.0                 # one warning per message
        self._requeue(qf, active, res.deferred, journal, now)

    def _requeue(self, qf: QueueFile, active: Path, recipients: list[Recipient], journal: Path,
                 now: float) -> None:
        """Into ``deferred``, time-stamped for the next attempt (age, within the backoff limits)."""
        host = self.host
        records = bounce_log.read(host.spool, qf.queue_id)
        # the size record's recipient count stays what cleanup wrote: "nrcpt=" in the
        # next "(queue active)" line counts the recipients already done too
        nrcpt = qf.attrs.get("nrcpt") or str(len(qf.recipients))
        qf.recipients = recipients
        qf.attrs = dict(qf.attrs, reason=records[-1].reason if records else TRANSPORT_UNAVAILABLE,
                        nrcpt=nrcpt)
        doubt = "\n".join(sorted(_key(r) for r in recipients if _key(r) in self._doubt))
        qf.attrs.pop("in_doubt", None)
        if doubt:
            qf.attrs["in_doubt"] = doubt
        delay = now - qf.arrival
        delay = min(delay, host.conf.time("maximal_backoff_time"))
        delay = max(delay, host.conf.time("minimal_backoff_time"))
        # rewrite the active file in place (one rename), then move it (one more): a kill
        # at any point leaves the message in exactly one queue, never in two
        path = write_queue_file(host.spool, "active", qf)
        try:
            journal.unlink()                    # the file now lists only what is left
        except FileNotFoundError:
            pass
        when = int(now) + int(delay)
        os.utime(path, (when, when))
        dest = queue_dir(host.spool, "deferred", qf.queue_id) / qf.queue_id
        try:
            os.replace(path, dest)
        except FileNotFoundError:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)

    # -- delivery agents -------------------------------------------------------------------
    def _program(self, transport: str) -> str | None:
        """The daemon behind a master.cf service (``relay`` -> ``smtp``); read once a run."""
        cache = self.__dict__.setdefault("_programs", {})
        if transport not in cache:
            cache[transport] = next((e.program for e in self.host.master_entries()
                                     if e.service == transport and e.type == "unix"), None)
        return cache[transport]

    def _deliver(self, qf: QueueFile, transport: str, nexthop: str, rcpts: list[Recipient],
                 t_active: float):
        """Yield (recipient, :class:`Outcome`) for each recipient of one transport/nexthop."""
        host = self.host
        program = self._program(transport)
        if program in ("virtual", "smtp") and int(qf.attrs.get("trace_flags") or 0) & TRACE_ONLY:
            # sendmail -bv through these agents is not simulated: say so, deliver nothing
            daemon = program if transport in (program, "smtp") else f"{transport}/{program}"
            text = f"mailsim does not simulate address verification by {program}(8)"
            for r in rcpts:
                log_adhoc(host, daemon, self.agent_pid(transport), qf, r.address, r.orig, "none",
                          text, "5.3.0", "undeliverable", active=t_active)
                yield r, _simple(r, "5.3.0", "bounced", text)
            return
        if program == "local":
            from .local import LocalFatal, deliver_local
            for r in rcpts:
                try:
                    out = deliver_local(host, qf, r, active=t_active, pid=self.local_pid)
                except LocalFatal:
                    raise AgentFatal(transport, program, self.local_pid) from None
                yield r, _local_outcome(r, out)
        elif program == "virtual":
            from .virtual import VirtualFatal, deliver_virtual
            for r in rcpts:
                try:
                    dsn, status, text = deliver_virtual(host, qf, r, active=t_active,
                                                        pid=self.agent_pid("virtual"))
                except VirtualFatal:
                    raise AgentFatal(transport, program, self.agent_pid("virtual")) from None
                yield r, _simple(r, dsn, status, text, "virtual")
        elif program == "smtp":
            from .smtp import SMTPClient
            # $transport_destination_recipient_limit (default_destination_recipient_limit, 50)
            limit = max(1, host.conf.int(f"{transport}_destination_recipient_limit"))
            # a lab connects its hosts in memory (host.smtp_connector); else real loopback sockets
            client = SMTPClient(host, transport=transport,
                                connector=getattr(host, "smtp_connector", None))
            for i in range(0, len(rcpts), limit):
                for rr in client.deliver(qf, rcpts[i:i + limit], nexthop, active=t_active,
                                         pid=self.agent_pid(transport)):
                    # the server's name and reply, for Remote-MTA: and Diagnostic-Code:
                    out = _simple(rr.recipient, rr.dsn, rr.status, rr.text, rr.relay,
                                  remote_mta=rr.remote_mta, diagnostic=rr.diagnostic)
                    if getattr(rr, "relayed_notice", False):
                        for st in out.delivered:   # the next hop has no DSN: "relayed"
                            st.action = "relayed"
                    yield rr.recipient, out
        elif program in ("error", "discard"):
            # error(8) bounces (retry: defers), discard(8) says sent; the next hop is
            # the text, with an optional leading status code (dsn_split)
            pid = self.agent_pid(transport)
            default = {"discard": "2.0.0", "error": "5.0.0"}[program]
            if transport == "retry":
                default = "4.0.0"
            if program == "error" and nexthop.startswith("User unknown"):
                default = "5.1.1"               # trivial-rewrite's text for a virtual alias domain
            dsn, text = dsn_split(default, nexthop)
            status = ("sent" if program == "discard" else
                      "deferred" if transport == "retry" else "bounced")
            for r in rcpts:
                log_adhoc(host, program, pid, qf, r.address, r.orig, "none", text, dsn, status,
                          active=t_active)
                yield r, _simple(r, dsn, status, text)
        else:                                   # no such service in master.cf
            if transport not in self._warned:
                self._warned.add(transport)
                self._log(f"warning: connect to transport private/{transport}: "
                          "No such file or directory")
            for r in rcpts:
                log_adhoc(host, "qmgr", self.pid, qf, r.address, r.orig, "none",
                          TRANSPORT_UNAVAILABLE, "4.3.0", "deferred", active=t_active)
                yield r, Outcome(deferred=("4.3.0", TRANSPORT_UNAVAILABLE))


def dsn_split(default: str, text: str) -> tuple[str, str]:
    """Postfix's dsn_split(): a leading "X.Y.Z " status code, else ``default``.

    >>> dsn_split("5.0.0", "5.1.1 User unknown"), dsn_split("2.0.0", "mail.example.com")
    (('5.1.1', 'User unknown'), ('2.0.0', 'mail.example.com'))
    """
    import re
    m = re.match(r"\s*([245]\.\d{1,3}\.\d{1,3})(?:\s+|$)(.*)", text)
    return (m.group(1), m.group(2)) if m else (default, text.strip())


def _simple(r: Recipient, dsn: str, status: str, text: str, relay: str = "none", *,
            remote_mta: str | None = None, diagnostic: str | None = None) -> Outcome:
    """One recipient's :class:`Outcome` from an agent's status and text. ``diagnostic``
    (``smtp; 550 ...``) and ``remote_mta`` (``dns; NAME``) are the DSN fields smtp(8)
    fills from a server's reply; an agent's ``text`` may carry ``.diagnostic`` instead."""
    if diagnostic is None:
        diagnostic = getattr(text, "diagnostic", None)
    if status == "deferred":
        return Outcome(deferred=(dsn, text), remote_mta=remote_mta, diagnostic=diagnostic)
    if status != "bounced" and relay != "none":
        text = f"delivery via {relay}: {text}"      # trace(8)'s form, for success notices
    st = RecipientStatus(r.address, r.original, dsn,
                         "failed" if status == "bounced" else "delivered", text,
                         diagnostic=diagnostic,
                         orcpt=r.orcpt or f"rfc822;{r.original}",
                         remote_mta=remote_mta)
    return Outcome(bounced=[st]) if status == "bounced" else Outcome(delivered=[st])


def _local_outcome(r: Recipient, out) -> Outcome:
    """Fold local(8)'s outcome for one recipient (every alias member) into one."""
    orig = r.original
    texts = list(getattr(out, "texts", [])) or ["delivered to mailbox"] * len(out.delivered)
    return Outcome(
        [RecipientStatus(a, orig, "2.0.0", "delivered", f"delivery via local: {text}",
                         orcpt=r.orcpt or f"rfc822;{orig}") for a, text in zip(out.delivered, texts)],
        list(out.bounced), out.deferred[-1] if out.deferred else None)


def _flush_add(host, address: str, queue_id: str) -> None:
    """flush_add() for a deferred recipient's domain (ignored unless fast_flush_domains)."""
    domain = address.rpartition("@")[2] if "@" in address else ""
    if domain:
        from . import flush
        flush.add(host, domain, queue_id)


def _read_journal(path: Path) -> set[str]:
    """The recipients a message's journal marks delivered (done)."""
    try:
        return set(path.read_text("utf-8", "surrogateescape").splitlines())
    except FileNotFoundError:
        return set()


def _append_journal(path: Path, key: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (key + "\n").encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)
