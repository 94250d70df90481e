"""local(8)'s delivery graph: from one recipient to mailboxes, files,
commands and forwarded copies.

Models ``src/local/local.c`` (local_deliver), ``recipient.c``,
``alias.c``, ``token.c``, ``resolve.c``, ``include.c``, ``indirect.c``,
``unknown.c`` and ``global/delivered_hdr.c``; steps 5 and 6 below live in
:mod:`mailsim.local.dotforward` and :mod:`mailsim.local.mailbox`. For each
recipient, in Postfix's order:

1. **duplicates** -- the same address at the same depth, the same file,
   command, mailbox or ``:include:`` file is delivered once;
2. **mail loops** -- an address already named in a ``Delivered-To:`` header
   of the message bounces: ``5.4.6 mail forwarding loop for ADDR``;
3. **aliases** -- ``alias_maps``, first ``user+ext`` then ``user``. Members
   are tokens: ``/file``, ``~/file``, ``|command``, ``:include:/file`` or
   addresses, which are rewritten (``user`` -> ``user@$myorigin``) and
   resolved like trivial-rewrite does: those for local(8) are expanded again
   (recursively), the others are forwarded. An alias that names itself goes
   to the user's mailbox; past 100 levels the alias bounces with ``5.4.6
   alias database loop for NAME`` (and a warning). With an
   ``owner-NAME`` alias the members are forwarded with that sender;
4. members of ``:include:`` files, and local users listed in another user's
   ``.forward``, are always forwarded (a new message, see
   :mod:`mailsim.local.forward`);
5. **.forward** -- the first existing file of ``forward_path``
   (``$home/.forward${recipient_delimiter}${extension}, $home/.forward``),
   home directories from the host's ``/etc/passwd``; an empty file is
   ignored, a user listing herself gets the mailbox;
6. **mailbox** -- ``mailbox_transport``, ``mailbox_command``,
   ``home_mailbox`` (``Maildir/`` = maildir), ``mail_spool_directory``;
7. **unknown users** -- ``fallback_transport``, ``luser_relay``, else
   ``5.1.1 unknown user: "name"`` (a missing postmaster/MAILER-DAEMON alias
   is discarded with a warning).

Parameters read here (Postfix 3.7 defaults): ``alias_maps`` (``hash:/etc/aliases,
nis:mail.aliases``; Debian: ``hash:/etc/aliases``), ``recipient_delimiter``
(empty), ``propagate_unmatched_extensions`` (``canonical, virtual``),
``owner_request_special`` (yes), ``expand_owner_alias`` (no),
``reset_owner_alias`` (no), ``frozen_delivered_to`` (yes),
``allow_mail_to_commands`` (``alias, forward``), ``require_home_directory``
(no), ``fallback_transport(_maps)`` (empty), ``luser_relay`` (empty),
``local_transport`` (``local:$myhostname``), ``double_bounce_sender``
(``double-bounce``).

Not simulated: ``\\user`` in aliases (Postfix 3.7's own parser does not
support it either), delivery rights (alias database and ``:include:``
owners, ``default_privs``: the host folder has one owner), the owner- alias
as the recipient of failure notices for files and commands (the normal
sender gets them), ``NOTIFY=SUCCESS`` "expanded"/"relayed" reports, verify
(``sendmail -bv``) requests.
"""
from __future__ import annotations

import os
import stat
from dataclasses import replace

from ..table_open import log_open_messages
from ..conf.expand import expand
from ..maps.base import MapError
from ..queue import QueueFile, Recipient
from .command import deliver_command, deliver_pass
from .dotforward import deliver_dotforward
from .forward import forward_append, forward_finish
from .mailbox import deliver_file, deliver_mailbox, quote_822_local
from .state import (EXPAND_ALIAS, EXPAND_INCLUDE, Attr, LocalOutcome, Run, UserAttr, bounce,
                    defer, fail, find_maps, names, propagate, sent, strip_success)

__all__ = ["deliver_local", "LocalFatal", "startup_check", "parse_tokens", "delivered_to_headers", "deliver_token_stream"]

MAX_LEVEL = 100


