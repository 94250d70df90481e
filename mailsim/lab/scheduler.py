"""One clock for many queue managers: which host acts next, and when.

Each lab host has its own qmgr(8) (:class:`mailsim.qmgr.QueueManager`) with
its own heartbeat -- a scan of the deferred queue every ``queue_run_delay``
counted from the moment it started -- and its own deferred messages, each
time-stamped with its next attempt. On a real network these run side by
side; here they share one :class:`~mailsim.clock.SimClock` and take turns,
in time order:

1. *Immediate work first*: a host whose smtpd just queued mail (cleanup
   woke its qmgr) delivers it at once, at the present instant. Delivering
   may hand mail to another host, which then has immediate work too; the
   scheduler goes round until no host has any (:meth:`Scheduler.settle`).
2. *Then the earliest scan*: for every host that is up and has deferred
   mail, the first heartbeat at which its earliest message is due (a
   deferred file is eligible when its time stamp is at most one second
   ahead, as in Postfix). The earliest of those across hosts wins, ties by
   the order of the hosts in lab.toml; the clock jumps there, that host's
   queue manager runs, then step 1 again.

So retries on different hosts interleave exactly as their schedules say,
and the same lab gives the same run every time.

Faults (:mod:`mailsim.lab.faults`) start and end between these steps: the
lab runs the scheduler up to a fault's instant (``inclusive=False``), starts
or ends the fault, then goes on -- so a scan due at that very instant
already sees the fault.

Not simulated: the time a delivery takes (every step happens at one
instant, apart from a link's latency and connect timeouts), concurrency
limits, and a host that is down keeps its queue untouched until it starts
again.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

__all__ = ["Scheduler", "Step"]

#: settle(): rounds of immediate work before the lab gives up (mail without end)
MAX_ROUNDS = 10_000
#: run() without an end stops after this much simulated time at the latest
MAX_SPAN = 400 * 86400.0
#: instants closer than this are the same instant (the clock keeps microseconds)
EPSILON = 1e-3


@dataclass(frozen=True)
class Step:
    """One scheduled queue run: at ``time`` host ``host`` scanned its deferred queue."""
    time: float
    host: str
    handled: int


class Scheduler:
    """Runs the queue managers of ``hosts`` (name -> Host, in lab order) on ``clock``;
    ``is_up(name)`` says which hosts run at all."""

    def __init__(self, hosts: dict, clock, is_up=lambda name: True) -> None:
        self.hosts = hosts
        self.clock = clock
        self.is_up = is_up
        self.steps: list[Step] = []

    # -- immediate work -------------------------------------------------------------------
    def has_work(self, name: str) -> bool:
        """Mail waits in this host's incoming queue (cleanup woke qmgr)."""
        host = self.hosts[name]
        if host.qmgr_wanted:
            return True
        try:
            return any(not e.startswith(".") for e in os.listdir(host.spool / "incoming"))
        except FileNotFoundError:
            return False

    def settle(self) -> int:
        """Deliver every host's new mail at the present instant, until none is left."""
        n = 0
        for _ in range(MAX_ROUNDS):
            busy = [name for name in self.hosts if self.is_up(name) and self.has_work(name)]
            if not busy:
                return n
            for name in busy:
                self.skip_idle_heartbeats(name)
                n += self.hosts[name].qmgr.run()
        from .config import LabError
        raise LabError(f"mail is still being passed on after {MAX_ROUNDS} rounds at one instant "
                       "-- is there a relay loop without a hop limit (hopcount_limit)?")

    # -- the deferred queues' heartbeats ------------------------------------------------------
    def due(self, name: str) -> float | None:
        """When host ``name``'s qmgr next finds deferred mail eligible (None: nothing deferred)."""
        q = self.hosts[name].qmgr
        attempt = q.next_attempt()
        if attempt is None:
            return None
        delay = max(1.0, self.hosts[name].conf.time("queue_run_delay"))
        t = q.next_scan
        if t + 1 < attempt:                       # the first heartbeat with t + 1 >= attempt
            t += math.ceil((attempt - 1 - t) / delay) * delay
            while t + 1 < attempt:
                t += delay
        return t

    def next_step(self) -> tuple[float, str] | None:
        """The earliest (time, host) of a scheduled scan across the hosts that are up."""
        best: tuple[float, str] | None = None
        for name in self.hosts:
            if not self.is_up(name):
                continue
            t = self.due(name)
            if t is not None and (best is None or t < best[0]):
                best = (t, name)
        return best

    def run(self, end: float | None = None, *, inclusive: bool = True) -> int:
        """Move the clock to ``end`` (None: until no host has mail waiting), running every
        queue scan on the way in time order; returns how many messages were handled.

        ``inclusive=False`` leaves the scans due exactly at ``end`` for the next run
        (the lab starts and ends faults at ``end`` first)."""
        clock = self.clock
        n = self.settle()
        limit = clock.now() + MAX_SPAN if end is None else end
        while True:
            nxt = self.next_step()
            if nxt is None or nxt[0] > limit or (not inclusive and nxt[0] >= limit - EPSILON):
                break
            t, name = nxt
            if t > clock.now():
                clock.advance(t - clock.now())
            q = self.hosts[name].qmgr
            q.next_scan = min(q.next_scan, clock.now())    # this scan is due now
            handled = q.run()
            self.steps.append(Step(clock.now(), name, handled))
            n += handled + self.settle()
        if end is not None and end > clock.now():
            clock.advance(end - clock.now())
        for name in self.hosts:
            if self.is_up(name):
                self.skip_idle_heartbeats(name)
        return n

    def skip_idle_heartbeats(self, name: str) -> None:
        """Count host ``name``'s heartbeats before now as done.

        Every heartbeat that found eligible mail has run already (steps go in
        time order), so the ones before the present instant found nothing; a
        queue run for new mail now must not scan the deferred queue off-beat.
        A heartbeat falling exactly now still runs.
        """
        q = self.hosts[name].qmgr
        now = self.clock.now()
        if q.next_scan >= now - EPSILON:
            return
        delay = max(1.0, self.hosts[name].conf.time("queue_run_delay"))
        q.next_scan += math.floor((now - q.next_scan) / delay) * delay
        while q.next_scan < now - EPSILON:
            q.next_scan += delay
