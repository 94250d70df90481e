"""postsuper -d/-h/-H/-r against Postfix 3.7's real stderr and log lines."""
from __future__ import annotations

import io

import pytest

from mailsim import postsuper
from mailsim.host import init_host
from mailsim.postqueue import listing
from mailsim.queue import write_queue_file
from test_postqueue import DEFERRED, golden, sendmail_message, smtp_message, write_defer_log


@pytest.fixture
def h(tmp_path):
    return init_host(tmp_path / "h", users=["alice"])


def run(root, argv, stdin=None):
    out, err = io.StringIO(), io.StringIO()
    rc = postsuper.main(root, argv, out, err, stdin=stdin)
    return rc, out.getvalue(), err.getvalue()


def logged(h) -> list[str]:
    p = h.root / "var/log/maillog"
    return [ln.split(" ", 4)[4] for ln in p.read_text().splitlines()] if p.exists() else []


def test_hold_release_delete_byte_for_byte(h):
    write_queue_file(h.spool, "deferred", sendmail_message())
    g = golden("postqueue -p | awk 'NR==2{print $1}' | tr -d '*!' | xargs -r postsuper -h")
    assert run(h.root, ["-h", "18FD11602B3"]) == (0, "", g["stderr"])
    assert listing(h.spool) == golden("mailq", 1)["stdout"]
    assert run(h.root, ["-H", "ALL"]) == (0, "", golden("postsuper -H ALL")["stderr"])
    assert (h.spool / "deferred/1/18FD11602B3").exists()
    assert listing(h.spool) == golden("postqueue -f; sleep 2; mailq")["stdout"]
    assert run(h.root, ["-d", "ALL"]) == (0, "", golden("postsuper -d ALL")["stderr"])
    assert listing(h.spool) == "Mail queue is empty\n"
    lines = logged(h)
    assert lines[0].startswith("postfix/postsuper[")
    texts = [ln.split(": ", 1)[1] for ln in lines]
    assert texts == ["18FD11602B3: placed on hold", "Placed on hold: 1 message",
                     "Released from hold: 1 message", "Deleted: 1 message"]


def test_delete_all_like_queue_deferred(h):
    write_queue_file(h.spool, "deferred", smtp_message())
    write_defer_log(h.spool, "4F3601600F3", [("user@other.org", "x")])
    c = DEFERRED["commands"][5]
    assert run(h.root, ["-d", "ALL"]) == (c["rc"], c["stdout"], c["stderr"])
    assert not (h.spool / "defer/4/4F3601600F3").exists()
    assert logged(h)[-1].endswith("]: Deleted: 1 message")
    assert DEFERRED["log"][-1].endswith("]: Deleted: 1 message")


def test_delete_one_logs_removed(h):
    write_queue_file(h.spool, "hold", sendmail_message())
    write_queue_file(h.spool, "active", smtp_message())
    assert run(h.root, ["-d", "18FD11602B3"])[2] == (
        "postsuper: 18FD11602B3: removed\npostsuper: Deleted: 1 message\n")
    assert "]: 18FD11602B3: removed" in logged(h)[0]
    assert (h.spool / "active/4F3601600F3").exists()


def test_unknown_and_invalid_ids(h):
    assert run(h.root, ["-d", "ABCDEF12345"]) == (0, "", "")
    assert run(h.root, ["-d", "no/such"])[2] == "postsuper: warning: invalid mail queue id: no/such\n"


def test_queue_restriction_and_stdin(h):
    write_queue_file(h.spool, "deferred", sendmail_message())
    assert run(h.root, ["-d", "ALL", "hold"])[2] == ""
    assert run(h.root, ["-h", "-"], stdin=io.StringIO("18FD11602B3\n"))[2].endswith(
        "Placed on hold: 1 message\n")
    assert (h.spool / "hold/18FD11602B3").exists()


def test_requeue(h):
    write_queue_file(h.spool, "deferred", sendmail_message())
    assert run(h.root, ["-r", "ALL"])[2] == "postsuper: Requeued: 1 message\n"
    assert (h.spool / "incoming/18FD11602B3").exists()


def test_non_root(h, monkeypatch):
    monkeypatch.setenv("MAILSIM_USER", "alice")
    write_queue_file(h.spool, "deferred", sendmail_message())
    g = golden("runuser -u alice -- postsuper -d ALL")
    assert run(h.root, ["-d", "ALL"]) == (g["rc"], g["stdout"], g["stderr"])
    assert (h.spool / "deferred/1/18FD11602B3").exists()
