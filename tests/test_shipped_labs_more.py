"""The shipped labs virtual-hosting, open-relay and broken-configs, end to end.

Each lab is copied (``Lab.init(DIR, from_lab=NAME)`` / ``mailsim lab DIR init
--from NAME``) and driven as its header comment tells the learner to: the
SMTP replies (code, enhanced status, text), the log lines with their
status=..., the mailboxes -- and, where the header describes a fix, the fix
applied with the administration commands (postconf -e, postmap) and a
reload, after which the same send behaves as the header says.
"""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mailsim.cli import main as mailsim_main
from mailsim.lab import Lab
from mailsim.lab.cli import main as lab_main


def lab_cli(d: Path, *argv: str) -> tuple[int, str, str]:
    """``mailsim lab D ARGV...``: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    return lab_main(None, [str(d), *argv], out, err), out.getvalue(), err.getvalue()


def admin(capsys, host_dir: Path, *argv: str) -> str:
    """``mailsim --root HOST_DIR ARGV...`` (postconf, postmap ...): its stdout; it must succeed."""
    capsys.readouterr()
    assert mailsim_main(["--root", str(host_dir), *argv]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def reply_to(result, command: str) -> str:
    """The server's reply to the first client command that starts with ``command``."""
    return next(reply for cmd, reply in result.dialogue if cmd.startswith(command))


def received(mbox: str) -> list[str]:
    """The ``by`` host of each Received header, newest first."""
    return re.findall(r"^Received: from .*\n\tby (\S+)", mbox, re.M)


def messages(mbox: str) -> int:
    return len(re.findall(r"^From ", mbox, re.M))


def one(lines: list[str], *needles: str) -> str:
    """The one log line that contains every needle."""
    hits = [ln for ln in lines if all(n in ln for n in needles)]
    assert len(hits) == 1, (needles, hits)
    return hits[0]


# -- virtual-hosting ------------------------------------------------------------------------------
VIRTUAL = [                                   # (recipient, account on the hosting server)
    ("postmaster@example.com", "peter"),
    ("info@sue.nl", "gerda"),
    ("sales@example.com", "petra"),
    ("whoever@example.com", "jim"),           # @example.com catch-all
    ("info@unix.nl", "gerda"),
    ("anyone@unix.nl", "rob"),                # @unix.nl catch-all
]
UNKNOWN_SUE = ("550 5.1.1 <nobody@sue.nl>: Recipient address rejected: "
               "User unknown in virtual alias table")


def test_virtual_hosting_table_is_a_postmapped_file(tmp_path, capsys):
    lab = Lab.init(tmp_path / "lab", from_lab="virtual-hosting")
    host = lab.hosts["hosting"]
    assert host.conf["virtual_alias_domains"] == "example.com, sue.nl, unix.nl"
    assert host.conf["virtual_alias_maps"] == "hash:/etc/postfix/virtual"
    src, db = host.path("/etc/postfix/virtual"), host.path("/etc/postfix/virtual.db")
    assert "@unix.nl                rob" in src.read_text()
    assert db.is_file() and db.stat().st_mtime >= src.stat().st_mtime
    hdir = tmp_path / "lab/hosts/hosting"
    assert admin(capsys, hdir, "postmap", "-q", "info@sue.nl", "hash:/etc/postfix/virtual") == "gerda\n"
    assert admin(capsys, hdir, "postmap", "-q", "@unix.nl", "hash:/etc/postfix/virtual") == "rob\n"
    assert mailsim_main(["--root", str(hdir), "postmap", "-q", "nobody@sue.nl",
                         "hash:/etc/postfix/virtual"]) == 1          # not in the table
    assert "warning" not in "\n".join(lab.log("hosting"))            # no BOTH conflict


