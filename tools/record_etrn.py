#!/usr/bin/env python3
"""Record ETRN, the fast-flush service and ``postqueue -s`` from the real Postfix 3.7.

Runs private Postfix instances (:func:`mailsim.realpostfix.postfix_instance`:
``postfix -c DIR`` on 127.0.0.1, its own queue and log, /etc/postfix is not
touched) and writes tests/golden/etrn.json:

* ``sessions``: SMTP dialogues about ETRN -- no argument, bad syntax, a
  domain that is or is not in ``fast_flush_domains``, ``@``/``#`` prefixes,
  before HELO (also with ``smtpd_helo_required``), inside a mail transaction,
  ``smtpd_etrn_restrictions`` and the delayed client/HELO restrictions --
  each with its main.cf settings, every reply, and the smtpd log lines;
* ``standalone``: ETRN in ``sendmail -bs`` (stand-alone smtpd);
* ``flush``: a backup MX at work. The instance relays for example.org and
  example.net (transport_maps send them to two loopback ports where nothing
  listens yet); three messages are deferred; then a sink comes up for
  example.org and a client says ``ETRN example.org``; later one comes up for
  example.net and ``postqueue -s example.net`` is run. After each step the
  contents of ``$queue_directory/flush/`` (the per-destination logfiles of
  flush(8)), the deferred queue ids and the messages the sinks got are
  recorded, and at the end the whole log;
* ``postqueue``: ``postqueue -s`` / ``-i`` refusals (exit status, stderr, log).

Needs root and Debian's postfix package; connects to nothing but 127.0.0.1.
Run with the project's virtualenv (it uses mailsim.realpostfix and aiosmtpd):

    .venv/bin/python tools/record_etrn.py
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

from mailsim.lab.bridge import Sink, loopback_sink  # noqa: E402
from mailsim.realpostfix import postfix_instance, unavailable  # noqa: E402
import record_client as rc  # noqa: E402  (the recorders' shared pieces, next to us)

OUT = REPO / "tests/golden/etrn.json"
CLIENT = "client.example.org"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- talking SMTP -----------------------------------------------------------------------------
def _read_reply(sock: socket.socket, buf: bytearray, timeout: float = 30.0) -> str:
    """One complete (possibly multi-line) reply."""
    return rc.read_text_reply(sock, buf, timeout)


def dialogue(port: int, commands: list[str]) -> list[dict]:
    """Greeting, then each command (one reply each); QUIT is sent if not among them."""
    steps = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        buf = bytearray()
        steps.append({"send": None, "reply": _read_reply(sock, buf)})
        for cmd in commands:
            sock.sendall(cmd.encode("latin-1") + b"\r\n")
            steps.append({"send": cmd + "\r\n", "reply": _read_reply(sock, buf)})
        if not commands or commands[-1] != "QUIT":
            sock.sendall(b"QUIT\r\n")
            steps.append({"send": "QUIT\r\n", "reply": _read_reply(sock, buf)})
    return steps


def send_message(port: int, sender: str, rcpts: list[str], subject: str) -> str:
    cmds = [f"EHLO {CLIENT}", f"MAIL FROM:<{sender}>"] + [f"RCPT TO:<{r}>" for r in rcpts]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        buf = bytearray()
        _read_reply(sock, buf)
        for c in cmds + ["DATA"]:
            sock.sendall(c.encode() + b"\r\n")
            r = _read_reply(sock, buf)
            assert r[:1] in "23", (c, r)
        body = (f"From: <{sender}>\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n\r\n"
                "hello\r\n.\r\n")
        sock.sendall(body.encode())
        r = _read_reply(sock, buf)
        sock.sendall(b"QUIT\r\n")
        _read_reply(sock, buf)
    m = re.search(r"queued as (\S+)", r)
    assert m, r
    return m.group(1)


# -- what the instance did ------------------------------------------------------------------------
def wait_log(pf, pattern: str, count: int = 1, timeout: float = 60.0) -> None:
    rx = re.compile(pattern)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if sum(1 for ln in pf.log() if rx.search(ln)) >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {count} x {pattern!r}:\n" + "\n".join(pf.log()[-20:]))


def flush_dir(pf) -> dict[str, str]:
    d = pf.base / "spool/flush"
    return {p.name: p.read_text() for p in sorted(d.iterdir())} if d.is_dir() else {}


def queue_ids(pf, queue: str) -> list[str]:
    d = pf.base / "spool" / queue
    return sorted(p.name for p in d.rglob("*") if p.is_file()) if d.is_dir() else []


def postconf_n(pf) -> str:
    r = subprocess.run(["postconf", "-c", str(pf.config_directory), "-n"], capture_output=True,
                       text=True, check=True)
    return r.stdout.replace(str(pf.base), "BASE")


def run_cmd(pf, argv: list[str], stdin: str = "") -> dict:
    before = len(pf.log())
    r = subprocess.run(argv[:1] + ["-c" if argv[0] == "postqueue" else "-C",
                                   str(pf.config_directory)] + argv[1:],
                       input=stdin, capture_output=True, text=True, timeout=60)
    time.sleep(1.0)
    return {"argv": argv, "stdin": stdin, "rc": r.returncode, "stdout": r.stdout,
            "stderr": r.stderr, "log": pf.log()[before:]}


def settled(pf) -> int:
    """Wait until the instance has logged the end of postfix_instance's port probe (a
    connection closed right away); returns the number of log lines so far."""
    wait_log(pf, r"disconnect from localhost\[127\.0\.0\.1\] commands=0/0")
    return len(pf.log())


def smtpd_log(pf, before: int) -> list[str]:
    """The smtpd lines of the session that just ended (waits for its disconnect line)."""
    end = time.monotonic() + 30
    while not any("disconnect from" in ln for ln in pf.log()[before:]):
        if time.monotonic() > end:
            raise RuntimeError("no disconnect line:\n" + "\n".join(pf.log()[before:]))
        time.sleep(0.1)
    return [ln for ln in pf.log()[before:] if "/smtpd[" in ln]


# -- the sessions ---------------------------------------------------------------------------------
RELAY = {"relay_domains": "other.org"}

SESSIONS = [
    ("syntax", "arguments: none, two, bad syntax, @ and # prefixes, literals", RELAY,
     ["ETRN other.org", f"EHLO {CLIENT}", "ETRN", "ETRN other.org extra", "ETRN bad_domain!",
      "ETRN -x.org", "ETRN 123", "ETRN 1.2.3.4", "ETRN [1.2.3]", "ETRN @", "ETRN a..b"]),
    ("domains", "fast_flush_domains = $relay_domains: which domains are eligible", RELAY,
     [f"EHLO {CLIENT}", "ETRN other.org", "ETRN OTHER.ORG", "ETRN sub.other.org",
      "ETRN other.org.", "ETRN @other.org", "ETRN #other.org", "ETRN #x", "ETRN example.com",
      "ETRN [127.0.0.1]", "ETRN [IPv6:::1]"]),
    ("transaction", "inside a mail transaction, then after RSET", RELAY,
     [f"HELO {CLIENT}", "MAIL FROM:<alice@example.com>", "ETRN other.org", "ETRN",
      "RSET", "ETRN other.org", "NOOP"]),
    ("helo-required", "smtpd_helo_required = yes", {**RELAY, "smtpd_helo_required": "yes"},
     ["ETRN other.org", "ETRN", f"HELO {CLIENT}", "ETRN other.org"]),
    ("restrictions-reject", "smtpd_etrn_restrictions = reject (before the domain check)",
     {**RELAY, "smtpd_etrn_restrictions": "reject"},
     [f"EHLO {CLIENT}", "ETRN other.org", "ETRN example.com", "ETRN bad!", "ETRN #x"]),
    ("restrictions-mynetworks", "smtpd_etrn_restrictions = permit_mynetworks, reject",
     {**RELAY, "mynetworks": "192.0.2.0/24",
      "smtpd_etrn_restrictions": "permit_mynetworks, reject"},
     [f"EHLO {CLIENT}", "ETRN other.org"]),
    ("check-etrn-access", "check_etrn_access: REJECT, a 4xx text, OK, and a bare table",
     {**RELAY, "relay_domains": "other.org third.org example.net",
      "smtpd_etrn_restrictions": "check_etrn_access inline:{ other.org=REJECT, "
                                 "{ third.org = 450 4.7.1 not now } }, "
                                 "inline:{ { example.net = REJECT go away } }"},
     [f"EHLO {CLIENT}", "ETRN other.org", "ETRN sub.other.org", "ETRN third.org",
      "ETRN example.net", "ETRN example.com"]),
    ("delay-reject-client", "smtpd_client_restrictions = reject: ETRN applies it (delay_reject)",
     {**RELAY, "smtpd_client_restrictions": "reject"},
     [f"EHLO {CLIENT}", "ETRN other.org"]),
    ("delay-reject-helo", "a HELO restriction, applied at ETRN",
     {**RELAY, "smtpd_helo_restrictions": "reject_non_fqdn_helo_hostname"},
     ["ETRN other.org", "HELO nodots", "ETRN other.org", "ETRN example.com"]),
    ("no-delay-reject", "smtpd_delay_reject = no: the client restriction at connect time",
     {**RELAY, "smtpd_delay_reject": "no",
      "smtpd_helo_restrictions": "reject_non_fqdn_helo_hostname"},
     [f"EHLO {CLIENT}", "ETRN other.org"]),
    ("fast-flush-empty", "fast_flush_domains = (empty): nothing is eligible",
     {**RELAY, "fast_flush_domains": ""},
     [f"EHLO {CLIENT}", "ETRN other.org"]),
    ("fast-flush-explicit", "fast_flush_domains = example.net, without parent matching",
     {**RELAY, "fast_flush_domains": "example.net",
      "parent_domain_matches_subdomains": "relay_domains"},
     [f"EHLO {CLIENT}", "ETRN other.org", "ETRN example.net", "ETRN sub.example.net",
      "ETRN .example.net"]),
]


def record_sessions(out: dict) -> None:
    out["sessions"] = []
    for sid, title, main_cf, cmds in SESSIONS:
        port = free_port()
        with postfix_instance(port, main_cf) as pf:
            out.setdefault("instance_main_cf", postconf_n(pf))
            before = settled(pf)
            steps = dialogue(port, cmds)
            out["sessions"].append({"id": sid, "title": title, "main_cf": main_cf,
                                    "dialogue": steps, "log": smtpd_log(pf, before)})
        print(f"recorded session {sid}", file=sys.stderr)


def record_standalone(out: dict) -> None:
    port = free_port()
    with postfix_instance(port, RELAY) as pf:
        settled(pf)
        stdin = f"HELO {CLIENT}\r\nETRN other.org\r\nETRN\r\nETRN example.com\r\nQUIT\r\n"
        out["standalone"] = run_cmd(pf, ["sendmail", "-bs"], stdin)
    print("recorded sendmail -bs", file=sys.stderr)


# -- the backup MX -----------------------------------------------------------------------------------
def record_flush(out: dict) -> None:
    port, p_org, p_net = free_port(), free_port(), free_port()
    settings = {
        "relay_domains": "example.org example.net",
        "transport_maps": f"inline:{{ example.org=smtp:[127.0.0.1]:{p_org}, "
                          f"example.net=smtp:[127.0.0.1]:{p_net} }}",
    }
    steps: list[dict] = []
    raw: list = []                      # what the two sinks received

    def snapshot(name: str, **more) -> None:
        steps.append({"step": name, "flush": flush_dir(pf), "deferred": queue_ids(pf, "deferred"),
                      "incoming": queue_ids(pf, "incoming"), "active": queue_ids(pf, "active"),
                      "delivered": Sink(raw).received(), **more})

    with postfix_instance(port, settings) as pf:
        settled(pf)
        ids = {
            "A": send_message(port, "alice@example.com", ["peter@example.org"], "A"),
            "B": send_message(port, "alice@example.com", ["paul@example.net"], "B"),
            "C": send_message(port, "alice@example.com", ["carol@example.org", "dave@example.net"],
                              "C"),
        }
        wait_log(pf, r"status=deferred", 4)
        time.sleep(1)
        snapshot("deferred")
        with loopback_sink(p_org, raw):
            before = len(pf.log())
            etrn = dialogue(port, [f"EHLO {CLIENT}", "ETRN example.org"])
            wait_log(pf, r"status=sent", 2)
            wait_log(pf, r"status=deferred", 5)
            time.sleep(1)
            snapshot("etrn example.org", dialogue=etrn)
            etrn2 = dialogue(port, [f"EHLO {CLIENT}", "ETRN example.com", "ETRN example.org"])
            time.sleep(1)
            snapshot("etrn again", dialogue=etrn2, log=pf.log()[before:])
        with loopback_sink(p_net, raw):
            pq = run_cmd(pf, ["postqueue", "-s", "example.net"])
            wait_log(pf, r"status=sent", 4)
            time.sleep(1)
            snapshot("postqueue -s example.net", command=pq)
        pq2 = run_cmd(pf, ["postqueue", "-s", "example.net"])
        snapshot("postqueue -s example.net again", command=pq2)
        out["flush"] = {"main_cf": settings, "ports": {"smtpd": port, "example.org": p_org,
                                                        "example.net": p_net},
                        "queue_ids": ids, "steps": steps, "log": pf.log()}
    print("recorded the backup MX", file=sys.stderr)


def record_postqueue(out: dict) -> None:
    port = free_port()
    with postfix_instance(port, RELAY) as pf:
        settled(pf)
        out["postqueue"] = [run_cmd(pf, argv) for argv in (
            ["postqueue", "-s", "example.com"],
            ["postqueue", "-s", "other.org"],
            ["postqueue", "-s", "bad!"],
            ["postqueue", "-s", "[127.0.0.1]"],
            ["postqueue", "-s", "[1.2.3]"],
            ["postqueue", "-i", "BAD!ID"],
            ["postqueue", "-i", "4B2A11600F1"],
            ["sendmail", "-qRother.org"],
            ["sendmail", "-qRexample.com"],
        )]
    print("recorded postqueue", file=sys.stderr)


def main() -> int:
    import argparse
    argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0]).parse_args()
    why = unavailable()
    if why:
        print(f"record_etrn: {why}", file=sys.stderr)
        return 1
    out: dict = {"postfix_version": subprocess.run(["postconf", "-d", "-h", "mail_version"],
                                                   capture_output=True, text=True).stdout.strip(),
                 "recorder": "tools/record_etrn.py", "client": "127.0.0.1"}
    record_sessions(out)
    record_standalone(out)
    record_postqueue(out)
    record_flush(out)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
