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

Not simulated: ``-C`` (another configuration directory), verbose logging
(``-v -v``), ``local_login_sender_maps``, the message size limit at
submission (cleanup enforces message_size_limit), header_size_limit for
``-t``, the ``MAIL_CONFIG``/``MAIL_VERBOSE`` environment.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Mapping, TextIO

from .canonical import parse, str_addresses
from .cleanup import received_header
from .postdrop import PostdropError, new_maildrop_id, postdrop, user_allowed
from .queue import Recipient
from .smtpd.check import Checker, Decision
from .smtpd.session import SMTPDSession

__all__ = ["sendmail", "main", "parse_options", "Options", "read_message", "extract_recipients",
           "StandAloneSession", "Fatal", "EX_TEMPFAIL", "EX_UNAVAILABLE"]

EX_UNAVAILABLE = 69
EX_TEMPFAIL = 75

# modes of operation (sendmail.c's SM_MODE_*)
ENQUEUE, NEWALIAS, MAILQ, DAEMON, USER, FLUSHQ, IGNORE = (
    "enqueue", "newalias", "mailq", "daemon", "user", "flushq", "ignore")

# flags: sendmail's own, and the delivery request trace flags it passes on
FLAG_AEOF = 1 << 0                 # a line with "." ends the input
FLAG_XRCPT = 1 << 1                # -t
USR_VRFY = 1 << 9                  # -bv (DEL_REQ_FLAG_USR_VRFY)
RECORD = 1 << 10                   # -v  (DEL_REQ_FLAG_RECORD)
TRACE_FLAGS = USR_VRFY | RECORD

GETOPT_LIST = "A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx"
DSN_NOTIFY = ("NEVER", "SUCCESS", "FAILURE", "DELAY")

#: headers that -t reads: name -> is it a Resent- header (header_opts.c, HDR_OPT_XRECIP)
EXTRACT_HEADERS = {"to": False, "cc": False, "bcc": False,
                   "resent-to": True, "resent-cc": True, "resent-bcc": True}


class Fatal(Exception):
    """msg_fatal_status(): the text after ``fatal:`` and the exit status."""

    def __init__(self, text: str, status: int = EX_TEMPFAIL, program: str | None = None) -> None:
        super().__init__(text)
        self.text, self.status, self.program = text, status, program


# -- who runs the command, and where its words go ------------------------------------------------
@dataclass
class _Run:
    """One invocation: the host, the invoking user, and its stdout/stderr."""
    host: object
    prog: str
    user: str
    uid: int
    out: TextIO
    err: TextIO
    env: Mapping[str, str]
    stdin: Callable[[], bytes]
    _pid: int | None = None

    @property
    def pid(self) -> int:
        if self._pid is None:
            self._pid = self.host.next_pid()
        return self._pid

    @property
    def can_log(self) -> bool:
        """sendmail is not set-gid: only root reaches postlogd's socket (maillog_file)."""
        return self.user == "root" or not self.host.conf.get("maillog_file")

    def log(self, text: str, daemon: str = "sendmail", pid: int | None = None) -> None:
        if self.can_log or daemon in ("postqueue", "postfix-script"):
            self.host.log.write(daemon, self.pid if pid is None else pid, text)

    def warn(self, text: str) -> None:
        self.err.write(f"{self.prog}: warning: {text}\n")
        self.log(f"warning: {text}")

    def who(self, sender: str) -> str:
        """``saved_sender(uid)``, the prefix of enqueue's errors."""
        return f"{sender}({self.uid})"


