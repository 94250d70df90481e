"""smtpd_check: the SMTP access restrictions, with every decision explained.

Models Postfix's ``src/smtpd/smtpd_check.c``. A restriction list
(``smtpd_client_restrictions``, ``smtpd_helo_restrictions``,
``smtpd_sender_restrictions``, ``smtpd_relay_restrictions``,
``smtpd_recipient_restrictions``, ``smtpd_data_restrictions``, ...) is walked
from left to right; the first element that gives a verdict ends *that list*:
``permit``/``OK`` goes on with the next list, a reject answers the client.
With ``smtpd_delay_reject = yes`` (the default) the client, HELO and sender
lists are evaluated again at each RCPT TO, so the client learns which
recipient was refused. ``smtpd_relay_restrictions`` come before
``smtpd_recipient_restrictions`` (``smtpd_relay_before_recipient_restrictions
= yes`` at compatibility level 3.6). After them, unknown recipients are
refused (``smtpd_reject_unlisted_recipient``); ``RCPT TO:<postmaster>`` skips
every check.

Every evaluation fills a :class:`Decision` with the lists walked, the element
that decided, the table lookups and the address class, for the course's
decision graphs.

Parameters read: the restriction lists above, smtpd_delay_reject, mynetworks,
access_map_reject_code (554), access_map_defer_code (450), reject_code (554),
defer_code (450), relay_domains_reject_code (554), non_fqdn_reject_code (504),
invalid_hostname_reject_code (501), unknown_local_recipient_reject_code (550),
unknown_virtual_alias_reject_code (550), unknown_virtual_mailbox_reject_code
(550), unknown_relay_recipient_reject_code (550), local_recipient_maps,
virtual_alias_maps, virtual_mailbox_maps, relay_recipient_maps,
smtpd_reject_unlisted_recipient, smtpd_null_access_lookup_key,
parent_domain_matches_subdomains, recipient_delimiter, soft_bounce,
allow_untrusted_routing, show_user_unknown_table_name, and for SASL
smtpd_sender_login_maps (``permit_sasl_authenticated``, ``check_sasl_access``,
``reject_*sender_login_mismatch``).
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ..domains import match_network, parent_matches
from ..maps import MapError
from ..reply import Reply
from ..trivial_rewrite import Resolved, split_address

__all__ = ["Decision", "Step", "Checker", "Rejected", "CLASS"]

#: reply class per kind of check, as smtpd words it ("<x>: Sender address rejected: ...")
CLASS = {"client": "Client host", "helo": "Helo command", "sender": "Sender address",
         "recipient": "Recipient address", "etrn": "Etrn command", "data": "Data command",
         "eod": "End-of-data", "sasl": "SASL login name"}
LISTS = {"client": "smtpd_client_restrictions", "helo": "smtpd_helo_restrictions",
         "sender": "smtpd_sender_restrictions", "relay": "smtpd_relay_restrictions",
         "recipient": "smtpd_recipient_restrictions", "data": "smtpd_data_restrictions",
         "eod": "smtpd_end_of_data_restrictions", "etrn": "smtpd_etrn_restrictions"}
_TABLE_CHECKS = {"check_client_access": "client", "check_helo_access": "helo",
                 "check_sender_access": "sender", "check_recipient_access": "recipient",
                 "check_etrn_access": "etrn", "check_sasl_access": "sasl"}
_DSN = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)")
# smtpd_dsn_fix: address-specific detail codes when rejecting a sender / a recipient
_SENDER_DSN = {"1": "4.1.7", "2": "4.1.8", "3": "4.1.7", "4": "4.1.7", "5": "4.1.0",
               "6": "4.1.7", "7": "4.1.7", "8": "4.1.8"}
_RCPT_DSN = {"1": "4.1.1", "2": "4.1.2", "3": "4.1.3", "4": "4.1.4", "5": "4.1.5",
             "6": "4.1.6", "7": "4.1.3", "8": "4.1.2"}


@dataclass
class Step:
    """One restriction element evaluated: what it looked at and what it said."""

    restriction_list: str
    element: str
    verdict: str = "DUNNO"                  # DUNNO, OK, REJECT, DEFER, DISCARD, HOLD ...
    detail: str = ""
    lookups: list[tuple[str, str, str | None]] = field(default_factory=list)


@dataclass
class Decision:
    """How one command (RCPT TO:<x>, MAIL FROM, HELO, VRFY ...) was decided."""

    stage: str                              # CONNECT, HELO, MAIL, RCPT, DATA, VRFY, ETRN
    subject: str                            # the address, HELO name or client
    steps: list[Step] = field(default_factory=list)
    resolved: Resolved | None = None
    reply: Reply | None = None
    action: str = "permit"                  # permit, reject, discard
    hold: bool = False

    def explain(self) -> str:
        """Plain-text account of the decision, one line per step."""
        out = [f"{self.stage} {self.subject}"]
        if self.resolved is not None:
            r = self.resolved
            out.append(f"  address class: {r.klass} ({r.recipient} -> {r.transport}:{r.nexthop})")
        for s in self.steps:
            look = "".join(f"\n      lookup {t} {k!r} -> {v!r}" for t, k, v in s.lookups)
            more = f" ({s.detail})" if s.detail else ""
            out.append(f"  {s.restriction_list}: {s.element} -> {s.verdict}{more}{look}")
        out.append(f"  => {self.reply}" if self.reply else f"  => {self.action}")
        return "\n".join(out)


class Rejected(Exception):
    """A restriction rejected the request; ``reply`` is what the client gets."""

    def __init__(self, reply: Reply):
        super().__init__(str(reply))
        self.reply = reply


_PERMIT, _DUNNO = "permit", "dunno"


class Checker:
    """Evaluates restrictions for one SMTP session (``session`` supplies the context)."""

    def __init__(self, session) -> None:
        self.s = session
        self.conf = session.conf
        self.host = session.host
        self.defer_if_permit: Reply | None = None
        self.defer_if_reject: Reply | None = None
        self.warn_if_reject = False
        self.d: Decision | None = None
        self.where = "CONNECT"

    # -- rejecting (smtpd_check_reject) ----------------------------------------------------
    def reply(self, code: int, dsn: str, text: str) -> Reply:
        if not 400 <= code <= 599:
            self.s.log_warning(f"SMTP reply code configuration error: {code} {dsn} {text}")
            code, dsn, text = 450, "4.7.1", "Service unavailable"
        return Reply(code, f"{str(code)[0]}{dsn[1:]}", self.printable(text))

    def printable(self, text: str) -> str:
        """printable(text, ' '): control characters (and, without SMTPUTF8, non-ASCII bytes) -> space."""
        if self.conf.bool("smtputf8_enable"):
            return "".join(ch if ch.isprintable() and not 0xDC80 <= ord(ch) <= 0xDCFF else " "
                           for ch in text)
        raw = text.encode("utf-8", "surrogateescape")
        return "".join(chr(b) if 32 <= b < 127 else " " for b in raw)

    def reject(self, code: int, dsn: str, text: str, *, soft_ok: bool = True,
               error_class: str = "policy") -> None:
        """Log and raise the reject, applying defer_if_reject, warn_if_reject and soft_bounce.

        ``error_class`` is smtpd_check_reject()'s: what notify_classes can ask the
        postmaster to hear about (:mod:`mailsim.smtpd.notify`)."""
        r = self.reply(code, dsn, text)
        if self.warn_if_reject:
            self.s.log_whatsup("reject_warning", str(r).replace("\n", " "))
            self.warn_if_reject = False
            return
        if self.defer_if_reject is not None and r.code >= 500:
            r, self.defer_if_reject = self.defer_if_reject, None
        if self.conf.bool("soft_bounce") and r.code >= 500:
            r = Reply(r.code - 100, "4" + (r.enhanced or "5.0.0")[1:], r.text, r.more)
        self.s.log_whatsup("reject", f"{r.code} {r.enhanced} {r.text}")
        self.s.transcript.error(error_class)
        self.s._reply_classed = True
        raise Rejected(r)

    def dsn_fix(self, dsn: str, cls: str) -> str:
        """:func:`dsn_fix`, logging when it changes the detail (smtpd_dsn_fix.c: msg_info
        ``mapping DSN status 5.1.1 into Sender address status 5.1.7``)."""
        fixed = dsn_fix(dsn, cls)
        if fixed[2:] != dsn[2:]:
            self.s.log.write("smtpd", self.s.pid,
                             f"mapping DSN status {dsn} into {cls} status {dsn[:1]}{fixed[1:]}")
        return fixed

    def tempfail(self, name: str, err: MapError, key: str | None = None) -> None:
        self.s.log_warning(err.warning)
        if key is not None:
            self.s.log_warning(f'{err.spec} lookup error for "{key}"')
        self.reject(451, "4.3.0", f"<{name}>: Temporary lookup failure", error_class="data")

    def config_error(self) -> None:
        self.reject(451, "4.3.5", "Server configuration error", error_class="software")

    # -- table lookups ------------------------------------------------------------------------
    def lookup(self, spec: str, key: str, step: Step | None, reply_name: str) -> str | None:
        """An access-table lookup; a table that cannot be read answers as Postfix's does:
        "451 4.3.5 Server configuration error" (then formatted like any access result)."""
        try:
            r = self.host.open_map(spec).lookup(key)
        except MapError as e:
            self.s.log_warning(e.warning)
            self.s.log_warning(f'{spec} lookup error for "{key}"')
            r = "451 4.3.5 Server configuration error"
            if step is not None:
                step.detail = "the table cannot be read"
        if step is not None:
            step.lookups.append((spec, key, r))
        return r

    # -- the walk (generic_checks) --------------------------------------------------------------
    def run(self, kind: str, reply_name: str, listname: str | None = None,
            elements: list[str] | None = None, depth: int = 0) -> str:
        """Walk one restriction list; return "permit" or "dunno", or raise Rejected."""
        listname = listname or LISTS[kind]
        elems = elements if elements is not None else self.conf.list(listname)
        cls = CLASS["recipient" if kind == "relay" else kind]
        i = 0
        default_acl = {"client": "check_client_access", "helo": "check_helo_access",
                       "sender": "check_sender_access", "recipient": "check_recipient_access",
                       "relay": "check_recipient_access", "etrn": "check_etrn_access"}.get(kind)
        while i < len(elems):
            if self.s.tx_discard:
                break
            el = elems[i]
            name = el.lower()
            i += 1
            step = Step(listname, el)
            self.d.steps.append(step)
            if ":" in el and name not in _TABLE_CHECKS:
                if default_acl is None:
                    self.s.log_warning(f'specify one of (check_client_access, '
                                       f'check_reverse_client_hostname_access, check_helo_access, '
                                       f'check_sender_access, check_recipient_access, '
                                       f'check_etrn_access) before {cls} restriction "{el}"')
                    self.config_error()
                name, el, i = default_acl, default_acl, i - 1
                step.element = default_acl
            if name in _TABLE_CHECKS:
                if i >= len(elems):
                    self.s.log_warning(f"restriction `{el}' requires a table name")
                    self.config_error()
                spec = elems[i]
                i += 1
                step.element = f"{el} {spec}"
                v = self._check_access(_TABLE_CHECKS[name], spec, step, reply_name, cls, depth)
            elif name == "warn_if_reject":
                self.warn_if_reject = True
                continue
            elif name in ("reject_rbl_client", "reject_rhsbl_client", "reject_rhsbl_sender",
                          "reject_rhsbl_recipient", "reject_rhsbl_helo", "check_policy_service",
                          "check_client_a_access", "check_client_mx_access",
                          "check_client_ns_access", "check_sender_mx_access",
                          "check_sender_ns_access", "check_recipient_mx_access",
                          "check_recipient_ns_access", "check_helo_mx_access",
                          "check_helo_ns_access", "check_reverse_client_hostname_access",
                          "check_ccert_access"):
                if i < len(elems):
                    step.element = f"{el} {elems[i]}"
                    i += 1
                step.detail = "not simulated: needs DNS or a service this host does not have"
                v = _DUNNO
            else:
                fn = _BUILTINS.get(name)
                if fn is None:
                    # a restriction class defined in main.cf (smtpd_restriction_classes)?
                    if name in self.conf.list("smtpd_restriction_classes") and depth < 50:
                        step.verdict = "class"
                        v = self.run(kind, reply_name, el, self.conf.list(el), depth + 1)
                    else:
                        self.s.log_warning(f'unknown smtpd restriction: "{el}"')
                        step.verdict = "error"
                        self.config_error()
                        v = _DUNNO
                else:
                    v = fn(self, kind, step, reply_name, cls)
            self.warn_if_reject = False
            if v == _PERMIT:
                if step.verdict == "DUNNO":
                    step.verdict = "OK"
                if name in ("permit",) and i < len(elems):
                    self.s.log_warning(f"restriction `{elems[i]}' after `{el}' is ignored")
                return _PERMIT
        return _DUNNO

    # -- access tables (check_table_result) ---------------------------------------------------
    def _check_access(self, what: str, spec: str, step: Step, reply_name: str, cls: str,
                      depth: int) -> str:
        """check_{client,helo,sender,recipient,etrn}_access: the reply names what was looked up."""
        s = self.s
        cls = CLASS[what]
        if what == "client":
            keys = self._client_keys()
            reply_name = s.client_namaddr
        elif what == "helo":
            if not s.helo_name:
                return _DUNNO
            keys = self._domain_keys(s.helo_name)
            if s.helo_name.startswith("[") and s.helo_name.endswith("]"):
                keys = [s.helo_name[1:-1]]
            reply_name = s.helo_name
        elif what == "sasl":
            # check_sasl_access: the login name, with SASL on and someone logged in
            if not s.sasl_enabled:
                s.log_warning(f"restriction `check_sasl_access' ignored: no SASL support")
                return _DUNNO
            if not s.sasl_username:
                return _DUNNO
            keys = [s.sasl_username]
            reply_name = "".join(ch if " " <= ch <= "~" else "_" for ch in s.sasl_username)
        elif what == "etrn":
            if self.where != "ETRN":          # state->etrn_name is set during ETRN only
                return _DUNNO
            keys = self._domain_keys(self.d.subject)
            reply_name = self.d.subject
        elif what == "sender":
            if s.tx is None:
                return _DUNNO
            keys = self._addr_keys(s.tx.sender)
            reply_name = s.tx.sender
        else:
            rcpt = self.current_recipient()
            if rcpt is None:
                return _DUNNO
            keys = self._addr_keys(rcpt)
            reply_name = rcpt
        for key in keys:
            r = self.lookup(spec, key, step, reply_name)
            if r is not None:
                step.detail = f"{key} -> {r}"
                return self._table_result(spec, r, key, step, reply_name, cls, depth)
        step.detail = "no match"
        return _DUNNO

    def _table_result(self, table: str, value: str, key: str, step: Step, reply_name: str,
                      cls: str, depth: int) -> str:
        word, _, text = value.strip().partition(" ")
        text = text.strip()
        up = word.upper()
        step.verdict = up if not word.isdigit() else word
        if up == "DUNNO":
            return _DUNNO
        if up in ("REJECT", "DEFER", "DEFER_IF_PERMIT", "DEFER_IF_REJECT") or \
                (len(word) == 3 and word[0] in "45" and word.isdigit() and text):
            dflt = "5.7.1" if up == "REJECT" or word[:1] == "5" else "4.7.1"
            m = _DSN.match(text)
            dsn, msg = (m.group(0).strip(), text[m.end():]) if m else (dflt, text)
            dsn = self.dsn_fix(dsn, cls)
            msg = f"<{reply_name}>: {cls} rejected: {msg or 'Access denied'}"
            if up == "REJECT":
                self.reject(self.conf.int("access_map_reject_code"), dsn, msg)
            elif up == "DEFER":
                self.reject(self.conf.int("access_map_defer_code"), dsn, msg)
            elif up == "DEFER_IF_PERMIT":
                if self.defer_if_permit is None:
                    self.defer_if_permit = self.reply(self.conf.int("access_map_defer_code"), dsn, msg)
            elif up == "DEFER_IF_REJECT":
                if self.defer_if_reject is None:
                    self.defer_if_reject = self.reply(self.conf.int("access_map_defer_code"), dsn, msg)
            else:
                self.reject(int(word), dsn, msg)
            return _DUNNO
        if up in ("OK", "RELAY") or word.isdigit():
            return _PERMIT
        if up in ("INFO", "WARN"):
            self.s.log_whatsup(up.lower(), text)
            return _DUNNO
        if up == "HOLD":
            if not self.s.tx_hold:
                self.s.log_whatsup("hold", f"<{reply_name}>: {cls} {text or 'triggers HOLD action'}")
                self.s.tx_hold = True
                self.d.hold = True
            return _DUNNO
        if up == "DISCARD":
            self.s.log_whatsup("discard", f"<{reply_name}>: {cls} {text or 'triggers DISCARD action'}")
            self.s.tx_discard = True
            self.d.action = "discard"
            return _PERMIT
        if up in ("FILTER", "REDIRECT", "BCC"):
            need = ":" if up == "FILTER" else "@"
            if need not in text:
                self.s.log_warning(f'access table {table} entry "{key}" requires '
                                   + ("transport:destination" if up == "FILTER" else "user@domain target"))
                return _DUNNO
            self.s.log_whatsup(up.lower(), f"<{reply_name}>: {cls} triggers {up} {text}")
            self.s.tx_actions.append((up, text))
            return _DUNNO
        if up == "PREPEND":
            # smtpd_check.c: no PREPEND after the content went out; the text must be a header
            if self.where == "END-OF-MESSAGE":
                self.s.log_warning(f"access table {table}: action PREPEND must be used before "
                                   "smtpd_end_of_data_restrictions")
            elif not re.match(r"[!-9;-~]+[ \t]*:", text):     # is_header()
                self.s.log_warning(f'access table {table} entry "{key}" requires header: text')
            else:
                self.s.tx_actions.append((up, text))
            return _DUNNO
        if up == "HANGUP":
            self.s.log_whatsup("hangup", text)
            self.s.hangup = True
            raise Rejected(Reply(421, "4.7.0", f"{self.conf['myhostname']} Error: connection closed"))
        if ":" in value:
            self.s.log_warning(f"access table {table} has entry with lookup table: {value}")
            self.s.log_warning("do not specify lookup tables inside SMTPD access maps")
            self.s.log_warning("define a restriction class and specify its name instead.")
            self.config_error()
        if depth > 100:
            self.s.log_warning(f"access table {table} entry {value} causes unreasonable recursion")
            self.config_error()
        from ..conf import split_list
        elems = split_list(value)
        step.verdict = "restrictions"
        kind = {v: k for k, v in CLASS.items()}[cls]
        return self.run(kind, reply_name, f"{table} result", elems, depth + 1)

    def current_recipient(self) -> str | None:
        """state->recipient: the address being checked, else the first accepted one."""
        if self.where in ("RCPT", "VRFY"):
            return self.d.subject
        if self.where in ("DATA", "END-OF-MESSAGE"):
            # none with several recipients (session.check_data, from smtpd_check.c)
            return self.s._rcpt_for_log
        tx = self.s.tx
        return tx.recipients[0].address if tx is not None and tx.recipients else None

    # -- search orders ----------------------------------------------------------------------
    def _domain_keys(self, domain: str) -> list[str]:
        d = domain.lower().rstrip(".")
        parts = d.split(".")
        pm = parent_matches(self.conf, "smtpd_access_maps")
        return [d] + [(".".join(parts[i:]) if pm else "." + ".".join(parts[i:]))
                      for i in range(1, len(parts))]

    def _addr_keys(self, address: str) -> list[str]:
        """check_mail_access order: user@domain, domain and parents, user@."""
        if address == "":
            return [self.conf.get("smtpd_null_access_lookup_key") or "<>"]
        a = address.lower()
        local, domain = split_address(a)
        keys = [a]
        delim = self.conf.get("recipient_delimiter") or ""
        base = local
        for ch in delim:
            if ch in local:
                base = local.split(ch, 1)[0]
                break
        if base != local:
            keys.append(f"{base}@{domain}" if domain else base)
        if domain:
            keys += self._domain_keys(domain)
        keys.append(f"{local}@")
        if base != local:
            keys.append(f"{base}@")
        return keys

    def _client_keys(self) -> list[str]:
        s = self.s
        keys: list[str] = []
        if s.client_name and s.client_name != "unknown":
            keys += self._domain_keys(s.client_name)
        try:
            ip = ipaddress.ip_address(s.client_addr)
        except ValueError:
            return keys + [s.client_addr]
        if ip.version == 4:
            o = s.client_addr.split(".")
            keys += [".".join(o[:i]) for i in range(4, 0, -1)]
        else:
            full = ip.exploded.split(":")
            keys.append(str(ip))
            keys += [":".join(p.lstrip("0") or "0" for p in full[:i]) for i in range(7, 0, -1)]
        return keys

    # -- the checks smtpd calls ---------------------------------------------------------------
    def _start(self, stage: str, subject: str) -> Decision:
        d = Decision(stage, subject)
        self.d = d
        self.s.decisions.append(d)
        return d

    def check_client(self) -> None:
        self.run("client", self.s.client_namaddr)

    def check_helo(self) -> None:
        if self.s.helo_name is not None:
            self.run("helo", self.s.helo_name)

    def check_mail(self) -> None:
        if self.s.tx is not None:
            self.run("sender", self.s.tx.sender)

    def evaluate(self, stage: str, subject: str, lists: list[tuple[str, str]],
                 rcpt: bool = False) -> Decision:
        """Run ``lists`` [(kind, reply_name)] for one command; fills and returns the Decision."""
        d = self._start(stage, subject)
        self.where = stage
        self.defer_if_permit = self.defer_if_reject = None
        try:
            for kind, name in lists:
                self.warn_if_reject = False
                self.run(kind, name)
                if kind == "sender" and name and not self.s.tx_discard and \
                        self.conf.bool("smtpd_reject_unlisted_sender"):
                    self.rcpt_maps(name, "Sender address")
            if self.defer_if_permit is not None:
                r = self.defer_if_permit
                self.defer_if_permit = None
                self.s.log_whatsup("reject", f"{r.code} {r.enhanced} {r.text}")
                raise Rejected(r)
            if rcpt and self.conf.bool("smtpd_reject_unlisted_recipient") and d.action != "discard":
                self.rcpt_maps(subject)
        except Rejected as e:
            d.reply, d.action = e.reply, "reject"
        return d

    def delayed_lists(self) -> list[tuple[str, str]]:
        """Client, HELO and sender lists, when smtpd_delay_reject moves them to RCPT."""
        s = self.s
        out = [("client", s.client_namaddr)]
        if s.helo_name is not None:
            out.append(("helo", s.helo_name))
        if s.tx is not None:
            out.append(("sender", s.tx.sender))
        return out

    def check_rcpt(self, stage: str, recipient: str) -> Decision:
        """smtpd_check_rcpt: what RCPT TO (and VRFY) go through."""
        if recipient.lower() == "postmaster":
            d = self._start(stage, recipient)
            d.steps.append(Step("(smtpd)", "postmaster", "OK", "mail to postmaster is always accepted"))
            return d
        lists = self.delayed_lists() if self.conf.bool("smtpd_delay_reject") else []
        order = [("relay", recipient), ("recipient", recipient)]
        if not self.conf.bool("smtpd_relay_before_recipient_restrictions"):
            order.reverse()
        return self.evaluate(stage, recipient, lists + order, rcpt=True)

    def resolve(self, addr: str) -> Resolved:
        """trivial-rewrite's answer; a table it cannot read means 451 4.3.0 (reject_dict_retry)."""
        d = self.d
        if d is not None and d.resolved is not None and d.resolved.address == addr:
            return d.resolved
        try:
            r = self.s.resolve(addr)
        except MapError:            # trivial-rewrite logged why
            self.reject(451, "4.3.0", f"<{addr}>: Temporary lookup failure", error_class="data")
            raise  # not reached: reject() raises
        if d is not None and d.subject == addr:
            d.resolved = r
        return r

    # -- recipient tables (check_rcpt_maps) ----------------------------------------------------
    def rcpt_maps(self, recipient: str, cls: str = "Recipient address") -> None:
        """Reject addresses the host does not know; Postfix's check_rcpt_maps.

        Used for recipients (smtpd_reject_unlisted_recipient) and, with
        ``cls="Sender address"``, for senders (smtpd_reject_unlisted_sender).
        """
        c = self.conf
        sender = cls == "Sender address"
        step = Step("smtpd_reject_unlisted_sender" if sender else "smtpd_reject_unlisted_recipient",
                    "sender tables" if sender else "recipient tables")
        self.d.steps.append(step)
        res = self.resolve(recipient)
        rcpt = res.recipient
        try:
            for param in ("recipient_canonical_maps", "canonical_maps", "virtual_alias_maps"):
                hit = self.host.address_find(rcpt, c.list(param), self.s.trivial,
                                             trace=step.lookups)
                if hit is not None:
                    step.detail = f"found in {param}"
                    return
            klass = res.klass
            if klass == "alias":
                step.verdict = "REJECT"
                self.reject(c.int("unknown_virtual_alias_reject_code"), self.dsn_fix("5.1.1", cls),
                            f"<{recipient}>: {cls} rejected: User unknown"
                            + (" in virtual alias table" if c.bool("show_user_unknown_table_name") else ""))
            if klass == "local":
                specs = c.list("local_recipient_maps")
                local = rcpt.rpartition("@")[0].lower()
                if not specs or local in ("postmaster", "mailer-daemon",
                                          (c.get("double_bounce_sender") or "double-bounce").lower()):
                    step.detail = "local_recipient_maps is empty" if not specs else "always accepted"
                    return
                if self.host.local_recipient_find(rcpt, specs, trace=step.lookups) is None:
                    step.verdict = "REJECT"
                    self._unknown(recipient, "unknown_local_recipient_reject_code", "local recipient table", cls)
                step.detail = "found in local_recipient_maps"
            elif klass == "virtual":
                specs = c.list("virtual_mailbox_maps")
                if specs and self.host.address_find(rcpt, specs, self.s.trivial, trace=step.lookups) is None:
                    step.verdict = "REJECT"
                    self._unknown(recipient, "unknown_virtual_mailbox_reject_code", "virtual mailbox table", cls)
            elif klass == "relay":
                specs = c.list("relay_recipient_maps")
                if specs and self.host.address_find(rcpt, specs, self.s.trivial, trace=step.lookups) is None:
                    step.verdict = "REJECT"
                    self._unknown(recipient, "unknown_relay_recipient_reject_code", "relay recipient table", cls)
        except MapError as e:
            step.verdict = "TEMPFAIL"
            self.tempfail(recipient, e, rcpt)

    def _unknown(self, addr: str, code_param: str, table: str, cls: str) -> None:
        c = self.conf
        self.reject(c.int(code_param), "5.1.0" if cls == "Sender address" else "5.1.1",
                    f"<{addr}>: {cls} rejected: User unknown"
                    + (f" in {table}" if c.bool("show_user_unknown_table_name") else ""))


