"""bounce(8)'s services: who gets which notification, posted through cleanup(8).

Models the deciding part of Postfix's ``src/bounce`` (bounce_notify_service.c,
bounce_warn_service.c, bounce_trace_service.c); the text of each notification
comes from :func:`mailsim.bounce.build_dsn`.

* **failure** (recipients bounced, or expired in the queue): a non-delivery
  notification from ``<>`` to the sender, for the recipients whose DSN
  ``NOTIFY`` asks for failures (the default) -- logged ``QID: sender
  non-delivery notification: NEWID``. With ``bounce`` in ``notify_classes``
  postmaster (``bounce_notice_recipient``) gets a copy with the headers only,
  from ``double_bounce_sender``: ``postmaster non-delivery notification``.
  When the bouncing message had the null sender (a bounce that bounced), the
  "double bounce" goes to ``2bounce_notice_recipient`` with the whole message
  if ``notify_classes`` has ``bounce`` or ``2bounce``; otherwise it is
  dropped. A double bounce that bounces is discarded with the warning
  ``undeliverable postmaster notification discarded`` -- never a triple bounce.
* **delay** (``delay_warning_time``): ``sender delay notification``, once per
  message, for recipients whose ``NOTIFY`` asks for delays (the default);
  a copy to ``delay_notice_recipient`` with ``delay`` in ``notify_classes``.
* **success** (``NOTIFY=SUCCESS``): ``sender delivery status notification``.
  When smtp(8) hands the message to a next hop that does not announce DSN,
  the recipient's action is ``relayed`` (the next hop will not report
  success), as in the recording ``tests/golden/remote-bounce/relayed-success.json``.
* **trace** (``sendmail -bv``, ``sendmail -v``): the "Mail Delivery Status
  Report" listing every recipient as deliverable/undeliverable (a probe, which
  delivers nothing) or delivered; none for a message from the null sender.

Parameters read (Postfix 3.7 defaults): notify_classes (resource, software),
bounce_notice_recipient (postmaster), 2bounce_notice_recipient (postmaster),
delay_notice_recipient (postmaster), double_bounce_sender (double-bounce, at
$myhostname),
delay_warning_time, maximal_queue_lifetime (in the delay template),
myorigin, myhostname.

Not simulated: VERP, the bounce_template_file.
"""
from __future__ import annotations

from .bounce import RecipientStatus, build_dsn
from .postqueue import queued_size
from .queue import QueueFile, Recipient

__all__ = ["notify_failure", "notify_delay", "notify_success", "notify_trace", "post_mail", "wants"]


def wants(notify: str, what: str) -> bool:
    """Does a recipient's DSN ``NOTIFY`` ask for ``what`` (FAILURE, DELAY, SUCCESS)?

    >>> wants("", "FAILURE"), wants("", "SUCCESS"), wants("NEVER", "FAILURE")
    (True, False, False)
    >>> wants("SUCCESS,DELAY", "DELAY")
    True
    """
    if not notify:
        return what in ("FAILURE", "DELAY")
    return what in {n.strip().upper() for n in notify.split(",")}


def _classes(host) -> set[str]:
    return {c.lower() for c in host.conf.list("notify_classes")}


def _qualify(host, addr: str) -> str:
    return addr if "@" in addr or not addr else f"{addr}@{host.conf['myorigin']}"


def _double_bounce(host) -> str:
    """mail_addr_double_bounce(): double_bounce_sender@$myhostname."""
    return f"{host.conf['double_bounce_sender']}@{host.conf['myhostname']}"


def post_mail(host, sender: str, recipient: str, build) -> str:
    """Create a queue file, let ``build(new_queue_id)`` write the message, submit it
    through cleanup (which logs ``message-id=`` and wakes qmgr); returns the new id.

    A bare ``recipient`` (``postmaster``) is qualified with ``$myorigin`` as
    cleanup does, and stays the original recipient (local logs ``orig_to=<postmaster>``).
    """
    f = host.new_queue_file()
    content = build(f.queue_id)
    address = _qualify(host, recipient)
    rcpt = Recipient(address, recipient, "", f"rfc822;{address}")
    from .cleanup import submit
    submit(host, sender=sender, recipients=[rcpt], content=content, origin="bounce",
           file=f, attrs={"rewrite_context": "local"})
    return f.queue_id


def _dsn(host, qf: QueueFile, recipients: list[RecipientStatus], kind: str, *,
         postmaster_copy: bool = False, to: str | None = None, ret: str | None = None):
    now = host.clock.now()
    if ret is None:
        r = (qf.attrs.get("ret") or "").upper()
        ret = r if r in ("FULL", "HDRS") else None

    def build(new_id: str) -> bytes:
        return build_dsn(host, queue_id=qf.queue_id, dsn_queue_id=new_id, sender=qf.sender,
                         arrival=qf.arrival, now=now, recipients=recipients,
                         original=qf.content, kind=kind, ret=ret,
                         envid=qf.attrs.get("envid") or None, postmaster_copy=postmaster_copy,
                         to=to, message_size=queued_size(qf))
    return build


