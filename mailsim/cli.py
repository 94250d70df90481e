"""The ``mailsim`` command: Postfix's administration commands for a simulated host.

    mailsim init DIR [--hostname mail.example.com] [--user NAME ...]
    mailsim --root DIR postconf [-n|-d|-x|-h|-M|-e ...] [NAME ...]
    mailsim --root DIR postmap [-q KEY] [-s] TYPE:FILE
    mailsim --root DIR postalias [-q KEY] [-s] TYPE:FILE
    mailsim --root DIR newaliases
    mailsim --root DIR postfix check|status|reload|start|stop
    mailsim --root DIR mailq | postqueue -p|-j|-f | postsuper -d ID|ALL | postcat -q ID
    mailsim --root DIR sendmail [-t] [-f SENDER] [-bv|-bp|-bi|-q] [RECIPIENT ...] < MESSAGE
    mailsim --root DIR qshape [-s] [QUEUE ...] | logsumm [LOGFILE]
    mailsim --root DIR serve [--listen 127.0.0.1:2525] [--service submission=127.0.0.1:2587]
    mailsim --root DIR saslpasswd2 [-p] -c -u DOMAIN USER | sasldblistusers2
    mailsim lab LAB init|status|send|run|mailq|log|mailbox|flush|stop|start ... (see mailsim lab -h)

Each administration command takes the same options as the real one and prints
the same output; ``--root`` says which host folder it acts on (default: the
``MAILSIM_ROOT`` environment variable, else the current directory).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import TextIO

__all__ = ["main", "run_command", "COMMANDS"]

#: command name -> "module:function"; each function is
#: ``f(root: Path, argv: list[str], out: TextIO, err: TextIO) -> int``.
COMMANDS: dict[str, str] = {
    "postconf": "mailsim.conf.postconf:main",
    "postmap": "mailsim.maps.commands:postmap_main",
    "postalias": "mailsim.maps.commands:postalias_main",
    "newaliases": "mailsim.maps.commands:newaliases_main",
    "postfix": "mailsim.postfix_cmd:main",
    "postqueue": "mailsim.postqueue:main",
    "mailq": "mailsim.postqueue:mailq_main",
    "sendmail": "mailsim.sendmail:main",
    "postsuper": "mailsim.postsuper:main",
    "postcat": "mailsim.postcat:main",
    "qshape": "mailsim.qshape:main",
    "logsumm": "mailsim.logsumm:main",
    "serve": "mailsim.serve:main",
    "openssl": "mailsim.openssl_cmd:main",
    "saslpasswd2": "mailsim.sasl:saslpasswd2_main",
    "sasldblistusers2": "mailsim.sasl:sasldblistusers2_main",
    "lab": "mailsim.lab.cli:main",
}


def run_command(root: str | os.PathLike, name: str, argv: list[str],
                out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one administration command on the host at ``root``; return its exit status."""
    try:
        target = COMMANDS[name]
    except KeyError:
        raise SystemExit(f"mailsim: unknown command {name!r} (known: {', '.join(COMMANDS)})")
    mod, _, fn = target.partition(":")
    func = getattr(importlib.import_module(mod), fn)
    return func(Path(root), list(argv), out or sys.stdout, err or sys.stderr)


def _init(argv: list[str]) -> int:
    from .host import init_host
    p = argparse.ArgumentParser(prog="mailsim init",
                                description="Create a simulated Postfix host folder.")
    p.add_argument("dir")
    p.add_argument("--hostname", default="mail.example.com")
    p.add_argument("--user", action="append", default=[], help="add a local user (repeatable)")
    p.add_argument("--force", action="store_true", help="overwrite an existing host")
    a = p.parse_args(argv)
    try:
        init_host(a.dir, hostname=a.hostname, users=a.user, force=a.force)
    except FileExistsError as e:
        print(f"mailsim init: {e}; use --force to overwrite", file=sys.stderr)
        return 1
    print(f"mailsim init: created host {a.hostname} in {a.dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    root = os.environ.get("MAILSIM_ROOT", ".")
    while argv and argv[0].startswith("--root"):
        if argv[0] == "--root":
            if len(argv) < 2:
                print("mailsim: --root needs a directory", file=sys.stderr)
                return 2
            root = argv[1]
            argv = argv[2:]
        else:
            root = argv[0].split("=", 1)[1]
            argv = argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "init":
        return _init(rest)
    if cmd not in COMMANDS:
        print(f"mailsim: unknown command {cmd!r}; known: init, {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    return run_command(root, cmd, rest)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