def test_virtual_hosting_each_address_ends_in_its_mailbox(tmp_path):
    lab = Lab.init(tmp_path / "lab", from_lab="virtual-hosting")
    for rcpt, user in VIRTUAL:
        r = lab.send("alice@example.org", rcpt)
        assert r.via == "sender" and r.ok, r.transcript()
    log = lab.log("hosting")
    for rcpt, user in VIRTUAL:
        one(lab.log("sender"), f"to=<{rcpt}>, relay=mail.hosting.example.net[127.0.0.7]:25",
            "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ")
        one(log, f"to=<{user}@hosting.example.net>, orig_to=<{rcpt}>, relay=local",
            "dsn=2.0.0, status=sent (delivered to mailbox)")
    for user in ("peter", "petra", "jim", "rob", "gerda"):
        mbox = lab.mailbox("hosting", user)
        want = [rcpt for rcpt, u in VIRTUAL if u == user]
        assert re.findall(r"^X-Original-To: (\S+)", mbox, re.M) == want
        assert set(re.findall(r"^Delivered-To: (\S+)", mbox, re.M)) == {f"{user}@hosting.example.net"}
        assert received(mbox)[:2] == ["mail.hosting.example.net", "mail.example.org"]
    asked = [q.key[:2] for q in lab.dns.queries]
    for domain in ("example.com", "sue.nl", "unix.nl"):
        assert (domain, "MX") in asked
    assert lab.mailq("hosting") == lab.mailq("sender") == "Mail queue is empty\n"
    assert lab.mailbox("sender", "alice") == ""                     # no bounces


def test_virtual_hosting_unknown_address_without_catch_all_is_refused_at_rcpt(tmp_path):
    lab = Lab.init(tmp_path / "lab", from_lab="virtual-hosting")
    # an outside client's own session (from the sender host's address)
    r = lab.send("alice@example.org", ["nobody@sue.nl", "info@sue.nl"], via="hosting",
                 client="127.0.0.3", helo="mail.example.org")
    assert reply_to(r, "RCPT TO:<nobody@sue.nl>") == UNKNOWN_SUE
    assert reply_to(r, "RCPT TO:<info@sue.nl>") == "250 2.1.5 Ok" and r.ok
    one(lab.log("hosting"), ": reject: RCPT from mail.example.org[127.0.0.3]: " + UNKNOWN_SUE
        + "; from=<alice@example.org> to=<nobody@sue.nl> proto=ESMTP helo=<mail.example.org>")
    assert messages(lab.mailbox("hosting", "gerda")) == 1
    # alone, the recipient refused: no DATA, nothing queued
    r = lab.send("alice@example.org", "nobody@sue.nl", via="hosting", client="127.0.0.3")
    assert not r.ok and reply_to(r, "RCPT") == UNKNOWN_SUE
    assert "DATA" not in [c for c, _ in r.dialogue]
    # through alice's own server: it bounces to her, quoting the hosting server
    assert lab.send("alice@example.org", "nobody@sue.nl").ok
    one(lab.log("sender"), "to=<nobody@sue.nl>, relay=mail.hosting.example.net[127.0.0.7]:25",
        f"dsn=5.1.1, status=bounced (host mail.hosting.example.net[127.0.0.7] said: {UNKNOWN_SUE}"
        " (in reply to RCPT TO command))")
    bounce = lab.mailbox("sender", "alice")
    assert "Subject: Undelivered Mail Returned to Sender" in bounce
    assert "<nobody@sue.nl>: host mail.hosting.example.net[127.0.0.7] said: 550 5.1.1\n" in bounce
    assert "Final-Recipient: rfc822; nobody@sue.nl\n" in bounce and "Status: 5.1.1\n" in bounce
    # the catch-all domains take any address
    r = lab.send("alice@example.org", ["nobody@unix.nl", "nobody@example.com"], via="hosting",
                 client="127.0.0.3")
    assert [reply for cmd, reply in r.dialogue if cmd.startswith("RCPT")] == ["250 2.1.5 Ok"] * 2
    assert "X-Original-To: nobody@unix.nl" in lab.mailbox("hosting", "rob")
    assert "X-Original-To: nobody@example.com" in lab.mailbox("hosting", "jim")


