"""sendmail(1): Postfix's Sendmail-compatible command, with mailq and newaliases.

Programs have called ``/usr/sbin/sendmail`` to send mail since the 1980s
(cron, PHP's mail(), mutt, scripts), so every MTA ships a command by that
name. Postfix's reads the message from standard input and hands it to
postdrop(1) (:mod:`mailsim.postdrop`), which puts it into the ``maildrop``
queue, where pickup(8) (:mod:`mailsim.pickup`) finds it and gives it to
cleanup(8). The same program also stands in for Sendmail's other modes by
running the Postfix command that does the job:

=====================  ==================================================
``sendmail [-t] ...``  deliver a message (the default mode, ``-bm``)
``-bp`` / ``mailq``    list the queue (``postqueue -p``)
``-bi``, ``-I`` /      rebuild the alias database (``postalias`` on
``newaliases``         ``$alias_database``, or ``-oA`` *table*)
``-q``                 flush the queue (``postqueue -f``); ``-qR``\\ *site*,
                       ``-qI``\\ *queue_id* (``postqueue -s`` / ``-i``);
                       ``-q``\\ *interval* does nothing
``-bv``                do not deliver: verify the recipients and mail a
                       "Mail Delivery Status Report" to the sender
``-bs``                an SMTP session on stdin/stdout (smtpd in
                       stand-alone mode: no access restrictions; mail goes
                       through postdrop and pickup)
``-bd``, ``-bl``       ``postfix start``; ``-bh``, ``-bH`` do nothing
=====================  ==================================================

Message options: ``-t`` adds the recipients of the To:, Cc: and Bcc:
headers (only the Resent- ones if there are any; cleanup(8) later removes
Bcc: -- ``message_drop_headers``); ``-f`` *sender* (``-r``) sets the
envelope sender (``-f '<>'``: the null sender), by default the user's login
name, which cleanup makes ``user@$myorigin``; ``-F`` *name* the full name
cleanup puts into a From: header it adds (else ``$NAME``, else the passwd
GECOS field); ``-i``/``-oi``: a line with a single ``.`` does not end the
message; ``-N`` *success,delay,failure,never*, ``-R`` *full|hdrs*, ``-V``
*envid*: DSN requests; ``-B`` *7BIT|8BITMIME*; ``-XV``: VERP; ``-v``: mail
a delivery report too; ``-G``: rewrite headers in the remote context.
Leading ``From`` lines of the input are dropped, CRs before LF removed
(``sendmail_fix_line_endings``). Sendmail's other options are accepted and
ignored, as Postfix does.

Errors are Postfix's own words, on stderr and in the log (``sendmail: fatal:
-t can be used only in delivery mode``); every fatal error exits with 75
(EX_TEMPFAIL -- Postfix's sendmail turns all its fatal exits into that),
postqueue's refusals with 69. A user other than root has no access to
Postfix's log socket, so with ``maillog_file`` set (postlogd) the log lines
of *their* sendmail and ``sendmail -bs`` are lost -- exactly as recorded.

In-process, :func:`sendmail` also runs pickup and (on a simulated clock, if
``host.auto_deliver``) the queue manager before it returns, so the mail is
delivered when the call is over -- on a real server that happens a moment
later, by itself.

Parameters read (Postfix 3.7 defaults): authorized_submit_users,
authorized_mailq_users, authorized_flush_users (static:anyone),
sendmail_fix_line_endings (always), line_length_limit (2048),
default_verp_delimiters (+=), verp_delimiter_filter (-=+), alias_database
(Debian: hash:/etc/aliases), maillog_file (empty), myhostname, mail_name.

A message larger than ``message_size_limit`` is refused as Postfix's sendmail
refuses it (its file size limit makes the queue file write fail): "error
writing queue file: File too large", exit 75.

Not simulated: ``-C`` (another configuration directory), verbose logging
(``-v -v``), ``local_login_sender_maps``, header_size_limit for ``-t``, the
``MAIL_CONFIG``/``MAIL_VERBOSE`` environment.

The code is split by job: ``context`` (one invocation: user, output, exit
statuses), ``options`` (the command line), ``message`` (reading the message,
``-t``), ``standalone`` (``-bs``); this module runs the modes.

Examples
--------
>>> import tempfile
>>> from mailsim.host import init_host
>>> h = init_host(tempfile.mkdtemp() + "/mx", users=["peter"])
>>> sendmail(h, ["peter"], b"Subject: hi\\n\\nhello\\n")
(0, '', '')
>>> print(h.path("/var/mail/peter").read_text().split("\\n\\n")[0])   # doctest: +ELLIPSIS +NORMALIZE_WHITESPACE
From root@example.com  ...
Return-Path: <root@example.com>
X-Original-To: peter
Delivered-To: peter@example.com
Received: by mail.example.com (Postfix, from userid 0)
	id ...; Wed, 25 Nov 2026 09:00:00 +0000 (UTC)
Subject: hi
Message-Id: <2026112509000...@mail.example.com>
Date: Wed, 25 Nov 2026 09:00:00 +0000 (UTC)
From: root <root@example.com>
>>> sendmail(h, ["-t"], b"Subject: nobody\\n\\nhello\\n")
(75, '', 'sendmail: fatal: root(0): No recipient addresses found in message header\\n')
>>> sendmail(h, ["-bv", "peter"])[1]
'Mail Delivery Status Report will be mailed to <root>.\\n'
"""
from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import BinaryIO, Callable, Mapping, TextIO

