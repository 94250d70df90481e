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
"""
from __future__ import annotations

__all__ = ["Session"]


class Session:
    """Client side of an in-process SMTP session with a simulated host."""

    def __init__(self, host, client_addr: str = "127.0.0.1", *, greet: bool = True) -> None:
        self.host = host
        self.engine = host.smtpd(client_addr)
        self.transcript: list[tuple[str, str]] = []
        self.banner = ""
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
        return self.engine.receive(data)

    def send(self, line: str | bytes) -> str:
        """Send one command line (or raw bytes) and return the server's reply text."""
        data = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
        if isinstance(line, str) and not line.endswith("\n"):
            data += b"\r\n"
        self.transcript.append(("C", data.decode("utf-8", "surrogateescape").rstrip("\r\n")))
        text = self._record(self.engine.receive(data))
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
