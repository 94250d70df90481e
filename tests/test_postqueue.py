"""postqueue -p / -j / -f, mailq, sendmail -bp against Postfix 3.7's real output."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mailsim.host import init_host
from mailsim.postqueue import listing, mailq_main, main, message_size, sendmail_bp_main
from mailsim.queue import QueueFile, Recipient, write_queue_file

GOLDEN = Path(__file__).parent / "golden/postfix-3.7"
COMMANDS = json.loads((GOLDEN / "commands.json").read_text())["commands"]
DEFERRED = json.loads((GOLDEN / "queue-deferred.json").read_text())
REASON = "connect to 127.0.0.1[127.0.0.1]:2599: Connection refused"

# The message "printf 'Subject: for the queue...' | sendmail -f alice@example.com user@other.org"
# of commands.json, as cleanup queued it (id 18FD11602B3, arrival 09:03:56).
SENDMAIL_CONTENT = (
    b"Received: by mail.example.com (Postfix, from userid 0)\n"
    b"\tid 18FD11602B3; Wed, 25 Nov 2026 09:03:56 +0000 (UTC)\n"
    b"Subject: for the queue\n"
    b"Message-Id: <20261125090356.18FD11602B3@mail.example.com>\n"
    b"Date: Wed, 25 Nov 2026 09:03:56 +0000 (UTC)\n"
    b"From: root <alice@example.com>\n\nqueued\n")
# The SMTP message of queue-deferred.json (id 4F3601600F3, arrival 09:02:04).
SMTP_CONTENT = (
    b"Received: from client.example.org (localhost [127.0.0.1])\n"
    b"\tby mail.example.com (Postfix) with ESMTP id 4F3601600F3;\n"
    b"\tWed, 25 Nov 2026 09:02:04 +0000 (UTC)\n"
    b"From: alice@example.com\nTo: user@other.org, user2@other.org\n"
    b"Subject: Will be deferred\nDate: Mon, 01 Jan 2024 12:00:00 +0000\n"
    b"Message-ID: <will-be-deferred@client.example.org>\n\n"
    b"Hello,\nthis is a test message.\n")


def golden(cmd: str, index: int = 0) -> dict:
    return [c for c in COMMANDS if c["cmd"] == cmd][index]


def sendmail_message() -> QueueFile:
    return QueueFile("18FD11602B3", "alice@example.com", [Recipient("user@other.org", "user@other.org")],
                     1795597436.102353, SENDMAIL_CONTENT,
                     {"reason": REASON, "sender_fullname": "root"})


def smtp_message() -> QueueFile:
    return QueueFile("4F3601600F3", "alice@example.com",
                     [Recipient("user@other.org", "user@other.org"),
                      Recipient("user2@other.org", "user2@other.org")],
                     1795597324.324448, SMTP_CONTENT,
                     {"client_name": "localhost", "client_address": "127.0.0.1", "client_port": "47078",
                      "server_address": "127.0.0.1", "server_port": "25",
                      "helo_name": "client.example.org", "protocol": "ESMTP"})


def write_defer_log(spool: Path, qid: str, entries: list[tuple[str, str]]) -> None:
    """A defer logfile in Postfix's bounce-log format, as the smtp client leaves it."""
    d = spool / "defer" / qid[0]
    d.mkdir(parents=True, exist_ok=True)
    (d / qid).write_text("".join(
        f"recipient={r}\noffset=0\ndsn_orig_rcpt=rfc822;{r}\nstatus=4.4.1\naction=delayed\n"
        f"reason={why}\n\n" for r, why in entries))


@pytest.fixture
def h(tmp_path):
    return init_host(tmp_path / "h", users=["peter", "gerda", "petra", "jim", "marc", "alice", "bob"])


def run(fn, root, argv):
    out, err = io.StringIO(), io.StringIO()
    rc = fn(root, argv, out, err)
    return rc, out.getvalue(), err.getvalue()


def test_empty_queue(h):
    for fn, argv, cmd in ((mailq_main, [], "mailq"), (main, ["-p"], "postqueue -p"),
                          (sendmail_bp_main, ["-bp"], "mailq")):
        g = golden(cmd)
        assert run(fn, h.root, argv) == (g["rc"], g["stdout"], g["stderr"])


def test_message_size_matches_postfix():
    assert message_size(SENDMAIL_CONTENT) == 282
    assert message_size(SMTP_CONTENT) == 372


def test_deferred_sendmail_message_byte_for_byte(h):
    write_queue_file(h.spool, "deferred", sendmail_message())
    g = golden("sleep 3; mailq")
    assert run(mailq_main, h.root, []) == (0, g["stdout"], "")
    assert run(main, h.root, ["-p"])[1] == g["stdout"]


def test_hold_marker(h):
    write_queue_file(h.spool, "hold", sendmail_message())
    assert run(mailq_main, h.root, [])[1] == golden("mailq", 1)["stdout"]


def test_active_marker_and_order(h):
    write_queue_file(h.spool, "hold", sendmail_message())
    write_queue_file(h.spool, "active", smtp_message())
    text = listing(h.spool)
    # showq order: incoming, active, deferred, hold
    assert text.index("4F3601600F3*") < text.index("18FD11602B3!")
    assert text.endswith("\n-- 0 Kbytes in 2 Requests.\n")
    assert "\n\n4F3601600F3" not in text and "\n\n18FD11602B3!" in text


def test_queue_deferred_with_defer_log_byte_for_byte(h):
    write_queue_file(h.spool, "deferred", smtp_message())
    write_defer_log(h.spool, "4F3601600F3",
                    [("user2@other.org", REASON), ("user@other.org", REASON)])
    for c in DEFERRED["commands"][:3]:
        assert run(main, h.root, ["-p"]) == (0, c["stdout"], "")
    assert DEFERRED["queue"] == c["stdout"]
    j = DEFERRED["commands"][3]
    assert j["cmd"] == "postqueue -j"
    assert run(main, h.root, ["-j"]) == (0, j["stdout"], "")


def test_reason_from_attrs_in_queue_file_order(h):
    qf = smtp_message()
    qf.attrs["reason"] = REASON
    write_queue_file(h.spool, "deferred", qf)
    lines = run(main, h.root, ["-p"])[1].splitlines()
    assert [ln.strip() for ln in lines[2:5]] == [f"({REASON})", "user@other.org", "user2@other.org"]


def test_flush_retries_deferred_mail_now(h):
    from mailsim.serve import free_port
    port = free_port()                       # nothing listens there: the relay is down
    with open(h.root / "etc/postfix/main.cf", "a") as f:
        f.write(f"relayhost = [127.0.0.1]:{port}\n")
    h.reload()
    write_queue_file(h.spool, "deferred", sendmail_message())
    assert run(main, h.root, ["-f"]) == (0, "", "")
    log = "\n".join(h.log.lines)
    assert "18FD11602B3: from=<alice@example.com>, size=" in log and "(queue active)" in log
    assert f"connect to 127.0.0.1[127.0.0.1]:{port}: Connection refused" in log
    assert (h.spool / "deferred/1/18FD11602B3").exists()      # hashed, as Postfix's deferred/


def test_usage(h):
    rc, out, err = run(main, h.root, ["-x"])
    assert rc == 64 and err.startswith("postqueue: fatal: usage:")
