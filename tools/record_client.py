"""What recorders of real Postfix share (tools/record_smtp_tls.py, record_smtp_sasl.py,
record_remote_bounce.py, record_etrn.py, record_auth.py): talking SMTP to the instance's
smtpd over a socket, and recording every case of a list.

Imported by the recorders next to it (``import record_client as rc``); not a tool of its own.
"""
from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


# -- talking SMTP -----------------------------------------------------------------------------
def _read_reply(sock: socket.socket, buf: bytearray) -> tuple[str, bool]:
    """One whole reply (through its final ``ddd `` line); (text, closed)."""
    out = bytearray()
    while True:
        nl = buf.find(b"\n")
        if nl >= 0:
            line = bytes(buf[:nl + 1])
            del buf[:nl + 1]
            out += line
            if re.match(rb"\d{3}(?: |\r?\n)", line):
                return out.decode("latin-1"), False
            continue
        chunk = sock.recv(65536)
        if not chunk:
            return out.decode("latin-1"), True
        buf += chunk


def run_dialogue(port: int, steps: list[str | None]) -> list[dict]:
    """Send each step, read one reply; the dialogue in tests/golden/notify's form."""
    out = []
    buf = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        for send in steps:
            if send is not None:
                sock.sendall(send.encode("latin-1"))
            reply, closed = _read_reply(sock, buf)
            step = {"send": send, "reply": reply, "n_replies": 1 if reply else 0}
            if send == "QUIT\r\n":
                closed = closed or not sock.recv(1)
            if closed:
                step["closed"] = True
            out.append(step)
            if closed:
                break
    return out


def read_text_reply_closed(sock, buf: bytearray, timeout: float | None = None,
                           errors: tuple[type[BaseException], ...] = ()) -> tuple[str, bool]:
    """One complete (possibly multi-line) reply; at the end of the stream what is left and
    True (closed), on one of ``errors`` while reading what is left and False.
    ``timeout``: set on the socket first."""
    if timeout is not None:
        sock.settimeout(timeout)
    while True:
        text = bytes(buf).decode("latin-1")
        pos = 0
        for line in text.splitlines(keepends=True):
            if not line.endswith("\n"):
                break
            pos += len(line)
            if len(line) < 4 or line[3:4] != "-":
                del buf[:pos]
                return text[:pos], False
        try:
            chunk = sock.recv(65536)
        except errors:
            out = bytes(buf).decode("latin-1")
            buf.clear()
            return out, False
        if not chunk:
            out = bytes(buf).decode("latin-1")
            buf.clear()
            return out, True
        buf.extend(chunk)


def read_text_reply(sock, buf: bytearray, timeout: float | None = None,
                    errors: tuple[type[BaseException], ...] = ()) -> str:
    """One complete (possibly multi-line) reply; at the end of the stream (or on one of
    ``errors`` while reading) what is left. ``timeout``: set on the socket first."""
    return read_text_reply_closed(sock, buf, timeout, errors)[0]


# -- recording the cases ----------------------------------------------------------------------
def record_cases(args: argparse.Namespace, cases: list[dict], record: Callable[[dict, str], dict],
                 prepare: Callable[[], None] | None = None,
                 show: Callable[[BaseException], str] = repr) -> int:
    """Record each case (``args.only``: just those) into ``args.out``/ID.json and
    logs/ID.log with ``record(case, postfix_version)``; keep going past a failure and say
    which failed. ``prepare`` runs once real Postfix is known to be there; ``show`` is how a
    failure is printed. The exit status."""
    from mailsim.realpostfix import unavailable
    why = unavailable()
    if why:
        print(f"cannot record: {why}", file=sys.stderr)
        return 1
    if prepare is not None:
        prepare()
    version = subprocess.run(["postconf", "-dh", "mail_version"], capture_output=True,
                             text=True, check=True).stdout.strip()
    out: Path = args.out
    (out / "logs").mkdir(parents=True, exist_ok=True)
    failed = []
    for case in cases:
        if args.only and case["id"] not in args.only:
            continue
        t = time.monotonic()
        try:
            rec = record(case, version)
        except Exception as e:            # keep going, say which failed
            failed.append(case["id"])
            print(f"!! {case['id']}: {show(e)}", flush=True)
            continue
        with open(out / f"{case['id']}.json", "w") as f:
            json.dump(rec, f, indent=1)
            f.write("\n")
        (out / "logs" / f"{case['id']}.log").write_text("\n".join(rec["log"]) + "\n")
        print(f"{case['id']} ({time.monotonic() - t:.1f} s)"
              f"{' ' + rec['notes'] if rec['notes'] else ''}", flush=True)
    if failed:
        print("FAILED: " + ", ".join(failed), flush=True)
        return 1
    return 0
