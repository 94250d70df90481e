"""smtpd(8): one SMTP server session, as a protocol engine that does no I/O.

Bytes in (:meth:`SMTPDSession.receive`), bytes out. The same engine serves the
in-process simulator (deterministic: simulated clock, seeded queue ids) and
real sockets (:mod:`mailsim.serve`), so the two can never disagree about a
reply. It follows Postfix 3.7.11's ``src/smtpd/smtpd.c``: the command table
and its order, sequence rules, ESMTP parameters, the pipelining checks, error
counting and limits, line-length and bare-newline handling, and the log lines
smtpd writes.

Standards: RFC 5321 (SMTP), RFC 1870 (SIZE), RFC 2920 (PIPELINING), RFC 3030
(CHUNKING/BDAT), RFC 3461 (DSN), RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8),
RFC 2034 (ENHANCEDSTATUSCODES).

Trust: everything the client sends is untrusted; any byte sequence gets the
reply Postfix would give, never an exception.

Parameters read: smtpd_banner, myhostname, smtpd_helo_required,
disable_vrfy_command, strict_rfc821_envelopes, message_size_limit,
smtpd_recipient_limit, smtpd_recipient_overshoot_limit,
smtpd_soft_error_limit, smtpd_hard_error_limit, smtpd_error_sleep_time,
smtpd_junk_command_limit, smtpd_forbidden_commands,
smtpd_forbid_unauth_pipelining, smtpd_forbid_bare_newline, line_length_limit,
smtputf8_enable, smtpd_delay_reject, smtpd_discard_ehlo_keywords,
smtpd_reject_footer, fast_flush_domains, the restriction lists (see
:mod:`mailsim.smtpd.check`), and for STARTTLS smtpd_tls_security_level (or
smtpd_use_tls, smtpd_enforce_tls), smtpd_tls_received_header and the
parameters :mod:`mailsim.tls.context` reads; for AUTH smtpd_sasl_auth_enable,
smtpd_sasl_type, smtpd_sasl_path, smtpd_sasl_security_options,
smtpd_sasl_tls_security_options, smtpd_sasl_local_domain,
smtpd_sasl_mechanism_filter, smtpd_sasl_exceptions_networks,
smtpd_sasl_response_limit, smtpd_sasl_authenticated_header,
smtpd_tls_auth_only and broken_sasl_auth_clients.

AUTH (RFC 4954) follows ``smtpd_sasl_proto.c`` and ``smtpd_sasl_glue.c``: the
SASL server (:mod:`mailsim.sasl`, Cyrus with the sasldb) is activated per
connection -- at once, or only after STARTTLS with smtpd_tls_auth_only -- and
again after STARTTLS with the TLS security options, forgetting any login; EHLO
announces its mechanisms; a ``334`` challenge puts the engine in a mode where
the next line is the client's response (``*`` cancels). A login shows in the
``client=`` log line (``sasl_method=, sasl_username=``), in the Received:
header (``with ESMTPA``) and in ``permit_sasl_authenticated``. ``service``
picks a master.cf service whose ``-o`` overrides apply (:func:`service_host`).

STARTTLS (RFC 3207) is a real TLS handshake inside the engine: after
``220 2.0.0 Ready to start TLS`` the engine takes TLS records from
:meth:`SMTPDSession.receive` and answers with TLS records (Python's ssl over
memory BIOs), so the same code serves a real socket and an in-process client
(:meth:`mailsim.smtpd.client.Session.starttls`). Plaintext the client sent
after the STARTTLS line is discarded, never executed (CVE-2011-0411), and the
client must say EHLO again.

Examples
--------
>>> import tempfile
>>> from mailsim import init_host
>>> h = init_host(tempfile.mkdtemp() + "/mx", hostname="mail.example.com", users=["peter"])
>>> s = h.smtpd("127.0.0.1")
>>> print(s.greeting().decode().replace("\\r", "").strip())
220 mail.example.com ESMTP Postfix (Debian/GNU)
>>> print(s.receive(b"HELO client.example.org\\r\\nMAIL FROM:<a@b.example>\\r\\n").decode().replace("\\r", "").strip())
250 mail.example.com
250 2.1.0 Ok
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from .. import sasl as saslmod
from ..maps import MapError
from ..queue import Recipient
from ..reply import Reply
from ..table_open import log_open_messages
from ..tls import context as tlsctx
from . import replies as R
from .address import extract_address, split_argument
from .check import Checker, Decision, Rejected, valid_hostname, valid_literal
from .notify import Transcript, notice, reply_class

__all__ = ["SMTPDSession", "Transaction", "service_host"]

# smtpd's command table, in its order (the "disconnect" log line counts in this order)
_COMMANDS = ("HELO", "EHLO", "XCLIENT", "XFORWARD", "STARTTLS", "AUTH", "MAIL", "RCPT",
             "DATA", "BDAT", "RSET", "NOOP", "VRFY", "ETRN", "QUIT")
_LIMITED = {"HELO", "EHLO", "RSET", "NOOP", "VRFY", "ETRN"}    # junk-command limited
_LAST = {"HELO", "EHLO", "DATA", "NOOP", "VRFY"}               # must end a pipelined group
_PRE_TLS = {"HELO", "EHLO", "XCLIENT", "STARTTLS", "NOOP", "QUIT"}
_HEADER = re.compile(r"^[!-9;-~]+:")                             # looks like "Subject:"


def quote_local(addr: str) -> str:
    """The external (quoted) form Postfix logs: ``"a b"@example.com``."""
    local, at, domain = addr.rpartition("@")
    if not at:
        local, domain = addr, ""
    if local and re.search(r'[\s()<>@,;:\\".\[\]]', local.replace(".", "")) or \
            local.startswith(".") or local.endswith(".") or ".." in local:
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{local}@{domain}" if at else local


class _TaggedLog:
    """The host's log, written with another syslog_name (master.cf ``-o syslog_name=``)."""

    def __init__(self, log, syslog_name: str) -> None:
        self._log = log
        self._name = syslog_name

    def write(self, daemon: str, pid: int, text: str) -> str:
        saved = self._log.syslog_name
        self._log.syslog_name = self._name
        try:
            return self._log.write(daemon, pid, text)
        finally:
            self._log.syslog_name = saved

    def __getattr__(self, name: str):
        return getattr(self._log, name)


class _PrintableLog:
    """smtpd's log: msg_output.c passes every line through printable(line, '?'), which
    keeps UTF-8 only with smtputf8_enable = yes (util_utf8_enable); see :func:`log_printable`."""

    def __init__(self, log, utf8: bool) -> None:
        self._log = log
        self._utf8 = utf8

    def write(self, daemon: str, pid: int, text: str) -> str:
        return self._log.write(daemon, pid, log_printable(text, self._utf8))

    def __getattr__(self, name: str):
        return getattr(self._log, name)


def log_printable(text: str, utf8: bool) -> str:
    """Postfix's printable(text, '?') as msg_output.c applies it to each log line
    (util/printable.c): printable ASCII stays; with ``utf8`` (smtputf8_enable) a UTF-8
    lead byte and its continuation bytes stay too; every other byte becomes '?'.

    >>> log_printable("to=<p\\u00e9ter> a\\tb", False), log_printable("to=<p\\u00e9ter> a\\tb", True)
    ('to=<p??ter> a?b', 'to=<p\u00e9ter> a?b')
    >>> log_printable("x\\udcff\\udc80y", True)
    'x??y'
    """
    if text.isascii() and text.isprintable():
        return text
    raw = bytearray(text.encode("utf-8", "surrogateescape"))
    i = 0
    while i < len(raw):
        ch = raw[i]
        if 32 <= ch < 127:
            pass
        elif utf8 and 194 <= ch <= 254 and i + 1 < len(raw) and 128 <= raw[i + 1] < 192:
            while i + 1 < len(raw) and 128 <= raw[i + 1] < 192:
                i += 1
        else:
            raw[i] = ord("?")
        i += 1
    return raw.decode("utf-8", "surrogateescape")


class _ServiceHost:
    """A host as one master.cf service's smtpd sees it: main.cf plus the service's
    ``-o name=value`` overrides (everything else is the host itself)."""

    def __init__(self, host, conf) -> None:
        object.__setattr__(self, "_host", host)
        object.__setattr__(self, "conf", conf)

    def __getattr__(self, name: str):
        return getattr(self._host, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self._host, name, value)


