"""How smtp(8) reaches a server: connectors and channels.

A :class:`Connector` opens a :class:`Channel` to ``addr:port``; the SMTP
client only ever talks to a channel, so the same client code delivers over a
real TCP socket (:class:`SocketConnector`, loopback only) or straight into
another simulated host's smtpd engine in memory (:class:`HostConnector`, for
labs and fast tests).

A channel behaves like Postfix's VSTREAM: :meth:`Channel.send` only buffers
(and writes when the buffer passes 4096 bytes); :meth:`Channel.read_reply`
writes what is buffered, then reads one whole reply. So a pipelining client
that sends MAIL, RCPT and DATA before reading puts them on the wire in one
write, as Postfix does. Failures are exceptions: :class:`ConnectFailure`
(with the system's error text, ``Connection refused``), :class:`ChannelLost`
(the server hung up) and :class:`ChannelTimeout` (no answer in time).

Replies are read like Postfix's smtp_chat_resp(): lines up to a final
``ddd `` line; unprintable bytes become ``?``; lines that are no reply line
are kept in the text and reading goes on.

STARTTLS: :meth:`Channel.starttls` turns a channel into TLS with an
:class:`ssl.SSLContext` and returns the TLS object (an :class:`ssl.SSLSocket`
or :class:`ssl.SSLObject`) once the handshake is done; a failed handshake
raises :class:`ssl.SSLError` (or :class:`ChannelError`). A socket channel
wraps its socket; a channel into a simulated host's engine runs the TLS
records through :class:`ssl.MemoryBIO` pairs, so the engine sees (and must
answer) real TLS records after its ``220`` to STARTTLS -- what a server-side
TLS engine does with its own MemoryBIO pair.

Examples
--------
>>> ch = _ScriptChannel(b"220 mx.example ESMTP\\r\\n250-mx.example\\r\\n250 8BITMIME\\r\\n")
>>> ch.read_reply()
(220, ['220 mx.example ESMTP'])
>>> ch.send(b"EHLO me\\r\\n"); ch.read_reply()
(250, ['250-mx.example', '250 8BITMIME'])
>>> ch.sent
b'EHLO me\\r\\n'
"""
from __future__ import annotations

import errno
import ipaddress
import os
import socket
import ssl
from typing import Protocol

__all__ = ["Channel", "Connector", "SocketConnector", "HostConnector", "ConnectFailure",
           "ChannelError", "ChannelLost", "ChannelTimeout", "NotLoopback", "BUFSIZE"]

#: Postfix's VSTREAM_BUFSIZE: buffered output is written when it grows past this
BUFSIZE = 4096


class ConnectFailure(Exception):
    """The connection could not be made; ``text`` is the system's reason."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class NotLoopback(ConnectFailure):
    """mailsim never connects outside this machine."""


class ChannelError(Exception):
    """The conversation broke off (see the subclasses)."""


class ChannelLost(ChannelError):
    """The server closed the connection (Postfix: "lost connection")."""


class ChannelTimeout(ChannelError):
    """No reply in time (Postfix: "conversation ... timed out")."""


class Channel(Protocol):
    def set_timeout(self, seconds: float) -> None: ...

    def send(self, data: bytes) -> None: ...

    def flush(self) -> None: ...

    def read_reply(self) -> tuple[int, list[str]]: ...

    def starttls(self, context: ssl.SSLContext, server_hostname: str | None = None): ...

    def close(self) -> None: ...


class Connector(Protocol):
    def connect(self, addr: str, port: int, timeout: float | None = None) -> Channel: ...


def _printable(line: bytes) -> str:
    """Postfix's printable(): anything but printable ASCII becomes ``?``."""
    return "".join(chr(b) if 32 <= b < 127 else "?" for b in line)


def _reply_line(text: str) -> tuple[int, bool] | None:
    """(code, last line?) for ``ddd text`` / ``ddd-text`` / ``ddd``; None for garbage."""
    if len(text) >= 3 and text[:3].isdigit() and (len(text) == 3 or not text[3].isdigit()):
        if len(text) == 3 or text[3] == " ":
            return int(text[:3]), True
        if text[3] == "-":
            return int(text[:3]), False
    return None


