"""The %%smtp magic: telnet-like transcripts, in-process and against `mailsim serve`."""
from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from mailsim.clock import SimClock
from mailsim.host import Host
from mailsim.magic import Transcript, _commands, parse_serve_address, smtp

RELAY = """EHLO client.example.org
MAIL FROM:<bob@example.org>
RCPT TO:<alice@example.com>
RCPT TO:<someone@example.net>
QUIT
"""


@pytest.fixture(scope="module")
def ip():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "mailsim")
    return shell


def test_text_form_tells_client_from_server(host):
    t = smtp(host, RELAY, client="192.0.2.99")
    lines = t.text().splitlines()
    assert lines[0] == "S: 220 mail.example.com ESMTP Postfix (Debian/GNU)"
    assert "C: EHLO client.example.org" in lines
    assert "S: 250-PIPELINING" in lines          # a multi-line reply, line by line
    assert "S: 454 4.7.1 <someone@example.net>: Relay access denied" in lines
    assert lines[-2:] == ["C: QUIT", "S: 221 2.0.0 Bye"]
    assert all(l[:3] in ("C: ", "S: ") for l in lines)
    assert repr(t) == str(t) == t.text()
    assert t.codes == [220, 250, 250, 250, 454, 221]
    assert t.reply_to("RCPT") == "454 4.7.1 <someone@example.net>: Relay access denied"


def test_html_colours_reply_classes(host):
    t = smtp(host, "MAIL FROM:<a@example.org>\nRCPT TO:<nosuch@example.com>\nRCPT TO:<x@example.net>",
             client="192.0.2.99")
    h = t._repr_html_()
    assert "#1a7f37" in h and "#cf222e" in h and "#bc4c00" in h     # 2xx, 5xx, 4xx
    assert "&lt;nosuch@example.com&gt;" in h                     # escaped


def test_data_is_dot_stuffed_and_blank_lines_kept(host):
    t = smtp(host, "MAIL FROM:<a@example.org>\nRCPT TO:<alice@example.com>\nDATA\n"
                   "Subject: hi\n\n.leading dot\n.\nQUIT")
    text = t.text()
    assert "C: Subject: hi\nC:\nC: ..leading dot\nC: .\nS: 250 2.0.0 Ok: queued as" in text
    assert t.codes[-3:] == [354, 250, 221]


def test_refused_data_sends_no_message(host):
    t = smtp(host, "MAIL FROM:<a@example.org>\nDATA\nSubject: x\n\nbody\n.\nNOOP")
    assert "#  message not sent: the server did not answer DATA with 354" in t.text()
    assert "C: Subject: x" not in t.text()
    assert t.text().endswith("C: NOOP\nS: 250 2.0.0 Ok")


def test_lines_after_close_are_not_sent_and_comments_skipped(host):
    t = smtp(host, ["# a comment", "QUIT", "NOOP", "HELO x"])
    assert t.text().splitlines()[1:] == ["C: QUIT", "S: 221 2.0.0 Bye",
                                         "#  connection closed by the server: 2 line(s) not sent"]


def test_smtpd_that_does_not_start(host):
    t = smtp(host.with_settings(smtpd_relay_restrictions="permit_mynetworks"), "EHLO x.example.org")
    assert t.text().splitlines()[0].startswith("#  no greeting: smtpd exited at startup (fatal: in parameter")
    assert "1 line(s) not sent" in t.text()


def test_commands_parsing():
    assert _commands("data\nx\n") == [("data", "data"), ("message", ["x"])]


def test_deterministic(tmp_path):
    from mailsim import init_host
    outs = []
    for n in range(2):
        h = init_host(tmp_path / f"h{n}", users=["alice"])
        outs.append(smtp(h, "MAIL FROM:<a@example.org>\nRCPT TO:<alice@example.com>\nDATA\nx\n.").text())
    assert outs[0] == outs[1]
    assert str(tmp_path) not in outs[0]