# -- the entry point --------------------------------------------------------------------------
def deliver_local(host, qf: QueueFile, rcpt: Recipient, *, active: float, pid: int) -> LocalOutcome:
    """Deliver one recipient of ``qf`` as local(8) does; log every line.

    ``active`` is when qmgr moved the message into the active queue (for the
    delays), ``pid`` the local(8) process id to log with.

    Raises :class:`LocalFatal` (after logging Postfix's ``fatal:`` line) when
    local(8) would not even start: ``mailbox_size_limit`` smaller than
    ``message_size_limit``, or limited while that one is not. Postfix's
    master then logs ``warning: process /usr/lib/postfix/sbin/local pid N
    exit status 1`` and ``warning: /usr/lib/postfix/sbin/local: bad command
    startup -- throttling``, and the message stays in the active queue.

    >>> import tempfile
    >>> from mailsim.host import init_host
    >>> h = init_host(tempfile.mkdtemp() + "/mx", users=["marc"])
    >>> qf = QueueFile("4B2A1160001", "alice@example.org", [Recipient("postmaster@example.com")],
    ...                h.clock.now(), b"Subject: hi\\n\\nhello\\n")
    >>> out = deliver_local(h, qf, qf.recipients[0], active=h.clock.now(), pid=4242)
    >>> out.delivered, out.bounced, out.deferred
    (['root@example.com'], [], [])
    >>> print(h.log.lines[-1].split(": ", 2)[2].replace(", relay", ",\\n relay"))
    to=<root@example.com>, orig_to=<postmaster@example.com>,
     relay=local, delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)
    """
    startup_check(host, pid)
    run = Run(host, qf, pid, active, transport=_local_transport(host))
    run.delivered_to = delivered_to_headers(qf.content)
    top = Attr(replace(rcpt, orig=rcpt.original), qf.sender,
               envid=qf.attrs.get("envid", ""), ret=qf.attrs.get("ret", ""))
    status = deliver_recipient(run, top, UserAttr())
    forward_finish(run, top, status)
    return run.outcome


