"""smtp(8)'s delivery of one request: connect, greet, send, and decide what
happened to every recipient (Postfix's smtp_connect.c, smtp_proto.c,
smtp_rcpt.c and smtp_trouble.c).

See :mod:`mailsim.smtp` for what is modelled and the parameters read. The
order of work follows Postfix:

1. for each next hop (a list is allowed) and each of its server addresses:
   connect (``connect to NAME[ADDR]:PORT: Connection refused`` is logged,
   and the next address is tried);
2. the greeting, EHLO (or HELO), the server's extensions;
3. MAIL FROM, one RCPT TO per recipient, DATA -- in one write when the
   server offers PIPELINING -- then the message, ``.``, and QUIT;
4. a recipient is *sent* when the server accepted it and the message,
   *bounced* on a 5xx, *deferred* on a 4xx or when the conversation broke.
   A soft failure with a server that is not the last one keeps the
   recipient for the next server (Postfix logs ``QID: reason`` for that).
   When a server's reply decided (also "sent"), the result carries that
   server's name and reply for bounce(8): ``Remote-MTA: dns; NAME`` and
   ``Diagnostic-Code: smtp; REPLY`` (tests/golden/remote-bounce/).
"""
from __future__ import annotations

import datetime as _dt
import errno
import os
import re
import ssl
from dataclasses import dataclass, field

from ..log_adhoc import log_adhoc
from ..postqueue import queued_size
from ..queue import QueueFile, Recipient
from .addr import LookupFailure, NextHop, ServerAddress, parse_nexthop, resolve, split_nexthops
from .connect import (BUFSIZE, Channel, ChannelError, ChannelLost, ChannelTimeout,
                      ConnectFailure, Connector, SocketConnector)

__all__ = ["SMTPClient", "RcptResult", "ServerReply", "quote_821", "xtext", "data_bytes",
           "message_encoding"]

# The client's send/receive states (Postfix's SMTP_STATE_*; XFORWARD is not simulated).
MAIL, RCPT, DATA, DOT, ABORT, QUIT, LAST = range(7)

#: what Postfix says it was doing when the conversation broke off, per receive state
WHERE = {MAIL: "sending MAIL FROM", RCPT: "sending RCPT TO", DATA: "sending DATA command",
         DOT: "sending end of data -- message may be sent more than once",
         ABORT: "sending final RSET", QUIT: "sending QUIT"}
#: "(in reply to ...)" in a server's rejection
IN_REPLY_TO = {MAIL: "MAIL FROM command", RCPT: "RCPT TO command", DATA: "DATA command",
               DOT: "end of DATA command"}
#: the timeout parameter of each receive state
TIMEOUTS = {MAIL: "smtp_mail_timeout", RCPT: "smtp_rcpt_timeout",
            DATA: "smtp_data_init_timeout", DOT: "smtp_data_done_timeout",
            ABORT: "smtp_rset_timeout", QUIT: "smtp_quit_timeout"}

_DSN = re.compile(r"([245])\.\d{1,3}\.\d{1,3}(?=\s|$)")
_NOTIFY_ORDER = ("NEVER", "SUCCESS", "FAILURE", "DELAY")
_CTE_8BIT = re.compile(rb"^content-transfer-encoding:[ \t]*(8bit|binary)[ \t]*$", re.I | re.M)


@dataclass
class RcptResult:
    """What happened to one recipient (the values of its log line)."""
    recipient: Recipient
    dsn: str                  # "2.0.0", "4.4.1", "5.1.1", ...
    status: str               # "sent" | "deferred" | "bounced"
    text: str                 # the text in the log line's parentheses
    relay: str                # "127.0.0.1[127.0.0.1]:2526" or "none"
    #: sent to a server without DSN although the sender asked NOTIFY=SUCCESS:
    #: Postfix then sends the sender a "relayed" notice (bounce(8)'s job)
    relayed_notice: bool = False
    #: the DSN's Remote-MTA (``dns; mx1.example.org``: the server's name) and
    #: Diagnostic-Code (``smtp; 550 5.1.1 ...``: its reply, lines joined by spaces)
    #: when a server's reply decided the outcome; None when smtp(8) itself did
    #: (connection, lookup, timeout, size or SMTPUTF8 trouble)
    remote_mta: str | None = None
    diagnostic: str | None = None


@dataclass(frozen=True)
class ServerReply:
    """A server reply as smtp(8) sees it: the code and the reply lines."""
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """All lines on one line, as Postfix logs a reply."""
        return " ".join(self.lines)

    @property
    def dsn(self) -> str:
        """The enhanced status code of the last line, or ``X.0.0`` from the code.

        >>> ServerReply(550, ("550 No such user",)).dsn, ServerReply(451, ("451 4.3.0 x",)).dsn
        ('5.0.0', '4.3.0')
        """
        first = str(self.code)[:1]
        if first not in "245" or self.code < 100:
            return "5.5.0"
        m = _DSN.match(self.lines[-1][4:].lstrip(" "))
        return m.group(0) if m and m.group(1) == first else first + ".0.0"


@dataclass
class _Why:
    """Postfix's DSN buffer: the status and the reason of the latest failure, and
    -- when a server's reply caused it (vsmtp_fill_dsn() with an MTA name) -- that
    server's name and reply, for the DSN's Remote-MTA and Diagnostic-Code."""
    dsn: str
    reason: str
    mta: str | None = None         # the server's name as smtp(8) found it (iter->host)
    reply: str | None = None       # its reply, the lines joined by spaces

    @property
    def remote_mta(self) -> str | None:
        return f"dns; {self.mta}" if self.mta else None

    @property
    def diagnostic(self) -> str | None:
        return f"smtp; {self.reply}" if self.reply else None


@dataclass
class _Session:
    """One connection to one server."""
    address: ServerAddress
    port: int
    channel: Channel
    features: set[str] = field(default_factory=set)
    size_limit: int = 0
    broken: bool = False      # lost or timed out: no QUIT
    policy: object = None     # the next hop's TLS policy (mailsim.tls.client.TLSPolicy)
    tls_nexthop: str = ""     # the next-hop domain for nexthop/dot-nexthop matching
    tls: object = None        # PeerInfo once TLS is on
    retry_plain: bool = False  # Postfix's RETRY_AS_PLAINTEXT: try this server again without TLS
    tls_matched: bool = False  # the certificate matched (TLS_CERT_IS_MATCHED)
    dest: str = ""            # the next hop as written (Postfix's iter->dest)
    sasl_mechs: str | None = None   # the AUTH mechanisms offered (after the filter)

    @property
    def namaddr(self) -> str:
        return f"{self.address.name}[{self.address.addr}]"

    @property
    def namaddrport(self) -> str:
        return f"{self.namaddr}:{self.port}"


