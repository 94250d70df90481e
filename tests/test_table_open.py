"""Daemons log what went wrong opening their tables when they start, as Postfix's do.

The recorded scenarios missing-table-virtual, missing-table-access and
rcpt-syntax-more (tests/test_log_conformance.py) hold real Postfix's lines;
these tests pin the rules behind them on small hosts.
"""
from __future__ import annotations

import os
import time

from mailsim.host import init_host


def _tail(host, n: int = 0) -> list[str]:
    return [ln.split(" ", 4)[4] for ln in host.log.lines[n:]]


def _mail_peter(host) -> None:
    """One message from alice to peter, through an in-process session, then QUIT."""
    s = host.session()
    for line in ("HELO client.example.org", "MAIL FROM:<alice@example.org>",
                 "RCPT TO:<peter@example.com>", "DATA"):
        s.send(line)
    s.message("Subject: hi\n\nhello\n")
    s.send("QUIT")


def test_smtpd_logs_a_missing_db_before_connect_and_once(tmp_path):
    h = init_host(tmp_path / "mx", users=["peter"])
    h = h.with_settings(smtpd_sender_restrictions="check_sender_access hash:/etc/postfix/nosuch")
    s = h.session()
    lines = _tail(h)
    first = [ln for ln in lines if "postfix/smtpd[" in ln]
    assert first[0].endswith("error: open database /etc/postfix/nosuch.db: No such file or directory")
    assert "connect from localhost[127.0.0.1]" in first[1]
    s.send("EHLO client.example.org")
    s.send("MAIL FROM:<alice@example.org>")
    assert s.send("RCPT TO:<peter@example.com>").startswith("451 4.3.5")
    assert sum("error: open database" in ln and "smtpd" in ln for ln in _tail(h)) == 1


def test_local_logs_a_stale_aliases_db_when_it_delivers(tmp_path):
    h = init_host(tmp_path / "mx", users=["peter"])
    aliases = h.path("/etc/aliases")
    aliases.write_text(aliases.read_text() + "sales: peter\n")         # and no newaliases
    now = time.time()
    os.utime(h.path("/etc/aliases.db"), (now - 600, now - 600))
    os.utime(aliases, (now - 300, now - 300))
    _mail_peter(h)
    said = [ln for ln in _tail(h) if "older than source file" in ln]
    daemons = sorted({ln.split("[")[0] for ln in said})
    # smtpd opens alias_maps through local_recipient_maps, local(8) through alias_maps
    assert daemons == ["postfix/local", "postfix/smtpd"], said
    assert said[0].endswith("warning: database /etc/aliases.db is older than source file /etc/aliases")


def test_cleanup_logs_a_regexp_tables_warnings_when_it_starts(tmp_path):
    h = init_host(tmp_path / "mx", users=["peter"])
    h.path("/etc/postfix/header_checks").write_text("/^Subject: x/ REJECT no\nnot a rule\n")
    h = h.with_settings(header_checks="regexp:/etc/postfix/header_checks")
    _mail_peter(h)
    said = [ln for ln in _tail(h) if "header_checks" in ln]
    assert said and all(ln.startswith("postfix/cleanup[") for ln in said), said
    assert "regexp map /etc/postfix/header_checks, line 2:" in said[0]


def test_a_host_whose_tables_are_fine_logs_nothing_and_hands_out_no_pid(tmp_path):
    h = init_host(tmp_path / "mx", users=["peter"])
    s = h.session()
    s.send("HELO client.example.org")
    s.send("MAIL FROM:<alice@example.org>")
    s.send("RCPT TO:<peter@example.com>")
    assert not any("trivial-rewrite" in ln for ln in _tail(h))
    assert "_trivial_pid" not in h.__dict__


def test_trivial_rewrite_warns_for_a_failing_domain_list_at_every_resolve(tmp_path):
    h = init_host(tmp_path / "mx", users=["peter"])
    h = h.with_settings(virtual_alias_maps="hash:/etc/postfix/virtual")     # no virtual.db
    s = h.session()
    s.send("EHLO client.example.org")
    s.send("MAIL FROM:<alice@example.org>")      # trivial-rewrite starts: its open error
    assert s.send("RCPT TO:<user@other.org>").startswith("451 4.3.0")
    tr = [ln.split(": ", 1)[1] for ln in _tail(h) if ln.startswith("postfix/trivial-rewrite[")]
    failed = ["warning: hash:/etc/postfix/virtual is unavailable. open database "
              "/etc/postfix/virtual.db: No such file or directory",
              "warning: virtual_alias_domains: hash:/etc/postfix/virtual: table lookup problem",
              "warning: virtual_alias_domains lookup failure"]
    # once for the sender (smtpd_check_addr at MAIL FROM), once for the recipient
    assert tr == ["error: open database /etc/postfix/virtual.db: No such file or directory",
                  *failed, *failed]


def test_trivial_rewrite_gripes_about_a_malformed_ipv4_literal(tmp_path):
    h = init_host(tmp_path / "mx", users=["peter"])
    s = h.session()
    s.send("EHLO client.example.org")
    s.send("MAIL FROM:<alice@example.org>")
    assert s.send("RCPT TO:<user@[1.2.3]>").startswith("501 5.1.3")
    assert any(ln.startswith("postfix/trivial-rewrite[")
               and ln.endswith("warning: valid_ipv4_hostaddr: invalid octet count: 1.2.3")
               for ln in _tail(h))
