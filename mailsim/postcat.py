"""``postcat``: show a queue file the way Postfix's postcat(1) does.

``postcat -q ID`` prints, for mailsim's queue file with that id, Postfix's
layout::

    *** ENVELOPE RECORDS deferred/1/18FD11602B3 ***
    message_size:             282             258               1               0             282               0
    message_arrival_time: Wed Nov 25 09:03:56 2026
    ...
    *** MESSAGE CONTENTS deferred/1/18FD11602B3 ***
    (the message)
    *** HEADER EXTRACTED deferred/1/18FD11602B3 ***
    *** MESSAGE FILE END deferred/1/18FD11602B3 ***

The path label is Postfix's (``deferred`` and ``defer`` are hashed one level
deep on the first character of the id) whatever mailsim's layout on disk.
``-h`` prints only the primary header, ``-b`` only the body, ``-e`` only the
envelope records; the ``***`` section lines are printed only when all three
sections are (as observed: ``postcat -hq`` prints the bare header).
Without ``-q`` the arguments are queue file paths.

Envelope records are synthesized from mailsim's envelope, in Postfix's order
(cleanup's): ``message_size``, ``message_arrival_time``, ``create_time`` (=
arrival), ``log_ident`` (mail received by smtpd), ``rewrite_context``
(``attrs["rewrite_context"]``, default ``local``), ``sender_fullname`` (if
``attrs["sender_fullname"]``), ``sender``, the smtpd client attributes
(``log_client_*``, ``client_*``, ``server_*``, ``helo_name``,
``protocol_name``, ``client_address_type``; port and server lines only when
attrs has ``client_port``/``server_address``/``server_port``), then per
recipient ``dsn_orig_rcpt`` (the ORCPT, else ``rfc822;`` + the original
address), ``original_recipient``, ``recipient``.

Not reproduced: the ``message_size`` record's second field, the data
offset, is *estimated* from the byte sizes those records would have in a
Postfix queue file (Postfix's real file also holds records postcat doesn't
show, so the real value is 11-12 bytes larger: 258 vs 247, 743 vs 731); DSN NOTIFY/ENVID/RET records,
``done_recipient`` records and anything extracted after the content are not
shown; lines longer than ``line_length_limit`` are not split into records.

Examples
--------
>>> import io, tempfile, pathlib
>>> from mailsim.host import init_host
>>> from mailsim.queue import QueueFile, Recipient, write_queue_file
>>> h = init_host(pathlib.Path(tempfile.mkdtemp()) / "h")
>>> _ = write_queue_file(h.spool, "hold", QueueFile("18FD11602B3", "alice@example.com",
...     [Recipient("u@other.org")], 1795597436.1, b"Subject: x\\n\\nhi\\n"))
>>> out = io.StringIO(); main(h.root, ["-q", "18FD11602B3"], out, io.StringIO())
0
>>> print(out.getvalue(), end="")  # doctest: +NORMALIZE_WHITESPACE
*** ENVELOPE RECORDS hold/18FD11602B3 ***
message_size:              18             232               1               0              18               0
message_arrival_time: Wed Nov 25 09:03:56 2026
create_time: Wed Nov 25 09:03:56 2026
named_attribute: rewrite_context=local
sender: alice@example.com
named_attribute: dsn_orig_rcpt=rfc822;u@other.org
original_recipient: u@other.org
recipient: u@other.org
*** MESSAGE CONTENTS hold/18FD11602B3 ***
Subject: x
<BLANKLINE>
hi
*** HEADER EXTRACTED hold/18FD11602B3 ***
*** MESSAGE FILE END hold/18FD11602B3 ***
>>> out = io.StringIO(); _ = main(h.root, ["-bq", "18FD11602B3"], out, io.StringIO()); out.getvalue()
'hi\\n'
"""
from __future__ import annotations

import getopt
import time
from pathlib import Path
from typing import TextIO

from .postqueue import QueueEntry, _varint_len, find_message, queue_label, queued_size
from .queue import QueueFile, read_queue_file

__all__ = ["main", "envelope_records", "render"]

USAGE = "usage: postcat [-b (body text)] [-c config_dir] [-d (decimal record type)] " \
        "[-e (envelope records)] [-h (header text)] [-q (access queue)] [-v] [file(s)...]"


def _asctime(t: float) -> str:
    return time.asctime(time.localtime(int(t)))


