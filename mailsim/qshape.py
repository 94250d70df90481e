"""qshape(1): how many messages wait in which queue, for which domain, and for how long.

Models Postfix 3.7's ``qshape`` (postfix/auxiliary/qshape, packaged in
Debian's *postfix* as ``/usr/sbin/qshape``): it reads every queue file in
the named queues (default ``incoming`` and ``active``; ``deferred`` is the
one to look at when mail piles up) and prints a table: one row per
recipient domain (``-s``: sender domain), one column per age bucket, the
first row ``TOTAL``::

                                             T  5 10 20 40 80 160 320 640 1280 1280+
                                      TOTAL  3  0  0  0  0  0   0   0   0    3     0
                                  other.org  2  0  0  0  0  0   0   0   0    2     0
                                example.net  1  0  0  0  0  0   0   0   0    1     0

Bucket ``5`` holds what is younger than 5 minutes, ``10`` what is 5 to 10
minutes old, each bucket twice as wide as the one before (``-l``: all equally
wide, ``-t``: the first bucket's minutes, ``-b``: how many buckets); the last
one, ``1280+``, has no upper limit. ``T`` is the row's total. A recipient
counts once per queue file it is still waiting in (delivered recipients
are no longer in the file); a sender once per message. Addresses are
lower-cased, the null sender is ``MAILER-DAEMON``, ``-p`` adds a ``.parent``
row for every parent domain with at least ``-m`` (5) subdomains. Rows come
by total, then shortest name first (equal ones alphabetically -- Postfix's
order of equal rows is random). Domain names too long for the ``-w`` (80)
columns lose their start to a ``+``.

Reads: ``queue_directory`` (queue names are taken inside it, absolute ones
inside the host), mailsim's queue files (:func:`mailsim.queue.read_queue_file`;
the age is the arrival time, relative to the host's clock). Does not: the
terminal batch mode (``-N``/``-n``, which only applies when the output is a
terminal), ``-c`` (a mailsim host is the ``--root`` folder), maildrop files
(mailsim writes none).

Examples
--------
>>> import tempfile, pathlib
>>> from mailsim.host import init_host
>>> from mailsim.queue import QueueFile, Recipient, write_queue_file
>>> h = init_host(pathlib.Path(tempfile.mkdtemp()) / "mx")
>>> now = h.clock.now()
>>> for qid, age, rcpts in [("4F3601600F3", 30, ["user@other.org", "u2@Other.ORG"]),
...                         ("18FD11602B3", 7200, ["bob@example.net"])]:
...     _ = write_queue_file(h.spool, "deferred", QueueFile(
...         qid, "alice@example.com", [Recipient(a) for a in rcpts], now - age, b""))
>>> print(qshape(h, ["deferred"]).text(), end="")
                                         T  5 10 20 40 80 160 320 640 1280 1280+
                                  TOTAL  3  2  0  0  0  0   1   0   0    0     0
                              other.org  2  2  0  0  0  0   0   0   0    0     0
                            example.net  1  0  0  0  0  0   1   0   0    0     0
>>> print(qshape(h, ["deferred"], senders=True).text(), end="")
                                         T  5 10 20 40 80 160 320 640 1280 1280+
                                  TOTAL  2  1  0  0  0  0   1   0   0    0     0
                            example.com  2  1  0  0  0  0   1   0   0    0     0
"""
from __future__ import annotations

import argparse
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, TextIO

from .queue import read_queue_file

__all__ = ["QueueShape", "qshape", "bucket", "address_domain", "bucket_heads", "main",
           "DEFAULT_QUEUES"]

#: what qshape looks at without arguments
DEFAULT_QUEUES = ("incoming", "active")
#: the narrowest domain column
MIN_DOMAIN_WIDTH = 18
_QUEUE_ID = re.compile(r"[A-Za-z0-9]{6,}")