def test_virtual_hosting_cli_and_the_postmap_fix(tmp_path, capsys):
    d = tmp_path / "lab"
    rc, out, err = lab_cli(d, "init", "--from", "virtual-hosting")
    assert rc == 0 and "2 host(s)" in out and "hosting, sender" in out, err
    rc, out, _ = lab_cli(d, "dig", "sue.nl", "MX")
    assert rc == 0 and "10 mail.hosting.example.net." in out
    rc, out, _ = lab_cli(d, "send", "--from", "alice@example.org", "--to", "info@sue.nl", "--json")
    sent = json.loads(out)
    assert rc == 0 and sent["via"] == "sender" and re.fullmatch(r"[0-9A-F]{10,12}", sent["queue_id"])
    rc, out, _ = lab_cli(d, "log", "hosting")
    assert "to=<gerda@hosting.example.net>, orig_to=<info@sue.nl>, relay=local" in out
    assert "status=sent (delivered to mailbox)" in out
    rc, out, _ = lab_cli(d, "mailbox", "hosting", "gerda")
    assert "X-Original-To: info@sue.nl" in out and "Delivered-To: gerda@hosting.example.net" in out
    rc, out, _ = lab_cli(d, "send", "--from", "alice@example.org", "--to", "nobody@sue.nl",
                         "--via", "hosting", "--client", "127.0.0.3")
    assert rc == 1 and f"S: {UNKNOWN_SUE}\n" in out
    # the fix from the header: a line in the table, postmap, postfix reload
    hdir = d / "hosts/hosting"
    with open(hdir / "etc/postfix/virtual", "a") as f:
        f.write("nobody@sue.nl           gerda\n")
    rc, out, _ = lab_cli(d, "send", "--from", "alice@example.org", "--to", "nobody@sue.nl",
                         "--via", "hosting", "--client", "127.0.0.3")
    assert rc == 1 and UNKNOWN_SUE in out            # the text file alone changes nothing
    admin(capsys, hdir, "postmap", "/etc/postfix/virtual")
    assert lab_cli(d, "reload", "hosting")[0] == 0
    rc, out, _ = lab_cli(d, "send", "--from", "alice@example.org", "--to", "nobody@sue.nl",
                         "--via", "hosting", "--client", "127.0.0.3")
    assert rc == 0 and "S: 250 2.1.5 Ok\n" in out and "queued as" in out
    rc, out, _ = lab_cli(d, "mailbox", "hosting", "gerda")
    assert re.findall(r"^X-Original-To: (\S+)", out, re.M) == ["info@sue.nl", "nobody@sue.nl"]


# -- open-relay ------------------------------------------------------------------------------------
SPAMMER = "203.0.113.66"
DENIED_454 = "454 4.7.1 <peter@example.org>: Relay access denied"
DENIED_554 = "554 5.7.1 <peter@example.org>: Relay access denied"
FIX_MYNETWORKS = "mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128"
FIX_RESTRICTIONS = ("smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, "
                    "reject_unauth_destination")


def bot(lab: Lab, to: str = "peter@example.org"):
    """The spam bot's own SMTP session into the relay."""
    return lab.send("offers@spammer.example", to, via="relay", client=SPAMMER,
                    helo="bot.spammer.example")


def test_open_relay_relays_spam_to_a_third_domain(tmp_path):
    lab = Lab.init(tmp_path / "lab", from_lab="open-relay")
    assert lab.hosts["relay"].conf["mynetworks"] == "0.0.0.0/0"
    r = lab.send("offers@spammer.example", "peter@example.org")      # the spammer's Postfix
    assert r.via == "spammer" and r.ok
    one(lab.log("spammer"), "to=<peter@example.org>, relay=mail.example.com[127.0.0.2]:25",
        "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ")
    one(lab.log("relay"), f"client=bot.spammer.example[{SPAMMER}]")
    one(lab.log("relay"), "to=<peter@example.org>, relay=mx1.example.org[127.0.0.3]:25",
        "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as ")
    one(lab.log("mx1"), "to=<peter@example.org>, relay=local", "status=sent (delivered to mailbox)")
    assert received(lab.mailbox("mx1", "peter")) == [
        "mx1.example.org", "mail.example.com", "bot.spammer.example"]
    r = bot(lab)                                                       # a bot's own session
    assert reply_to(r, "RCPT") == "250 2.1.5 Ok" and r.ok
    assert messages(lab.mailbox("mx1", "peter")) == 2


