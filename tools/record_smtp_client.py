#!/usr/bin/env python3
"""Record what real Postfix 3.7's SMTP client (smtp(8)) sends and logs.

For every case below: configure the machine's Postfix (base-main.cf of the
corpus, relayhost = [127.0.0.1]:2527 and the case's settings), submit one
message to it over SMTP on 127.0.0.1:25, and let its smtp(8) deliver that
message to a scripted peer (mailsim/smtp/peer.py) on 127.0.0.1:2527 that
answers as the case says and records every byte the client sends. Saves one
JSON per case in tests/golden/smtp-client/: the submission, the peer's
transcript of Postfix's client and Postfix's log lines.

Needs root; run it under the shared lock, because other recorders use the
same Postfix:

    flock /tmp/postfix-record.lock python3 tools/record_smtp_client.py [--only ID ...]

Everything it changes is put back when it ends, also on an exception or a
signal: it uses tools/record_postfix.py's Machine (which restores
/etc/postfix, /etc/aliases, /etc/resolv.conf, users, /var/mail, the spool and
the log). Network: Postfix listens on 127.0.0.1 only, the peer on
127.0.0.1:2527, /etc/resolv.conf points at 127.0.0.1 while recording, and a
small DNS stub on 127.0.0.1:53 (UDP) answers NXDOMAIN to every query (SERVFAIL
for the "dns-down" cases), so a name lookup ends on this machine and nothing
leaves it.

Standard library only.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "mailsim" / "smtp"))

import record_postfix as rp  # noqa: E402
from peer import Script, ScriptedServer  # noqa: E402

OUT = REPO / "tests/golden/smtp-client"
PEER_PORT = 2527
RELAYHOST = f"[127.0.0.1]:{PEER_PORT}"

BODY = ("Hello,\r\n"
        "this is a test message.\r\n")


def message(case_id: str, to: str = "user@other.org", body: str = BODY,
            extra_headers: str = "") -> str:
    return ("From: alice@example.com\r\n"
            f"To: {to}\r\n"
            f"Subject: {case_id}\r\n"
            "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
            f"Message-ID: <{case_id}@client.example.org>\r\n"
            f"{extra_headers}"
            "\r\n" + body + ".\r\n")


LONG = "x" * 1200
EXACT = "y" * 998
FOLD_BODY = (".a line that starts with a dot\r\n"
             "..two dots\r\n"
             f"{EXACT}\r\n"
             f"{LONG}\r\n"
             f".{'z' * 1000}\r\n"
             "last line\r\n")
UTF8_BODY = "Gr\u00fc\u00dfe aus K\u00f6ln\r\n"

NO_EXTENSIONS = ["peer.example", "SIZE 10240000"]

#: id, title, main_cf overrides, peer script, submission
CASES: list[dict] = [
    {"id": "pipelining", "title": "peer offers PIPELINING: MAIL, RCPTs and DATA in one write; "
     "end of data and QUIT in one write",
     "rcpts": ["user@other.org", "user2@other.org"]},
    {"id": "no-pipelining", "title": "peer without PIPELINING, DSN and enhanced status codes; "
     "smtp_skip_quit_response = no",
     "main_cf": {"smtp_skip_quit_response": "no"},
     "script": {"ehlo": NO_EXTENSIONS, "mail": "250 Ok", "rcpt_default": "250 Ok",
                "rcpt": {"user2@other.org": "550 No such user here"},
                "dot": "250 Ok: queued as 4A1B2C3D4E", "quit": "221 Bye"},
     "rcpts": ["user@other.org", "user2@other.org"]},
    {"id": "dsn", "title": "DSN: RET, ENVID, NOTIFY and ORCPT passed on to a DSN peer",
     "mail_params": "RET=HDRS ENVID=env+2Bid+3D1",
     "rcpts": [("user@other.org", "NOTIFY=FAILURE,SUCCESS ORCPT=rfc822;User@Other.org"),
               ("user2@other.org", "")]},
    {"id": "8bitmime", "title": "BODY=8BITMIME from the client, 8-bit body, peer offers 8BITMIME",
     "mail_params": "BODY=8BITMIME", "body": UTF8_BODY,
     "extra_headers": "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Content-Transfer-Encoding: 8bit\r\n"},
    {"id": "line-folding", "title": "dot-stuffing and smtp_line_length_limit (998) folding",
     "body": FOLD_BODY},
    {"id": "rcpt-mixed", "title": "one recipient accepted, one 550, one 450",
     "script": {"rcpt": {
         "user2@other.org": "550 5.1.1 <user2@other.org>: Recipient address rejected: User unknown",
         "user3@other.org": "450 4.7.1 <user3@other.org>: Recipient address rejected: Greylisted"}},
     "rcpts": ["user@other.org", "user2@other.org", "user3@other.org"]},
    {"id": "rcpt-all-rejected", "title": "every recipient rejected: RSET and QUIT",
     "script": {"rcpt_default": "550 5.1.1 Recipient address rejected: User unknown",
                "data": "554 5.5.1 Error: no valid recipients"},
     "rcpts": ["user@other.org", "user2@other.org"]},
    {"id": "mail-rejected", "title": "MAIL FROM answered 451 by a peer without PIPELINING",
     "script": {"ehlo": NO_EXTENSIONS, "mail": "451 4.3.0 <alice@example.com>: Temporary lookup failure"}},
    {"id": "data-rejected", "title": "DATA answered 451",
     "script": {"data": "451 4.3.0 Error: queue file write error"}},
    {"id": "dot-rejected", "title": "multi-line 554 after the end of data",
     "script": {"dot": "554 5.7.1 Message rejected as spam\n5.7.1 See https://peer.example/why"},
     "rcpts": ["user@other.org", "user2@other.org"]},
    {"id": "greeting-421", "title": "421 greeting: deferred, QUIT still sent",
     "script": {"greeting": "421 4.3.2 Service not available, closing transmission channel"}},
    {"id": "greeting-554", "title": "554 greeting: deferred (smtp_skip_5xx_greeting = yes)",
     "script": {"greeting": "554 5.7.1 No SMTP service here"}},
    {"id": "ehlo-rejected", "title": "EHLO rejected with 502: HELO, then plain SMTP",
     "script": {"ehlo": "502 5.5.2 Error: command not recognized"}},
    {"id": "never-ehlo", "title": "smtp_never_send_ehlo = yes",
     "main_cf": {"smtp_never_send_ehlo": "yes"}},
    {"id": "greeting-timeout", "title": "silent peer: smtp_helo_timeout = 2s expires",
     "main_cf": {"smtp_helo_timeout": "2s"}, "script": {"greeting": None}},
    {"id": "lost-after-mail", "title": "peer hangs up after MAIL FROM",
     "script": {"close_after": "MAIL"}},
    {"id": "size-limit", "title": "peer's SIZE limit is smaller than the message",
     "script": {"ehlo": ["peer.example", "PIPELINING", "SIZE 100", "8BITMIME"]}},
    {"id": "relayhost-not-found", "title": "relayhost = [nosuch.example.invalid]: native lookup fails",
     "main_cf": {"relayhost": "[nosuch.example.invalid]"}, "peer": False},
    {"id": "nexthop-not-found", "title": "no relayhost, recipient domain does not resolve (native)",
     "main_cf": {"relayhost": ""}, "rcpts": ["user@nosuch.example.invalid"], "peer": False},
    {"id": "nexthop-not-found-dns", "title": "no relayhost, DNS lookups on, domain does not exist",
     "main_cf": {"relayhost": "", "smtp_dns_support_level": "enabled", "smtp_host_lookup": "dns"},
     "rcpts": ["user@nosuch.example.invalid"], "peer": False},
    {"id": "relayhost-not-found-dns", "title": "relayhost = [nosuch.example.invalid], DNS lookups on",
     "main_cf": {"relayhost": "[nosuch.example.invalid]", "smtp_dns_support_level": "enabled",
                 "smtp_host_lookup": "dns"}, "peer": False},
    # the DNS server answers SERVFAIL: what a machine without a working resolver sees
    {"id": "relayhost-dns-down", "title": "relayhost = [nosuch.example.invalid], DNS server fails",
     "main_cf": {"relayhost": "[nosuch.example.invalid]"}, "peer": False, "dns": "servfail"},
    {"id": "nexthop-dns-down", "title": "no relayhost, native lookup, the DNS server fails",
     "main_cf": {"relayhost": ""}, "rcpts": ["user@nosuch.example.invalid"], "peer": False,
     "dns": "servfail"},
    {"id": "nexthop-dns-down-dns", "title": "no relayhost, DNS lookups on, the DNS server fails",
     "main_cf": {"relayhost": "", "smtp_dns_support_level": "enabled", "smtp_host_lookup": "dns"},
     "rcpts": ["user@nosuch.example.invalid"], "peer": False, "dns": "servfail"},
    {"id": "relayhost-dns-down-dns", "title": "relayhost = [nosuch.example.invalid], DNS lookups "
     "on, the DNS server fails",
     "main_cf": {"relayhost": "[nosuch.example.invalid]", "smtp_dns_support_level": "enabled",
                 "smtp_host_lookup": "dns"}, "peer": False, "dns": "servfail"},
]


# --------------------------------------------------------------------------
# A DNS stub: NXDOMAIN for every question (so lookups end on this machine)
# --------------------------------------------------------------------------

class NxdomainStub:
    """Answers every query with ``rcode`` (3 NXDOMAIN; 2 SERVFAIL: "try again")."""

    def __init__(self, addr: str = "127.0.0.1", port: int = 53) -> None:
        self.rcode = 3
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, port))
        self.sock.settimeout(0.5)
        self.queries: list[str] = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @staticmethod
    def qname(pkt: bytes) -> str:
        labels, i = [], 12
        while i < len(pkt) and pkt[i]:
            n = pkt[i]
            labels.append(pkt[i + 1:i + 1 + n].decode("latin-1"))
            i += 1 + n
        qtype = int.from_bytes(pkt[i + 1:i + 3], "big") if i + 3 <= len(pkt) else 0
        return ".".join(labels) + f" type={qtype}"

    def run(self) -> None:
        while not self.stop:
            try:
                pkt, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(pkt) < 12:
                continue
            self.queries.append(self.qname(pkt))
            end = 12                          # the question: name, type, class
            while end < len(pkt) and pkt[end]:
                end += 1 + pkt[end]
            question = pkt[12:end + 5]
            flags = bytes([0x80 | (pkt[2] & 0x79),   # QR, the query's opcode and RD
                           0x80 | self.rcode])       # RA, the answer code
            reply = pkt[:2] + flags + b"\0\1" + b"\0\0" * 3 + question
            try:
                self.sock.sendto(reply, peer)
            except OSError:
                pass

    def close(self) -> None:
        self.stop = True
        self.sock.close()


# --------------------------------------------------------------------------

def submission(case: dict) -> list[dict]:
    """The dialogue with Postfix's smtpd on 127.0.0.1:25."""
    rcpts = case.get("rcpts", ["user@other.org"])
    mp = case.get("mail_params", "")
    steps: list = ["EHLO client.example.org\r\n",
                   f"MAIL FROM:<alice@example.com>{' ' + mp if mp else ''}\r\n"]
    first = None
    for r in rcpts:
        addr, params = (r, "") if isinstance(r, str) else r
        first = first or addr
        steps.append(f"RCPT TO:<{addr}>{' ' + params if params else ''}\r\n")
    steps.append("DATA\r\n")
    to = ", ".join(r if isinstance(r, str) else r[0] for r in rcpts)
    steps.append(message(case["id"], to, case.get("body", BODY), case.get("extra_headers", "")))
    steps.append("QUIT\r\n")
    return rp.normalise_steps(steps)


