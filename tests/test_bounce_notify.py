"""notify_classes, postmaster copies and double bounces against real Postfix 3.7.11.

Recorded with ``tools/record_local.py --notify`` (tests/golden/notify): a
message to ``ghost`` (an alias of a user that does not exist) bounces in
local(8); bounce(8) then sends, depending on notify_classes and on whether
the message had the null sender, a non-delivery notification to the sender,
a postmaster copy, a "double bounce" to postmaster, or nothing at all.
Each recording is replayed in-process; the host's queue manager runs after
every session. Compared: the log (same lines; each message's lines in
Postfix's order) and every mailbox byte, with queue ids, pids, dates and
delays masked.
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conformance import GOLDEN, per_message, replay_inprocess  # noqa: E402
from test_local import build_local_host, mask_local  # noqa: E402

NOTIFY = GOLDEN / "notify"
SCENARIOS = sorted(p.stem for p in NOTIFY.glob("*.json"))
PID = re.compile(r"(postfix/[\w/-]+)\[\d+\]")
STAMP = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ ", re.M)


def run(name: str, root: Path):
    rec = json.loads((NOTIFY / f"{name}.json").read_text())
    host = build_local_host(rec, root)
    for s in rec["sessions"]:
        replay_inprocess({"dialogue": s["dialogue"]}, host)
        host.run_queue()
    return rec, host


def masked(lines: list[str]) -> list[str]:
    text = PID.sub(r"\1[PID]", STAMP.sub("", "\n".join(lines)))
    return mask_local(text).split("\n")



def test_the_recordings_are_here() -> None:
    assert SCENARIOS == ["notify-2bounce", "notify-bounce", "notify-default-null"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_log(name: str, tmp_path: Path) -> None:
    rec, host = run(name, tmp_path / "h")
    got, want = masked(host.log.lines), masked(rec["log"])
    assert Counter(got) == Counter(want)
    assert per_message(got) == per_message(want)


@pytest.mark.parametrize("name", SCENARIOS)
def test_mailboxes(name: str, tmp_path: Path) -> None:
    rec, host = run(name, tmp_path / "h")
    mail = host.path("/var/mail")
    got = {p.name: p.read_text("latin-1") for p in mail.iterdir() if p.is_file() and p.stat().st_size}
    assert sorted(got) == sorted(rec["mailboxes"])
    for user, text in rec["mailboxes"].items():
        assert mask_local(got[user]) == mask_local(text), user