# -- command line ---------------------------------------------------------------------------------
class _GetOpt:
    """GNU getopt(3) with a leading "+": stops at the first non-option or "--".

    Like Postfix's loop it works on ``argv`` in place (argv[0] is the program),
    so the caller can look at ``argv[optind]`` between calls.
    """

    def __init__(self, prog: str, argv: list[str], optstring: str, err: TextIO | None) -> None:
        self.prog, self.argv, self.optstring, self.err = prog, argv, optstring, err
        self.optind = 1
        self.nextchar = ""

    def _complain(self, text: str) -> None:
        if self.err is not None:
            self.err.write(f"{self.prog}: {text}\n")

    def __call__(self) -> tuple[str, str | None] | None:
        argv = self.argv
        if not self.nextchar:
            if self.optind >= len(argv):
                return None
            arg = argv[self.optind]
            if arg == "--":
                self.optind += 1
                return None
            if arg[:1] != "-" or arg == "-":
                return None
            self.nextchar = arg[1:]
        c, self.nextchar = self.nextchar[0], self.nextchar[1:]
        at = self.optstring.find(c)
        if at < 0 or c == ":":
            self._complain(f"invalid option -- '{c}'")
            self.optind += not self.nextchar
            return "?", None
        if self.optstring[at + 1:at + 2] != ":":
            self.optind += not self.nextchar
            return c, None
        if self.nextchar:
            optarg, self.nextchar = self.nextchar, ""
            self.optind += 1
        elif self.optind + 1 < len(argv):
            optarg = argv[self.optind + 1]
            self.optind += 2
        else:
            self._complain(f"option requires an argument -- '{c}'")
            self.optind += 1
            return "?", None
        return c, optarg


@dataclass
class Options:
    """What the command line asked for."""
    mode: str = ENQUEUE
    flags: int = FLAG_AEOF
    sender: str | None = None            # -f / -r, as given
    full_name: str | None = None         # -F
    encoding: str | None = None          # -B: "7bit" / "8bit"
    envid: str | None = None             # -V
    ret: str | None = None               # -R: "FULL" / "HDRS"
    notify: str = ""                     # -N, as "SUCCESS,DELAY"
    rewrite_context: str = "local"       # -G: remote
    verp: str | None = None              # -XV
    site: str | None = None              # -qR
    queue_id: str | None = None          # -qI
    qtime: str | None = None             # -q30m
    alias_map: str | None = None         # -oA
    verbose: int = 0
    recipients: list[str] = field(default_factory=list)


def _notify_mask(run: _Run, value: str) -> str:
    """dsn_notify_mask(): "success,delay" -> "SUCCESS,DELAY"; "" when bad (after a warning)."""
    names = [n for n in value.replace(",", " ").split() if n]
    got = []
    for n in names:
        if n.upper() not in DSN_NOTIFY:
            run.warn(f'unknown DSN NOTIFY command value "{n}" in "{value}"')
            return ""
        got.append(n.upper())
    ok = got == ["NEVER"] * len(got) if "NEVER" in got else bool(got)
    return ",".join(x for x in DSN_NOTIFY if x in got) if ok else ""


def _verp_ok(run: _Run, delims: str) -> bool:
    allowed = run.host.conf.get("verp_delimiter_filter") or "-=+"
    return len(delims) == 2 and all(ch in allowed for ch in delims)


def _option(run: _Run, o: Options, c: str, arg: str | None) -> None:
    """One option of sendmail's main loop."""
    a = arg or ""
    if c == "n":
        raise Fatal(f"-{c} option not supported")
    if c == "B":
        if a not in ("8BITMIME", "7BIT"):
            raise Fatal("-B option needs 8BITMIME or 7BIT")
        o.encoding = "8bit" if a == "8BITMIME" else "7bit"
    elif c == "F":
        o.full_name = a
    elif c == "G":
        o.rewrite_context = "remote"
    elif c == "I":
        o.mode = NEWALIAS
    elif c == "N":
        o.notify = _notify_mask(run, a)
        if not o.notify:
            run.warn("bad -N option value -- ignored")
    elif c == "R":
        o.ret = a.upper() if a.upper() in ("FULL", "HDRS") else None
        if o.ret is None:
            run.warn("bad -R option value -- ignored")
    elif c == "V":
        if len(a) > 100:
            run.warn("too long -V option value -- ignored")
        elif not all(" " <= ch <= "~" for ch in a):
            run.warn("bad syntax in -V option value -- ignored")
        else:
            o.envid = a
    elif c == "X":
        if a[:1] != "V":
            raise Fatal(f"unsupported: -{c}{a[:1]}")
        if not _verp_ok(run, a[1:]):
            raise Fatal("-V requires two characters from "
                        + (run.host.conf.get("verp_delimiter_filter") or "-=+"))
        o.verp = a[1:]
    elif c == "b":
        _b_option(run, o, a[:1])
    elif c in ("f", "r"):
        o.sender = a
    elif c == "i":
        o.flags &= ~FLAG_AEOF
    elif c == "o":
        if a[:1] == "A":
            if not a[1:]:
                raise Fatal("-oA requires pathname")
            o.alias_map = a[1:]
        elif a[:1] == "i":
            o.flags &= ~FLAG_AEOF
    elif c == "q":
        _q_option(o, a)
    elif c == "t":
        o.flags |= FLAG_XRCPT
    elif c == "v":
        o.verbose += 1
    elif c == "?":
        raise Fatal(f"usage: {run.prog} [options]")
    # every other option (-Am, -L label, -h hops, -O x=y, -U, -m, ...) is ignored