def service_host(host, service: str | int | None):
    """(host as the smtpd of master.cf service ``service`` sees it, the service's name).

    ``service`` is a service name (``submission``, ``127.0.0.1:587``) or a port
    (``587``); the matching ``inet`` entry running smtpd supplies its ``-o``
    overrides (``smtpd_tls_security_level=encrypt``, ``smtpd_sasl_auth_enable=yes``,
    ``syslog_name=postfix/submission`` ...), as master(8) passes them to that
    service's smtpd processes. No such entry: the host as it is.

    >>> import tempfile
    >>> from mailsim import init_host
    >>> h = init_host(tempfile.mkdtemp() + "/mx")
    >>> with open(h.path("/etc/postfix/master.cf"), "a") as f:
    ...     _ = f.write("submission inet n - y - - smtpd\\n  -o syslog_name=postfix/submission\\n"
    ...                 "  -o smtpd_sasl_auth_enable=yes\\n")
    >>> view, name = service_host(h, 587)
    >>> name, view.conf["smtpd_sasl_auth_enable"], h.conf["smtpd_sasl_auth_enable"]
    ('submission', 'yes', 'no')
    """
    if service is None:
        return host, "smtp"
    from ..smtp.addr import SERVICES
    want = str(service).rpartition(":")[2].lower()
    entry = None
    for e in host.master_entries():
        if e.type != "inet" or e.program != "smtpd":
            continue
        name = e.service.rpartition(":")[2].lower()
        port = name if name.isdigit() else str(SERVICES.get(name, ""))
        if want in (name, port) or (want.isdigit() and port == want):
            entry = e
            break
    if entry is None:
        return host, str(service)
    name = entry.service.rpartition(":")[2]
    params = entry.params
    if not params:
        return host, name
    # one configuration per service and main.cf (smtpd processes keep theirs until reload)
    cache = host.__dict__.setdefault("_service_confs", {})
    key = (host.conf, name, tuple(params.items()))     # the conf itself: an id may be reused
    conf = cache.get(key)
    if conf is None:
        if len(cache) > 32:
            cache.clear()
        conf = cache[key] = host.with_settings(service_name=name, process_name="smtpd",
                                               **params).conf
    return _ServiceHost(host, conf), name


@dataclass
class Transaction:
    """One mail transaction: MAIL FROM, the accepted recipients, and the data."""

    sender: str
    params: dict[str, str] = field(default_factory=dict)
    recipients: list[Recipient] = field(default_factory=list)
    queue_id: str | None = None
    size_declared: int = 0
    file: object = None          # queue.IncomingFile, from the first accepted RCPT


