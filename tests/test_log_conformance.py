"""mailsim's log against real Postfix 3.7.11's, for every recorded SMTP scenario.

Each scenario in tests/golden/postfix-3.7*/ kept the lines Postfix logged while the
dialogue ran, while the queue manager delivered what it accepted, and while the
recorder ran its commands (postqueue, postsuper). Here the dialogue is replayed
in-process, the queue is run, the same commands are run, and the two logs are
compared line by line as multisets (Postfix's daemons run concurrently, so only the
lines of one process keep an order), with times, pids, queue ids and delays masked.

The recording machine had an SMTP sink on 127.0.0.1:2526 (the base relayhost) that
answered ``250 2.0.0 Ok``; the test puts one on a free port and masks the port.

tests/test_mailflow.py checks the 26 corpus scenarios with deliveries more narrowly
(the order of each message's lines, mailq); this test covers every recording.

KNOWN_DIFFERENCES lists, per scenario, how many lines still differ (missing plus
extra); it may only shrink. docs/differences.md explains what remains.
"""
from __future__ import annotations

import collections
import datetime
import io
import os
import re
import shlex
import time

import pytest

from conformance import build_host, load, numbered, replay_inprocess, scenario_files
from mailsim.cli import run_command
from mailsim.clock import SimClock
from mailsim.lab.bridge import free_port

FILES = [p for p in scenario_files("postfix-3.7", "postfix-3.7-recorded") if load(p).get("log")]
SINK_PORT = 2526

#: scenario -> lines that differ (missing + extra); may only shrink
KNOWN_DIFFERENCES: dict[str, int] = {
}

#: what the recorder did before the dialogue (from each scenario's notes)
PREFILL = {"mailbox-quota": ("/var/mail/bob", 4400)}
#: tables edited after they were compiled (tools/scenarios_smtpd.py's setup): the line
#: appended to the source, which is dated 5 minutes back and its .db 10 minutes back
STALE = {"stale-aliases-db": ("/etc/aliases", ".db", "sales2: peter\n"),
         "stale-virtual-db": ("/etc/postfix/virtual", ".db", "sales@sue.nl    petra\n")}


def make_stale(host, source: str, suffix: str, line: str) -> None:
    src = host.path(source)
    src.write_text(src.read_text() + line)
    now = time.time()
    os.utime(host.path(source + suffix), (now - 600, now - 600))
    os.utime(src, (now - 300, now - 300))


def mask(lines: list[str]) -> list[str]:
    """Times, hosts, pids, delays, queue ids (numbered by first appearance), the sink's port.

    >>> mask(["Nov 25 11:07:42 mail postfix/smtpd[16213]: 5C830160359: client=localhost[127.0.0.1]",
    ...       "Nov 25 11:07:43 mail postfix/master[1]: warning: process /x pid 77 exit status 1"])
    ['postfix/smtpd[PID]: QID1: client=localhost[127.0.0.1]', 'postfix/master[PID]: warning: process /x pid PID exit status 1']
    """
    out = []
    for ln in lines:
        ln = re.sub(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ ", "", ln)
        ln = re.sub(r"(postfix/[\w/-]+)\[\d+\]", r"\1[PID]", ln)
        ln = re.sub(r"( pid )\d+( exit status)", r"\1PID\2", ln)
        ln = re.sub(r"delay=[\d.]+, delays=[\d./]+", "delay=D, delays=D", ln)
        ln = re.sub(r"(127\.0\.0\.1\]:)\d+", rf"\g<1>{SINK_PORT}", ln)
        out.append(ln)
    text = numbered(re.compile(r"\b[0-9A-F]{10,12}\b"), "\n".join(out), "QID")
    text = re.sub(r"<\d{14}\.QID\d+@", "<STAMP.QID@", text)
    return text.split("\n") if text else []


def recorded(lines: list[str]) -> list[str]:
    """The recorder read Postfix's log as Latin-1; UTF-8 addresses (SMTPUTF8) read back.

    >>> recorded(["to=<p\u00c3\u00a9ter@example.com>", "to=<p??ter@example.com>"])
    ['to=<p\u00e9ter@example.com>', 'to=<p??ter@example.com>']
    """
    out = []
    for ln in lines:
        try:
            out.append(ln.encode("latin-1").decode("utf-8"))
        except UnicodeError:
            out.append(ln)
    return out


def run_scenario(sc: dict, root, sink_port: int) -> list[str]:
    """Replay, deliver, run the recorder's commands; the log file's lines."""
    sink = f"[127.0.0.1]:{sink_port}"          # the sink in tables too (FILTER smtp:[127.0.0.1]:2526)
    sc = {**sc, "files": {k: v.replace("[127.0.0.1]:2526", sink) if isinstance(v, str) else v
                          for k, v in sc.get("files", {}).items()}}
    start = recorded_start(sc)
    host = build_host(sc, root, clock=SimClock(start) if start else None)
    if "[127.0.0.1]:2526" in host.conf.get("relayhost", ""):
        cf = host.path("/etc/postfix/main.cf")
        cf.write_text(cf.read_text().replace("[127.0.0.1]:2526", f"[127.0.0.1]:{sink_port}"))
        host.reload()
    if sc["id"] in STALE:
        make_stale(host, *STALE[sc["id"]])
    if sc["id"] in PREFILL:
        path, size = PREFILL[sc["id"]]
        host.path(path).write_bytes(b"From x  Mon Jan  1 00:00:00 2024\n" + b"x" * size + b"\n\n")
    replay_inprocess(sc, host)
    host.run_queue()
    for c in sc.get("commands", []):
        argv = shlex.split(c["cmd"])
        if argv[0] in ("postsuper",):
            run_command(root, argv[0], argv[1:], out=io.StringIO(), err=io.StringIO())
    return host.path("/var/log/postfix.log").read_text().splitlines()     # maillog_file


def diff(want: list[str], got: list[str]) -> tuple[list[str], list[str]]:
    cw, cg = collections.Counter(want), collections.Counter(got)
    return list((cw - cg).elements()), list((cg - cw).elements())


@pytest.fixture(scope="module")
def sink():
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            return "250 2.0.0 Ok"

    port = free_port()
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port)
    ctl.start()
    yield port
    ctl.stop()


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_log_as_postfix_logged_it(path, sink, tmp_path):
    sc = load(path)
    got = mask(run_scenario(sc, tmp_path / "mx", sink))
    want = mask(recorded(sc["log"]))
    missing, extra = diff(want, got)
    allowed = KNOWN_DIFFERENCES.get(sc["id"], 0)
    report = "\n".join(["missing (Postfix logged):"] + missing + ["extra (mailsim logged):"] + extra)
    assert len(missing) + len(extra) <= allowed, report


