"""qmgr(8) first form: replay recorded scenarios, run the queue manager, compare
the mailboxes and the log with what Postfix 3.7.11 wrote.

Volatile parts are masked: dates and times, pids and queue ids (each replaced
by its order of first appearance, so "the same id" still has to be the same),
delays, the Message-Id time stamp and the time in the MIME boundary.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conformance import GOLDEN, build_host, load, replay_inprocess, numbered  # noqa: E402

from mailsim.qmgr import TRANSPORT_UNAVAILABLE, QueueManager  # noqa: E402
from mailsim.queue import QueueFile, Recipient, read_queue_file, write_queue_file  # noqa: E402

SCENARIOS = ["local-delivery", "alias-multi", "bounce-alias-missing", "unknown-user-accepted-bounce"]
#: recordings whose log order is not the serial order of one queue manager
#: (Postfix's qmgr ran concurrently with smtpd's disconnect / bounce)
CONCURRENT = {"unknown-user-accepted-bounce"}

QID = re.compile(r"\b[0-9A-F]{10,12}\b")
PID = re.compile(r"\[(\d+)\]:")
STAMP = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ")
DELAYS = re.compile(r"delay=[\d.]+, delays=[\d./]+")
RFCDATE = re.compile(r"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}( \(UTC\))?")
FROM_LINE = re.compile(r"^(From \S+  )[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$", re.M)
MSGID_TIME = re.compile(r"<\d{14}\.")
BOUNDARY_TIME = re.compile(r"(QID\d+)\.\d+/")


def mask_log(lines: list[str]) -> list[str]:
    text = "\n".join(STAMP.sub("DATE ", ln) for ln in lines)
    text = DELAYS.sub("delay=D, delays=D", text)
    text = RFCDATE.sub("RFCDATE", text)
    text = MSGID_TIME.sub("<TIME.", text)
    text = numbered(QID, text, "QID")
    text = numbered(PID, text, "PID", 1)
    return text.split("\n")


def mask_mailbox(text: str) -> str:
    text = FROM_LINE.sub(r"\1FROMDATE", text)
    text = RFCDATE.sub("RFCDATE", text)
    text = MSGID_TIME.sub("<TIME.", text)
    text = numbered(QID, text, "QID")
    return BOUNDARY_TIME.sub(r"\1.TIME/", text)


def qid_of(line: str) -> str | None:
    m = re.search(r"\]: (QID\d+): ", line)
    return m.group(1) if m else None


def per_message(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ln in lines:
        q = qid_of(ln)
        if q:
            out.setdefault(q, []).append(ln)
    return out


def run_scenario(name: str, root: Path):
    sc = load(GOLDEN / "postfix-3.7" / f"{name}.json")
    host = build_host(sc, root)
    replay_inprocess(sc, host)
    qm = QueueManager(host)
    qm.run()
    return sc, host, qm


def queue_files(host, queue: str) -> list[Path]:
    d = host.spool / queue
    return sorted(p for p in d.iterdir() if not p.name.startswith(".")) if d.is_dir() else []


@pytest.mark.parametrize("name", SCENARIOS)
def test_mailboxes_match_recording(name: str, tmp_path: Path) -> None:
    sc, host, _ = run_scenario(name, tmp_path / "h")
    got_users = sorted(p.name for p in (tmp_path / "h/var/mail").iterdir()
                       if p.is_file() and p.stat().st_size)
    assert got_users == sorted(sc["mailboxes"])
    for user, text in sc["mailboxes"].items():
        got = (tmp_path / "h/var/mail" / user).read_text()
        assert mask_mailbox(got) == mask_mailbox(text), user


@pytest.mark.parametrize("name", SCENARIOS)
def test_log_matches_recording(name: str, tmp_path: Path) -> None:
    sc, host, _ = run_scenario(name, tmp_path / "h")
    got, exp = mask_log(host.log.lines), mask_log(sc["log"])
    if name in CONCURRENT:
        assert sorted(got) == sorted(exp)
        assert per_message(got) == per_message(exp)
    else:
        assert got == exp


@pytest.mark.parametrize("name", SCENARIOS)
def test_queues_empty_and_no_double_delivery(name: str, tmp_path: Path) -> None:
    sc, host, qm = run_scenario(name, tmp_path / "h")
    for q in ("incoming", "active", "deferred"):
        assert queue_files(host, q) == [], q
    boxes = {p.name: p.read_bytes() for p in (tmp_path / "h/var/mail").iterdir() if p.is_file()}
    n_lines = len(host.log.lines)
    assert qm.run() == 0
    assert QueueManager(host).run() == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "h/var/mail").iterdir()
            if p.is_file()} == boxes
    assert len(host.log.lines) == n_lines


def test_null_sender_bounce_gets_no_dsn(tmp_path: Path) -> None:
    sc = load(GOLDEN / "postfix-3.7" / "local-delivery.json")
    host = build_host(sc, tmp_path / "h")
    write_queue_file(host.spool, "incoming", QueueFile(
        "4B2A1160001", "", [Recipient("nosuch@example.com", "nosuch@example.com")],
        host.clock.now(), b"Subject: x\n\nbody\n"))
    assert QueueManager(host).run() == 1
    text = "\n".join(host.log.lines)
    assert "status=bounced" in text and "non-delivery" not in text
    assert host.log.lines[-1].endswith("4B2A1160001: removed")
    assert queue_files(host, "incoming") == []


def test_unknown_transport_defers_and_retries_on_schedule(tmp_path: Path) -> None:
    # a transport master.cf does not have: qmgr warns and defers, as Postfix does
    sc = load(GOLDEN / "postfix-3.7" / "local-delivery.json")
    sc["main_cf"] = {"default_transport": "nosuch"}
    host = build_host(sc, tmp_path / "h")
    write_queue_file(host.spool, "incoming", QueueFile(
        "4B2A1160001", "alice@example.com",
        [Recipient("peter@example.com"), Recipient("bob@example.org")],
        host.clock.now(), b"Subject: x\n\nbody\n"))
    qm = QueueManager(host)
    assert qm.run() == 1
    assert [f.name for f in queue_files(host, "deferred/4")] == ["4B2A1160001"]
    assert queue_files(host, "active") == [] and queue_files(host, "incoming") == []
    qf = read_queue_file(host.spool / "deferred/4/4B2A1160001")
    assert [r.address for r in qf.recipients] == ["bob@example.org"]
    assert qf.attrs["reason"] == TRANSPORT_UNAVAILABLE
    text = "\n".join(host.log.lines)
    assert "qmgr[%d]: warning: connect to transport private/nosuch: No such file or directory" % qm.pid in text
    assert "to=<bob@example.org>, relay=none" in text and "status=deferred (mail transport unavailable)" in text
    assert not any("removed" in ln for ln in host.log.lines)
    assert "peter@example.com" in (tmp_path / "h/var/mail/peter").read_text()
    # not retried before minimal_backoff_time (300s), retried at the next scan after it
    assert qm.run() == 0
    assert qm.advance(290) == 0
    assert qm.advance(300) == 1
    assert [r.address for r in read_queue_file(host.spool / "deferred/4/4B2A1160001").recipients] \
        == ["bob@example.org"]


def test_corrupt_queue_file_goes_to_corrupt_and_qmgr_carries_on(tmp_path: Path) -> None:
    # Postfix's qmgr: warning: saving corrupt file "ID" from queue "active" to queue "corrupt"
    sc = load(GOLDEN / "postfix-3.7" / "local-delivery.json")
    host = build_host(sc, tmp_path / "h")
    (host.spool / "incoming").mkdir(parents=True, exist_ok=True)
    (host.spool / "incoming/4B2A1160001").write_bytes(b"\x00garbage, not a queue file\n")
    write_queue_file(host.spool, "incoming", QueueFile(
        "4B2A1160002", "alice@example.com", [Recipient("peter@example.com")],
        host.clock.now(), b"Subject: x\n\nbody\n"))
    qm = QueueManager(host)
    assert qm.run() == 2
    assert [p.name for p in queue_files(host, "corrupt")] == ["4B2A1160001"]
    assert any(ln.endswith(f'qmgr[{qm.pid}]: warning: saving corrupt file "4B2A1160001" from queue '
                           '"active" to queue "corrupt"') for ln in host.log.lines)
    assert host.log.lines[-1].endswith("4B2A1160002: removed")
    assert "Subject: x" in (tmp_path / "h/var/mail/peter").read_text()


def test_sendmail_bv_probes_without_delivering(tmp_path: Path) -> None:
    from mailsim.sendmail import sendmail
    sc = load(GOLDEN / "postfix-3.7" / "local-delivery.json")
    host = build_host(sc, tmp_path / "h")
    rc, out, _ = sendmail(host, ["-bv", "peter", "x@other.org"], b"")
    assert rc == 0 and "Mail Delivery Status Report will be mailed to <root>." in out
    text = "\n".join(host.log.lines)
    assert "status=deliverable (delivers to mailbox)" in text
    assert "status=undeliverable (mailsim does not simulate address verification by smtp(8))" in text
    assert not (tmp_path / "h/var/mail/peter").exists()         # a probe delivers nothing
    assert "Action: deliverable" in (tmp_path / "h/var/mail/marc").read_text()  # root: marc


@pytest.mark.parametrize("when", ["before", "after"])
def test_delay_warning_time_counts_from_arrival_setting(when: str, tmp_path: Path) -> None:
    """cleanup fixes the warning time when the message arrives: delay_warning_time set
    after a message was queued does not give that message a warning (Postfix 3.7)."""
    from mailsim.notebook import run, send
    host = build_host(load(GOLDEN / "postfix-3.7" / "local-delivery.json"), tmp_path / "h")
    run(host, "postconf", "-e", "relayhost = [127.0.0.9]:2599")     # nobody listens there
    if when == "before":
        run(host, "postconf", "-e", "delay_warning_time = 1h")
    host.reload()
    assert send(host, "alice@example.com", "bob@example.org", "Subject: x\n\nbody\n").startswith("250")
    if when == "after":
        run(host, "postconf", "-e", "delay_warning_time = 1h")
        host.reload()
    host.advance("3h")
    warned = [ln for ln in host.log.lines if "sender delay notification" in ln]
    assert len(warned) == (1 if when == "before" else 0), warned
