"""smtpd(8): Postfix's SMTP server, as a protocol engine (no I/O) and its access checks.

* :mod:`mailsim.smtpd.session` -- one server session: bytes in, bytes out
* :mod:`mailsim.smtpd.check` -- the restriction lists, with explained decisions
* :mod:`mailsim.smtpd.address` -- MAIL FROM / RCPT TO address extraction
* :mod:`mailsim.smtpd.replies` -- the fixed replies, as values
* :mod:`mailsim.smtpd.client` -- an in-process client session for notebooks
"""
from .check import Decision, Step
from .client import Session
from .session import SMTPDSession

__all__ = ["SMTPDSession", "Session", "Decision", "Step"]
