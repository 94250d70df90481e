"""The ``postfix`` command: check, status, start, stop, reload.

Models postfix(1) and postfix-script. ``start`` runs ``mailsim serve`` in the
background (the simulated master daemon) and ``reload`` sends it SIGHUP, so
that, as with the real server, a changed main.cf takes effect only after a
reload. The pid file is ``var/spool/postfix/pid/master.pid``.

Differences from Postfix: ``start`` listens on ``--listen`` (default
127.0.0.1:2525), not on the port of master.cf's ``smtp inet`` service, because
port 25 needs root and mailsim never does.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

__all__ = ["main", "running_pid", "check"]


def running_pid(root: Path) -> int | None:
    """The pid of a running ``mailsim serve`` for this host, or None."""
    pidfile = Path(root) / "var/spool/postfix/pid/master.pid"
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def check(root: Path) -> tuple[list[str], list[str]]:
    """What ``postfix check`` reports: (fatal errors, warnings).

    Like postfix-script's check-fatal and check-warn, it reads main.cf and
    master.cf; it never looks at lookup tables. (A ``.db`` older than its
    source is reported by the programs that open the table -- Postfix's daemons,
    ``postmap -q`` -- see :mod:`mailsim.maps.hashdb`.)
    """
    from .conf import ConfigError, read_master_cf
    from .host import Host
    errors: list[str] = []
    warnings: list[str] = []
    try:
        host = Host(root)
    except (ConfigError, FileNotFoundError) as e:
        return [str(e)], warnings
    try:
        read_master_cf(host.path("/etc/postfix/master.cf"))
    except ConfigError as e:
        errors.append(str(e))
    warnings += list(host.conf.warnings)
    try:
        for name in host.conf.explicit:            # evaluate every setting, as the daemons would
            host.conf.default(name)
            host.conf.get(name)
    except ConfigError as e:
        return [str(e)], warnings
    return errors, warnings


def main(root: Path, argv: list[str], out: TextIO, err: TextIO) -> int:
    p = argparse.ArgumentParser(prog="postfix", description="Control the simulated Postfix host.")
    p.add_argument("command", choices=["check", "status", "start", "stop", "reload", "start-fg"])
    p.add_argument("--listen", default="127.0.0.1:2525")
    a = p.parse_args(argv)
    pid = running_pid(root)
    if a.command == "check":
        errors, warnings = check(root)
        for w in warnings:
            print(f"postfix/postfix-script: warning: {w}", file=err)
        for e in errors:
            print(f"postfix: fatal: {e}", file=err)
        return 1 if errors else 0
    if a.command == "status":
        if pid:
            print(f"postfix/postfix-script: the Postfix mail system is running: PID: {pid}", file=err)
            return 0
        print("postfix/postfix-script: the Postfix mail system is not running", file=err)
        return 1
    if a.command == "reload":
        if not pid:
            print("postfix/postfix-script: fatal: the Postfix mail system is not running", file=err)
            return 1
        os.kill(pid, signal.SIGHUP)
        print("postfix/postfix-script: refreshing the Postfix mail system", file=err)
        return 0
    if a.command == "stop":
        if not pid:
            print("postfix/postfix-script: fatal: the Postfix mail system is not running", file=err)
            return 1
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if running_pid(root) is None:
                break
            time.sleep(0.1)
        print("postfix/postfix-script: stopping the Postfix mail system", file=err)
        return 0
    # start
    if pid:
        print("postfix/postfix-script: fatal: the Postfix mail system is already running", file=err)
        return 1
    errors, _ = check(root)
    if errors:
        for e in errors:
            print(f"postfix: fatal: {e}", file=err)
        return 1
    logf = open(Path(root) / "var/log/serve.out", "ab")
    subprocess.Popen([sys.executable, "-m", "mailsim", "--root", str(root), "serve", "--listen", a.listen],
                     stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, start_new_session=True)
    for _ in range(100):
        if running_pid(root):
            break
        time.sleep(0.05)
    print("postfix/postfix-script: starting the Postfix mail system", file=err)
    return 0
