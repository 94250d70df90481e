"""The ``%%smtp`` cell magic: an SMTP dialogue typed into a notebook cell, shown as telnet shows it.

Load it with ``%load_ext mailsim``; then a cell such as::

    %%smtp host
    EHLO client.example.org
    MAIL FROM:<bob@example.org>
    RCPT TO:<alice@example.com>
    DATA
    Subject: hello

    Hi Alice!
    .
    QUIT

opens one SMTP connection to the simulated host ``host`` (a name in the
notebook's namespace; default ``host``), sends each non-empty line as one
command, and shows the dialogue: what ``telnet mail.example.com 25`` or
``nc`` would show, with the client's lines told apart from the server's.
This is Postfix's smtpd answering (the same engine ``mailsim serve`` puts on a
socket), byte for byte.

Options:

``--client ADDR``
    the client IP address the host sees (default ``127.0.0.1``, which is in
    the default ``mynetworks``; try ``192.0.2.99`` to be an outsider).
``--serve HOST:PORT``
    talk over a real TCP connection to ``mailsim serve`` (loopback only), as
    ``telnet 127.0.0.1 2525`` would.

Rules of the cell:

* a line ``DATA`` is followed by the message, up to a line ``.``: the message
  lines are sent as typed text, **dot-stuffed** by the magic (a line ``.x``
  goes on the wire as ``..x``, RFC 5321 4.5.2), and the transcript shows them
  as they went on the wire. Empty lines inside the message are kept. If the
  server does not answer DATA with 354, the message is not sent (a real client
  would not send it either) and the transcript says so;
* outside a message, a line that starts with ``#`` is a comment (not sent);
* when the server closes the connection (``221`` after ``QUIT``, a ``421``)
  the remaining lines are not sent; a cell that does not end with ``QUIT``
  drops the connection at its end, as a client that goes away does.

The text form (what nbval compares, ``text/plain``) prefixes every line:
``C: `` for what the client sent, ``S: `` for what the server answered, and
``#  `` for notes from the magic. The HTML form colours the server's replies
by class: 2xx green, 3xx blue, 4xx orange (try again later), 5xx red (never).

Examples
--------
>>> import tempfile
>>> from mailsim import init_host
>>> h = init_host(tempfile.mkdtemp() + "/mx", users=["alice"])
>>> t = smtp(h, '''HELO client.example.org
... MAIL FROM:<bob@example.org>
... RCPT TO:<alice@example.com>
... RCPT TO:<someone@example.net>
... QUIT''', client="192.0.2.99")
>>> print(t)
S: 220 mail.example.com ESMTP Postfix (Debian/GNU)
C: HELO client.example.org
S: 250 mail.example.com
C: MAIL FROM:<bob@example.org>
S: 250 2.1.0 Ok
C: RCPT TO:<alice@example.com>
S: 250 2.1.5 Ok
C: RCPT TO:<someone@example.net>
S: 454 4.7.1 <someone@example.net>: Relay access denied
C: QUIT
S: 221 2.0.0 Bye
>>> t.codes
[220, 250, 250, 250, 454, 221]
>>> t.last
'221 2.0.0 Bye'
"""
from __future__ import annotations

import argparse
import html
import ipaddress
import shlex
import socket
from dataclasses import dataclass, field
from typing import Iterable

__all__ = ["Transcript", "smtp", "parse_serve_address", "SMTPMagics", "load_ipython_extension",
           "CLASS_COLOURS"]

#: colour of a server reply in the HTML form, by its first digit
CLASS_COLOURS = {"2": "#1a7f37", "3": "#0550ae", "4": "#bc4c00", "5": "#cf222e"}
_CLIENT_COLOUR = "#6e7781"


