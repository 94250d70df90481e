"""An in-process SMTP session for notebooks and tests.

Wraps the smtpd protocol engine with the conveniences of a telnet session:
send a line (CRLF added), get the server's reply text back, keep a transcript.
What goes over the "wire" is exactly what :mod:`mailsim.serve` would send.

Examples
--------
>>> import tempfile
>>> from mailsim import init_host
>>> h = init_host(tempfile.mkdtemp() + "/mx", users=["peter"])
>>> s = h.session()
>>> s.banner
'220 mail.example.com ESMTP Postfix (Debian/GNU)'
>>> s.send("MAIL FROM:<alice@example.org>")
'250 2.1.0 Ok'
>>> s.send("RCPT TO:<nosuch@example.com>")
'550 5.1.1 <nosuch@example.com>: Recipient address rejected: User unknown in local recipient table'

STARTTLS is a real TLS handshake with the engine (Python's ssl on both sides,
over memory BIOs: the bytes between them are TLS records, exactly what a
socket would carry): :meth:`Session.starttls` sends STARTTLS and, on 220,
shakes hands; every later :meth:`Session.send` is encrypted.
:class:`EngineTLS` is that client side on its own, for any engine.
"""
from __future__ import annotations

import ssl

__all__ = ["Session", "EngineTLS", "client_context"]


def client_context(*, minimum: ssl.TLSVersion | None = None,
                   maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client context like an opportunistic SMTP client's: no certificate check."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


class EngineTLS:
    """The client side of TLS with a sans-IO smtpd engine (:class:`~mailsim.smtpd.session.SMTPDSession`).

    Create it after the engine's ``220 2.0.0 Ready to start TLS``; :meth:`handshake`
    runs the handshake (``ssl.SSLError`` if it fails), :meth:`exchange` sends
    plaintext and returns the decrypted answer.
    """

    def __init__(self, engine, context: ssl.SSLContext | None = None,
                 server_hostname: str | None = None) -> None:
        self.engine = engine
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = (context or client_context()).wrap_bio(self._in, self._out,
                                                          server_hostname=server_hostname)

    def _pump(self) -> None:
        data = self._out.read()
        if data and not self.engine.closed:
            self._in.write(self.engine.receive(data))

    def handshake(self) -> None:
        for _ in range(20):
            try:
                self.obj.do_handshake()
                self._pump()           # our Finished (the engine logs the summary now)
                return
            except ssl.SSLWantReadError:
                if self.engine.closed and not self._out.pending:
                    raise ssl.SSLEOFError("the server closed the connection during the handshake")
                self._pump()
        raise ssl.SSLError("TLS handshake did not complete")  # pragma: no cover

    def version(self) -> str | None:
        return self.obj.version()

    def cipher(self):
        return self.obj.cipher()

    def exchange(self, data: bytes) -> bytes:
        """Encrypt ``data`` for the engine; return its decrypted reply bytes."""
        if data:
            self.obj.write(data)
        self._pump()
        out = []
        while True:
            try:
                chunk = self.obj.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break
            if not chunk:
                break
            out.append(chunk)
        return b"".join(out)


class Session:
    """Client side of an in-process SMTP session with a simulated host."""

    def __init__(self, host, client_addr: str = "127.0.0.1", *, greet: bool = True,
                 service: str | int | None = None) -> None:
        self.host = host
        self.engine = host.smtpd(client_addr, service=service) if service is not None \
            else host.smtpd(client_addr)
        self.transcript: list[tuple[str, str]] = []
        self.banner = ""
        self.tls: EngineTLS | None = None
        if greet:
            self.banner = self._record(self.engine.greeting())

    def _record(self, out: bytes) -> str:
        text = out.decode("utf-8", "surrogateescape").replace("\r\n", "\n").rstrip("\n")
        if text:
            self.transcript.append(("S", text))
        return text

    # raw engine access
    def greeting(self) -> bytes:
        return self.engine.greeting()

    def receive(self, data: bytes) -> bytes:
        """Raw bytes to the engine (through TLS once :meth:`starttls` succeeded)."""
        return self.tls.exchange(data) if self.tls is not None else self.engine.receive(data)

    def starttls(self, context: ssl.SSLContext | None = None) -> str:
        """Send STARTTLS; on ``220`` do the TLS handshake. Returns the STARTTLS reply.

        >>> import tempfile
        >>> from mailsim import init_host
        >>> h = init_host(tempfile.mkdtemp() + "/mx", users=["peter"])
        >>> h.session().starttls()
        '502 5.5.1 Error: command not implemented'
        """
        reply = self.send("STARTTLS")
        if reply.startswith("220") and not self.engine.closed:
            tls = EngineTLS(self.engine, context)
            tls.handshake()
            self.tls = tls
            self.transcript.append(("TLS", f"{tls.version()} {tls.cipher()[0]}"))
        return reply

    def login(self, user: str, password: str, mechanism: str = "PLAIN") -> str:
        """AUTH as a mail client does it (PLAIN with an initial response, or LOGIN's
        two answers); returns the final reply.

        >>> import tempfile
        >>> from mailsim import init_host, sasl
        >>> h = init_host(tempfile.mkdtemp() + "/mx", users=["peter"])
        >>> sasl.set_password(h, "alice", "example.com", "secret")
        >>> s = h.with_settings(smtpd_sasl_auth_enable="yes").session()
        >>> s.login("alice@example.com", "wrong", "LOGIN")
        '535 5.7.8 Error: authentication failed: authentication failure'
        >>> s.login("alice@example.com", "secret")
        '235 2.7.0 Authentication successful'
        """
        import base64
        b64 = lambda text: base64.b64encode(text.encode("utf-8")).decode("ascii")
        if mechanism.upper() == "LOGIN":
            reply = self.send("AUTH LOGIN")
            if reply.startswith("334 "):
                reply = self.send(b64(user))
            if reply.startswith("334 "):
                reply = self.send(b64(password))
            return reply
        return self.send(f"AUTH {mechanism} {b64(chr(0) + user + chr(0) + password)}")

    def send(self, line: str | bytes) -> str:
        """Send one command line (or raw bytes) and return the server's reply text."""
        data = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
        if isinstance(line, str) and not line.endswith("\n"):
            data += b"\r\n"
        self.transcript.append(("C", data.decode("utf-8", "surrogateescape").rstrip("\r\n")))
        text = self._record(self.receive(data))
        if self.engine.closed:
            self._ended()
        return text

    def _ended(self) -> None:
        """The session is over: the queue manager delivers what it queued, as it
        would at once on a real server (``host.auto_deliver = False`` to look at
        the queue first; ``host.run_queue()`` then delivers)."""
        if self.host.auto_deliver and self.host.clock.simulated and self.host.qmgr_wanted:
            self.host.run_queue()

    def message(self, text: str) -> str:
        """Send a message body after DATA's 354: dot-stuffed, ended with ``.``."""
        lines = text.replace("\r\n", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        body = "".join(("." + l if l.startswith(".") else l) + "\r\n" for l in lines) + ".\r\n"
        return self.send(body.encode("utf-8", "surrogateescape"))

    @property
    def closed(self) -> bool:
        return self.engine.closed

    @property
    def decisions(self):
        return self.engine.decisions

    def close(self) -> None:
        """Drop the connection (as a client that goes away without QUIT)."""
        if not self.engine.closed:
            self.engine.lost()
            self._ended()
