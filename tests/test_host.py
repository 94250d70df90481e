"""A host is a folder shaped like a server's root; `mailsim init`; postfix check/status."""
from __future__ import annotations

import io
import os
import time

import pytest

from mailsim.cli import main as cli_main, run_command
from mailsim.host import Host, init_host


def test_init_writes_a_debian_like_server_root(tmp_path):
    root = tmp_path / "mx"
    assert cli_main(["init", str(root), "--hostname", "mx.sue.nl", "--user", "alice"]) == 0
    for p in ("etc/postfix/main.cf", "etc/postfix/master.cf", "etc/aliases", "etc/aliases.db",
              "etc/passwd", "etc/hosts", "var/spool/postfix/incoming", "var/spool/postfix/deferred",
              "var/spool/postfix/flush",
              "var/mail", "var/log"):
        assert (root / p).exists(), p
    h = Host(root)
    assert h.conf["myhostname"] == "mx.sue.nl"
    assert h.conf["maillog_file"] == "/var/log/maillog"
    assert h.conf["mydestination"] == "mx.sue.nl, localhost.sue.nl, localhost, sue.nl"
    assert "alice" in h.users() and "root" in h.users()
    assert h.open_map("hash:/etc/aliases").lookup("mailer-daemon") == "postmaster"
    assert "smtp      inet  n       -       y       -       -       smtpd" in \
        (root / "etc/postfix/master.cf").read_text()
    assert cli_main(["init", str(root)]) == 1          # never overwrites a host by accident


def test_paths_stay_inside_the_host(tmp_path):
    h = init_host(tmp_path / "mx")
    assert h.path("/etc/postfix/virtual") == h.root / "etc/postfix/virtual"
    assert h.path("virtual") == h.root / "etc/postfix/virtual"
    # as on a real server, /.. is / : nothing resolves outside the host folder
    assert h.path("/../../etc/shadow") == h.root / "etc/shadow"
    (h.root / "var/mail/escape").symlink_to("/etc")
    with pytest.raises(PermissionError):
        h.path("/var/mail/escape/passwd")


def test_configuration_is_kept_until_reload(tmp_path):
    h = init_host(tmp_path / "mx")
    out = io.StringIO()
    run_command(h.root, "postconf", ["-e", "smtpd_banner = $myhostname ready"], out=out, err=out)
    assert h.session().banner == "220 mail.example.com ESMTP Postfix (Debian/GNU)"
    h.reload()
    assert h.session().banner == "220 mail.example.com ready"


def test_stale_table_keeps_old_answers_until_postmap(tmp_path):
    h = init_host(tmp_path / "mx", users=["jim"])
    run_command(h.root, "postconf", ["-e", "virtual_alias_maps = hash:/etc/postfix/virtual"],
                out=io.StringIO(), err=io.StringIO())
    virt = h.root / "etc/postfix/virtual"
    virt.write_text("info@sue.nl jim\n")
    run_command(h.root, "postmap", ["/etc/postfix/virtual"], out=io.StringIO(), err=io.StringIO())
    assert h.open_map("hash:/etc/postfix/virtual").lookup("info@sue.nl") == "jim"
    virt.write_text("info@sue.nl nobody\n")          # edited, not rebuilt
    assert h.open_map("hash:/etc/postfix/virtual").lookup("info@sue.nl") == "jim"
    # postfix check (postfix-script) never looks at tables: it stays silent
    err = io.StringIO()
    assert run_command(h.root, "postfix", ["check"], out=io.StringIO(), err=err) == 0
    assert err.getvalue() == ""
    # opening the table warns once the edit is more than 100 s old (dict_db.c), here: postmap -q
    stale = "database /etc/postfix/virtual.db is older than source file /etc/postfix/virtual"
    out, err = io.StringIO(), io.StringIO()
    run_command(h.root, "postmap", ["-q", "info@sue.nl", "hash:/etc/postfix/virtual"], out=out, err=err)
    assert (out.getvalue(), err.getvalue()) == ("jim\n", "")       # edited just now: no warning yet
    now = time.time()
    os.utime(h.root / "etc/postfix/virtual.db", (now - 400, now - 400))
    os.utime(virt, (now - 300, now - 300))
    out, err = io.StringIO(), io.StringIO()
    run_command(h.root, "postmap", ["-q", "info@sue.nl", "hash:/etc/postfix/virtual"], out=out, err=err)
    assert (out.getvalue(), err.getvalue()) == ("jim\n", f"postmap: warning: {stale}\n")
    assert h.open_map("hash:/etc/postfix/virtual").messages == [f"warning: {stale}"]
    run_command(h.root, "postmap", ["/etc/postfix/virtual"], out=io.StringIO(), err=io.StringIO())
    assert h.open_map("hash:/etc/postfix/virtual").lookup("info@sue.nl") == "nobody"
    assert h.open_map("hash:/etc/postfix/virtual").messages == []


def test_postfix_check_does_not_look_at_tables(tmp_path):
    # postfix-script's check-fatal/check-warn check files and directories, not lookup tables
    h = init_host(tmp_path / "mx")
    run_command(h.root, "postconf", ["-e", "virtual_alias_maps = hash:/etc/postfix/virtual"],
                out=io.StringIO(), err=io.StringIO())
    (h.root / "etc/postfix/virtual").write_text("info@sue.nl jim\n")       # never built
    now = time.time()
    os.utime(h.root / "etc/aliases.db", (now - 400, now - 400))
    os.utime(h.root / "etc/aliases", (now - 300, now - 300))              # stale aliases.db
    out, err = io.StringIO(), io.StringIO()
    assert run_command(h.root, "postfix", ["check"], out=out, err=err) == 0
    assert (out.getvalue(), err.getvalue()) == ("", "")

def test_postfix_check_names_file_and_line_of_a_broken_main_cf(tmp_path):
    h = init_host(tmp_path / "mx")
    cf = h.root / "etc/postfix/main.cf"
    cf.write_text(cf.read_text() + "relayhost [mail.isp.example]\n")
    err = io.StringIO()
    assert run_command(h.root, "postfix", ["check"], out=io.StringIO(), err=err) == 1
    msg = err.getvalue()
    n = len(cf.read_text().splitlines())
    assert "/etc/postfix/main.cf" in msg and f"line {n}" in msg, msg


def test_postfix_status_when_not_running(tmp_path):
    h = init_host(tmp_path / "mx")
    err = io.StringIO()
    assert run_command(h.root, "postfix", ["status"], out=io.StringIO(), err=err) == 1
    assert "the Postfix mail system is not running" in err.getvalue()
    assert run_command(h.root, "postfix", ["reload"], out=io.StringIO(), err=err) == 1


def test_without_maillog_file_the_simulated_syslog_writes_mail_log(tmp_path):
    h = init_host(tmp_path / "mx", users=["alice"])
    run_command(h.root, "postconf", ["-e", "maillog_file ="], out=io.StringIO(), err=io.StringIO())
    h.reload()
    h.session().send("QUIT")
    text = (h.root / "var/log/mail.log").read_text()
    assert "postfix/smtpd[" in text and "disconnect from localhost[127.0.0.1] quit=1 commands=1" in text
    assert not (h.root / "var/log/maillog").exists()