class SMTPDSession:
    """A server-side SMTP session with one client.

    ``host`` is a :class:`mailsim.host.Host`; ``client_addr`` the client's IP.
    Call :meth:`greeting` once (on connect), then :meth:`receive` with every
    chunk of bytes from the client; both return the bytes to send back. When
    :attr:`closed` becomes true the transport closes the connection; if the
    client goes away first, call :meth:`lost`.
    """

    def __init__(self, host, client_addr: str = "127.0.0.1", client_port: int = 0,
                 service: str | int | None = None) -> None:
        host, self.service = service_host(host, service)
        c = self.conf = host.conf
        self.host = host
        self.log = host.log
        syslog_name = c.get("syslog_name") or "postfix"
        if syslog_name != getattr(host.log, "syslog_name", syslog_name):
            self.log = _TaggedLog(host.log, syslog_name)
        self.log = _PrintableLog(self.log, c.bool("smtputf8_enable"))
        self.pid = host.next_pid()
        self.client_addr = client_addr
        self.client_port = client_port
        peer = host.client_name(client_addr) if getattr(host, "dns", None) is not None else None
        # with a DNS: the PTR name, kept only when it resolves back (smtpd_peer.c)
        self.client_name = peer.name if peer is not None else host.reverse_lookup(client_addr)
        self._peer_warnings = peer.warnings if peer is not None else ()
        self.client_namaddr = f"{self.client_name}[{client_addr}]"
        self.trivial = host.trivial_rewrite()
        self.checker = Checker(self)
        self.helo_name: str | None = None
        self.protocol = "SMTP"
        self.tx: Transaction | None = None
        self.tx_hold = self.tx_discard = False
        self.tx_actions: list[tuple[str, str]] = []
        self.closed = self.greeted = self.hangup = False
        self.ill_pipelining = False
        self.access_denied: Reply | None = None
        self.error_count = self.junk_cmds = 0
        self.delay = 0.0                   # seconds the transport should wait (error sleep)
        self.where = "CONNECT"
        self.decisions: list[Decision] = []
        self.transcript = Transcript()       # for the postmaster notice (smtpd_chat.c)
        self._reply_classed = False          # the reply about to go out has its error class
        self._abort_reason: str | None = None
        self._quitting = False
        self._resolved: dict = {}
        self.counts = {name: [0, 0] for name in (*_COMMANDS, "unknown")}
        self._rcpt_for_log: str | None = None
        self._sender_for_log: str | None = None      # from= for a reject before MAIL succeeded
        self._buf = b""
        self._mode = "command"             # command | data | bdat
        self._data: list[bytes] = []
        self._act_size = 0
        self._too_big = False
        self._prev_cont = False
        self._bdat_left = 0
        self._bdat_last = False
        self._bdat_reply: Reply | None = None    # a BDAT whose chunk is skipped gets this
        self._bdat_active = self._bdat_error = False
        self._bdat_partial = b""
        self._bdat_size = 0
        self._overshoot = 0
        self._bare_lf = self._bare_lf_mask()
        self._got_bare_lf = self._prev_bare_lf = self._bare_lf_error = False
        self._discard = {k.upper() for k in c.list("smtpd_discard_ehlo_keywords")}
        self._limit = c.int("line_length_limit")
        self._msg_limit = c.int("message_size_limit")
        self._forbidden = c.list("smtpd_forbidden_commands")
        self.tls_policy = tlsctx.ServerPolicy(False, False)
        self.tls_app: tlsctx.ServerTLS | None = None      # smtpd_tls_ctx
        self._tls: tlsctx.ServerConnection | None = None   # this connection's TLS, once started
        self.tls_info: tlsctx.TLSInfo | None = None        # what was negotiated
        self._tls_pending = False
        # SASL (smtpd_sasl_glue.c): the server while "active", and who logged in
        self.sasl: saslmod.Server | None = None
        self.sasl_username: str | None = None
        self.sasl_method: str | None = None
        self.sasl_sender: str | None = None      # MAIL FROM's AUTH=, until mail_reset()
        self._auth_mech = ""
        self._auth_overflow: bytes | None = None
        self.fatal = self._startup_check()
        if self.fatal:
            self._die(self.fatal)
            return
        self._tls_init()
        log_open_messages(host, "smtpd", self.pid, self.log)     # smtpd_check_init()
        for w in self._peer_warnings:       # "hostname X does not resolve to address Y"
            self.log.write("smtpd", self.pid, f"warning: {w}")
        self.log.write("smtpd", self.pid, f"connect from {self.client_namaddr}")
        # SASL for plaintext mode: not with smtpd_tls_auth_only (then after STARTTLS)
        if self.sasl_enabled and not self.stand_alone and not c.bool("smtpd_tls_auth_only"):
            self._sasl_activate("smtpd_sasl_security_options")

    def _die(self, fatal: str, warnings: tuple[str, ...] = ()) -> None:
        """smtpd exits (fatal): master(8) logs it; the client sees the connection close,
        without a greeting if none was sent yet."""
        for w in warnings:
            self.log_warning(w)
        self.fatal = fatal
        self.log.write("smtpd", self.pid, f"fatal: {fatal}")
        self.host.log.write("master", self.host.master_pid(),
                            f"warning: process /usr/lib/postfix/sbin/smtpd pid {self.pid} exit status 1")
        self._master_throttle()
        self.closed = self.greeted = True
        self._mode = "command"

    def _master_throttle(self) -> None:
        """master(8) (master/master_spawn.c, reaping a child): a process that exits abnormally
        before it has served a connection to its end (its use count is 0: here, every
        session is a new smtpd process) throttles its service -- logged once, then not again
        until service_throttle_time has passed (master_status.c counts a use only when the
        child says it is available again)."""
        until = getattr(self.host, "_smtpd_throttled", None)
        if until is None:
            until = {}
            setattr(self.host, "_smtpd_throttled", until)
        now = self.host.clock.now()
        if until.get(self.service, float("-inf")) > now:
            return
        until[self.service] = now + self.conf.time("service_throttle_time")
        self.host.log.write("master", self.host.master_pid(),
                            "warning: /usr/lib/postfix/sbin/smtpd: bad command startup -- throttling")

    # -- SASL (smtpd_sasl_glue.c, smtpd_sasl_proto.c) -------------------------------------------
    @property
    def sasl_enabled(self) -> bool:
        return self.conf.bool("smtpd_sasl_auth_enable")

    def _sasl_activate(self, options_param: str) -> None:
        """smtpd_sasl_activate(): a SASL server for this connection and its mechanism
        list (what EHLO announces); without mechanisms smtpd dies."""
        self.sasl_username = self.sasl_method = self.sasl_sender = None
        c = self.conf
        kind = c.get("smtpd_sasl_type") or "cyrus"
        if kind == "dovecot":
            path = c.get("smtpd_sasl_path") or "smtpd"
            self._die("no SASL authentication mechanisms",
                      (f"SASL: Connect to Dovecot auth socket '{path}' failed: "
                       "No such file or directory",))
            return
        try:
            srv = saslmod.Server(self.host, c, self._sasl_log,
                                 security_options=c.get(options_param) or "")
        except saslmod.SaslFatal as e:
            self._die(str(e), e.warnings)
            return
        announced = saslmod.mechanism_filter(self.host, c, srv.listed)
        if not announced:
            self._die(f"smtpd_sasl_mechanism_filter discards all mechanisms in '{srv.mechanisms}'")
            return
        srv.announced = " ".join(announced)
        self.sasl = srv

    def _sasl_log(self, line: str) -> None:
        self.log.write("smtpd", self.pid, line)

    def _sasl_deactivate(self) -> None:
        self.sasl = None
        self.sasl_username = self.sasl_method = self.sasl_sender = None

    def _sasl_exception(self) -> bool:
        """smtpd_sasl_exceptions_networks: clients that are not offered AUTH in EHLO."""
        nets = self.conf.list("smtpd_sasl_exceptions_networks")
        if not nets:
            return False
        from ..domains import match_network
        try:
            return match_network(self.client_addr, nets,
                                 lookup=lambda spec, key: self.host.open_map(spec).lookup(key))
        except MapError:
            return True

    def auth_with_suffix(self) -> str:
        """RFC 3848: "A" when the client authenticated (``with ESMTPA``, ``ESMTPSA``)."""
        return "A" if self.sasl_username and self.protocol == "ESMTP" else ""

    def auth_received_lines(self) -> list[str]:
        """smtpd_sasl_authenticated_header = yes: ``(Authenticated sender: NAME)``."""
        if not self.sasl_username or not self.conf.bool("smtpd_sasl_authenticated_header"):
            return []
        return [f"\t(Authenticated sender: {_comment_sanitize(self.sasl_username)})"]

    def client_log_suffix(self) -> str:
        """``, sasl_method=PLAIN, sasl_username=alice, sasl_sender=...`` of the client= line."""
        out = ""
        if self.sasl_method:
            out += f", sasl_method={self.sasl_method}"
        if self.sasl_username:
            out += f", sasl_username={self.sasl_username}"
        if self.sasl_sender is not None:
            out += f", sasl_sender={self.sasl_sender}"
        return out

    # -- the transport's interface -------------------------------------------------------------
    def greeting(self) -> bytes:
        """The 220 banner (or the client-restriction reject), sent once on connect."""
        if self.greeted:
            return b""
        self.greeted = True
        if not self.conf.bool("smtpd_delay_reject"):
            d = self.checker.evaluate("CONNECT", self.client_namaddr,
                                      [("client", self.client_namaddr)])
            if d.reply is not None:
                self.access_denied = d.reply
                self.error_count += 1
                return self._wire(d.reply)
        banner = self.conf.expand(self.conf.raw("smtpd_banner") or "")
        return self._wire(Reply(220, None, banner))

    def receive(self, data: bytes) -> bytes:
        """Feed bytes from the client; return the bytes the server answers (TLS records
        once STARTTLS has succeeded)."""
        if self.closed:
            return b""
        if self._tls is not None:
            return self._tls_receive(data)
        out: list[bytes] = []
        if not self.greeted:
            self._buf += data
            data = b""
            if self._buf:
                self._flag_pipelining()
            out.append(self.greeting())
        self._buf += data
        out.append(self._run())
        if self._tls_pending and not self.closed:
            out.append(self._tls_start())
        return b"".join(out)

    def _auth_input(self) -> bytes | None:
        """A client response during AUTH (None: not a whole line yet)."""
        limit = self.conf.int("smtpd_sasl_response_limit")
        nl = self._buf.find(b"\n")
        if self._auth_overflow is not None:       # skipping the rest of an overlong line
            if nl < 0:
                self._buf = b""
                return None
            self._buf = self._buf[nl + 1:]
            return self._auth_response(None)
        if nl < 0:
            if len(self._buf) > limit:
                self._auth_overflow = self._buf[:limit]
                self._buf = b""
            return None
        raw, self._buf = self._buf[:nl], self._buf[nl + 1:]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        self.transcript.command(raw[:limit].decode("utf-8", "surrogateescape"))
        if len(raw) >= limit:
            self._auth_overflow = raw[:limit]
            return self._auth_response(None)
        return self._auth_response(raw)

    def _run(self) -> bytes:
        """The command loop over what is buffered (plaintext, or what TLS decrypted)."""
        out: list[bytes] = []
        while not self.closed and not self._tls_pending:
            if self._mode == "auth":
                r = self._auth_input()
                if r is None:
                    break
                out.append(r)
            elif self._mode == "command":
                nl = self._buf.find(b"\n")
                if nl < 0:
                    if len(self._buf) > 4 * self._limit:      # keep reading, but only so much
                        self._buf = self._buf[: self._limit]
                    break
                raw, self._buf = self._buf[:nl], self._buf[nl + 1:]
                out.append(self._command(raw))
            elif self._mode == "data":
                nl = self._buf.find(b"\n")
                if nl < 0:
                    break
                raw, self._buf = self._buf[:nl], self._buf[nl + 1:]
                r = self._data_line(raw)
                if r:
                    out.append(r)
            else:
                take = min(self._bdat_left, len(self._buf))
                chunk, self._buf = self._buf[:take], self._buf[take:]
                self._bdat_left -= take
                if self._bdat_reply is None:
                    self._bdat_feed(chunk)
                if self._bdat_left:
                    break
                out.append(self._bdat_end())
        return b"".join(out)

    # -- STARTTLS: the TLS layer under the command loop ------------------------------------------
    def _tls_init(self) -> None:
        """smtpd's pre-jail TLS setup: the level's warnings, then tls_server_init() (its
        warnings once per process). ``sendmail -bs`` runs without the privileges to
        read the keys: STARTTLS is offered but answers 454, as in Postfix."""
        pol = self.tls_policy
        for w in pol.warnings:
            self.log_warning(w)
        if not pol.use or (self.stand_alone and getattr(self, "user", "") not in
                           ("root", self.conf.get("mail_owner") or "postfix")):
            return
        self.tls_app = tlsctx.server_init(self.host, pol.enforce, self.pid, self._tls_log)

    def _tls_log(self, line: str) -> None:
        self.log.write("smtpd", self.pid, line)

    def _tls_start(self) -> bytes:
        """After "220 Ready to start TLS": drop pending plaintext, begin the handshake."""
        self._tls_pending = False
        self._buf = b""                     # vstream_fpurge(): no plaintext injection
        try:
            self._tls = tlsctx.ServerConnection(self.tls_app, self.client_namaddr, self._tls_log)
        except tlsctx.HandshakeFailed:
            self._tls_failed()
        return b""

    def _tls_failed(self) -> None:
        """smtpd_start_tls(): no TLS context means the conversation is over."""
        self.counts["STARTTLS"][0] -= 1     # starttls_cmd() never returned
        self.log.write("smtpd", self.pid, f"lost connection after {self.where} from {self.client_namaddr}")
        self._reset_tx()
        self._close()

    def _tls_receive(self, data: bytes) -> bytes:
        conn = self._tls
        if not conn.established:
            try:
                if not conn.handshake(data):
                    return conn.output()
            except tlsctx.HandshakeFailed:
                out = conn.output()
                self._tls_failed()
                return out
            self.tls_info = conn.info
            data = b""
            if self.sasl_enabled and not self.stand_alone:
                # smtpd_start_tls(): forget any login, offer the mechanisms allowed over TLS
                self._sasl_deactivate()
                self._sasl_activate("smtpd_sasl_tls_security_options")
                if self.closed:
                    return conn.output()
        plain, end = conn.decrypt(data)
        self._buf += plain
        conn.encrypt(self._run())
        if end and not self.closed:          # close_notify or a TLS error: the client is gone
            out = conn.output()
            self.lost()
            return out
        if self.closed:
            conn.shutdown()
        return conn.output()

    def tls_received_lines(self) -> list[str]:
        """The TLS comment of the Received: header (smtpd_tls_received_header = yes)."""
        if self.tls_info is None or not self.conf.bool("smtpd_tls_received_header"):
            return []
        return self.tls_info.received_lines()

    def tls_with_suffix(self) -> str:
        """RFC 3848: "ESMTPS" for ESMTP over TLS (``with ESMTPS id ...``)."""
        return "S" if self.tls_info is not None and self.protocol == "ESMTP" else ""

    def lost(self) -> None:
        """The client closed the connection (or it broke) without QUIT."""
        if self.closed:
            return
        if self._tls is not None and not self._tls.established:
            self._tls.eof_in_handshake()
            self.counts["STARTTLS"][0] -= 1
        where = self.where
        if self._mode == "data":
            where = f"DATA ({self._act_size} bytes)"
        elif self._mode == "bdat":
            where = f"BDAT ({self._act_size} bytes)"
        if where != "END-OF-MESSAGE":
            self.log.write("smtpd", self.pid, f"lost connection after {where} from {self.client_namaddr}")
        self._abort_reason = "lost connection"       # smtpd.c: state->reason
        self._reset_tx()
        self._close()

    def _startup_check(self) -> str:
        """What makes Postfix's smtpd refuse to start (an open relay by configuration)."""
        from ..conf import ConfigError
        try:                      # a bad value stops smtpd before it greets (fatal: ...)
            for name in ("mynetworks", "smtpd_relay_restrictions", "smtpd_recipient_restrictions",
                         "message_size_limit", "line_length_limit"):
                self.conf.list(name)
            for name in ("smtpd_use_tls", "smtpd_enforce_tls", "smtpd_tls_received_header",
                         "tls_preempt_cipherlist", "tls_append_default_CA",
                         "smtpd_sasl_auth_enable", "smtpd_tls_auth_only",
                         "broken_sasl_auth_clients", "smtpd_sasl_authenticated_header"):
                self.conf.bool(name)
            limit = self.conf.int("smtpd_sasl_response_limit")
            if limit < 12288:      # get_mail_conf_int()'s minimum
                return f"invalid smtpd_sasl_response_limit parameter value {limit} < 12288"
            self.conf.time("smtpd_tls_session_cache_timeout")
            self.tls_policy = tlsctx.server_policy(self.conf)
        except (ConfigError, ValueError) as e:
            return str(e)
        if self.tls_policy.fatal:
            return self.tls_policy.fatal
        kind = self.conf.get("smtpd_sasl_type") or ""
        if self.conf.bool("smtpd_sasl_auth_enable") and kind not in ("cyrus", "dovecot"):
            # xsasl_server_init(): smtpd_sasl_initialize() gives up
            self.log_warning(f"unsupported SASL server implementation: {kind}")
            return "SASL per-process initialization failed"
        working = {"reject_unauth_destination", "defer_unauth_destination", "reject", "defer",
                   "defer_if_permit", "check_relay_domains"}
        lists = self.conf.list("smtpd_relay_restrictions") + self.conf.list("smtpd_recipient_restrictions")
        if not working & {x.lower() for x in lists}:
            return ("in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, "
                    "specify at least one working instance of: reject_unauth_destination, "
                    "defer_unauth_destination, reject, defer, defer_if_permit or check_relay_domains")
        return ""

    def _bare_lf_mask(self) -> int:
        """smtpd_forbid_bare_newline: 1 = require CRLF.CRLF to end DATA, 2 = also reject."""
        c = self.conf
        mode = (c.get("smtpd_forbid_bare_newline") or "no").lower()
        mask = {"no": 0, "normalize": 1, "yes": 1, "reject": 3}.get(mode, 0)
        if mask:
            from ..domains import match_network
            try:
                if match_network(self.client_addr, c.list("smtpd_forbid_bare_newline_exclusions"),
                                 lookup=lambda spec, key: self.host.open_map(spec).lookup(key)):
                    mask = 0
            except MapError:
                pass
        return mask

    def _bare_lf_reply(self) -> Reply:
        self.log_whatsup("reject", "bare <LF> received")
        return Reply(self.conf.int("smtpd_forbid_bare_newline_reject_code"), "5.5.2",
                     f"{self.conf['myhostname']} Error: bare <LF> received")

    # -- output and logging ----------------------------------------------------------------------
    def _wire(self, r: Reply) -> bytes:
        """smtpd_chat_reply: add smtpd_reject_footer to 4xx/5xx replies, apply soft_bounce."""
        lines = str(r).split("\n")
        footer = self.conf.raw("smtpd_reject_footer") or ""
        if footer and r.code >= 400:
            lines = self._add_footer(lines, r, footer)
        if self.conf.bool("soft_bounce"):
            lines = [("4" + l[1:4] + ("4" + l[5:] if l[4:5] == "5" else l[4:])) if l[:1] == "5" else l
                     for l in lines]
        if not self._reply_classed:
            cls = reply_class(r.code, r.enhanced)
            if cls is not None:
                self.transcript.error(cls)
        self._reply_classed = False
        self.transcript.reply("\n".join(lines))
        return ("\r\n".join(lines) + "\r\n").encode("utf-8", "surrogateescape")

    def _add_footer(self, lines: list[str], r: Reply, footer: str) -> list[str]:
        """smtp_reply_footer: each footer line repeats the code and enhanced status code."""
        code = lines[-1][:3]
        dsn = r.enhanced
        parts = footer.split("\\n")
        out = list(lines)
        added = False
        for i, part in enumerate(parts):
            more = i < len(parts) - 1
            if i == 0 and part.startswith("\\c"):
                out[-1] += self._expand_footer(part[2:])
                continue
            out.append(f"{code}{'-' if more else ' '}{dsn + ' ' if dsn else ''}{self._expand_footer(part)}")
            added = True
        if added:
            out[len(lines) - 1] = out[len(lines) - 1][:3] + "-" + out[len(lines) - 1][4:]
        return out

    def _expand_footer(self, text: str) -> str:
        """smtpd_expand: $client_address, $localtime, ... in a reply footer."""
        tx = self.tx
        values = {
            "server_name": self.conf["myhostname"], "client": self.client_namaddr,
            "client_port": str(self.client_port), "client_address": self.client_addr,
            "client_name": self.client_name, "reverse_client_name": self.client_name,
            "helo_name": self.helo_name or "",
            "sender": tx.sender if tx else "", "recipient": "",
            "localtime": time.strftime("%b %d %H:%M:%S", time.gmtime(self.host.clock.now())),
        }
        allowed = set(_unescape(self.conf.get("smtpd_expansion_filter") or ""))

        def one(m: re.Match) -> str:
            name = m.group(1) or m.group(2)
            v = values.get(name, "")
            return "".join(ch if ch in allowed or not allowed else "_" for ch in v)
        return re.sub(r"\$\{?(?:(\w+)\}|(\w+))", one, text)

    def log_warning(self, text: str) -> None:
        self.log.write("smtpd", self.pid, f"warning: {text}")

    def log_whatsup(self, whatsup: str, text: str) -> None:
        """``QUEUEID: reject: RCPT from client: text; from=<> to=<> proto=ESMTP helo=<>``."""
        qid = self.tx.queue_id if self.tx is not None and self.tx.queue_id else "NOQUEUE"
        line = f"{qid}: {whatsup}: {self.where} from {self.client_namaddr}: {text};"
        sender = self._sender_for_log if self._sender_for_log is not None else (
            self.tx.sender if self.tx is not None else None)
        if sender is not None:
            line += f" from=<{quote_local(sender) if sender else ''}>"
        if self._rcpt_for_log is not None:
            line += f" to=<{quote_local(self._rcpt_for_log)}>"
        line += f" proto={self.protocol}"
        if self.helo_name is not None:
            line += f" helo=<{self.helo_name}>"
        self.log.write("smtpd", self.pid, line)

    def log_check_reject(self, r: Reply) -> None:
        """Log a reject made outside the restriction lists (the SIZE= check) the way
        smtpd_check.c's smtpd_check_reject() does: with soft_bounce, the logged code is
        softened to 4xx (X.Y.Z too), matching the reply that _wire() sends."""
        if self.conf.bool("soft_bounce") and r.code >= 500:
            r = Reply(r.code - 100, "4" + (r.enhanced or "5.0.0")[1:], r.text, r.more)
        self.log_whatsup("reject", f"{r.code} {r.enhanced} {r.text}")


    def _flag_pipelining(self) -> None:
        """Log (once) that the client sent more before it should have waited for a reply."""
        if self.ill_pipelining or not self._buf:
            return
        self.ill_pipelining = True
        shown = "".join(_escape(b) for b in self._buf[:100])
        self.log.write("smtpd", self.pid, f"improper command pipelining after {self.where} "
                                          f"from {self.client_namaddr}: {shown}")

    def _close(self) -> None:
        if self.tx is not None:
            self._reset_tx()
        self.closed = True
        self._chat_reset(0)
        ok = tot = 0
        parts = []
        for name, (s, t) in self.counts.items():
            if t:
                ok, tot = ok + s, tot + t
                parts.append(f"{name.lower()}={s}" if s == t else f"{name.lower()}={s}/{t}")
        parts.append(_commands_total(ok, tot))
        self.log.write("smtpd", self.pid, f"disconnect from {self.client_namaddr} {' '.join(parts)}")

    # -- the command loop (smtpd_proto) -----------------------------------------------------------
    def _command(self, raw: bytes) -> bytes:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        elif self._bare_lf & 2:
            out = self._wire(self._bare_lf_reply())
            self._close()
            return out
        if len(raw) > self._limit:
            self.log_warning(f"{self.client_namaddr}: request longer than {self._limit}: "
                             f"{raw[:30].decode('latin-1')}...")
            raw = raw[: self._limit]
        nul = raw.find(b"\0")
        if nul >= 0:
            raw = raw[:nul]
        self.transcript.command(raw.decode("utf-8", "surrogateescape"))
        reply = self._dispatch(raw)
        out = self._wire(reply) if reply is not None else b""
        if self._quitting and not self.closed:
            self._close()
        if reply is not None and reply.code in (421, 521) and not self.closed:
            self._close()
        if reply is not None and reply.code >= 400 and \
                self.error_count >= self.conf.int("smtpd_soft_error_limit"):
            self.delay += self.conf.time("smtpd_error_sleep_time")
        if self.hangup:
            self._close()
            return b""
        return out + self._check_error_limit()

    def _check_error_limit(self) -> bytes:
        """Top of smtpd's command loop: too many errors ends the session with 421."""
        if self.closed or self._mode != "command" or \
                self.error_count < self.conf.int("smtpd_hard_error_limit"):
            return b""
        out = self._wire(R.too_many_errors(self.conf["myhostname"]))
        self.log.write("smtpd", self.pid, f"too many errors after {self.where} from {self.client_namaddr}")
        self._close()
        return out

    def _dispatch(self, raw: bytes) -> Reply | None:
        c = self.conf
        line = raw.decode("utf-8", "surrogateescape")
        if c.bool("smtputf8_enable"):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                self.error_count += 1
                return R.BAD_UTF8
        words = line.split()
        if not words:
            self.error_count += 1
            return R.BAD_SYNTAX
        verb = words[0].upper()
        name = verb if verb in self.counts and verb != "UNKNOWN" else "unknown"
        self.counts[name][1] += 1
        if name == "unknown":
            self.where = "UNKNOWN"
            if _HEADER.match(words[0]) or self._is_forbidden(words[0]):
                self.log_warning(f"non-SMTP command from {self.client_namaddr}: "
                                 + "".join(_escape(b) for b in raw[:100]))
                self._close()
                return R.BREAK_RULES
        if self.access_denied is not None and verb != "QUIT":
            self.error_count += 1
            return Reply(503, "5.7.0", f"Error: access denied for {self.client_namaddr}")
        if name == "unknown":
            self.error_count += 1
            return R.UNKNOWN
        if self.tls_policy.enforce and self.tls_info is None and verb not in _PRE_TLS:
            self.error_count += 1
            return R.STARTTLS_FIRST
        self.where = verb
        if (self.protocol != "ESMTP" or verb in _LAST) and not self.ill_pipelining and self._buf:
            self._flag_pipelining()
            if c.bool("smtpd_forbid_unauth_pipelining"):
                self._close()
                return Reply(554, "5.5.0", "Error: SMTP protocol synchronization")
        args = words[1:]
        handler = getattr(self, "cmd_" + verb.lower())
        reply, ok = handler(args, line)
        if ok:
            self.counts[name][0] += 1
        elif ok is False:
            self.error_count += 1
        if verb in _LIMITED:
            if self.junk_cmds > c.int("smtpd_junk_command_limit"):
                self.error_count += 1
            self.junk_cmds += 1
        if verb == "QUIT":
            self._quitting = True      # closed once "221 2.0.0 Bye" is out (in the transcript too)
        return reply

    def _is_forbidden(self, word: str) -> bool:
        for item in self._forbidden:
            if ":" in item:
                try:
                    if self.host.open_map(item).lookup(word) is not None:
                        return True
                except MapError:
                    continue
            elif item.upper() == word.upper():
                return True
        return False

    # -- HELO / EHLO --------------------------------------------------------------------------------
    def cmd_helo(self, args: list[str], line: str, esmtp: bool = False) -> tuple[Reply, bool]:
        if not args:
            return (R.EHLO_SYNTAX if esmtp else R.HELO_SYNTAX), False
        name = " ".join(args)
        if not self.conf.bool("smtpd_delay_reject"):
            saved = self.helo_name
            self.helo_name = name
            d = self.checker.evaluate(self.where, name, [("helo", name)])
            self.helo_name = saved
            if d.reply is not None:
                return d.reply, False
        self._reset_tx()
        self._chat_reset(self.conf.int("smtpd_history_flush_threshold"))
        self.helo_name = _neuter(name)
        self.protocol = "ESMTP" if esmtp else _helo_protocol(self.protocol)
        me = self.conf["myhostname"]
        if not esmtp:
            return Reply(250, None, me), True
        if self._discard and "ENHANCEDSTATUSCODES" not in self._discard \
                and "SILENT-DISCARD" not in self._discard:
            self.log.write("smtpd", self.pid, f"discarding EHLO keywords: {_ehlo_mask_names(self._discard)}")
        return Reply(250, None, me, tuple(self.ehlo_keywords())), True

    def cmd_ehlo(self, args, line):
        return self.cmd_helo(args, line, esmtp=True)

    def ehlo_keywords(self) -> list[str]:
        """The EHLO extension list, as Postfix builds it from the configuration."""
        c = self.conf
        kw = ["PIPELINING", f"SIZE {self._msg_limit}" if self._msg_limit else "SIZE"]
        if not c.bool("disable_vrfy_command"):
            kw.append("VRFY")
        kw.append("ETRN")
        if self.tls_available():
            kw.append("STARTTLS")
        if "AUTH" not in self._discard and self.sasl is not None and not self._sasl_exception():
            kw.append(f"AUTH {self.sasl.announced}")
            if c.bool("broken_sasl_auth_clients"):
                kw.append(f"AUTH={self.sasl.announced}")
        kw += ["ENHANCEDSTATUSCODES", "8BITMIME", "DSN"]
        if c.bool("smtputf8_enable"):
            kw.append("SMTPUTF8")
        kw.append("CHUNKING")
        return [k for k in kw if k.split()[0] not in self._discard]

    def tls_available(self) -> bool:
        """EHLO offers STARTTLS when TLS is turned on and not active yet (even when the
        keys could not be loaded: then STARTTLS answers 454)."""
        return self.tls_policy.use and self._tls is None

    # -- MAIL ------------------------------------------------------------------------------------------
    def _split_from_to(self, args: list[str], line: str, keyword: str) -> tuple[str | None, str] | None:
        """``MAIL FROM:<a> X=y`` -> ("<a>", "X=y"), accepting Postfix's sloppy forms.

        None: no ``FROM:``/``TO:`` argument (a syntax error); ``(None, "")``: a ``<`` that
        is never closed (Postfix's tokenizer error: "Bad ... address syntax").
        """
        rest = line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else ""
        m = re.match(rf"(?i){keyword}:", rest)
        if not m:
            return None
        after = rest[m.end():]
        if not after.strip():
            return None
        return split_argument(after)

    def cmd_mail(self, args, line) -> tuple[Reply, bool]:
        c = self.conf
        if c.bool("smtpd_helo_required") and self.helo_name is None:
            return R.SEND_HELO, False
        if self.tx is not None:
            return R.NESTED_MAIL, False
        if self._bdat_active:
            return Reply(503, "5.5.1", "Error: MAIL after BDAT"), False
        parts = self._split_from_to(args, line, "FROM")
        if parts is None:
            return R.MAIL_SYNTAX, False
        tok, rest = parts
        if tok is None:
            return R.BAD_SENDER, False
        params = rest.split()
        addr = self._extract(tok, "MAIL", allow_empty=True)
        if addr is None:
            return R.BAD_SENDER, False
        opts: dict[str, str] = {}
        size = 0
        for p in params:
            up = p.upper()
            if up.startswith(("RET=", "ENVID=")) and "DSN" in self._discard:
                return R.DSN_DISABLED, False
            if up in ("BODY=8BITMIME", "BODY=7BIT"):
                opts["BODY"] = up[5:]
            elif up.startswith("SIZE="):
                if not p[5:].isdigit():
                    return R.BAD_SIZE, False
                size = int(p[5:])
                if size >= 2 ** 63:
                    return Reply(552, "5.3.4", "Message size exceeds file system imposed limit"), False
            elif up == "SMTPUTF8" and c.bool("smtputf8_enable") and "SMTPUTF8" not in self._discard:
                opts["SMTPUTF8"] = "yes"
            elif up.startswith("AUTH="):
                # smtpd_sasl_mail_opt(): kept (printable) for the client= line and the
                # queue file, until the transaction is reset; "<>" means no one
                if self.sasl_sender is not None:
                    return R.AUTH_MULTIPLE, False
                if p[5:] != "<>":
                    self.sasl_sender = "".join(ch if " " <= ch <= "~" else "?" for ch in p[5:])
            elif up.startswith("RET="):
                if "RET" in opts or up[4:] not in ("FULL", "HDRS"):
                    return R.BAD_RET, False
                opts["RET"] = up[4:]
            elif up.startswith("ENVID="):
                v = _xtext_decode(p[6:])
                if "ENVID" in opts or v is None or not v.isprintable():
                    return R.BAD_ENVID, False
                opts["ENVID"] = v
            else:
                return R.unsupported_option(p), False
        if self._msg_limit and size > self._msg_limit:
            self._sender_for_log = addr
            self.log_check_reject(R.SIZE_EXCEEDS)
            self._sender_for_log = None
            return R.SIZE_EXCEEDS, False
        self.tx = Transaction(addr, opts, size_declared=size)
        if not c.bool("smtpd_delay_reject"):
            d = self.checker.evaluate("MAIL", addr, [("sender", addr)])
            if d.reply is not None:
                self._reset_tx()
                return d.reply, False
        return R.MAIL_OK, True

    def resolve(self, addr: str):
        """trivial-rewrite's answer for ``addr`` (remembered for this session's next question).

        smtpd_resolve.c keys its cache by sender and address: the transaction's sender
        (none while MAIL FROM itself is checked, or outside a transaction)."""
        key = (self.tx.sender if self.tx is not None else None, addr)
        r = self._resolved.get(key)
        if r is None:
            if len(self._resolved) > 100:
                self._resolved.clear()
            try:
                r = self._resolved[key] = self.trivial.resolve(addr)
            except MapError as e:
                # smtpd_resolve.c's cache keeps a failed answer too: asked again in this
                # session, trivial-rewrite is not asked (and does not warn) again
                self._resolved[key] = e
                raise
            # trivial-rewrite warns on every query it answers for such a domain
            # (smtpd's resolve cache spares it the repeated ones)
            self.host.warn_if_conflict(r.domain)
        if isinstance(r, MapError):
            raise r
        return r

    def _extract(self, tok: str, where: str, allow_empty: bool) -> str | None:
        """extract_addr: the internal address, or None (after logging) if it is illegal."""
        c = self.conf
        strict = c.bool("strict_rfc821_envelopes")
        addr, problem = extract_address(tok, strict=strict)
        if problem is None:
            bad = (addr == "" and not allow_empty) or (strict and addr.startswith("@"))
            if not bad and addr:
                try:
                    bad = self.resolve(addr).error
                except MapError:
                    bad = False     # smtpd_check_addr ignores lookup failures here
            if bad:
                problem = "illegal"
        if problem:
            shown = "".join(ch if ch.isprintable() else "?" for ch in tok)
            self.log_warning(f"Illegal address syntax from {self.client_namaddr} in {where} command: {shown}")
            return None
        return addr

    # -- RCPT ------------------------------------------------------------------------------------------
    def cmd_rcpt(self, args, line) -> tuple[Reply, bool]:
        c = self.conf
        if self.tx is None:
            return R.NEED_MAIL, False
        if self._bdat_active:
            return Reply(503, "5.5.1", "Error: RCPT after BDAT"), False
        parts = self._split_from_to(args, line, "TO")
        if parts is None:
            return R.RCPT_SYNTAX, False
        tok, rest = parts
        if tok is None:
            return R.BAD_RCPT, False
        addr = self._extract(tok, "RCPT", allow_empty=False)
        if addr is None:
            return R.BAD_RCPT, False
        notify = orcpt = ""
        for p in rest.split():
            up = p.upper()
            if up.startswith(("NOTIFY=", "ORCPT=")) and "DSN" in self._discard:
                return R.DSN_DISABLED, False
            if up.startswith("NOTIFY="):
                vals = up[7:].split(",")
                ok = vals and all(v in ("NEVER", "SUCCESS", "FAILURE", "DELAY") for v in vals) \
                    and not ("NEVER" in vals and len(vals) > 1)
                if not ok:
                    for v in p[7:].split(","):
                        if v.upper() not in ("NEVER", "SUCCESS", "FAILURE", "DELAY"):
                            self.log_warning(f'unknown DSN NOTIFY command value "{v}" in "{p[7:]}"')
                            break
                if notify or not ok:
                    return R.BAD_NOTIFY, False
                notify = ",".join(vals)
            elif up.startswith("ORCPT="):
                typ, semi, coded = p[6:].partition(";")
                decoded = _xtext_decode(coded) if semi else None
                if orcpt or not semi or not typ or decoded is None:
                    return R.BAD_ORCPT, False
                orcpt = f"{typ};{decoded}"
            else:
                return R.unsupported_option(p), False
        limit = c.int("smtpd_recipient_limit")
        if limit and len(self.tx.recipients) >= limit:
            self._overshoot += 1
            return R.TOO_MANY_RCPT, self._overshoot <= c.int("smtpd_recipient_overshoot_limit")
        self._rcpt_for_log = addr
        d = self.checker.check_rcpt("RCPT", addr)
        self._rcpt_for_log = self.tx.recipients[0].address if self.tx.recipients else None
        if d.reply is not None:
            return d.reply, False
        if self.tx.queue_id is None:
            self.tx.file = self.host.new_queue_file()
            self.tx.queue_id = self.tx.file.queue_id
            self.log.write("smtpd", self.pid, f"{self.tx.queue_id}: client={self.client_namaddr}"
                                              f"{self.client_log_suffix()}")
        if not orcpt:
            orcpt = "rfc822;" + (tok[1:-1] if tok.startswith("<") and tok.endswith(">") else tok)
        self.tx.recipients.append(Recipient(addr, addr, notify, orcpt))
        self._rcpt_for_log = self.tx.recipients[0].address
        d.reply = R.RCPT_OK
        return R.RCPT_OK, True

    # -- DATA ------------------------------------------------------------------------------------------
    def cmd_data(self, args, line) -> tuple[Reply, bool]:
        if self._bdat_active:
            return Reply(503, "5.5.1", "Error: DATA after BDAT"), False
        if self.tx is None or not self.tx.recipients:
            return (R.NEED_RCPT if self.tx is None else R.NO_VALID_RCPT), False
        if args:
            return R.DATA_SYNTAX, False
        d = self.check_data("DATA")
        if d.reply is not None:
            return d.reply, False
        self._start_message()
        self._mode = "data"
        return R.DATA_GO, True

    def check_data(self, stage: str) -> Decision:
        """smtpd_data_restrictions ("DATA") or smtpd_end_of_data_restrictions
        ("END-OF-MESSAGE"). smtpd_check.c (smtpd_check_data, smtpd_check_eod): with more
        than one accepted recipient there is no current recipient, as the restriction
        applies to them all: its reject is logged without to=, and recipient checks skip."""
        saved = self._rcpt_for_log
        if self.tx is not None and len(self.tx.recipients) > 1:
            self._rcpt_for_log = None
        try:
            return self.checker.evaluate(stage, "DATA", [("data" if stage == "DATA" else "eod", stage)])
        finally:
            self._rcpt_for_log = saved

    def _start_message(self) -> None:
        self._got_bare_lf = self._prev_bare_lf = self._bare_lf_error = False
        self._data = []
        self._act_size = 0
        self._too_big = False
        self._prev_cont = False

    def _data_line(self, raw: bytes) -> bytes | None:
        self._prev_bare_lf = self._got_bare_lf
        self._got_bare_lf = not raw.endswith(b"\r")
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if self._got_bare_lf and self._bare_lf & 2:
            self._bare_lf_error = True
        if raw == b"." and self._bare_lf & 1 and (self._got_bare_lf or self._prev_bare_lf) \
                and not self._prev_cont:
            return None          # "<LF>.<LF>" does not end DATA: no smuggling

        # a line longer than line_length_limit is stored in pieces; only a real line can end DATA
        while len(raw) > self._limit:
            self._store(raw[: self._limit], cont=True)
            raw = raw[self._limit:]
        if not self._prev_cont and raw.startswith(b"."):
            raw = raw[1:]
            if not raw:
                self._mode = "command"
                self.where = "END-OF-MESSAGE"
                return self._end_of_message(bdat=False)
        self._store(raw, cont=False)
        return None

    def _store(self, line: bytes, cont: bool) -> None:
        # smtpd.c: after an error (bare <LF> reject, size) no more records go to cleanup
        if not self._too_big and not self._bare_lf_error:
            n = len(line) + 2
            if self._msg_limit and self._msg_limit - self._act_size < n:
                self._too_big = True
                self.log_warning(f"{self.tx.queue_id or 'NOQUEUE'}: queue file size limit exceeded")
            else:
                self._act_size += n
                self._data.append(line + (b"" if cont else b"\n"))
        self._prev_cont = cont

    def _end_of_message(self, bdat: bool) -> bytes:
        """End of DATA: cleanup, then "250 ... queued as" (or why not)."""
        reply, ok = self._finish_message(bdat=False)
        if not ok:
            self.counts["DATA"][0] -= 1      # DATA was counted a success when 354 went out
            self.error_count += 1
        return self._wire(reply) + self._check_error_limit()

    def _finish_message(self, bdat: bool) -> tuple[Reply, bool]:
        tx = self.tx
        if self._bare_lf_error:
            reply, ok = self._bare_lf_reply(), False
        elif self._too_big:
            reply, ok = R.FILE_TOO_BIG, False      # cleanup's side: _abort_cleanup()
        else:
            d = self.check_data("END-OF-MESSAGE")
            if d.reply is not None:
                # Postfix drops the queue file but, unlike other failures, keeps the
                # transaction: the next MAIL gets "nested MAIL command" until RSET.
                self._abort_cleanup()
                if tx.file is not None:
                    tx.file.abort()
                tx.file = tx.queue_id = None
                return d.reply, False
            from ..cleanup import cleanup_smtpd
            result = cleanup_smtpd(self.host, self, tx, b"".join(self._data))
            if result is True:
                reply = (Reply(250, "2.0.0", f"Ok: {self._act_size} bytes queued as {tx.queue_id}")
                         if bdat else R.queued(tx.queue_id))
                ok = True
            elif result is False:
                reply, ok = R.FILE_TOO_BIG, False
            else:                                   # cleanup's refusal: "550 5.7.1 text"
                code, dsn, text = result.split(" ", 2)
                reply, ok = Reply(int(code), dsn, text), False
        self._reset_tx()                            # clears self._data
        self._chat_reset(self.conf.int("smtpd_history_flush_threshold"))
        if ok:
            self.error_count = self.junk_cmds = 0
        return reply, ok

    # -- BDAT (RFC 3030) --------------------------------------------------------------------------------
    def cmd_bdat(self, args, line) -> tuple[Reply | None, bool]:
        """BDAT's reply comes after its chunk has been read (None now; see :meth:`_bdat_end`)."""
        if "CHUNKING" in self._discard:
            return Reply(521, "5.5.1", "Error: command not implemented"), False
        if not args or len(args) > 2 or not args[0].isdigit() or int(args[0]) >= 2 ** 63 or \
                (len(args) == 2 and args[1].upper() != "LAST"):
            qid = self.tx.queue_id if self.tx and self.tx.queue_id else "NOQUEUE"
            self.log_warning(f"{qid}: malformed BDAT command syntax from {self.client_namaddr}: {line[:100]}")
            return Reply(521, "5.5.4", "Syntax: BDAT count [LAST]"), False
        size, last = int(args[0]), len(args) == 2
        skip: Reply | None = None
        qid = self.tx.queue_id if self.tx and self.tx.queue_id else "NOQUEUE"
        if size == 0 and not last:
            self.log_warning(f"{qid}: null BDAT request from {self.client_namaddr}")
            skip = Reply(551, "5.7.1", "Null BDAT request")
        elif self._bdat_error:
            skip = Reply(551, "5.0.0", f"Discarded {size} bytes after earlier error")
        elif not self._bdat_active:
            if self.tx is None or not self.tx.recipients:
                skip = R.NEED_RCPT if self.tx is None else R.NO_VALID_RCPT
            else:
                skip = self.check_data("DATA").reply
        if skip is None and self._msg_limit and self._act_size > self._msg_limit - size:
            self.log_warning(f"{qid}: BDAT request from {self.client_namaddr} exceeds message size limit")
            skip = Reply(552, "5.3.4", "Chunk exceeds message size limit")
        if skip is None and not self._bdat_active:
            self._bdat_active = True
            self._start_message()
            self._bdat_partial = b""
        self._bdat_left, self._bdat_last, self._bdat_reply, self._bdat_size = size, last, skip, size
        self._mode = "bdat"
        self.where = "BDAT"
        return None, True

    def _bdat_feed(self, chunk: bytes) -> None:
        lines = (self._bdat_partial + chunk).split(b"\n")
        self._bdat_partial = lines.pop()
        for ln in lines:
            self._store(ln[:-1] if ln.endswith(b"\r") else ln, cont=False)

    def _bdat_end(self) -> bytes:
        self._mode = "command"
        if self._bdat_reply is not None:
            reply, ok = self._bdat_reply, False
            if self._bdat_last:
                self._reset_tx()
            else:
                self._bdat_error = True
        elif self._bdat_last:
            if self._bdat_partial:
                self._store(self._bdat_partial, cont=False)
                self._bdat_partial = b""
            # smtpd.c, bdat_cmd: the last chunk read, the rest (smtpd_end_of_data_restrictions,
            # cleanup) happens "after END-OF-MESSAGE", as for DATA's "."
            self.where = "END-OF-MESSAGE"
            reply, ok = self._finish_message(bdat=True)
        elif self._too_big:
            reply, ok = self._finish_message(bdat=True)
            self._bdat_error = True
        else:
            reply, ok = Reply(250, "2.0.0", f"Ok: {self._bdat_size} bytes"), True
        if not ok:
            self.counts["BDAT"][0] -= 1
            self.error_count += 1
        return self._wire(reply) + self._check_error_limit()

    # -- small commands ------------------------------------------------------------------------------
    def _chat_reset(self, threshold: int) -> None:
        """smtpd.c chat_reset(): past ``threshold`` transcript lines (0 at the end of the
        session), mail the postmaster the transcript if its errors are in notify_classes
        (:mod:`mailsim.smtpd.notify`; not in stand-alone mode), then start a new one."""
        if len(self.transcript.lines) > threshold:
            if not self.stand_alone:
                notice(self.host, self, self.transcript, self._abort_reason)
            self.transcript.reset()

    def _abort_cleanup(self) -> None:
        """Close cleanup's stream without its end record (smtpd.c mail_reset(), and
        common_post_message_handling() after an end-of-data reject): cleanup processes
        the content it was sent so far and logs as it does (message-id=...)."""
        tx = self.tx
        if tx is not None and getattr(tx.file, "pending", False) and self._data:   # not postdrop's
            from ..cleanup import cleanup_smtpd_aborted
            cleanup_smtpd_aborted(self.host, self, tx, b"".join(self._data))
        self._data = []

    def _reset_tx(self) -> None:
        self._abort_cleanup()
        if self.tx is not None and self.tx.file is not None:
            self.tx.file.abort()       # no-op once the message was committed
        self.tx = None
        self.tx_hold = self.tx_discard = False
        self.tx_actions = []
        self._rcpt_for_log = None
        self._bdat_active = False
        self._bdat_error = False
        self._overshoot = 0
        self.sasl_sender = None              # mail_reset() -> smtpd_sasl_mail_reset()

    def cmd_rset(self, args, line) -> tuple[Reply, bool]:
        if args:
            return R.RSET_SYNTAX, False
        self._reset_tx()
        self._chat_reset(self.conf.int("smtpd_history_flush_threshold"))
        return R.OK, True

    def cmd_noop(self, args, line) -> tuple[Reply, bool]:
        return R.OK, True

    def cmd_quit(self, args, line) -> tuple[Reply, bool]:
        return R.BYE, True

    def cmd_vrfy(self, args, line) -> tuple[Reply, bool]:
        c = self.conf
        if c.bool("disable_vrfy_command"):
            return R.VRFY_DISABLED, False
        if c.bool("smtputf8_enable") and len(args) > 1 and args[-1].upper() == "SMTPUTF8":
            args = args[:-1]
        if not args:
            return (R.VRFY_SYNTAX if c.bool("smtputf8_enable")
                    else Reply(501, "5.5.4", "Syntax: VRFY address")), False
        text = " ".join(args)
        addr = self._extract(text, "VRFY", allow_empty=False)
        if addr is None:
            return R.BAD_RCPT, False
        saved = self._rcpt_for_log
        self._rcpt_for_log = addr
        d = self.checker.check_rcpt("VRFY", addr)
        self._rcpt_for_log = saved
        if d.reply is not None:
            return d.reply, False
        return Reply(252, "2.0.0", text), True

    #: smtpd -S (``sendmail -bs``): ETRN is refused (SMTPD_STAND_ALONE)
    stand_alone = False

    def cmd_etrn(self, args, line) -> tuple[Reply, bool]:
        """ETRN (RFC 1985): ask flush(8) to deliver a site's deferred mail now.

        smtpd.c's order: HELO first if smtpd_helo_required, not inside a mail
        transaction, exactly one argument (a leading ``@`` or ``#`` is dropped),
        a valid host name or address literal, not in stand-alone mode, the
        delayed client and HELO restrictions and smtpd_etrn_restrictions; then
        the site must be in fast_flush_domains. The replies have no enhanced
        status code (RFC 1985 predates them) except those of the restrictions.
        """
        c = self.conf
        if c.bool("smtpd_helo_required") and self.helo_name is None:
            return Reply(503, None, "Error: send HELO/EHLO first"), False
        if self.tx is not None:
            return Reply(503, None, "Error: MAIL transaction in progress"), False
        if len(args) != 1:
            return R.ETRN_SYNTAX, False
        dom = args[0][1:] if args[0][:1] in "@#" else args[0]
        # Postfix's valid_hostname() refuses a trailing dot (check.valid_hostname allows it)
        if (dom.endswith(".") or not valid_hostname(dom)) and not valid_literal(dom):
            return Reply(501, None, "Error: invalid parameter syntax"), False
        if self.stand_alone:
            self.log_warning('do not use ETRN in "sendmail -bs" mode')
            return Reply(458, None, "Unable to queue messages"), False
        d = self.checker.evaluate("ETRN", dom, (self.checker.delayed_lists()[:2]
                                                if c.bool("smtpd_delay_reject") else []) + [("etrn", dom)])
        if d.reply is not None:
            return d.reply, False
        from .. import flush
        status = flush.send_site(self.host, dom)
        if status == flush.OK:
            return Reply(250, None, "Queuing started"), True
        if status == flush.DENY:
            self.log_warning(f"reject: ETRN {dom[:100]}... from {self.client_namaddr}")
            return Reply(459, None, f"<{dom}>: service unavailable"), False
        if status == flush.BAD:
            self.log_warning(f"bad ETRN {dom[:100]}... from {self.client_namaddr}")
        else:
            self.log_warning("unable to talk to fast flush service")
        return Reply(458, None, "Unable to queue messages"), False

    def cmd_starttls(self, args, line) -> tuple[Reply, bool]:
        """starttls_cmd(): the checks in Postfix's order; on 220 the input is reset
        (helo_reset, mail_reset, rcpt_reset) and the handshake begins."""
        if args:
            return R.STARTTLS_SYNTAX, False
        if self._tls is not None:
            return R.TLS_ACTIVE, False
        if not self.tls_policy.use or "STARTTLS" in self._discard:
            return R.NOT_IMPLEMENTED, False
        if self.tls_app is None:
            return R.TLS_UNAVAILABLE, False
        self._tls_pending = True
        self.helo_name = None
        self._reset_tx()
        return R.TLS_GO, True

    def cmd_auth(self, args, line) -> tuple[Reply, bool | None]:
        """smtpd_sasl_auth_cmd(): the checks in Postfix's order, then the SASL exchange.

        A challenge (``334 ...``) leaves the command open (``None``): the client's
        next line is its response (:meth:`_auth_response`), ``*`` cancels."""
        c = self.conf
        if c.bool("smtpd_helo_required") and self.helo_name is None:
            return R.SEND_HELO, False
        if self.stand_alone or self.sasl is None or "AUTH" in self._discard:
            return R.AUTH_NOT_ENABLED, False
        if self.tx is not None:
            return R.AUTH_IN_TRANSACTION, False
        if c.bool("smtpd_tls_auth_only") and self.tls_info is None:
            return R.AUTH_NEED_TLS, False
        if self.sasl_username:
            return R.AUTH_ALREADY, False
        if len(args) not in (1, 2):
            return R.AUTH_SYNTAX, False
        self._auth_mech = args[0]
        return self._auth_result(self.sasl.start(args[0], args[1] if len(args) == 2 else None))

    def _auth_result(self, step: saslmod.Step) -> tuple[Reply, bool | None]:
        """smtpd_sasl_authenticate(): a challenge, success, or the failure and its warning."""
        mech = self._auth_mech
        if step.status == "more":
            self._mode = "auth"
            return Reply(334, None, step.text), None
        self._mode = "command"
        if step.status == "done":
            self.sasl_username = _printable(self.sasl.username or "")
            self.sasl_method = _printable(mech)
            return R.AUTH_OK, True
        reason = step.text or "(reason unavailable)"
        user = self.sasl.username
        self.log_warning(f"{self.client_namaddr}: SASL {mech[:100]} authentication failed: "
                         f"{reason}, sasl_username={_printable(user)[:100] if user else '(unavailable)'}")
        if step.status == "temp":
            return Reply(454, "4.7.0", f"Temporary authentication failure: {reason}"), False
        return Reply(535, "5.7.8", f"Error: authentication failed: {reason}"), False

    def _auth_response(self, raw: bytes | None) -> bytes:
        """The client's answer to a 334 challenge (None: longer than smtpd_sasl_response_limit)."""
        if raw is None:
            shown = "".join(chr(b) if 32 <= b < 127 else "?" for b in self._auth_overflow[:30])
            self._auth_overflow = None
            self.log_warning(f"{self.client_namaddr}: request longer than "
                             f"{self.conf.int('smtpd_sasl_response_limit')}: {shown}...")
            self._mode = "command"
            reply, ok = R.AUTH_TOO_LONG, False
        elif raw == b"*":
            self.log_warning(f"{self.client_namaddr}: SASL {self._auth_mech} authentication aborted")
            self._mode = "command"
            reply, ok = R.AUTH_ABORTED, False
        else:
            reply, ok = self._auth_result(self.sasl.next(raw.decode("utf-8", "surrogateescape")))
        if ok:
            self.counts["AUTH"][0] += 1
        elif ok is False:
            self.error_count += 1
        out = self._wire(reply)
        if ok is False and self.error_count >= self.conf.int("smtpd_soft_error_limit"):
            self.delay += self.conf.time("smtpd_error_sleep_time")
        return out + (self._check_error_limit() if ok is not None else b"")

    def cmd_xclient(self, args, line) -> tuple[Reply, bool]:
        return R.NO_AUTHORIZATION, False

    cmd_xforward = cmd_xclient