class _BufferedChannel:
    """Output buffering and reply parsing; subclasses move the bytes."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._in = bytearray()
        self.timeout: float | None = None
        self.tls = None              # the ssl.SSLSocket / ssl.SSLObject after STARTTLS

    # -- what subclasses provide ---------------------------------------------------------
    def _write(self, data: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _read(self) -> bytes:  # pragma: no cover - interface
        """More input; b"" when the server has closed the connection."""
        raise NotImplementedError

    # -- the channel -----------------------------------------------------------------------
    def set_timeout(self, seconds: float) -> None:
        self.timeout = seconds if seconds and seconds > 0 else None

    def send(self, data: bytes) -> None:
        self._out += data
        if len(self._out) > BUFSIZE:
            self.flush()

    def flush(self) -> None:
        if self._out:
            data, self._out = bytes(self._out), bytearray()
            self._write(data)

    def starttls(self, context: ssl.SSLContext, server_hostname: str | None = None):
        """Turn the channel into TLS (after the server's 220 to STARTTLS)."""
        raise ChannelLost("this channel cannot start TLS")

    def _line(self) -> bytes:
        while True:
            nl = self._in.find(b"\n")
            if nl >= 0:
                line = bytes(self._in[:nl])
                del self._in[:nl + 1]
                return line[:-1] if line.endswith(b"\r") else line
            chunk = self._read()
            if not chunk:
                raise ChannelLost("server closed the connection")
            self._in += chunk

    def read_reply(self) -> tuple[int, list[str]]:
        self.flush()
        lines: list[str] = []
        while True:
            text = _printable(self._line())
            lines.append(text)
            kind = _reply_line(text)
            if kind is not None and kind[1]:
                return kind[0], lines


class _ScriptChannel(_BufferedChannel):
    """A channel that replays canned server bytes (for examples and tests)."""

    def __init__(self, server: bytes) -> None:
        super().__init__()
        self._server = bytearray(server)
        self.sent = b""

    def _write(self, data: bytes) -> None:
        self.sent += data

    def _read(self) -> bytes:
        data, self._server = bytes(self._server), bytearray()
        if not data:
            raise ChannelTimeout("no reply")
        return data

    def close(self) -> None:
        self.flush()


class _SocketChannel(_BufferedChannel):
    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock

    def _write(self, data: bytes) -> None:
        self.sock.settimeout(self.timeout)
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise ChannelTimeout("write timeout") from None
        except OSError as e:
            raise ChannelLost(str(e)) from None

    def _read(self) -> bytes:
        self.sock.settimeout(self.timeout)
        try:
            return self.sock.recv(65536)
        except socket.timeout:
            raise ChannelTimeout("read timeout") from None
        except OSError:
            return b""

    def starttls(self, context: ssl.SSLContext, server_hostname: str | None = None):
        self.flush()
        self._in.clear()                 # what came before the handshake is not trusted
        self.sock.settimeout(self.timeout)
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname or None,
                                        do_handshake_on_connect=False)
        try:
            self.sock.do_handshake()
        except socket.timeout:
            raise ChannelTimeout("TLS handshake timeout") from None
        self.tls = self.sock
        return self.sock

    def close(self) -> None:
        try:
            self.flush()
        except ChannelError:
            pass
        finally:
            self.sock.close()


def _strerror(code: int) -> str:
    return os.strerror(code)


