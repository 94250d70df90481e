"""virtual(8): replay the recordings of tests/golden/virtual/ (tools/record_virtual.py)
through smtpd -> cleanup -> qmgr -> virtual and compare with what Postfix 3.7.11 did:
the mbox files and Maildir files under /var/vmail (names and contents), the log
lines, the bounce that reached /var/mail/alice, and what stays in the queue.

Masked: dates, pids, queue ids (numbered by first appearance), delays, the
Message-Id time stamp, the MIME boundary time; in Maildir names the seconds,
device, inode, microseconds and host name (they differ on every run, in
Postfix too). Postfix's qmgr runs while smtpd is still closing the session,
so log lines are compared per message.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conformance import GOLDEN, build_host, split_replies  # noqa: E402
from test_qmgr import mask_log, mask_mailbox, per_message  # noqa: E402

from mailsim.qmgr import QueueManager  # noqa: E402
from mailsim.queue import QueueFile, Recipient, read_queue_file, write_queue_file  # noqa: E402
from mailsim.virtual import VirtualFatal, deliver_virtual, maildir_names  # noqa: E402

REC = GOLDEN / "virtual"
SCENARIOS = ["virtual-mailbox", "virtual-limit", "virtual-uid"]
#: the bounce for "File too large" has Diagnostic-Code: x-unix; input/output error,
#: which virtual returns in Reason.diagnostic and qmgr hands to bounce
WITH_BOUNCE_TEXT = ["virtual-mailbox", "virtual-limit", "virtual-uid"]
MAILDIR_NAME = re.compile(r"/new/\d+\.V[0-9a-f]+I[0-9a-f]+M\d+\.[^/]+$")
ALIASES = json.loads((GOLDEN / "postfix-3.7/local-delivery.json").read_text())["files"]["aliases"]


def load(name: str) -> dict:
    return json.loads((REC / f"{name}.json").read_text())


def replay(name: str, root: Path):
    """Build the host, send every session, let qmgr deliver after each one."""
    sc = load(name)
    sc_host = dict(sc, files={"aliases": ALIASES, **sc["files"]})
    host = build_host(sc_host, root)
    (root / "var/vmail/vmail.example.net").mkdir(parents=True)
    replies = []
    qm = QueueManager(host)
    for s in sc["sessions"]:
        eng = host.smtpd("127.0.0.1", 40000)
        got = []
        for step in s["dialogue"]:
            out = eng.greeting() if step["send"] is None else eng.receive(step["send"].encode("latin-1"))
            got.append(split_replies(out.decode("latin-1")))
        if not eng.closed:
            eng.lost()
        replies.append(got)
        qm.run()
        host.clock.advance(2)
    return sc, host, replies


def vmail_files(root: Path) -> dict[str, str | None]:
    """Like the recording's "vmail": /var/vmail/... paths, directories end in '/'."""
    out: dict[str, str | None] = {}
    base = root / "var/vmail"
    for p in sorted(base.rglob("*")):
        name = "/var/vmail/" + str(p.relative_to(base))
        out[name + "/" if p.is_dir() else name] = None if p.is_dir() else p.read_text("latin-1")
    return out


def masked_files(files: dict[str, str | None]) -> dict[str, str | None]:
    out = {}
    for name, text in files.items():
        key = MAILDIR_NAME.sub("/new/MAILDIR-NAME", name)
        out[key] = None if text is None else mask_mailbox(text)
    return out


@pytest.mark.parametrize("name", SCENARIOS)
def test_smtp_replies_match(name: str, tmp_path: Path) -> None:
    sc, _, replies = replay(name, tmp_path / "h")
    qid = re.compile(r"queued as \w+")
    for s, got in zip(sc["sessions"], replies):
        want = [split_replies(st["reply"]) for st in s["dialogue"]]
        assert [[qid.sub("queued as Q", r) for r in g] for g in got] == \
               [[qid.sub("queued as Q", r) for r in w] for w in want]


@pytest.mark.parametrize("name", SCENARIOS)
def test_vmail_files_match(name: str, tmp_path: Path) -> None:
    sc, host, _ = replay(name, tmp_path / "h")
    got, want = masked_files(vmail_files(tmp_path / "h")), masked_files(sc["vmail"])
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k] == want[k], k


@pytest.mark.parametrize("name", WITH_BOUNCE_TEXT)
def test_log_matches(name: str, tmp_path: Path) -> None:
    sc, host, _ = replay(name, tmp_path / "h")
    got, want = mask_log(host.log.lines), mask_log(sc["log"])
    unpid = re.compile(r"\[PID\d+\]")
    assert sorted(unpid.sub("[PID]", ln) for ln in got) == \
        sorted(unpid.sub("[PID]", ln) for ln in want)
    assert per_message(got).keys() == per_message(want).keys()
    for q, lines in per_message(want).items():
        assert [unpid.sub("[PID]", ln) for ln in per_message(got)[q]] == \
            [unpid.sub("[PID]", ln) for ln in lines], q


