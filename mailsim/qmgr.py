"""qmgr(8), first form: from the incoming queue to local delivery and bounces.

What Postfix's queue manager does
---------------------------------
qmgr scans the ``incoming`` queue, moves each queue file into ``active``
(logging ``QID: from=<sender>, size=N, nrcpt=N (queue active)``), resolves
every recipient with trivial-rewrite(8) and hands it to the delivery agent of
its transport (local, virtual, smtp, ...). Delivery agents log one
``to=<...>, ..., status=...`` line per recipient. When every recipient of a
message is done, qmgr asks bounce(8) to send a non-delivery notification for
the recipients that bounced (bounce posts it through cleanup(8) as a new
message from ``<>``), then removes the queue file (``QID: removed``); a
message with recipients left to retry goes to the ``deferred`` queue.

What this module simulates
--------------------------
* the incoming -> active move (atomic ``os.replace``), the qmgr line with
  Postfix's message size (:func:`mailsim.postqueue.message_size`);
* recipients of address class ``local`` (``mydestination``): local(8) alias
  expansion and mbox delivery (:mod:`mailsim.local`), with its log lines;
* bounced recipients: one failure DSN (:func:`mailsim.bounce.build_dsn`) to
  the sender -- never for the null sender -- written into ``incoming`` with
  sender ``<>``; logs cleanup's ``message-id=`` line and bounce's
  ``sender non-delivery notification: DSNQID``; the next round delivers it;
* ``removed`` or a rewrite into ``deferred`` (with ``attrs["reason"]``, as
  ``postqueue -p`` shows it).

Placeholders (until smtp(8)/virtual(8) and the retry logic exist)
-----------------------------------------------------------------
* recipients of every other class (``virtual``, ``relay``, ``default``,
  ``alias``) are not delivered and nothing is logged for them: they stay in
  the queue file, which goes to ``deferred`` with the reason
  ``mail transport unavailable``;
* alias expansions to files, commands or remote addresses are not executed:
  the original recipient is kept (deferred) with a reason naming that;
* a local(8) temporary failure (4.x.x) logs ``status=deferred`` and keeps
  the recipient; the deferred queue is never retried here, delay warnings,
  postmaster copies, double bounces and ``NOTIFY=`` handling are not done.

Example
-------
>>> import tempfile, pathlib
>>> from mailsim.host import init_host
>>> from mailsim.queue import QueueFile, Recipient, write_queue_file
>>> h = init_host(pathlib.Path(tempfile.mkdtemp()) / "mx", users=["marc"])
>>> _ = write_queue_file(h.spool, "incoming", QueueFile("4B2A1160001", "alice@example.org",
...     [Recipient("marc@example.com")], h.clock.now(), b"Subject: hi\\n\\nhello\\n"))
>>> QueueManager(h).run()
1
>>> [ln.split(": ", 1)[1] for ln in h.log.lines if "qmgr" in ln]
['4B2A1160001: from=<alice@example.org>, size=22, nrcpt=1 (queue active)', '4B2A1160001: removed']
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .bounce import RecipientStatus, build_dsn, message_id
from .local import DeliveryError, deliver_mbox, expand_aliases, log_delivery, recipient_address
from .postqueue import message_size
from .queue import QueueFile, Recipient, read_queue_file, write_queue_file

__all__ = ["QueueManager", "MessageResult", "TRANSPORT_UNAVAILABLE"]

#: placeholder reason for recipients whose delivery agent is not simulated yet
TRANSPORT_UNAVAILABLE = "mail transport unavailable"


@dataclass
class MessageResult:
    """What happened to one message in :meth:`QueueManager.run_once`."""
    queue_id: str
    delivered: list[str] = field(default_factory=list)      # addresses, status=sent
    bounced: list[RecipientStatus] = field(default_factory=list)
    deferred: list[Recipient] = field(default_factory=list)
    dsn_queue_id: str | None = None
    removed: bool = False


class QueueManager:
    """The queue manager of one host (see the module docstring)."""

    def __init__(self, host) -> None:
        self.host = host
        self.pid = host.next_pid()
        self._local_pid: int | None = None
        self.results: list[MessageResult] = []

    # -- helpers ---------------------------------------------------------------------------
    @property
    def local_pid(self) -> int:
        """One local(8) process serves every delivery of this queue manager (as recorded)."""
        if self._local_pid is None:
            self._local_pid = self.host.next_pid()
        return self._local_pid

    def _log(self, text: str) -> None:
        self.host.log.write("qmgr", self.pid, text)

    def _incoming(self) -> list[Path]:
        d = self.host.spool / "incoming"
        if not d.is_dir():
            return []
        return sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))

    # -- the work --------------------------------------------------------------------------
    def run_once(self) -> int:
        """Handle every message now in ``incoming``; returns how many were handled."""
        n = 0
        for path in self._incoming():
            active = self.host.spool / "active" / path.name
            active.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(path, active)        # one step: never in both queues
            except FileNotFoundError:           # another queue manager took it
                continue
            self.results.append(self._handle(active))
            n += 1
        return n

    def run(self, max_rounds: int = 10) -> int:
        """Repeat :meth:`run_once` until ``incoming`` is empty (so DSNs get delivered too)."""
        total = 0
        for _ in range(max_rounds):
            n = self.run_once()
            total += n
            if not n or not self._incoming():
                break
        return total

    def _handle(self, active: Path) -> MessageResult:
        host = self.host
        qf = read_queue_file(active)
        res = MessageResult(qf.queue_id)
        t_active = host.clock.now()
        self._log(f"{qf.queue_id}: from=<{qf.sender}>, size={message_size(qf.content)}, "
                  f"nrcpt={len(qf.recipients)} (queue active)")
        tr = host.trivial_rewrite()
        for rcpt in qf.recipients:
            klass = tr.resolve(rcpt.address).klass
            if klass != "local":
                res.deferred.append(rcpt)       # placeholder until smtp(8)/virtual(8)
                continue
            self._deliver_local(qf, rcpt, res, t_active)
        if res.bounced and qf.sender:
            res.dsn_queue_id = self._send_dsn(qf, res.bounced)
        if not res.deferred:
            active.unlink()
            self._log(f"{qf.queue_id}: removed")
            res.removed = True
        else:
            qf.recipients = res.deferred
            qf.attrs = dict(qf.attrs, reason=qf.attrs.get("reason") or TRANSPORT_UNAVAILABLE)
            write_queue_file(host.spool, "deferred", qf)
            active.unlink()
        return res

    def _deliver_local(self, qf: QueueFile, rcpt: Recipient, res: MessageResult,
                       t_active: float) -> None:
        host = self.host
        orig = rcpt.orig or rcpt.address
        keep = False
        for e in expand_aliases(host, rcpt.address):
            to = recipient_address(host, e.dest)
            if e.kind != "mailbox":
                keep = True                      # file/command/forward: not simulated yet
                continue
            try:
                text = deliver_mbox(host, qf, rcpt, e.dest, orig)
            except DeliveryError as err:
                log_delivery(host, qf, to, orig, err.text, err.dsn, err.status,
                             active=t_active, pid=self.local_pid)
                if err.status == "bounced":
                    res.bounced.append(RecipientStatus(
                        to, orig_address=orig, status=err.dsn, action="failed",
                        reason=err.text, orcpt=rcpt.orcpt or f"rfc822;{orig}"))
                else:
                    keep = True
                continue
            log_delivery(host, qf, to, orig, text, active=t_active, pid=self.local_pid)
            res.delivered.append(to)
        if keep:
            res.deferred.append(rcpt)

    def _send_dsn(self, qf: QueueFile, bounced: list[RecipientStatus]) -> str:
        """bounce(8) + cleanup(8): queue a failure notification to the sender."""
        host = self.host
        f = host.new_queue_file()
        now = host.clock.now()
        myhostname = host.conf["myhostname"]
        ret = (qf.attrs.get("ret") or "").upper() or None
        content = build_dsn(host, queue_id=qf.queue_id, dsn_queue_id=f.queue_id,
                            sender=qf.sender, arrival=qf.arrival, now=now,
                            recipients=bounced, original=qf.content, kind="failure",
                            ret=ret if ret in ("FULL", "HDRS") else None,
                            envid=qf.attrs.get("envid") or None,
                            message_size=message_size(qf.content))
        dsn = QueueFile(f.queue_id, "", [Recipient(qf.sender, qf.sender, "",
                                                   f"rfc822;{qf.sender}")],
                        now, content, {"rewrite_context": "local"})
        f.commit(dsn)
        host.log.write("cleanup", host.cleanup_pid(),
                       f"{f.queue_id}: message-id={message_id(now, f.queue_id, myhostname)}")
        host.log.write("bounce", host.next_pid(),
                       f"{qf.queue_id}: sender non-delivery notification: {f.queue_id}")
        return f.queue_id
