"""A day of mail: seeded SMTP traffic with outcomes known in advance.

Models no single Postfix program: it plays the Internet and the office LAN
in front of a simulated host, so that the host's log looks like a small
mail server's after a working day, and every count a log summarizer
(pflogsumm, :mod:`mailsim.logsumm`) should find is known beforehand.

What it does
------------
:func:`prepare_host` sets the stage on a host (it edits the host's own files,
as an administrator would, and logs nothing):

* ``/etc/aliases`` gets ``ghost: nosuchuser`` (an alias to a missing user:
  accepted at RCPT, bounced by local(8) -- the *bounce-alias-missing* case);
* ``mailbox_size_limit = 10240000`` and bob's mailbox filled to 80 bytes
  below it (every new message to bob bounces with ``5.2.2 ... File too
  large`` -- the *mailbox-quota* case);
* ``relayhost = [127.0.0.1]:PORT`` on a port where nothing listens, so mail
  for other domains is deferred (``Connection refused``) once the host has
  an smtp(8) client (without one, qmgr parks it in ``deferred`` unlogged).

:func:`generate` then runs ``n`` in-process SMTP sessions
(:meth:`mailsim.host.Host.session`) spread over ``span`` seconds of
simulated time with more mail in office hours, and runs the queue manager
after each. Every session is one message attempt: MAIL FROM, one to three
RCPT TO, DATA if a recipient was accepted, QUIT. Each recipient's fate is
drawn from a seeded :class:`random.Random`:

================  ================================  =====================================
kind              client / recipient                what the log shows
================  ================================  =====================================
``deliver``       any / a local user                local: ``status=sent``
``unknown``       any / no such user                smtpd: ``reject: RCPT ... 550 5.1.1``
``relay``         outside / another domain          smtpd: ``reject: RCPT ... 454 4.7.1``
``alias``         LAN / ``ghost``                   local: ``status=bounced`` + a DSN
``quota``         LAN / ``bob``                     local: ``status=bounced`` + a DSN
``remote``        LAN / another domain              smtp: ``status=deferred``
================  ================================  =====================================

LAN clients (127.0.0.1, in ``mynetworks``) send as local users, so their
bounces come back to a local mailbox (each DSN adds one ``status=sent``);
outside clients (TEST-NET addresses) send as people elsewhere and may only
reach local users.

Does not: use pickup/sendmail, pipelining, TLS, AUTH, send duplicate
recipients or predict the number of *retries* of deferred mail (that is
the queue manager's schedule); ``Plan.deferrals`` counts first attempts.

Examples
--------
>>> import tempfile
>>> h = make_host(tempfile.mkdtemp() + "/mx")
>>> plan = generate(h, 20, seed=1, mix=LOCAL_MIX)
>>> plan.messages, plan.received + plan.rejected_only
(20, 20)
>>> plan.delivered == sum(ln.count("status=sent") for ln in h.log.lines)
True
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from .clock import SimClock

__all__ = ["Plan", "prepare_host", "make_host", "generate", "DIURNAL", "LOCAL_USERS",
           "FULL_USER", "RECIPIENT_MIX", "LOCAL_MIX", "arrival_times"]

#: local users who read their mail (the "deliver" recipients and LAN senders)
LOCAL_USERS = ("alice", "carol", "dave", "erin", "frank")
#: the user whose mailbox is full
FULL_USER = "bob"
#: relative amount of mail per hour of the (UTC) day: quiet nights, busy office hours
DIURNAL = (1, 1, 1, 1, 1, 2, 3, 6, 10, 12, 12, 11, 8, 10, 12, 11, 9, 6, 4, 3, 2, 2, 1, 1)
#: recipient kinds and weights, for LAN clients and for outside clients
RECIPIENT_MIX = {
    "lan": {"deliver": 60, "unknown": 8, "alias": 7, "quota": 5, "remote": 20},
    "outside": {"deliver": 70, "unknown": 15, "relay": 15},
}
#: the same without mail for other domains (for a host that has no smtp(8) client)
LOCAL_MIX = {"lan": {k: v for k, v in RECIPIENT_MIX["lan"].items() if k != "remote"},
             "outside": dict(RECIPIENT_MIX["outside"])}
OUTSIDE_SHARE = 0.4
MAILBOX_LIMIT = 10240000
REMOTE_SENDERS = ("anna@example.org", "ben@example.org", "news@lists.example.net",
                  "info@shop.example.net", "orders@example.co.uk", "mike@mail.example.de")
REMOTE_RCPT_DOMAINS = ("example.org", "example.net", "partner.example.co.uk")
OUTSIDE_CLIENTS = ("192.0.2.7", "192.0.2.25", "198.51.100.3", "198.51.100.80", "203.0.113.9")
#: names people (and spammers) try that have no mailbox here
UNKNOWN_NAMES = ("info", "sales", "admin", "jobs", "webmaster", "alcie", "carl", "david",
                 "office", "billing", "support", "hr")
#: people at other domains
REMOTE_NAMES = ("tom", "lisa", "mark", "nina", "orders", "helpdesk", "paul", "sara")
WORDS = ("meeting", "invoice", "report", "lunch", "backup", "server", "update",
         "schedule", "budget", "printer", "holiday", "project")


@dataclass
class Plan:
    """What :func:`generate` sent, and the counts a log summary must therefore show.

    ``delivered``/``bounced`` count delivery log lines (``status=sent``/
    ``bounced``), ``rejected`` smtpd reject lines, ``received`` messages that
    smtpd queued (``client=`` lines). ``remote`` messages had accepted
    recipients in other domains (``remote_recipients``); when the host has an
    smtp(8) client (``smtp_client``: the log shows deferrals) they are the
    ``deferred`` messages and their first ``deferrals``; without one, qmgr
    parks them in the deferred queue unlogged and both stay 0.
    """
    messages: int = 0
    received: int = 0
    rejected_only: int = 0          # sessions whose every recipient was rejected
    delivered: int = 0
    bounced: int = 0
    rejected: int = 0
    deferred: int = 0
    deferrals: int = 0
    dsns: int = 0
    remote: int = 0
    remote_recipients: int = 0
    smtp_client: bool = False
    kinds: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, n: int = 1) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + n


# -- the stage ----------------------------------------------------------------------------
def _postconf_e(host, **settings: str) -> None:
    """Edit main.cf as ``postconf -e`` does, then ``postfix reload``."""
    import io
    from .cli import run_command
    args = ["-e"] + [f"{k}={v}" for k, v in settings.items()]
    run_command(host.root, "postconf", args, out=io.StringIO(), err=io.StringIO())
    host.reload()


def _fill_mailbox(path: Path, size: int) -> None:
    """An mbox of old newsletters, ``size`` bytes long (deterministic text)."""
    head = ("From news@lists.example.net  Mon Nov 23 07:00:00 2026\n"
            "From: news@lists.example.net\nSubject: Weekly digest\n\n")
    line = "Unread digest text that nobody ever deleted. " * 2 + "\n"
    body_len = size - len(head) - 1
    body = (line * (body_len // len(line) + 1))[:body_len]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + body + "\n")


def prepare_host(host, *, relay_port: int | None = None) -> None:
    """Set up ``host`` for :func:`generate` (see the module docstring).

    ``relay_port``: the closed port for ``relayhost`` (default: a free one,
    :func:`mailsim.serve.free_port`).
    """
    from .maps import postalias_build
    from .serve import free_port
    aliases = host.path("/etc/aliases")
    text = aliases.read_text()
    if "\nghost:" not in "\n" + text:
        aliases.write_text(text + "ghost:         nosuchuser\n")
    postalias_build(host, "hash:/etc/aliases")
    port = relay_port or free_port()
    _postconf_e(host, mailbox_size_limit=str(MAILBOX_LIMIT), relayhost=f"[127.0.0.1]:{port}")
    _fill_mailbox(host.path(f"/var/mail/{FULL_USER}"), MAILBOX_LIMIT - 80)


def make_host(root, *, start: float | None = None, relay_port: int | None = None):
    """A new host at ``root`` with the users of this module, prepared, whose simulated
    clock starts at ``start`` (default: midnight UTC of mailsim's default day)."""
    from .clock import DEFAULT_EPOCH
    from .host import init_host
    t0 = DEFAULT_EPOCH - DEFAULT_EPOCH % 86400 if start is None else start
    host = init_host(root, users=list(LOCAL_USERS) + [FULL_USER], clock=SimClock(t0))
    prepare_host(host, relay_port=relay_port)
    return host


# -- the traffic ----------------------------------------------------------------------------
def arrival_times(rng: random.Random, n: int, start: float, span: float,
                  profile=DIURNAL) -> list[float]:
    """``n`` sorted times in ``[start, start + span)``, denser in busy hours of ``profile``.

    >>> ts = arrival_times(random.Random(0), 5, 0.0, 86400.0)
    >>> ts == sorted(ts) and 0 <= ts[0] and ts[-1] < 86400
    True
    """
    hours = max(1, math.ceil(span / 3600))
    weights = [profile[int((start + 3600 * h) // 3600) % 24] for h in range(hours)]
    out = []
    for h in rng.choices(range(hours), weights=weights, k=n):
        lo = start + 3600 * h
        out.append(min(lo + rng.random() * 3600, start + span - 1e-3))
    return sorted(out)


def _draw_recipients(rng: random.Random, mix: dict[str, int]) -> list[tuple[str, str]]:
    """(kind, address) for one message: 1-3 recipients, no address twice."""
    k = rng.choices((1, 2, 3), weights=(70, 20, 10))[0]
    kinds = rng.choices(list(mix), weights=list(mix.values()), k=k)
    users = rng.sample(LOCAL_USERS, len(LOCAL_USERS))
    out, seen = [], set()
    for i, kind in enumerate(kinds):
        if kind == "deliver":
            addr = f"{users[i]}@example.com"
        elif kind == "unknown":
            addr = f"{rng.choice(UNKNOWN_NAMES)}@example.com"
        elif kind in ("remote", "relay"):
            addr = f"{rng.choice(REMOTE_NAMES)}@{rng.choice(REMOTE_RCPT_DOMAINS)}"
        else:
            addr = "ghost@example.com" if kind == "alias" else f"{FULL_USER}@example.com"
        if addr not in seen:
            seen.add(addr)
            out.append((kind, addr))
    return out


def _message(rng: random.Random, sender: str, rcpts: list[str], seq: int, seed: int) -> str:
    subject = " ".join(rng.sample(WORDS, 2)).capitalize()
    body = "\n".join(" ".join(rng.choices(WORDS, k=rng.randint(4, 12)))
                     for _ in range(rng.randint(1, 30)))
    return (f"From: {sender}\nTo: {', '.join(rcpts)}\nSubject: {subject}\n"
            f"Message-ID: <{seed}.{seq}@client.example.org>\n\n{body}\n")


def _run_queue(host) -> None:
    """Let the queue manager work until nothing is due (host.run_queue when it exists)."""
    run = getattr(host, "run_queue", None)
    if run is not None:
        run()
    else:
        from .qmgr import QueueManager
        QueueManager(host).run()


def _advance(host, seconds: float) -> None:
    """Move the host's clock on, running the queue scans that fall due on the way."""
    if seconds <= 0:
        return
    step = getattr(host, "advance", None)
    if step is not None:
        step(seconds)
    else:
        host.clock.advance(seconds)


def _session(host, rng: random.Random, plan: Plan, seq: int, seed: int, mix) -> None:
    side = "outside" if rng.random() < OUTSIDE_SHARE else "lan"
    if side == "lan":
        client, sender = "127.0.0.1", f"{rng.choice(LOCAL_USERS)}@example.com"
    else:
        client, sender = rng.choice(OUTSIDE_CLIENTS), rng.choice(REMOTE_SENDERS)
    rcpts = _draw_recipients(rng, mix[side])
    s = host.session(client)
    s.send("EHLO " + ("pc.example.com" if side == "lan" else "mx." + sender.split("@")[1]))
    s.send(f"MAIL FROM:<{sender}>")
    accepted = [(k, a) for k, a in rcpts if s.send(f"RCPT TO:<{a}>").startswith("250")]
    plan.messages += 1
    for kind, _ in rcpts:
        plan.count(kind)
    plan.rejected += len(rcpts) - len(accepted)
    if accepted:
        s.send("DATA")
        s.message(_message(rng, sender, [a for _, a in rcpts], seq, seed))
        plan.received += 1
        _expect_delivery(plan, [k for k, _ in accepted])
    else:
        plan.rejected_only += 1
    s.send("QUIT")
    s.close()
    _run_queue(host)


def _expect_delivery(plan: Plan, kinds: list[str]) -> None:
    plan.delivered += kinds.count("deliver")
    bounced = kinds.count("alias") + kinds.count("quota")
    plan.bounced += bounced
    if bounced:                       # one DSN to the (local) sender, delivered locally
        plan.dsns += 1
        plan.delivered += 1
    if "remote" in kinds:
        plan.remote += 1
        plan.remote_recipients += kinds.count("remote")


def generate(host, n: int, *, seed: int = 0, span: float = 86400.0,
             profile=DIURNAL, mix: dict[str, dict[str, int]] = RECIPIENT_MIX) -> Plan:
    """Run ``n`` SMTP sessions against ``host`` over the next ``span`` seconds of its
    clock (a :class:`~mailsim.clock.SimClock`); returns the :class:`Plan` of counts.

    The host must have been set up with :func:`prepare_host` (or :func:`make_host`).
    ``mix`` weighs the recipient kinds for ``"lan"`` and ``"outside"`` clients
    (default :data:`RECIPIENT_MIX`); leave a kind out to never draw it.
    """
    rng = random.Random(seed)
    plan = Plan()
    first = len(host.log.lines)
    for seq, t in enumerate(arrival_times(rng, n, host.clock.now(), span, profile)):
        _advance(host, t - host.clock.now())
        _session(host, rng, plan, seq, seed, mix)
    plan.smtp_client = any("status=deferred" in ln for ln in host.log.lines[first:])
    if plan.smtp_client:
        plan.deferred, plan.deferrals = plan.remote, plan.remote_recipients
    return plan
