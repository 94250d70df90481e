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
    mailsim lab DIR dig NAME [TYPE] [+short]           ask the lab's DNS (NXDOMAIN vs NODATA)
    mailsim lab DIR fault KIND TARGET [TARGET2] [--at D] [--until D | --for D]
                         [--mode refused|timeout|unreachable] [--latency D] [--delay D] [--user U]
    mailsim lab DIR fault list [--json] | fault end N  the faults; end fault N now
    mailsim lab DIR trace ID [--format text|json|dot|svg|png] [--output FILE]
                         a message's route (ID: Message-ID or a queue id on any host)
    mailsim lab DIR serve HOST --listen 127.0.0.1:PORT
                         HOST's smtpd on a real loopback socket, until Ctrl-C

Every command loads the lab, does its work on the lab's simulated clock and
saves the clock (``DIR/state.json``), so a sequence of commands is one run.
A ``fault`` (:mod:`mailsim.lab.faults`: host-down, link-cut, slow-link,
dns-servfail, dns-nxdomain, greylist, mailbox-full) starts ``--at`` a time
from now (default: now) and lasts ``--for`` a duration or ``--until`` a time
from now; ``run`` starts and ends it on the clock.
Errors print ``mailsim lab: ...`` with what to fix and exit with status 1;
a usage error exits with 2.

``serve`` lets a real MTA or client (Postfix, swaks, smtplib) send into the
lab (:mod:`mailsim.lab.bridge`); lab.toml's ``[[bridges]]`` are the way out.

``trace`` reads every host's log (:mod:`mailsim.lab.trace`); ``dot`` and
``svg`` give its route graph (:mod:`mailsim.route_graphs`: Graphviz when
``dot`` is installed, else matplotlib), ``png`` only into ``--output``.

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
    c.add_argument("short", nargs="?", choices=("+short",))
    c = sub.add_parser("fault")
    c.add_argument("what")
    c.add_argument("args", nargs="*")
    c.add_argument("--at")
    c.add_argument("--until")
    c.add_argument("--for", dest="duration")
    c.add_argument("--mode", choices=("refused", "timeout", "unreachable"))
    c.add_argument("--latency")
    c.add_argument("--delay")
    c.add_argument("--user")
    c.add_argument("--json", action="store_true")
    c = sub.add_parser("trace")
    c.add_argument("ident")
    c.add_argument("--format", default="text", choices=("text", "json", "dot", "svg", "png"))
    c.add_argument("--output")
    c = sub.add_parser("serve")
    c.add_argument("host")
    c.add_argument("--listen", required=True)
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


def _trace(lab, a: argparse.Namespace, out: TextIO) -> int:
    """``trace ID``: the text, the JSON, or the route graph (DOT, SVG, PNG)."""
    from .. import route_graphs
    from .trace import trace
    t = trace(lab, a.ident)
    if a.format == "png" and not a.output:
        raise LabError("trace --format png writes a file: add --output FILE.png")
    if a.format == "text":
        data: str | bytes = t.to_text()
    elif a.format == "json":
        data = t.to_json() + "\n"
    elif a.format == "dot":
        data = route_graphs.dot_source(route_graphs.route_graph(t)).source
    else:
        pic = route_graphs.render(route_graphs.route_graph(t))
        data = pic.png() if a.format == "png" else pic.svg + "\n"
    if a.output:
        try:
            if isinstance(data, bytes):
                Path(a.output).write_bytes(data)
            else:
                Path(a.output).write_text(data, encoding="utf-8")
        except OSError as e:
            raise LabError(f"--output {a.output}: {e.strerror}") from None
    else:
        out.write(data)
    return 0


def _fault(lab, a: argparse.Namespace, out: TextIO) -> int:
    """``fault list``, ``fault end N``, ``fault KIND TARGET...``."""
    if a.what == "list":
        rows = lab.fault_table()
        if a.json:
            out.write(json.dumps(rows) + "\n")
            return 0
        for r in rows:
            until = format_instant(r["until"]) if r["until"] is not None else "(until ended)"
            out.write(f"{r['n']:>2}  {r['state']:<8} {format_instant(r['at'])} -> {until}  "
                      f"{r['what']}" + (f" -- {r['description']}" if r["description"] else "")
                      + "\n")
        if not rows:
            out.write("no faults\n")
        return 0
    if a.what == "end":
        if len(a.args) != 1 or not a.args[0].isdigit():
            raise LabError("fault end N: give the number of the fault (mailsim lab DIR fault list)")
        f = lab.end_fault(int(a.args[0]))
        out.write(f"fault {a.args[0]} ({f.describe()}) is over at {format_instant(lab.now)}\n")
        return 0
    if not a.args:
        raise LabError(f"fault {a.what}: name the target (a host, two hosts, or a DNS name)")
    target = a.args[0] if len(a.args) == 1 else a.args
    f = lab.fault(a.what, target, at=a.at, until=a.until, duration=a.duration, mode=a.mode,
                  latency=a.latency, delay=a.delay, user=a.user)
    until = format_instant(f.until) if f.until is not None else "until ended (fault end N)"
    out.write(f"fault {len(lab.faults)}: {f.describe()} from {format_instant(f.at)}, {until}"
              f" -- {f.state}\n")
    return 0


def _serve(lab, a: argparse.Namespace, out: TextIO) -> int:
    """``serve HOST --listen ADDR:PORT``: until SIGTERM or Ctrl-C."""
    import asyncio
    from ..serve import parse_listen
    from .bridge import serve_lab_host
    lab.host(a.host)
    try:
        parse_listen(a.listen)
    except ValueError as e:
        raise LabError(f"--listen {a.listen}: {e}") from None

    def ready(server) -> None:
        out.write(f"mailsim lab: {a.host} ({lab.address(a.host)} in the lab) listens on "
                  f"{a.listen}; Ctrl-C stops it\n")
        out.flush()
    try:
        asyncio.run(serve_lab_host(lab, a.host, a.listen, ready=ready))
    except OSError as e:
        raise LabError(f"--listen {a.listen}: {e.strerror}") from None
    except KeyboardInterrupt:
        pass
    lab.save()
    return 0


def _run(lab_dir: Path, a: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .lab import Lab
    if a.cmd == "trace":
        return _trace(Lab.load(lab_dir, create=True), a, out)
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
        short = a.rtype == "+short" or a.short == "+short"
        rtype = "A" if a.rtype == "+short" else a.rtype
        text = lab.dns.dig(a.name, rtype.upper(), short=short, comments=not short)
        out.write(text + ("\n" if text and not text.endswith("\n") else ""))
        lab.save()
        return 0
    if a.cmd == "fault":
        return _fault(lab, a, out)
    if a.cmd == "serve":
        return _serve(lab, a, out)
    getattr(lab, a.cmd)(a.host)                 # flush, stop, start, reload
    return 0
