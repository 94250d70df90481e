"""Bridges between a lab and real MTAs on loopback (mailsim.lab.bridge).

* out of the lab: lab.toml's [[bridges]] -- a lab host relays over a real
  socket to an aiosmtpd server, and (when Debian's postfix is installed and
  we are root) to a private instance of real Postfix 3.7, which delivers it;
* into the lab: ``mailsim lab DIR serve HOST --listen`` -- smtplib, and real
  Postfix relaying by transport_maps, reach a lab host, which delivers
  across the lab;
* what goes wrong: a bridge nobody listens behind (deferred, Postfix's
  text), lab.toml mistakes (file:line and the fix).
"""
from __future__ import annotations

import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import wait_for_file
from mailsim.lab import Lab, LabError, parse_lab_toml
from mailsim.lab.bridge import loopback_sink
from mailsim.realpostfix import DOMAIN, postfix_instance, unavailable
from mailsim.serve import free_port

OFFICE = """
[lab]
name = "bridged"
[[hosts]]
name = "office"
address = "127.0.0.6"
hostname = "gw.office.example"
users = ["bob"]
[hosts.main_cf]
relayhost = "[127.0.0.50]"
[[bridges]]
name = "real"
address = "127.0.0.50"
connect = "127.0.0.1:{port}"
"""

MX = """
[lab]
name = "served"
[[hosts]]
name = "mail"
address = "127.0.0.2"
hostname = "mail.example.com"
users = ["alice"]
[[hosts]]
name = "mx1"
address = "127.0.0.3"
hostname = "mx1.example.org"
users = ["peter"]
"""


def lab_at(tmp_path: Path, text: str) -> Lab:
    (tmp_path / "lab.toml").write_text(text)
    return Lab.load(tmp_path)


def smtp_lines(lab: Lab, host: str) -> list[str]:
    return [ln.split(": ", 1)[1] for ln in lab.log(host) if "postfix/smtp[" in ln]


# -- out of the lab -------------------------------------------------------------------------------
def test_relay_to_an_aiosmtpd_server_over_a_real_socket(tmp_path):
    with loopback_sink() as sink:
        lab = lab_at(tmp_path, OFFICE.format(port=sink.port))
        r = lab.send("bob@gw.office.example", ["peter@example.org", "paul@example.net"],
                     via="office")
        assert r.ok
    (mail_from, rcpts, data) = sink.messages[0]
    # one session, the recipients in Postfix's order (by domain)
    assert (mail_from, rcpts) == ("bob@gw.office.example", ["paul@example.net", "peter@example.org"])
    assert b"by gw.office.example (Postfix) with ESMTP id " + r.queue_id.encode() in data
    sent = smtp_lines(lab, "office")
    assert len(sent) == 2 and all(
        "relay=127.0.0.50[127.0.0.50]:25" in ln and "status=sent (250 2.0.0 Ok: queued)" in ln
        for ln in sent), sent
    (conn,) = [c for c in lab.network.connections if c.target == "real"]
    assert (conn.source_addr, conn.addr, conn.result) == ("127.0.0.6", "127.0.0.50", "connected")


def test_nobody_behind_the_bridge_defers_with_postfixs_text(tmp_path):
    lab = lab_at(tmp_path, OFFICE.format(port=free_port()))
    lab.send("bob@gw.office.example", "peter@example.org", via="office")
    (line,) = [ln for ln in smtp_lines(lab, "office") if "status=" in ln]
    assert line.endswith("status=deferred (connect to 127.0.0.50[127.0.0.50]:25: "
                         "Connection refused)"), line
    assert "Connection refused" in lab.mailq("office")


def test_bridge_mistakes_name_the_line_and_the_fix():
    base = MX + '[[bridges]]\nname = "{name}"\naddress = "{addr}"\nconnect = "{conn}"\n'
    with pytest.raises(LabError, match=r"lab.toml:17: bridge \"x\": connect = \"10.0.0.1:25\" "
                                       r"is not on loopback"):
        parse_lab_toml(base.format(name="x", addr="127.0.0.50", conn="10.0.0.1:25"))
    with pytest.raises(LabError, match=r'lab.toml:16: bridge "x": address 127.0.0.3 belongs to "mx1"'):
        parse_lab_toml(base.format(name="x", addr="127.0.0.3", conn="127.0.0.1:2526"))
    with pytest.raises(LabError, match=r"lab.toml:15: a bridge needs a name of its own"):
        parse_lab_toml(base.format(name="mx1", addr="127.0.0.50", conn="127.0.0.1:2526"))