def test_cell_magic(ip, host):
    ip.user_ns["host"] = host
    t = ip.run_cell_magic("smtp", "--client 192.0.2.99", RELAY)
    assert isinstance(t, Transcript)
    assert "S: 454 4.7.1 <someone@example.net>: Relay access denied" in t.text()
    ip.user_ns["mx"] = host
    t2 = ip.run_cell_magic("smtp", "mx", RELAY)        # 127.0.0.1 is in mynetworks: relays
    assert t2.reply_to("RCPT TO:<someone") == "250 2.1.5 Ok"


def test_cell_magic_through_run_cell(ip, host):
    ip.user_ns["host"] = host
    res = ip.run_cell("%%smtp\nNOOP\n")
    assert res.success
    assert res.result.text() == ("S: 220 mail.example.com ESMTP Postfix (Debian/GNU)\n"
                                 "C: NOOP\nS: 250 2.0.0 Ok")
    fmt = ip.display_formatter.format(res.result)[0]
    assert fmt["text/plain"] == res.result.text()
    assert "<pre" in fmt["text/html"]


def test_cell_magic_errors(ip, host):
    ip.user_ns.pop("nohost", None)
    with pytest.raises(UsageError, match="no variable 'nohost'"):
        ip.run_cell_magic("smtp", "nohost", "NOOP")
    ip.user_ns["notahost"] = 42
    with pytest.raises(UsageError, match="not a Host"):
        ip.run_cell_magic("smtp", "notahost", "NOOP")
    with pytest.raises(UsageError, match="loopback"):
        ip.run_cell_magic("smtp", "--serve 192.0.2.1:25", "NOOP")
    with pytest.raises(UsageError):
        ip.run_cell_magic("smtp", "--client not-an-ip", "NOOP")


def test_parse_serve_address():
    assert parse_serve_address("[::1]:25") == ("::1", 25)
    for bad in ("mail.example.com:25", "10.0.0.1:25", "127.0.0.1"):
        with pytest.raises(ValueError):
            parse_serve_address(bad)


@pytest.fixture
def server(host):
    from conformance import ServerThread
    st = ServerThread(host.root, clock=SimClock())
    yield st
    st.close()


def test_serve_matches_in_process(ip, host, server):
    dialogue = "EHLO client.example.org\nMAIL FROM:<bob@example.org>\nRCPT TO:<nosuch@example.com>\nQUIT"
    ip.user_ns["host"] = host
    over_socket = ip.run_cell_magic("smtp", f"--serve 127.0.0.1:{server.port}", dialogue)
    in_process = smtp(Host(host.root, clock=SimClock()), dialogue)
    assert over_socket.text() == in_process.text()
    assert over_socket.codes[-2:] == [550, 221]


def test_serve_message_and_client_address(host, server):
    t = smtp(None, "MAIL FROM:<a@example.org>\nRCPT TO:<someone@example.net>\nDATA\n.x\n.\nQUIT",
             serve=f"localhost:{server.port}", client="127.0.0.2")
    assert t.codes[:4] == [220, 250, 250, 354]         # 127.0.0.2 is in mynetworks
    assert "C: ..x" in t.text() and t.codes[-1] == 221
    with pytest.raises(ValueError, match="loopback"):
        smtp(None, "NOOP", serve=f"127.0.0.1:{server.port}", client="192.0.2.99")


def test_a_message_sent_in_a_dialogue_is_delivered_when_it_ends(tmp_path):
    """QUIT ends the session: the queue manager delivers at once, as after any session."""
    from mailsim import init_host
    from mailsim.magic import smtp
    from mailsim.notebook import mailbox
    host = init_host(tmp_path / "mx", hostname="mail.example.com", users=["bob"])
    smtp(host, "EHLO client.example\nMAIL FROM:<alice@example.org>\nRCPT TO:<bob@example.com>\n"
               "DATA\nSubject: by hand\n\nhello\n.\nQUIT")
    assert "Subject: by hand" in mailbox(host, "bob")
