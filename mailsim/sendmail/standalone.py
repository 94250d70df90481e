"""``sendmail -bs``: smtpd in stand-alone mode on stdin/stdout, writing through postdrop.

Part of :mod:`mailsim.sendmail` (Postfix's ``src/smtpd/smtpd.c`` with ``-S``).
"""
from __future__ import annotations

from ..cleanup import received_header
from ..postdrop import PostdropError, new_maildrop_id, postdrop
from ..smtpd.check import Checker, Decision
from ..smtpd.session import SMTPDSession
from .context import _Run

# -- sendmail -bs: smtpd in stand-alone mode --------------------------------------------------------
class _NoLog:
    """Where a non-root user's smtpd log lines go when only postlogd could take them."""
    lines: list[str] = []

    def write(self, daemon: str, pid: int, text: str) -> str:
        return ""


class _MaildropFile:
    """What stand-alone smtpd holds instead of an incoming queue file: postdrop's queue id."""

    def __init__(self, queue_id: str) -> None:
        self.queue_id = queue_id

    def abort(self) -> None:
        """Nothing was written yet (postdrop writes the whole file at the end of DATA)."""


class _StandAloneHost:
    """The host as smtpd -S sees it: the peer is "localhost", queue files come from postdrop."""

    def __init__(self, host, log) -> None:
        self._host = host
        self.log = log

    def __getattr__(self, name: str):
        return getattr(self._host, name)

    def reverse_lookup(self, addr: str) -> str:
        return "localhost"            # smtpd_peer_not_inet(): stdin is not a socket

    def new_queue_file(self) -> _MaildropFile:
        return _MaildropFile(new_maildrop_id(self._host))


class _NoChecks(Checker):
    """Stand-alone mode: "mail relaying and other access controls are disabled"."""

    def evaluate(self, stage, subject, lists, rcpt=False) -> Decision:
        return Decision(stage, subject)

    def check_rcpt(self, stage, recipient) -> Decision:
        return Decision(stage, recipient)


class StandAloneSession(SMTPDSession):
    """``sendmail -bs``: Postfix runs ``smtpd -S`` on the user's stdin and stdout.

    The differences from a network session: the client is
    ``localhost[127.0.0.1]``; no smtpd_*_restrictions, no pipelining or
    bare-LF checks; each message goes through postdrop (the "queued as" id
    is the maildrop file's) and pickup, whose Received: header comes first.
    """

    stand_alone = True            # ETRN: "458 Unable to queue messages"

    def __init__(self, host, user: str, log) -> None:
        self.real_host, self.user = host, user
        super().__init__(_StandAloneHost(host, log), "127.0.0.1", 0)
        self.checker = _NoChecks(self)

    def _bare_lf_mask(self) -> int:
        return 0

    def _flag_pipelining(self) -> None:
        return None

    def _finish_message(self, bdat: bool):
        from ..smtpd import replies as R
        from ..reply import Reply
        tx = self.tx
        ok = False
        if self._too_big:
            reply = R.FILE_TOO_BIG
        else:
            try:
                self._drop(tx)
                reply = (Reply(250, "2.0.0", f"Ok: {self._act_size} bytes queued as {tx.queue_id}")
                         if bdat else R.queued(tx.queue_id))
                ok = True
            except PostdropError:
                reply = Reply(451, "4.3.0", "Error: queue file write error")
        self._data = []
        self._reset_tx()
        if ok:
            self.error_count = self.junk_cmds = 0
        return reply, ok

    def _drop(self, tx) -> None:
        host = self.real_host
        proto = ("UTF8" if tx.params.get("SMTPUTF8") else "") + self.protocol
        rcpt = tx.recipients[0].orig if len(tx.recipients) == 1 else None
        rec = received_header(helo=self.helo_name, name=self.client_name, addr=self.client_addr,
                              myhostname=host.conf["myhostname"], proto=proto,
                              queue_id=tx.queue_id, rcpt=rcpt, when=host.clock.now(),
                              mail_name=host.conf.get("mail_name") or "Postfix")
        attrs = {}
        body = tx.params.get("BODY")
        if body:
            attrs["encoding"] = "8bit" if body.upper() == "8BITMIME" else "7bit"
        postdrop(host, sender=tx.sender, recipients=tx.recipients, user=self.user, attrs=attrs,
                 content=rec.encode("utf-8", "surrogateescape") + b"\n" + b"".join(self._data),
                 queue_id=tx.queue_id)
        from ..pickup import run as pickup_run
        pickup_run(host)


def _stand_alone(run: _Run) -> int:
    log = run.host.log if run.can_log else _NoLog()
    s = StandAloneSession(run.host, run.user, log)
    out = s.greeting()
    if not s.closed:
        out += s.receive(run.stdin())
    if not s.closed:
        s.lost()
    run.out.write(out.decode("utf-8", "surrogateescape"))
    host = run.host
    if getattr(host, "auto_deliver", True) and host.clock.simulated and getattr(host, "qmgr_wanted", False):
        host.run_queue()
    return 0


# -- entry points ------------------------------------------------------------------------------------
