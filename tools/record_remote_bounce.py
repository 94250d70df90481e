#!/usr/bin/env python3
"""Record the non-delivery reports real Postfix 3.7 writes when a *remote* SMTP
server refuses mail (smtp(8) -> bounce(8)).

For every case below: start a private instance of the machine's Postfix
(:func:`mailsim.realpostfix.postfix_instance`, ``postfix -c DIR``: its own
main.cf, queue and log, on 127.0.0.1:PORT; /etc/postfix is never touched)
with ``transport_maps = inline:{ example.org=smtp:[127.0.0.1]:SINKPORT }``,
where a scripted SMTP server (mailsim/smtp/peer.py) answers as the case says
and keeps a transcript of what Postfix's smtp(8) sent. One message from
``carol@real.example`` is submitted over SMTP; smtp(8) hands it to the peer,
which refuses (part of) it -- at the greeting, MAIL FROM, RCPT TO, DATA or the
end of data, for good (5xx) or for now (4xx, with maximal_queue_lifetime = 0 so
the message expires at once); bounce(8) returns a notification to carol, which
the instance's virtual(8) delivers into its ``vmail/carol`` mbox. One case
(relayed-success) is the "relayed" success report instead: NOTIFY=SUCCESS to a
server that does not offer DSN.

Saved per case, as JSON in tests/golden/remote-bounce/ID.json (plus
logs/ID.log), in the style of tests/golden/notify/: the settings, the
submission dialogue, the peer's script and transcript ("remote"), the
instance's log lines from the submission on, and every mailbox (carol's
holds the bounce as received, the whole mbox entry).

Needs root (Postfix's master runs as root). Network: everything is on
127.0.0.1; the instance does no DNS (smtp_host_lookup = native,
disable_dns_lookups = yes).

    .venv/bin/python tools/record_remote_bounce.py [--only ID ...]
"""
from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from mailsim.realpostfix import DOMAIN, RealPostfix, postfix_instance  # noqa: E402
from mailsim.serve import free_port  # noqa: E402
from mailsim.smtp.peer import Script, ScriptedServer  # noqa: E402
import record_client as rc  # noqa: E402  (the recorders' shared pieces, next to us)
from record_client import run_dialogue  # noqa: E402

OUT = REPO / "tests/golden/remote-bounce"
SENDER = f"carol@{DOMAIN}"
EHLO = "EHLO client.example.org\r\n"
DATE = "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"

#: what Postfix's smtpd answers to DATA when no recipient was accepted
NO_RCPTS = "554 5.5.1 Error: no valid recipients"

LONG_550 = ("550 5.1.1 <petre@example.org>: Recipient address rejected: User unknown in "
            "local recipient table")

#: id, title, recipients, peer script (over Script's defaults), main.cf settings,
#: next hop host ("[HOST]:PORT" in transport_maps; 127.0.0.1 unless said)
CASES: list[dict] = [
    dict(id="rcpt-550", title="RCPT TO refused with a long 550 5.1.1 (Diagnostic-Code folds)",
         rcpts=["petre@example.org"],
         script={"rcpt": {"petre@example.org": LONG_550}, "data": NO_RCPTS}),
    dict(id="rcpt-550-named", title="as rcpt-550, the next hop named [localhost]: "
                                    "Remote-MTA is the server's name, not its address",
         rcpts=["petre@example.org"], nexthop="localhost",
         script={"rcpt": {"petre@example.org": LONG_550}, "data": NO_RCPTS}),
    dict(id="rcpt-550-no-enhanced", title="RCPT TO refused with a 550 without an enhanced "
                                          "status code (Status: 5.0.0)",
         rcpts=["petre@example.org"],
         script={"rcpt": {"petre@example.org": "550 No such user here"}, "data": NO_RCPTS}),
    dict(id="dot-554", title="end of data refused with a multi-line 554 5.7.1",
         rcpts=["petre@example.org"],
         script={"dot": "554 5.7.1 Message rejected as spam\n"
                        "5.7.1 See https://mx.example.org/why for the reason"}),
    dict(id="mail-553", title="MAIL FROM refused with 553 5.7.1: every recipient bounces",
         rcpts=["petre@example.org", "paul@example.org"],
         script={"mail": f"553 5.7.1 <{SENDER}>: Sender address rejected: not owned by user "
                         "carol",
                 # what a Postfix server says to the pipelined commands that follow
                 "rcpt_default": "503 5.5.1 Error: need MAIL command",
                 "data": "503 5.5.1 Error: need RCPT command"}),
    dict(id="rcpt-mixed", title="two recipients: one refused with 550 5.1.1, one accepted",
         rcpts=["petre@example.org", "paul@example.org"],
         script={"rcpt": {"petre@example.org": LONG_550}}),
    dict(id="rcpt-450-expired", title="RCPT TO answered 450 4.2.0 (greylisting); with "
                                      "maximal_queue_lifetime = 0 the message expires at once",
         rcpts=["petre@example.org"],
         main_cf={"maximal_queue_lifetime": "0"},
         script={"rcpt": {"petre@example.org": "450 4.2.0 <petre@example.org>: Recipient "
                                               "address rejected: Greylisted, see "
                                               "https://postgrey.example.org/help/example.org"},
                 "data": NO_RCPTS}),
    dict(id="data-554", title="the DATA command refused with 554 5.7.1 (the recipient was "
                              "accepted)",
         rcpts=["petre@example.org"],
         script={"data": "554 5.7.1 Service unavailable; client [127.0.0.1] blocked using "
                         "bl.example.net"}),
    dict(id="greeting-554-expired", title="554 greeting (smtp_skip_5xx_greeting: deferred "
                                          "4.7.1); maximal_queue_lifetime = 0 expires it",
         rcpts=["petre@example.org"],
         main_cf={"maximal_queue_lifetime": "0"},
         script={"greeting": "554 5.7.1 mx.example.org ESMTP not accepting mail from you"}),
    dict(id="relayed-success", title="NOTIFY=SUCCESS to a server without DSN: the "
                                     "\"relayed\" success report",
         rcpts=[("petre@example.org", "NOTIFY=SUCCESS,FAILURE")],
         script={"ehlo": ["peer.example", "PIPELINING", "SIZE 10240000",
                          "ENHANCEDSTATUSCODES", "8BITMIME"]}),
]


