"""qmgr as a process under ``mailsim serve``: woken by cleanup, and by its heartbeat.

On a real server master(8) runs one qmgr process (``qmgr unix n - n 300 1
qmgr`` in master.cf: wakeup 300 s, at most one process). cleanup(8) wakes it
by writing to the FIFO ``$queue_directory/public/qmgr``; without a trigger it
still wakes up for the next deferred-queue scan (``queue_run_delay``). This
module is that process for a mailsim host on the wall clock; the queue
manager's logic is :class:`mailsim.qmgr.QueueManager`, the same one that runs
in-process on a simulated clock.

Stopping: SIGTERM ends the loop between two messages; SIGHUP re-reads main.cf
(``postfix reload``). A ``kill -9`` at any moment loses nothing: see "Crash
safety" in :mod:`mailsim.qmgr`.
"""
from __future__ import annotations

import os
import select
import signal
import stat
from pathlib import Path

from .clock import WallClock
from .host import Host

__all__ = ["fifo_path", "open_trigger", "run"]


def fifo_path(host: Host) -> Path:
    return host.spool / "public" / "qmgr"


def open_trigger(host: Host) -> int:
    """Create the FIFO if needed and open it for reading without blocking.

    Opened read-write so the reader never sees end-of-file when the last
    writer closes (the same trick Postfix's ``fifo_listen`` relies on).
    """
    p = fifo_path(host)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        if not stat.S_ISFIFO(p.stat().st_mode):
            p.unlink()
            os.mkfifo(p, 0o622)
    except FileNotFoundError:
        os.mkfifo(p, 0o622)
    return os.open(p, os.O_RDWR | os.O_NONBLOCK)


def run(root: Path) -> None:
    """The qmgr process: deliver now, then whenever triggered or a scan is due."""
    host = Host(root, clock=WallClock())
    flags: dict[str, bool] = {"stop": False, "hup": False}
    signal.signal(signal.SIGTERM, lambda *a: flags.__setitem__("stop", True))
    signal.signal(signal.SIGINT, lambda *a: flags.__setitem__("stop", True))
    signal.signal(signal.SIGHUP, lambda *a: flags.__setitem__("hup", True))
    fd = open_trigger(host)
    qm = host.qmgr
    try:
        while not flags["stop"]:
            if flags["hup"]:
                flags["hup"] = False
                host.reload()
            qm.run(flush=flags.pop("flush", False))
            wait = max(0.0, min(1.0, qm.next_scan - host.clock.now()))
            try:
                ready, _, _ = select.select([fd], [], [], wait)
            except InterruptedError:
                continue
            if ready:
                try:
                    while (data := os.read(fd, 4096)):
                        if b"F" in data:        # postqueue -f: every deferred message now
                            flags["flush"] = True
                except BlockingIOError:
                    pass
    finally:
        os.close(fd)
        host.log.close()
