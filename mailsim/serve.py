"""``mailsim serve``: a simulated host's smtpd on a real socket (loopback only).

Like Postfix's master(8) running the ``smtp inet`` service: it listens, hands
each connection to a fresh smtpd engine (:mod:`mailsim.smtpd.session`), and
keeps the configuration it loaded until ``postfix reload`` -- which, as with
Postfix, is a signal (SIGHUP) to the process whose pid is in
``var/spool/postfix/pid/master.pid``.

The host runs on wall-clock time here. Only loopback addresses may be bound:
the simulator never listens on, or talks to, anything outside the machine.

Examples
--------
Start it from a shell, then talk to it with nc, telnet, swaks or smtplib::

    mailsim init /tmp/mx --user alice
    mailsim --root /tmp/mx serve --listen 127.0.0.1:2525

More master.cf services on other ports: ``--service submission=127.0.0.1:2587``
serves the ``submission inet ... smtpd -o ...`` entry of master.cf there (its
``-o`` overrides apply, e.g. ``smtpd_sasl_auth_enable=yes``), as master(8)
runs every ``inet`` service it finds.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, TextIO

from .clock import WallClock
from .host import Host

__all__ = ["SMTPServerProtocol", "Server", "serve_socket", "run_master", "listen_socket", "main",
           "parse_listen", "background", "free_port"]


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:2525`` -> ("127.0.0.1", 2525); refuses non-loopback addresses.

    >>> parse_listen("127.0.0.1:2525")
    ('127.0.0.1', 2525)
    >>> parse_listen("[::1]:25")
    ('::1', 25)
    """
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"{host}: mailsim only listens on loopback addresses (127.0.0.0/8, ::1)")
    return host, int(port)


class SMTPServerProtocol(asyncio.Protocol):
    """One TCP connection <-> one smtpd engine. All SMTP logic is in the engine."""

    def __init__(self, server: "Server", service: str | None = None) -> None:
        self.server = server
        self.service = service
        self.engine = None
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("127.0.0.1", 0)
        if self.service is None:
            self.engine = self.server.host.smtpd(peer[0], peer[1])
        else:
            self.engine = self.server.host.smtpd(peer[0], peer[1], service=self.service)
        if self.engine.fatal:
            transport.close()
            return
        transport.write(self.engine.greeting())

    def data_received(self, data: bytes) -> None:
        eng = self.engine
        try:
            out = eng.receive(data)
        except Exception as e:  # one bad session must never take the server down
            self.server.host.log.write("smtpd", eng.pid, f"fatal: internal error: {e!r}")
            out = b"421 4.3.0 Error: internal error\r\n"
            eng.closed = True
        if eng.delay:
            delay, eng.delay = eng.delay, 0.0
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(delay, self._write, out)
            return
        self._write(out)

    def _write(self, out: bytes) -> None:
        if self.transport.is_closing():
            return
        if out:
            self.transport.write(out)
        if self.engine.closed:
            self.transport.close()
        else:
            self.transport.resume_reading()

    def connection_lost(self, exc) -> None:
        if self.engine is not None and not self.engine.closed:
            self.engine.lost()


class Server:
    """A host's SMTP listener; ``reload()`` re-reads main.cf for new connections."""

    def __init__(self, root: Path, clock=None) -> None:
        self.root = Path(root)
        # wall-clock time on real sockets; tests may pass a SimClock to compare
        # transcripts byte for byte with an in-process session
        self.host = Host(self.root, clock=clock or WallClock())

    def reload(self) -> None:
        """Re-read main.cf (the master logs the reload)."""
        self.host.reload()