def bucket(age: float, tick: float = 5, buckets: int = 10, linear: bool = False) -> int:
    """The age column (1..``buckets``) of a message ``age`` seconds old.

    >>> [bucket(s) for s in (0, 299, 300, 600, 1199, 1200, 76800, 10**7)]
    [1, 1, 2, 3, 3, 4, 10, 10]
    >>> bucket(1000, linear=True)        # 16.7 minutes: the 4th 5-minute column
    4
    """
    m = age / (60 * tick)
    if m < 1:
        return 1
    b = int(m + 1) if linear else 2 + int(math.log(m) / math.log(2))
    return min(b, buckets)


def bucket_heads(tick: int = 5, buckets: int = 10, linear: bool = False) -> list[str]:
    """Column heads: ``T``, then each bucket's upper age limit in minutes.

    >>> " ".join(bucket_heads())
    'T 5 10 20 40 80 160 320 640 1280 1280+'
    >>> " ".join(bucket_heads(10, 4, linear=True))
    'T 10 20 30 30+'
    """
    heads: list[str] = []
    t: int | str = 0
    for i in range(buckets + 1):
        heads.append("T" if i == 0 else str(t))
        if i + 1 < buckets:
            t = int(t) + (int(t) if t and not linear else tick)
        else:
            t = f"{t}+"
    return heads


def address_domain(addr: str) -> str:
    """The domain qshape files an address under (lower case, no stray dots).

    >>> address_domain("User@Mail.Example.COM."), address_domain(""), address_domain("root")
    ('mail.example.com', 'MAILER-DAEMON', 'root')
    """
    a = addr.lower() or "MAILER-DAEMON"
    a = a.rpartition("@")[2]
    a = a.replace("..", ".")
    return re.sub(r"\.?(.+?)\.?$", r"\1", a, count=1)


def _parents(domain: str) -> Iterator[str]:
    """``a.b.example.com`` -> ``.b.example.com``, ``.example.com`` (never a top level domain)."""
    while True:
        m = re.match(r"\.?[^.]+\.(.*\.)", domain)
        if not m:
            return
        domain = "." + m.group(1) + domain[m.end():]
        yield domain


@dataclass
class QueueShape:
    """The table: ``rows`` maps ``TOTAL`` and each domain to its counts
    ``[total, bucket 1, ..., bucket n]``; ``subdomains`` counts, for ``-p``
    parent rows, the subdomains seen."""
    heads: list[str]
    rows: dict[str, list[int]] = field(default_factory=dict)
    subdomains: dict[str, int] = field(default_factory=dict)
    min_subdomains: int = 5

    def count(self, name: str, b: int) -> bool:
        """Count one address in bucket ``b``; True if ``name`` is new."""
        row = self.rows.setdefault(name, [0] * len(self.heads))
        row[0] += 1
        row[b] += 1
        return row[0] == 1

    def ordered(self) -> list[tuple[str, list[int]]]:
        """Rows to show, in qshape's order (TOTAL is a row like the others)."""
        self.rows.setdefault("TOTAL", [0] * len(self.heads))
        keep = [(n, c) for n, c in self.rows.items()
                if not n.startswith(".") or self.subdomains.get(n, 0) >= self.min_subdomains]
        return sorted(keep, key=lambda nc: (-nc[1][0], len(nc[0]), nc[0]))

    def text(self, width: int = 80) -> str:
        """The table as qshape prints it, right-aligned to ``width`` columns."""
        total = self.rows.get("TOTAL", [0] * len(self.heads))
        widths = []
        for head, n in zip(self.heads, total):
            w = max(len(str(n)), len(head))
            widths.append(w + 1 if w > 2 else 3)
        dw = max(width - sum(widths), MIN_DOMAIN_WIDTH)
        lines = [_row("", self.heads, widths, dw)]
        lines += [_row(name, counts, widths, dw) for name, counts in self.ordered()]
        return "".join(lines)


def _row(name: str, cells: list, widths: list[int], dw: int) -> str:
    if len(name) > dw:
        name = (".+" + name[len(name) - dw + 2:] if name.startswith(".")
                else "+" + name[len(name) - dw + 1:])
    return name.rjust(dw) + "".join(str(c).rjust(w) for c, w in zip(cells, widths)) + "\n"