# -- the mailboxes the deliveries left -------------------------------------------------------------
MBOX_FILES = [p for p in FILES if load(p).get("mailboxes")]
#: scenario -> mailboxes that still differ; may only shrink
KNOWN_MAILBOX_DIFFERENCES: dict[str, int] = {}
_FROM_ = re.compile(r"^From \S+  (\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4})$", re.M)


def recorded_start(sc: dict) -> float | None:
    """When the recording delivered (its first mbox From_ line), so that the replay's
    simulated clock writes the same dates: only the times of day are masked then.

    >>> recorded_start({"mailboxes": {"marc": "From x  Mon Dec  7 12:21:11 2026\\n"}})
    1796646071.0
    """
    for text in sc.get("mailboxes", {}).values():
        m = _FROM_.search(text)
        if m:
            when = datetime.datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
            return when.replace(tzinfo=datetime.timezone.utc).timestamp()
    return None


def mask_mbox(text: str) -> str:
    r"""A mailbox with its times of day, queue ids and generated Message-Ids masked; the
    dates stay (``Mon,  7 Dec 2026``: Postfix pads the day with a blank).

    >>> mask_mbox("From a@b  Wed Nov 25 11:07:13 2026\n\tid 2B0A0160387; Wed, 25 Nov 2026 11:07:13 +0000 (UTC)")
    'From a@b  Wed Nov 25 HH:MM:SS 2026\n\tid QID1; Wed, 25 Nov 2026 HH:MM:SS +0000 (UTC)'
    """
    text = re.sub(r"\b\d\d:\d\d:\d\d\b", "HH:MM:SS", text)
    text = numbered(re.compile(r"\b[0-9A-F]{10,12}\b"), text, "QID")
    return re.sub(r"<\d{14}\.QID\d+@", "<STAMP.QID@", text)


@pytest.mark.parametrize("path", MBOX_FILES, ids=[p.stem for p in MBOX_FILES])
def test_mailboxes_as_postfix_left_them(path, sink, tmp_path):
    sc = load(path)
    root = tmp_path / "mx"
    run_scenario(sc, root, sink)
    differ = []
    for user, want in sc["mailboxes"].items():
        box = root / "var/mail" / user
        got = box.read_text("latin-1") if box.exists() else ""
        if sc["id"] in PREFILL and PREFILL[sc["id"]][0] == f"/var/mail/{user}":
            continue                     # prefilled by the recorder with its own filler
        if mask_mbox(got) != mask_mbox(want):
            differ.append(f"--- {user}: Postfix\n{want}\n--- mailsim\n{got}")
    assert len(differ) <= KNOWN_MAILBOX_DIFFERENCES.get(sc["id"], 0), "\n".join(differ)