def listen_socket(listen: str) -> socket.socket:
    """Bind the listening socket (loopback only), as master(8) does before it forks."""
    addr, port = parse_listen(listen)
    sock = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((addr, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


async def serve_socket(root: Path, sock: socket.socket, *, ready=None,
                       services: list[tuple[str, socket.socket]] = ()) -> None:
    """One smtpd process: accept connections on ``sock`` (and on the sockets of the other
    master.cf ``services``, [(name, socket)]) until SIGTERM (SIGHUP reloads)."""
    srv = Server(root)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTPServerProtocol(srv), sock=sock)
    others = [await loop.create_server(lambda name=name: SMTPServerProtocol(srv, name), sock=s)
              for name, s in services]
    stop = asyncio.Event()
    try:
        loop.add_signal_handler(signal.SIGHUP, srv.reload)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
    except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread
        pass
    if ready is not None:
        ready(server)
    async with server:
        await stop.wait()
    for other in others:
        other.close()


def run_master(root: Path, listen: str, processes: int = 2,
               services: list[tuple[str, str]] = ()) -> None:
    """master(8): bind, write the pid file, run ``processes`` smtpd processes, restart any
    that dies, pass SIGHUP (``postfix reload``) on to them, stop them all on SIGTERM.

    Several processes share the listening socket, as Postfix's smtpd processes
    do (``maxproc`` in master.cf); each keeps its own configuration until reload.
    """
    sock = listen_socket(listen)
    extra = [(name, listen_socket(addr)) for name, addr in services]
    host = Host(root, clock=WallClock())
    piddir = host.spool / "pid"
    piddir.mkdir(parents=True, exist_ok=True)
    pidfile = piddir / "master.pid"
    pidfile.write_text(f"{os.getpid():>10}\n")
    me = os.getpid()
    host.log.write("master", me, "daemon started -- version 3.7.11, configuration /etc/postfix")
    host.log.close()
    children: set[int] = set()
    flags = {"stop": False, "hup": False}

    def fork(target) -> int:
        pid = os.fork()
        if pid == 0:                      # a daemon process
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = 0
            try:
                target()
            except BaseException:
                code = 1
            os._exit(code)
        return pid

    def spawn() -> None:                  # an smtpd process
        children.add(fork(lambda: asyncio.run(serve_socket(root, sock, services=extra))))

    def spawn_qmgr() -> int:              # the one qmgr process
        from . import qmgr_daemon
        return fork(lambda: qmgr_daemon.run(root))

    signal.signal(signal.SIGHUP, lambda *a: flags.__setitem__("hup", True))
    signal.signal(signal.SIGTERM, lambda *a: flags.__setitem__("stop", True))
    signal.signal(signal.SIGINT, lambda *a: flags.__setitem__("stop", True))
    for _ in range(max(1, processes)):
        spawn()
    qmgr = spawn_qmgr()
    try:
        while not flags["stop"]:
            if flags["hup"]:
                flags["hup"] = False
                Host(root, clock=WallClock()).log.write(
                    "master", me, "reload -- version 3.7.11, configuration /etc/postfix")
                for pid in children | {qmgr}:
                    os.kill(pid, signal.SIGHUP)
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid and pid in children:
                children.discard(pid)
                if not flags["stop"]:
                    spawn()                # master(8) restarts a process that died
            elif pid and pid == qmgr and not flags["stop"]:
                qmgr = spawn_qmgr()
            time.sleep(0.05)
    finally:
        children.add(qmgr)
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in list(children):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        Host(root, clock=WallClock()).log.write("master", me, "terminating on signal 15")
        _remove_pidfile(pidfile)


def _remove_pidfile(pidfile: Path) -> None:
    try:
        if pidfile.read_text().strip() == str(os.getpid()):
            pidfile.unlink()
    except OSError:
        pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def background(root: Path, *, processes: int = 1, port: int | None = None,
               timeout: float = 20.0, services: dict[str, int] | None = None) -> Iterator[int]:
    """Run ``mailsim serve`` for the host at ``root`` in a child process; yields its port.

    ``services``: more master.cf services and their ports (``{"submission": 2587}``).

    For notebooks, tests and benchmarks: waits until the server accepts connections
    and has written master.pid, and stops it (SIGTERM) on leaving the block.

    >>> import tempfile, socket
    >>> from mailsim import init_host
    >>> h = init_host(tempfile.mkdtemp() + "/mx")
    >>> with background(h.root) as port:
    ...     with socket.create_connection(("127.0.0.1", port)) as c:
    ...         c.recv(100).startswith(b"220 mail.example.com ESMTP")
    True
    """
    root = Path(root)
    port = port or free_port()
    extra = [a for name, p in (services or {}).items()
             for a in ("--service", f"{name}=127.0.0.1:{p}")]
    proc = subprocess.Popen([sys.executable, "-m", "mailsim", "--root", str(root), "serve",
                             "--listen", f"127.0.0.1:{port}", "--processes", str(processes),
                             *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pidfile = root / "var/spool/postfix/pid/master.pid"
    try:
        end = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mailsim serve exited: {proc.stderr.read().decode().strip()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                if pidfile.exists() and pidfile.read_text().strip():
                    break
            except OSError:
                pass
            if time.monotonic() > end:
                raise RuntimeError(f"mailsim serve did not start listening on 127.0.0.1:{port}")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def main(root: Path, argv: list[str], out: TextIO, err: TextIO) -> int:
    p = argparse.ArgumentParser(prog="mailsim serve",
                                description="Serve a simulated host's smtpd on a loopback socket.")
    p.add_argument("--listen", default="127.0.0.1:2525", help="loopback address:port (default %(default)s)")
    p.add_argument("--processes", type=int, default=min(4, os.cpu_count() or 1),
                   help="smtpd processes sharing the socket (default: one per core, at most 4)")
    p.add_argument("--service", action="append", default=[], metavar="NAME=ADDRESS:PORT",
                   help="also serve master.cf service NAME (e.g. submission=127.0.0.1:2587) "
                        "with its -o overrides (repeatable)")
    a = p.parse_args(argv)
    services = []
    try:
        parse_listen(a.listen)
        for spec in a.service:
            name, eq, addr = spec.partition("=")
            if not eq or not name:
                raise ValueError(f"--service {spec}: expected NAME=ADDRESS:PORT")
            parse_listen(addr)
            services.append((name, addr))
        Host(root)
    except (ValueError, FileNotFoundError) as e:
        print(f"mailsim serve: {e}", file=err)
        return 1
    where = ", ".join([a.listen] + [f"{addr} ({name})" for name, addr in services])
    print(f"mailsim: {root} listening on {where} (Ctrl-C to stop)", file=err)
    err.flush()
    try:
        run_master(Path(root), a.listen, a.processes, services)
    except KeyboardInterrupt:
        pass
    except OSError as e:
        print(f"mailsim serve: {e}", file=err)
        return 1
    return 0