def _commands_total(ok: int, total: int) -> str:
    """The disconnect line's last counter (smtpd.c, the session summary): ``commands=N``,
    with ``/TOTAL`` when some failed and also when none arrived at all ("0/0" marks an
    abnormal session).

    >>> _commands_total(3, 3), _commands_total(2, 3), _commands_total(0, 0)
    ('commands=3', 'commands=2/3', 'commands=0/0')
    """
    return f"commands={ok}" if ok == total and total else f"commands={ok}/{total}"


def _helo_protocol(current: str) -> str:
    """The protocol name after HELO (smtpd.c, helo_cmd): HELO does not downgrade ESMTP
    (an earlier EHLO's) to SMTP; only a name other than SMTP/ESMTP becomes SMTP.

    >>> _helo_protocol("ESMTP"), _helo_protocol("SMTP"), _helo_protocol("LMTP")
    ('ESMTP', 'SMTP', 'SMTP')
    """
    return current if current.upper() in ("SMTP", "ESMTP") else "SMTP"


def _printable(text: str) -> str:
    """Postfix's printable(text, '?'): anything but printable ASCII (UTF-8 kept) -> '?'."""
    return "".join(ch if ch.isprintable() and not 0xDC80 <= ord(ch) <= 0xDCFF else "?"
                   for ch in text)