def envelope_records(qf: QueueFile) -> list[tuple[str, str]]:
    """(record name, value) pairs postcat shows for ``qf``'s envelope (data offset estimated)."""
    a = qf.attrs
    size = queued_size(qf)
    recs: list[tuple[str, str]] = []
    recs.append(("message_arrival_time", _asctime(qf.arrival)))
    recs.append(("create_time", _asctime(qf.arrival)))
    smtpd = "client_address" in a
    if smtpd:
        recs.append(("named_attribute", f"log_ident={qf.queue_id}"))
    recs.append(("named_attribute", f"rewrite_context={a.get('rewrite_context', 'local')}"))
    for name in ("sasl_method", "sasl_username", "sasl_sender"):    # after an AUTH
        if name in a:
            recs.append(("named_attribute", f"{name}={a[name]}"))
    if a.get("sender_fullname"):
        recs.append(("sender_fullname", a["sender_fullname"]))
    recs.append(("sender", qf.sender))
    if smtpd:
        name, addr = a.get("client_name") or "unknown", a["client_address"]
        helo, proto = a.get("helo_name", ""), a.get("protocol", "")
        named = [("log_client_name", name), ("log_client_address", addr),
                 ("log_client_port", a.get("client_port")),
                 ("log_message_origin", f"{name}[{addr}]"),
                 ("log_helo_name", helo or None), ("log_protocol_name", proto or None),
                 ("client_name", name), ("reverse_client_name", a.get("reverse_client_name", name)),
                 ("client_address", addr), ("client_port", a.get("client_port")),
                 ("server_address", a.get("server_address")), ("server_port", a.get("server_port")),
                 ("helo_name", helo or None), ("protocol_name", proto or None),
                 ("client_address_type", "10" if ":" in addr else "2")]
        recs += [("named_attribute", f"{k}={v}") for k, v in named if v is not None]
    for r in qf.recipients:
        orig = r.original
        recs.append(("named_attribute", f"dsn_orig_rcpt={r.orcpt or 'rfc822;' + orig}"))
        recs.append(("original_recipient", orig))
        recs.append(("recipient", r.address))
    # data offset: the size record (95 bytes of text), the records above, the 'M' record
    fmt_time = f"{int(qf.arrival)} {int(round(qf.arrival * 1e6)) % 1000000}"
    body = {"message_arrival_time": fmt_time, "create_time": str(int(qf.arrival))}
    offset = 2 + 95
    for name, value in recs:
        v = body.get(name, value)
        n = len(v.encode())
        offset += 1 + _varint_len(n) + n
    offset += 2
    smtputf8 = 1 if a.get("smtputf8") is not None else 0
    head = ("message_size", " ".join(f"{x:15d}" for x in
                                     (size, offset, len(qf.recipients), 0, size, smtputf8)))
    return [head] + recs


def _split(content: bytes) -> tuple[bytes, bytes]:
    """(primary header, body) -- the body starts after the first empty line."""
    if content.startswith(b"\n"):
        return b"", content[1:]
    i = content.find(b"\n\n")
    if i < 0:
        return content, b""
    return content[:i + 1], content[i + 2:]


def render(e: QueueEntry, env: bool, hdr: bool, body: bool) -> str:
    """postcat's output for one queue file."""
    label = queue_label(e.queue, e.qf.queue_id) if e.queue else str(e.path)
    banners = env and hdr and body
    out: list[str] = []
    if banners:
        out.append(f"*** ENVELOPE RECORDS {label} ***\n")
    if env:
        out += [f"{k}: {v}\n" for k, v in envelope_records(e.qf)]
    if banners:
        out.append(f"*** MESSAGE CONTENTS {label} ***\n")
    h, b = _split(e.qf.content)
    if hdr and body:
        out.append(e.qf.content.decode("utf-8", "replace"))
    elif hdr:
        out.append(h.decode("utf-8", "replace"))
    elif body:
        out.append(b.decode("utf-8", "replace"))
    if banners:
        out.append(f"*** HEADER EXTRACTED {label} ***\n")
        out.append(f"*** MESSAGE FILE END {label} ***\n")
    return "".join(out)


def main(root: Path, argv: list[str], out: TextIO, err: TextIO) -> int:
    """postcat(1): ``[-behq] ID|FILE ...``."""
    from .host import Host
    try:
        opts, args = getopt.getopt(argv, "bc:dehoqsv")
    except getopt.GetoptError:
        err.write(f"postcat: fatal: {USAGE}\n")
        return 1
    flags = {o for o, _ in opts}
    env, hdr, body = "-e" in flags, "-h" in flags, "-b" in flags
    if not (env or hdr or body):
        env = hdr = body = True
    host = Host(root)
    for arg in args:
        if "-q" in flags:
            e = find_message(host.spool, arg)
            if e is None:
                err.write(f"postcat: fatal: open queue file {arg}: No such file or directory\n")
                return 1
        else:
            p = Path(arg)
            try:
                e = QueueEntry("", p, read_queue_file(p))
            except (OSError, ValueError) as ex:
                err.write(f"postcat: fatal: open {arg}: {getattr(ex, 'strerror', None) or ex}\n")
                return 1
        out.write(render(e, env, hdr, body))
    return 0