@dataclass
class Transcript:
    """One SMTP dialogue: ``entries`` are ``(who, text)`` with who ``"C"`` (client),
    ``"S"`` (server) or ``"#"`` (a note); a text may hold several lines.

    ``str()``/``repr()`` give the telnet-like text form; in a notebook the
    HTML form colours the replies by class.
    """

    entries: list[tuple[str, str]] = field(default_factory=list)

    # -- reading it ---------------------------------------------------------------------
    @property
    def replies(self) -> list[str]:
        """Every server reply, in order (a multi-line reply is one string)."""
        return [t for who, t in self.entries if who == "S"]

    @property
    def codes(self) -> list[int]:
        """The reply codes, in order (the greeting's 220 first)."""
        return [int(r[:3]) for r in self.replies if r[:3].isdigit()]

    @property
    def last(self) -> str:
        """The last server reply ("" if there was none)."""
        r = self.replies
        return r[-1] if r else ""

    def reply_to(self, command: str) -> str | None:
        """The reply to the last client line that starts with ``command`` (case-insensitive).

        >>> Transcript([("C", "RCPT TO:<a@b.c>"), ("S", "250 2.1.5 Ok")]).reply_to("rcpt")
        '250 2.1.5 Ok'
        """
        out = None
        want = command.lower()
        for (who, text), nxt in zip(self.entries, self.entries[1:]):
            if who == "C" and text.lower().startswith(want) and nxt[0] == "S":
                out = nxt[1]
        return out

    # -- showing it -----------------------------------------------------------------------
    def lines(self) -> list[tuple[str, str]]:
        """``(who, line)`` for every line of the dialogue."""
        return [(who, line) for who, text in self.entries for line in text.split("\n")]

    def text(self) -> str:
        """The telnet-like text form: ``C: `` client lines, ``S: `` server lines, ``#  `` notes."""
        prefix = {"C": "C: ", "S": "S: ", "#": "#  "}
        return "\n".join((prefix[w] + l).rstrip() for w, l in self.lines())

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p, cycle) -> None:  # IPython's text/plain
        p.text(self.text())

    def _repr_html_(self) -> str:
        out = []
        for who, line in self.lines():
            esc = html.escape(line)
            if who == "C":
                out.append(f'<span style="color:{_CLIENT_COLOUR}">C: </span>'
                           f'<span style="font-weight:bold">{esc}</span>')
            elif who == "S":
                colour = CLASS_COLOURS.get(line[:1], "inherit")
                out.append(f'<span style="color:{_CLIENT_COLOUR}">S: </span>'
                           f'<span style="color:{colour}">{esc}</span>')
            else:
                out.append(f'<span style="color:{_CLIENT_COLOUR};font-style:italic"># {esc}</span>')
        return ('<pre class="mailsim-smtp" style="line-height:1.35">'
                + "\n".join(out) + "</pre>")


# -- parsing the cell ------------------------------------------------------------------------
def _commands(lines: str | Iterable[str]) -> list[tuple[str, object]]:
    """Turn cell text into ``("cmd", line)``, ``("data", line)``, ``("message", [lines])``.

    >>> _commands("EHLO x\\n\\n# note\\nDATA\\nSubject: s\\n\\n.hi\\n.\\nQUIT")
    [('cmd', 'EHLO x'), ('data', 'DATA'), ('message', ['Subject: s', '', '.hi']), ('cmd', 'QUIT')]
    """
    if isinstance(lines, str):
        lines = lines.replace("\r\n", "\n").split("\n")
    out: list[tuple[str, object]] = []
    msg: list[str] | None = None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if msg is not None:
            if line == ".":
                out.append(("message", msg))
                msg = None
            else:
                msg.append(line)
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.strip().upper() == "DATA":
            out.append(("data", line.strip()))
            msg = []
        else:
            out.append(("cmd", line))
    if msg is not None:          # DATA without a closing ".": the magic ends the message
        while msg and not msg[-1].strip():
            msg.pop()
        out.append(("message", msg))
    return out


def _stuff(lines: list[str]) -> list[str]:
    return ["." + l if l.startswith(".") else l for l in lines]


