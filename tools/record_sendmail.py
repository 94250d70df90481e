#!/usr/bin/env python3
"""Record the real Postfix sendmail(1) / postdrop(1) / pickup(8) on this machine.

Runs every case of CASES below against Debian's postfix package (3.7.11) and
writes tests/golden/sendmail/cases.json: for each case the command, who ran
it, its standard input, exit status, stdout, stderr, the log lines it caused
(pickup, cleanup, qmgr, local, bounce ...), the mailboxes afterwards and,
for the cases run while Postfix is stopped, ``postcat`` of the maildrop file
postdrop wrote.

Needs root. It reuses tools/record_postfix.py's Machine, which puts back
everything the run changes (/etc/postfix, /etc/aliases, the users it creates
and the account files, /var/mail, the spool, /var/log/postfix.log,
/etc/resolv.conf), also on an exception or signal. Postfix listens on
127.0.0.1 only; the relayhost is the loopback smtp-sink; no DNS. Run it as

    flock /tmp/postfix-record.lock python3 tools/record_sendmail.py

because other recording scripts use the same Postfix installation.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import record_postfix as rp  # noqa: E402

OUT = HERE.parent / "tests/golden/sendmail/cases.json"
MAILDROP = Path("/var/spool/postfix/maildrop")
VIRTUAL = "info@sue.nl     gerda\nsales@unix.nl   petra\n@unix.nl        jim\n"
MAIN_CF = {"virtual_alias_domains": "sue.nl unix.nl",
           "virtual_alias_maps": "hash:/etc/postfix/virtual"}
#: an extra account with a GECOS full name ("&" stands for the login name)
CAROL = ("carol", "& Singer,Room 1,,")
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LC_ALL": "C"}

MSG = "Subject: {s}\n\nhello\n"


def c(cid: str, argv: list[str], stdin: str | bytes = "", *, user: str = "root",
      env: dict | None = None, prog: str = "sendmail", **extra) -> dict:
    return {"id": cid, "prog": prog, "argv": argv, "user": user,
            "stdin": stdin if isinstance(stdin, str) else stdin.decode("latin-1"),
            "env": env or {}, **extra}


SMTP_BS = ("EHLO client.example.org\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<peter>\r\n"
           "DATA\r\nSubject: via -bs\r\n\r\nhello over stdin\r\n.\r\nQUIT\r\n")

CASES: list[dict] = [
    # -- delivery mode ----------------------------------------------------------------
    c("plain-root", ["peter"], MSG.format(s="plain")),
    c("plain-user", ["peter"], MSG.format(s="from a user"), user="alice"),
    c("gecos-fullname", ["peter"], MSG.format(s="gecos"), user="carol"),
    c("name-env", ["peter"], MSG.format(s="NAME"), user="alice", env={"NAME": "Alice From Env"}),
    c("F-fullname", ["-F", "Alice Liddell", "peter"], MSG.format(s="-F"), user="alice"),
    c("F-special", ["-F", "Smith, John (QA)", "peter"], MSG.format(s="-F special")),
    c("F-with-from-header", ["-F", "Ignored Name", "peter"],
      "From: someone@example.org\nSubject: has From\n\nhello\n"),
    c("f-sender", ["-f", "alice@example.com", "peter"], MSG.format(s="-f")),
    c("f-null", ["-f", "<>", "peter"], MSG.format(s="-f <>")),
    c("f-null-bounce", ["-f", "<>", "nosuch"], MSG.format(s="-f <> bounce")),
    c("f-named", ["-f", "Alice <alice@example.com>", "peter"], MSG.format(s="-f named")),
    c("f-two", ["-f", "a@example.com, b@example.com", "peter"], MSG.format(s="-f two")),
    c("f-bare", ["-f", "alice", "peter"], MSG.format(s="-f bare")),
    c("r-sender", ["-r", "bob@example.com", "peter"], MSG.format(s="-r")),
    c("t-cc-bcc", ["-t"], "From: bob\nTo: gerda\nCc: jim@example.com\nBcc: petra\n"
      "Subject: cc bcc\n\nbody\n", user="bob"),
    c("t-plus-args", ["-t", "marc"], "To: peter\nBcc: gerda\nSubject: t plus args\n\nbody\n"),
    c("t-resent", ["-t"], "To: peter\nResent-To: gerda\nResent-Bcc: jim\nSubject: resent\n\nbody\n"),
    c("t-named", ["-t"], 'To: "Peter P." <peter>, Gerda <gerda@example.com>\n'
      "Subject: named\n\nbody\n"),
    c("t-dup", ["-t", "peter"], "To: peter, peter@example.com\nCc: peter\nSubject: dup\n\nbody\n"),
    c("t-no-rcpt", ["-t"], "Subject: none\n\nbody\n"),
    c("t-bcc-only", ["-t"], "Bcc: gerda\nSubject: bcc only\n\nbody\n"),
    c("no-rcpt", [], MSG.format(s="no recipient")),
    c("dot-default", ["peter"], "Subject: dot\n\nline\n.\nafter dot\n"),
    c("dot-oi", ["-oi", "peter"], "Subject: dot -oi\n\nline\n.\nafter dot\n"),
    c("dot-i", ["-i", "peter"], "Subject: dot -i\n\nline\n.\nafter dot\n"),
    c("dotdot", ["peter"], "Subject: dotdot\n\n..\n. \n.x\n"),
    c("from-line", ["peter"], "From someone@example.org  Wed Nov 25 08:00:00 2026\n"
      ">From also skipped\nSubject: from line\n\nbody\nFrom here\n"),
    c("crlf", ["peter"], b"Subject: crlf\r\nX-Test: yes\r\n\r\nline1\r\nlast"),
    c("no-final-newline", ["peter"], "Subject: no newline\n\nlast line"),
    c("rcpt-forms", ["Peter P <peter>, gerda", "jim@example.com"], MSG.format(s="forms")),
    c("rcpt-empty-arg", ["", "peter"], MSG.format(s="empty arg")),
    c("headers-only", ["peter"], "Subject: only headers\n"),
    c("body-only", ["peter"], "just a body line\nsecond line\n"),
    c("empty-message", ["peter"], ""),
    c("continuation-first", ["peter"], " indented first line\nSubject: x\n\nbody\n"),
    c("bm", ["-bm", "peter"], MSG.format(s="-bm")),
    c("B-8bit", ["-B", "8BITMIME", "peter"], "Subject: 8bit\n\nK\u00e4se\n".encode("utf-8")),
    c("N-success", ["-N", "success", "peter"], MSG.format(s="-N success")),
    c("N-bad", ["-N", "bogus", "peter"], MSG.format(s="-N bogus")),
    c("R-hdrs-V", ["-R", "hdrs", "-V", "envid123", "nosuch"], MSG.format(s="-R hdrs")),
    c("v-record", ["-v", "peter"], MSG.format(s="-v")),
    c("ignored-opts", ["-oem", "-odb", "-om", "-U", "-Am", "-L", "x", "-h", "5", "peter"],
      MSG.format(s="ignored options")),
    c("double-dash", ["--", "peter"], MSG.format(s="double dash")),
    c("to-alias-and-virtual", ["staff", "info@sue.nl"], MSG.format(s="aliases")),
    c("nosuch-user", ["nosuch"], MSG.format(s="to nosuch"), user="alice"),
    # -- verify ------------------------------------------------------------------------
    c("bv-two", ["-bv", "peter", "nosuch@example.com"]),
    c("bv-f", ["-bv", "-f", "alice@example.com", "staff"]),
    c("bv-user", ["-bv", "webmaster"], user="bob"),
    c("bv-null", ["-bv", "-f", "<>", "peter"]),
    c("bv-none", ["-bv"]),
    c("bv-t", ["-bv", "-t", "peter"]),
    c("bv-N", ["-bv", "-N", "success", "peter"]),
    c("bv-R", ["-bv", "-R", "full", "peter"]),
    c("bv-v", ["-bv", "-v", "peter"]),
    # -- other modes -------------------------------------------------------------------
    c("bp", ["-bp"]),
    c("bp-user", ["-bp"], user="alice"),
    c("bp-rcpt", ["-bp", "peter"]),
    c("t-bp", ["-t", "-bp"]),
    c("bi", ["-bi"]),
    c("I", ["-I"]),
    c("bi-rcpt", ["-bi", "peter"]),
    c("oA", ["-bi", "-oAhash:/etc/aliases"]),
    c("oA-empty", ["-bi", "-oA"]),
    c("q", ["-q"]),
    c("q-rcpt", ["-q", "peter"]),
    c("q-interval", ["-q30m"]),
    c("q-interval-rcpt", ["-q30m", "peter"], MSG.format(s="q30m")),
    c("qX", ["-qX"]),
    c("qR-empty", ["-qR"]),
    c("qI-empty", ["-qI"]),
    c("qR-site", ["-qRexample.org"]),
    c("qI-id", ["-qI4B2A11600F1"]),
    c("qR-rcpt", ["-qRexample.org", "peter"]),
    c("bd", ["-bd"]),
    c("bl", ["-bl"]),
    c("bd-rcpt", ["-bd", "peter"]),
    c("bh", ["-bh"]),
    c("bH", ["-bH"]),
    c("bx", ["-bx"]),
    c("n", ["-n", "peter"]),
    c("B-bad", ["-B", "9BIT", "peter"]),
    c("X-bad", ["-Xfoo", "peter"]),
    c("XV-null", ["-XV", "-f", "<>", "peter"], MSG.format(s="XV")),
    c("bad-option", ["-Z", "peter"]),
    c("missing-arg", ["-f"]),
    c("newaliases-rcpt", ["peter"], prog="newaliases"),
    c("mailq-rcpt", ["peter"], prog="mailq"),
    c("mailq-bv", ["-bv", "peter"], prog="mailq"),
    # -- stand-alone SMTP (-bs) --------------------------------------------------------
    c("bs-root", ["-bs"], SMTP_BS),
    c("bs-user", ["-bs"], SMTP_BS.replace("RCPT TO:<peter>", "RCPT TO:<gerda@example.com>"),
      user="alice"),
    c("bs-relay", ["-bs"], "HELO x\r\nMAIL FROM:<bob@example.com>\r\nRCPT TO:<user@other.org>\r\n"
      "QUIT\r\n", user="bob"),
    c("bs-lf", ["-bs"], "HELO lf.example\nMAIL FROM:<>\nRCPT TO:<peter>\nDATA\n"
      "Subject: bare lf\n\nbody\n.\nQUIT\n"),
    c("bs-quit", ["-bs"], "QUIT\r\n"),
    c("bs-eof", ["-bs"], "EHLO client.example.org\r\n"),
    c("bs-rcpt", ["-bs", "peter"]),
    c("bs-two-rcpt", ["-bs"], "HELO x\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<peter>\r\n"
      "RCPT TO:<nosuch@example.com>\r\nRCPT TO:<gerda>\r\nDATA\r\nSubject: two\r\n\r\nb\r\n.\r\n"
      "QUIT\r\n"),
]

#: cases run with a changed main.cf (postconf -e, postfix reload, then put back)
ACL_CASES: list[tuple[dict, dict]] = [
    ({"authorized_submit_users": "root"}, c("acl-submit", ["peter"], MSG.format(s="acl"),
                                             user="alice")),
    ({"authorized_submit_users": "root"}, c("acl-submit-bs", ["-bs"], "QUIT\r\n", user="alice")),
    ({"authorized_submit_users": "root"}, c("acl-submit-root", ["peter"], MSG.format(s="acl root"))),
    ({"authorized_mailq_users": "root"}, c("acl-mailq", ["-bp"], user="alice")),
    ({"authorized_flush_users": "root"}, c("acl-flush", ["-q"], user="alice")),
    ({"sendmail_fix_line_endings": "bogus"}, c("fix-eol-bad", ["peter"], MSG.format(s="eol"))),
    ({"sendmail_fix_line_endings": "never"},
     c("fix-eol-never", ["peter"], b"Subject: eol never\r\n\r\nline1\r\n")),
    ({"sendmail_fix_line_endings": "strict"},
     c("fix-eol-strict", ["peter"], b"Subject: eol strict\n\nline1\r\nline2\n")),
    ({"myorigin": "$myhostname"}, c("myorigin-host", ["peter"], MSG.format(s="myorigin"))),
    ({"append_at_myorigin": "no"}, c("no-append-at-myorigin", ["peter"], MSG.format(s="no append"))),
]

#: cases run while Postfix is stopped: postdrop's maildrop file, then pickup at start
STOPPED_CASES: list[dict] = [
    c("stopped-plain", ["peter"], MSG.format(s="stopped")),
    c("stopped-t-F", ["-t", "-F", "Alice Liddell", "-f", "alice@example.com"],
      "To: gerda\nBcc: jim\nSubject: stopped -t\n\nbody\n", user="alice"),
    c("stopped-bv", ["-bv", "peter", "staff"]),
    c("stopped-dsn", ["-N", "success,delay", "-R", "hdrs", "-V", "env-1", "-B", "7BIT", "peter"],
      MSG.format(s="stopped dsn")),
    c("stopped-XV", ["-XV", "peter"], MSG.format(s="stopped XV")),
]


def sh_quote(a: str) -> str:
    return "'" + a.replace("'", "'\\''") + "'" if (not a or any(ch in a for ch in " <>,()'\"$;&|*?")) else a


def display(case: dict) -> str:
    cmd = " ".join([case["prog"]] + [sh_quote(a) for a in case["argv"]])
    if case["env"]:
        cmd = " ".join(f"{k}={sh_quote(v)}" for k, v in case["env"].items()) + " " + cmd
    if case["user"] != "root":
        cmd = f"runuser -u {case['user']} -- {cmd}"
    return cmd


def execute(case: dict) -> subprocess.CompletedProcess:
    prog = {"sendmail": "/usr/sbin/sendmail", "newaliases": "/usr/bin/newaliases",
            "mailq": "/usr/bin/mailq"}[case["prog"]]
    argv = [prog] + case["argv"]
    if case["user"] != "root":
        argv = ["runuser", "-u", case["user"], "--"] + argv
    env = dict(ENV, **case["env"])
    return subprocess.run(argv, input=case["stdin"].encode("latin-1"), capture_output=True,
                          env=env, timeout=60, cwd="/")


def maildrop_files() -> list[Path]:
    return sorted(p for p in MAILDROP.iterdir() if p.is_file()) if MAILDROP.is_dir() else []


def settle(timeout: float = 20.0) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        busy = [m for m in rp.queue_json() if m.get("queue_name") not in ("deferred", "hold")]
        if not busy and not maildrop_files():
            time.sleep(0.4)
            if not [m for m in rp.queue_json() if m.get("queue_name") not in ("deferred", "hold")]:
                return ""
        time.sleep(0.2)
    return f"queue did not settle within {timeout:.0f} s"


def begin(sid: str) -> tuple[str, str, int]:
    token = uuid.uuid4().hex[:12]
    b, e = f"record-begin-{sid}-{token}", f"record-end-{sid}-{token}"
    off = rp.log_offset()
    rp.mark(b)
    rp.wait_log_contains(b, off)
    return b, e, off


def end(b: str, e: str, off: int) -> list[str]:
    rp.mark(e)
    rp.wait_log_contains(e, off)
    return rp.log_between(off, b, e)


def result_of(case: dict, cp: subprocess.CompletedProcess) -> dict:
    return {**case, "cmd": display(case), "rc": cp.returncode,
            "stdout": cp.stdout.decode("latin-1"), "stderr": cp.stderr.decode("latin-1")}


def record_case(case: dict) -> dict:
    rp.clear_mail()
    b, e, off = begin(case["id"])
    cp = execute(case)
    note = settle()
    time.sleep(0.3)
    queue = rp.run(["postqueue", "-p"], check=False).stdout
    out = result_of(case, cp)
    out.update(log=end(b, e, off), mailboxes=rp.read_mailboxes(), queue=queue)
    if not queue.startswith("Mail queue is empty"):
        rp.run(["postsuper", "-d", "ALL"], check=False)
    if note:
        out["note"] = note
    return out


def postconf_set(settings: dict) -> dict:
    old = {}
    for k, v in settings.items():
        old[k] = rp.run(["postconf", "-nh", k], check=False).stdout.strip()
        rp.run(["postconf", "-e", f"{k} = {v}"])
    rp.run(["postfix", "reload"], check=False)
    time.sleep(1.0)
    return old


def postconf_restore(old: dict) -> None:
    for k, v in old.items():
        if v:
            rp.run(["postconf", "-e", f"{k} = {v}"])
        else:
            rp.run(["postconf", "-X", k])
    rp.run(["postfix", "reload"], check=False)
    time.sleep(1.0)


def record_stopped(machine: rp.Machine) -> list[dict]:
    """Submit while Postfix is down (postdrop only), postcat the maildrop files, then start."""
    rp.run(["postsuper", "-d", "ALL"], check=False)
    rp.clear_mail()
    machine.stop_postfix()
    b, e, off = begin("stopped")
    results = []
    for case in STOPPED_CASES:
        before = set(maildrop_files())
        cp = execute(case)
        new = sorted(set(maildrop_files()) - before)
        r = result_of(case, cp)
        r["maildrop"] = [{"name": p.name, "mode": oct(p.stat().st_mode & 0o7777),
                          "uid": p.stat().st_uid,
                          "postcat": rp.run(["postcat", str(p)], check=False).stdout}
                         for p in new]
        results.append(r)
    mailq = rp.run(["postqueue", "-p"], check=False)
    rp.postfix_start(machine)
    note = settle(30)
    time.sleep(0.5)
    lines = end(b, e, off)
    results.append({"id": "stopped-start", "cmd": "postqueue -p (stopped); postfix start",
                    "mailq_while_stopped": {"rc": mailq.returncode, "stdout": mailq.stdout,
                                            "stderr": mailq.stderr},
                    "log": lines, "mailboxes": rp.read_mailboxes(),
                    **({"note": note} if note else {})})
    return results


def record_maildrop_files() -> list[dict]:
    """Files a user puts into maildrop by hand: garbage, and a file not marked ready."""
    out = []
    for cid, name, data, mode in (
            ("maildrop-garbage", "4B2A11600F1", b"Subject: garbage\n\nthis is not a queue file\n", 0o744),
            ("maildrop-empty", "4B2A11600F2", b"", 0o744),
            ("maildrop-not-ready", "4B2A11600F3", b"Subject: not ready\n\nx\n", 0o644)):
        rp.clear_mail()
        b, e, off = begin(cid)
        tmp = MAILDROP / f".{name}.tmp"
        tmp.write_bytes(data)
        os.chmod(tmp, mode)
        os.rename(tmp, MAILDROP / name)
        rp.run(["postkick", "public", "pickup", "W"], check=False)
        time.sleep(2.5)
        still = (MAILDROP / name).exists()
        if still:
            (MAILDROP / name).unlink()
        out.append({"id": cid, "file": name, "content": data.decode("latin-1"),
                    "mode": oct(mode), "still_there_after_2s": still, "log": end(b, e, off)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    machine = rp.take_machine((rp.SMTP_PORT, rp.SINK_PORT), restore_at_exit=True)
    wanted = set(args.only or [])
    results: list[dict] = []
    try:
        machine.backup()
        machine.homes_before[CAROL[0]] = os.path.lexists(f"/home/{CAROL[0]}")
        machine.point_resolver_at_loopback()
        machine.create_users()
        if rp.run(["id", CAROL[0]], check=False).returncode != 0:
            rp.run(["useradd", "-m", "-s", "/bin/bash", "-c", CAROL[1], CAROL[0]])
            machine.created_users.append(CAROL[0])
        rp.run(["postconf", "-F", "*/*/chroot = n"])
        machine.start_sink()
        rp.write_config({"main_cf": MAIN_CF, "files": {"virtual": VIRTUAL}}, machine)
        version = rp.run(["postconf", "-dh", "mail_version"]).stdout.strip()
        rp.postfix_start(machine)
        for case in CASES:
            if wanted and case["id"] not in wanted:
                continue
            results.append(record_case(case))
            rp.log(f"{case['id']}: rc={results[-1]['rc']} {results[-1]['stderr'][:100]!r}")
        for settings, case in ACL_CASES:
            if wanted and case["id"] not in wanted:
                continue
            old = postconf_set(settings)
            try:
                r = record_case(case)
            finally:
                postconf_restore(old)
            r["main_cf"] = settings
            results.append(r)
            rp.log(f"{case['id']}: rc={r['rc']} {r['stderr'][:100]!r}")
        if not wanted or "maildrop" in wanted:
            results += record_maildrop_files()
        if not wanted or "stopped" in wanted:
            results += record_stopped(machine)
        passwd = {u: rp.run(["getent", "passwd", u]).stdout.strip()
                  for u in ["root"] + rp.USERS + [CAROL[0]]}
        doc = {"postfix_version": version, "main_cf_base": rp.BASE_MAIN_CF.read_text(),
               "main_cf": MAIN_CF, "files": {"aliases": rp.ALIASES, "virtual": VIRTUAL},
               "passwd": passwd,
               "notes": "Each case ran with Postfix up and an empty queue and /var/mail; "
                        "log holds the lines between two markers. Environment: "
                        + json.dumps(ENV) + " plus the case's env.",
               "cases": results}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        rp.log(f"wrote {len(results)} cases to {args.out}")
    except KeyboardInterrupt as e:
        rp.log(f"interrupted ({e})")
        return 1
    finally:
        machine.restore()
    return 0


if __name__ == "__main__":
    sys.exit(main())
