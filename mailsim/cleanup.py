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

FILTER, REDIRECT and BCC actions (smtpd access tables, header/body_checks)
become the queue file's filter/redirect fields and extra recipients;
header_size_limit truncates long headers as mime_state.c and cleanup_out.c do.

Not simulated: milters, the content_filter parameter, BCC maps,
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
from .table_open import log_open_messages
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
    """``Wed, 25 Nov 2026 08:56:59 +0000 (UTC)`` -- Postfix's date form (mail_date.c), in UTC.

    The day of the month is padded with a blank, as strftime's ``%e`` does:

    >>> rfc2822_date(1796634000.0)
    'Mon,  7 Dec 2026 09:00:00 +0000 (UTC)'
    """
    text = email.utils.formatdate(t, usegmt=False).replace("-0000", "+0000") + " (UTC)"
    return text[:5] + " " + text[6:] if text[5] == "0" else text


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


def mime_header(header: bytes, limit: int, line_limit: int) -> bytes:
    """A logical header as mime_state.c collects it: records are added while it is shorter
    than header_size_limit (``limit``); the rest is dropped.

    Each line reaches cleanup as records of at most line_length_limit (``line_limit``)
    bytes; a record is appended whole, so the result can exceed ``limit`` by up to one
    record (:func:`header_cut` then trims it).

    >>> mime_header(b"X: " + b"a" * 20 + b"\\n\\tb\\n\\tc", 10, 8)
    b'X: aaaaaaaaaaaaa'
    >>> mime_header(b"X: a\\n\\tb\\n\\tc", 7, 100)
    b'X: a\\n\\tb'
    """
    out = b""
    for i, line in enumerate(header.split(b"\n")):
        pieces = [line[j:j + line_limit] for j in range(0, len(line), line_limit)] or [b""]
        for k, piece in enumerate(pieces):
            if i == 0 and k == 0:
                out = piece
            elif len(out) < limit:
                out += (b"\n" if k == 0 else b"") + piece
    return out


def header_cut(header: bytes, limit: int) -> bytes:
    """cleanup_out.c, cleanup_out_header(): a header longer than header_size_limit is cut
    at the last line boundary before the limit when that keeps over 90% of it, else at
    the limit itself.

    >>> header_cut(b"X: " + b"a" * 20, 10)
    b'X: aaaaaaa'
    >>> header_cut(b"X: aaaaaaa\\n\\tbbbbbbbbbbbbb", 11)
    b'X: aaaaaaa'
    """
    if len(header) <= limit:
        return header
    start = 0
    for line in header.split(b"\n"):
        if start + len(line) > limit:
            if start > 0.9 * limit:
                return header[:start - 1]           # nice cut: without the LF
            return header[:limit]                   # unkind cut
        start += len(line) + 1
    return header


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
    filter: str = ""                    # a FILTER action's transport:nexthop (state->filter)
    redirect: str = ""                  # a REDIRECT action's address (state->redirect)
    hbc_rcpt: list[str] = field(default_factory=list)   # header/body_checks BCC addresses
    checks_off: bool = False            # after REDIRECT: no more header/body checks
    seen: set[str] = field(default_factory=set)
    resent: str = ""
    hops: int = 0

    def log(self, text: str) -> None:
        self.host.log.write("cleanup", self.pid, text)

    @property
    def filtered(self) -> bool:
        """header_checks / body_checks apply to mail from smtpd and sendmail (CLEANUP_FLAG_FILTER)."""
        return self.origin in ("smtpd", "pickup") and not self.checks_off


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
    IGNORE, PREPEND, REPLACE, DUNNO/OK, FILTER, REDIRECT (the queue file's
    FILT and RDR records, used by qmgr) and BCC (a recipient added at the
    end, see :func:`_extracted`).
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
        # cleanup_message.c, cleanup_act(): an argument without ':' / '@' is ignored
        table = f"{kind}_checks"
        if action == "FILTER" and not arg:
            st.log(f"warning: missing FILTER command argument in {table} map")
        elif action == "FILTER" and ":" not in arg:
            st.log(f"warning: bad FILTER command {arg} in {table} -- need transport:destination")
        elif action != "FILTER" and "@" not in arg:
            what = "target" if action == "REDIRECT" else "address"
            st.log(f'warning: bad {action} {what} "{arg}" in {table} map -- need user@domain')
        else:
            st.log(f"{line}: {arg}")
            if action == "FILTER":
                st.filter = arg
            elif action == "REDIRECT":
                st.redirect = arg
                st.checks_off = True
            else:
                st.hbc_rcpt.append(arg)
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