def kind_is_not_rcpt(where: str) -> bool:
    return where not in ("RCPT", "VRFY")


def dsn_fix(dsn: str, cls: str) -> str:
    """smtpd_dsn_fix: an address DSN (x.1.y) adjusted to what is being rejected.

    >>> dsn_fix("5.1.1", "Sender address"), dsn_fix("5.1.7", "Recipient address")
    ('4.1.7', '4.1.3')
    >>> dsn_fix("5.1.1", "Client host"), dsn_fix("5.7.1", "Sender address")
    ('4.0.0', '5.7.1')
    """
    if len(dsn) >= 5 and dsn[1:4] == ".1.":
        micro = dsn[4:]
        if cls == "Sender address":
            return _SENDER_DSN.get(micro, "4.1.0")
        if cls == "Recipient address":
            return _RCPT_DSN.get(micro, "4.1.0")
        return "4.0.0"
    return dsn


# -- built-in restrictions -------------------------------------------------------------------
_FQDN_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$", re.I)


def valid_hostname(name: str) -> bool:
    """Postfix's valid_hostname(): dot-separated labels of letters, digits, - and _."""
    n = name[:-1] if name.endswith(".") else name
    if not n or len(n) > 255:
        return False
    labels = n.split(".")
    if any(not l or len(l) > 63 or not _FQDN_LABEL.match(l) for l in labels):
        return False
    if all(l.isdigit() for l in labels):
        return False       # numeric: that is an address, not a name
    return True