def notify_failure(host, qf: QueueFile, failed: list[tuple[RecipientStatus, str]],
                   pid: int) -> list[str]:
    """Non-delivery notifications for ``failed`` ((status, NOTIFY) pairs); returns new ids."""
    log = lambda text: host.log.write("bounce", pid, text)  # noqa: E731
    classes = _classes(host)
    double = _double_bounce(host)
    out: list[str] = []
    if qf.sender.lower() == double.lower():
        host.log.write("bounce", pid, f"warning: {qf.queue_id}: undeliverable postmaster "
                                      "notification discarded")
        return out
    if not qf.sender:
        if classes & {"bounce", "2bounce"}:
            pm = host.conf["2bounce_notice_recipient"]
            rs = [s for s, _ in failed]
            nid = post_mail(host, double, pm,
                            _dsn(host, qf, rs, "failure", postmaster_copy=True,
                                 to=pm, ret="FULL"))
            log(f"{qf.queue_id}: postmaster non-delivery notification: {nid}")
            out.append(nid)
        return out
    rs = [s for s, notify in failed if wants(notify, "FAILURE")]
    if rs:
        nid = post_mail(host, "", qf.sender, _dsn(host, qf, rs, "failure"))
        log(f"{qf.queue_id}: sender non-delivery notification: {nid}")
        out.append(nid)
    if "bounce" in classes:
        pm = host.conf["bounce_notice_recipient"]
        nid = post_mail(host, double, pm,
                        _dsn(host, qf, [s for s, _ in failed], "failure",
                             postmaster_copy=True, to=pm, ret="HDRS"))
        log(f"{qf.queue_id}: postmaster non-delivery notification: {nid}")
        out.append(nid)
    return out


def _template_warnings(host, pid: int) -> None:
    """bounce(8)'s warnings when a delay template's time value rounds to zero."""
    for param, unit, seconds in (("delay_warning_time", "hours", 3600),
                                 ("maximal_queue_lifetime", "days", 86400)):
        if host.conf.time(param) // seconds == 0:
            for text in (f'[built-in]: zero result in delay template conversion of parameter '
                         f'"{param}_{unit}"',
                         f'please reduce time unit "{unit}" of "{param}_{unit}" in delay template',
                         "for instructions see the bounce(5) manual"):
                host.log.write("bounce", pid, f"warning: {text}")


def notify_delay(host, qf: QueueFile, delayed: list[tuple[RecipientStatus, str]],
                 pid: int) -> list[str]:
    """The delay warning ("Delayed Mail (still being retried)"); returns new ids."""
    out: list[str] = []
    rs = [s for s, notify in delayed if wants(notify, "DELAY")]
    if not qf.sender or not (rs or "delay" in _classes(host)):
        return out
    _template_warnings(host, pid)
    if rs:
        nid = post_mail(host, "", qf.sender, _dsn(host, qf, rs, "delay"))
        host.log.write("bounce", pid, f"{qf.queue_id}: sender delay notification: {nid}")
        out.append(nid)
    if "delay" in _classes(host):
        pm = host.conf["delay_notice_recipient"]
        nid = post_mail(host, _double_bounce(host), pm,
                        _dsn(host, qf, [s for s, _ in delayed], "delay",
                             postmaster_copy=True, to=pm, ret="HDRS"))
        host.log.write("bounce", pid, f"{qf.queue_id}: postmaster delay notification: {nid}")
        out.append(nid)
    return out


def notify_success(host, qf: QueueFile, delivered: list[RecipientStatus], pid: int) -> list[str]:
    """``NOTIFY=SUCCESS``: "Successful Mail Delivery Report" to the sender."""
    if not qf.sender or not delivered:
        return []
    nid = post_mail(host, "", qf.sender, _dsn(host, qf, delivered, "success"))
    host.log.write("bounce", pid, f"{qf.queue_id}: sender delivery status notification: {nid}")
    return [nid]


def notify_trace(host, qf: QueueFile, rows: list[RecipientStatus], pid: int) -> list[str]:
    """``sendmail -bv`` / ``-v``: the "Mail Delivery Status Report" to the sender."""
    if not rows:
        return []
    nid = post_mail(host, "", qf.sender, _dsn(host, qf, rows, "verify"))
    host.log.write("bounce", pid, f"{qf.queue_id}: sender delivery status notification: {nid}")
    return [nid]
