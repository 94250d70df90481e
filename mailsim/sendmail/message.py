"""The message sendmail reads from stdin: records, the "." rule, line ends, and the
recipients ``-t`` extracts from the headers.

Part of :mod:`mailsim.sendmail` (Postfix's ``src/sendmail/sendmail.c``, enqueue()).
"""
from __future__ import annotations

from typing import Iterator

from ..canonical import parse, str_addresses
from .context import EXTRACT_HEADERS

def _records(data: bytes, limit: int) -> Iterator[tuple[bytes, bool]]:
    """rec_streamlf_get(): (text, ended_by_newline); longer lines come in ``limit`` pieces."""
    i, n = 0, len(data)
    while i < n:
        chunk = data[i:i + limit]
        nl = chunk.find(b"\n")
        if nl >= 0:
            yield chunk[:nl], True
            i += nl + 1
        else:
            yield chunk, False
            i += len(chunk)


def _is_from_line(text: bytes) -> bool:
    return text.lstrip(b">").startswith(b"From ")


def read_message(data: bytes, *, dot_ends: bool = True, fix_eol: str = "always",
                 limit: int = 2048) -> list[tuple[bytes, bool]]:
    """The message as sendmail passes it on: a list of (text, ended_by_newline).

    Leading ``From`` lines are dropped; ``fix_eol`` (sendmail_fix_line_endings)
    ``always`` strips CRs before the LF, ``strict`` does so only if the first
    line ends in CRLF, ``never`` keeps them; with ``dot_ends`` a line with a
    single ``.`` ends the message.

    >>> read_message(b"From x  Mon\\r\\nSubject: a\\r\\n\\r\\nbody\\r\\n.\\r\\nlost\\r\\n")
    [(b'Subject: a', True), (b'', True), (b'body', True)]
    >>> read_message(b"line\\r\\n.\\n", dot_ends=False, fix_eol="never")
    [(b'line\\r', True), (b'.', True)]
    """
    out: list[tuple[bytes, bool]] = []
    strip = {"always": True, "never": False}.get(fix_eol)       # None: strict, decide on line 1
    skip_from = True
    prev_full = True
    for text, full in _records(data, limit):
        if strip is None and full:
            strip = text.endswith(b"\r")
        if skip_from:
            if full and _is_from_line(text):
                continue
            skip_from = False
        if strip and full:
            text = text.rstrip(b"\r")
        if dot_ends and prev_full and text == b".":
            break
        out.append((text, full))
        prev_full = full
    return out


def _content(records: list[tuple[bytes, bool]]) -> bytes:
    return b"".join(t + (b"\n" if full else b"") for t, full in records)


def _lines(records: list[tuple[bytes, bool]]) -> list[bytes]:
    """Whole lines (pieces of an over-long line joined)."""
    out, cur = [], b""
    for text, full in records:
        cur += text
        if full:
            out.append(cur)
            cur = b""
    if cur:
        out.append(cur)
    return out


def _header_name(line: bytes) -> str | None:
    """is_header(): ``Name:`` (white space allowed before the colon), else None."""
    name, colon, _ = line.partition(b":")
    name = name.rstrip(b" \t")
    if not colon or not name or any(b < 0x21 or b > 0x7E for b in name):
        return None
    return name.decode("ascii").lower()


def _headers(lines: list[bytes]) -> Iterator[str]:
    """The primary header section, one logical header (continuations joined) at a time."""
    cur: list[bytes] = []
    for ln in lines:
        if cur and ln[:1] in (b" ", b"\t"):
            cur.append(ln)
            continue
        if cur:
            yield b"\n".join(cur).decode("utf-8", "surrogateescape")
            cur = []
        if _header_name(ln) is None:
            return
        cur = [ln]
    if cur:
        yield b"\n".join(cur).decode("utf-8", "surrogateescape")


def extract_recipients(records: list[tuple[bytes, bool]]) -> list[str]:
    """-t: the addresses in To:, Cc:, Bcc: -- or only those in Resent-To/Cc/Bcc: if any.

    >>> extract_recipients([(b"To: a, B <b@x>", True), (b"Cc: c", True), (b"", True), (b"To: d", True)])
    ['a', 'b@x', 'c']
    >>> extract_recipients([(b"To: a", True), (b"Resent-To: r1", True), (b"Cc: c", True)])
    ['r1']
    """
    plain: list[str] = []
    resent: list[str] = []
    is_resent = False
    for header in _headers(_lines(records)):
        name = _header_name(header.encode("utf-8", "surrogateescape")) or ""
        if name not in EXTRACT_HEADERS or (is_resent and not EXTRACT_HEADERS[name]):
            continue
        if EXTRACT_HEADERS[name]:
            is_resent = True
        value = header[len(name) + 1:]
        (resent if EXTRACT_HEADERS[name] else plain).extend(str_addresses(parse(value)))
    return resent if is_resent else plain


def _probe(sender: str, recipients: list[str]) -> bytes:
    """The message of ``sendmail -bv``: From:, Subject: probe, To: with the arguments."""
    lines = [f"From: {sender}"] if sender else []
    lines.append("Subject: probe")
    if recipients:
        to = [f"\t{r}{',' if i < len(recipients) - 1 else ''}" for i, r in enumerate(recipients)]
        lines += ["To:" + to[0]] + to[1:]
    return "".join(ln + "\n" for ln in lines).encode("utf-8", "surrogateescape")


# -- delivery mode --------------------------------------------------------------------------------