class SocketConnector:
    """Real TCP connections, to loopback addresses only (127.0.0.0/8, ::1).

    ``source``: the address to connect from (``smtp_bind_address``), so the
    receiving host sees the lab host's own address as its client.
    """

    def __init__(self, source: str = "") -> None:
        self.source = source

    def connect(self, addr: str, port: int, timeout: float | None = None) -> Channel:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            raise ConnectFailure(f"{addr}: not a network address") from None
        if not ip.is_loopback:
            raise NotLoopback(
                f"mailsim never leaves this machine: {addr} is not a loopback address "
                "(127.0.0.0/8, ::1); give the lab's hosts loopback addresses in etc/hosts")
        fam = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        sock = socket.socket(fam, socket.SOCK_STREAM)
        try:
            if self.source:
                sock.bind((self.source, 0))
            sock.settimeout(timeout if timeout and timeout > 0 else None)
            sock.connect((addr, port))
        except socket.timeout:
            sock.close()
            raise ConnectFailure(_strerror(errno.ETIMEDOUT)) from None
        except OSError as e:
            sock.close()
            raise ConnectFailure(_strerror(e.errno) if e.errno else str(e)) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _SocketChannel(sock)


class _EngineChannel(_BufferedChannel):
    """A channel into a simulated host's smtpd engine (no sockets, no threads)."""

    def __init__(self, engine) -> None:
        super().__init__()
        self.engine = engine
        self._server = bytearray(engine.greeting())
        self._bio_in: ssl.MemoryBIO | None = None
        self._bio_out: ssl.MemoryBIO | None = None

    def _to_engine(self, data: bytes) -> bytes:
        """Bytes to the engine; what it answers (TLS records after STARTTLS)."""
        if not data:
            return b""
        if self.engine.closed:
            raise ChannelLost("server closed the connection")
        return self.engine.receive(data)

    def _write(self, data: bytes) -> None:
        if self.tls is None:
            self._server += self._to_engine(data)
            return
        self.tls.write(data)
        self._bio_in.write(self._to_engine(self._bio_out.read()))

    def _read(self) -> bytes:
        if self.tls is not None:
            try:
                return self.tls.read(65536)
            except ssl.SSLWantReadError:
                if self.engine.closed:
                    return b""
                raise ChannelTimeout("the server is waiting for more input") from None
            except ssl.SSLError:         # close_notify, a bad record: the connection is over
                return b""
        data, self._server = bytes(self._server), bytearray()
        if data:
            return data
        if self.engine.closed:
            return b""
        raise ChannelTimeout("the server is waiting for more input")

    def starttls(self, context: ssl.SSLContext, server_hostname: str | None = None):
        self.flush()
        self._in.clear()
        self._server.clear()
        self._bio_in, self._bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = context.wrap_bio(self._bio_in, self._bio_out,
                               server_hostname=server_hostname or None)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                out = self._bio_out.read()
                if self.engine.closed:
                    self._bio_in.write_eof()     # the server hung up: SSL_connect sees EOF
                    continue
                reply = self.engine.receive(out) if out else b""
                if reply:
                    self._bio_in.write(reply)
                elif self.engine.closed:
                    self._bio_in.write_eof()
                elif not out:
                    raise ChannelTimeout("the server is waiting in the TLS handshake") from None
        out = self._bio_out.read()           # the client's last flight (TLS 1.3: Finished)
        if out and not self.engine.closed:
            self._bio_in.write(self.engine.receive(out))
        self.tls = obj
        return obj

    def close(self) -> None:
        try:
            self.flush()
        except ChannelError:
            pass
        if not self.engine.closed:
            self.engine.lost()


class HostConnector:
    """Connections to simulated hosts in this process: ``{address: Host}``.

    A connection to an address without a host is refused, as by a machine
    where nothing listens. The server host's smtpd sees ``client_addr``.
    """

    def __init__(self, hosts: dict, client_addr: str = "127.0.0.1") -> None:
        self.hosts = dict(hosts)
        self.client_addr = client_addr
        self._port = 40000

    def connect(self, addr: str, port: int, timeout: float | None = None) -> Channel:
        host = self.hosts.get(addr)
        if host is None:
            raise ConnectFailure(_strerror(errno.ECONNREFUSED))
        self._port += 1
        # the master.cf service behind that port (587: submission, with its -o overrides)
        return _EngineChannel(host.smtpd(self.client_addr, self._port,
                                         service=None if port == 25 else port))
