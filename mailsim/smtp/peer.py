"""A scripted SMTP server that records every byte an SMTP client sends.

Not a Postfix component: a test and teaching peer for smtp(8). It listens on
a loopback port, answers each command with the reply its :class:`Script`
names (so a lab or a test can make the next hop say ``550`` to one recipient,
``421`` in the greeting, or nothing at all), and keeps a transcript of every
connection as *steps*: the bytes the client sent since the server last
wrote, then what the server wrote back. A pipelining client shows up as one
step with several commands in it, which is exactly what a learner should see.

The same peer recorded real Postfix 3.7.11's client
(``tools/record_smtp_client.py``), so mailsim's client is compared with
Postfix's byte for byte (``tests/test_smtp.py``).

Standard library only (the recorder runs it under the system's python3).

Examples
--------
>>> import socket
>>> with ScriptedServer(Script(greeting="220 peer.example ESMTP")) as srv:
...     with socket.create_connection(("127.0.0.1", srv.port)) as c:
...         _ = c.recv(100)
...         c.sendall(b"EHLO me.example\\r\\n")
...         print(c.recv(200).decode().replace("\\r", ""), end="")
...         c.sendall(b"QUIT\\r\\n")
...         _ = c.recv(100)
...     srv.wait_idle()
...     [s["client"] for s in srv.sessions[0]]
250-peer.example
250-PIPELINING
250-SIZE 10240000
250-ENHANCEDSTATUSCODES
250-8BITMIME
250-DSN
250 SMTPUTF8
['', 'EHLO me.example\\r\\n', 'QUIT\\r\\n']
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

__all__ = ["Script", "ScriptedServer", "DEFAULT_EHLO"]

#: what the peer offers after EHLO unless a script says otherwise
DEFAULT_EHLO = ("peer.example", "PIPELINING", "SIZE 10240000", "ENHANCEDSTATUSCODES",
                "8BITMIME", "DSN", "SMTPUTF8")


@dataclass
class Script:
    """How the peer answers. A reply is the text of one reply, lines joined by
    ``\\n`` (``"250 2.1.0 Ok"``); ``None`` means "say nothing" (a silent
    server, for timeouts).

    ``ehlo`` is either the list of lines of a 250 reply or a whole reply
    such as ``"502 5.5.2 Error: command not recognized"``. ``rcpt`` maps a
    lower-case address to its reply; other recipients get ``rcpt_default``.
    ``close_after`` names a command (``"MAIL"``, ``"DATA"``, ``"."``) after
    which the server hangs up without replying; ``"GREETING"`` hangs up
    right after the greeting.
    """
    greeting: str | None = "220 peer.example ESMTP"
    ehlo: tuple[str, ...] | list[str] | str = DEFAULT_EHLO
    helo: str = "250 peer.example"
    mail: str = "250 2.1.0 Ok"
    rcpt: dict[str, str] = field(default_factory=dict)
    rcpt_default: str = "250 2.1.5 Ok"
    data: str = "354 End data with <CR><LF>.<CR><LF>"
    dot: str = "250 2.0.0 Ok: queued as 4A1B2C3D4E"
    rset: str = "250 2.0.0 Ok"
    quit: str = "221 2.0.0 Bye"
    other: str = "502 5.5.2 Error: command not recognized"
    close_after: str | None = None

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Script":
        return cls(**d)


def _wire(reply: str) -> bytes:
    """``"250 a\\nb"`` -> ``250-a / 250 b`` on the wire (a multi-line reply)."""
    lines = reply.split("\n")
    code = lines[0][:3]
    out = [lines[0] if len(lines) == 1 else code + "-" + lines[0][4:]]
    for i, ln in enumerate(lines[1:], 1):
        sep = " " if i == len(lines) - 1 else "-"
        out.append(code + sep + ln)
    return ("".join(x + "\r\n" for x in out)).encode("latin-1")


class _Conversation:
    """One connection: the script applied to the client's input."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.in_data = False
        self.closing = False

    def ehlo_reply(self) -> str:
        e = self.script.ehlo
        if isinstance(e, str):
            return e
        return "\n".join(["250 " + e[0], *e[1:]]) if len(e) > 1 else "250 " + e[0]

    def answer(self, line: str) -> str | None:
        """The reply to one command line (without CRLF); None: hang up now."""
        s = self.script
        verb = line.split(" ", 1)[0].upper()
        key = "MAIL" if verb == "MAIL" else "RCPT" if verb == "RCPT" else verb
        if s.close_after == key:
            self.closing = True
            return None
        if verb == "EHLO":
            return self.ehlo_reply()
        if verb == "HELO":
            return s.helo
        if verb == "MAIL":
            return s.mail
        if verb == "RCPT":
            addr = line.partition(":")[2].split(" ", 1)[0].strip().strip("<>").lower()
            return s.rcpt.get(addr, s.rcpt_default)
        if verb == "DATA":
            if s.data.startswith("354"):
                self.in_data = True
            return s.data
        if verb == "RSET":
            return s.rset
        if verb == "QUIT":
            self.closing = True
            return s.quit
        if verb == "NOOP":
            return "250 2.0.0 Ok"
        return s.other

    def feed(self, buf: bytearray) -> list[str | None]:
        """Consume every complete command (or message) in ``buf``; the replies."""
        out: list[str | None] = []
        while not self.closing:
            if self.in_data:
                end = buf.find(b"\r\n.\r\n")
                if buf.startswith(b".\r\n"):
                    end, skip = 0, 3
                elif end < 0:
                    break
                else:
                    skip = end + 5
                del buf[:skip]
                self.in_data = False
                if self.script.close_after == ".":
                    self.closing = True
                    out.append(None)
                    break
                out.append(self.script.dot)
                continue
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line = bytes(buf[:nl]).rstrip(b"\r").decode("latin-1")
            del buf[:nl + 1]
            r = self.answer(line)
            out.append(r)
            if r is None:
                break
        return out