from ..canonical import parse, str_addresses
from ..postdrop import PostdropError, postdrop, user_allowed
from ..queue import Recipient
from .context import (DAEMON, ENQUEUE, EX_TEMPFAIL, EX_UNAVAILABLE, FLAG_AEOF, FLAG_XRCPT, FLUSHQ,
                      MAILQ, NEWALIAS, TRACE_FLAGS, USER, USR_VRFY, Fatal, _Run)
from .message import _content, _probe, extract_recipients, read_message
from .options import Options, parse_options
from .standalone import StandAloneSession, _stand_alone

__all__ = ["sendmail", "main", "parse_options", "Options", "read_message", "extract_recipients",
           "StandAloneSession", "Fatal", "EX_TEMPFAIL", "EX_UNAVAILABLE"]


def _full_name(run: _Run, o: Options) -> str | None:
    """-F, else $NAME, else the GECOS field up to , ; or % with & as the login name."""
    if o.full_name is not None:
        return o.full_name
    if "NAME" in run.env:
        return run.env["NAME"]
    entry = run.host.users().get(run.user)
    if entry is None:
        return None
    gecos = entry.gecos
    for stop in ",;%":
        gecos = gecos.split(stop, 1)[0]
    return gecos.replace("&", run.user[:1].upper() + run.user[1:])


def _sender(run: _Run, o: Options) -> str:
    if o.sender is None:
        return run.user
    found = str_addresses(parse(o.sender))
    if len(found) > 1:
        run.warn(f"-f option specified malformed sender: {o.sender}")
    return found[0] if found else ""


def _recipients(args: list[str], notify: str) -> list[Recipient]:
    """Each argument is parsed like a header: ``"a, Name <b>"`` gives two recipients."""
    out = []
    for arg in args:
        found = str_addresses(parse(arg)) or [""]
        out += [Recipient(a, a, notify) for a in found]
    return out


def _attrs(run: _Run, o: Options) -> dict[str, str]:
    attrs = {"rewrite_context": o.rewrite_context}
    full = _full_name(run, o)
    if full is not None:
        attrs["full_name"] = full
    for name, value in (("envid", o.envid), ("ret", o.ret), ("encoding", o.encoding),
                        ("verp_delimiters", o.verp)):
        if value is not None:
            attrs[name] = value
    if o.flags & TRACE_FLAGS:
        attrs["trace_flags"] = str(o.flags & TRACE_FLAGS)
    return attrs


