"""mailsim.qshape: the queue's domain x age table, as Postfix's qshape(1) prints it.

The last test runs the real qshape (Debian's postfix package, /usr/sbin/qshape)
on Postfix-format queue files holding the same messages, when it is installed.
"""
from __future__ import annotations

import io
import os
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mailsim.cli import run_command
from mailsim.host import init_host
from mailsim.qshape import address_domain, bucket, bucket_heads, qshape
from mailsim.queue import QueueFile, Recipient, write_queue_file

HEAD = "                                         T  5 10 20 40 80 160 320 640 1280 1280+\n"


@pytest.fixture
def h(tmp_path: Path):
    return init_host(tmp_path / "mx")


def put(host, queue: str, qid: str, age_min: float, sender: str, rcpts: list[str],
        hashed: bool = False) -> None:
    """A queue file that arrived ``age_min`` minutes ago (by the host's clock)."""
    qf = QueueFile(qid, sender, [Recipient(a) for a in rcpts],
                   host.clock.now() - 60 * age_min, b"Subject: x\n\nbody\n")
    path = write_queue_file(host.spool, queue, qf)
    if hashed:
        (path.parent / qid[0]).mkdir(exist_ok=True)
        path.rename(path.parent / qid[0] / qid)


def test_buckets_double_from_the_first_one() -> None:
    minutes = [0, 4.99, 5, 9.99, 10, 19.99, 20, 639.9, 640, 1279.9, 1280, 99999]
    assert [bucket(60 * m) for m in minutes] == [1, 1, 2, 2, 3, 3, 4, 8, 9, 9, 10, 10]
    assert [bucket(60 * m, tick=1, buckets=4) for m in (0.5, 1, 2, 3.9, 4, 100)] == \
           [1, 2, 3, 3, 4, 4]
    assert [bucket(60 * m, linear=True, buckets=5) for m in (1, 5, 14.9, 15, 19.9, 500)] == \
           [1, 2, 3, 4, 4, 5]
    assert bucket(-600) == 1                      # arrived "in the future": youngest


def test_heads() -> None:
    assert bucket_heads() == "T 5 10 20 40 80 160 320 640 1280 1280+".split()
    assert bucket_heads(1, 5) == "T 1 2 4 8 8+".split()
    assert bucket_heads(5, 5, linear=True) == "T 5 10 15 20 20+".split()
    assert bucket_heads(5, 1) == ["T", "0+"]      # qshape's own label for -b 1


def test_address_domains() -> None:
    assert address_domain("Bob@Example.NET") == "example.net"
    assert address_domain("") == "MAILER-DAEMON"
    assert address_domain("a@b@c.d..e.") == "c.d.e"
    assert address_domain("user") == "user"


def test_default_queues_are_incoming_and_active(h) -> None:
    put(h, "incoming", "AAAAAA1", 1, "a@x.org", ["u@one.org"])
    put(h, "active", "AAAAAA2", 12, "a@x.org", ["v@one.org", "w@two.org"])
    put(h, "deferred", "AAAAAA3", 100, "a@x.org", ["z@three.org"], hashed=True)
    put(h, "hold", "AAAAAA4", 3000, "a@x.org", ["z@four.org"])
    assert qshape(h).text() == HEAD + (
        "                                  TOTAL  3  1  0  2  0  0   0   0   0    0     0\n"
        "                                one.org  2  1  0  1  0  0   0   0   0    0     0\n"
        "                                two.org  1  0  0  1  0  0   0   0   0    0     0\n")
    text = qshape(h, ["deferred", "hold"]).text()
    assert text.splitlines()[1:] == [
        "                                  TOTAL  2  0  0  0  0  0   1   0   0    0     1",
        "                               four.org  1  0  0  0  0  0   0   0   0    0     1",
        "                              three.org  1  0  0  0  0  0   1   0   0    0     0"]