# -- formatting (smtp_misc.c, quote_821_local.c, xtext.c) ------------------------------------

def quote_821(addr: str) -> str:
    """An envelope address with its local part quoted if it is no RFC 821 dot-string.

    >>> quote_821("alice@example.com"), quote_821("john doe@example.com"), quote_821("")
    ('alice@example.com', '"john doe"@example.com', '')
    """
    if not addr:
        return addr
    local, at, domain = addr.rpartition("@")
    if not at:
        local, domain = addr, ""
    specials = set('<>()[]\\,;:@" ')
    dot_string = bool(local) and not local.startswith(".") and not local.endswith(".") \
        and ".." not in local and not any(c in specials or ord(c) < 32 or ord(c) > 126
                                          for c in local)
    if dot_string:
        return addr
    quoted = "".join("\\" + c if c in '\r\n"\\' or ord(c) > 127 else c for c in local)
    return f'"{quoted}"' + (at + domain if at else "")


def xtext(text: str, special: str = "") -> str:
    """RFC 3461 xtext: ``+XX`` for ``+``, ``special``, controls, space and non-ASCII.

    >>> xtext("env+id=1", "+="), xtext("rfc822;a=b@example.org", "=")
    ('env+2Bid+3D1', 'rfc822;a+3Db@example.org')
    """
    out = []
    for b in text.encode("utf-8"):
        c = chr(b)
        out.append(c if c != "+" and 32 < b < 127 and c not in special else f"+{b:02X}")
    return "".join(out)


def _notify(text: str) -> str:
    want = {v.strip().upper() for v in text.split(",") if v.strip()}
    return ",".join(v for v in _NOTIFY_ORDER if v in want)


def message_encoding(qf: QueueFile) -> str:
    """``8bit``, ``7bit`` or ``""``: what the sender declared (cleanup(8)'s rule).

    BODY=8BITMIME / BODY=7BIT from the client, else a Content-Transfer-Encoding
    of 8bit or binary in the message.
    """
    body = (qf.attrs.get("body") or "").upper()
    if body == "8BITMIME":
        return "8bit"
    if body == "7BIT":
        return "7bit"
    return "8bit" if _CTE_8BIT.search(qf.content) else ""


def data_bytes(content: bytes, limit: int) -> tuple[bytes, bool]:
    """The message as sent after DATA: CRLF line ends, a leading ``.`` doubled,
    lines longer than ``limit`` (smtp_line_length_limit, 0 = none) broken
    with CRLF SPACE. Returns the bytes and whether a line was broken.

    >>> data_bytes(b"Subject: x\\n\\n.hidden\\n" + b"a" * 5 + b"\\n", 3)
    (b'Sub\\r\\n je\\r\\n ct\\r\\n : \\r\\n x\\r\\n\\r\\n..hi\\r\\n dd\\r\\n en\\r\\naaa\\r\\n aa\\r\\n', True)
    """
    out = bytearray()
    broke = False
    lines = content.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for line in lines:
        space_left = limit
        data = line
        while True:
            if space_left == limit and data.startswith(b"."):
                out += b"."
            if limit > 0 and len(data) >= space_left:
                out += data[:space_left] + b"\r\n"
                data = data[space_left:]
                space_left = limit
                if not data:
                    break
                out += b" "
                space_left -= 1
                broke = True
            else:
                out += data + b"\r\n"
                break
    return bytes(out), broke


def _after_keyword(text: str) -> str:
    """What follows an EHLO keyword (``AUTH PLAIN LOGIN``, ``AUTH=PLAIN``): mystrtok()'s
    rest after the keyword and one delimiter."""
    t = text.lstrip(" \t=")
    m = re.search(r"[ \t=]", t)
    return t[m.end():] if m else ""


def _non_ascii(text: str | bytes) -> bool:
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    return any(b > 127 for b in data)


class SMTPClient:
    """smtp(8) of one host: delivers queue files to SMTP servers and logs as Postfix.

    ``transport`` is the master.cf service name (``smtp``, ``relay``), which
    names the log lines (``postfix/relay/smtp``). ``connector`` defaults to
    real loopback sockets; ``resolver`` to :func:`mailsim.smtp.addr.resolve`.
    """

    def __init__(self, host, *, transport: str = "smtp", connector: Connector | None = None,
                 resolver=None) -> None:
        self.host = host
        self.transport = transport
        self.daemon = transport if transport == "smtp" else f"{transport}/smtp"
        self.connector = connector or SocketConnector(host.conf.get("smtp_bind_address") or "")
        self.resolver = resolver or resolve
        self.pid = host.next_pid()

    def deliver(self, qf: QueueFile, recipients: list[Recipient], nexthop: str, *,
                active: float, pid: int | None = None) -> list[RcptResult]:
        """Deliver ``qf`` to ``recipients`` via ``nexthop``; one result per recipient."""
        if not recipients:
            return []
        d = _Delivery(self, qf, list(recipients), nexthop, active, pid or self.pid)
        d.run()
        return d.results


