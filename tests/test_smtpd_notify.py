"""smtpd mails the postmaster a transcript of a session whose errors are in notify_classes.

The recorded scenario access-actions-reject (tests/test_log_conformance.py) holds real
Postfix's notice byte for byte; these tests pin the rules around it.
"""
from __future__ import annotations

from mailsim.host import init_host


def _session(h, rcpt: str, *, quit: bool = True):
    s = h.session()
    s.send("EHLO client.example.org")
    s.send("MAIL FROM:<alice@example.org>")
    reply = s.send(f"RCPT TO:<{rcpt}>")
    if quit:
        s.send("QUIT")
    else:
        s.close()
    h.run_queue()
    return reply


def test_a_policy_reject_is_not_reported_by_default(tmp_path):
    h = init_host(tmp_path / "mx", users=["peter"])
    assert _session(h, "nosuch@example.com").startswith("550 5.1.1")
    assert not h.path("/var/mail/root").exists() and not any(
        "double-bounce" in ln for ln in h.log.lines)


def test_notify_classes_policy_mails_the_transcript_to_postmaster(tmp_path):
    h = init_host(tmp_path / "mx", users=["peter"])
    h = h.with_settings(notify_classes="policy")
    _session(h, "nosuch@example.com")
    box = h.path("/var/mail/root").read_text()
    assert "Subject: Postfix SMTP server: errors from localhost[127.0.0.1]" in box
    assert " In:  RCPT TO:<nosuch@example.com>\n Out: 550 5.1.1 <nosuch@example.com>:" in box
    assert " In:  QUIT\n Out: 221 2.0.0 Bye\n\n\nFor other details, see the local mail logfile" in box


def test_a_configuration_error_is_reported_and_a_lost_session_says_so(tmp_path):
    h = init_host(tmp_path / "mx", users=["peter"])
    h = h.with_settings(smtpd_recipient_restrictions="frobnicate_now")   # software class
    assert _session(h, "peter@example.com", quit=False).startswith("451 4.3.5")
    box = h.path("/var/mail/root").read_text()
    assert "Out: 451 4.3.5 Server configuration error" in box
    assert "\nSession aborted, reason: lost connection\n" in box
