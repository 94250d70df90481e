"""``mailsim lab``: run a lab from the shell.

::

    mailsim lab list                                   the shipped labs
    mailsim lab DIR init [--from NAME] [--force]       create the host folders (copy a shipped lab)
    mailsim lab DIR status [--json]                    hosts, addresses, up or down, mail queued
    mailsim lab DIR send --from A --to B [--to C] [--via HOST] [--file MSG.eml]
                         [--client ADDR] [--helo NAME] [--subject TEXT] [--json]
    mailsim lab DIR run [--until DURATION] [--json]    fast-forward (default: until queues settle)
    mailsim lab DIR mailq HOST [--json]                postqueue -p (-j) on HOST
    mailsim lab DIR log HOST [--json]                  HOST's mail log
    mailsim lab DIR mailbox HOST USER                  USER's mailbox on HOST
    mailsim lab DIR flush|stop|start|reload HOST       postqueue -f, postfix stop|start|reload
    mailsim lab DIR dig NAME [TYPE]                    ask the lab's DNS

Every command loads the lab, does its work on the lab's simulated clock and
saves the clock (``DIR/state.json``), so a sequence of commands is one run.
Errors print ``mailsim lab: ...`` with what to fix and exit with status 1;
a usage error exits with 2.

Not yet: ``trace`` (a message's route across the hosts) and the graphs.

Examples
--------
>>> import io
>>> out, err = io.StringIO(), io.StringIO()
>>> main(None, ["/nonexistent/lab", "status"], out, err)
1
>>> print(err.getvalue().strip())       # doctest: +ELLIPSIS
mailsim lab: /nonexistent/lab/lab.toml: no such file -- ...
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from .config import LabError
from .duration import format_instant

__all__ = ["main"]

USAGE = __doc__.split("::", 1)[1].split("\n\n", 2)[1]


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:           # no sys.exit: main() reports it
        raise _UsageError(f"{self.prog}: {message}")


def _parser() -> _Parser:
    p = _Parser(prog="mailsim lab DIR", add_help=False)
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser)
    c = sub.add_parser("init")
    c.add_argument("--from", dest="from_lab")
    c.add_argument("--force", action="store_true")
    c = sub.add_parser("status")
    c.add_argument("--json", action="store_true")
    c = sub.add_parser("send")
    c.add_argument("--from", dest="sender", required=True)
    c.add_argument("--to", dest="to", action="append", required=True)
    c.add_argument("--via")
    c.add_argument("--file")
    c.add_argument("--client")
    c.add_argument("--helo", default="client.example")
    c.add_argument("--subject")
    c.add_argument("--json", action="store_true")
    c = sub.add_parser("run")
    c.add_argument("--until")
    c.add_argument("--json", action="store_true")
    for name in ("mailq", "log"):
        c = sub.add_parser(name)
        c.add_argument("host")
        c.add_argument("--json", action="store_true")
    c = sub.add_parser("mailbox")
    c.add_argument("host")
    c.add_argument("user")
    for name in ("flush", "stop", "start", "reload"):
        sub.add_parser(name).add_argument("host")
    c = sub.add_parser("dig")
    c.add_argument("name")
    c.add_argument("rtype", nargs="?", default="A")
    c = sub.add_parser("trace")
    c.add_argument("ident", nargs="?")
    c.add_argument("--format", default="text")
    return p


def main(root: Path | None, argv: list[str], out: TextIO, err: TextIO) -> int:
    """The ``lab`` command (``root``, the --root host folder, is not used)."""
    from .lab import shipped_labs
    if not argv or argv[0] in ("-h", "--help"):
        out.write("usage:\n" + USAGE + "\n")
        return 0 if argv else 2
    if argv[0] == "list":
        for name in shipped_labs():
            out.write(name + "\n")
        return 0
    if len(argv) < 2:
        err.write(f"mailsim lab: what should I do with {argv[0]}?\nusage:\n{USAGE}\n")
        return 2
    lab_dir, rest = Path(argv[0]), argv[1:]
    try:
        a = _parser().parse_args(rest)
    except _UsageError as e:
        err.write(f"{e}\nusage:\n{USAGE}\n")
        return 2
    if a.cmd is None:
        err.write(f"mailsim lab: no command\nusage:\n{USAGE}\n")
        return 2
    try:
        return _run(lab_dir, a, out, err)
    except LabError as e:
        err.write(f"mailsim lab: {e}\n")
        return 1


def _run(lab_dir: Path, a: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .lab import Lab
    if a.cmd == "trace":
        err.write("mailsim lab: trace is not available yet -- it comes with the graphs of the "
                  "labs; for now read each host's log: mailsim lab DIR log HOST\n")
        return 1
    if a.cmd == "init":
        lab = Lab.init(lab_dir, from_lab=a.from_lab, force=a.force)
        out.write(f"mailsim lab: {lab.config.name or lab_dir.name}: "
                  f"{len(lab.hosts)} host(s) in {lab_dir}/hosts: {', '.join(lab.hosts)}\n")
        return 0
    lab = Lab.load(lab_dir, create=True)
    if a.cmd == "status":
        rows = lab.status()
        if a.json:
            out.write(json.dumps({"lab": lab.config.name, "now": lab.now, "hosts": rows}) + "\n")
            return 0
        out.write(f"lab {lab.config.name}, clock {format_instant(lab.now)}\n")
        for r in rows:
            out.write(f"  {r['name']:<10} {', '.join(r['addresses']):<16} {r['hostname']:<28} "
                      f"{'up' if r['up'] else 'DOWN':<5} {r['queued']} queued\n")
        return 0
    if a.cmd == "send":
        message = None
        if a.file:
            try:
                message = Path(a.file).read_bytes() if a.file != "-" else sys.stdin.buffer.read()
            except OSError as e:
                raise LabError(f"--file {a.file}: {e.strerror}") from None
        r = lab.send(a.sender, a.to, via=a.via, message=message, client=a.client, helo=a.helo,
                     subject=a.subject)
        if a.json:
            out.write(json.dumps({"via": r.via, "client": r.client, "queue_id": r.queue_id,
                                  "refused": r.refused,
                                  "dialogue": [{"send": c, "reply": s} for c, s in r.dialogue]})
                      + "\n")
        else:
            out.write(r.transcript())
        return 0 if r.ok else 1
    if a.cmd == "run":
        start = lab.now
        n = lab.run(a.until)
        queued = {row["name"]: row["queued"] for row in lab.status()}
        if a.json:
            out.write(json.dumps({"from": start, "to": lab.now, "handled": n,
                                  "queued": queued}) + "\n")
        else:
            out.write(f"clock {format_instant(start)} -> {format_instant(lab.now)}; "
                      f"{n} message(s) handled; still queued: "
                      + ", ".join(f"{k} {v}" for k, v in queued.items()) + "\n")
        return 0
    if a.cmd == "mailq":
        out.write(lab.mailq(a.host, as_json=a.json))
        return 0
    if a.cmd == "log":
        lines = lab.log(a.host)
        out.write(json.dumps(lines) + "\n" if a.json else "".join(ln + "\n" for ln in lines))
        return 0
    if a.cmd == "mailbox":
        out.write(lab.mailbox(a.host, a.user))
        return 0
    if a.cmd == "dig":
        if lab.dns is None:
            raise LabError("this lab has no DNS: add zone files in zones/*.zone")
        text = lab.dns.dig(a.name, a.rtype.upper())
        out.write(text + ("\n" if text and not text.endswith("\n") else ""))
        lab.save()
        return 0
    getattr(lab, a.cmd)(a.host)                 # flush, stop, start, reload
    return 0
