"""Exercise checks: they pass on a right configuration and explain a wrong one."""
from __future__ import annotations

from mailsim.exercises import (Result, check_mynetworks, check_not_open_relay, check_parameter,
                               check_relay_domains, check_reply)
from mailsim.magic import smtp


def test_result_text():
    assert repr(Result(True, "fine")) == "✔ fine"
    r = Result(False, "bad", "x is y", "set z", "postconf -e 'z = 1'; postfix reload")
    assert str(r) == "✘ bad because x is y; fix: set z (on a real server: postconf -e 'z = 1'; postfix reload)"
    assert not r and Result(True, "ok")


def test_not_open_relay_default_and_reject(host):
    r = check_not_open_relay(host)
    assert r.ok and "454" in r.what and "defer_unauth_destination" in r.what
    r = check_not_open_relay(host.with_settings(
        smtpd_relay_restrictions="permit_mynetworks, reject_unauth_destination"))
    assert r.ok and "554 5.7.1" in r.what and "temporary" not in r.what


def test_open_relay_by_mynetworks(host):
    r = check_not_open_relay(host.with_settings(mynetworks="127.0.0.0/8 192.0.2.0/24"))
    assert not r.ok
    assert "192.0.2.99 is in mynetworks (127.0.0.0/8 192.0.2.0/24)" in r.because
    assert "postconf -e 'mynetworks = 127.0.0.0/8" in r.real and r.real.endswith("postfix reload")


def test_open_relay_by_permit(host):
    r = check_not_open_relay(host.with_settings(
        smtpd_relay_restrictions="permit_mynetworks, permit, reject_unauth_destination"))
    assert not r.ok and "'permit'" in r.because
    assert "reject_unauth_destination" in r.real


def test_open_relay_by_access_table(make_host):
    h = make_host(main_cf={"smtpd_relay_restrictions":
                           "permit_mynetworks, check_client_access hash:/etc/postfix/clients, "
                           "reject_unauth_destination"},
                  files={"clients": "192.0.2 OK\n"})
    r = check_not_open_relay(h)
    assert not r.ok
    assert "check_client_access hash:/etc/postfix/clients answers 192.0.2 -> OK" in r.because
    assert "postmap hash:/etc/postfix/clients" in r.real


def test_open_relay_by_relay_domains(host):
    r = check_not_open_relay(host.with_settings(relay_domains="elsewhere.example"))
    assert not r.ok and "elsewhere.example is in relay_domains" in r.because


def test_smtpd_that_does_not_start(host):
    r = check_not_open_relay(host.with_settings(smtpd_relay_restrictions="permit_mynetworks"))
    assert not r.ok and "smtpd does not start" in r.what
    assert "specify at least one working instance of" in r.because


def test_relay_domains(host):
    r = check_relay_domains(host, "example.net")
    assert not r.ok and "relay_domains (= '', the default) does not list it" in r.because
    assert r.real == "postconf -e 'relay_domains = example.net'; postfix reload"
    assert check_relay_domains(host.with_settings(relay_domains="example.net"), "example.net").ok
    r = check_relay_domains(host, "example.com")
    assert not r.ok and "mydestination lists it (address class local)" in r.because
    r = check_relay_domains(host.with_settings(relay_domains="example.net, example.org"), "example.com")
    assert "relay_domains = example.net example.org example.com" in r.real


def test_mynetworks(host):
    ok = check_mynetworks(host, ["127.0.0.1"], ["192.0.2.99"])
    assert ok.ok and "holds 127.0.0.1 and not 192.0.2.99" in ok.what
    r = check_mynetworks(host, "127.0.0.1 192.0.2.10", [])
    assert not r.ok and "192.0.2.10 should be in it but is not" in r.because
    assert "192.0.2.10/32" in r.real
    r = check_mynetworks(host.with_settings(mynetworks="127.0.0.0/8 192.0.2.0/24"), [], ["192.0.2.99"])
    assert "192.0.2.0/24 covers it" in r.because and "'mynetworks = 127.0.0.0/8'" in r.real
    note = check_mynetworks(host.with_settings(smtpd_relay_restrictions="reject_unauth_destination"),
                            ["127.0.0.1"])
    assert note.ok and "does not use permit_mynetworks" in note.what


def test_parameter(host):
    assert check_parameter(host, "myhostname", "mail.example.com").ok
    assert check_parameter(host, "mydestination",
                           "$myhostname localhost.$mydomain localhost").ok is not None
    r = check_parameter(host, "relayhost", "[smtp.example.net]:587")
    assert not r.ok and r.real == "postconf -e 'relayhost = [smtp.example.net]:587'; postfix reload"
    assert "did you mean mynetworks" in str(check_parameter(host, "mynetwork", "x"))


def test_parameter_needs_reload(host):
    cf = host.root / "etc/postfix/main.cf"
    cf.write_text(cf.read_text() + "relayhost = [smtp.example.net]:587\n")
    r = check_parameter(host, "relayhost", "[smtp.example.net]:587")
    assert not r.ok and "has not re-read main.cf" in r.because and r.real == "postfix reload"
    host.reload()
    assert check_parameter(host, "relayhost", "[smtp.example.net]:587").ok


def test_reply(host):
    t = smtp(host, "MAIL FROM:<a@example.org>\nRCPT TO:<x@example.net>\nQUIT", client="192.0.2.99")
    r = check_reply(t, "5xx")                       # the reply before QUIT
    assert not r.ok and "454 4.7.1" in r.what and "reject_unauth_destination" in r.fix
    assert check_reply(t, 454).ok and check_reply(t, "4").ok and check_reply(t, "45x").ok
    assert check_reply(t, 250, command="MAIL").ok
    assert check_reply(t, 221, command="QUIT").ok
    assert not check_reply("", 250).ok
    assert "MAIL FROM before RCPT TO" in check_reply("503 5.5.1 Error: need MAIL command", 250).fix
    from mailsim.graphs import decide
    assert check_reply(decide(host, ["alice@example.com"])[0], 250).ok
