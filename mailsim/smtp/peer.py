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

STARTTLS: a script whose EHLO reply lists ``STARTTLS`` answers that
command with :attr:`Script.starttls` (``220 2.0.0 Ready to start TLS``);
then, with a server-side :class:`ssl.SSLContext` given as ``tls=``, the
connection turns into TLS (``after_starttls = "handshake"``), or the peer
breaks the handshake on purpose: ``"garbage"`` (it writes plain text where
the TLS server hello belongs, and hangs up) or ``"close"`` (it hangs up).
The transcript gets one step ``{"client": "", "server": "", "tls": ...}``
with the outcome (``TLSv1.3 TLS_AES_256_GCM_SHA384``, ``failed: REASON``,
``garbage``, ``close``); the steps after it show the decrypted dialogue.
(``tools/record_smtp_tls.py``, ``tests/golden/smtp-tls/``.)
AUTH: a script with ``auth`` (users and passwords) answers ``AUTH PLAIN``,
``AUTH LOGIN`` and ``AUTH CRAM-MD5`` as a SASL server would (``334``
challenges, ``235`` or ``535``); the transcript shows the client's base64
lines (``tools/record_smtp_sasl.py``, ``tests/golden/smtp-sasl/``).
:class:`ScriptedEngine` is the same peer without a socket: an smtpd-like
engine (``greeting()``, ``receive(bytes) -> bytes``) for in-memory
channels, its TLS on :class:`ssl.MemoryBIO`.

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

import base64
import hashlib
import hmac
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

__all__ = ["Script", "ScriptedServer", "ScriptedEngine", "DEFAULT_EHLO", "GARBAGE",
           "AUTH_DEFAULTS"]

#: what a peer with ``after_starttls = "garbage"`` writes instead of a TLS server hello
GARBAGE = b"220 this is not TLS\r\n"

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
    right after the greeting. ``starttls`` is the reply to STARTTLS;
    after a 2xx, ``after_starttls`` says what happens: ``"handshake"``
    (TLS, with the server's ``tls`` context), ``"garbage"`` or ``"close"``.

    ``auth`` (None: AUTH is answered with ``other``) makes the peer a SASL
    server for PLAIN, LOGIN and CRAM-MD5 (RFC 4954; list them in ``ehlo`` as
    ``AUTH PLAIN LOGIN``): ``{"users": {"name": "password"}, "ok": "235 ...",
    "fail": "535 ...", "challenge": "<...>"}`` (the CRAM-MD5 challenge, fixed
    so that recordings repeat) -- see :data:`AUTH_DEFAULTS`; ``"reply"``
    answers every AUTH with that reply at once (``454 4.7.0 ...``).
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
    starttls: str = "220 2.0.0 Ready to start TLS"
    after_starttls: str = "handshake"
    auth: dict | None = None

    def to_dict(self) -> dict:
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items()}
        if d["auth"] is None:            # the recordings made before AUTH have no such key
            del d["auth"]
        return d

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


#: what a script's ``auth`` does unless it says otherwise
AUTH_DEFAULTS = {"users": {}, "ok": "235 2.7.0 Authentication successful",
                 "fail": "535 5.7.8 Error: authentication failed: authentication failure",
                 "challenge": "<1896.697170952@peer.example>"}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


class _Auth:
    """One AUTH exchange (server side): the mechanism and what the client said so far."""

    def __init__(self, opts: dict, mech: str) -> None:
        self.opts = {**AUTH_DEFAULTS, **opts}
        self.mech = mech
        self.user: str | None = None

    def first(self, initial: str | None) -> tuple[str, bool]:
        """The reply to ``AUTH MECH [initial]``; (reply, exchange done)."""
        if self.mech == "PLAIN":
            return ("334 ", False) if initial is None else self.step(initial)
        if self.mech == "LOGIN":
            if initial is None:
                return "334 " + _b64("Username:"), False
            return self.step(initial)
        if self.mech == "CRAM-MD5":
            if initial is not None:
                return "501 5.5.4 Syntax error in parameters", True
            return "334 " + _b64(self.opts["challenge"]), False
        return "535 5.7.8 Error: authentication failed: Invalid authentication mechanism", True

    def step(self, line: str) -> tuple[str, bool]:
        """The reply to one client response line."""
        if line == "*":
            return "501 5.7.0 Authentication aborted", True
        try:
            data = base64.b64decode(line.encode("ascii"), validate=True).decode("utf-8")
        except (ValueError, UnicodeError):
            return "501 5.5.2 Cannot decode response", True
        users = self.opts["users"]
        if self.mech == "PLAIN":
            parts = data.split("\0")
            ok = len(parts) == 3 and users.get(parts[1]) == parts[2] \
                and parts[0] in ("", parts[1])
        elif self.mech == "LOGIN":
            if self.user is None:
                self.user = data
                return "334 " + _b64("Password:"), False
            ok = users.get(self.user) == data
        else:                                # CRAM-MD5: "user hexdigest"
            user, _, digest = data.rpartition(" ")
            key = users.get(user)
            ok = key is not None and hmac.compare_digest(digest, hmac.new(
                key.encode(), self.opts["challenge"].encode(), hashlib.md5).hexdigest())
        return (self.opts["ok"] if ok else self.opts["fail"]), True