class ScriptedServer:
    """A loopback SMTP server answering by :class:`Script`; ``sessions`` holds
    one transcript per connection: a list of ``{"client": str, "server": str}``
    steps (latin-1 text), the last one with ``"closed": "client"|"server"``.
    """

    def __init__(self, script: Script | None = None, host: str = "127.0.0.1", port: int = 0,
                 *, read_timeout: float = 30.0) -> None:
        self.script = script or Script()
        self.sessions: list[list[dict]] = []
        self.read_timeout = read_timeout
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(16)
        self.host, self.port = self._sock.getsockname()[:2]
        self._active = 0
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def __enter__(self) -> "ScriptedServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop = True
        try:                             # wakes the thread blocked in accept()
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no connection is open (the client went away)."""
        end = time.monotonic() + timeout
        time.sleep(0.01)
        while time.monotonic() < end:
            with self._lock:
                if self._active == 0:
                    return
            time.sleep(0.01)

    def _accept_loop(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._active += 1
                steps: list[dict] = []
                self.sessions.append(steps)
            threading.Thread(target=self._serve, args=(conn, steps), daemon=True).start()

    def _serve(self, conn: socket.socket, steps: list[dict]) -> None:
        conv = _Conversation(self.script)
        buf = bytearray()
        pending = bytearray()            # client bytes since the server last wrote
        conn.settimeout(self.read_timeout)
        try:
            g = self.script.greeting
            if g is not None:
                conn.sendall(_wire(g))
            steps.append({"client": "", "server": g + "\n" if g is not None else ""})
            if self.script.close_after == "GREETING":
                steps[-1]["closed"] = "server"
                return
            while True:
                try:
                    chunk = conn.recv(65536)
                except (socket.timeout, OSError):
                    chunk = b""
                if not chunk:
                    if pending or not steps[-1].get("closed"):
                        steps.append({"client": pending.decode("latin-1"), "server": "",
                                      "closed": "client"})
                    return
                pending += chunk
                buf += chunk
                replies = conv.feed(buf)
                if not replies:
                    continue
                said = [r for r in replies if r is not None]
                wire = b"".join(_wire(r) for r in said)
                step = {"client": pending.decode("latin-1"),
                        "server": "".join(r + "\n" for r in said)}
                steps.append(step)
                pending = bytearray()
                if wire:
                    try:
                        conn.sendall(wire)
                    except OSError:
                        pass
                if conv.closing:           # QUIT answered, or told to hang up
                    step["closed"] = "server"
                    return
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self._lock:
                self._active -= 1