@dataclass
class Delegated:
    """Access-table actions smtpd(8) delegates to cleanup (smtpd_check.c, smtpd.c).

    ``prepend``: PREPEND headers, sent above smtpd's Received: header;
    ``filter`` (FILTER transport:nexthop), ``redirect`` (REDIRECT address) and
    ``bcc`` (BCC addresses) go in the extracted segment after the content,
    as FILT, RDR and recipient records.
    """
    prepend: list[str] = field(default_factory=list)
    filter: str = ""
    redirect: str = ""
    bcc: list[str] = field(default_factory=list)


def submit(host, *, sender: str, recipients: list[Recipient], content: bytes, origin: str,
           received: str | None = None, attrs: dict[str, str] | None = None,
           file: IncomingFile | None = None, hold: bool = False,
           pid: int | None = None, delegated: Delegated | None = None) -> QueueFile:
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
    in the hold queue. ``delegated``: smtpd's PREPEND/FILTER/REDIRECT/BCC.

    A message a DISCARD action dropped is returned but not queued. Raises
    :class:`CleanupError` (after removing the queue file) when cleanup
    refuses the message.
    """
    if origin not in ORIGINS:
        raise ValueError(f"origin must be one of {', '.join(ORIGINS)}, not {origin!r}")
    f = file if file is not None else host.new_queue_file()
    attrs = dict(attrs or {})
    st = _State(host, f.queue_id, pid if pid is not None else host.cleanup_pid(), origin,
                sender, attrs, _rewrite_context(host, origin, attrs), host.clock.now(), hold=hold)
    log_open_messages(host, "cleanup", st.pid)
    try:
        qf = _process(st, recipients, content, received, delegated or Delegated())
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


def _rewrite_context(host, origin: str, attrs: dict[str, str]) -> str | None:
    """The header rewriting context: ``attrs["rewrite_context"]`` or what follows from the origin."""
    context = attrs.get("rewrite_context")
    if context == "remote":
        return "remote" if host.conf["remote_header_rewrite_domain"] else None
    if context == "local":
        return context
    return header_context(host, origin, attrs.get("client_address", ""))


def _process(st: _State, recipients: list[Recipient], content: bytes,
             received: str | None, delegated: Delegated) -> QueueFile:
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
    ahead = [h.encode("utf-8", "surrogateescape") for h in delegated.prepend]
    out: list[bytes] = []
    try:
        limit, line_limit = host.conf.int("header_size_limit"), host.conf.int("line_length_limit")
        for h in _logical_headers(ahead + ([b"\n".join(rec)] if rec else []) + heads):
            out += [header_cut(x, limit) for x in _header(st, mime_header(h, limit, line_limit))]
            if st.discard:
                return _queue_file(st, content)
    except ExpansionTrouble as e:
        raise _fail(e.status, e.reason) from None
    out += _missing(st, st.now)
    body = _body(st, rest)
    if st.discard:
        return _queue_file(st, content)
    try:
        _extracted(st, delegated)
    except ExpansionTrouble as e:
        raise _fail(e.status, e.reason) from None
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
    return _queue_file(st, data, message_size(data, host.conf.int("line_length_limit")) + tail)


def _extracted(st: _State, delegated: Delegated) -> None:
    """The extracted segment: smtpd's FILTER/REDIRECT/BCC, then header/body_checks' ones.

    smtpd's FILT and RDR records come first and header/body_checks' are written
    at the end of the segment, so theirs win (qmgr_message.c uses the last one
    read). Each BCC address is a recipient record processed like any other
    (cleanup_extracted.c: rewriting, canonical and virtual alias maps); smtpd
    sends a NOTIFY=NEVER attribute after each one, which thus applies to the
    next (smtpd.c). header/body_checks BCCs are added only when the message
    has recipients, with NOTIFY=NEVER (cleanup_extracted_finish(),
    cleanup_addr_bcc()). None has a DSN original recipient.
    """
    st.filter = st.filter or delegated.filter
    st.redirect = st.redirect or delegated.redirect
    extra = [Recipient(a, a, "NEVER" if i else "", "") for i, a in enumerate(delegated.bcc)]
    if st.hbc_rcpt and (st.recipients or extra):
        extra += [Recipient(a, a, "NEVER", "") for a in st.hbc_rcpt]
    if extra:
        st.recipients += [Recipient(r.address, r.orig, r.notify, "")
                          for r in _envelope_recipients(st, extra)]


def _queue_file(st: _State, data: bytes, size: int = 0) -> QueueFile:
    attrs = {k: v for k, v in st.attrs.items() if k not in ("rewrite_context", "full_name")}
    if st.origin == "bounce" or "rewrite_context" in st.attrs:
        attrs["rewrite_context"] = st.attrs.get("rewrite_context", "local")
    # cleanup_envelope.c: the delay-warning time is fixed when the message arrives
    # (a later change of delay_warning_time does not concern mail already queued)
    warn = st.host.conf.time("delay_warning_time")
    return QueueFile(st.queue_id, st.sender, st.recipients, st.now, data, attrs, hold=st.hold,
                     warn_time=st.now + warn if warn > 0 else 0.0, size=size,
                     filter=st.filter, redirect=st.redirect)


# -- smtpd's way in ----------------------------------------------------------------------------------
def _smtpd_request(host, session, tx) -> tuple[str, dict[str, str]]:
    """What smtpd hands cleanup before the message content: our Received: header and the attributes."""
    now = host.clock.now()
    proto = "UTF8SMTP" if tx.params.get("SMTPUTF8") else session.protocol   # Received: "with"
    proto += session.tls_with_suffix()                                      # ESMTPS (RFC 3848)
    proto += session.auth_with_suffix()                                     # ESMTPA, ESMTPSA
    rcpt = tx.recipients[0].orig if len(tx.recipients) == 1 else None
    rec = received_header(helo=session.helo_name, name=session.client_name, addr=session.client_addr,
                          myhostname=host.conf["myhostname"], proto=proto, queue_id=tx.queue_id,
                          rcpt=rcpt, when=now, mail_name=host.conf.get("mail_name") or "Postfix",
                          comments=session.tls_received_lines() + session.auth_received_lines())
    attrs = {"client_name": session.client_name, "client_address": session.client_addr,
             "helo_name": session.helo_name or "", "protocol": session.protocol,
             **{k.lower(): v for k, v in tx.params.items()}}
    for name in ("sasl_method", "sasl_username", "sasl_sender"):     # smtpd's SASL records
        if getattr(session, name, None) is not None:
            attrs[name] = getattr(session, name)
    return rec, attrs


def cleanup_smtpd(host, session, tx, content: bytes) -> bool | str:
    """Write one message received by smtpd into the incoming queue, and log it.

    Returns True when queued (or discarded); False when the queue file would
    exceed message_size_limit (smtpd answers "552 5.3.4 Error: message file
    too big"); else the reply smtpd gives, "CODE D.S.N text" (a header/body_checks
    REJECT: "550 5.7.1 text"; an alias expansion problem: "451 4.6.0 Alias
    expansion error").
    """
    rec, attrs = _smtpd_request(host, session, tx)
    if session.tx_discard:
        tx.file.abort()
        return True
    try:
        submit(host, sender=tx.sender, recipients=tx.recipients, content=content,
               origin="smtpd", received=rec, attrs=attrs, file=tx.file, hold=session.tx_hold,
               delegated=_delegated(session))
    except CleanupError as e:
        if e.kind == "size":
            return False
        return f"{e.smtp} {e.dsn} {e.text}"
    return True


def _delegated(session) -> Delegated:
    """smtpd's access-table actions for this transaction (``session.tx_actions``, in order).

    smtpd_check.c: PREPEND and BCC accumulate; FILTER and REDIRECT: the last one counts.
    """
    d = Delegated()
    for action, text in getattr(session, "tx_actions", ()):
        if action == "PREPEND":
            d.prepend.append(text)
        elif action == "BCC":
            d.bcc.append(text)
        elif action == "FILTER":
            d.filter = text
        elif action == "REDIRECT":
            d.redirect = text
    return d


def cleanup_smtpd_aborted(host, session, tx, content: bytes) -> None:
    """cleanup's side of a message smtpd gave up on after sending it (part of) the content.

    smtpd streams the message to cleanup as it arrives and closes the stream
    without an end record when it gives up: smtpd_end_of_data_restrictions
    reject, a bare <LF> reject (smtpd stops copying at that line), the
    message_size_limit in DATA or BDAT (smtpd stops copying there), RSET or
    a lost connection in the middle of BDAT chunks. ``content`` is what
    cleanup was sent (records: lines ending in LF, a last piece maybe
    without). cleanup has processed it as it came (cleanup.c reads records
    until the stream ends, cleanup_message.c's header and body callbacks);
    then it removes the queue file (cleanup_api.c, cleanup_flush()).
    """
    rec, attrs = _smtpd_request(host, session, tx)
    st = _State(host, tx.queue_id, host.cleanup_pid(), "smtpd", tx.sender, attrs,
                _rewrite_context(host, "smtpd", attrs), host.clock.now(), hold=session.tx_hold)
    _process_partial(st, tx.recipients, content, rec, _delegated(session).prepend)
    if tx.file is not None:
        tx.file.abort()


def _process_partial(st: _State, recipients: list[Recipient], content: bytes, received: str,
                     prepend: list[str]) -> None:
    """Process the content of a stream that ended without its end record; log as cleanup does.

    cleanup_message.c (through mime_state.c) sees a header only when the next
    line arrives (it might be continued), so a last header of an unfinished
    header block is never examined; the end of the headers (a non-header
    line) runs cleanup_header_done_callback: the generated Message-Id: and its
    ``message-id=`` log line, or ``message-id=<>``; body lines go through
    body_checks as they come. A refusal on the way (header_checks REJECT,
    hopcount) stops the processing. The queue file then is closed with what
    was written: when that is beyond message_size_limit (cleanup_init.c sets
    it as the file size limit) the close fails: ``warning:
    mail_stream_cleanup: close error`` (mail_stream.c).
    """
    host = st.host
    rec = [h.encode("utf-8", "surrogateescape") for h in prepend + [received]]
    if host.conf.bool("cleanup_replace_stray_cr_lf"):
        content = content.replace(b"\r", b" ")
    heads, rest = split_headers(content)
    ended = b"\n" in rest or (bool(rest) and not _HEADER_NAME.match(rest)
                              and rest[:1] not in (b" ", b"\t"))
    pending = _logical_headers(rec + heads)
    if not ended:
        pending = pending[:-1]             # still waiting for a line that might continue it
    out: list[bytes] = []
    body: list[bytes] = []
    try:
        st.sender = _envelope_sender(st, st.sender)
        st.recipients = _envelope_recipients(st, recipients)
        limit, line_limit = host.conf.int("header_size_limit"), host.conf.int("line_length_limit")
        for h in pending:
            out += [header_cut(x, limit) for x in _header(st, mime_header(h, limit, line_limit))]
            if st.discard:
                break
        if ended and not st.discard:
            out += _missing(st, st.now)
            complete = rest[:rest.rfind(b"\n") + 1]      # body records that arrived whole
            body = _body(st, complete)
    except (CleanupError, ExpansionTrouble):
        pass
    lines = [ln for h in out for ln in h.split(b"\n")]
    blank = [b""] if ended and (rest.startswith(b"\n") or body) else []
    limit = host.conf.int("message_size_limit")
    if limit and queue_file_size(st.sender, st.recipients, st.attrs, [], lines, blank + body) > limit:
        st.log("warning: mail_stream_cleanup: close error")