def _comment_sanitize(text: str) -> str:
    """smtpd.c comment_sanitize(): printable ASCII only, no backslash, balanced parentheses.

    >>> _comment_sanitize("a(b))\\\\c(")
    'a(b)??c()'
    """
    out, depth = [], 0
    for ch in text:
        if not " " <= ch <= "~" or ch == "\\":
            out.append("?")
        elif ch == "(":
            depth += 1
            out.append(ch)
        elif ch == ")":
            if depth:
                depth -= 1
                out.append(ch)
            else:
                out.append("?")
        else:
            out.append(ch)
    return "".join(out) + ")" * depth


#: global/ehlo_mask.c's table, in its order (str_ehlo_mask() names bits this way)
_EHLO_MASK = ("8BITMIME", "AUTH", "ETRN", "PIPELINING", "SIZE", "VERP", "VRFY", "XCLIENT",
              "XFORWARD", "STARTTLS", "ENHANCEDSTATUSCODES", "DSN", "SMTPUTF8", "CHUNKING",
              "SILENT-DISCARD")


def _ehlo_mask_names(discard: set[str]) -> str:
    """``discarding EHLO keywords: ...`` names the keywords in ehlo_mask.c's order
    (SMTPUTF8 as ``EHLO_MASK_SMTPUTF8``, the first name the table has for that bit).

    >>> _ehlo_mask_names({"AUTH", "SMTPUTF8", "PIPELINING"})
    'AUTH PIPELINING EHLO_MASK_SMTPUTF8'
    """
    return " ".join("EHLO_MASK_SMTPUTF8" if k == "SMTPUTF8" else k
                    for k in _EHLO_MASK if k in discard)