# -- into the lab -----------------------------------------------------------------------------------
class Served:
    """``mailsim lab DIR serve HOST --listen 127.0.0.1:PORT`` as a process."""

    def __init__(self, lab_dir: Path, host: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailsim", "lab", str(lab_dir), "serve", host,
             "--listen", f"127.0.0.1:{self.port}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.banner = self.proc.stdout.readline()

    def stop(self) -> str:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=20)
        return self.banner + out


def test_serve_a_lab_host_to_smtplib_and_deliver_across_the_lab(tmp_path):
    lab_at(tmp_path, MX)
    served = Served(tmp_path, "mail")
    try:
        assert served.banner.startswith("mailsim lab: mail (127.0.0.2 in the lab) listens on "
                                        f"127.0.0.1:{served.port}")
        with smtplib.SMTP("127.0.0.1", served.port) as c:
            assert c.ehlo("client.example")[1].startswith(b"mail.example.com")
            # no zone files in this lab: etc/hosts is its name service (no MX records)
            c.sendmail("alice@example.com", ["peter@mx1.example.org"],
                       b"Subject: over a real socket\r\n\r\nhello\r\n")
        box = wait_for_file(tmp_path / "hosts/mx1/var/mail/peter",
                            b"over a real socket").decode("latin-1")
    finally:
        out = served.stop()
    assert served.proc.returncode == 0, out
    # two hops: mail's smtpd on the real socket, then the lab's network to mx1
    assert "by mx1.example.org (Postfix)" in box and "by mail.example.com (Postfix)" in box
    lab = Lab.load(tmp_path)                   # the run was saved: the CLI sees it
    assert any("to=<peter@mx1.example.org>, relay=mx1.example.org[127.0.0.3]:25" in ln
               and "status=sent (250 2.0.0 Ok: queued as " in ln for ln in lab.log("mail"))


# -- with real Postfix ----------------------------------------------------------------------------
needs_postfix = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))


@needs_postfix
def test_real_postfix_both_directions(tmp_path):
    """A lab host relays to real Postfix, which delivers; real Postfix relays to a served
    lab host, which delivers. Each side's log says what the other one answered."""
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    real_port = free_port()
    (lab_dir / "lab.toml").write_text(OFFICE.format(port=real_port) + "[[hosts]]"
                                      + MX.split("[[hosts]]")[2])    # office, and mx1
    served = Served(lab_dir, "mx1")
    try:
        transport = f"inline:{{ example.org=smtp:[127.0.0.1]:{served.port} }}"
        with postfix_instance(real_port, {"transport_maps": transport}) as pf:
            # lab -> real Postfix: office's relayhost is the bridge
            lab = Lab.load(lab_dir)
            r = lab.send("bob@gw.office.example", f"carol@{DOMAIN}", via="office")
            assert r.ok
            (line,) = [ln for ln in smtp_lines(lab, "office") if "status=" in ln]
            assert "status=sent (250 2.0.0 Ok: queued as " in line, line
            real_qid = line.rsplit(" ", 1)[1].rstrip(")")
            assert pf.wait_for(f"{real_qid}: to=<carol@{DOMAIN}>, relay=virtual")
            box = pf.mailbox("carol")
            assert f"by real.example.net (Postfix) with ESMTP id {real_qid}" in box
            assert "from gw.office.example (unknown [127.0.0.6])" in box   # our HELO and address
            assert f"by gw.office.example (Postfix) with ESMTP id {r.queue_id}" in box
            assert any(f"{real_qid}: client=unknown[127.0.0.6]" in ln for ln in pf.log())
            lab.save()
            # real Postfix -> lab: example.org goes by transport_maps to the served mx1
            with smtplib.SMTP("127.0.0.1", real_port) as c:
                c.sendmail(f"carol@{DOMAIN}", ["peter@example.org"],
                           b"Subject: from real Postfix\r\n\r\nhi\r\n")
            got = wait_for_file(lab_dir / "hosts/mx1/var/mail/peter",
                                b"from real Postfix").decode("latin-1")
            assert pf.wait_for(f"to=<peter@example.org>, relay=127.0.0.1[127.0.0.1]:{served.port}")
            (sent,) = [ln for ln in pf.log() if "to=<peter@example.org>" in ln]
            assert "status=sent (250 2.0.0 Ok: queued as " in sent, sent
            lab_qid = sent.rsplit(" ", 1)[1].rstrip(")")
            assert f"by mx1.example.org (Postfix) with ESMTP id {lab_qid}" in got
            assert "by real.example.net (Postfix) with ESMTP id" in got
    finally:
        served.stop()