def test_open_relay_fixed_refuses_the_same_sends(tmp_path, capsys):
    lab = Lab.init(tmp_path / "lab", from_lab="open-relay")
    rdir = tmp_path / "lab/hosts/relay"
    admin(capsys, rdir, "postconf", "-e", FIX_MYNETWORKS)
    lab.reload("relay")
    r = bot(lab)
    assert not r.ok and reply_to(r, "RCPT") == DENIED_454
    one(lab.log("relay"), f"NOQUEUE: reject: RCPT from bot.spammer.example[{SPAMMER}]: {DENIED_454}; "
        "from=<offers@spammer.example> to=<peter@example.org> proto=ESMTP helo=<bot.spammer.example>")
    assert lab.send("offers@spammer.example", "peter@example.org").ok      # into the spammer's queue
    line = one(lab.log("spammer"), "to=<peter@example.org>", "status=deferred")
    assert line.endswith(f"relay=mail.example.com[127.0.0.2]:25, delay=0, delays=0/0/0/0, dsn=4.7.1, "
                         f"status=deferred (host mail.example.com[127.0.0.2] said: {DENIED_454} "
                         "(in reply to RCPT TO command))")
    assert "peter@example.org" in lab.mailq("spammer")
    assert bot(lab, "alice@example.com").ok                           # its own domain: still open
    assert messages(lab.mailbox("relay", "alice")) == 1
    # reject_unauth_destination: refused for good; the spammer's retry bounces
    admin(capsys, rdir, "postconf", "-e", FIX_RESTRICTIONS)
    lab.reload("relay")
    assert reply_to(bot(lab), "RCPT") == DENIED_554
    lab.run(until="15m")
    one(lab.log("spammer"), "to=<peter@example.org>",
        f"dsn=5.7.1, status=bounced (host mail.example.com[127.0.0.2] said: {DENIED_554} "
        "(in reply to RCPT TO command))")
    assert lab.mailq("spammer") == "Mail queue is empty\n"
    bounce = lab.mailbox("spammer", "offers")
    assert "Subject: Undelivered Mail Returned to Sender" in bounce
    assert "<peter@example.org>: host mail.example.com[127.0.0.2] said: 554 5.7.1\n" in bounce
    assert lab.mailbox("mx1", "peter") == ""                          # no spam got through


def test_open_relay_cli(tmp_path, capsys):
    d = tmp_path / "lab"
    assert lab_cli(d, "init", "--from", "open-relay")[0] == 0
    rc, out, _ = lab_cli(d, "send", "--from", "offers@spammer.example", "--to", "peter@example.org",
                         "--via", "relay", "--client", SPAMMER, "--helo", "bot.spammer.example")
    assert rc == 0 and "C: RCPT TO:<peter@example.org>\nS: 250 2.1.5 Ok\n" in out
    rc, out, _ = lab_cli(d, "log", "relay")
    assert f"client=bot.spammer.example[{SPAMMER}]" in out
    assert re.search(r"to=<peter@example.org>, relay=mx1.example.org\[127.0.0.3\]:25, .*"
                     r"dsn=2.0.0, status=sent", out)
    rc, out, _ = lab_cli(d, "mailbox", "mx1", "peter")
    assert received(out) == ["mx1.example.org", "mail.example.com"]
    admin(capsys, d / "hosts/relay", "postconf", "-e", FIX_MYNETWORKS)
    assert lab_cli(d, "reload", "relay")[0] == 0
    rc, out, _ = lab_cli(d, "send", "--from", "offers@spammer.example", "--to", "peter@example.org",
                         "--via", "relay", "--client", SPAMMER, "--helo", "bot.spammer.example")
    assert rc == 1 and f"C: RCPT TO:<peter@example.org>\nS: {DENIED_454}\n" in out
    rc, out, _ = lab_cli(d, "log", "relay", "--json")
    assert sum(f"reject: RCPT from bot.spammer.example[{SPAMMER}]: {DENIED_454}" in ln
               for ln in json.loads(out)) == 1


