"""cleanup(8): every new message passes through here on its way into the queue.

Postfix's cleanup daemon receives a message from smtpd(8), pickup(8) (mail
from sendmail), bounce(8) (notifications) or local(8) (forwarded mail), and
writes the queue file that qmgr(8) will deliver. On the way it

1. rewrites envelope addresses to canonical form (``user`` ->
   ``user@$myorigin``; ``MAILER-DAEMON@$myorigin`` -> the null sender) and
   applies sender_canonical_maps / recipient_canonical_maps / canonical_maps
   (:mod:`mailsim.canonical`);
2. expands envelope recipients with virtual_alias_maps and drops duplicates
   (:mod:`mailsim.virtual_alias`);
3. runs header_checks and body_checks (mail from smtpd and sendmail only);
4. rewrites the addresses in From:, To:, Cc: ... headers in the client's
   rewriting context and applies the canonical maps to them;
5. adds a missing Message-Id:, Date:, From: (and ``undisclosed_recipients_header``)
   for local submissions (local_header_rewrite_clients, sendmail, bounces,
   forwarding) or always (always_add_missing_headers);
6. logs ``QID: message-id=<...>`` (``<>`` when there is none), refuses a
   message whose queue file outgrows message_size_limit, commits the queue
   file atomically into ``incoming`` (``hold`` for a HOLD action) and wakes
   qmgr.

The entry point is :func:`submit`; :func:`cleanup_smtpd` is smtpd's way in.

Parameters read (Postfix defaults): myhostname, mail_name (Postfix),
message_size_limit (10240000), always_add_missing_headers (no),
local_header_rewrite_clients (permit_inet_interfaces),
remote_header_rewrite_domain (empty), header_checks, body_checks (empty),
hopcount_limit (50), undisclosed_recipients_header (empty), myorigin,
cleanup_replace_stray_cr_lf (yes: a CR inside a line becomes a space),
empty_address_recipient (MAILER-DAEMON: where mail to ``<>`` goes),
header_from_format (standard),
plus what :mod:`mailsim.canonical` and :mod:`mailsim.virtual_alias` read.

Not simulated: milters, content_filter/FILTER routing, BCC maps,
masquerading, MIME header/body checks (mime_header_checks,
nested_header_checks), 8-bit/SMTPUTF8 detection, DSN "expanded" success
notices, Sender:/full-name From: headers from sendmail -F (pass the header).

Examples
--------
>>> received_header(helo="client.example.org", name="localhost", addr="127.0.0.1",
...     myhostname="mail.example.com", proto="ESMTP", queue_id="2AB9616003F",
...     rcpt="peter@example.com", when=1795597019.0)
'Received: from client.example.org (localhost [127.0.0.1])\\n\\tby mail.example.com (Postfix) with ESMTP id 2AB9616003F\\n\\tfor <peter@example.com>; Wed, 25 Nov 2026 08:56:59 +0000 (UTC)'

A message from sendmail (pickup) gets its missing headers and a canonical
sender:

>>> import tempfile
>>> from mailsim.host import init_host
>>> from mailsim.queue import Recipient
>>> h = init_host(tempfile.mkdtemp() + "/mx", hostname="mail.example.com", users=["peter"])
>>> qf = submit(h, sender="alice", recipients=[Recipient("peter", "peter")],
...             content=b"Subject: hi\\n\\nhello\\n", origin="pickup",
...             received="Received: by mail.example.com (Postfix, from userid 1000)")
>>> qf.sender, [r.address for r in qf.recipients]
('alice@example.com', ['peter@example.com'])
>>> print(qf.content.decode().split("\\n\\n")[0])      # doctest: +ELLIPSIS
Received: by mail.example.com (Postfix, from userid 1000)
Subject: hi
Message-Id: <...@mail.example.com>
Date: ... +0000 (UTC)
From: alice@example.com
"""
from __future__ import annotations

import email.utils
import re
import time
from dataclasses import dataclass, field

from .canonical import ExpansionTrouble, canonicalize, header_context, rewrite_header
from .postqueue import message_size
from .queue import IncomingFile, QueueFile, Recipient
from .virtual_alias import expand_recipients