def test_senders_count_messages(h) -> None:
    put(h, "deferred", "BBBBBB1", 1, "", ["a@one.org", "b@one.org", "c@two.org"])
    put(h, "deferred", "BBBBBB2", 1, "Alice@Example.COM", ["d@one.org"])
    rows = qshape(h, ["deferred"], senders=True).rows
    assert rows == {"TOTAL": [2, 2] + [0] * 9, "MAILER-DAEMON": [1, 1] + [0] * 9,
                    "example.com": [1, 1] + [0] * 9}
    assert qshape(h, ["deferred"]).rows["one.org"][0] == 3


def test_columns_widen_with_the_totals(h) -> None:
    for i in range(120):
        put(h, "deferred", f"CCCC{i:04d}", 2, "a@x.org", ["u@wide.example"])
    lines = qshape(h, ["deferred"]).text().splitlines()
    assert lines[0] == " " * 37 + "   T   5 10 20 40 80 160 320 640 1280 1280+"
    assert lines[1] == "TOTAL".rjust(37) + " 120 120  0  0  0  0   0   0   0    0     0"
    assert all(len(ln) == 80 for ln in lines)


def test_parent_domains(h) -> None:
    for i, d in enumerate(["a.example.com", "b.example.com", "c.example.com", "x.a.example.com"]):
        put(h, "deferred", f"DDDDDD{i}", 1, "s@x.org", [f"u@{d}"])
    shape = qshape(h, ["deferred"], parents=True, min_subdomains=3)
    # .a.example.com is a new subdomain of .example.com too
    assert shape.subdomains == {".a.example.com": 1, ".example.com": 4}
    names = [n for n, _ in shape.ordered()]
    assert names[:2] == ["TOTAL", ".example.com"]
    assert ".a.example.com" not in names and shape.rows[".example.com"][0] == 4
    assert ".example.com" not in [n for n, _ in qshape(h, ["deferred"], parents=True).ordered()]


def test_long_domains_are_cut_from_the_left(h) -> None:
    long = "averyveryverylongsubdomainname.of.some.example.org"
    put(h, "deferred", "EEEEEE1", 1, "s@x.org", [f"u@{long}"])
    lines = qshape(h, ["deferred"]).text().splitlines()
    assert lines[2] == "+ylongsubdomainname.of.some.example.org  1  1  0  0  0  0   0   0   0    0     0"
    assert qshape(h, ["deferred"]).text(width=120).splitlines()[2].endswith(
        f"  {long}  1  1  0  0  0  0   0   0   0    0     0")


def test_skips_what_is_not_a_queue_file(h) -> None:
    put(h, "deferred", "FFFFFF1", 1, "s@x.org", ["u@one.org"])
    (h.spool / "deferred" / ".FFFFFF2.tmp").write_bytes(b"partial")
    (h.spool / "deferred" / "GARBAGE9").write_bytes(b"not a queue file")
    (h.spool / "deferred" / "short").write_bytes(b"x")
    assert qshape(h, ["deferred"]).rows["TOTAL"][0] == 1


def test_empty_queues_show_a_zero_total(h) -> None:
    assert qshape(h).text() == HEAD + (
        "                                  TOTAL  0  0  0  0  0  0   0   0   0    0     0\n")


def test_command(h) -> None:
    put(h, "deferred", "GGGGGG1", 30, "s@x.org", ["u@one.org"], hashed=True)
    out, err = io.StringIO(), io.StringIO()
    assert run_command(h.root, "qshape", ["-s", "deferred"], out, err) == 0
    assert out.getvalue().splitlines()[2].split() == ["x.org", "1", "0", "0", "0", "1"] + ["0"] * 6
    out = io.StringIO()
    assert run_command(h.root, "qshape", ["-l", "-b", "4", "-t", "20", "/var/spool/postfix/deferred"],
                       out, err) == 0
    assert out.getvalue().splitlines()[0].split() == ["T", "20", "40", "60", "60+"]
    assert out.getvalue().splitlines()[1].split() == ["TOTAL", "1", "0", "1", "0", "0"]
    out, err = io.StringIO(), io.StringIO()
    assert run_command(h.root, "qshape", ["nosuchqueue"], out, err) == 0
    assert "nosuchqueue" in err.getvalue() and "TOTAL" in out.getvalue()
    assert run_command(h.root, "qshape", ["-x"], io.StringIO(), err := io.StringIO()) == 255
    assert err.getvalue().startswith("qshape: ") and "Usage: qshape" in err.getvalue()


