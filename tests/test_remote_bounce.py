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
from conformance import GOLDEN, numbered, per_message, replay_inprocess  # noqa: E402

from mailsim.host import Host, init_host  # noqa: E402
from mailsim.smtp.connect import ChannelTimeout, ConnectFailure, _BufferedChannel  # noqa: E402
from mailsim.smtp.peer import Script, _Conversation, _wire  # noqa: E402

REC = GOLDEN / "remote-bounce"
CASES = sorted(p.stem for p in REC.glob("*.json"))
#: main.cf settings of the instance that name its private folders (mailsim's host has its own)
PATHS = {"config_directory", "data_directory", "queue_directory", "maillog_file",
         "maillog_file_prefixes", "virtual_mailbox_base"}

# -- masks: only what differs between two runs, in Postfix too ---------------------------------
#: queue ids, numbered by first appearance (the same id must stay the same id)
QID = re.compile(r"\b[0-9A-F]{10,12}\b")
#: RFC 2822 dates (Date:, Received:, Arrival-Date:)
RFCDATE = re.compile(r"[A-Z][a-z]{2}, [ \d]\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(UTC\)")
#: the date in the mbox "From " line
FROM_LINE = re.compile(r"^(From \S+  )[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$",
                       re.M)
#: the time stamp cleanup puts into the Message-Id (<YYYYMMDDhhmmss.QID@...>)
MSGID_TIME = re.compile(r"<\d{14}\.(?=QID\d+@)")
#: the time in the MIME boundary (QID.TIME/myhostname)
BOUNDARY_TIME = re.compile(r"(?<=QID\d)(\d*)\.\d+/")
#: the log's time stamp and syslog host name (the instance's "real", mailsim's own)
STAMP = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ ", re.M)
#: process ids
PID = re.compile(r"(postfix/[\w/-]+)\[\d+\]")
#: delays (they depend on the machine's speed)
DELAYS = re.compile(r"delay=[\d.]+, delays=[\d./]+")


def mask_mail(text: str) -> str:
    text = numbered(QID, text, "QID")
    text = RFCDATE.sub("RFCDATE", text)
    text = FROM_LINE.sub(r"\1FROMDATE", text)
    text = MSGID_TIME.sub("<MSGIDTIME.", text)
    return BOUNDARY_TIME.sub(r"\1.TIME/", text)


def mask_log(lines: list[str]) -> list[str]:
    text = DELAYS.sub("delay=D, delays=D", PID.sub(r"\1[PID]", STAMP.sub("", "\n".join(lines))))
    return mask_mail(text).split("\n")


# -- the recorded remote server, in process ------------------------------------------------------
class _PeerChannel(_BufferedChannel):
    """One connection to the scripted peer; keeps a transcript in ScriptedServer's form
    (the client's bytes since the server last wrote, then what the server wrote)."""

    def __init__(self, script: Script) -> None:
        super().__init__()
        self.conv = _Conversation(script)
        self._buf = bytearray()
        self._pending = bytearray()
        self._server = bytearray(_wire(script.greeting))
        self.steps: list[dict] = [{"client": "", "server": script.greeting + "\n"}]
        self.closed = False

    def _write(self, data: bytes) -> None:
        self._pending += data
        self._buf += data
        replies = self.conv.feed(self._buf)
        if not replies:
            return
        said = [r for r in replies if r is not None]
        self.steps.append({"client": self._pending.decode("latin-1"),
                           "server": "".join(r + "\n" for r in said)})
        self._pending = bytearray()
        self._server += b"".join(_wire(r) for r in said)
        if self.conv.closing:
            self.steps[-1]["closed"] = "server"
            self.closed = True

    def _read(self) -> bytes:
        data, self._server = bytes(self._server), bytearray()
        if data or self.closed:
            return data
        raise ChannelTimeout("the peer waits for more input")

    def close(self) -> None:
        self.flush()
        if not self.closed:
            self.steps.append({"client": self._pending.decode("latin-1"), "server": "",
                               "closed": "client"})
            self.closed = True


class PeerConnector:
    """The scripted peer at the recorded ``addr:port``; nothing else answers."""

    def __init__(self, script: Script, addr: str, port: int) -> None:
        self.script, self.addr, self.port = script, addr, port
        self.channels: list[_PeerChannel] = []

    def connect(self, addr: str, port: int, timeout: float | None = None) -> _PeerChannel:
        if (addr, port) != (self.addr, self.port):
            raise ConnectFailure("Connection refused")
        ch = _PeerChannel(self.script)
        self.channels.append(ch)
        return ch

    @property
    def sessions(self) -> list[list[dict]]:
        return [ch.steps for ch in self.channels]


# -- the host -------------------------------------------------------------------------------------
def build(rec: dict, root: Path) -> tuple[Host, PeerConnector]:
    """A host set up like the recording's instance: its main.cf (less its folders),
    real.example's virtual mailboxes in /var/vmail, the peer where transport_maps says."""
    init_host(root, hostname="real.example.net", force=True)
    conf = [ln for ln in rec["main_cf_effective"].splitlines()
            if ln.split("=", 1)[0].strip() not in PATHS]
    conf.append("virtual_mailbox_base = /var/vmail")
    (root / "etc/postfix/main.cf").write_text("\n".join(conf) + "\n")
    (root / "var/vmail").mkdir(parents=True, exist_ok=True)
    host = Host(root)
    addr, port = rec["peer"].rsplit(":", 1)
    host.smtp_connector = PeerConnector(Script.from_dict(rec["script"]), addr, int(port))
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