__all__ = ["received_header", "rfc2822_date", "cleanup_smtpd", "cleanup_smtpd_aborted", "submit",
           "CleanupError", "ORIGINS"]

#: who hands cleanup a message (Postfix: the MAIL_SRC_* of the client)
ORIGINS = ("smtpd", "pickup", "bounce", "local")

_HEADER_NAME = re.compile(rb"^([!-9;-~]+):")


class CleanupError(Exception):
    """cleanup refused the message; nothing was queued.

    ``smtp``, ``dsn`` and ``text`` are what smtpd answers (``552``,
    ``5.3.4``, ``Error: message file too big``); ``kind`` is Postfix's
    cleanup status: size, content, defer, write, hops, bad, rcpt.
    """

    def __init__(self, kind: str, smtp: int, dsn: str, text: str) -> None:
        super().__init__(f"{smtp} {dsn} {text}")
        self.kind, self.smtp, self.dsn, self.text = kind, smtp, dsn, text


def _fail(kind: str, reason: str | None = None) -> CleanupError:
    """The error for a cleanup status, with Postfix's (cleanup_strerror.c) reply."""
    smtp, dsn, text = {
        "defer": (451, "4.7.1", "Error: service unavailable"),
        "bad": (451, "4.3.0", "Error: internal error"),
        "size": (552, "5.3.4", "Error: message file too big"),
        "hops": (554, "5.4.0", "Error: too many hops"),
        "content": (550, "5.7.1", "Error: message content rejected"),
        "write": (451, "4.3.0", "Error: queue file write error"),
        "rcpt": (550, "5.1.0", "Error: no recipients specified"),
    }[kind]
    if reason and kind in ("defer", "content"):
        dsn, _, text = reason.partition(" ")
    return CleanupError(kind, smtp, dsn, text)


def rfc2822_date(t: float) -> str:
    """``Wed, 25 Nov 2026 08:56:59 +0000 (UTC)`` -- Postfix's date form, in UTC."""
    return email.utils.formatdate(t, usegmt=False).replace("-0000", "+0000") + " (UTC)"


def received_header(*, helo: str | None, name: str, addr: str, myhostname: str, proto: str,
                    queue_id: str, rcpt: str | None, when: float, mail_name: str = "Postfix",
                    comments: list[str] | tuple[str, ...] = ()) -> str:
    """The Received: header smtpd gives cleanup (``for <rcpt>`` only with one recipient).

    ``comments``: lines after the first (smtpd_tls_received_header's ``(using TLSv1.3 ...)``).

    >>> received_header(helo=None, name="localhost", addr="127.0.0.1", myhostname="mx",
    ...     proto="SMTP", queue_id="767711602BE", rcpt=None, when=1795597098.0).split("\\n")
    ['Received: from localhost (localhost [127.0.0.1])', '\\tby mx (Postfix) with SMTP id 767711602BE;', '\\tWed, 25 Nov 2026 08:58:18 +0000 (UTC)']
    """
    h = f"Received: from {helo or name} ({name} [{addr}])"
    for line in comments:
        h += "\n" + line
    h += f"\n\tby {myhostname} ({mail_name}) with {proto} id {queue_id}"
    if rcpt is not None:
        h += f"\n\tfor <{rcpt}>; {rfc2822_date(when)}"
    else:
        h += f";\n\t{rfc2822_date(when)}"
    return h


# -- the queue file size message_size_limit is compared with --------------------------------------
#: Postfix queue-file bytes for the envelope records of a message from
#: alice@example.com to peter@example.com, client localhost[127.0.0.1], HELO
#: client.example.org (size, time and attribute records): measured on
#: Postfix 3.7.11 (tests/golden/postfix-3.7-recorded/size-boundary-small.json).
_ENVELOPE_BASE = 684


def _record(n: int) -> int:
    """Bytes of one queue-file record with ``n`` bytes of data (type, length, data)."""
    return 1 + (1 if n < 128 else 2 if n < 16384 else 3) + n