def valid_literal(text: str) -> bool:
    """``[1.2.3.4]`` or ``[IPv6:...]`` (Postfix's valid_mailhost_literal)."""
    if not (text.startswith("[") and text.endswith("]")):
        return False
    inner = text[1:-1]
    try:
        if inner.lower().startswith("ipv6:"):
            return ipaddress.ip_address(inner[5:]).version == 6
        return ipaddress.ip_address(inner).version == 4 and inner.count(".") == 3
    except ValueError:
        return False


def _permit(ck, kind, step, name, cls):
    return _PERMIT


def _reject(ck, kind, step, name, cls):
    step.verdict = "REJECT"
    ck.reject(ck.conf.int("reject_code"), "5.7.1", f"<{name}>: {cls} rejected: Access denied")
    return _DUNNO


def _defer(ck, kind, step, name, cls):
    step.verdict = "DEFER"
    ck.reject(ck.conf.int("defer_code"), "4.3.2", f"<{name}>: {cls} rejected: Try again later")
    return _DUNNO


def _defer_if(which):
    def fn(ck, kind, step, name, cls):
        r = ck.reply(450, "4.7.0", f"<{name}>: {cls} rejected: defer_if_{which} requested")
        if which == "permit" and ck.defer_if_permit is None:
            ck.defer_if_permit = r
        elif which == "reject" and ck.defer_if_reject is None:
            ck.defer_if_reject = r
        step.verdict = f"DEFER_IF_{which.upper()}"
        return _DUNNO
    return fn