# -- broken-configs ----------------------------------------------------------------------------------
BOTH_WARNING = "warning: do not list domain example.org in BOTH mydestination and virtual_alias_domains"


@pytest.fixture
def broken(tmp_path) -> Lab:
    return Lab.init(tmp_path / "lab", from_lab="broken-configs")


def test_broken_a_domain_in_both_mydestination_and_virtual_alias_domains(broken):
    assert not any("BOTH" in ln for ln in broken.log("both"))
    r = broken.send("alice@example.com", ["info@example.org", "x@example.org"], via="both")
    assert reply_to(r, "RCPT TO:<info@example.org>") == "250 2.1.5 Ok" and r.ok
    assert reply_to(r, "RCPT TO:<x@example.org>") == (
        "550 5.1.1 <x@example.org>: Recipient address rejected: User unknown in local recipient table")
    log = broken.log("both")
    assert any(re.fullmatch(r"\w{3} \d\d \d\d:\d\d:\d\d mail postfix/trivial-rewrite\[\d+\]: "
                            + re.escape(BOTH_WARNING), ln) for ln in log)
    one(log, "to=<peter@example.org>, orig_to=<info@example.org>, relay=local",
        "status=sent (delivered to mailbox)")


def test_broken_b_mx_host_without_address_record(broken):
    assert broken.dns.dig("nomx.example", "MX").split()[-2:] == ["10", "mail.nomx.example."]
    assert broken.dns.dig("mail.nomx.example", "A") == ""              # no address record
    assert broken.send("alice@example.com", "bob@nomx.example").ok
    log = broken.log("mail")
    one(log, "postfix/smtp[", "warning: no MX host for nomx.example has a valid address record")
    one(log, "to=<bob@nomx.example>, relay=none", "dsn=5.4.4, status=bounced (Host or domain name "
        "not found. Name service error for name=mail.nomx.example type=A: Host not found)")
    assert "<bob@nomx.example>: Host or domain name not found." in broken.mailbox("mail", "alice")
    assert broken.mailq("mail") == "Mail queue is empty\n"


def test_broken_c_relayhost_typo_defers_and_the_fix_delivers(broken, tmp_path, capsys):
    assert broken.send("bob@office.example", "peter@example.org").ok
    log = broken.log("office")
    one(log, "postfix/smtp[", "warning: relayhost configuration problem")
    one(log, "to=<peter@example.org>, relay=none", "dsn=4.3.5, status=deferred (Host or domain name "
        "not found. Name service error for name=smtp.isp.exmaple.net type=A: Host not found)")
    assert "peter@example.org" in broken.mailq("office")
    broken.run(until="30m")                                  # retried, still deferred
    assert sum("status=deferred" in ln for ln in broken.log("office")) >= 3
    assert not any("status=bounced" in ln for ln in broken.log("office"))
    admin(capsys, tmp_path / "lab/hosts/office", "postconf", "-e", "relayhost = [smtp.isp.example.net]")
    broken.reload("office")
    broken.flush("office")
    one(broken.log("office"), "to=<peter@example.org>, relay=smtp.isp.example.net[127.0.0.5]:25",
        "status=sent")
    assert received(broken.mailbox("both", "peter"))[:3] == [
        "mail.example.org", "smtp.isp.example.net", "gw.office.example"]