def queue_file_size(sender: str, recipients: list[Recipient], attrs: dict[str, str],
                    received: list[bytes], heads: list[bytes], body: list[bytes]) -> int:
    """An estimate of the size Postfix's queue file would have for this message.

    cleanup(8) refuses a message ("552 5.3.4 Error: message file too big") when
    its queue file would outgrow ``message_size_limit``; that file holds the
    envelope records and every header and body line. mailsim's queue files
    have another format, so this counts what Postfix's would hold: exact for
    the message, calibrated for the envelope.
    """
    size = _ENVELOPE_BASE
    size += len(sender) - len("alice@example.com")
    size += 2 * (len(attrs.get("helo_name", "")) - len("client.example.org"))
    size += 3 * (len(attrs.get("client_name", "")) - len("localhost"))
    size += 3 * (len(attrs.get("client_address", "")) - len("127.0.0.1"))
    for i, r in enumerate(recipients):
        extra = 3 * len(r.address) + len(r.orcpt) + len(r.notify)
        size += extra - (3 * len("peter@example.com") + len("rfc822;peter@example.com")) if i == 0 \
            else extra + 20
    for line in received + heads + body:
        size += _record(len(line))
    return size


# -- message content ---------------------------------------------------------------------------------
def split_headers(content: bytes) -> tuple[list[bytes], bytes]:
    """(header lines, rest): headers end at the first line that is not one (is_header())."""
    lines = content.split(b"\n")
    heads: list[bytes] = []
    i = 0
    while i < len(lines) - 1:
        ln = lines[i]
        if _HEADER_NAME.match(ln) or (heads and ln[:1] in (b" ", b"\t")):
            heads.append(ln)
            i += 1
        else:
            break
    return heads, b"\n".join(lines[i:])