def _unescape(text: str) -> str:
    """Postfix's unescape(): C escapes (\\t, \\n, \\40 octal, \\\\) in a parameter value.

    >>> _unescape("\\\\t\\\\40!")
    '\\t !'
    """
    return re.sub(r"\\([0-7]{1,3}|.)",
                  lambda m: chr(int(m.group(1), 8)) if m.group(1)[0] in "01234567"
                  else {"t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f", "v": "\v",
                        "a": "\a"}.get(m.group(1), m.group(1)), text)


def _neuter(name: str) -> str:
    """printable() then neuter(): the HELO name goes into logs and Received headers.

    >>> _neuter('a b<c>')
    'a?b?c?'
    """
    return "".join("?" if (not ch.isprintable() or ch in ' <>()\\";@') else ch for ch in name)


def _escape(b: int) -> str:
    """Postfix's escape(): C-style escapes for control characters in logged input."""
    return {13: "\\r", 10: "\\n", 9: "\\t", 92: "\\\\"}.get(
        b, chr(b) if 32 <= b < 127 else f"\\{b:03o}")


def _xtext_decode(s: str) -> str | None:
    """RFC 3461 xtext: ``+XX`` hex escapes; None if malformed."""
    out, i = [], 0
    while i < len(s):
        ch = s[i]
        if ch == "+":
            h = s[i + 1:i + 3]
            if len(h) != 2 or not all(x in "0123456789ABCDEF" for x in h):
                return None
            out.append(chr(int(h, 16)))
            i += 3
        elif "!" <= ch <= "~" and ch != "=":
            out.append(ch)
            i += 1
        else:
            return None
    return "".join(out)
