"""cleanup(8)'s one-to-one address mapping: canonical maps and header address rewriting.

Models Postfix's ``src/cleanup/cleanup_map11.c``, ``cleanup_rewrite.c``, the
header part of ``cleanup_message.c`` (``cleanup_rewrite_sender`` /
``cleanup_rewrite_recip``) and what they use from ``src/global``: the RFC 822
tokenizer and parser (``tok822_*``), ``quote_822_local`` and
``mail_addr_map`` (table result -> addresses, with the unmatched address
extension carried over).

What happens to an address
--------------------------
1. trivial-rewrite in a *context*: ``local`` appends ``@$myorigin`` to a bare
   user and ``.$mydomain`` to ``user@host`` (append_at_myorigin,
   append_dot_mydomain); ``remote`` appends ``$remote_header_rewrite_domain``
   instead. Envelope addresses are always rewritten in the local context;
   headers in the context of the client (see :func:`header_context`).
2. sender_canonical_maps (for senders) or recipient_canonical_maps (for
   recipients), then canonical_maps, each only for the address classes listed
   in its ``*_classes`` parameter (envelope_sender, envelope_recipient,
   header_sender, header_recipient). A table is searched in mail_addr_find's
   order (:mod:`mailsim.mail_addr_find`); a result is looked up again (at most
   10 times) until it maps to itself or is not found.

A header is regenerated only when one of its addresses changed; then it comes
out the way Postfix prints a parse tree (``Name <addr>``, one space between
words, ``addr (comment)``) and folded like cleanup_fold_header().

Parameters read (Postfix defaults): canonical_maps (empty),
sender_canonical_maps (empty), recipient_canonical_maps (empty),
canonical_classes, sender_canonical_classes, recipient_canonical_classes
(``envelope_sender, envelope_recipient, header_sender, header_recipient`` /
``envelope_sender, header_sender`` / ``envelope_recipient,
header_recipient``), propagate_unmatched_extensions (``canonical, virtual``),
recipient_delimiter (empty), remote_header_rewrite_domain (empty),
local_header_rewrite_clients (``permit_inet_interfaces``), myorigin, mydomain,
append_at_myorigin, append_dot_mydomain.

Not simulated: masquerade_domains, sender_bcc_maps / recipient_bcc_maps,
the non-address-text truncation at 250 bytes, header_size_limit cuts,
SMTPUTF8 autodetection.

Examples
--------
>>> str_addresses(parse("Alice Smith <alice@example.com>, bob (Bob)"))
['alice@example.com', 'bob']
>>> externalize(parse('"Smith, Alice"   <alice@example.com>'))
'"Smith, Alice" <alice@example.com>'
>>> quote_local("john doe@example.com"), quote_local("a.b@example.com")
('"john doe"@example.com', 'a.b@example.com')
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .maps import MapError, tok822

__all__ = ["Tok", "scan", "parse", "externalize", "internalize", "str_addresses",
           "quote_local", "unquote_local", "canon_classes", "addr_map", "map11", "lookup_address",
           "rewrite_context_address", "header_context", "rewrite_header",
           "SENDER_HEADERS", "RECIPIENT_HEADERS", "ExpansionTrouble"]

#: headers with sender addresses (Postfix's header_opts.c, HDR_OPT_SENDER)
SENDER_HEADERS = frozenset(h.lower() for h in (
    "Disposition-Notification-To", "Errors-To", "From", "Mail-Followup-To", "Reply-To",
    "Resent-From", "Resent-Sender", "Return-Path", "Return-Receipt-To", "Sender"))
#: headers with recipient addresses (HDR_OPT_RECIP)
RECIPIENT_HEADERS = frozenset(h.lower() for h in (
    "Apparently-To", "Bcc", "Cc", "Resent-Bcc", "Resent-Cc", "Resent-Reply-To",
    "Resent-To", "To"))

#: the lookup loop of cleanup_map11 stops after this many rounds
MAX_RECURSION = 10


class ExpansionTrouble(Exception):
    """A table could not be searched (or grew out of bounds): Postfix defers the message.

    ``status`` is the cleanup status Postfix raises: "write" (CLEANUP_STAT_WRITE:
    smtpd answers 451 4.3.0) or "defer" (CLEANUP_STAT_DEFER: 451 with the reason).
    """

    def __init__(self, warning: str, status: str = "write",
                 reason: str = "4.6.0 Alias expansion error") -> None:
        super().__init__(warning)
        self.warning, self.status, self.reason = warning, status, reason


# -- RFC 822 tokens ---------------------------------------------------------------------------
@dataclass(eq=False)
class Tok:
    """One token, or (``type == "addr"``) an address node holding its tokens in ``kids``."""
    type: str                     # atom qstring comment domlit addr startgrp, or an operator char
    text: str = ""
    kids: list["Tok"] = field(default_factory=list)
    prev: "Tok | None" = field(default=None, repr=False)
    next: "Tok | None" = field(default=None, repr=False)


_WORDS = ("atom", "qstring", "comment", "domlit", "addr")


def scan(text: str) -> list[Tok]:
    """Split header text into RFC 822 tokens (Postfix's tok822_scan).

    >>> [(t.type, t.text) for t in scan('Al <a@b> (x)')]
    [('atom', 'Al'), ('<', ''), ('atom', 'a'), ('@', ''), ('atom', 'b'), ('>', ''), ('comment', '(x)')]
    """
    # the scanner smtpd and the alias tables use (mailsim.maps.tok822); this
    # module adds the links and address nodes that cleanup's rewriting needs
    return [Tok(t.type, t.text) for t in tok822.scan(text)]


def _link(toks: list[Tok]) -> tuple[Tok, Tok]:
    """A doubly linked list between two sentinel tokens."""
    head, tail = Tok(""), Tok("")
    prev = head
    for t in toks:
        prev.next, t.prev = t, prev
        prev = t
    prev.next, tail.prev = tail, prev
    return head, tail


def _insert_before(right: Tok, t: Tok) -> Tok:
    t.prev, t.next = right.prev, right
    right.prev.next = t
    right.prev = t
    return t


def _unlink(t: Tok) -> Tok:
    prev = t.prev
    prev.next, t.next.prev = t.next, prev
    t.prev = t.next = None
    return prev


def _group(left: Tok, right: Tok, comma: bool) -> Tok:
    """Put the tokens strictly between ``left`` and ``right`` under one address node."""
    if left is right or left.next is right:
        return left
    kids = []
    t = left.next
    while t is not right:
        kids.append(t)
        t = t.next
    node = Tok("addr", kids=kids)
    left.next, node.prev, node.next, right.prev = node, left, right, node
    if comma:
        sync = Tok(",")
        left.next, sync.prev, sync.next, node.prev = sync, left, node, sync
    return left


def parse(text: str) -> list[Tok]:
    """Tokens of an address list, each address under an ``addr`` node (tok822_parse).

    The list is read from right to left, as Postfix does: ``<...>`` makes an
    address, a word after another word starts a new address (a missing comma
    is added), comments move to the right of their address, groups
    ``name: a, b;`` keep their name outside the addresses.
    """
    toks = scan(text)
    if not toks:
        return []
    head, tail = _link(toks)
    do_word, do_group = True, False
    right = tail
    tp = tail.prev
    while tp.type:
        if tp.type == "comment":
            prev = _unlink(tp)
            right = _insert_before(right, tp)
            tp = prev
            continue
        if tp.type == ";":
            right = _group(tp, right, True)
            do_word = do_group = True
        elif tp.type == ":" and do_group:
            tp.type = "startgrp"
            _group(tp, right, False)
            while tp.type and tp.type != ",":
                tp = tp.prev
            right = tp
            continue
        elif tp.type == ">":
            right = _group(tp, right, True)
            while tp.type and tp.type != "<":
                if tp.type == "comment":
                    prev = _unlink(tp)
                    right = _insert_before(right, tp)
                    tp = prev
                    continue
                tp = tp.prev
            _group(tp, right, False)
            while tp.type and not (len(tp.type) == 1 and tp.type in ">;,:"):
                tp = tp.prev
            right = tp
            do_word = True
            continue
        elif tp.type in ("atom", "qstring", "domlit"):
            if not do_word:
                right = _group(tp, right, True).next
            do_word = False
        elif tp.type == ",":
            right = _group(tp, right, False)
            do_word = True
        else:
            do_word = True
        tp = tp.prev
    _group(tp, right, False)
    out = []
    t = head.next
    while t is not tail:
        out.append(t)
        t = t.next
    return out


def _space_after(toks: list[Tok], i: int) -> bool:
    """tok822_append_space(): a space between two words, after ',' and ':', before '<'."""
    if i + 1 >= len(toks):
        return False
    t, n = toks[i], toks[i + 1]
    if t.type in (",", "startgrp") or n.type == "<":
        return True
    return t.type in _WORDS and n.type in _WORDS


def internalize(toks: list[Tok], *, top: bool = True) -> str:
    """Tokens as one string in internal form (quoted strings without quotes)."""
    out = []
    for i, t in enumerate(toks):
        if t.type == "addr":
            out.append(internalize(t.kids, top=False))
        elif t.type in ("atom", "qstring", "comment"):
            out.append(t.text)
        elif t.type == "domlit":
            out.append(f"[{t.text}]")
        elif t.type == "startgrp":
            out.append(":")
        else:
            out.append(t.type)
        if top and _space_after(toks, i):
            out.append(" ")
    return "".join(out)


def externalize(toks: list[Tok], *, line: bool = False, top: bool = True) -> str:
    """Tokens as header text (tok822_externalize); ``line``: a newline after each comma."""
    out = []
    for i, t in enumerate(toks):
        if t.type == ",":
            out.append(",\n" if line else ", ")
            continue
        if t.type == "addr":
            out.append(quote_local(internalize(t.kids, top=False)))
        elif t.type in ("atom", "comment"):
            out.append(t.text)
        elif t.type == "qstring":
            out.append('"' + tok822._quoted(t.text, '"\\\r\n') + '"')
        elif t.type == "domlit":
            out.append("[" + tok822._quoted(t.text, "\\\r\n") + "]")
        elif t.type == "startgrp":
            out.append(":")
        else:
            out.append(t.type)
        if top and _space_after(toks, i):
            out.append(" ")
    return "".join(out)


def addr_nodes(toks: list[Tok]) -> list[Tok]:
    """Every address node, groups included (tok822_grep TOK822_ADDR)."""
    out = []
    for t in toks:
        if t.type == "addr":
            inner = [k for k in t.kids if k.type == "addr"]
            out += addr_nodes(t.kids) if inner else [t]
    return out


def str_addresses(toks: list[Tok]) -> list[str]:
    """The addresses of a parsed list, in internal (unquoted) form."""
    return [internalize(n.kids, top=False) for n in addr_nodes(toks)]


# -- quoting -----------------------------------------------------------------------------------
def _dot_string(local: str) -> bool:
    if not local or local[0] == "." or local[-1] == "." or ".." in local:
        return False
    return not any(c == " " or ord(c) < 32 or ord(c) == 127 or c in '()<>@,;:\\"[]' for c in local)


def quote_local(addr: str) -> str:
    """Quote the local part of an internal-form address if RFC 822 needs it (quote_822_local)."""
    start = addr.index(":") + 1 if addr.startswith("@") and ":" in addr else 0
    at = addr.rfind("@", start)
    end = at if at >= 0 else len(addr)
    local = addr[start:end]
    if _dot_string(local):
        return addr
    quoted = '"' + "".join("\\" + c if c in '"\\\r' else c for c in local) + '"'
    return addr[:start] + quoted + addr[end:]


def unquote_local(addr: str) -> str:
    """The internal form of an external address: quotes and backslashes of the local part removed."""
    at = addr.rfind("@")
    local, rest = (addr[:at], addr[at:]) if at >= 0 else (addr, "")
    if '"' not in local and "\\" not in local:
        return addr
    out, i, inq = [], 0, False
    while i < len(local):
        c = local[i]
        if c == "\\" and i + 1 < len(local):
            out.append(local[i + 1])
            i += 2
            continue
        if c == '"':
            inq = not inq
        else:
            out.append(c)
        i += 1
    return "".join(out) + rest


# -- trivial-rewrite contexts ------------------------------------------------------------------
def rewrite_context_address(host, addr: str, context: str) -> str:
    """trivial-rewrite's answer for ``addr`` (internal form) in the ``local`` or ``remote`` context."""
    if context == "local":
        return host.trivial_rewrite().rewrite(addr)
    c = host.conf
    dom = c["remote_header_rewrite_domain"]
    if not addr or addr.endswith("@"):
        return addr
    a = addr.split(":", 1)[1] if addr.startswith("@") and ":" in addr else addr
    local, at, domain = a.rpartition("@")
    if not at:
        if (c.bool("swap_bangpath") and "!" in a) or (c.bool("allow_percent_hack") and "%" in a):
            return a
        return f"{a}@{dom}" if c.bool("append_at_myorigin") and dom else a
    domain = domain[:-1] if domain.endswith(".") and not domain.endswith("..") else domain
    if c.bool("append_dot_mydomain") and dom and "." not in domain and not domain.startswith("["):
        domain = f"{domain}.{dom}"
    return f"{local}@{domain}"


def header_context(host, origin: str, client_address: str = "") -> str | None:
    """The header rewriting context cleanup uses: "local", "remote" or None (no rewriting).

    Mail from smtpd gets "local" only from clients matched by
    local_header_rewrite_clients; other clients get "remote" when
    remote_header_rewrite_domain is set, else None. Everything else
    (sendmail/pickup, bounces, local forwarding) is "local".
    """
    if origin != "smtpd":
        return "local"
    if is_local_header_client(host, client_address):
        return "local"
    return "remote" if host.conf["remote_header_rewrite_domain"] else None


def is_local_header_client(host, client_address: str) -> bool:
    """local_header_rewrite_clients: permit_inet_interfaces, permit_mynetworks, static:all, CIDR-ish."""
    from .domains import match_network
    for item in host.conf.list("local_header_rewrite_clients"):
        it = item.lower()
        if it == "permit_inet_interfaces":
            if client_address in host.own_addresses():
                return True
        elif it == "permit_mynetworks":
            if match_network(client_address, host.conf.list("mynetworks")):
                return True
        elif it in ("static:all", "permit"):
            return True
        elif ":" in item and not item[:1].isdigit() and not item.startswith("["):
            try:
                if host.open_map(item).lookup(client_address) is not None:
                    return True
            except MapError:
                continue
    return False


# -- tables ------------------------------------------------------------------------------------
def canon_classes(host, param: str) -> set[str]:
    """The address classes a ``*_classes`` parameter lists."""
    return {w.lower() for w in host.conf.list(param)}


def _propagates(host, what: str) -> bool:
    return what in {w.lower() for w in host.conf.list("propagate_unmatched_extensions")}


def _split_ext(local: str, delimiters: str) -> tuple[str, str]:
    """("user", "+ext") for ``user+ext`` (the first delimiter character found)."""
    for i, ch in enumerate(local):
        if ch in delimiters and i > 0:
            return local[:i], local[i:]
    return local, ""


def lookup_address(host, specs: list[str], addr: str) -> tuple[str, str] | None:
    """(result, unmatched extension) for ``addr`` in mail_addr_find's order, or None.

    Keys: ``user+ext@domain``, ``user@domain``; if the domain is $myorigin or
    local: ``user+ext``, ``user``; then ``@domain``. The extension is reported
    when a key without it matched. Every table is asked for a key before the
    next key is tried (maps_find inside mail_addr_find).
    """
    delim = host.conf["recipient_delimiter"]
    a = addr.lower()
    local, at, domain = a.rpartition("@")
    if not at:
        local, domain = a, ""
    base, ext = _split_ext(local, delim) if delim else (local, "")
    keys: list[tuple[str, str]] = [(a, "")]
    if ext:
        keys.append((f"{base}@{domain}" if at else base, ext))
    if at:
        tr = host.trivial_rewrite()
        if domain == host.conf["myorigin"].lower() or tr.is_local_domain(domain):
            keys.append((local, ""))
            if ext:
                keys.append((base, ext))
        keys.append((f"@{domain}", ""))
    maps = [host.open_map(spec) for spec in specs]
    for k, e in keys:                    # each key in every table, then the next key
        for m in maps:
            r = m.lookup(k)
            if r is not None:
                return r, e
    return None


def addr_map(host, specs: list[str], addr: str, *, propagate: bool) -> list[str] | None:
    """The addresses ``addr`` maps to in ``specs`` (mail_addr_map), or None if not found.

    A result ``@otherdomain`` keeps the user part; each address of a result
    is canonicalized (local context) and gets the unmatched extension when
    ``propagate``. Raises :class:`mailsim.maps.MapError` for an unusable table.
    """
    found = lookup_address(host, specs, addr)
    if found is None:
        return None
    result, ext = found
    if result.startswith("@"):
        user = addr.rpartition("@")[0] if "@" in addr else addr
        if ext and user.endswith(ext):
            user = user[: -len(ext)]
        result = quote_local(user + result)
    out = []
    for a in str_addresses(parse(result if result and result != "<>" else '""')):
        a = rewrite_context_address(host, a, "local")
        if propagate and ext:
            at = a.rfind("@")
            a = a + ext if at < 0 else a[:at] + ext + a[at:]
        out.append(a)
    return out


def map11(host, addr: str, param: str, queue_id: str, pid: int) -> tuple[str, bool]:
    """One canonical table parameter applied to one address (cleanup_map11): (address, changed).

    Raises :class:`ExpansionTrouble` when a table cannot be searched.
    """
    specs = host.conf.list(param)
    if not specs:
        return addr, False
    changed = False
    propagate = _propagates(host, "canonical")
    for _ in range(MAX_RECURSION):
        try:
            new = addr_map(host, specs, addr, propagate=propagate)
        except MapError:
            text = (f"{queue_id}: {param} map lookup problem for {addr} -- "
                    "message not accepted, try again later")
            host.log.write("cleanup", pid, f"warning: {text}")
            raise ExpansionTrouble(text) from None
        if new is None:
            return addr, changed
        if len(new) > 1:
            host.log.write("cleanup", pid, f"warning: {queue_id}: multi-valued {param} entry for {addr}")
        if not new:
            return addr, changed
        same = new[0].lower() == addr.lower()
        changed |= new[0] != addr
        addr = new[0]
        if same:
            return addr, changed
    host.log.write("cleanup", pid, f"warning: {queue_id}: unreasonable {param} map nesting for {addr} "
                   "-- message not accepted, try again later")
    return addr, changed


def canonicalize(host, addr: str, kind: str, where: str, queue_id: str, pid: int) -> tuple[str, bool]:
    """sender/recipient canonical maps, then canonical_maps, for one class of address.

    ``kind`` is "sender" or "recipient", ``where`` "envelope" or "header".
    """
    klass = f"{where}_{kind}"
    changed = False
    for param in (f"{kind}_canonical_maps", "canonical_maps"):
        classes = param.replace("_maps", "_classes")
        if host.conf.list(param) and klass in canon_classes(host, classes):
            addr, did = map11(host, addr, param, queue_id, pid)
            changed |= did
    return addr, changed


# -- headers ------------------------------------------------------------------------------------
def _fold(text: str) -> str:
    """cleanup_fold_header(): one address per line joined while the line stays under 70."""
    lines = text.split("\n")
    out = [lines[0]]
    for ln in lines[1:]:
        if len(out[-1]) + 1 + len(ln) < 70:
            out[-1] += " " + ln
        else:
            out.append(ln)
    return "\n".join(out[:1] + ["\t" + ln if ln[:1] not in (" ", "\t") else ln for ln in out[1:]])


def rewrite_header(host, header: str, context: str | None, queue_id: str, pid: int) -> str:
    """A sender or recipient header after context rewriting and canonical maps.

    ``header`` is one logical header (continuation lines joined by "\\n");
    it comes back unchanged when no address in it changed.

    >>> import tempfile
    >>> from mailsim.host import init_host
    >>> h = init_host(tempfile.mkdtemp() + "/mx", hostname="mail.example.com")
    >>> rewrite_header(h, "To: peter,  Gerda <gerda>", "local", "Q", 1)
    'To: peter@example.com, Gerda <gerda@example.com>'
    >>> rewrite_header(h, "To: peter@example.com (Peter)", "local", "Q", 1)
    'To: peter@example.com (Peter)'
    """
    name, colon, value = header.partition(":")
    kind = name.strip().lower()
    if not colon or context is None:
        return header
    if kind in SENDER_HEADERS:
        who = "sender"
    elif kind in RECIPIENT_HEADERS:
        who = "recipient"
    else:
        return header
    toks = parse(value)
    changed = False
    for node in addr_nodes(toks):
        ext_form = _node_external(node)
        internal = unquote_local(ext_form)
        new = rewrite_context_address(host, internal, context)
        changed |= quote_local(new) != ext_form
        new, did = canonicalize(host, new, who, "header", queue_id, pid)
        changed |= did
        node.kids = [k for k in scan(quote_local(new))]
    if not changed:
        return header
    return _fold(f"{name}: " + externalize(toks, line=True))


def _node_external(node: Tok) -> str:
    """An address node as external text, without spaces (tok822_externalize of its tokens)."""
    return quote_local(internalize(node.kids, top=False))
