#!/usr/bin/env python3
"""Record what virtual(8) of the real Postfix on this machine does: delivery
into mbox files and Maildirs under virtual_mailbox_base, an unknown user in a
virtual mailbox domain after the message was accepted, the mailbox size
limit, and the uid/gid table checks; and what cleanup(8) does with
virtual_alias_maps (one-to-many, duplicates, self-mapping, loops, limits,
extensions, @domain results) and canonical maps (envelope and headers, local
and remote header rewriting).

Writes one JSON file per scenario to tests/golden/virtual/ (plus
logs/<id>.log): the setup (main.cf overrides, tables), the SMTP sessions sent
(one message per session; the queue settles in between), the log, /var/mail,
every file that appeared under /var/vmail (Maildir file names included), the
queue at the end and the machine's host name (part of Maildir file names).

Needs root. Reuses tools/record_postfix.py's Machine, which puts back
/etc/postfix, /etc/aliases(.db), /etc/resolv.conf, the account files,
/var/mail, the spool and the log, and removes the users it created. This
script also removes /var/vmail, which it creates (it refuses to run if
/var/vmail exists). Postfix listens on 127.0.0.1 only; the relayhost is the
loopback smtp-sink.

    flock /tmp/postfix-record.lock python3 tools/record_virtual.py [--only ID ...]
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import record_postfix as rp  # noqa: E402

OUT = rp.REPO / "tests/golden/virtual"
VMAIL = Path("/var/vmail")
VUID = 5000
EHLO = "EHLO client.example.org\r\n"
DATE = "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"


def message(rcpts: list[str], subject: str, msgid: str, body: str = "",
            sender: str = "alice@example.com", headers: str | None = None) -> dict:
    """One SMTP session that sends one message (``headers``: the whole header block)."""
    body = body or "Hello,\r\nFrom the virtual test.\r\n"
    if headers is None:
        headers = (f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n{DATE}"
                   f"Message-ID: <{msgid}@client.example.org>\r\n")
    data = f"{headers}\r\n{body}.\r\n"
    steps = [EHLO, f"MAIL FROM:<{sender}>\r\n"]
    steps += [f"RCPT TO:<{r}>\r\n" for r in rcpts]
    steps += ["DATA\r\n", data, "QUIT\r\n"]
    return {"rcpts": rcpts, "steps": steps}


ALIAS_TABLE = """\
team@sue.nl      peter, gerda, team2@sue.nl
team2@sue.nl     gerda, bob
info@sue.nl      petra
loop1@sue.nl     loop2@sue.nl
loop2@sue.nl     loop1@sue.nl
big@sue.nl       a1, a2, a3, a4, a5, a6, a7
marc@example.com marc@example.com, jim
@old.nl          @example.com
@sue.nl          jim
"""
CANON_HEADERS = (
    "From: Alice <alice@example.com>\r\n"
    "Sender: bob@client.example.org\r\n"
    "Reply-To: alice\r\n"
    "To: pp@example.com, Gerda G <gerda.g@example.com>, jim\r\n"
    'Cc: "Smith, J" <jim@old.example.com> (Jim),\r\n list: pp@example.com, gerda.g; ,\r\n'
    "\tmarc@mail\r\n"
    "Resent-To: pp@example.com, pp@example.com, pp@example.com, pp@example.com, jim\r\n"
    "Subject: canonical headers\r\n" + DATE +
    "Message-ID: <cn-1@client.example.org>\r\n")
BARE_HEADERS = "To: peter, gerda@mail\r\nFrom: alice\r\nSubject: no date, no id\r\n"
CANON_FILES = {"sender_canonical": "alice@example.com    alice.smith@example.com\n"
                                   "@client.example.org  @example.com\n",
               "recipient_canonical": "pp@example.com       peter@example.com\n"
                                      "@old.example.com     @example.com\n",
               "canonical": "gerda.g@example.com  gerda@example.com\n"}
CANON_CF = {"sender_canonical_maps": "hash:/etc/postfix/sender_canonical",
            "recipient_canonical_maps": "hash:/etc/postfix/recipient_canonical",
            "canonical_maps": "hash:/etc/postfix/canonical"}
CANON_RCPTS = ["pp@example.com", "gerda.g@example.com", "jim@old.example.com"]


BASE = {
    "virtual_mailbox_domains": "vmail.example.net",
    "virtual_mailbox_base": "/var/vmail",
    "virtual_mailbox_maps": "hash:/etc/postfix/vmailbox",
    "virtual_uid_maps": f"static:{VUID}",
    "virtual_gid_maps": f"static:{VUID}",
}
VMAILBOX = ("anna@vmail.example.net   vmail.example.net/anna\n"
            "bert@vmail.example.net   vmail.example.net/bert/\n"
            "carl@vmail.example.net   missing.example.net/carl\n"
            "dora@vmail.example.net   other.example.net/dora/\n")
BIG = "".join(f"line {i:04d} " + "x" * 60 + "\r\n" for i in range(90))   # ~6.3 kB

SCENARIOS = [
    dict(id="virtual-mailbox",
         title="virtual(8): mbox and Maildir delivery, extension, alias into a mailbox, "
               "missing mbox directory, new Maildir directory, unknown user after acceptance",
         main_cf={**BASE, "recipient_delimiter": "+",
                  "virtual_alias_maps": "hash:/etc/postfix/virtual",
                  "smtpd_reject_unlisted_recipient": "no"},
         files={"vmailbox": VMAILBOX,
                "virtual": "info@vmail.example.net   anna@vmail.example.net\n"},
         messages=[message(["anna@vmail.example.net"], "mbox delivery", "vm-1",
                           body="Hello,\r\nFrom the virtual test.\r\n>From quoted already\r\n"),
                   message(["bert@vmail.example.net"], "maildir delivery", "vm-2",
                           body="Hello,\r\nFrom the virtual test.\r\n"),
                   message(["anna+news@vmail.example.net", "bert@vmail.example.net"],
                           "two recipients, one with an extension", "vm-3"),
                   message(["info@vmail.example.net"], "virtual alias to a mailbox", "vm-4"),
                   message(["carl@vmail.example.net"], "mbox directory missing", "vm-5"),
                   message(["dora@vmail.example.net"], "maildir directories created", "vm-6"),
                   message(["nobody@vmail.example.net"], "unknown virtual user", "vm-7")]),
    dict(id="virtual-limit",
         title="virtual_mailbox_limit: the second message does not fit the mbox",
         main_cf={**BASE, "virtual_mailbox_limit": "12000", "message_size_limit": "10000"},
         files={"vmailbox": VMAILBOX},
         messages=[message(["anna@vmail.example.net"], "first big message", "vl-1", body=BIG),
                   message(["anna@vmail.example.net"], "second big message", "vl-2", body=BIG),
                   message(["bert@vmail.example.net"], "big message to a maildir", "vl-3",
                           body=BIG)]),
    dict(id="virtual-uid",
         title="virtual_uid_maps / virtual_gid_maps: bad uid, missing uid, bad gid",
         main_cf={**BASE, "virtual_uid_maps": "hash:/etc/postfix/vuid",
                  "virtual_gid_maps": "hash:/etc/postfix/vgid"},
         files={"vmailbox": VMAILBOX,
                "vuid": f"anna@vmail.example.net {VUID}\nbert@vmail.example.net 50\n"
                        f"dora@vmail.example.net {VUID}\n",
                "vgid": f"anna@vmail.example.net {VUID}\nbert@vmail.example.net {VUID}\n"
                        "dora@vmail.example.net 0\n"},
         messages=[message(["anna@vmail.example.net"], "good uid", "vu-1"),
                   message(["bert@vmail.example.net"], "uid below virtual_minimum_uid", "vu-2"),
                   message(["carl@vmail.example.net"], "no uid", "vu-3"),
                   message(["dora@vmail.example.net"], "gid 0", "vu-4")]),
    dict(id="alias-expansion",
         title="virtual_alias_maps in cleanup: one-to-many, duplicates, self-mapping, "
               "extension, @domain result, catch-all, nesting loop, expansion limit",
         main_cf={"virtual_alias_domains": "sue.nl old.nl",
                  "virtual_alias_maps": "hash:/etc/postfix/virtual",
                  "virtual_alias_expansion_limit": "5", "recipient_delimiter": "+"},
         files={"virtual": ALIAS_TABLE},
         messages=[message(["team@sue.nl"], "one to many", "va-1"),
                   message(["team@sue.nl", "team2@sue.nl", "gerda@example.com"],
                           "duplicates", "va-2"),
                   message(["marc@example.com"], "self mapping", "va-3"),
                   message(["info+foo@sue.nl"], "extension", "va-4"),
                   message(["bob@old.nl"], "domain result", "va-5"),
                   message(["whoever@sue.nl"], "catch-all", "va-6"),
                   message(["loop1@sue.nl"], "nesting loop", "va-7"),
                   message(["big@sue.nl"], "expansion limit", "va-8")]),
    dict(id="canonical-local",
         title="canonical maps for a local client: envelope and headers, tok822 output and folding",
         main_cf=dict(CANON_CF), files=CANON_FILES,
         messages=[message(CANON_RCPTS, "", "", headers=CANON_HEADERS),
                   message(["peter@example.com"], "", "", sender="bob@client.example.org",
                           headers=BARE_HEADERS)]),
    dict(id="canonical-classes",
         title="canonical_classes / sender_canonical_classes limited to the envelope",
         main_cf={**CANON_CF, "sender_canonical_classes": "envelope_sender",
                  "canonical_classes": "header_recipient"},
         files=CANON_FILES,
         messages=[message(CANON_RCPTS, "", "", headers=CANON_HEADERS)]),
    dict(id="canonical-remote",
         title="a client outside local_header_rewrite_clients, remote_header_rewrite_domain empty",
         main_cf={**CANON_CF, "local_header_rewrite_clients": ""},
         files=CANON_FILES,
         messages=[message(CANON_RCPTS, "", "", headers=CANON_HEADERS),
                   message(["peter@example.com"], "", "", sender="bob@client.example.org",
                           headers=BARE_HEADERS)]),
    dict(id="canonical-remote-domain",
         title="a client outside local_header_rewrite_clients, remote_header_rewrite_domain set",
         main_cf={**CANON_CF, "local_header_rewrite_clients": "",
                  "remote_header_rewrite_domain": "remote.example"},
         files=CANON_FILES,
         messages=[message(CANON_RCPTS, "", "", headers=CANON_HEADERS),
                   message(["peter@example.com"], "", "", sender="bob@client.example.org",
                           headers=BARE_HEADERS)]),
]


def make_vmail() -> None:
    VMAIL.mkdir(mode=0o755)
    os.chown(VMAIL, VUID, VUID)
    d = VMAIL / "vmail.example.net"
    d.mkdir(mode=0o755)
    os.chown(d, VUID, VUID)


def remove_vmail() -> None:
    if VMAIL.is_dir() and not VMAIL.is_symlink():
        shutil.rmtree(VMAIL)


def read_vmail() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in sorted(rp.Machine._walk(VMAIL)):
        if os.path.isdir(p) and not os.path.islink(p):
            out[p + "/"] = None
        else:
            out[p] = Path(p).read_bytes().decode("latin-1")
    return out


def write_setup(sc: dict, machine: rp.Machine) -> None:
    rp.write_config({"main_cf": sc["main_cf"], "files": sc["files"]}, machine)
    remove_vmail()
    make_vmail()


def record(sc: dict, machine: rp.Machine, version: str) -> dict:
    # one message per second: Maildir file names start with the time
    r = rp.record_messages(sc, machine, write_setup, pause=1.1,
                           collect=lambda: {"vmail": read_vmail()})
    return {
        "id": sc["id"], "title": sc["title"], "postfix_version": version,
        "hostname": socket.gethostname(), "vmail_uid": VUID,
        "main_cf": sc["main_cf"], "main_cf_effective": r["effective"],
        "files": sc["files"], "users": rp.USERS, "sessions": r["sessions"],
        "log": r["log"], "mailboxes": r["mailboxes"], "vmail": r["vmail"],
        "queue": r["queue"], "notes": r["notes"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    scenarios = [s for s in SCENARIOS if not args.only or s["id"] in args.only]
    if os.path.lexists(VMAIL):
        sys.exit(f"{VMAIL} exists: not touching it")

    machine = rp.take_machine((rp.SMTP_PORT, rp.SINK_PORT), restore_at_exit=False)
    return rp.record_scenarios(machine, scenarios,
                               lambda sc, version: record(sc, machine, version),
                               args.out, cleanup=remove_vmail)


if __name__ == "__main__":
    sys.exit(main())