def _permit_mynetworks(ck, kind, step, name, cls):
    trace: list = []
    try:
        hit = match_network(ck.s.client_addr, ck.conf.list("mynetworks"),
                            lookup=lambda spec, key: ck.host.open_map(spec).lookup(key), trace=trace)
    except MapError as e:
        ck.tempfail(ck.s.client_namaddr, e, ck.s.client_addr)
        hit = False
    step.lookups += trace
    step.detail = f"{ck.s.client_addr} {'is' if hit else 'is not'} in mynetworks ({ck.conf['mynetworks']})"
    return _PERMIT if hit else _DUNNO


def _auth_destination(ck, recipient: str, step: Step) -> bool:
    r = ck.resolve(recipient)
    step.detail = f"{r.domain or recipient}: address class {r.klass}"
    if "@" not in r.recipient:
        return True
    if not ck.conf.bool("allow_untrusted_routing") and r.routed:
        step.detail += " (routed address)"
        return False
    return r.klass in ("local", "alias", "virtual", "relay")


def _rcpt_only(fn):
    def wrapped(ck, kind, step, name, cls):
        if kind not in ("recipient", "relay") or kind_is_not_rcpt(ck.where):
            return _DUNNO
        return fn(ck, kind, step, name, cls)
    return wrapped


def _unauth_destination(code_param: str | None, code: int, dsn: str):
    @_rcpt_only
    def fn(ck, kind, step, name, cls):
        if _auth_destination(ck, ck.d.subject, step):
            return _DUNNO
        step.verdict = "REJECT" if code > 0 else "DEFER"
        ck.reject(ck.conf.int(code_param) + min(code, 0), dsn, f"<{ck.d.subject}>: Relay access denied")
        return _DUNNO
    return fn


