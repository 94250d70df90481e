"""postcat -q / -h / -b / -e against Postfix 3.7's real output."""
from __future__ import annotations

import io
import re

import pytest

from mailsim import postcat
from mailsim.host import init_host
from mailsim.queue import write_queue_file
from test_postqueue import DEFERRED, golden, sendmail_message, smtp_message

Q = "postqueue -p | awk 'NR==2{print $1}' | tr -d '*!' | xargs -r postcat -"


@pytest.fixture
def h(tmp_path):
    return init_host(tmp_path / "h", users=["alice"])


def run(root, argv):
    out, err = io.StringIO(), io.StringIO()
    rc = postcat.main(root, argv, out, err)
    return rc, out.getvalue(), err.getvalue()


def data_offset(text: str) -> int:
    return int(re.search(r"^message_size: +\d+ +(\d+)", text, re.M).group(1))


def same_but_offset(ours: str, real: str) -> None:
    """Byte for byte, except the message_size record's data offset (estimated)."""
    mask = re.compile(r"^(message_size: +\d+ +)\d+", re.M)
    assert mask.sub(r"\1N", ours) == mask.sub(r"\1N", real)
    assert 0 < data_offset(real) - data_offset(ours) < 20


def test_sendmail_message(h):
    write_queue_file(h.spool, "deferred", sendmail_message())
    rc, out, err = run(h.root, ["-q", "18FD11602B3"])
    assert (rc, err) == (0, "")
    same_but_offset(out, golden(Q + "q")["stdout"])


def test_smtp_message(h):
    write_queue_file(h.spool, "deferred", smtp_message())
    rc, out, err = run(h.root, ["-q", "4F3601600F3"])
    same_but_offset(out, DEFERRED["commands"][4]["stdout"])


def test_header_only_byte_for_byte(h):
    write_queue_file(h.spool, "deferred", sendmail_message())
    assert run(h.root, ["-hq", "18FD11602B3"]) == (0, golden(Q + "hq")["stdout"], "")


def test_body_and_envelope_only(h):
    write_queue_file(h.spool, "hold", sendmail_message())
    assert run(h.root, ["-bq", "18FD11602B3"])[1] == "queued\n"
    env = run(h.root, ["-e", "-q", "18FD11602B3"])[1]
    assert env.startswith("message_size:") and env.endswith("recipient: user@other.org\n")
    assert "***" not in env
    assert "*** ENVELOPE RECORDS hold/18FD11602B3 ***" in run(h.root, ["-q", "18FD11602B3"])[1]


def test_missing_id(h):
    assert run(h.root, ["-q", "ABCDEF12345"]) == (
        1, "", "postcat: fatal: open queue file ABCDEF12345: No such file or directory\n")


def test_file_argument(h):
    p = write_queue_file(h.spool, "active", sendmail_message())
    out = run(h.root, [str(p)])[1]
    assert out.startswith(f"*** ENVELOPE RECORDS {p} ***\n")