def test_broken_d_virtual_table_never_built(broken, tmp_path, capsys):
    sdir = tmp_path / "lab/hosts/shop"
    assert not (sdir / "etc/postfix/virtual.db").exists()
    failure = "451 4.3.0 <info@shop.example>: Temporary lookup failure"
    r = broken.send("alice@example.com", "info@shop.example", via="shop")
    assert not r.ok and reply_to(r, "RCPT") == failure
    log = broken.log("shop")
    assert any("postfix/smtpd[" in ln and ln.endswith(
        "warning: hash:/etc/postfix/virtual is unavailable. open database "
        "/etc/postfix/virtual.db: No such file or directory") for ln in log)
    assert any(f"NOQUEUE: reject: RCPT from localhost[127.0.0.1]: {failure};" in ln for ln in log)
    assert broken.send("alice@example.com", "info@shop.example").ok      # from mail: deferred
    one(broken.log("mail"), "to=<info@shop.example>, relay=mail.webhost.example[127.0.0.7]:25",
        f"dsn=4.3.0, status=deferred (host mail.webhost.example[127.0.0.7] said: {failure} "
        "(in reply to RCPT TO command))")
    # the fix: write the table, postmap, reload; mail's next retry delivers
    (sdir / "etc/postfix/virtual").write_text("info@shop.example  sam\n")
    admin(capsys, sdir, "postmap", "/etc/postfix/virtual")
    broken.reload("shop")
    broken.run(until="10m")
    one(broken.log("shop"), "to=<sam@webhost.example>, orig_to=<info@shop.example>, relay=local",
        "status=sent (delivered to mailbox)")
    assert broken.mailq("mail") == "Mail queue is empty\n"


def test_broken_e_mail_loop_between_two_relays(broken):
    assert broken.send("alice@example.com", "peter@example.org", via="relay1").ok
    log1, log2 = broken.log("relay1"), broken.log("relay2")
    rejected = [ln for ln in log1 + log2 if "message rejected: hopcount exceeded" in ln]
    assert rejected and all("postfix/cleanup[" in ln and ": warning: " in ln for ln in rejected)
    bounced = [ln for ln in log1 + log2 if "to=<peter@example.org>" in ln and "status=bounced" in ln]
    assert len(bounced) == 1
    assert re.search(r"dsn=5\.4\.0, status=bounced \(host relay[12]\.example\.net\[127\.0\.0\.[89]\] "
                     r"said: 554 5\.4\.0 Error: too many hops \(in reply to end of DATA command\)\)",
                     bounced[0])
    # the message went round: 49 hops, each a status=sent to the other relay
    sent = [ln for ln in log1 + log2 if "to=<peter@example.org>" in ln and "status=sent" in ln]
    assert len(sent) == 48
    assert broken.mailq("relay1") == broken.mailq("relay2") == "Mail queue is empty\n"
    assert broken.mailbox("both", "peter") == ""


def test_broken_f_mx_to_itself_without_mydestination(broken):
    assert broken.send("alice@example.com", "bob@lost.example", via="lost").ok
    one(broken.log("lost"), "to=<bob@lost.example>, relay=none",
        "dsn=5.4.6, status=bounced (mail for lost.example loops back to myself)")
    assert "<bob@lost.example>: mail for lost.example loops back to myself" in \
        broken.mailbox("mail", "alice")
    assert broken.send("alice@example.com", "bob@lost.example").ok       # from outside: refused
    one(broken.log("mail"), "to=<bob@lost.example>, relay=mail.lost.example[127.0.0.10]:25",
        "dsn=4.7.1, status=deferred (host mail.lost.example[127.0.0.10] said: 454 4.7.1 "
        "<bob@lost.example>: Relay access denied (in reply to RCPT TO command))")
    assert broken.mailbox("lost", "bob") == ""