@_rcpt_only
def _permit_auth_destination(ck, kind, step, name, cls):
    return _PERMIT if _auth_destination(ck, ck.d.subject, step) else _DUNNO


def _non_fqdn_helo(ck, kind, step, name, cls):
    h = ck.s.helo_name
    if not h or (h.startswith("[") and h.endswith("]")) or not valid_hostname(h):
        return _DUNNO
    if "." in h.rstrip("."):
        return _DUNNO
    step.verdict = "REJECT"
    ck.reject(ck.conf.int("non_fqdn_reject_code"), "5.5.2",
              f"<{h}>: Helo command rejected: need fully-qualified hostname")
    return _DUNNO


def _invalid_helo(ck, kind, step, name, cls):
    h = ck.s.helo_name
    if not h:
        return _DUNNO
    if h.startswith("["):
        inner = h[1:-1] if len(h) > 2 and h.endswith("]") else h
        if valid_literal(f"[{inner}]"):
            return _DUNNO
        text = "invalid ip address"
    else:
        bare = h.rstrip(".") if h.endswith(".") else h
        if valid_hostname(bare) or _is_ipv4(bare):
            return _DUNNO
        text = "Invalid name"
    step.verdict = "REJECT"
    ck.reject(ck.conf.int("invalid_hostname_reject_code"), "5.5.2",
              f"<{h}>: Helo command rejected: {text}")
    return _DUNNO


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def _non_fqdn_addr(which: str):
    """reject_non_fqdn_sender/recipient: the address as given must have a dotted domain."""
    def fn(ck, kind, step, name, cls):
        if which == "sender":
            addr = ck.s.tx.sender if ck.s.tx is not None else ""
            c = "Sender address"
        else:
            addr = ck.current_recipient() or ""
            c = "Recipient address"
        if not addr:
            return _DUNNO
        dom = addr.rpartition("@")[2] if "@" in addr else ""
        if dom.startswith("[") and dom.endswith("]"):
            return _DUNNO
        dom = dom[:-1] if dom.endswith(".") else dom
        if dom and valid_hostname(dom) and "." in dom:
            return _DUNNO
        step.verdict = "REJECT"
        ck.reject(ck.conf.int("non_fqdn_reject_code"), "4.5.2",
                  f"<{addr}>: {c} rejected: need fully-qualified address")
        return _DUNNO
    return fn


