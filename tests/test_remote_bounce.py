"""A remote SMTP server refuses mail: the non-delivery report, against real Postfix 3.7.11.

tests/golden/remote-bounce/*.json were recorded by tools/record_remote_bounce.py:
a private real Postfix (mailsim.realpostfix) relayed a message from
carol@real.example to a scripted SMTP server (mailsim.smtp.peer), which
refused it at the greeting, MAIL FROM, RCPT TO, DATA or the end of data (a
4xx with maximal_queue_lifetime = 0: the message expired at once); bounce(8)
returned the report to carol, and virtual(8) delivered it into her mbox
(relayed-success: the "relayed" success report for NOTIFY=SUCCESS to a server
without DSN). smtp(8) puts the server's name and reply into the DSN, which
bounce(8) prints as ``Remote-MTA: dns; NAME`` and ``Diagnostic-Code: smtp;
REPLY`` -- through the defer logfile when the message expires.

Here a mailsim host configured like that instance gets the same submission
in process; its smtp(8) client talks to the same script (in process, as a
connector at the recorded address and port, so the log shows the same
relay=); its bounce reaches carol's mbox through mailsim's virtual(8).
Compared byte for byte after masking only what differs on every run:

* the mbox entry (Remote-MTA:, Diagnostic-Code: smtp; ..., the text part's
  "host ... said: ...");
* what the client sent to the remote server, in the same writes;
* the log lines of the delivery agents and of bounce(8).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from client_replay import QID, RFCDATE, EnginePeer, init_like, unstamped  # noqa: E402
from conformance import GOLDEN, numbered, per_message, replay_inprocess  # noqa: E402

from mailsim.host import Host  # noqa: E402
from mailsim.smtp.peer import Script  # noqa: E402

REC = GOLDEN / "remote-bounce"
CASES = sorted(p.stem for p in REC.glob("*.json"))

# -- masks: only what differs between two runs, in Postfix too (client_replay's, and) -----------
#: the date in the mbox "From " line
FROM_LINE = re.compile(r"^(From \S+  )[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$",
                       re.M)
#: the time stamp cleanup puts into the Message-Id (<YYYYMMDDhhmmss.QID@...>)
MSGID_TIME = re.compile(r"<\d{14}\.(?=QID\d+@)")
#: the time in the MIME boundary (QID.TIME/myhostname)
BOUNDARY_TIME = re.compile(r"(?<=QID\d)(\d*)\.\d+/")


def mask_mail(text: str) -> str:
    text = numbered(QID, text, "QID")
    text = RFCDATE.sub("RFCDATE", text)
    text = FROM_LINE.sub(r"\1FROMDATE", text)
    text = MSGID_TIME.sub("<MSGIDTIME.", text)
    return BOUNDARY_TIME.sub(r"\1.TIME/", text)


def mask_log(lines: list[str]) -> list[str]:
    return mask_mail(unstamped(lines)).split("\n")


# -- the host -------------------------------------------------------------------------------------
def build(rec: dict, root: Path) -> tuple[Host, EnginePeer]:
    """A host set up like the recording's instance: its main.cf (less its folders),
    real.example's virtual mailboxes in /var/vmail, the scripted peer (in memory) where
    transport_maps says."""
    init_like(rec, root)
    host = Host(root)
    addr, port = rec["peer"].rsplit(":", 1)
    host.smtp_connector = EnginePeer(Script.from_dict(rec["script"]), None, addr, int(port))
    return host, host.smtp_connector


def run(name: str, root: Path):
    rec = json.loads((REC / f"{name}.json").read_text())
    host, peer = build(rec, root)
    for s in rec["sessions"]:
        replay_inprocess({"dialogue": s["dialogue"]}, host)
        host.run_queue()
    return rec, host, peer


def test_the_recordings_are_here() -> None:
    assert CASES == ["data-554", "dot-554", "greeting-554-expired", "mail-553",
                     "rcpt-450-expired", "rcpt-550", "rcpt-550-named", "rcpt-550-no-enhanced",
                     "rcpt-mixed", "relayed-success"]


@pytest.mark.parametrize("name", CASES)
def test_bounce(name: str, tmp_path: Path) -> None:
    rec, host, _ = run(name, tmp_path / "h")
    vmail = host.path("/var/vmail")
    got = {p.name: p.read_text("latin-1") for p in sorted(vmail.iterdir()) if p.is_file()}
    assert sorted(got) == sorted(rec["mailboxes"])
    for user, text in rec["mailboxes"].items():
        assert mask_mail(got[user]) == mask_mail(text), user


@pytest.mark.parametrize("name", CASES)
def test_remote_dialogue(name: str, tmp_path: Path) -> None:
    """What smtp(8) sent, in the same writes (the Received: header's queue id and date
    masked)."""
    rec, _, peer = run(name, tmp_path / "h")
    assert mask_mail(json.dumps(peer.sessions, indent=0)) == \
        mask_mail(json.dumps(rec["remote"], indent=0))


@pytest.mark.parametrize("name", CASES)
def test_log(name: str, tmp_path: Path) -> None:
    """smtp(8)'s status lines are Postfix's (``status=bounced (host ... said: ...)``); so
    is every other line (the same lines; each message's in Postfix's order)."""
    rec, host, _ = run(name, tmp_path / "h")
    got, want = mask_log(host.log.lines), mask_log(rec["log"])
    assert sorted(got) == sorted(want)
    assert per_message(got) == per_message(want)


def test_the_dsn_fields_reach_bounce(tmp_path: Path) -> None:
    """What the gap was about, spelled out for one case."""
    _, host, _ = run("rcpt-550", tmp_path / "h")
    text = host.path("/var/vmail/carol").read_text()
    assert "\nRemote-MTA: dns; 127.0.0.1\n" in text
    assert ("\nDiagnostic-Code: smtp; 550 5.1.1 <petre@example.org>: Recipient address\n"
            "    rejected: User unknown in local recipient table\n") in text
    assert "X-Postfix; host" not in text