def test_broken_configs_fixes_from_the_header(broken, tmp_path, capsys):
    hosts = tmp_path / "lab/hosts"
    for name, setting in (("both", "virtual_alias_domains ="), ("relay2", "relayhost ="),
                          ("lost", "mydestination = $myhostname, $mydomain, localhost")):
        admin(capsys, hosts / name, "postconf", "-e", setting)
        broken.reload(name)
    before = len(broken.log("both"))
    r = broken.send("alice@example.com", "info@example.org", via="both")            # (a)
    assert r.ok and not any("BOTH" in ln for ln in broken.log("both")[before:])
    assert broken.send("alice@example.com", "peter@example.org", via="relay1").ok     # (e)
    one(broken.log("relay2"), "to=<peter@example.org>, relay=mail.example.org[127.0.0.3]:25",
        "status=sent")
    assert not any("hopcount" in ln for ln in broken.log("relay1") + broken.log("relay2"))
    assert broken.send("alice@example.com", "bob@lost.example").ok                    # (f)
    one(broken.log("lost"), "to=<bob@lost.example>, relay=local", "status=sent (delivered to mailbox)")
    assert messages(broken.mailbox("both", "peter")) == 2
    assert broken.mailbox("mail", "alice") == ""                                     # no bounces


def test_broken_configs_cli_never_a_traceback(tmp_path):
    d = tmp_path / "lab"
    rc, out, err = lab_cli(d, "init", "--from", "broken-configs")
    assert rc == 0 and "8 host(s)" in out, err
    sends = [  # (argv, exit status, what the transcript must show)
        (["--to", "x@example.org", "--via", "both"], 1,
         "S: 550 5.1.1 <x@example.org>: Recipient address rejected: User unknown in local "
         "recipient table\n"),
        (["--to", "bob@nomx.example"], 0, "queued as"),
        (["--to", "info@shop.example", "--via", "shop"], 1,
         "S: 451 4.3.0 <info@shop.example>: Temporary lookup failure\n"),
        (["--to", "peter@example.org", "--via", "relay1"], 0, "queued as"),
        (["--to", "bob@lost.example", "--via", "lost"], 0, "queued as"),
    ]
    for argv, status, want in sends:
        rc, out, err = lab_cli(d, "send", "--from", "alice@example.com", *argv)
        assert (rc, err) == (status, "") and want in out, (argv, out, err)
    rc, out, err = lab_cli(d, "send", "--from", "bob@office.example", "--to", "peter@example.org")
    assert rc == 0
    rc, out, err = lab_cli(d, "run", "--until", "1h")
    assert rc == 0 and "still queued: mail 0, both 0, office 1," in out, out
    logs = {h: lab_cli(d, "log", h)[1] for h in ("mail", "both", "office", "shop", "relay2", "lost")}
    assert BOTH_WARNING in logs["both"]
    assert "dsn=5.4.4, status=bounced (Host or domain name not found. Name service error for " \
           "name=mail.nomx.example type=A: Host not found)" in logs["mail"]
    assert "warning: relayhost configuration problem" in logs["office"]
    assert "dsn=4.3.5, status=deferred" in logs["office"]
    assert "open database /etc/postfix/virtual.db: No such file or directory" in logs["shop"]
    assert "message rejected: hopcount exceeded" in logs["relay2"] + lab_cli(d, "log", "relay1")[1]
    assert "(mail for lost.example loops back to myself)" in logs["lost"]
    rc, out, _ = lab_cli(d, "mailq", "office")
    assert rc == 0 and "(Host or domain name not found. Name service error for " \
                       "name=smtp.isp.exmaple.net type=A: Host not found)" in out
    rc, out, _ = lab_cli(d, "dig", "nomx.example", "MX")
    assert rc == 0 and "10 mail.nomx.example." in out


def test_the_three_labs_are_listed_by_the_command():
    out = subprocess.run([sys.executable, "-m", "mailsim", "lab", "list"], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).parent.parent).stdout.split()
    assert {"virtual-hosting", "open-relay", "broken-configs"} <= set(out)