def _b_option(run: _Run, o: Options, x: str) -> None:
    if x in ("d", "l"):
        if o.mode == FLUSHQ:
            run.warn("ignoring -q option in daemon mode")
        o.mode = DAEMON
    elif x in ("h", "H"):
        o.mode = IGNORE
    elif x == "i":
        o.mode = NEWALIAS
    elif x == "m":
        o.mode = ENQUEUE
    elif x == "p":
        o.mode = MAILQ
    elif x == "s":
        o.mode = USER
    elif x == "v":
        o.flags |= USR_VRFY
    else:
        raise Fatal(f"unsupported: -b{x}")


def _q_option(o: Options, a: str) -> None:
    if a[:1].isdigit():
        o.qtime = a
    elif a[:1] == "R":
        o.site = a[1:]
        if not o.site:
            raise Fatal("specify: -qRsitename")
    elif a[:1] == "I":
        o.queue_id = a[1:]
        if not o.queue_id:
            raise Fatal("specify: -qIqueueid")
    else:
        raise Fatal(f"-q{a[:1]} is not implemented")


def _special(run: _Run, o: Options, argv: list[str], g: _GetOpt) -> bool:
    """The options getopt cannot parse (-q alone, -V xy, -XV); True if one was taken."""
    a = argv[g.optind]
    if a == "-q":
        if o.mode == DAEMON:
            run.warn("ignoring -q option in daemon mode")
        else:
            o.mode = FLUSHQ
        g.optind += 1
        return True
    if a == "-V" and g.optind + 1 < len(argv) and len(argv[g.optind + 1]) == 2:
        run.warn("option -V is deprecated with Postfix 2.3; specify -XV instead")
        argv[g.optind] = "-XV"
    if a.startswith("-V") and len(a) == 4:
        run.warn(f"option {a} is deprecated with Postfix 2.3; specify -X{a[1:]} instead")
        argv[g.optind] = "-X" + a[1:]
    if argv[g.optind] == "-XV":
        o.verp = run.host.conf.get("default_verp_delimiters") or "+="
        g.optind += 1
        return True
    return False


def _mode_of(prog: str) -> str:
    return {"mailq": MAILQ, "newaliases": NEWALIAS, "smtpd": DAEMON}.get(prog, ENQUEUE)


def parse_options(run: _Run, args: list[str]) -> Options:
    """sendmail's command line, as its two getopt passes see it (see :func:`sendmail`).

    Raises :class:`Fatal` for what Postfix rejects.
    """
    argv = [run.prog] + list(args)
    pre = _GetOpt(run.prog, list(argv), GETOPT_LIST, run.err)      # the pass that looks for -C
    while pre.optind < len(argv):
        if argv[pre.optind] == "-q":
            pre.optind += 1
            continue
        if pre() is None:
            break
    o = Options(mode=_mode_of(run.prog))
    g = _GetOpt(run.prog, argv, GETOPT_LIST, run.err)
    while g.optind < len(argv):
        if not g.nextchar and _special(run, o, argv, g):
            continue
        got = g()
        if got is None:
            break
        _option(run, o, *got)
    o.recipients = argv[g.optind:]
    _conflicts(o)
    return o