class _Delivery:
    """One delivery request (Postfix's SMTP_STATE with its DELIVER_REQUEST)."""

    def __init__(self, client: SMTPClient, qf: QueueFile, recipients: list[Recipient],
                 nexthop: str, active: float, pid: int) -> None:
        self.c = client
        self.host = client.host
        self.conf = client.host.conf
        self.qf = qf
        self.nexthop = nexthop
        self.pid = pid
        self.todo = recipients                   # recipients left to deliver
        self.marks: list[str | None] = [None] * len(recipients)   # None, "keep", "drop"
        self.results: list[RcptResult] = []
        self.why: _Why | None = None
        self.final_server = False
        self.t_active = active
        self.t_handoff = self.host.clock.now()
        self.t_conn: float | None = None         # connection set-up done (MAIL FROM)
        self.t_done: float | None = None         # end of delivery
        self.size = queued_size(qf)
        self.encoding = message_encoding(qf)
        self.logged_line_break = False

    # -- logging ------------------------------------------------------------------------------
    def info(self, text: str) -> None:
        self.host.log.write(self.c.daemon, self.pid, text)

    def warn(self, text: str) -> None:
        self.info(f"warning: {text}")

    def _record(self, i: int, dsn: str, status: str, text: str, relay: str,
                relayed_notice: bool = False, why: _Why | None = None) -> None:
        rcpt = self.todo[i]
        log_status = status
        if status == "bounced" and self.conf.bool("soft_bounce"):
            dsn, status, log_status = "4" + dsn[1:], "deferred", "SOFTBOUNCE"
        log_adhoc(self.host, self.c.daemon, self.pid, self.qf, rcpt.address, rcpt.orig, relay,
                  text, dsn, log_status, active=self.t_active, conn=self.t_handoff,
                  xfer=self.t_conn, done=self.t_done)
        self.results.append(RcptResult(rcpt, dsn, status, text, relay, relayed_notice,
                                       why.remote_mta if why else None,
                                       why.diagnostic if why else None))
        self.marks[i] = "drop"

    # -- the policy for failures (smtp_trouble.c) ---------------------------------------------------
    def _fill(self, session: _Session | None, dsn: str, reason: str,
              reply: ServerReply | None) -> _Why:
        """vsmtp_fill_dsn(): ``reply`` is the server's reply that caused the failure
        (its name and the reply go into the DSN); None when smtp(8) decided."""
        mta = text = None
        if reply is not None and session is not None:
            mta, text = session.address.name, reply.text
            if dsn[:1] not in ("4", "5"):
                dsn, reason = "5.5.0", "Protocol error: " + reason
        self.why = _Why(dsn, reason, mta, text)
        return self.why

    def _soft(self, why: _Why) -> bool:
        return why.dsn.startswith("4") or (why.dsn.startswith("5") and self.conf.bool("soft_bounce"))

    def bulk_fail(self, session: _Session | None) -> None:
        """Defer or bounce every recipient still open (or keep them for the next server)."""
        why = self.why
        if self._soft(why) and not self.final_server:
            self.info(f"{self.qf.queue_id}: {why.reason}")
            for i, m in enumerate(self.marks):
                if m is None:
                    self.marks[i] = "keep"
            return
        now = self.host.clock.now()
        if self.t_conn is None:
            self.t_conn = now
        self.t_done = now
        relay = session.namaddrport if session else "none"
        status = "deferred" if why.dsn.startswith("4") else "bounced"
        for i, m in enumerate(self.marks):
            if m is None:
                self._record(i, why.dsn, status, why.reason, relay, why=why)

    def site_fail(self, session: _Session, reply: ServerReply | None, reason: str,
                  dsn: str | None = None) -> None:
        self._fill(session, dsn or (reply.dsn if reply else "4.0.0"), reason, reply)
        self.bulk_fail(session)

    def rcpt_fail(self, i: int, session: _Session, reply: ServerReply, reason: str) -> None:
        why = self._fill(session, reply.dsn, reason, reply)
        if self._soft(why) and not self.final_server:
            self.info(f"{self.qf.queue_id}: {why.reason}")
            self.marks[i] = "keep"
            return
        status = "deferred" if why.dsn.startswith("4") else "bounced"
        self._record(i, why.dsn, status, why.reason, session.namaddrport, why=why)

    def rcpt_done(self, i: int, session: _Session, reply: ServerReply) -> None:
        notify = {v.upper() for v in (self.todo[i].notify or "").split(",")}
        notice = "SUCCESS" in notify and "DSN" not in session.features
        # smtp_rcpt_done(): the server's name and reply go into the DSN as for failures
        self._record(i, reply.dsn, "sent", reply.text, session.namaddrport, notice,
                     _Why(reply.dsn, reply.text, session.address.name, reply.text))

    def stream_except(self, session: _Session, exc: ChannelError, where: str) -> None:
        session.broken = True
        if isinstance(exc, ChannelTimeout):
            self.why = _Why("4.4.2", f"conversation with {session.namaddr} timed out while {where}")
        else:
            self.why = _Why("4.4.2", f"lost connection with {session.namaddr} while {where}")
        # PLAINTEXT_FALLBACK_OK_AFTER_TLS_SESSION_FAILURE: opportunistic TLS broke
        # after the handshake, and some recipient is still open: try again in plaintext
        if session.tls is not None and any(m is None for m in self.marks) \
                and self.plaintext_fallback_ok(session):
            self.retry_as_plaintext(session)
        self.bulk_fail(session)

    # -- SASL AUTH to the server (smtp_sasl_proto.c, smtp_sasl_glue.c; mailsim.smtp.sasl) --------
    def sasl_helo_auth(self, session: _Session, words: str) -> None:
        """An AUTH line of the EHLO reply: remember the mechanisms that pass the filter."""
        from .sasl import mech_filter
        mechs = mech_filter(self.conf.get("smtp_sasl_mechanism_filter") or "", words)
        if session.sasl_mechs is not None:      # several AUTH lines: join the lists
            if session.sasl_mechs.lower() != mechs.lower() and mechs \
                    and len(session.sasl_mechs) < self.conf.int("line_length_limit"):
                session.sasl_mechs += " " + mechs
            return
        if mechs:
            session.sasl_mechs = mechs
        elif words:
            self.warn(f"{session.namaddrport} offered no supported AUTH mechanisms: '{words}'")
        else:
            self.warn(f"{session.namaddrport} offered null AUTH mechanism list")
        session.features.add("AUTH")

    def sasl_passwd_lookup(self, session: _Session) -> tuple[str, str] | None:
        """smtp_sasl_passwd_lookup(): (user, password) for this server, or None. The sender
        (smtp_sender_dependent_authentication), then the server's name, then the next hop
        as written. A table that fails raises MapError."""
        from ..mail_addr_find import search_keys
        maps = [self.host.open_map(spec) for spec in self.conf.list("smtp_sasl_password_maps")]

        def find(key: str) -> str | None:
            for m in maps:
                v = m.lookup(key)
                if v is not None:
                    return v
            return None

        value = None
        if self.conf.bool("smtp_sender_dependent_authentication") and self.qf.sender:
            for key in search_keys(self.qf.sender, delimiter=self.conf.get(
                    "recipient_delimiter") or "", local=False):
                value = find(key)
                if value is not None:
                    break
        for key in (session.address.name, session.dest):
            if value is None:
                value = find(key)
        if value is None:
            return None
        user, _, password = value.partition(":")
        return user, password

    def have_sasl_credentials(self, session: _Session) -> bool:
        from ..maps import MapError
        if not (self.conf.bool("smtp_sasl_auth_enable")
                and (self.conf.get("smtp_sasl_password_maps") or "").strip()):
            return False
        try:
            return self.sasl_passwd_lookup(session) is not None
        except MapError:
            return False

    def sasl_login(self, session: _Session) -> bool:
        """smtp_sasl_helo_login(): AUTH when the server offers it and a password is known;
        False when the session failed (the recipients are deferred or bounced)."""
        from ..maps import MapError
        if not self.conf.bool("smtp_sasl_auth_enable") or "AUTH" not in session.features:
            return True
        try:
            creds = self.sasl_passwd_lookup(session)
        except MapError as e:
            if getattr(e, "warning", None):
                self.warn(e.warning)
            self.warn(f"{self.qf.queue_id}: smtp_sasl_password_maps lookup error")
            self._fill(session, "4.3.0", f"local data error while talking to {session.namaddr}",
                       None)
            session.broken = True
            self.bulk_fail(session)
            return False
        if creds is None:                   # talk to each other like strangers
            session.features.discard("AUTH")
            return True
        if session.sasl_mechs is None:
            self._fill(session, "4.7.0", "SASL authentication failed: server "
                       f"{session.namaddr} offered no compatible authentication mechanisms "
                       "for this type of connection security", None)
            self.bulk_fail(session)
            return False
        res = self.sasl_authenticate(session, *creds)
        if res <= 0:
            if res != -2:
                self.bulk_fail(session)
            return False
        return True

    def _sasl_cache(self) -> dict | None:
        """The 535 cache of smtp_sasl_auth_cache_name (kept by the host, as Postfix keeps it
        in a proxywrite table that outlives smtp(8) processes)."""
        name = (self.conf.get("smtp_sasl_auth_cache_name") or "").strip()
        if not name:
            return None
        caches = self.host.__dict__.setdefault("_smtp_sasl_auth_cache", {})
        return caches.setdefault(name, {})

    def sasl_authenticate(self, session: _Session, user: str, password: str) -> int:
        """smtp_sasl_authenticate(): 1 authenticated, 0 refused by the server, -1 the
        client gave up (self.why says why), -2 the connection broke (already failed)."""
        from . import sasl
        c = self.conf
        host = session.address.name
        cache = self._sasl_cache()
        now = self.host.clock.now()
        if cache is not None:
            entry = cache.get(f"{host};{user}")
            if entry is not None:
                stamp, pw_hash, dsn, text = entry
                if stamp + c.time("smtp_sasl_auth_cache_time") >= now \
                        and pw_hash == sasl.password_hash(password):
                    if c.bool("smtp_sasl_auth_soft_bounce") and dsn.startswith("5"):
                        dsn = "4" + dsn[1:]
                    self.why = _Why(dsn, f"SASL [CACHED] authentication failed; server {host} "
                                         f"said: {text}", host, text)
                    return 0
                del cache[f"{host};{user}"]
        if session.tls is None:
            opts_param = "smtp_sasl_security_options"
        elif session.tls_matched:
            opts_param = "smtp_sasl_tls_verified_security_options"
        else:
            opts_param = "smtp_sasl_tls_security_options"
        required, bad = sasl.security_flags(c.get(opts_param) or "")
        if bad:
            for w in bad:
                self.warn(f'unknown SASL security options value "{w}" in "{c.get(opts_param)}"')
            self.warn("bad per-session SASL security properties")
            self.info("fatal: SASL per-connection initialization failed")
            session.broken = True
            self.why = _Why("4.3.0", "unknown mail transport error")
            return -1
        mech = sasl.choose(session.sasl_mechs.split(), required)
        if mech is None:
            self.warn("SASL authentication failure: No worthy mechs found")
            self.why = _Why("4.7.0", "SASL authentication failed; cannot authenticate to "
                                     f"server {session.namaddr}: no mechanism available")
            return -1
        ch = session.channel
        pending = sasl.initial_response(mech, user, password)
        try:
            if pending and len(mech) + len(pending) + 8 <= 512:
                ch.send(f"AUTH {mech} {pending}\r\n".encode())
                pending = ""
            else:
                ch.send(f"AUTH {mech}\r\n".encode())
            steps = 0
            r = self.reply(session)
            while r.code // 100 == 3:
                steps += 1
                if steps > 100:
                    self.why = _Why("4.3.0", "SASL authentication failed; authentication "
                                             f"protocol loop with server {session.namaddr}")
                    return -1
                challenge = r.lines[0][4:]
                if pending:
                    if challenge:
                        self.why = _Why("4.7.0", "SASL authentication failed; non-empty "
                                                 f"initial {mech} challenge from server "
                                                 f"{session.namaddr}: {pending}")
                        return -1
                    answer, pending = pending, ""
                else:
                    try:
                        answer = sasl.next_response(mech, steps - 1, challenge, user, password)
                    except sasl.SaslStepError as e:
                        self.why = _Why("4.7.0", "SASL authentication failed; cannot "
                                                 f"authenticate to server {session.namaddr}: {e}")
                        return -1
                ch.send(f"{answer}\r\n".encode())
                r = self.reply(session)
        except ChannelError as e:
            self.stream_except(session, e, "performing the EHLO handshake")
            return -2                        # the session failed already
        if r.code // 100 == 2:
            return 1
        dsn = r.dsn
        if cache is not None and r.code == 535:
            cache[f"{host};{user}"] = (int(now), sasl.password_hash(password), dsn, r.text)
        if c.bool("smtp_sasl_auth_soft_bounce") and r.code // 100 == 5:
            dsn = "4" + dsn[1:]
        self._fill(session, dsn, f"SASL authentication failed; server {session.namaddr} said: "
                                 f"{r.text}", r)
        return 0

    # -- TLS (smtp_proto.c's STARTTLS part, smtp_start_tls(); mailsim.tls.client) ----------------
    def plaintext_fallback_ok(self, session: _Session) -> bool:
        """Level ``may``, and the message waited at least minimal_backoff_time before this
        delivery (Postfix's PREACTIVE_DELAY), and no SASL password for this server
        (HAVE_SASL_CREDENTIALS: a smarthost that wants AUTH over TLS gets no plaintext)."""
        pol = session.policy
        delay = int(self.t_active) - int(self.qf.arrival)
        return pol is not None and pol.level == "may" and \
            delay >= self.conf.time("minimal_backoff_time") and \
            not self.have_sasl_credentials(session)

    def retry_as_plaintext(self, session: _Session) -> None:
        session.retry_plain = True
        self.final_server = False

    def tls_log_mask(self) -> set[str]:
        """smtp_tls_loglevel as tls_log_mask() reads it: a number or names."""
        text = (self.conf.get("smtp_tls_loglevel") or "0").replace(",", " ").lower().split()
        mask: set[str] = set()
        for w in text:
            if w.isdigit():
                n = int(w)
                if n >= 1:
                    mask.add("summary")
                if n >= 2:
                    mask |= {"verbose", "cache", "debug"}
            else:
                mask.add({"routine": "summary"}.get(w, w))
        return mask

    def tls_step(self, session: _Session) -> bool:
        """After EHLO: send STARTTLS (or not) as the policy says; False if the session failed."""
        from ..tls.client import level_number
        pol = session.policy
        f = session.features
        level = level_number(pol.level) if pol is not None else 0
        if "STARTTLS" in f and self.conf.bool("smtp_tls_note_starttls_offer") and level <= 0:
            self.info(f"Host offered STARTTLS: [{session.address.name}]")
        if "STARTTLS" in f and level >= 1:
            ch = session.channel
            ch.set_timeout(self.conf.time("smtp_starttls_timeout"))
            try:
                ch.send(b"STARTTLS\r\n")
                r = self.reply(session)
            except ChannelError as e:
                self.stream_except(session, e, "receiving the STARTTLS response")
                return False
            if r.code // 100 == 2:
                return self.start_tls(session)
            f.discard("STARTTLS")
            if pol.required:
                self.site_fail(session, r, f"TLS is required, but host {session.namaddr} "
                                           f"refused to start TLS: {r.text}")
                return False
        if pol is not None and pol.required and "STARTTLS" not in f:
            self._fill(session, "4.7.4", "TLS is required, but was not offered by host "
                                         f"{session.namaddr}", None)
            self.bulk_fail(session)
            return False
        return True

    def start_tls(self, session: _Session) -> bool:
        """The handshake, the certificate's verdict, and EHLO again (smtp_start_tls())."""
        from ..tls import client as tc
        pol = session.policy
        c = self.conf
        ctx = tc.client_context(c, pol, resolve=self.host.path)
        watch = tc.HandshakeWatch()
        watch.attach(ctx)
        namaddrport = session.namaddrport
        try:
            tls = session.channel.starttls(ctx, pol.servername or None)
        except (ssl.SSLError, OSError, ChannelError) as e:
            if isinstance(e, ChannelTimeout):
                lines = [("info", f"SSL_connect error to {namaddrport}: "
                                  f"{os.strerror(errno.ETIMEDOUT)}")]
            elif isinstance(e, ChannelLost):
                lines = [("info", f"SSL_connect error to {namaddrport}: lost connection")]
            else:
                lines = tc.handshake_error_lines(namaddrport, e)
            for kind, text in lines:
                (self.warn if kind == "warning" else self.info)(text)
            session.broken = True              # DONT_USE_FORBIDDEN_SESSION: no QUIT
            if self.plaintext_fallback_ok(session):
                self.retry_as_plaintext(session)
            self._fill(session, "4.7.5", "Cannot start TLS: handshake failure", None)
            self.bulk_fail(session)
            return False
        info = tc.peer_info(tls, ctx, watch)
        if pol.level == "fingerprint":
            res = tc.fingerprint_match(info.chain[0] if info.chain else None, pol.match,
                                       c.get("smtp_tls_fingerprint_digest") or "sha256")
        else:
            trust = tc.load_trust(self._tls_file("smtp_tls_CAfile"),
                                  self._tls_file("smtp_tls_CApath"))
            names = self.match_names(session) if pol.must_match else None
            now = _dt.datetime.fromtimestamp(self.host.clock.now(), _dt.timezone.utc)
            res = tc.verify_chain(info.chain, trust, names, now)
        mask = self.tls_log_mask()
        matched = res.trusted and pol.must_match
        if not matched and (pol.must_match or "untrusted" in mask):
            line = tc.verify_error_line(namaddrport, res)
            if line:
                self.info(line)
        if "summary" in mask:
            kind = ("Anonymous" if not info.chain else "Verified" if matched else
                    "Trusted" if res.trusted else "Untrusted")
            self.info(tc.summary_line(kind, namaddrport, info))
        session.tls = info
        session.tls_matched = bool(matched)
        if pol.must_match and not matched:
            self._fill(session, "4.7.5", "Server certificate not verified", None)
            self.bulk_fail(session)
            return False
        session.features = set()
        session.size_limit = 0
        session.sasl_mechs = None               # smtp_sasl_cleanup(): EHLO over TLS says again
        return self.helo(session, None, in_starttls=True)

    def _tls_file(self, param: str):
        value = (self.conf.get(param) or "").strip()
        if not value:
            return None
        try:
            return self.host.path(value)
        except PermissionError:
            return None

    def match_names(self, session: _Session) -> list[tuple[str, bool]]:
        """The names the certificate must match (add_namechecks())."""
        out = []
        for m in session.policy.match:
            low = m.lower()
            if low == "hostname":
                out.append((session.address.name, False))
            elif low == "nexthop":
                out.append((session.tls_nexthop, False))
            elif low == "dot-nexthop":
                out.append((session.tls_nexthop, True))
            elif m.startswith("."):
                if len(m) > 1:
                    out.append((m[1:], True))
            else:
                out.append((m, False))
        return out

    def tls_policy(self, site: str, hop: NextHop, addr: ServerAddress):
        """The TLS policy for this next hop and server. Postfix makes it once per smtp(8)
        process (cached by next hop, host name and port), so its warnings appear once
        per process; mailsim makes it afresh each time (a changed main.cf or table counts
        at once) and logs the warnings once per process."""
        from ..tls.client import tls_policy
        specs = self.conf.list("smtp_tls_policy_maps")
        lookup = None
        if specs:
            def lookup(k: str) -> str | None:
                for spec in specs:
                    v = self.host.open_map(spec).lookup(k)
                    if v is not None:
                        return v
                return None
        pol = tls_policy(self.conf, site, lookup=lookup)
        said = self.host.__dict__.setdefault("_smtp_tls_policy_notes", set())
        key = (self.c.daemon, self.pid, site, addr.name, hop.port, tuple(pol.notes))
        if key not in said:
            said.add(key)
            for note in pol.notes:
                self.info(note)
        return pol

    # -- next hops and servers (smtp_connect.c) ------------------------------------------------------
    def left(self) -> int:
        return len(self.todo)

    def run(self) -> None:
        if self.conf.bool("smtp_sasl_auth_enable") and \
                not (self.conf.get("smtp_sasl_password_maps") or "").strip():
            # smtp_sasl_initialize(): smtp(8) dies at start-up; qmgr defers the mail
            self.info("fatal: specify a password table via the `smtp_sasl_password_maps' "
                      "configuration parameter")
            self.why = _Why("4.3.0", "unknown mail transport error")
            self.fail_leftovers([])
            return
        sites = split_nexthops(self.nexthop)
        for n, site in enumerate(sites):
            if not self.left():
                break
            final_nexthop = n == len(sites) - 1
            try:
                hop = parse_nexthop(site, self.conf.get("smtp_tcp_port") or "smtp")
                addrs = self.c.resolver(self.host, hop)
            except ValueError as e:         # Postfix's smtp(8) dies; qmgr defers the mail
                self.info(f"fatal: {e}")
                self.why, addrs = _Why("4.3.0", "unknown mail transport error"), []
            except LookupFailure as e:
                self.why, addrs = _Why(e.dsn, e.reason), []
                for w in e.warnings:             # e.g. "no MX host for X has a valid address record"
                    self.warn(w)
                if e.dsn == "5.4.6" or e.i_am_mx:    # a mail loop, or we are an MX: no fall-back
                    final_nexthop = True
            else:
                for w in getattr(addrs, "warnings", ()):
                    self.warn(w)
                if getattr(addrs, "i_am_mx", False):
                    final_nexthop = True
            k = 0
            plain = False
            while k < len(addrs) and self.left():
                addr = addrs[k]
                pol = self.tls_policy(site, hop, addr)
                if pol.level == "invalid" and pol.notes and pol.notes[-1].startswith("fatal:"):
                    self.why = _Why("4.3.0", "unknown mail transport error")   # smtp(8) died
                    break
                if pol.level == "invalid":       # smtp_tls_policy_cache_query() failed
                    self.why = _Why("4.7.5", "client TLS configuration problem")
                    self.warn(f"TLS policy lookup for {site}/{addr.name}: {self.why.reason}")
                    k += 1
                    continue
                if plain:                        # retry after a failed opportunistic handshake
                    from ..tls.client import TLSPolicy
                    pol = TLSPolicy("none")
                plain = self.try_server(addr, hop, final_nexthop and k == len(addrs) - 1, pol,
                                        dest=site)
                if not plain:
                    k += 1
            if final_nexthop:
                break
        if self.left():
            self.fail_leftovers(sites)

    def fail_leftovers(self, sites: list[str]) -> None:
        """Recipients no server took: defer or bounce them (relay=none)."""
        if self.why is None:
            self.why = _Why("4.3.0", "server unavailable or unable to receive mail")
        elif not self.why.dsn.startswith("4") and sites and sites[0] == self.conf["relayhost"]:
            self.warn("relayhost configuration problem")
            self.why.dsn = "4.3.5"
        self.final_server = True
        self.bulk_fail(None)

    def try_server(self, addr: ServerAddress, hop: NextHop, final: bool, policy=None,
                   dest: str = "") -> bool:
        """One connection to one server; True: try it again in plaintext
        (Postfix's RETRY_AS_PLAINTEXT after an opportunistic TLS failure)."""
        try:
            ch = self.c.connector.connect(addr.addr, hop.port,
                                          self.conf.time("smtp_connect_timeout"))
        except ConnectFailure as e:
            self.why = _Why("4.4.1", f"connect to {addr.name}[{addr.addr}]:{hop.port}: {e.text}")
            self.info(self.why.reason)
            return False
        session = _Session(addr, hop.port, ch, policy=policy, tls_nexthop=hop.host,
                           dest=dest or hop.host)
        self.final_server = final
        try:
            if self.helo(session, hop):
                self.xfer(session)
            elif not session.broken:
                self.quit(session)
        finally:
            self.cleanup(session)
        return session.retry_plain

    def cleanup(self, session: _Session) -> None:
        session.channel.close()
        self.todo = [r for r, m in zip(self.todo, self.marks) if m != "drop"]
        self.marks = [None] * len(self.todo)
        self.t_conn = self.t_done = None

    # -- greeting and EHLO (smtp_helo) ------------------------------------------------------------
    def reply(self, session: _Session) -> ServerReply:
        code, lines = session.channel.read_reply()
        return ServerReply(code, tuple(lines))

    def helo(self, session: _Session, hop: NextHop | None, in_starttls: bool = False) -> bool:
        """Greeting, EHLO/HELO and the server's extensions, then STARTTLS as the TLS
        policy says (and all of it but the greeting again over TLS: ``in_starttls``);
        False if the session failed."""
        c = self.conf
        ch = session.channel
        ch.set_timeout(c.time("smtp_helo_timeout"))
        loop_detect = session.port == 25
        where = "receiving the initial server greeting"
        try:
            if in_starttls:                 # no greeting after STARTTLS: EHLO at once
                esmtp = True
            else:
                r = self.reply(session)
                if r.code // 100 != 2:
                    dsn = r.dsn
                    if r.code // 100 == 5 and c.bool("smtp_skip_5xx_greeting"):
                        dsn = "4" + dsn[1:]
                    self.site_fail(session, r, f"host {session.namaddr} refused to talk to me: "
                                               f"{r.text}", dsn)
                    return False
                esmtp = self.greeting_says_esmtp(session, r, loop_detect)
                if c.bool("smtp_always_send_ehlo"):
                    esmtp = True
                if c.bool("smtp_never_send_ehlo"):
                    esmtp = False
            if esmtp:
                where = "performing the EHLO handshake"
                ch.send(f"EHLO {c['smtp_helo_name']}\r\n".encode())
                r = self.reply(session)
                if r.code // 100 != 2:
                    if r.code == 421:
                        self.site_fail(session, r, f"host {session.namaddr} refused to talk to me: "
                                                   f"{r.text}")
                        return False
                    esmtp = False
            if not esmtp:
                where = "performing the HELO handshake"
                ch.send(f"HELO {c['smtp_helo_name']}\r\n".encode())
                r = self.reply(session)
                if r.code // 100 != 2:
                    self.site_fail(session, r, f"host {session.namaddr} refused to talk to me: "
                                               f"{r.text}")
                    return False
                return self.after_ehlo(session, in_starttls)
        except ChannelError as e:
            self.stream_except(session, e, where)
            return False
        if not self.parse_ehlo(session, r, loop_detect):
            return False
        return self.after_ehlo(session, in_starttls)

    def after_ehlo(self, session: _Session, in_starttls: bool) -> bool:
        """SMTPUTF8, then STARTTLS (whose EHLO over TLS does the rest), then SASL AUTH."""
        if not self.check_smtputf8(session):
            return False
        if not in_starttls:
            if not self.tls_step(session):
                return False
            if session.tls is not None:          # helo(in_starttls=True) did AUTH
                return True
        return self.sasl_login(session)

    def greeting_says_esmtp(self, session: _Session, r: ServerReply, loop_detect: bool) -> bool:
        """Does the greeting say ESMTP? (And warn when it names this host.)"""
        me = self.conf["myhostname"]
        parts = re.split(r"[- \t]+", r.text.lstrip(" -\t"), maxsplit=1)
        esmtp = False
        for n, word in enumerate(parts[1].split() if len(parts) > 1 else []):
            if n == 0 and word.lower() == me.lower():
                if loop_detect:
                    self.warn(f"host {session.namaddrport} greeted me with my own hostname {me}")
            elif word.upper() == "ESMTP":
                esmtp = True
        return esmtp

    def parse_ehlo(self, session: _Session, r: ServerReply, loop_detect: bool) -> bool:
        me = self.conf["myhostname"]
        n = 0
        for line in r.lines:
            words = re.split(r"[- ]+", line.lstrip("- "), maxsplit=1)
            if len(words) < 2:
                continue
            parts = re.split(r"[ \t=]+", words[1].lstrip(" \t="))
            if not parts or not parts[0]:
                continue
            word = parts[0].upper()
            if n == 0:
                if parts[0].lower() == me.lower() and loop_detect:
                    self.warn(f"host {session.namaddrport} replied to HELO/EHLO "
                              f"with my own hostname {me}")
                    self.site_fail(session, None, f"mail for {self.nexthop} loops back to myself",
                                   "5.4.6")
                    return False
            elif word in ("8BITMIME", "PIPELINING", "DSN", "SMTPUTF8", "STARTTLS"):
                session.features.add(word)
            elif word == "AUTH" and self.conf.bool("smtp_sasl_auth_enable"):
                self.sasl_helo_auth(session, _after_keyword(words[1]))
            elif word == "SIZE":
                session.features.add(word)
                if len(parts) > 1 and parts[1]:
                    if parts[1].isdigit():
                        session.size_limit = int(parts[1])
                    else:
                        self.warn(f'bad EHLO SIZE limit "{parts[1]}" from {session.namaddrport}')
            n += 1
        return True

    def check_smtputf8(self, session: _Session) -> bool:
        """SMTPUTF8 mail needs a server that offers it; SMTPUTF8 implies 8BITMIME."""
        f = session.features
        requested = (self.qf.attrs.get("smtputf8") or "").lower() in ("yes", "1", "true")
        needed = requested and (_non_ascii(self.qf.sender)
                                or any(_non_ascii(r.address) for r in self.todo)
                                or _non_ascii(self.qf.content.split(b"\n\n", 1)[0]))
        if needed and "SMTPUTF8" not in f:
            self._fill(session, "5.6.7", "SMTPUTF8 is required, but was not offered by host "
                                         f"{session.namaddr}", None)
            self.bulk_fail(session)
            return False
        if "SMTPUTF8" in f and "8BITMIME" not in f:
            self.info(f"host {session.namaddr} offers SMTPUTF8 support, but not 8BITMIME")
            f.add("8BITMIME")
        return True

    # -- the mail transaction (smtp_xfer, smtp_loop) ----------------------------------------------
    def downgrade(self, session: _Session) -> bool:
        """Postfix would convert 8-bit content to 7 bits for this server (SMTP_MIME_DOWNGRADE)."""
        return (not self.conf.bool("disable_mime_output_conversion")
                and "8BITMIME" not in session.features and self.encoding != "7bit")

    def mail_command(self, session: _Session) -> str:
        f = session.features
        cmd = f"MAIL FROM:<{quote_821(self.qf.sender)}>"
        if "SIZE" in f and not self.downgrade(session):
            cmd += f" SIZE={self.size}"
        if "8BITMIME" in f and self.encoding:
            cmd += " BODY=8BITMIME" if self.encoding == "8bit" else " BODY=7BIT"
        if "DSN" in f:
            envid = self.qf.attrs.get("envid") or ""
            if envid:
                cmd += " ENVID=" + xtext(envid, "+=")
            ret = (self.qf.attrs.get("ret") or "").upper()
            if ret in ("FULL", "HDRS"):
                cmd += f" RET={ret}"
        if "SMTPUTF8" in f and (self.qf.attrs.get("smtputf8") or "").lower() in ("yes", "1", "true"):
            cmd += " SMTPUTF8"
        if "AUTH" in f and self.conf.bool("smtp_sasl_auth_enable") \
                and self.conf.bool("smtp_send_dummy_mail_auth"):
            cmd += " AUTH=<>"
        return cmd

    def rcpt_command(self, session: _Session, rcpt: Recipient) -> str:
        cmd = f"RCPT TO:<{quote_821(rcpt.address)}>"
        if "DSN" in session.features:
            orcpt = rcpt.orcpt
            if not orcpt and rcpt.orig:
                orcpt = f"rfc822;{quote_821(rcpt.orig)}"
            if orcpt:
                cmd += " ORCPT=" + xtext(orcpt, "=")
            if rcpt.notify:
                cmd += " NOTIFY=" + _notify(rcpt.notify)
        return cmd

    def xfer(self, session: _Session) -> None:
        if 0 < session.size_limit < self.size:
            self._fill(session, "5.3.4", f"message size {self.size} exceeds size limit "
                                         f"{session.size_limit} of server {session.namaddr}", None)
            self.bulk_fail(session)
            return
        self.loop(session, MAIL, MAIL)

    def quit(self, session: _Session) -> None:
        """A lone QUIT (after a failed greeting or EHLO)."""
        self.loop(session, QUIT, LAST if self.conf.bool("smtp_skip_quit_response") else QUIT)

    def send_body(self, session: _Session) -> None:
        data, broke = data_bytes(self.qf.content, self.conf.int("smtp_line_length_limit"))
        if broke and not self.logged_line_break:
            self.logged_line_break = True
            self.info(f"{self.qf.queue_id}: breaking line > "
                      f"{self.conf.int('smtp_line_length_limit')} bytes with <CR><LF>SPACE")
        session.channel.send(data)

    def loop(self, s: _Session, send_state: int, recv_state: int) -> None:
        """Run one mail transaction (or a lone QUIT) on ``s``: see :class:`_Loop`."""
        _Loop(self, s, send_state, recv_state).run()

    def said(self, s: _Session, r: ServerReply, state: int) -> str:
        return f"host {s.namaddr} said: {r.text} (in reply to {IN_REPLY_TO[state]})"

    def site_or_mesg(self, s: _Session, r: ServerReply, state: int) -> None:
        """smtp_mesg_fail(): the server refused the sender or the message."""
        self._fill(s, r.dsn, self.said(s, r, state), r)
        self.bulk_fail(s)


