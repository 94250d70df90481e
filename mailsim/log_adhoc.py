"""log_adhoc: the ``to=<...>, relay=..., delay=..., delays=a/b/c/d, dsn=..., status=...``
line that every delivery agent (local, virtual, smtp, error) logs per recipient.

Models Postfix's ``src/global/log_adhoc.c``. ``delay`` runs from the message's
arrival to the end of this delivery; the four ``delays`` are

a. before the active queue (arrival to the moment qmgr took the message),
b. in the active queue (until the delivery agent started on it),
c. connection setup (DNS, connect, greeting, HELO, TLS; 0 for local),
d. message transmission (or the local delivery itself).

Times are printed with Postfix's ``format_tv()``: two significant digits and
at most ``delay_logging_resolution_limit`` decimals (default 2), so 0.004 s prints as ``0`` and
12.6 s as ``13``.

Examples
--------
>>> format_tv(0, 12345), format_tv(0, 4000), format_tv(12, 600000), format_tv(119, 0)
('0.01', '0', '13', '119')
"""
from __future__ import annotations

__all__ = ["format_tv", "log_adhoc", "delays"]


def format_tv(sec: int, usec: int, sig_dig: int = 2, max_dig: int = 2) -> str:
    """Postfix's format_tv(): two significant digits, at most ``max_dig`` decimals."""
    million = 1_000_000
    ures = million // 10 ** max_dig
    wid = 10 ** sig_dig
    if ures < million:
        if sec > 0:
            n = 1
            while sec >= n and n <= wid // 10:
                n *= 10
            ures = (million // wid) * n
        else:
            while usec >= wid * ures:
                ures *= 10
    if ures > 1:
        usec += ures // 2
        if usec >= million:
            sec += 1
            usec -= million
    out = str(sec)
    if usec >= ures:
        out += "."
        rem, n = usec, million // 10
        while rem >= ures and n > 0:
            out += "0123456789"[rem // n]
            rem %= n
            n //= 10
    return out


def _delta(a: float, b: float) -> tuple[int, int]:
    us = int(round((a - b) * 1_000_000))
    if us < 0:
        return 0, 0
    return divmod(us, 1_000_000)


def _delta(a: float, b: float) -> tuple[int, int]:
    us = int(round((a - b) * 1_000_000))
    if us < 0:
        return 0, 0
    return divmod(us, 1_000_000)


def delays(host, arrival: float, *, active: float | None, conn: float | None = None,
           xfer: float | None = None, done: float) -> tuple[str, str]:
    """(``delay``, ``delays``) as Postfix prints them.

    ``active``: when qmgr moved the message into the active queue; ``conn``:
    when the delivery agent started (connection setup begins); ``xfer``: when
    the transmission began (after HELO); ``done``: the end. A missing time
    folds its stage into the one before it; without ``active`` the whole delay
    counts as "before the active queue", as Postfix does.
    """
    max_res = host.conf.int("delay_logging_resolution_limit")

    def fmt(a: float, b: float) -> str:
        return format_tv(*_delta(a, b), 2, max_res)

    total = fmt(done, arrival)
    if active is None:
        return total, f"{total}/0/0/0"
    a = fmt(active, arrival)
    if conn is None:
        return total, f"{a}/{fmt(done, active)}/0/0"
    if xfer is None:
        return total, f"{a}/{fmt(conn, active)}/0/{fmt(done, conn)}"
    return total, f"{a}/{fmt(conn, active)}/{fmt(xfer, conn)}/{fmt(done, xfer)}"


def log_adhoc(host, daemon: str, pid: int, qf, to: str, orig_to: str, relay: str,
              status_text: str, dsn: str = "2.0.0", status: str = "sent", *,
              active: float | None = None, conn: float | None = None,
              xfer: float | None = None, done: float | None = None) -> str:
    """Write one delivery line for ``to`` as ``daemon[pid]`` and return its text.

    ``orig_to`` is logged (``orig_to=<...>``) only when it differs from ``to``.
    """
    now = host.clock.now() if done is None else done
    delay, dl = delays(host, qf.arrival, active=active, conn=conn, xfer=xfer, done=now)
    text = f"{qf.queue_id}: to=<{to}>"
    if orig_to and orig_to.lower() != to.lower():
        text += f", orig_to=<{orig_to}>"
    text += (f", relay={relay}, delay={delay}, delays={dl}, dsn={dsn}, "
             f"status={status} ({status_text})")
    host.log.write(daemon, pid, text)
    return text
