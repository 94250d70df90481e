"""Clocks: simulated time for deterministic runs, wall time under ``serve``.

Every component that needs "now" asks the host's clock, never :func:`time.time`,
so a notebook can fast-forward a simulated host and a test gets the same log
lines on every run. Under ``mailsim serve`` the host runs on :class:`WallClock`.

Examples
--------
>>> c = SimClock(start=1795597000.0)
>>> c.now()
1795597000.0
>>> c.advance(90); c.now()
1795597090.0
>>> c.monotonic_us() % 1_000_000 >= 0
True
"""
from __future__ import annotations

import time

__all__ = ["Clock", "SimClock", "WallClock", "DEFAULT_EPOCH"]

#: 2026-11-25 09:00:00 UTC, the day the conformance corpus was recorded.
DEFAULT_EPOCH = 1795597200.0


class Clock:
    """Interface: seconds since the epoch, and a microsecond counter for queue ids."""

    def now(self) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def monotonic_us(self) -> int:
        """Microseconds of the current second, as Postfix's queue ids use them."""
        return int(round(self.now() * 1_000_000)) % 1_000_000

    @property
    def simulated(self) -> bool:
        return False


class SimClock(Clock):
    """Simulated time: starts at ``start`` and moves only when told to.

    Each call to :meth:`tick` moves time forward by a small fixed step, so that
    two events never share a timestamp (Postfix's queue ids need that).
    """

    def __init__(self, start: float = DEFAULT_EPOCH, step: float = 0.000137) -> None:
        self._t = float(start)
        self._step = step

    def now(self) -> float:
        return self._t

    def tick(self) -> float:
        self._t = round(self._t + self._step, 6)
        return self._t

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time cannot run backwards")
        self._t = round(self._t + seconds, 6)

    @property
    def simulated(self) -> bool:
        return True


class WallClock(Clock):
    """Real time, for hosts served on real sockets."""

    def now(self) -> float:
        return time.time()

    def tick(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> None:
        raise RuntimeError("a wall clock cannot be fast-forwarded")