class _Conversation:
    """One connection: the script applied to the client's input."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.in_data = False
        self.closing = False
        self.start_tls = False           # STARTTLS was accepted: switch after the reply
        self.auth: _Auth | None = None   # an AUTH exchange in progress

    def ehlo_reply(self) -> str:
        e = self.script.ehlo
        if isinstance(e, str):
            return e
        return "\n".join(["250 " + e[0], *e[1:]]) if len(e) > 1 else "250 " + e[0]

    def answer(self, line: str) -> str | None:
        """The reply to one command line (without CRLF); None: hang up now."""
        s = self.script
        if self.auth is not None:        # a response line of the AUTH exchange
            reply, done = self.auth.step(line)
            if done:
                self.auth = None
            return reply
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
        if verb == "AUTH" and s.auth is not None:
            if "reply" in s.auth:
                return s.auth["reply"]
            words = line.split()
            if len(words) < 2:
                return "501 5.5.4 Syntax: AUTH mechanism"
            auth = _Auth(s.auth, words[1].upper())
            reply, done = auth.first(words[2] if len(words) > 2 else None)
            if not done:
                self.auth = auth
            return reply
        if verb == "STARTTLS":
            if s.starttls.startswith("2"):
                self.start_tls = True
            return s.starttls
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
            if self.start_tls:           # what was pipelined after STARTTLS is dropped
                buf.clear()
                break
        return out


def _outcome(tls) -> str:
    """``TLSv1.3 TLS_AES_256_GCM_SHA384``: the protocol and cipher a handshake agreed on."""
    return f"{tls.version()} {tls.cipher()[0]}"


class ScriptedServer:
    """A loopback SMTP server answering by :class:`Script`; ``sessions`` holds
    one transcript per connection: a list of ``{"client": str, "server": str}``
    steps (latin-1 text), the last one with ``"closed": "client"|"server"``.
    """

    def __init__(self, script: Script | None = None, host: str = "127.0.0.1", port: int = 0,
                 *, read_timeout: float = 30.0, tls: ssl.SSLContext | None = None) -> None:
        self.script = script or Script()
        self.sessions: list[list[dict]] = []
        self.read_timeout = read_timeout
        self.tls = tls
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
                except (socket.timeout, OSError):   # ssl.SSLError is an OSError
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
                if conv.start_tls:
                    conv.start_tls = False
                    conn, outcome = self._start_tls(conn)
                    steps.append({"client": "", "server": "", "tls": outcome})
                    if conn is None:
                        steps[-1]["closed"] = "server"
                        return
                    buf = bytearray()
        finally:
            if conn is not None:
                try:
                    conn.close()
                except OSError:
                    pass
            with self._lock:
                self._active -= 1

    def _start_tls(self, conn: socket.socket) -> tuple[socket.socket | None, str]:
        """Turn the connection into TLS as the script says; (the new socket or None, outcome)."""
        how = self.script.after_starttls
        if how == "handshake" and self.tls is None:
            how = "close"                  # no certificate to offer: nothing to shake hands with
        if how == "garbage":
            try:
                conn.settimeout(5.0)
                conn.recv(65536)             # the client hello
                conn.sendall(GARBAGE)
                # wait for the client to give up (its alert, then EOF): hanging up at
                # once could reset the connection before the client reads the garbage
                while conn.recv(65536):
                    pass
            except OSError:
                pass
        if how == "close":
            # FIN first, then read what the client still sends (its hello) until it hangs
            # up: closing with unread data would reset the connection, and the client
            # would see "Connection reset by peer" instead of Postfix's "lost connection"
            try:
                conn.shutdown(socket.SHUT_WR)
                conn.settimeout(5.0)
                while conn.recv(65536):
                    pass
            except OSError:
                pass
        if how != "handshake":
            conn.close()
            return None, how
        try:
            tconn = self.tls.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as e:
            conn.close()
            return None, f"failed: {getattr(e, 'reason', None) or e}"
        return tconn, _outcome(tconn)


class ScriptedEngine:
    """The scripted peer as an in-memory engine (the interface of mailsim's smtpd
    session that :class:`~mailsim.smtp.connect.HostConnector` channels talk to):
    ``greeting()``, ``receive(bytes) -> bytes``, ``closed``, ``lost()``. After
    STARTTLS the bytes in and out are TLS records (:class:`ssl.MemoryBIO`).
    ``steps`` is the transcript, as one session of :class:`ScriptedServer`.

    >>> e = ScriptedEngine(Script(greeting="220 peer.example ESMTP"))
    >>> e.greeting()
    b'220 peer.example ESMTP\\r\\n'
    >>> e.receive(b"HELO me\\r\\n"), e.receive(b"QUIT\\r\\n"), e.closed
    (b'250 peer.example\\r\\n', b'221 2.0.0 Bye\\r\\n', True)
    """

    def __init__(self, script: Script | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.script = script or Script()
        self.tls = tls
        self.conv = _Conversation(self.script)
        self.steps: list[dict] = []
        self.closed = False
        self._buf = bytearray()
        self._pending = bytearray()
        self._tls: ssl.SSLObject | None = None
        self._in = self._out = None
        self._handshaking = False
        self._garbage = False

    def greeting(self) -> bytes:
        g = self.script.greeting
        self.steps.append({"client": "", "server": g + "\n" if g is not None else ""})
        if self.script.close_after == "GREETING":
            self.steps[-1]["closed"] = "server"
            self.closed = True
        return _wire(g) if g is not None else b""

    def lost(self) -> None:
        if not self.closed:
            self.steps.append({"client": self._pending.decode("latin-1"), "server": "",
                               "closed": "client"})
            self.closed = True

    def receive(self, data: bytes) -> bytes:
        if self.closed:
            return b""
        if self._garbage:
            self.steps.append({"client": "", "server": "", "tls": "garbage", "closed": "server"})
            self.closed = True
            return GARBAGE
        if self._tls is None:
            return self._plain(data)
        self._in.write(data)
        if self._handshaking:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                return self._out.read()
            except ssl.SSLError as e:
                self.steps.append({"client": "", "server": "",
                                   "tls": f"failed: {e.reason or e}", "closed": "server"})
                self.closed = True
                return self._out.read()
            self._handshaking = False
            self.steps.append({"client": "", "server": "", "tls": _outcome(self._tls)})
        clear = bytearray()
        while True:
            try:
                chunk = self._tls.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLError:        # close_notify, or a broken record: the client is gone
                chunk = b""
            if not chunk:
                self.lost()
                return self._out.read()
            clear += chunk
        if clear:
            reply = self._plain(bytes(clear))
            if reply:
                self._tls.write(reply)
        return self._out.read()

    def _plain(self, data: bytes) -> bytes:
        self._pending += data
        self._buf += data
        replies = self.conv.feed(self._buf)
        if not replies:
            return b""
        said = [r for r in replies if r is not None]
        step = {"client": self._pending.decode("latin-1"),
                "server": "".join(r + "\n" for r in said)}
        self.steps.append(step)
        self._pending = bytearray()
        wire = b"".join(_wire(r) for r in said)
        if self.conv.closing:
            step["closed"] = "server"
            self.closed = True
        elif self.conv.start_tls:
            self.conv.start_tls = False
            self._buf = bytearray()
            how = self.script.after_starttls
            if how == "handshake" and self.tls is None:
                how = "close"
            if how == "handshake":
                self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
                self._tls = self.tls.wrap_bio(self._in, self._out, server_side=True)
                self._handshaking = True
            elif how == "garbage":           # answer the client hello with plain text
                self._garbage = True
            else:
                self.steps.append({"client": "", "server": "", "tls": how, "closed": "server"})
                self.closed = True
        return wire