def _conflicts(o: Options) -> None:
    if o.flags & FLAG_XRCPT and o.mode != ENQUEUE:
        raise Fatal("-t can be used only in delivery mode")
    if o.site and o.mode != ENQUEUE:
        raise Fatal("-qR can be used only in delivery mode")
    if o.queue_id and o.mode != ENQUEUE:
        raise Fatal("-qI can be used only in delivery mode")
    if o.flags & USR_VRFY:
        if o.flags & FLAG_XRCPT:
            raise Fatal("-t option cannot be used with -bv")
        if o.notify:
            raise Fatal("-N option cannot be used with -bv")
        if o.ret:
            raise Fatal("-R option cannot be used with -bv")
        if o.verbose == 1:
            raise Fatal("-v option cannot be used with -bv")
    if o.verbose == 1 and o.mode == ENQUEUE:      # one -v: a delivery report; more: verbose logs
        o.verbose = 0
        o.flags |= RECORD


# -- the message ----------------------------------------------------------------------------------
def _records(data: bytes, limit: int) -> Iterator[tuple[bytes, bool]]:
    """rec_streamlf_get(): (text, ended_by_newline); longer lines come in ``limit`` pieces."""
    i, n = 0, len(data)
    while i < n:
        chunk = data[i:i + limit]
        nl = chunk.find(b"\n")
        if nl >= 0:
            yield chunk[:nl], True
            i += nl + 1
        else:
            yield chunk, False
            i += len(chunk)


def _is_from_line(text: bytes) -> bool:
    return text.lstrip(b">").startswith(b"From ")


def read_message(data: bytes, *, dot_ends: bool = True, fix_eol: str = "always",
                 limit: int = 2048) -> list[tuple[bytes, bool]]:
    """The message as sendmail passes it on: a list of (text, ended_by_newline).

    Leading ``From`` lines are dropped; ``fix_eol`` (sendmail_fix_line_endings)
    ``always`` strips CRs before the LF, ``strict`` does so only if the first
    line ends in CRLF, ``never`` keeps them; with ``dot_ends`` a line with a
    single ``.`` ends the message.

    >>> read_message(b"From x  Mon\\r\\nSubject: a\\r\\n\\r\\nbody\\r\\n.\\r\\nlost\\r\\n")
    [(b'Subject: a', True), (b'', True), (b'body', True)]
    >>> read_message(b"line\\r\\n.\\n", dot_ends=False, fix_eol="never")
    [(b'line\\r', True), (b'.', True)]
    """
    out: list[tuple[bytes, bool]] = []
    strip = {"always": True, "never": False}.get(fix_eol)       # None: strict, decide on line 1
    skip_from = True
    prev_full = True
    for text, full in _records(data, limit):
        if strip is None and full:
            strip = text.endswith(b"\r")
        if skip_from:
            if full and _is_from_line(text):
                continue
            skip_from = False
        if strip and full:
            text = text.rstrip(b"\r")
        if dot_ends and prev_full and text == b".":
            break
        out.append((text, full))
        prev_full = full
    return out


def _content(records: list[tuple[bytes, bool]]) -> bytes:
    return b"".join(t + (b"\n" if full else b"") for t, full in records)


def _lines(records: list[tuple[bytes, bool]]) -> list[bytes]:
    """Whole lines (pieces of an over-long line joined)."""
    out, cur = [], b""
    for text, full in records:
        cur += text
        if full:
            out.append(cur)
            cur = b""
    if cur:
        out.append(cur)
    return out


def _header_name(line: bytes) -> str | None:
    """is_header(): ``Name:`` (white space allowed before the colon), else None."""
    name, colon, _ = line.partition(b":")
    name = name.rstrip(b" \t")
    if not colon or not name or any(b < 0x21 or b > 0x7E for b in name):
        return None
    return name.decode("ascii").lower()


def _headers(lines: list[bytes]) -> Iterator[str]:
    """The primary header section, one logical header (continuations joined) at a time."""
    cur: list[bytes] = []
    for ln in lines:
        if cur and ln[:1] in (b" ", b"\t"):
            cur.append(ln)
            continue
        if cur:
            yield b"\n".join(cur).decode("utf-8", "surrogateescape")
            cur = []
        if _header_name(ln) is None:
            return
        cur = [ln]
    if cur:
        yield b"\n".join(cur).decode("utf-8", "surrogateescape")