def _message(run: _Run, o: Options, sender: str) -> tuple[bytes, list[str]]:
    """The content, and the recipients -t found in it."""
    if o.flags & USR_VRFY:
        return _probe(sender, o.recipients), []
    c = run.host.conf
    fix = c.get("sendmail_fix_line_endings") or "always"
    if fix not in ("always", "strict", "never"):
        raise Fatal(f"invalid sendmail_fix_line_endings value: {fix}")
    records = read_message(run.stdin(), dot_ends=bool(o.flags & FLAG_AEOF), fix_eol=fix,
                           limit=c.int("line_length_limit") or 2048)
    extracted = extract_recipients(records) if o.flags & FLAG_XRCPT else []
    return _content(records), extracted


def enqueue(run: _Run, o: Options) -> int:
    """Post one message: postdrop, then pickup (and, in-process, the queue manager)."""
    if not user_allowed(run.host, "authorized_submit_users", run.user):
        raise Fatal(f"User {_acl_name(run)}({run.uid}) is not allowed to submit mail")
    sender = _sender(run, o)
    if o.verp and not sender:
        raise Fatal(f"{run.who(sender)}: -V option requires non-null sender address")
    rcpts = _recipients(o.recipients, o.notify)
    content, extracted = _message(run, o, sender)
    rcpts += [Recipient(a, a, o.notify) for a in extracted]
    if not rcpts:
        raise Fatal(f"{run.who(sender)}: " + (
            "No recipient addresses found in message header" if o.flags & FLAG_XRCPT else
            "Recipient addresses must be specified on the command line or via the -t option"))
    limit = run.host.conf.int("message_size_limit")
    if limit and len(content) > limit:
        # sendmail sets its file size limit to message_size_limit: the queue file write fails
        raise Fatal(f"{run.who(sender)}: error writing queue file: File too large")
    try:
        postdrop(run.host, sender=sender, recipients=rcpts, content=content, user=run.user,
                 attrs=_attrs(run, o))
    except PostdropError as e:
        raise Fatal(f"{run.who(sender)}: {e}")
    if o.flags & TRACE_FLAGS:
        run.out.write(f"Mail Delivery Status Report will be mailed to <{sender}>.\n")
    _deliver(run.host)
    return 0


def _deliver(host) -> None:
    """What happens next on a running server: pickup, then (in-process) qmgr."""
    from ..pickup import run as pickup_run
    pickup_run(host)
    if getattr(host, "auto_deliver", True) and host.clock.simulated and getattr(host, "qmgr_wanted", True):
        host.run_queue()


def _acl_name(run: _Run) -> str:
    return run.user if run.user in run.host.users() else "unknown"


# -- the other modes: what sendmail runs in its place -------------------------------------------
def _postqueue(run: _Run, args: list[str], acl: str | None = None, what: str = "") -> int:
    """postqueue(1) as the invoking user (it is set-gid: it may log)."""
    from .. import postqueue
    if acl and not user_allowed(run.host, acl, run.user):
        text = f"User {_acl_name(run)}({run.uid}) is not allowed to {what}"
        run.err.write(f"postqueue: fatal: {text}\n")
        run.log(f"fatal: {text}", daemon="postqueue", pid=run.host.next_pid())
        return EX_UNAVAILABLE
    return postqueue.main(run.host.root, args, run.out, run.err, host=run.host)


def _newaliases(run: _Run, o: Options) -> int:
    from ..maps.commands import postalias_main
    if o.alias_map is None and not run.host.conf.get("alias_database"):
        return 0
    maps = [o.alias_map] if o.alias_map is not None else \
        run.host.conf.get("alias_database").replace(",", " ").split()
    return postalias_main(run.host.root, ["--", *maps], run.out, run.err)


def _daemon(run: _Run) -> int:
    """``postfix start`` in the background; what it says goes to the log only."""
    from ..postfix_cmd import main as postfix_main
    said = io.StringIO()
    postfix_main(run.host.root, ["start"], io.StringIO(), said)
    for line in said.getvalue().splitlines():
        prefix = "postfix/postfix-script: "
        if line.startswith(prefix):
            run.log(line[len(prefix):], daemon="postfix-script", pid=run.host.next_pid())
    return 0