@_rcpt_only
def _reject_unlisted_recipient(ck, kind, step, name, cls):
    ck.rcpt_maps(ck.d.subject)
    return _DUNNO


def _reject_unauth_pipelining(ck, kind, step, name, cls):
    if ck.s.ill_pipelining:
        step.verdict = "REJECT"
        ck.reject(503, "5.5.0", f"<{name}>: {cls} rejected: Improper use of SMTP command pipelining")
    return _DUNNO


def _reject_multi_recipient_bounce(ck, kind, step, name, cls):
    tx = ck.s.tx
    if tx is not None and tx.sender == "" and len(tx.recipients) > 1:
        step.verdict = "REJECT"
        ck.reject(ck.conf.int("multi_recipient_bounce_reject_code"), "5.5.3",
                  f"<{name}>: {cls} rejected: Multi-recipient bounce")
    return _DUNNO


def _permit_sasl_authenticated(ck, kind, step, name, cls):
    """permit_sasl_auth(): a client logged in with any mechanism but ANONYMOUS."""
    s = ck.s
    if s.sasl is None:
        step.detail = "SASL is not active in this session"
        return _DUNNO
    if s.sasl_method and s.sasl_method.lower() != "anonymous":
        step.detail = f"logged in as {s.sasl_username} ({s.sasl_method})"
        return _PERMIT
    step.detail = "not logged in" if not s.sasl_method else "an anonymous login does not count"
    return _DUNNO