class LocalFatal(Exception):
    """local(8) exits at startup (a configuration error); ``text`` is what it logged."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def startup_check(host, pid: int) -> None:
    """local(8)'s pre_init(): the mailbox size limit must fit the message size limit
    (local must be able to write any queued message). Logs and raises :class:`LocalFatal`."""
    mailbox, message = host.conf.int("mailbox_size_limit"), host.conf.int("message_size_limit")
    text = None
    if mailbox > 0 and message <= 0:
        text = ("configuration error: mailbox_size_limit is limited but message_size_limit "
                "is unlimited")
    elif mailbox > 0 and mailbox < message:
        text = "configuration error: mailbox_size_limit is smaller than message_size_limit"
    if text is not None:
        host.log.write("local", pid, f"fatal: {text}")
        raise LocalFatal(text)
    log_open_messages(host, "local", pid)      # pre_init() opens alias_maps and the rest


def _local_transport(host) -> str:
    return host.conf["local_transport"].split(":", 1)[0]


def delivered_to_headers(content: bytes) -> set[str]:
    """The lower-cased addresses of the ``Delivered-To:`` headers of a message.

    >>> sorted(delivered_to_headers(b"Received: x\\nDelivered-To: Jim@Example.COM\\n"
    ...                              b"Subject: y\\n\\nDelivered-To: body@example.com\\n"))
    ['jim@example.com']
    """
    out: set[str] = set()
    for line in content.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or any(c <= 32 or c >= 127 for c in name):
            break
        if name.lower() == b"delivered-to":
            out.add(value.strip().decode("utf-8", "surrogateescape").lower())
    return out


# -- recipient and switch -----------------------------------------------------------------------
def deliver_recipient(run: Run, a: Attr, u: UserAttr) -> int:
    """One address: duplicates, loops, its local part and extension, then the switch."""
    host = run.host
    a = a.down()
    address = a.rcpt.address
    if run.been_here(f"recipient {a.level} {address}"):
        return 0
    if quote_822_local(address).lower() in run.delivered_to:
        return fail(run, a, "5.4.6", f"mail forwarding loop for {address}")
    if a.delivered is None:
        a.delivered = address
    local, at, domain = address.lower().rpartition("@")
    if not at:
        local, domain = address.lower(), None
        run.warn(f"no @ in recipient address: {local}")
    a.local, a.domain, a.user, a.extension = local, domain, local, None
    delim = host.conf.get("recipient_delimiter") or ""
    if delim:
        a.user, a.extension = split_extension(host, local, delim)
        if a.extension is not None and "/" in a.extension:
            run.warn(f"{run.qf.queue_id}: address with illegal extension: {local}")
            a.local, a.extension = a.user, None
    a.unmatched = a.extension
    if not a.user:
        return bounce(run, a, "5.1.3", f'null username in "{address}"')
    return deliver_switch(run, a, u)


def split_extension(host, local: str, delim: str) -> tuple[str, str | None]:
    """(user, extension) as Postfix's split_addr() splits a local part.

    >>> from mailsim.conf import MainConfig
    >>> class H: conf = MainConfig.from_text("")
    >>> split_extension(H, "bob+news", "+"), split_extension(H, "owner-list", "-")
    (('bob', 'news'), ('owner-list', None))
    """
    low = local.lower()
    if low in ("postmaster", "mailer-daemon", host.conf["double_bounce_sender"].lower()):
        return local, None
    if "-" in delim and host.conf.bool("owner_request_special"):
        if low.startswith("owner-") or (len(low) > 8 and low.endswith("-request")):
            return local, None
    for i, ch in enumerate(local):
        if ch in delim:           # the first delimiter; none at the very start
            return (local, None) if i == 0 else (local[:i], local[i + 1:])
    return local, None


def deliver_switch(run: Run, a: Attr, u: UserAttr) -> int:
    """Aliases, then forwarding decisions, .forward, mailbox, unknown user."""
    host = run.host
    a = a.down(unmatched=None)
    found, status = deliver_alias(run, a, u, a.local)
    if found:
        return status
    if a.extension is not None:
        if "alias" in propagate(host):
            a.unmatched = a.extension
        found, status = deliver_alias(run, a, u, a.user)
        if found:
            return status
        a.unmatched = a.extension
    if a.owner is not None and a.owner.lower() != a.user.lower():
        return deliver_indirect(run, a)
    if a.exp_type == EXPAND_INCLUDE:
        return deliver_indirect(run, a)
    if host.conf.bool("require_home_directory"):
        pw = host.users().get(a.user)
        if pw is not None and not _exists(host, pw.home):
            return defer(run, a, "4.3.0", f"cannot access home directory {pw.home}: "
                         "No such file or directory")
    found, status = deliver_dotforward(run, a, u)
    if not found:
        found, status = deliver_mailbox(run, a, u)
        if not found:
            status = deliver_unknown(run, a, u)
    return status


def _exists(host, name: str) -> bool:
    try:
        return host.path(name).exists()
    except PermissionError:
        return False


# -- aliases --------------------------------------------------------------------------------------
def deliver_alias(run: Run, a: Attr, u: UserAttr, name: str) -> tuple[bool, int]:
    """Look ``name`` up in alias_maps and deliver to its members; (found, status)."""
    host = run.host
    a = a.down()
    if a.exp_from is not None and a.exp_from.lower() == name.lower():
        return False, 0                       # an alias naming itself: the user's mailbox
    if a.level > MAX_LEVEL:
        run.warn(f"alias database loop for {name}")
        return True, bounce(run, a, "5.4.6", f"alias database loop for {name}")
    a.exp_from = name
    specs = host.conf.list("alias_maps")
    for spec in specs:
        try:
            value = host.open_map(spec).lookup(name)
        except MapError:
            kind, _, table = spec.partition(":")
            run.warn(f"{kind}:{table}: lookup of '{name}' failed")
            return True, defer(run, a, "4.3.0", "alias database unavailable")
        if value is None:
            continue
        a.exp_type = EXPAND_ALIAS
        u = UserAttr()                        # root-owned alias database: default rights
        try:
            owner = _owner(host, specs, name)
        except MapError:
            return True, defer(run, a, "4.3.0", "alias database unavailable")
        if owner is not None:
            a.sender = a.owner = owner
        elif host.conf.bool("reset_owner_alias"):
            a.owner = None
        if not host.conf.bool("frozen_delivered_to"):
            a.delivered = a.rcpt.address
        a.rcpt = replace(a.rcpt, notify=strip_success(a.rcpt.notify))
        if owner is not None:                 # a mailing list: the list's own envelope
            a.rcpt = replace(a.rcpt, orig="", orcpt="")
            a.envid = a.ret = ""
        tokens = parse_tokens(value)
        if not tokens:
            run.warn(f"no recipient in alias lookup result for {name}")
            return True, defer(run, a, "4.3.0", "alias database unavailable")
        status = 0
        for tok in tokens:
            status |= deliver_token(run, a, u, tok)
        return True, status
    return False, 0


def _owner(host, specs: list[str], name: str) -> str | None:
    """The owner-NAME alias as an envelope sender (owner_request_special)."""
    if not host.conf.bool("owner_request_special"):
        return None
    lhs = f"owner-{name}"
    rhs = find_maps(host, specs, lhs)
    if rhs is None:
        return None
    return _canon_internal(host, rhs.strip() if host.conf.bool("expand_owner_alias") else lhs)


def _canon_internal(host, addr: str) -> str:
    return host.trivial_rewrite().rewrite(addr)


# -- tokens -------------------------------------------------------------------------------------
def parse_tokens(text: str) -> list[str]:
    """The destinations of an alias value or .forward line (RFC 822 address list).

    Commas and white space separate; ``"quoted strings"`` lose their quotes;
    ``(comments)`` are dropped; ``Name <addr>`` gives ``addr`` (the phrase
    reaches back to the previous comma, as in Postfix's tok822_parse()).

    >>> parse_tokens('peter, "|/usr/bin/procmail -a x"  /var/log/x (archive), '
    ...              'Bob <bob@example.org>')
    ['peter', '|/usr/bin/procmail -a x', '/var/log/x', 'bob@example.org']
    """
    out: list[str] = []
    cur, have, since_comma = "", False, 0
    i, n = 0, len(text)

    def flush() -> None:
        nonlocal cur, have, since_comma
        if have:
            out.append(cur)
            since_comma += 1
        cur, have = "", False

    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                cur += text[j]
                j += 1
            have, i = True, j + 1
            continue
        if ch == "(":
            depth = 0
            while i < n:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
                if depth == 0:
                    break
            continue
        if ch == "<":                   # Name <addr>: the words before are a phrase
            if since_comma:
                del out[-since_comma:]
            j = text.find(">", i)
            j = n if j < 0 else j
            cur, have, since_comma, i = text[i + 1:j], True, 0, j + 1
            flush()
            continue
        if ch == "," or ch.isspace():
            if ch == "," or (have and not cur.endswith(("@", ".")) and
                             not text[i:].lstrip().startswith(("@", "."))):
                flush()
            if ch == ",":
                since_comma = 0
            i += 1
            continue
        cur += ch
        have = True
        i += 1
    flush()
    return [t for t in out if t]


def deliver_token(run: Run, a: Attr, u: UserAttr, tok: str) -> int:
    """One member: /file, ~/file, |command, :include:file or an address."""
    if tok.startswith("/"):
        return deliver_file(run, a, u, tok)
    if tok.startswith("~"):
        return _deliver_token_home(run, a, u, tok)
    if tok.startswith("|"):
        allowed = names(run.host.conf["allow_mail_to_commands"], "allow_mail_to_commands")
        if not allowed & a.exp_type:
            return bounce(run, a, "5.7.1", "mail to command is restricted")
        return deliver_command(run, a, u, tok[1:])
    if tok[:9].lower() == ":include:":
        return deliver_include(run, a, u, tok[9:])
    return deliver_resolve_addr(run, a, u, tok)


def _deliver_token_home(run: Run, a: Attr, u: UserAttr, tok: str) -> int:
    if tok[1:2] != "/":
        run.warn(f"bad home directory syntax for: {tok}")
        return bounce(run, a, "5.3.5", "mail system configuration error")
    if u.home is None:
        run.warn(f"unknown home directory for: {tok}")
        return bounce(run, a, "5.3.5", "mail system configuration error")
    path = tok[1:] if u.home == "/" else u.home + tok[1:]
    return deliver_file(run, a, u, path)


def deliver_token_stream(run: Run, a: Attr, u: UserAttr, text: str) -> tuple[int, int]:
    """Lines of a .forward or :include: file; (status, number of destinations)."""
    status = count = 0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        for tok in parse_tokens(line):
            count += 1
            status |= deliver_token(run, a, u, tok)
        if status:
            break
    return status, count


def deliver_resolve_addr(run: Run, a: Attr, u: UserAttr, addr: str) -> int:
    """Rewrite and resolve an address: local(8)'s own, or forward it."""
    host = run.host
    a = a.down()
    tr = host.trivial_rewrite()
    res = tr.resolve(tr.rewrite(addr))
    if res.error:
        return bounce(run, a, "5.1.3", f"bad recipient address syntax: {res.recipient}")
    recipient = res.recipient
    if a.unmatched:
        delim = a.local[len(a.user):len(a.user) + 1]
        at = recipient.rfind("@")
        recipient = (recipient + delim + a.unmatched if at < 0
                     else recipient[:at] + delim + a.unmatched + recipient[at:])
    a = a.with_address(recipient)
    if res.transport == run.transport:
        return deliver_recipient(run, a, u)
    return deliver_indirect(run, a)


def deliver_indirect(run: Run, a: Attr) -> int:
    """Forward ``a.rcpt`` in a new message (once per address)."""
    if run.been_here(f"indirect {a.rcpt.address}"):
        return 0
    return forward_append(run, a)


# -- :include: ------------------------------------------------------------------------------------
def deliver_include(run: Run, a: Attr, u: UserAttr, path: str) -> int:
    """Destinations listed in a file; addresses in it are always forwarded."""
    host = run.host
    a = a.down()
    if run.been_here(f"include {u.uid} {path}"):
        return 0
    a.exp_from = a.local
    if not path.startswith("/"):
        run.warn(f":include:{path} uses a relative path")
        return bounce(run, a, "5.3.5", "mail system configuration error")
    try:
        p = host.path(path)
        st = os.stat(p)
    except OSError as e:
        run.warn(f"unable to lookup :include: file {path}: {os.strerror(e.errno or 2)}")
        return bounce(run, a, "5.3.5", "mail system configuration error")
    if not stat.S_ISREG(st.st_mode):
        run.warn(f":include: file {path} is not a regular file")
        return bounce(run, a, "5.3.5", "mail system configuration error")
    if st.st_mode & stat.S_IWOTH:
        run.warn(f":include: file {path} is world writable")
        return bounce(run, a, "5.3.5", "mail system configuration error")
    a.exp_type = EXPAND_INCLUDE
    if a.owner is None:
        a.owner = a.rcpt.address
    try:
        text = p.read_text(errors="surrogateescape")
    except OSError as e:
        run.warn(f"cannot open include file {path}: {os.strerror(e.errno or 5)}")
        return bounce(run, a, "5.3.5", "mail system configuration error")
    if "include" not in propagate(host):
        a.unmatched = None
    return deliver_token_stream(run, a, u, text)[0]


# -- unknown users ------------------------------------------------------------------
def deliver_unknown(run: Run, a: Attr, u: UserAttr) -> int:
    """No alias and no such user: fallback_transport, luser_relay, or a bounce."""
    host = run.host
    a = a.down()
    if run.been_here(f"deliver_unknown {a.local}"):
        return 0
    try:
        transport = find_maps(host, host.conf.list("fallback_transport_maps"), a.user)
    except MapError:
        return defer(run, a, "4.3.0", "table lookup failure")
    if transport is not None:
        return deliver_pass(run, a, transport)
    if host.conf.get("fallback_transport"):
        return deliver_pass(run, a, host.conf["fallback_transport"])
    relay = host.conf.raw("luser_relay") or ""
    if relay.strip():
        a.unmatched = None
        values = {"user": a.user, "home": u.home, "shell": u.shell, "domain": a.domain,
                  "local": a.local, "mailbox": a.local, "recipient": a.rcpt.address,
                  "extension": a.extension,
                  "recipient_delimiter": (host.conf.get("recipient_delimiter") or "")[:1] or None}
        target = expand(relay, values.get, recurse=False)[0].strip()
        canon = target if "@" in target else f"{target}@{host.conf['myorigin']}"
        if canon.lower() == a.rcpt.address.lower():
            return bounce(run, a, "5.1.1", f'unknown user: "{a.user}"')
        return deliver_resolve_addr(run, a, u, target)
    if a.user.lower() in ("mailer-daemon", "postmaster"):
        run.warn(f"required alias not found: {a.user}")
        return sent(run, a, "discarded")
    return bounce(run, a, "5.1.1", f'unknown user: "{a.user}"')