# -- against the real qshape ------------------------------------------------------------------------------
def _record(kind: str, data: bytes = b"") -> bytes:
    """One Postfix queue file record: type, length (7 bits a byte, low first), data."""
    n, length = len(data), bytearray()
    while True:
        length.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            break
    return kind.encode() + bytes(length) + data


def write_postfix_queue_file(path: Path, arrival: int, sender: str, rcpts: list[str]) -> None:
    """A minimal Postfix queue file (size, time, sender, recipients, empty content)."""
    data = (_record("C", b"%15d %15d %15d %15d %15d %15d" % (0, 0, len(rcpts), 0, 0, 0))
            + _record("T", b"%d 0" % arrival) + _record("S", sender.encode())
            + b"".join(_record("R", r.encode()) for r in rcpts)
            + _record("M") + _record("X") + _record("E"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, 0o700)                    # qshape reads only finished (0700) files


def _rank(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The lines as a set, and the (total, name length) order qshape guarantees."""
    lines = text.splitlines()
    order = [(int(ln.split()[1]), len(ln.split()[0])) for ln in lines[1:]]
    return sorted(lines), order


QSHAPE = shutil.which("qshape") or shutil.which("qshape", path="/usr/sbin")
#: ages in minutes, well inside every bucket of the option sets below
AGES = (0.5, 1.5, 3, 6.5, 13, 27, 52, 103, 212, 412, 872, 1832, 3702)
DOMAINS = ("example.org", "mail.example.org", "lists.example.org", "a.lists.example.org",
           "example.net", "EXAMPLE.NET", "b.example.net", "c.example.net", "d.example.net",
           "e.example.net", "other.com", "x", "a-very-very-long-host-name.department.example.edu")


@pytest.mark.skipif(QSHAPE is None, reason="qshape is not installed (Debian package postfix)")
@pytest.mark.parametrize("options,kwargs,width", [
    ([], {}, 80), (["-s"], {"senders": True}, 80), (["-p"], {"parents": True}, 80),
    (["-p", "-m", "2", "-s"], {"parents": True, "min_subdomains": 2, "senders": True}, 80),
    (["-t", "1"], {"tick": 1}, 80), (["-l", "-b", "6"], {"linear": True, "buckets": 6}, 80),
    (["-w", "100"], {}, 100), (["-b", "1"], {"buckets": 1}, 80)])
def test_same_table_as_real_qshape(tmp_path: Path, options: list[str], kwargs: dict,
                                   width: int) -> None:
    rng = random.Random(" ".join(options))
    host = init_host(tmp_path / "mx")
    real = tmp_path / "postfix-deferred"
    now = time.time()                        # the real qshape measures ages from time()
    for i in range(60):
        qid = f"{rng.choice('0123456789ABCDEF')}{i:05d}ABCD"
        age = rng.choice(AGES) * 60
        sender = rng.choice(["", f"s@{rng.choice(DOMAINS)}"])
        rcpts = sorted({f"u{j}@{rng.choice(DOMAINS)}" for j in range(rng.randint(1, 4))})
        write_postfix_queue_file(real / qid[0] / qid, int(now - age), sender, rcpts)
        write_queue_file(host.spool, "deferred",
                         QueueFile(qid, sender, [Recipient(r) for r in rcpts], int(now - age), b""))
    theirs = subprocess.run([QSHAPE, *options, str(real)], capture_output=True, text=True,
                            check=True, timeout=60).stdout
    mine = qshape(host, ["deferred"], now=time.time(), **kwargs).text(width)
    assert re.match(r" +T ", theirs) and theirs.count("\n") > 5
    assert mine.splitlines()[:2] == theirs.splitlines()[:2]
    assert _rank(mine) == _rank(theirs)
