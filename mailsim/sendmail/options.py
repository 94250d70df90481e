"""sendmail's command line: Postfix's two getopt passes, its options and their conflicts.

Part of :mod:`mailsim.sendmail` (Postfix's ``src/sendmail/sendmail.c``, main()).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

from .context import (DAEMON, DSN_NOTIFY, ENQUEUE, FLAG_AEOF, FLAG_XRCPT, FLUSHQ, GETOPT_LIST, IGNORE,
                      MAILQ, NEWALIAS, RECORD, USER, USR_VRFY, Fatal, _Run)

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
