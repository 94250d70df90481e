"""SMTP replies as values.

A reply is a three-digit code, an optional RFC 3463 enhanced status code and a
text; multi-line replies (EHLO) carry several text lines. Replies are built in
one place (this module and :mod:`mailsim.smtpd.replies`) and only turned into
bytes at the edge, so tests, the decision explainer and the notebooks can all
look at the same value.

Examples
--------
>>> r = Reply(250, "2.1.0", "Ok")
>>> r.wire()
b'250 2.1.0 Ok\\r\\n'
>>> Reply(250, None, "mail.example.com", ("PIPELINING", "CHUNKING")).wire()
b'250-mail.example.com\\r\\n250-PIPELINING\\r\\n250 CHUNKING\\r\\n'
>>> Reply.parse("554 5.7.1 <a@b>: Relay access denied")
Reply(code=554, enhanced='5.7.1', text='<a@b>: Relay access denied', more=())
>>> Reply(454, "4.7.1", "x").klass
'transient'
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Reply"]

_ENH = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: ``code``, ``enhanced`` status (or None), ``text``, extra lines."""

    code: int
    enhanced: str | None
    text: str
    more: tuple[str, ...] = ()

    @property
    def klass(self) -> str:
        """RFC 5321 reply class: positive, intermediate, transient or permanent."""
        return {2: "positive", 3: "intermediate", 4: "transient", 5: "permanent"}.get(
            self.code // 100, "invalid")

    def lines(self) -> list[str]:
        """The reply's text lines, the enhanced code prefixed to the first line."""
        first = f"{self.enhanced} {self.text}" if self.enhanced else self.text
        return [first, *self.more]

    def __str__(self) -> str:
        ls = self.lines()
        return "\n".join(
            f"{self.code}{' ' if i == len(ls) - 1 else '-'}{l}" for i, l in enumerate(ls))

    def wire(self) -> bytes:
        """The reply as the server writes it to the socket (CRLF line ends)."""
        return (str(self).replace("\n", "\r\n") + "\r\n").encode("utf-8", "surrogateescape")

    def with_text(self, text: str) -> "Reply":
        return Reply(self.code, self.enhanced, text, self.more)

    @classmethod
    def parse(cls, line: str) -> "Reply":
        """Parse one single-line reply such as ``"550 5.1.1 <x>: User unknown"``."""
        code = int(line[:3])
        rest = line[4:]
        head, _, tail = rest.partition(" ")
        if _ENH.match(head):
            return cls(code, head, tail)
        return cls(code, None, rest)