def _queue_files(top: Path) -> Iterator[Path]:
    """Queue files below ``top`` (hashed subdirectories too), in name order."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames):
            if _QUEUE_ID.fullmatch(name):
                yield Path(dirpath) / name


def _queue_dir(host, name: str) -> Path:
    return host.path(name) if name.startswith("/") else host.spool / name


def qshape(host, queues=DEFAULT_QUEUES, *, senders: bool = False, parents: bool = False,
           min_subdomains: int = 5, buckets: int = 10, tick: int = 5, linear: bool = False,
           now: float | None = None, missing: list[str] | None = None) -> QueueShape:
    """Count the messages in ``queues`` of ``host`` by domain and age (see the module docstring).

    ``now`` defaults to the host's clock; names of queues that do not exist
    are appended to ``missing`` when it is given.
    """
    now = host.clock.now() if now is None else now
    shape = QueueShape(bucket_heads(tick, buckets, linear), min_subdomains=min_subdomains)
    for q in queues:
        top = _queue_dir(host, q)
        if not top.exists() and missing is not None:
            missing.append(q)
        for path in _queue_files(top):
            try:
                qf = read_queue_file(path)
            except (ValueError, OSError, KeyError, TypeError):
                continue                # not (or no longer) a queue file
            b = bucket(now - qf.arrival, tick, buckets, linear)
            addrs = [qf.sender] if senders else [r.address for r in qf.recipients]
            for a in addrs:
                _count_address(shape, address_domain(a), b, parents)
    return shape


def _count_address(shape: QueueShape, domain: str, b: int, parents: bool) -> None:
    shape.count("TOTAL", b)
    new = shape.count(domain, b)
    if not parents:
        return
    for parent in _parents(domain):
        if new:
            shape.subdomains[parent] = shape.subdomains.get(parent, 0) + 1
        new = shape.count(parent, b)


USAGE = ("Usage: qshape [ -s ] [ -p ] [ -m <min_subdomains> ] [ -l ]\n"
         "\t[ -b <bucket_count> ] [ -t <bucket_time> ] [ -w <terminal_width> ]\n"
         "\t[ -N <batch_msg_count> ] [ -n <batch_top_domains> ]\n"
         "\t[ -c <config_directory> ] [ <queue_name> ... ]\n")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qshape", add_help=False)
    p.add_argument("-s", action="store_true", dest="senders")
    p.add_argument("-p", action="store_true", dest="parents")
    p.add_argument("-l", action="store_true", dest="linear")
    p.add_argument("-h", action="store_true", dest="help")
    for opt in ("-m", "-b", "-t", "-w", "-N", "-n"):
        p.add_argument(opt, type=int, default=0)
    p.add_argument("-c", default=None)
    p.add_argument("queues", nargs="*")
    return p


def main(root: Path, argv: list[str], out: TextIO, err: TextIO) -> int:
    """``mailsim --root DIR qshape [-s] [-p] [-m N] [-l] [-b N] [-t N] [-w N] [queue ...]``."""
    from .host import Host

    class _Usage(Exception):
        pass

    p = _parser()
    p.error = lambda message: (_ for _ in ()).throw(_Usage(message))  # type: ignore[method-assign]
    try:
        a = p.parse_args(argv)
    except _Usage as e:
        err.write(f"qshape: {e}\n{USAGE}")
        return 255
    if a.help:
        err.write(USAGE)
        return 255
    host = Host(root)
    missing: list[str] = []
    shape = qshape(host, a.queues or DEFAULT_QUEUES, senders=a.senders, parents=a.parents,
                   min_subdomains=a.m if a.m > 0 else 5, buckets=a.b if a.b > 0 else 10,
                   tick=a.t if a.t > 0 else 5, linear=a.linear, missing=missing)
    for q in missing:
        err.write(f"qshape: Can't stat {q}: No such file or directory\n")
    out.write(shape.text(a.w if a.w > 80 else 80))
    return 0