# -- the two ways of talking -------------------------------------------------------------------
class _InProcess:
    def __init__(self, host, client: str) -> None:
        from .smtpd.client import Session
        self.s = Session(host, client)

    def banner(self) -> str:
        return self.s.banner

    def send(self, data: bytes) -> str:
        text = self.s._record(self.s.engine.receive(data))
        if self.s.engine.closed:
            self.s._ended()                  # QUIT: qmgr delivers, as after any session
        return text

    @property
    def closed(self) -> bool:
        return self.s.closed

    def close(self) -> None:
        if not self.s.closed:
            self.s.close()


class _Socket:
    """A client on a real TCP connection: reads whole replies (lines up to ``ddd ``)."""

    def __init__(self, address: tuple[str, int], client: str | None, timeout: float) -> None:
        fam = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if client is not None:
            self.sock.bind((client, 0))
        self.sock.connect(address)
        self.buf = b""
        self.closed = False

    def _reply(self) -> str:
        lines: list[bytes] = []
        while True:
            while b"\n" not in self.buf:
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    chunk = None
                if not chunk:
                    self.closed = chunk is not None or self.closed
                    rest, self.buf = self.buf, b""
                    if rest:
                        lines.append(rest)
                    return b"\n".join(lines).decode("utf-8", "surrogateescape")
                self.buf += chunk
            line, _, self.buf = self.buf.partition(b"\n")
            line = line.rstrip(b"\r")
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                text = b"\n".join(lines).decode("utf-8", "surrogateescape")
                if text[:3] in ("221", "421"):
                    self.closed = True
                return text

    def banner(self) -> str:
        return self._reply()

    def send(self, data: bytes) -> str:
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True
            return ""
        return self._reply()

    def close(self) -> None:
        self.sock.close()


