"""local(8)'s bookkeeping: what travels with one recipient through the
delivery graph, and the three ways a destination ends (sent, bounced,
deferred), each logged as Postfix logs it.

Models ``src/local/local.h`` (DELIVER_ATTR, USER_ATTR, LOCAL_STATE), the
per-recipient duplicate filter (``been_here``) and the ``sent()``,
``bounce_append()`` and ``defer_append()`` calls of the delivery agent.

Postfix passes the delivery attributes *by value* down the recursion
(alias -> member -> .forward -> ...), so a change made while expanding one
alias never leaks into its siblings; :class:`Attr` is copied with
:meth:`Attr.down` for the same reason.

Example
-------
>>> a = Attr(Recipient("Peter+News@example.com"), "alice@example.org")
>>> b = a.down(owner="peter")
>>> (a.level, a.owner), (b.level, b.owner)
((0, None), (1, 'peter'))
>>> strip_success("SUCCESS"), strip_success("SUCCESS,FAILURE"), strip_success("")
('NEVER', 'FAILURE', '')
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..bounce import RecipientStatus
from ..log_adhoc import log_adhoc
from ..queue import QueueFile, Recipient

__all__ = ["LocalOutcome", "Attr", "UserAttr", "Run", "TRACE_ONLY", "verifying", "EXPAND_ALIAS", "EXPAND_FORWARD",
           "EXPAND_INCLUDE", "sent", "bounce", "defer", "fail", "strip_success", "names",
           "find_maps", "propagate"]

#: where a destination came from (Postfix's EXPAND_TYPE_*): allow_mail_to_files
#: and allow_mail_to_commands name these contexts
EXPAND_ALIAS = 1
EXPAND_FORWARD = 2
EXPAND_INCLUDE = 4
#: DEL_REQ_FLAG_MTA_VRFY | DEL_REQ_FLAG_USR_VRFY in a queue file's trace_flags
TRACE_ONLY = 512 | 256
_CONTEXTS = {"alias": EXPAND_ALIAS, "forward": EXPAND_FORWARD, "include": EXPAND_INCLUDE}


@dataclass
class LocalOutcome:
    """What local(8) did with one queue-file recipient (see :func:`mailsim.local.deliver_local`).

    The recipient is done -- qmgr removes it from the queue file -- unless
    ``deferred`` is not empty; then all of it is tried again later (Postfix
    keeps no per-destination record, so a retry may deliver to files and
    commands twice: "better safe than sorry").
    """
    delivered: list[str] = field(default_factory=list)            # final addresses, status=sent
    bounced: list[RecipientStatus] = field(default_factory=list)  # one per bounced destination
    deferred: list[tuple[str, str]] = field(default_factory=list)  # (dsn, text): stays queued
    forwarded: list[str] = field(default_factory=list)            # queue ids of forwarded copies
    texts: list[str] = field(default_factory=list)                # status text of each delivered


@dataclass(frozen=True)
class UserAttr:
    """Whose rights a /file or |command delivery would use (USER_ATTR).

    Empty (``name`` None) for root-owned alias databases: Postfix then uses
    ``default_privs`` (nobody).
    """
    name: str | None = None
    uid: int = 0
    gid: int = 0
    home: str | None = None
    shell: str | None = None

    @classmethod
    def of(cls, pw) -> "UserAttr":
        """From a :class:`mailsim.host.PasswdEntry`."""
        return cls(pw.name, pw.uid, pw.gid, pw.home, pw.shell)


@dataclass
class Attr:
    """The delivery attributes of one node of the expansion tree (DELIVER_ATTR)."""
    rcpt: Recipient                 # address, orig (original recipient), notify, orcpt
    sender: str                     # the envelope sender (an owner- alias may replace it)
    level: int = 0                  # recursion depth: "alias database loop" past 100
    local: str = ""                 # the address' local part, lower case
    domain: str | None = None
    user: str = ""                  # local part without the extension
    extension: str | None = None
    unmatched: str | None = None    # extension still to be passed on to alias members
    owner: str | None = None        # owner- alias or .forward owner: members are forwarded
    delivered: str | None = None    # the Delivered-To: address (frozen at the first level)
    exp_type: int = 0               # EXPAND_*: where the current destination came from
    exp_from: str | None = None     # the alias being expanded (an alias naming itself)
    envid: str = ""                 # DSN ENVID and RET of the message
    ret: str = ""

    def down(self, **changes) -> "Attr":
        """A copy one level deeper (Postfix's ``state.level++`` on a by-value copy)."""
        return replace(self, level=self.level + 1, **changes)

    def with_address(self, address: str) -> "Attr":
        return replace(self, rcpt=replace(self.rcpt, address=address))


@dataclass
class Run:
    """What the whole delivery of one queue-file recipient shares (LOCAL_STATE)."""
    host: object
    qf: QueueFile
    pid: int
    active: float | None
    transport: str = "local"                            # the master.cf service we run as
    outcome: LocalOutcome = field(default_factory=LocalOutcome)
    seen: set[str] = field(default_factory=set)         # the duplicate filter
    delivered_to: set[str] = field(default_factory=set)  # Delivered-To: headers (loop check)
    forwards: dict[tuple[str, str], list[Recipient]] = field(default_factory=dict)

    @property
    def trace_only(self) -> bool:
        """``sendmail -bv`` (trace flag 512): find out where mail would go, deliver nothing."""
        return bool(int(self.qf.attrs.get("trace_flags") or 0) & TRACE_ONLY)

    def been_here(self, key: str) -> bool:
        """True if ``key`` was seen before (and remember it): Postfix's been_here()."""
        if key.lower() in self.seen:
            return True
        self.seen.add(key.lower())
        return False

    def warn(self, text: str) -> None:
        self.host.log.write("local", self.pid, f"warning: {text}")

    def info(self, text: str) -> None:
        self.host.log.write("local", self.pid, text)


def find_maps(host, specs: list[str], key: str) -> str | None:
    """The first value for ``key`` in the tables ``specs`` (Postfix's maps_find)."""
    for spec in specs:
        value = host.open_map(spec).lookup(key)
        if value is not None:
            return value
    return None


def propagate(host) -> list[str]:
    """propagate_unmatched_extensions, lower case (``canonical, virtual``)."""
    return [w.lower() for w in host.conf.list("propagate_unmatched_extensions")]


def names(value: str, param: str) -> int:
    """The EXPAND_* mask of ``allow_mail_to_files``-like values (``alias, forward``)."""
    mask = 0
    for word in value.replace(",", " ").split():
        mask |= _CONTEXTS.get(word.lower(), 0)
    return mask


def strip_success(notify: str) -> str:
    """DSN NOTIFY for alias members: SUCCESS is reported for the alias, not passed on."""
    if not notify:
        return notify
    words = [w for w in notify.upper().split(",") if w and w != "SUCCESS"]
    return ",".join(words) if words else "NEVER"


def _log(run: Run, a: Attr, text: str, dsn: str, status: str, relay: str = "local") -> None:
    if run.trace_only:          # verify mode logs what would happen
        status = {"sent": "deliverable", "bounced": "undeliverable"}.get(status, status)
    log_adhoc(run.host, "local", run.pid, run.qf, a.rcpt.address, a.rcpt.orig, relay, text,
              dsn, status, active=run.active)


def sent(run: Run, a: Attr, text: str, *, record: bool = True) -> int:
    """``status=sent``; the destination is done."""
    _log(run, a, text, "2.0.0", "sent")
    if record:
        run.outcome.delivered.append(a.rcpt.address)
        run.outcome.texts.append(text)
    return 0


def bounce(run: Run, a: Attr, dsn: str, text: str, diagnostic: str | None = None) -> int:
    """``status=bounced``: recorded for the non-delivery notice; the destination is done."""
    _log(run, a, text, dsn, "bounced")
    orig = a.rcpt.orig
    run.outcome.bounced.append(RecipientStatus(
        a.rcpt.address, orig_address=orig, status=dsn, action="failed", reason=text,
        diagnostic=diagnostic, orcpt=a.rcpt.orcpt or (f"rfc822;{orig}" if orig else "")))
    return 0


def defer(run: Run, a: Attr, dsn: str, text: str, relay: str = "local") -> int:
    """``status=deferred``: the queue-file recipient stays queued (non-zero result)."""
    _log(run, a, text, dsn, "deferred", relay)
    run.outcome.deferred.append((dsn, text))
    return 1


def fail(run: Run, a: Attr, dsn: str, text: str, diagnostic: str | None = None) -> int:
    """A 4.x.x status defers, anything else bounces (local's usual rule)."""
    return defer(run, a, dsn, text) if dsn.startswith("4") else bounce(run, a, dsn, text, diagnostic)


def verifying(run: Run, a: Attr, what: str) -> int | None:
    """In verify mode, log "deliverable (delivers to WHAT)" instead of delivering;
    None when the delivery should really happen."""
    return sent(run, a, f"delivers to {what}") if run.trace_only else None
