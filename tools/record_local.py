#!/usr/bin/env python3
"""Record what local(8) of the real Postfix on this machine does with
.forward files, /file and |command destinations, maildirs, forwarding,
mail loops and unwritable mailboxes.

Writes one JSON file per scenario to tests/golden/local/ (plus
logs/<id>.log). Each file holds the setup (main.cf overrides, extra
aliases, files put into the users' homes), the SMTP sessions sent (one
message per session, the queue is left to settle in between), the log,
/var/mail, every file that appeared in the users' homes and under
/tmp/mailsim-local, and the machine's host name (it is part of maildir
file names).

Needs root. Reuses tools/record_postfix.py's Machine, which puts back
/etc/postfix, /etc/aliases(.db), /etc/resolv.conf, the account files,
/var/mail, the spool and the log, and removes the users it created with
their homes. This script also removes what it adds beyond that: the
directories it puts into /var/mail and /tmp/mailsim-local.

Postfix listens on 127.0.0.1 only; forwarded mail to remote addresses goes
to the loopback smtp-sink (relayhost = [127.0.0.1]:2526). The commands in
|command destinations are /bin/true: real Postfix runs them during the
recording (harmless); mailsim never runs anything.

Run it under the shared lock (other recorders use the same Postfix):

    flock /tmp/postfix-record.lock python3 tools/record_local.py [--only ID ...]
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

OUT = rp.REPO / "tests/golden/local"
NOTIFY_OUT = rp.REPO / "tests/golden/notify"
TMP_DIR = Path("/tmp/mailsim-local")
EHLO = "EHLO client.example.org\r\n"
DATE = "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"


def message(rcpts: list[str], subject: str, msgid: str, headers: str = "",
            sender: str = "alice@example.com") -> dict:
    """One SMTP session that sends one message."""
    body = (f"From: {sender or 'MAILER-DAEMON@client.example.org'}\r\nTo: {', '.join(rcpts)}\r\n"
            f"Subject: {subject}\r\n{DATE}"
            f"Message-ID: <{msgid}@client.example.org>\r\n{headers}\r\n"
            "Hello,\r\nFrom the local test.\r\n.\r\n")
    steps = [EHLO, f"MAIL FROM:<{sender}>\r\n"]
    steps += [f"RCPT TO:<{r}>\r\n" for r in rcpts]
    steps += ["DATA\r\n", body, "QUIT\r\n"]
    return {"rcpts": rcpts, "steps": steps}


# home files: {user: {relative path: text | None (directory)}}
SCENARIOS = [
    dict(id="forward-files",
         title=".forward: self + remote, command + file, local user, empty file, .forward+ext",
         main_cf={"recipient_delimiter": "+"},
         homes={"peter": {".forward": "peter, bob@example.org\n"},
                "gerda": {".forward": '"|/bin/true"\n/home/gerda/archive\n'},
                "jim": {".forward": "petra\n"},
                "marc": {".forward": ""},
                "bob": {".forward+news": "petra\n"}},
         messages=[message(["peter@example.com"], "forward self and remote", "fwd-1"),
                   message(["gerda@example.com"], "forward command and file", "fwd-2"),
                   message(["jim@example.com"], "forward to petra", "fwd-3"),
                   message(["marc@example.com"], "empty forward", "fwd-4"),
                   message(["bob+news@example.com"], "forward with extension", "fwd-5")]),
    dict(id="alias-destinations",
         title="aliases: /file, |command, remote member, :include:, owner- alias, maildir file",
         aliases=("archive: /tmp/mailsim-local/archive\n"
                  'pipe: "|/bin/true"\n'
                  "remote: peter, bob@example.org\n"
                  "incl: :include:/etc/postfix/incl-list\n"
                  "owned: petra, jim\n"
                  "owner-owned: marc\n"
                  "maildirs: /tmp/mailsim-local/md/\n"),
         files={"incl-list": '/tmp/mailsim-local/incl-archive\n"|/bin/true"\ngerda\n'},
         messages=[message(["archive@example.com"], "to a file", "ali-1"),
                   message(["pipe@example.com"], "to a command", "ali-2"),
                   message(["remote@example.com"], "to a remote member", "ali-3"),
                   message(["incl@example.com"], "to an include file", "ali-4"),
                   message(["owned@example.com"], "to an owned list", "ali-5"),
                   message(["maildirs@example.com"], "to a maildir file", "ali-6")]),
    dict(id="maildir",
         title="home_mailbox = Maildir/: delivery, and a Maildir that is a regular file",
         main_cf={"home_mailbox": "Maildir/"},
         homes={"gerda": {"Maildir": "not a directory\n"}},
         messages=[message(["peter@example.com"], "maildir delivery", "md-1"),
                   message(["gerda@example.com"], "maildir blocked", "md-2")]),
    dict(id="home-mailbox",
         title="home_mailbox = Mailbox: delivery, and a Mailbox that is a directory",
         main_cf={"home_mailbox": "Mailbox"},
         homes={"jim": {"Mailbox": None}},
         messages=[message(["peter@example.com"], "home mailbox", "hm-1"),
                   message(["jim@example.com"], "home mailbox is a directory", "hm-2")]),
    dict(id="home-mailbox-path",
         title="home_mailbox = Mail/inbox: missing directory, a path component that is a file",
         main_cf={"home_mailbox": "Mail/inbox"},
         homes={"jim": {"Mail": "a file\n"}, "petra": {"Mail": None}},
         messages=[message(["peter@example.com"], "no Mail directory", "hp-1"),
                   message(["jim@example.com"], "Mail is a file", "hp-2"),
                   message(["petra@example.com"], "Mail is a directory", "hp-3")]),
    dict(id="spool-mailbox-directory",
         title="/var/mail/bob is a directory",
         var_mail_dirs=["bob"],
         messages=[message(["bob@example.com"], "spool mailbox is a directory", "sp-1")]),
    dict(id="loops",
         title="Delivered-To loop, .forward loop between two users, alias loop",
         homes={"jim": {".forward": "petra\n"}, "petra": {".forward": "jim\n"}},
         aliases="loopa: loopb\nloopb: loopa\n",
         messages=[message(["peter@example.com"], "looping header", "loop-1",
                           headers="Delivered-To: peter@example.com\r\n"),
                   message(["jim@example.com"], "forward loop", "loop-2"),
                   message(["loopa@example.com"], "alias loop", "loop-3")]),
    dict(id="mailbox-command",
         title='mailbox_command = /bin/true -a "$EXTENSION"',
         main_cf={"mailbox_command": '/bin/true -a "$EXTENSION"'},
         messages=[message(["peter@example.com"], "mailbox command", "mc-1")]),
]


def write_setup(sc: dict, machine: rp.Machine) -> None:
    rp.clean_etc_postfix(machine)
    (rp.POSTFIX_ETC / "main.cf").write_text(rp.build_main_cf(sc.get("main_cf", {}), []))
    Path("/etc/aliases").write_text(rp.ALIASES + sc.get("aliases", ""))
    rp.run(["postalias", "hash:/etc/aliases"])
    for name, text in sc.get("files", {}).items():
        (rp.POSTFIX_ETC / name).write_text(text)
    TMP_DIR.mkdir(exist_ok=True)
    os.chmod(TMP_DIR, 0o1777)
    for user, files in sc.get("homes", {}).items():
        home = Path("/home") / user
        for rel, text in files.items():
            p = home / rel
            if text is None:
                p.mkdir()
                os.chmod(p, 0o700)
            else:
                p.write_text(text)
                os.chmod(p, 0o644)
            shutil.chown(p, user, user)
    for user in sc.get("var_mail_dirs", []):
        d = rp.MAIL_DIR / user
        d.mkdir()
        shutil.chown(d, user, "mail")


def snapshot_homes() -> dict[str, set[str]]:
    return {u: rp.Machine._walk(Path("/home") / u) for u in rp.USERS}


def read_new_files(before: dict[str, set[str]]) -> dict[str, str | None]:
    """Files and directories that appeared in the homes and under TMP_DIR."""
    out: dict[str, str | None] = {}
    now = {u: rp.Machine._walk(Path("/home") / u) for u in rp.USERS}
    paths = sorted(set().union(*(now[u] - before[u] for u in rp.USERS)))
    paths += sorted(rp.Machine._walk(TMP_DIR))
    for p in paths:
        if os.path.isdir(p) and not os.path.islink(p):
            out[p + "/"] = None
        else:
            out[p] = Path(p).read_bytes().decode("latin-1")
    return out


def teardown(before: dict[str, set[str]]) -> None:
    """Remove what a scenario added to homes, /var/mail and TMP_DIR."""
    for u in rp.USERS:
        added = rp.Machine._walk(Path("/home") / u) - before[u]
        for p in sorted(added, key=lambda s: -s.count("/")):
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            elif os.path.lexists(p):
                os.unlink(p)
    for sc in SCENARIOS:
        for user in sc.get("var_mail_dirs", []):
            d = rp.MAIL_DIR / user
            if d.is_dir() and not d.is_symlink():
                shutil.rmtree(d)
    shutil.rmtree(TMP_DIR, ignore_errors=True)


def record(sc: dict, machine: rp.Machine, version: str, homes0) -> dict:
    r = rp.record_messages(sc, machine, write_setup, pause=0.5, before=lambda: teardown(homes0),
                           collect=lambda: {"new_files": read_new_files(homes0)})
    return {
        "id": sc["id"], "title": sc["title"], "postfix_version": version,
        "hostname": socket.gethostname(),
        "main_cf": sc.get("main_cf", {}), "main_cf_effective": r["effective"],
        "aliases": rp.ALIASES + sc.get("aliases", ""),
        "files": sc.get("files", {}), "homes": sc.get("homes", {}),
        "var_mail_dirs": sc.get("var_mail_dirs", []),
        "users": rp.USERS, "sessions": r["sessions"],
        "log": r["log"], "mailboxes": r["mailboxes"], "new_files": r["new_files"],
        "queue": r["queue"], "notes": r["notes"],
    }


# bounce(8)'s notify_classes: postmaster copies and double bounces, after a local(8) bounce
# (ghost: nosuchuser in the recording machine's aliases); recorded with --notify
NOTIFY = [
    dict(id="notify-bounce", title="notify_classes with bounce: the sender's bounce and a "
                                   "postmaster copy (headers only)",
         main_cf={"notify_classes": "bounce, resource, software"},
         messages=[message(["ghost@example.com"], "bounce with a postmaster copy", "nb-1")]),
    dict(id="notify-2bounce", title="notify_classes with 2bounce: a bounce that bounces goes "
                                    "to postmaster; a single bounce gets no copy",
         main_cf={"notify_classes": "2bounce, resource, software"},
         messages=[message(["ghost@example.com"], "null sender bounces", "nb-2", sender=""),
                   message(["ghost@example.com"], "single bounce", "nb-3")]),
    dict(id="notify-default-null", title="default notify_classes: a bounce that bounces is "
                                         "dropped",
         messages=[message(["ghost@example.com"], "null sender, default classes", "nb-4",
                           sender="")]),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID")
    ap.add_argument("--notify", action="store_true",
                    help="record the notify_classes scenarios (into tests/golden/notify)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    pool = NOTIFY if args.notify else SCENARIOS
    args.out = args.out or (NOTIFY_OUT if args.notify else OUT)
    scenarios = [s for s in pool if not args.only or s["id"] in args.only]
    machine = rp.take_machine((rp.SMTP_PORT, rp.SINK_PORT), restore_at_exit=False)
    homes0: dict[str, set[str]] = {}      # the home folders before: teardown() keeps those

    def prepare() -> None:
        homes0.update(snapshot_homes())

    return rp.record_scenarios(machine, scenarios,
                               lambda sc, version: record(sc, machine, version, homes0),
                               args.out, prepare=prepare,
                               cleanup=lambda: homes0 and teardown(homes0))


if __name__ == "__main__":
    sys.exit(main())