def _addr(r: str | tuple[str, str]) -> str:
    return r if isinstance(r, str) else r[0]


def _rcpt(r: str | tuple[str, str]) -> str:
    """``RCPT TO:<addr>`` with the recipient's ESMTP parameters, if any."""
    addr, params = (r, "") if isinstance(r, str) else r
    return f"RCPT TO:<{addr}>{' ' + params if params else ''}\r\n"


def message(case_id: str, rcpts: list[str]) -> str:
    return (f"From: Carol <{SENDER}>\r\nTo: {', '.join(rcpts)}\r\n"
            f"Subject: {case_id}\r\n{DATE}"
            f"Message-ID: <{case_id}@client.example.org>\r\n\r\n"
            "Hello,\r\nthis is a test message.\r\n.\r\n")


def submission(case: dict) -> list[str | None]:
    """The commands sent to the instance's smtpd (None: read the greeting)."""
    return [None, EHLO, f"MAIL FROM:<{SENDER}>\r\n",
            *[_rcpt(r) for r in case["rcpts"]],
            "DATA\r\n", message(case["id"], [_addr(r) for r in case["rcpts"]]), "QUIT\r\n"]


def settled(pf: RealPostfix, since: int) -> bool:
    """Every queue id that appeared since the submission has been removed."""
    lines = pf.log()[since:]
    ids = {m.group(1) for ln in lines
           if (m := re.search(r"postfix/\w+\[\d+\]: ([0-9A-F]{8,}): ", ln))}
    removed = {m.group(1) for ln in lines if (m := re.search(r": ([0-9A-F]{8,}): removed$", ln))}
    return bool(ids) and ids <= removed


def record(case: dict, version: str) -> dict:
    script = Script.from_dict({**Script().to_dict(), **case.get("script", {})})
    with ScriptedServer(script) as peer:
        nexthop = f"[{case.get('nexthop', '127.0.0.1')}]:{peer.port}"
        main_cf = {"transport_maps": f"inline:{{ example.org=smtp:{nexthop} }}",
                   **case.get("main_cf", {})}
        port = free_port()
        with postfix_instance(port, main_cf) as pf:
            effective = subprocess.run(
                ["postconf", "-c", str(pf.config_directory), "-n"],
                capture_output=True, text=True, check=True).stdout
            effective = effective.replace(str(pf.base), "$BASE")
            # postfix_instance's start-up lines (master, and the smtpd that saw its
            # port probe) are not part of the case
            pf.wait_for("commands=0/0")
            time.sleep(0.3)
            since = len(pf.log())
            dialogue = run_dialogue(port, submission(case))
            end = time.monotonic() + 60
            while not settled(pf, since) and time.monotonic() < end:
                time.sleep(0.1)
            notes = [] if settled(pf, since) else ["the queue did not settle within 60 s"]
            peer.wait_idle(15)
            time.sleep(1.0)                   # late lines (the bounce's delivery, removed)
            log = pf.log()[since:]
            vmail = pf.base / "vmail"
            mailboxes = {p.name: p.read_text("latin-1") for p in sorted(vmail.iterdir())
                         if p.is_file()}
            base = str(pf.base)
    return {
        "id": case["id"], "title": case["title"], "postfix_version": version,
        "hostname": socket.gethostname(),
        "instance_base": base,
        "main_cf": main_cf, "main_cf_effective": effective,
        "users": ["carol", "dave"],
        "peer": f"127.0.0.1:{peer.port}",
        "instance_port": port,
        "script": script.to_dict(),
        "sessions": [{"rcpts": [_addr(r) for r in case["rcpts"]], "dialogue": dialogue}],
        "remote": peer.sessions,
        "log": log,
        "mailboxes": mailboxes,
        "notes": " ".join(notes),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    return rc.record_cases(args, CASES, record, show=str)


if __name__ == "__main__":
    sys.exit(main())