def _dispatch(run: _Run, o: Options) -> int:
    rcpt = bool(o.recipients)
    if o.qtime and o.mode != DAEMON:
        return 0
    if o.mode == ENQUEUE:
        if o.site or o.queue_id:
            if rcpt:
                raise Fatal("flush site requires no recipient" if o.site else
                            "flush queue_id requires no recipient")
            return _postqueue(run, ["-s", o.site] if o.site else ["-i", o.queue_id or ""],
                              "authorized_flush_users", "flush the mail queue")
        return enqueue(run, o)
    needs_none = {MAILQ: "display queue mode", FLUSHQ: "flush queue mode", DAEMON: "daemon mode",
                  NEWALIAS: "alias initialization mode", USER: "stand-alone mode"}
    if o.mode in needs_none and rcpt:
        raise Fatal(f"{needs_none[o.mode]} requires no recipient")
    if o.mode == MAILQ:
        return _postqueue(run, ["-p"], "authorized_mailq_users", "view the mail queue")
    if o.mode == FLUSHQ:
        return _postqueue(run, ["-f"], "authorized_flush_users", "flush the mail queue")
    if o.mode == DAEMON:
        return _daemon(run)
    if o.mode == NEWALIAS:
        return _newaliases(run, o)
    if o.mode == USER:
        if not user_allowed(run.host, "authorized_submit_users", run.user):
            raise Fatal(f"User {_acl_name(run)}({run.uid}) is not allowed to submit mail")
        return _stand_alone(run)
    return 0                                               # -bh, -bH


def _stdin_reader(stdin: bytes | BinaryIO) -> Callable[[], bytes]:
    cache: list[bytes] = []

    def read() -> bytes:
        if not cache:
            cache.append(stdin if isinstance(stdin, (bytes, bytearray)) else stdin.read())
        return bytes(cache[0])
    return read


def _run(host, argv: list[str], stdin, user: str, out: TextIO, err: TextIO,
         env: Mapping[str, str] | None, prog: str) -> int:
    entry = host.users().get(user)
    if entry is None:
        raise ValueError(f"{user}: no such user in {host.root}/etc/passwd")
    run = _Run(host, prog, user, entry.uid, out, err, dict(env or {}), _stdin_reader(stdin))
    try:
        return _dispatch(run, parse_options(run, argv))
    except Fatal as e:
        err.write(f"{run.prog}: fatal: {e.text}\n")
        run.log(f"fatal: {e.text}")
        return e.status


def sendmail(host, argv: list[str], stdin: bytes | BinaryIO = b"", *, user: str = "root",
             env: Mapping[str, str] | None = None, prog: str = "sendmail") -> tuple[int, str, str]:
    """Run ``sendmail ARGV < STDIN`` on ``host`` as ``user``; returns (exit status, stdout, stderr).

    ``argv`` holds the options and recipients (not the program name);
    ``env`` the environment sendmail looks at (only ``NAME``, the sender's
    full name); ``prog`` the name it was called by: ``mailq`` and
    ``newaliases`` start in their modes. The message is delivered before
    this returns (pickup and qmgr run in-process; ``host.auto_deliver =
    False`` leaves it in the queue).
    """
    out, err = io.StringIO(), io.StringIO()
    rc = _run(host, list(argv), stdin, user, out, err, env, prog)
    return rc, out.getvalue(), err.getvalue()


def main(root: Path, argv: list[str], out: TextIO, err: TextIO, *,
         stdin: BinaryIO | None = None) -> int:
    """``mailsim --root DIR sendmail [options] [recipient ...]`` (as root).

    A command line is a real command on the host, so it runs on the wall
    clock (its queue ids cannot collide with mail already queued by another
    run); ``NAME`` comes from the environment, the message from stdin.
    """
    from ..clock import WallClock
    from ..host import Host
    # from a notebook: the host object in use (its simulated clock and queue manager)
    host = Host.live(root) or Host(root, clock=WallClock())
    env = {"NAME": os.environ["NAME"]} if "NAME" in os.environ else {}
    source = stdin if stdin is not None else sys.stdin.buffer
    rc = _run(host, list(argv), source, "root", out, err, env, "sendmail")
    if host.qmgr_wanted:
        host.run_queue()
    return rc