def _sender_owners(ck, step) -> str | None:
    """smtpd_sender_login_maps' answer for the sender (check_mail_addr_find)."""
    sender = ck.s.tx.sender
    specs = ck.conf.list("smtpd_sender_login_maps")
    r = ck.resolve(sender)
    try:
        hit = ck.host.address_find(r.recipient, specs, ck.s.trivial, trace=step.lookups)
    except MapError as e:
        step.verdict = "TEMPFAIL"
        ck.tempfail(sender, e, r.recipient.lower())
        return None
    return hit[1] if hit is not None else None


def _login_mismatch(which: str):
    """reject_{authenticated,unauthenticated,known}_sender_login_mismatch."""
    restriction = {"auth": "reject_authenticated_sender_login_mismatch",
                   "unauth": "reject_unauthenticated_sender_login_mismatch",
                   "known": "reject_known_sender_login_mismatch"}[which]

    def fn(ck, kind, step, name, cls):
        s = ck.s
        if not s.sasl_enabled:
            s.log_warning(f"restriction `{restriction}' ignored: no SASL support")
            return _DUNNO
        if s.tx is None or not s.tx.sender or not ck.conf.list("smtpd_sender_login_maps"):
            return _DUNNO
        sender = s.tx.sender
        if s.sasl_username and which in ("auth", "known"):
            owners = _sender_owners(ck, step)
            if owners is None and which == "known":
                step.detail = "the sender has no owner"
                return _DUNNO
            names = [n for n in re.split(r"[\s,]+", owners or "") if n]
            if any(n.casefold() == s.sasl_username.casefold() for n in names):
                step.detail = f"owned by {s.sasl_username}"
                return _DUNNO
            step.verdict = "REJECT"
            ck.reject(553, "5.7.1", f"<{sender}>: Sender address rejected: "
                                    f"not owned by user {s.sasl_username}")
        elif not s.sasl_username and which in ("unauth", "known"):
            if _sender_owners(ck, step) is not None:
                step.verdict = "REJECT"
                ck.reject(553, "5.7.1", f"<{sender}>: Sender address rejected: not logged in")
            step.detail = "the sender has no owner"
        return _DUNNO
    return fn


