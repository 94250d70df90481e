"""Bridges between a lab and real MTAs on this machine's loopback.

Two directions, both on real sockets, both loopback only:

* **Out of the lab** -- lab.toml's ``[[bridges]]`` gives a real MTA (Debian's
  Postfix, an aiosmtpd server a learner wrote, swaks' sink) a lab address::

      [[bridges]]
      name = "postfix"
      address = "127.0.0.50"        # the lab's zone may give it a name: relay A 127.0.0.50
      connect = "127.0.0.1:2526"    # where it really listens

  A lab host's smtp(8) that connects to 127.0.0.50 (by MX, A record,
  ``relayhost = [127.0.0.50]`` or a transport) gets a real TCP connection to
  127.0.0.1:2526 instead of an in-memory one (:class:`~mailsim.lab.network.LabConnector`),
  with the same client code and the same log lines.

* **Into the lab** -- :func:`serve_lab_host` (``mailsim lab DIR serve HOST
  --listen 127.0.0.1:PORT``) puts one lab host's smtpd on a real socket.
  Whatever it accepts goes on through the lab as any lab mail does: to a
  mailbox on that host, or across the virtual network to the other hosts.
  While it serves, the lab's simulated clock moves at the wall clock's pace
  from where it stood, running every host's queue manager on the way (the
  lab's dates stay the lab's, so a Received: header written by a real
  Postfix shows today's date above the lab's own).

Real-server equivalent: the lab host is a machine whose port 25 the real
MTA can reach; ``[[bridges]]`` is the route from the lab to that MTA.

Examples
--------
A lab host relaying to a real SMTP server on loopback (here an aiosmtpd
sink started by the example; with Debian's Postfix it is the same)::

>>> import tempfile, pathlib
>>> from mailsim.lab import Lab
>>> from mailsim.lab.bridge import loopback_sink
>>> with loopback_sink() as sink:
...     d = pathlib.Path(tempfile.mkdtemp())
...     _ = (d / "lab.toml").write_text(f'''
... [[hosts]]
... name = "office"
... address = "127.0.0.6"
... hostname = "gw.office.example"
... users = ["bob"]
... [hosts.main_cf]
... relayhost = "[127.0.0.50]"
... [[bridges]]
... name = "sink"
... address = "127.0.0.50"
... connect = "127.0.0.1:{sink.port}"
... ''')
...     lab = Lab.load(d)
...     r = lab.send("bob@gw.office.example", "peter@example.org", via="office")
...     [ln.split(": ", 1)[1] for ln in lab.log("office") if "relay=" in ln][0].split(", ")[1:3]
...     sink.messages[0][:2]
['relay=127.0.0.50[127.0.0.50]:25', 'delay=0']
('bob@gw.office.example', ['peter@example.org'])
"""
from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from typing import Callable, Iterator

from ..serve import SMTPServerProtocol, free_port, listen_socket
from .config import LabError

__all__ = ["LabServer", "serve_lab_host", "loopback_sink", "Sink", "run_in_thread"]


class LabServer:
    """What :class:`~mailsim.serve.SMTPServerProtocol` needs (``.host``), for a lab host,
    plus the lab's clock following the wall clock."""

    def __init__(self, lab, name: str) -> None:
        self.lab = lab
        self.name = name
        self.host = lab.network.hooked(name, lab.host(name))   # greylisting & co. apply too
        self._wall0 = time.monotonic()
        self._sim0 = lab.now

    def catch_up(self) -> int:
        """Move the lab's clock to where the wall clock says, delivering what is due."""
        target = self._sim0 + (time.monotonic() - self._wall0)
        n = self.lab.run(until=target - self.lab.now) if target > self.lab.now else self.lab.settle()
        self.lab.save()
        return n


class _LabProtocol(SMTPServerProtocol):
    """A session into the lab host; when it ends, the lab delivers what it queued."""

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        self.server.catch_up()


async def serve_lab_host(lab, name: str, listen: str, *, ready: Callable | None = None,
                         tick: float = 1.0) -> None:
    """Serve lab host ``name`` on ``listen`` (loopback) until SIGTERM or SIGINT."""
    if not lab.network.is_up(name):
        raise LabError(f"{name} is down in the lab -- start it first: mailsim lab DIR start {name}")
    srv = LabServer(lab, name)
    sock = listen_socket(listen)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _LabProtocol(srv), sock=sock)
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError, RuntimeError):   # not the main thread
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
    if ready is not None:
        ready(server)
    async with server:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)
            srv.catch_up()                  # retries and faults fall due as time passes


class Sink:
    """A tiny real SMTP server on loopback that keeps what it receives (for examples,
    tests and recorders): ``messages`` holds (sender, recipients, data)."""

    def __init__(self, messages: list | None = None) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = [] if messages is None else messages
        self.port = 0

    def received(self) -> list[dict]:
        """What arrived, as plain data: ``port_name`` (the first recipient's domain),
        ``mail_from``, ``rcpt_tos``."""
        return [{"port_name": r[0].rpartition("@")[2], "mail_from": s, "rcpt_tos": r}
                for s, r, _ in self.messages]


@contextlib.contextmanager
def loopback_sink(port: int | None = None, messages: list | None = None) -> Iterator[Sink]:
    """An aiosmtpd server on 127.0.0.1 (``port``, or a free one) for the length of the
    ``with``, answering ``250 2.0.0 Ok: queued``; several sinks may share ``messages``."""
    from aiosmtpd.controller import Controller

    sink = Sink(messages)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            sink.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            return "250 2.0.0 Ok: queued"

    sink.port = port or free_port()
    ctl = Controller(Handler(), hostname="127.0.0.1", port=sink.port)
    ctl.start()
    try:
        yield sink
    finally:
        ctl.stop()


def run_in_thread(lab, name: str, listen: str) -> tuple[threading.Thread, Callable[[], None]]:
    """Serve in a background thread (tests, notebooks); returns the thread and a stop function."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict = {}

    async def main() -> None:
        holder["stop"] = asyncio.Event()
        task = asyncio.ensure_future(serve_lab_host(lab, name, listen, ready=lambda s: started.set()))
        await holder["stop"].wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    t = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    t.start()
    if not started.wait(10):
        raise RuntimeError(f"lab host {name} did not start listening on {listen}")

    def stop() -> None:
        loop.call_soon_threadsafe(holder["stop"].set)
        t.join(10)
    return t, stop
