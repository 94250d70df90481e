"""The SMTP console and the relay playground, without a browser or a kernel."""
from __future__ import annotations

import shutil

import pytest

from mailsim.widgets import ConsoleModel, PlaygroundModel, RelayPlayground, SMTPConsole

RCPTS = ["alice@example.com", "someone@example.net"]


def test_console_model_dialogue(host):
    m = ConsoleModel(host, client="192.0.2.99")
    assert m.transcript.text() == "S: 220 mail.example.com ESMTP Postfix (Debian/GNU)"
    assert m.submit("EHLO client.example.org").endswith("250 CHUNKING")
    assert m.submit("MAIL FROM:<bob@example.org>") == "250 2.1.0 Ok"
    assert m.submit("RCPT TO:<alice@example.com>") == "250 2.1.5 Ok"
    assert m.submit("DATA").startswith("354")
    assert m.submit("Subject: hi") == ""          # message lines get no reply
    assert m.submit("") == ""
    assert m.submit("..a line with a dot") == ""  # telnet: the user stuffs
    assert m.submit(".").startswith("250 2.0.0 Ok: queued as")
    assert m.submit("RSET") == "250 2.0.0 Ok"     # back to commands
    assert m.history[-2:] == [".", "RSET"]
    assert "C: ..a line with a dot" in m.transcript.text()
    assert m.submit("QUIT") == "221 2.0.0 Bye" and m.closed
    assert "closed" in m.submit("NOOP")
    m.reset()
    assert not m.closed and m.submit("NOOP") == "250 2.0.0 Ok"
    assert len(m.transcript.entries) == 3


def test_console_widget(host):
    c = SMTPConsole(host)
    c.command.value = "HELO client.example.org"      # what Enter does
    assert c.command.value == ""
    assert "250 mail.example.com" in c.dialogue.value
    c.send_button.click()                             # empty line: a 500-class reply
    assert "Error: command not recognized" in c.dialogue.value or "500" in c.dialogue.value
    assert ("HELO client.example.org", "HELO client.example.org") in c.recall.options
    c.recall.value = "HELO client.example.org"
    assert c.command.value == "HELO client.example.org"
    c.send_button.click()
    assert c.model.history == ["HELO client.example.org", "", "HELO client.example.org"]
    c.reset_button.click()
    assert c.dialogue.value.count("<span") == 2       # only the greeting
    assert c.model.history                            # the history survives a new connection


def test_playground_model(host):
    p = PlaygroundModel(host, RCPTS, client="192.0.2.99")
    rows = p.update()
    assert rows == [("alice@example.com", "250 2.1.5 Ok", "no element refused it"),
                    ("someone@example.net", "454 4.7.1 <someone@example.net>: Relay access denied",
                     "smtpd_relay_restrictions: defer_unauth_destination")]
    assert p.update(mynetworks="192.0.2.0/24")[1] == (
        "someone@example.net", "250 2.1.5 Ok", "smtpd_relay_restrictions: permit_mynetworks")
    assert p.update(client="198.51.100.1")[1][1].startswith("454")     # mynetworks kept
    assert p.update(relay_domains="example.net")[1][1] == "250 2.1.5 Ok"
    rows = p.update(relay_domains="", smtpd_relay_restrictions="permit_mynetworks, reject_unauth_destination")
    assert rows[1][1] == "554 5.7.1 <someone@example.net>: Relay access denied"
    assert rows[1][2] == "smtpd_relay_restrictions: reject_unauth_destination"
    # without reject_unauth_destination (or the like) Postfix's smtpd refuses to start
    rows = p.update(smtpd_relay_restrictions="permit_mynetworks")
    assert rows[1][1].startswith("no reply: smtpd exited at startup")
    assert rows[1][2] == "(smtpd): startup"
    assert "specify at least one working instance of" in p.text()
    rows = p.update(smtpd_relay_restrictions="bogus, reject_unauth_destination")
    assert rows[1][1].startswith("451 4.3.5")
    assert "smtpd_relay_restrictions" in p.text()
    assert host.conf.raw("relay_domains") != "example.net"              # main.cf untouched


def test_playground_widget_redraws(host):
    w = RelayPlayground(host, RCPTS)
    assert set(w.fields) == {"mynetworks", "relay_domains", "smtpd_relay_restrictions", "client"}
    assert w.fields["mynetworks"].value == host.conf["mynetworks"]
    assert w.fields["smtpd_relay_restrictions"].value == (
        "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination")   # expanded
    assert w.fields["relay_domains"].value == ""
    assert "Relay access denied" in w.table.value and "<svg" in w.picture.value
    w.fields["relay_domains"].value = "example.net"
    assert "Relay access denied" not in w.table.value
    w.fields["client"].value = "127.0.0.1"
    assert w.model.client == "127.0.0.1"


def test_playground_widget_without_dot(host, monkeypatch):
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda n, *a, **k: None if n == "dot" else real(n, *a, **k))
    w = RelayPlayground(host, RCPTS[1:])
    assert "<svg" in w.picture.value
    w2 = RelayPlayground(host, RCPTS[1:], draw=False)
    assert "defer_unauth_destination -&gt; DEFER" in w2.picture.value