def _sender_login_mismatch(ck, kind, step, name, cls):
    """reject_sender_login_mismatch: the authenticated check, then the unauthenticated one."""
    _login_mismatch("auth")(ck, kind, step, name, cls)
    return _login_mismatch("unauth")(ck, kind, step, name, cls)


def _not_simulated(ck, kind, step, name, cls):
    step.detail = "not simulated (needs DNS or a client certificate): no effect"
    return _DUNNO


_BUILTINS = {
    "permit": _permit,
    "reject": _reject,
    "defer": _defer,
    "defer_if_permit": _defer_if("permit"),
    "defer_if_reject": _defer_if("reject"),
    "permit_mynetworks": _permit_mynetworks,
    "reject_unauth_destination": _unauth_destination("relay_domains_reject_code", 0, "5.7.1"),
    # Postfix: defer_unauth_destination answers $relay_domains_reject_code - 100
    "defer_unauth_destination": _unauth_destination("relay_domains_reject_code", -100, "4.7.1"),
    "permit_auth_destination": _permit_auth_destination,
    "reject_non_fqdn_helo_hostname": _non_fqdn_helo,
    "reject_non_fqdn_hostname": _non_fqdn_helo,
    "reject_invalid_helo_hostname": _invalid_helo,
    "reject_invalid_hostname": _invalid_helo,
    "reject_non_fqdn_sender": _non_fqdn_addr("sender"),
    "reject_non_fqdn_recipient": _non_fqdn_addr("recipient"),
    "reject_unlisted_recipient": _reject_unlisted_recipient,
    "reject_unknown_recipient": _reject_unlisted_recipient,
    "reject_unauth_pipelining": _reject_unauth_pipelining,
    "reject_multi_recipient_bounce": _reject_multi_recipient_bounce,
    "permit_sasl_authenticated": _permit_sasl_authenticated,
    "permit_tls_clientcerts": _not_simulated,
    "permit_tls_all_clientcerts": _not_simulated,
    "reject_plaintext_session": _not_simulated,
    "reject_unknown_sender_domain": _not_simulated,
    "reject_unknown_recipient_domain": _not_simulated,
    "reject_unknown_helo_hostname": _not_simulated,
    "reject_unknown_client_hostname": _not_simulated,
    "reject_unknown_client": _not_simulated,
    "reject_unknown_reverse_client_hostname": _not_simulated,
    "reject_unverified_sender": _not_simulated,
    "reject_unverified_recipient": _not_simulated,
    "reject_sender_login_mismatch": _sender_login_mismatch,
    "reject_authenticated_sender_login_mismatch": _login_mismatch("auth"),
    "reject_unauthenticated_sender_login_mismatch": _login_mismatch("unauth"),
    "reject_known_sender_login_mismatch": _login_mismatch("known"),
    "reject_unlisted_sender": _not_simulated,
    "permit_inet_interfaces": _not_simulated,
    "permit_naked_ip_address": _not_simulated,
    "permit_mx_backup": _not_simulated,
    "sleep": _not_simulated,
}