class _Loop:
    """Postfix's smtp_loop(): a sender and a receiver state machine.

    The sender builds commands (MAIL, RCPT..., DATA, ``.``, QUIT); the
    receiver reads the replies. Without PIPELINING the sender waits for
    each reply. With it the sender runs ahead -- MAIL, every RCPT and DATA in
    one write -- and waits only at DATA (for the 354) and at the end; QUIT goes
    out with the end of data. When the replies say the transaction is dead
    (sender refused, no recipient left, DATA refused), the sender sends RSET
    and QUIT instead.
    """

    def __init__(self, d: _Delivery, s: _Session, send_state: int, recv_state: int) -> None:
        self.d, self.s = d, s
        self.send_state, self.recv_state = send_state, recv_state
        self.send_rcpt = self.recv_rcpt = self.next_rcpt = 0
        self.nrcpt = 0                      # accepted recipients; -1: DATA refused
        self.mail_rejected = self.lost_in_data = False
        self.pending = 0                    # bytes written since the last reply was read
        self.n = len(d.todo)
        self.pipelining = "PIPELINING" in s.features
        self.skip_quit = d.conf.bool("smtp_skip_quit_response")

    def ahead(self) -> bool:
        """Has the sender sent commands whose replies are not read yet?"""
        return self.recv_state < self.send_state or self.recv_rcpt != self.send_rcpt

    def build(self) -> tuple[str, int]:
        """The next command and the sender state after it."""
        d, st = self.d, self.send_state
        if st == MAIL:
            d.t_conn = d.host.clock.now()             # connection set-up ends here
            return d.mail_command(self.s), RCPT
        if st == RCPT:
            self.next_rcpt = self.send_rcpt + 1
            return (d.rcpt_command(self.s, d.todo[self.send_rcpt]),
                    DATA if self.next_rcpt == self.n else RCPT)
        return {DATA: ("DATA", DOT), DOT: (".", QUIT), ABORT: ("RSET", QUIT),
                QUIT: ("QUIT", LAST)}.get(st, ("", LAST))

    def must_wait(self, cmd: str) -> bool:
        """Read replies before sending ``cmd``? (DATA is a synchronisation point.)"""
        if self.send_state in (DOT, LAST):
            return True
        if not self.ahead():
            return False
        check_buf = not (self.recv_state == DOT and self.send_state == QUIT)
        return not self.pipelining or (check_buf and len(cmd) + 2 + self.pending > BUFSIZE)

    def receive(self, r: ServerReply) -> None:
        """What one reply means, in the receiver's state."""
        d, s, st = self.d, self.s, self.recv_state
        if st == MAIL:
            if r.code // 100 != 2:
                d.site_or_mesg(s, r, MAIL)
                self.mail_rejected = True
            self.recv_state = RCPT
        elif st == RCPT:
            if not self.mail_rejected:
                if r.code // 100 == 2:
                    self.nrcpt += 1
                else:
                    d.rcpt_fail(self.recv_rcpt, s, r, d.said(s, r, RCPT))
            self.recv_rcpt += 1
            if self.recv_rcpt == self.n:
                self.recv_state = DATA
        elif st == DATA:
            self.recv_state = DOT
            if r.code // 100 != 3:
                if self.nrcpt > 0:
                    d.site_or_mesg(s, r, DATA)
                self.nrcpt = -1
        elif st == DOT:
            d.t_done = d.host.clock.now()
            if self.nrcpt > 0:
                if r.code // 100 != 2:
                    d.site_or_mesg(s, r, DOT)
                else:
                    for i in range(self.recv_rcpt):
                        if d.marks[i] is None:
                            d.rcpt_done(i, s, r)
            self.recv_state = LAST if self.skip_quit or self.lost_in_data else QUIT
        elif st == ABORT:
            self.recv_state = LAST if self.skip_quit else QUIT
        else:
            self.recv_state = LAST

    def catch_up(self) -> bool:
        """Read every outstanding reply; False when the conversation broke off."""
        d, s = self.d, self.s
        while self.ahead():
            s.channel.set_timeout(d.conf.time(TIMEOUTS[self.recv_state]))
            try:
                r = d.reply(s)
            except ChannelError as e:
                if self.lost_in_data:
                    d.stream_except(s, ChannelLost(), "sending message body")
                elif self.recv_state <= DOT:
                    d.stream_except(s, e, WHERE[self.recv_state])
                s.broken = True
                return False
            self.receive(r)
        self.pending = 0
        return True

    def transaction_is_dead(self) -> bool:
        return ((self.send_state == RCPT and self.mail_rejected)
                or (self.send_state == DATA and self.nrcpt == 0)
                or (self.send_state == DOT and self.nrcpt < 0))

    def send(self, cmd: str, next_state: int) -> tuple[bool, int]:
        """Write ``cmd`` (and the message before ``.``); (ok, next sender state)."""
        d, s = self.d, self.s
        try:
            if self.send_state == DOT and self.nrcpt > 0:
                s.channel.set_timeout(d.conf.time("smtp_data_xfer_timeout"))
                try:
                    d.send_body(s)
                except ChannelLost:
                    self.lost_in_data = True       # maybe the server said why: read it
                    next_state = LAST
            if not self.lost_in_data:
                s.channel.send(cmd.encode("utf-8", "surrogateescape") + b"\r\n")
                self.pending += len(cmd) + 2
        except ChannelError as e:
            if self.send_state <= DOT:
                d.stream_except(s, e, "sending message body" if self.send_state == DOT
                                else WHERE[self.send_state])
            s.broken = True
            return False, next_state
        return True, next_state

    def run(self) -> None:
        while True:
            cmd, next_state = self.build()
            if self.must_wait(cmd):
                if not self.catch_up():
                    return
                if self.transaction_is_dead():
                    self.send_state = self.recv_state = ABORT
                    self.send_rcpt = self.recv_rcpt = self.next_rcpt = 0
                    cmd, next_state = "RSET", QUIT
            if self.send_state == LAST:
                if self.recv_state == LAST:
                    return
                continue
            ok, next_state = self.send(cmd, next_state)
            if not ok:
                return
            self.send_state, self.send_rcpt = next_state, self.next_rcpt
            if self.recv_state == LAST:
                return