def wait_for_delivery(offset: int, begin: str, timeout: float = 20.0) -> None:
    """Until smtp(8) has logged a status for the message (or given up)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        lines = rp.log_between(offset, begin, "\0never\0")
        if any("/smtp[" in ln and "status=" in ln for ln in lines):
            return
        time.sleep(0.1)


def record(case: dict, machine: rp.Machine, version: str) -> dict:
    cid = case["id"]
    main_cf = {"relayhost": RELAYHOST, **case.get("main_cf", {})}
    sc = {"id": cid, "main_cf": main_cf}
    machine.stop_postfix()
    rp.write_config(sc, machine)
    rp.run(["postsuper", "-d", "ALL"], check=False)
    rp.clear_mail()
    rp.postfix_start(machine)

    script = Script.from_dict({**Script().to_dict(), **case.get("script", {})})
    peer = ScriptedServer(script, port=PEER_PORT) if case.get("peer", True) else None
    try:
        token = uuid.uuid4().hex[:12]
        begin, endm = f"record-begin-{cid}-{token}", f"record-end-{cid}-{token}"
        offset = rp.log_offset()
        rp.mark(begin)
        rp.wait_log_contains(begin, offset)
        dialogue, notes = rp.run_dialogue(submission(case))
        wait_for_delivery(offset, begin)
        note = rp.settle(offset, begin)
        if note:
            notes.append(note)
        if peer is not None:
            peer.wait_idle(15)
        time.sleep(0.5)
        rp.mark(endm)
        rp.wait_log_contains(endm, offset)
        lines = rp.log_between(offset, begin, endm)
    finally:
        if peer is not None:
            peer.close()
    rp.run(["postsuper", "-d", "ALL"], check=False)
    return {
        "id": cid,
        "title": case["title"],
        "postfix_version": version,
        "main_cf": main_cf,
        "peer": f"127.0.0.1:{PEER_PORT}" if peer is not None else None,
        "script": script.to_dict() if peer is not None else None,
        "submit": dialogue,
        "sessions": peer.sessions if peer is not None else [],
        "log": lines,
        "dns_answer": "SERVFAIL" if case.get("dns") == "servfail" else "NXDOMAIN",
        "notes": " ".join(notes),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    cases = [c for c in CASES if not args.only or c["id"] in args.only]
    machine = rp.take_machine((rp.SMTP_PORT, PEER_PORT), restore_at_exit=True)
    args.out.mkdir(parents=True, exist_ok=True)
    dns = None
    failed = []
    try:
        machine.backup()
        machine.point_resolver_at_loopback()
        dns = NxdomainStub()
        machine.create_users()
        rp.run(["postconf", "-F", "*/*/chroot = n"])
        version = rp.run(["postconf", "-dh", "mail_version"]).stdout.strip()
        for n, case in enumerate(cases, 1):
            t = time.monotonic()
            dns.rcode = 2 if case.get("dns") == "servfail" else 3
            try:
                result = record(case, machine, version)
            except Exception as e:  # keep going, say which failed
                failed.append(case["id"])
                rp.log(f"!! {case['id']}: {e}")
                continue
            result["dns_queries"] = list(dns.queries)
            dns.queries.clear()
            with open(args.out / f"{case['id']}.json", "w") as f:
                json.dump(result, f, indent=1)
                f.write("\n")
            rp.log(f"[{n}/{len(cases)}] {case['id']} ({time.monotonic() - t:.1f} s)")
            for ln in result["log"]:
                if "/smtp[" in ln:
                    rp.log("    " + ln.split(": ", 1)[1])
    except KeyboardInterrupt as e:
        rp.log(f"interrupted ({e})")
        failed.append("<interrupted>")
    finally:
        if dns is not None:
            dns.close()
        machine.restore()
    if failed:
        rp.log("FAILED: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