@pytest.mark.parametrize("name", WITH_BOUNCE_TEXT)
def test_bounces_and_queue_match(name: str, tmp_path: Path) -> None:
    sc, host, _ = replay(name, tmp_path / "h")
    for user, text in sc["mailboxes"].items():
        got = (tmp_path / "h/var/mail" / user).read_text("latin-1")
        assert mask_mailbox(got) == mask_mailbox(text), user
    left = sorted(r.address for p in (host.spool / "deferred").rglob("*") if p.is_file()
                  and not p.name.startswith(".") for r in read_queue_file(p).recipients)
    want = sorted(re.findall(r"^\s+(\S+@\S+)$", sc["queue"], re.M))
    assert left == want


def test_maildir_names_have_postfix_form(tmp_path: Path) -> None:
    sc = load("virtual-mailbox")
    recorded = [k.rsplit("/", 1)[1] for k in sc["vmail"] if "/new/" in k and not k.endswith("/")]
    sec, rest = recorded[0].split(".", 1)
    assert re.fullmatch(r"V[0-9a-f]+I[0-9a-f]+M\d+\.vm", rest)
    tmp, new = maildir_names(int(sec) + 0.524040, 18564, "vm", 0xFE00, 0x16E0A7)
    assert tmp == f"{sec}.P18564.vm" and new == f"{sec}.Vfe00I16e0a7M524040.vm"


def test_same_names_on_every_run(tmp_path: Path) -> None:
    names = []
    for i in range(2):
        _, host, _ = replay("virtual-mailbox", tmp_path / f"h{i}")
        names.append(sorted(vmail_files(tmp_path / f"h{i}")))
    assert names[0] == names[1]


def _vhost(tmp_path: Path, **settings):
    sc = load("virtual-mailbox")
    host = build_host(dict(sc, files={"aliases": ALIASES, **sc["files"]}), tmp_path / "h")
    return host.with_settings(**settings) if settings else host


def test_relative_base_is_fatal(tmp_path: Path) -> None:
    host = _vhost(tmp_path, virtual_mailbox_base="var/vmail")
    qf = QueueFile("4B2A1160001", "alice@example.com", [Recipient("anna@vmail.example.net")],
                   host.clock.now(), b"Subject: x\n\nbody\n")
    with pytest.raises(VirtualFatal):
        deliver_virtual(host, qf, qf.recipients[0], active=host.clock.now(), pid=77)
    assert host.log.lines[-1].endswith(
        "virtual[77]: fatal: do not specify relative pathname: virtual_mailbox_base = var/vmail")


def test_limit_below_message_size_limit_is_fatal(tmp_path: Path) -> None:
    host = _vhost(tmp_path, virtual_mailbox_limit="1000")
    qf = QueueFile("4B2A1160001", "alice@example.com", [Recipient("anna@vmail.example.net")],
                   host.clock.now(), b"Subject: x\n\nbody\n")
    with pytest.raises(VirtualFatal):
        deliver_virtual(host, qf, qf.recipients[0], active=host.clock.now(), pid=77)
    assert "fatal: configuration error: virtual_mailbox_limit is smaller than message_size_limit" \
        in host.log.lines[-1]


def test_fatal_virtual_is_throttled_and_the_mail_waits_in_active(tmp_path: Path) -> None:
    # as local(8): master logs the exit and throttles; after the fix and a reload it is delivered
    host = _vhost(tmp_path, virtual_mailbox_limit="1000")
    write_queue_file(host.spool, "incoming", QueueFile(
        "4B2A1160001", "alice@example.com", [Recipient("anna@vmail.example.net")],
        host.clock.now(), b"Subject: x\n\nbody\n"))
    assert QueueManager(host).run() == 1
    assert (host.spool / "active/4B2A1160001").exists()
    assert host.log.lines[-1].endswith(
        "warning: /usr/lib/postfix/sbin/virtual: bad command startup -- throttling")


def test_file_too_large_reports_the_system_error(tmp_path: Path) -> None:
    sc = load("virtual-limit")
    host = _vhost(tmp_path, virtual_mailbox_limit="12000", message_size_limit="10000")
    (tmp_path / "h/var/vmail/vmail.example.net").mkdir(parents=True)
    (tmp_path / "h/var/vmail/vmail.example.net/anna").write_text("x" * 11990)
    qf = QueueFile("4B2A1160001", "alice@example.com", [Recipient("anna@vmail.example.net")],
                   host.clock.now(), b"Subject: x\n\nbody\n")
    dsn, status, text = deliver_virtual(host, qf, qf.recipients[0], active=host.clock.now(), pid=7)
    assert (dsn, status) == ("5.2.2", "bounced")
    assert text.diagnostic == "x-unix; input/output error"
    assert "Diagnostic-Code: x-unix; input/output error" in sc["mailboxes"]["alice"]
    assert (tmp_path / "h/var/vmail/vmail.example.net/anna").stat().st_size == 11990