def extract_recipients(records: list[tuple[bytes, bool]]) -> list[str]:
    """-t: the addresses in To:, Cc:, Bcc: -- or only those in Resent-To/Cc/Bcc: if any.

    >>> extract_recipients([(b"To: a, B <b@x>", True), (b"Cc: c", True), (b"", True), (b"To: d", True)])
    ['a', 'b@x', 'c']
    >>> extract_recipients([(b"To: a", True), (b"Resent-To: r1", True), (b"Cc: c", True)])
    ['r1']
    """
    plain: list[str] = []
    resent: list[str] = []
    is_resent = False
    for header in _headers(_lines(records)):
        name = _header_name(header.encode("utf-8", "surrogateescape")) or ""
        if name not in EXTRACT_HEADERS or (is_resent and not EXTRACT_HEADERS[name]):
            continue
        if EXTRACT_HEADERS[name]:
            is_resent = True
        value = header[len(name) + 1:]
        (resent if EXTRACT_HEADERS[name] else plain).extend(str_addresses(parse(value)))
    return resent if is_resent else plain


def _probe(sender: str, recipients: list[str]) -> bytes:
    """The message of ``sendmail -bv``: From:, Subject: probe, To: with the arguments."""
    lines = [f"From: {sender}"] if sender else []
    lines.append("Subject: probe")
    if recipients:
        to = [f"\t{r}{',' if i < len(recipients) - 1 else ''}" for i, r in enumerate(recipients)]
        lines += ["To:" + to[0]] + to[1:]
    return "".join(ln + "\n" for ln in lines).encode("utf-8", "surrogateescape")


# -- delivery mode --------------------------------------------------------------------------------
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
    from .pickup import run as pickup_run
    pickup_run(host)
    if getattr(host, "auto_deliver", True) and host.clock.simulated and getattr(host, "qmgr_wanted", True):
        host.run_queue()


def _acl_name(run: _Run) -> str:
    return run.user if run.user in run.host.users() else "unknown"


# -- the other modes: what sendmail runs in its place -------------------------------------------
def _postqueue(run: _Run, args: list[str], acl: str | None = None, what: str = "") -> int:
    """postqueue(1) as the invoking user (it is set-gid: it may log)."""
    from . import postqueue
    if acl and not user_allowed(run.host, acl, run.user):
        text = f"User {_acl_name(run)}({run.uid}) is not allowed to {what}"
        run.err.write(f"postqueue: fatal: {text}\n")
        run.log(f"fatal: {text}", daemon="postqueue", pid=run.host.next_pid())
        return EX_UNAVAILABLE
    return postqueue.main(run.host.root, args, run.out, run.err)


def _newaliases(run: _Run, o: Options) -> int:
    from .maps.commands import postalias_main
    if o.alias_map is None and not run.host.conf.get("alias_database"):
        return 0
    maps = [o.alias_map] if o.alias_map is not None else \
        run.host.conf.get("alias_database").replace(",", " ").split()
    return postalias_main(run.host.root, ["--", *maps], run.out, run.err)


def _daemon(run: _Run) -> int:
    """``postfix start`` in the background; what it says goes to the log only."""
    from .postfix_cmd import main as postfix_main
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

    def __init__(self, host, user: str, log) -> None:
        self.real_host, self.user = host, user
        super().__init__(_StandAloneHost(host, log), "127.0.0.1", 0)
        self.checker = _NoChecks(self)

    def _bare_lf_mask(self) -> int:
        return 0

    def _flag_pipelining(self) -> None:
        return None

    def _finish_message(self, bdat: bool):
        from .smtpd import replies as R
        from .reply import Reply
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
        from .pickup import run as pickup_run
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
    from .clock import WallClock
    from .host import Host
    # from a notebook: the host object in use (its simulated clock and queue manager)
    host = Host.live(root) or Host(root, clock=WallClock())
    env = {"NAME": os.environ["NAME"]} if "NAME" in os.environ else {}
    source = stdin if stdin is not None else sys.stdin.buffer
    rc = _run(host, list(argv), source, "root", out, err, env, "sendmail")
    if host.qmgr_wanted:
        host.run_queue()
    return rc
