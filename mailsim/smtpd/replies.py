"""The fixed replies of Postfix 3.7's smtpd, in one place.

Texts are Postfix's own, byte for byte (see tests/golden). Replies that
depend on the session (restriction rejects, "queued as") are built in
:mod:`mailsim.smtpd.check` and :mod:`mailsim.smtpd.session`.
"""
from __future__ import annotations

from ..reply import Reply

OK = Reply(250, "2.0.0", "Ok")
MAIL_OK = Reply(250, "2.1.0", "Ok")
RCPT_OK = Reply(250, "2.1.5", "Ok")
DATA_GO = Reply(354, None, "End data with <CR><LF>.<CR><LF>")
BYE = Reply(221, "2.0.0", "Bye")
BREAK_RULES = Reply(221, "2.7.0", "Error: I can break rules, too. Goodbye.")
UNKNOWN = Reply(500, "5.5.2", "Error: command not recognized")
BAD_SYNTAX = Reply(500, "5.5.2", "Error: bad syntax")
BAD_UTF8 = Reply(500, "5.5.2", "Error: bad UTF-8 syntax")
HELO_SYNTAX = Reply(501, None, "Syntax: HELO hostname")
EHLO_SYNTAX = Reply(501, None, "Syntax: EHLO hostname")
SEND_HELO = Reply(503, "5.5.1", "Error: send HELO/EHLO first")
NESTED_MAIL = Reply(503, "5.5.1", "Error: nested MAIL command")
NEED_MAIL = Reply(503, "5.5.1", "Error: need MAIL command")
NEED_RCPT = Reply(503, "5.5.1", "Error: need RCPT command")
NO_VALID_RCPT = Reply(554, "5.5.1", "Error: no valid recipients")
MAIL_SYNTAX = Reply(501, "5.5.4", "Syntax: MAIL FROM:<address>")
RCPT_SYNTAX = Reply(501, "5.5.4", "Syntax: RCPT TO:<address>")
BAD_SENDER = Reply(501, "5.1.7", "Bad sender address syntax")
BAD_RCPT = Reply(501, "5.1.3", "Bad recipient address syntax")
BAD_SIZE = Reply(501, "5.5.4", "Bad message size syntax")
SIZE_EXCEEDS = Reply(552, "5.3.4", "Message size exceeds fixed limit")
FILE_TOO_BIG = Reply(552, "5.3.4", "Error: message file too big")
BAD_NOTIFY = Reply(501, "5.5.4", "Error: Bad NOTIFY parameter syntax")
BAD_ORCPT = Reply(501, "5.5.4", "Error: Bad ORCPT parameter syntax")
BAD_RET = Reply(501, "5.5.4", "Bad RET parameter syntax")
BAD_ENVID = Reply(501, "5.5.4", "Bad ENVID parameter syntax")
TOO_MANY_RCPT = Reply(452, "4.5.3", "Error: too many recipients")
RSET_SYNTAX = Reply(501, "5.5.4", "Syntax: RSET")
DATA_SYNTAX = Reply(501, "5.5.4", "Syntax: DATA")
VRFY_DISABLED = Reply(502, "5.5.1", "VRFY command is disabled")
VRFY_SYNTAX = Reply(501, "5.5.4", "Syntax: VRFY address [SMTPUTF8]")
NOT_IMPLEMENTED = Reply(502, "5.5.1", "Error: command not implemented")
AUTH_NOT_ENABLED = Reply(503, "5.5.1", "Error: authentication not enabled")
NO_AUTHORIZATION = Reply(550, "5.7.0", "Error: insufficient authorization")
BDAT_SYNTAX = Reply(501, "5.5.4", "Syntax: BDAT count [LAST]")
ETRN_SYNTAX = Reply(500, None, "Syntax: ETRN domain")
CONFIG_ERROR = Reply(451, "4.3.5", "Server configuration error")
DSN_DISABLED = Reply(501, "5.7.1", "DSN support is disabled")
TLS_GO = Reply(220, "2.0.0", "Ready to start TLS")
STARTTLS_SYNTAX = Reply(501, "5.5.4", "Syntax: STARTTLS")
TLS_ACTIVE = Reply(554, "5.5.1", "Error: TLS already active")
TLS_UNAVAILABLE = Reply(454, "4.7.0", "TLS not available due to local problem")
STARTTLS_FIRST = Reply(530, "5.7.0", "Must issue a STARTTLS command first")
AUTH_OK = Reply(235, "2.7.0", "Authentication successful")
AUTH_SYNTAX = Reply(501, "5.5.4", "Syntax: AUTH mechanism")
AUTH_ALREADY = Reply(503, "5.5.1", "Error: already authenticated")
AUTH_IN_TRANSACTION = Reply(503, "5.5.1", "Error: MAIL transaction in progress")
AUTH_NEED_TLS = Reply(504, "5.5.4", "Encryption required for requested authentication mechanism")
AUTH_ABORTED = Reply(501, "5.7.0", "Authentication aborted")
AUTH_TOO_LONG = Reply(500, "5.5.6", "SASL response limit exceeded")
AUTH_MULTIPLE = Reply(503, "5.5.4", "Error: multiple AUTH= options")


def unsupported_option(opt: str) -> Reply:
    return Reply(555, "5.5.4", f"Unsupported option: {opt}")


def queued(queue_id: str) -> Reply:
    return Reply(250, "2.0.0", f"Ok: queued as {queue_id}")


def too_many_errors(myhostname: str) -> Reply:
    return Reply(421, "4.7.0", f"{myhostname} Error: too many errors")