def parse_serve_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` of a ``mailsim serve`` to talk to; loopback only.

    >>> parse_serve_address("127.0.0.1:2525"), parse_serve_address("localhost:25")
    (('127.0.0.1', 2525), ('127.0.0.1', 25))
    >>> parse_serve_address("[::1]:2525")
    ('::1', 2525)
    >>> parse_serve_address("192.0.2.1:25")
    Traceback (most recent call last):
    ...
    ValueError: 192.0.2.1: --serve talks only to loopback addresses (127.0.0.0/8, ::1), where mailsim serve listens
    """
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{text}: expected HOST:PORT, e.g. 127.0.0.1:2525")
    host = host.strip("[]") or "127.0.0.1"
    if host.lower() == "localhost":
        host = "127.0.0.1"
    try:
        loop = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loop = False
    if not loop:
        raise ValueError(f"{host}: --serve talks only to loopback addresses (127.0.0.0/8, ::1), "
                         "where mailsim serve listens")
    return host, int(port)


def smtp(host, lines: str | Iterable[str], *, client: str = "127.0.0.1",
         serve: str | None = None, timeout: float = 5.0) -> Transcript:
    """Run one SMTP connection: the commands in ``lines`` against ``host`` (in-process),
    or, with ``serve="127.0.0.1:PORT"``, against ``mailsim serve`` on a loopback socket
    (then ``host`` may be None, and ``client``, when not the default, is the loopback
    address the connection comes from).

    See the module docstring for the rules of ``lines``.

    >>> import tempfile
    >>> from mailsim import init_host
    >>> h = init_host(tempfile.mkdtemp() + "/mx", users=["alice"])
    >>> print(smtp(h, ["MAIL FROM:<b@example.org>", "RCPT TO:<alice@example.com>",
    ...               "DATA", "Subject: hi", "", ".dot", "."]))
    S: 220 mail.example.com ESMTP Postfix (Debian/GNU)
    C: MAIL FROM:<b@example.org>
    S: 250 2.1.0 Ok
    C: RCPT TO:<alice@example.com>
    S: 250 2.1.5 Ok
    C: DATA
    S: 354 End data with <CR><LF>.<CR><LF>
    C: Subject: hi
    C:
    C: ..dot
    C: .
    S: 250 2.0.0 Ok: queued as 000891600A4
    """
    if serve is not None:
        addr = parse_serve_address(serve)
        src = None if client == "127.0.0.1" else client
        if src is not None and not ipaddress.ip_address(src).is_loopback:
            raise ValueError(f"{client}: on a socket the client address is the loopback address "
                             "the connection comes from (127.0.0.0/8)")
        conn: _InProcess | _Socket = _Socket(addr, src, timeout)
    else:
        if host is None:
            raise ValueError("no host: pass a Host, or serve='127.0.0.1:PORT'")
        conn = _InProcess(host, client)
    t = Transcript()

    def record(who: str, text: str) -> None:
        if text:
            t.entries.append((who, text))

    try:
        record("S", conn.banner())
        engine = getattr(getattr(conn, "s", None), "engine", None)
        if engine is not None and getattr(engine, "fatal", None):
            record("#", f"no greeting: smtpd exited at startup (fatal: {engine.fatal}); see the maillog")
        cmds = _commands(lines)
        data_ok = False
        for n, (kind, item) in enumerate(cmds):
            if conn.closed:
                left = sum(1 if k != "message" else len(v) + 1 for k, v in cmds[n:])
                record("#", f"connection closed by the server: {left} line(s) not sent")
                break
            if kind == "message":
                body = _stuff(list(item))  # type: ignore[arg-type]
                if not data_ok:
                    record("#", "message not sent: the server did not answer DATA with 354")
                    continue
                wire = "".join(l + "\r\n" for l in body) + ".\r\n"
                t.entries.append(("C", "\n".join(body + ["."])))
                record("S", conn.send(wire.encode("utf-8", "surrogateescape")))
                continue
            line = str(item)
            t.entries.append(("C", line))
            reply = conn.send((line + "\r\n").encode("utf-8", "surrogateescape"))
            record("S", reply)
            data_ok = kind == "data" and reply.startswith("354")
    finally:
        conn.close()
    return t


# -- IPython -------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="%%smtp", add_help=False, exit_on_error=False,
                                description="Run an SMTP dialogue against a simulated host.")
    p.add_argument("hostvar", nargs="?", default="host")
    p.add_argument("--client", default="127.0.0.1")
    p.add_argument("--serve", default=None)
    return p


try:  # IPython is there in every notebook; the plain function works without it
    from IPython.core.error import UsageError
    from IPython.core.magic import Magics, cell_magic, magics_class

    @magics_class
    class SMTPMagics(Magics):
        """``%%smtp [HOSTVAR] [--client ADDR] [--serve HOST:PORT]``"""

        @cell_magic
        def smtp(self, line: str, cell: str) -> Transcript:
            """Run the cell's lines as one SMTP connection; see :mod:`mailsim.magic`."""
            try:
                args = _parser().parse_args(shlex.split(line))
            except (argparse.ArgumentError, SystemExit, ValueError) as e:
                raise UsageError(f"%%smtp [HOSTVAR] [--client ADDR] [--serve HOST:PORT]: {e}")
            host = None
            if args.serve is None:
                ns = self.shell.user_ns
                if args.hostvar not in ns:
                    raise UsageError(f"%%smtp: no variable {args.hostvar!r}: create a host first, "
                                     f"e.g. {args.hostvar} = init_host('lab/mx')")
                host = ns[args.hostvar]
                if not hasattr(host, "session"):
                    raise UsageError(f"%%smtp: {args.hostvar} is a {type(host).__name__}, not a Host")
            try:
                ipaddress.ip_address(args.client)
                return smtp(host, cell, client=args.client, serve=args.serve)
            except ValueError as e:
                raise UsageError(f"%%smtp: {e}")
            except OSError as e:
                raise UsageError(f"%%smtp: cannot talk to {args.serve}: {e.strerror or e} "
                                 "(is 'mailsim serve' running there?)")

except ImportError:  # pragma: no cover
    SMTPMagics = None  # type: ignore[assignment,misc]


def load_ipython_extension(ipython) -> None:
    """``%load_ext mailsim`` (or ``%load_ext mailsim.magic``): register ``%%smtp``."""
    ipython.register_magics(SMTPMagics)