def _logical_headers(heads: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for h in heads:
        if out and h[:1] in (b" ", b"\t"):
            out[-1] += b"\n" + h
        else:
            out.append(h)
    return out


def _name(header: bytes) -> str:
    m = _HEADER_NAME.match(header)
    return m.group(1).decode("ascii", "replace").lower() if m else ""


def _value(header: bytes) -> str:
    """The text after the colon, leading white space skipped (as cleanup logs it)."""
    return header.split(b":", 1)[1].lstrip(b" \t\r\n").decode("utf-8", "surrogateescape")


# -- one cleanup request ------------------------------------------------------------------------------
@dataclass
class _State:
    """What cleanup knows about the message being processed (Postfix's CLEANUP_STATE)."""
    host: object
    queue_id: str
    pid: int
    origin: str
    sender: str
    attrs: dict[str, str]
    context: str | None                 # header rewriting context: local, remote, None
    now: float
    recipients: list[Recipient] = field(default_factory=list)
    last_recipient: str | None = None   # Postfix's state->recip (logged by checks)
    hold: bool = False
    discard: bool = False
    actions: list[tuple[str, str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    resent: str = ""
    hops: int = 0

    def log(self, text: str) -> None:
        self.host.log.write("cleanup", self.pid, text)

    @property
    def filtered(self) -> bool:
        """header_checks / body_checks apply to mail from smtpd and sendmail (CLEANUP_FLAG_FILTER)."""
        return self.origin in ("smtpd", "pickup")


def _envelope_sender(st: _State, sender: str) -> str:
    """Rewrite (local context), null out MAILER-DAEMON, sender canonical maps (cleanup_addr_sender)."""
    host = st.host
    addr = host.trivial_rewrite().rewrite(sender) if sender else ""
    daemon = host.trivial_rewrite().rewrite("MAILER-DAEMON")
    if addr.lower() == daemon.lower():
        addr = ""
    if addr:
        addr, _ = canonicalize(host, addr, "sender", "envelope", st.queue_id, st.pid)
    return addr


def _envelope_recipients(st: _State, recipients: list[Recipient]) -> list[Recipient]:
    """Rewrite, recipient canonical maps, then virtual alias expansion (cleanup_addr_recipient)."""
    host = st.host
    out = []
    for r in recipients:
        addr = host.trivial_rewrite().rewrite(r.address or host.conf["empty_address_recipient"])
        if addr:
            addr, _ = canonicalize(host, addr, "recipient", "envelope", st.queue_id, st.pid)
        st.last_recipient = addr
        orcpt = r.orcpt or (f"rfc822;{addr}" if addr else "")
        out.append(Recipient(addr, r.orig or r.address, r.notify, orcpt))
    return expand_recipients(host, out, st.queue_id, st.pid)


def _who(st: _State) -> str:
    """cleanup_act_log()'s context: ``from ORIGIN; from=<> to=<> proto=P helo=<H>``."""
    a = st.attrs
    origin = f"{a['client_name']}[{a['client_address']}]" if a.get("client_address") else "local"
    text = f"from {origin}; from=<{st.sender}>"
    if st.last_recipient is not None:
        text += f" to=<{st.last_recipient}>"
    if a.get("protocol"):
        text += f" proto={a['protocol']}"
    if a.get("helo_name"):
        text += f" helo=<{a['helo_name']}>"
    return text


def _check(st: _State, kind: str, raw: bytes) -> list[bytes] | None:
    """header_checks / body_checks for one line (header_checks(5)).

    Returns the lines to keep in its place (``[]`` drops it); raises
    :class:`CleanupError` for REJECT. Supported: REJECT, DISCARD, HOLD, WARN,
    IGNORE, PREPEND, REPLACE, DUNNO/OK; FILTER, REDIRECT and BCC are logged
    and remembered only.
    """
    host = st.host
    specs = host.conf.list("header_checks" if kind == "header" else "body_checks")
    if not specs or not st.filtered:
        return None
    text = raw.decode("utf-8", "surrogateescape")
    value = None
    for spec in specs:
        try:
            value = host.open_map(spec).lookup(text)
        except Exception:     # a broken table: Postfix defers; keep going here
            value = None
        if value is not None:
            break
    if value is None:
        return None
    word, _, arg = value.partition(" ")
    action, arg = word.upper(), arg.strip()
    line = f"{st.queue_id}: {action.lower()}: {kind} {text} {_who(st)}"
    if action == "REJECT":
        m = re.match(r"^([45]\.\d{1,3}\.\d{1,3})\s+(.*)$", arg)
        reason = f"{m.group(1)} {m.group(2)}" if m else \
            (f"5.7.1 {arg}" if arg else "5.7.1 message content rejected")
        st.log(f"{line}: {reason}")
        raise _fail("defer" if reason[0] == "4" else "content", reason)
    if action == "DISCARD":
        st.log(line + (f": {arg}" if arg else ""))
        st.discard = True
        return [raw]
    if action in ("HOLD", "WARN"):
        name = "warning" if action == "WARN" else "hold"
        st.log(f"{st.queue_id}: {name}: {kind} {text} {_who(st)}" + (f": {arg}" if arg else ""))
        st.hold |= action == "HOLD"
        return [raw]
    if action == "IGNORE":
        return []
    if action in ("PREPEND", "REPLACE"):
        st.log(f"{line}: {arg}")
        new = arg.encode("utf-8", "surrogateescape")
        return [new, raw] if action == "PREPEND" else [new]
    if action in ("DUNNO", "OK"):
        return None
    if action in ("FILTER", "REDIRECT", "BCC"):
        st.log(f"{line}: {arg}")
        st.actions.append((action, arg))
        return [raw]
    st.log(f"warning: unknown command in {kind}_checks map: {value}")
    return None


def _header(st: _State, header: bytes) -> list[bytes]:
    """One logical header: header_checks, then :func:`_inspect`; returns what goes out."""
    kept = _check(st, "header", header)
    if st.discard:
        return []
    if kept is None or kept == [header]:
        return _inspect(st, header)
    if not kept:                                     # IGNORE
        return []
    if kept[-1] == header:                           # PREPEND: the header itself goes on
        return kept[:-1] + _inspect(st, header)
    return _inspect(st, kept[0])                     # REPLACE


def _inspect(st: _State, header: bytes) -> list[bytes]:
    """Bookkeeping (message-id, hops, Resent-) and address rewriting of one header."""
    name = _name(header)
    st.seen.add(name)
    if name == "received":
        st.hops += 1
        if st.hops >= st.host.conf.int("hopcount_limit"):
            st.log(f"warning: {st.queue_id}: message rejected: hopcount exceeded")
            raise _fail("hops")
    if name == "message-id":
        st.log(f"{st.queue_id}: message-id={_value(header)}")
    elif name == "resent-message-id":
        st.log(f"{st.queue_id}: resent-message-id={_value(header)}")
    if name in _RESENT:
        st.resent = "Resent-"
    if name in _drop_headers(st.host):
        return []               # message_drop_headers: Bcc:, Return-Path: ... never go out
    text = header.decode("utf-8", "surrogateescape")
    new = rewrite_header(st.host, text, st.context, st.queue_id, st.pid)
    return [header] if new == text else [new.encode("utf-8", "surrogateescape")]


def _drop_headers(host) -> frozenset[str]:
    """message_drop_headers (bcc, content-length, resent-bcc, return-path), lower case."""
    return frozenset(n.lower() for n in host.conf.list("message_drop_headers"))


_RESENT = {"resent-bcc", "resent-cc", "resent-date", "resent-from", "resent-message-id",
           "resent-reply-to", "resent-sender", "resent-to"}


def _missing(st: _State, file_time: float) -> list[bytes]:
    """The headers cleanup adds at the end of the headers (cleanup_header_done_callback)."""
    host, c = st.host, st.host.conf
    add = st.context is not None or c.bool("always_add_missing_headers")
    out: list[str] = []
    r = st.resent
    if st.hops < 1:
        st.log(f"warning: {st.queue_id}: message rejected: no Received: header")
        raise _fail("bad")
    if add and f"{r}message-id".lower() not in st.seen:
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(file_time))
        ident = f"{stamp}.{st.queue_id}@{c['myhostname']}"
        out.append(f"{r}Message-Id: <{ident}>")
        st.log(f"{st.queue_id}: {r.lower()}message-id=<{ident}>")
        st.seen.add(f"{r}message-id".lower())
    if "message-id" not in st.seen:
        st.log(f"{st.queue_id}: message-id=<>")
    if add and f"{r}date".lower() not in st.seen:
        out.append(f"{r}Date: {rfc2822_date(st.now)}")
    if add and f"{r}from".lower() not in st.seen:
        out.append(f"{r}From: " + _from_value(st))
    if add and not st.seen & {"to", "resent-to", "cc", "resent-cc"}:
        witheld = c["undisclosed_recipients_header"]
        if witheld and _HEADER_NAME.match(witheld.encode()):
            out.append(witheld)
        elif witheld:
            st.log(f'warning: bad undisclosed_recipients_header header text "{witheld}" -- '
                   'need "headername: headervalue"')
    return [h.encode("utf-8", "surrogateescape") for h in out]


def _from_value(st: _State) -> str:
    """``addr`` or ``Full Name <addr>`` (header_from_format = standard) for a missing From:."""
    from .canonical import quote_local
    addr = quote_local(st.sender or "MAILER-DAEMON")
    full = st.attrs.get("full_name", "")
    if not st.sender or not full:
        return addr
    full = full.replace("\r", " ").replace("\n", " ")
    if any(ch in full for ch in '%!()<>@,;:\\".[]'):
        phrase = '"' + full.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        phrase = " ".join(full.split())
    if st.host.conf["header_from_format"].lower() == "obsolete":
        return f"{addr} ({full})"
    return f"{phrase} <{addr}>" if phrase else f"<{addr}>"


def _body(st: _State, rest: bytes) -> list[bytes]:
    """Body lines (without the empty line that ends the headers), through body_checks."""
    lines = rest.split(b"\n")[:-1] if rest else []
    if lines and lines[0] == b"":
        lines = lines[1:]
    out: list[bytes] = []
    for ln in lines:
        kept = _check(st, "body", ln)
        if st.discard:
            return []
        out += [ln] if kept is None else kept
    return out


def submit(host, *, sender: str, recipients: list[Recipient], content: bytes, origin: str,
           received: str | None = None, attrs: dict[str, str] | None = None,
           file: IncomingFile | None = None, hold: bool = False,
           pid: int | None = None) -> QueueFile:
    """Process one message as cleanup(8) does and queue it; returns its :class:`QueueFile`.

    ``origin``: "smtpd", "pickup" (sendmail), "bounce" (notifications) or
    "local" (forwarding). ``content`` has LF line ends and no Received:
    header of ours; ``received`` is the one to prepend (None: none).
    ``attrs`` are stored in the queue file (client_name, client_address,
    helo_name, protocol, ret, envid, ...); ``attrs["rewrite_context"]``
    ("local"/"remote") overrides the header rewriting context that follows
    from ``origin`` and the client address; ``attrs["full_name"]`` is the
    sender's full name for a missing From:. ``file``: the queue file smtpd
    created at the first RCPT (else a new one). ``hold``: park the message
    in the hold queue.

    A message a DISCARD action dropped is returned but not queued. Raises
    :class:`CleanupError` (after removing the queue file) when cleanup
    refuses the message.
    """
    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {', '.join(ORIGINS)}, not {origin!r}")
    f = file if file is not None else host.new_queue_file()
    attrs = dict(attrs or {})
    context = attrs.get("rewrite_context")
    if context == "remote":
        context = "remote" if host.conf["remote_header_rewrite_domain"] else None
    elif context != "local":
        context = header_context(host, origin, attrs.get("client_address", ""))
    now = host.clock.now()
    st = _State(host, f.queue_id, pid if pid is not None else host.cleanup_pid(), origin,
                sender, attrs, context, now, hold=hold)
    try:
        qf = _process(st, recipients, content, received)
    except CleanupError:
        f.abort()
        raise
    if st.discard:
        f.abort()
        return qf
    f.commit(qf, queue="hold" if st.hold else "incoming")
    if not st.hold:
        host.wake_qmgr()
    return qf


def _process(st: _State, recipients: list[Recipient], content: bytes,
             received: str | None) -> QueueFile:
    host = st.host
    try:
        st.sender = _envelope_sender(st, st.sender)
        st.recipients = _envelope_recipients(st, recipients)
    except ExpansionTrouble as e:
        raise _fail(e.status, e.reason) from None
    rec = [ln.encode("utf-8", "surrogateescape") for ln in received.split("\n")] if received else []
    unterminated = bool(content) and not content.endswith(b"\n")
    if unterminated:
        content += b"\n"
    if host.conf.bool("cleanup_replace_stray_cr_lf"):
        content = content.replace(b"\r", b" ")      # no SMTP smuggling through this host
    heads, rest = split_headers(content)
    out: list[bytes] = []
    try:
        for h in _logical_headers(([b"\n".join(rec)] if rec else []) + heads):
            out += _header(st, h)
            if st.discard:
                return _queue_file(st, content)
    except ExpansionTrouble as e:
        raise _fail(e.status, e.reason) from None
    out += _missing(st, st.now)
    body = _body(st, rest)
    if st.discard:
        return _queue_file(st, content)
    lines = [ln for h in out for ln in h.split(b"\n")]
    blank = [b""] if rest.startswith(b"\n") or body else []   # mime_state adds a missing one
    limit = host.conf.int("message_size_limit")
    if limit and queue_file_size(st.sender, st.recipients, st.attrs, [], lines, blank + body) > limit:
        st.log(f"warning: {st.queue_id}: queue file size limit exceeded")
        st.log("warning: mail_stream_cleanup: close error")
        raise _fail("size")
    if not st.recipients:
        raise _fail("rcpt")
    data = b"".join(ln + b"\n" for ln in lines + blank + body)
    # An unterminated last body line is a CONT record; mime_state.c ends it with an empty NORM
    # record, 2 bytes that the SIZE record counts (a last header line is joined, not ended).
    tail = 2 if unterminated and rest.strip(b"\n") else 0
    return _queue_file(st, data, message_size(data) + tail)


def _queue_file(st: _State, data: bytes, size: int = 0) -> QueueFile:
    attrs = {k: v for k, v in st.attrs.items() if k not in ("rewrite_context", "full_name")}
    if st.origin == "bounce" or "rewrite_context" in st.attrs:
        attrs["rewrite_context"] = st.attrs.get("rewrite_context", "local")
    # cleanup_envelope.c: the delay-warning time is fixed when the message arrives
    # (a later change of delay_warning_time does not concern mail already queued)
    warn = st.host.conf.time("delay_warning_time")
    return QueueFile(st.queue_id, st.sender, st.recipients, st.now, data, attrs, hold=st.hold,
                     warn_time=st.now + warn if warn > 0 else 0.0, size=size)


# -- smtpd's way in ----------------------------------------------------------------------------------
def cleanup_smtpd(host, session, tx, content: bytes) -> bool | str:
    """Write one message received by smtpd into the incoming queue, and log it.

    Returns True when queued (or discarded); False when the queue file would
    exceed message_size_limit (smtpd answers "552 5.3.4 Error: message file
    too big"); else the reply smtpd gives, "CODE D.S.N text" (a header/body_checks
    REJECT: "550 5.7.1 text"; an alias expansion problem: "451 4.6.0 Alias
    expansion error").
    """
    now = host.clock.now()
    proto = "UTF8SMTP" if tx.params.get("SMTPUTF8") else session.protocol   # Received: "with"
    proto += session.tls_with_suffix()                                      # ESMTPS (RFC 3848)
    proto += session.auth_with_suffix()                                     # ESMTPA, ESMTPSA
    rcpt = tx.recipients[0].orig if len(tx.recipients) == 1 else None
    rec = received_header(helo=session.helo_name, name=session.client_name, addr=session.client_addr,
                          myhostname=host.conf["myhostname"], proto=proto, queue_id=tx.queue_id,
                          rcpt=rcpt, when=now, mail_name=host.conf.get("mail_name") or "Postfix",
                          comments=session.tls_received_lines() + session.auth_received_lines())
    if session.tx_discard:
        tx.file.abort()
        return True
    attrs = {"client_name": session.client_name, "client_address": session.client_addr,
             "helo_name": session.helo_name or "", "protocol": session.protocol,
             **{k.lower(): v for k, v in tx.params.items()}}
    for name in ("sasl_method", "sasl_username", "sasl_sender"):     # smtpd's SASL records
        if getattr(session, name, None) is not None:
            attrs[name] = getattr(session, name)
    try:
        submit(host, sender=tx.sender, recipients=tx.recipients, content=content,
               origin="smtpd", received=rec, attrs=attrs, file=tx.file, hold=session.tx_hold)
    except CleanupError as e:
        if e.kind == "size":
            return False
        return f"{e.smtp} {e.dsn} {e.text}"
    return True


def cleanup_smtpd_aborted(host, session, tx, content: bytes) -> None:
    """cleanup's side when smtpd stopped copying a message at message_size_limit.

    smtpd streams the message to cleanup as it arrives and stops when the
    queue file would grow too big; cleanup has seen the headers by then (and
    logs the message-id), then the stream is closed with an error and the
    queue file removed: ``QID: message-id=<...>`` and ``warning:
    mail_stream_cleanup: close error`` (the recorded size-limit scenario).
    """
    pid = host.cleanup_pid()
    heads, rest = split_headers(content)
    seen = False
    for h in _logical_headers(heads):
        if _name(h) == "message-id":
            host.log.write("cleanup", pid, f"{tx.queue_id}: message-id={_value(h)}")
            seen = True
    if not seen and rest:                    # the headers ended: the missing one is added
        local = header_context(host, "smtpd", session.client_addr) is not None \
            or host.conf.bool("always_add_missing_headers")
        if local:
            stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(host.clock.now()))
            host.log.write("cleanup", pid, f"{tx.queue_id}: message-id=<{stamp}.{tx.queue_id}"
                                           f"@{host.conf['myhostname']}>")
        else:
            host.log.write("cleanup", pid, f"{tx.queue_id}: message-id=<>")
    host.log.write("cleanup", pid, "warning: mail_stream_cleanup: close error")
    if tx.file is not None:
        tx.file.abort()
