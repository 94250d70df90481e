"""Reading aliases(5) source, as postalias does.

Models the parsing loop of Postfix's ``src/postalias/postalias.c``:

* logical lines as for every table (``#`` comments, continuation lines that
  start with whitespace);
* each line is split into RFC 822 tokens (:mod:`mailsim.maps.tok822`); the
  name is everything before the first ``:`` token, stored in internal
  (unquoted) form and folded to lower case: ``"Quoted Name": x`` gives the
  key ``quoted name``; the value is everything after it in external form
  (``peter,gerda`` becomes ``peter, gerda``);
* a line without a ``:``, with nothing before or after it, or with a ``,``
  before it, is skipped: ``FILE, line N: need name:value pair``; a name with
  ``@`` or ``%`` is skipped: ``name must be local``;
* after the entries postalias stores the Sendmail/NIS signatures
  ``@`` -> ``@``, ``YP_LAST_MODIFIED`` -> the time as ten digits and
  ``YP_MASTER_NAME`` -> ``$myhostname``; the two ``YP_`` keys without case
  folding and without a trailing NUL (so ``postalias -q YP_MASTER_NAME``
  finds nothing: the query is folded, the key is not).

Examples
--------
>>> out = []
>>> entries = list(alias_entries('staff: peter,gerda\\n"Team Lead": \\\\root\\nx@y: z\\n', "aliases", out.append))
>>> entries
[('staff', 'peter, gerda'), ('Team Lead', 'root')]
>>> out
['warning: aliases, line 3: name must be local']
"""
from __future__ import annotations

from typing import Callable, Iterator

from . import tok822
from .source import logical_lines

__all__ = ["alias_entries", "add_signatures"]


def alias_entries(text: str, path: str, message: Callable[[str], None]) -> Iterator[tuple[str, str]]:
    """Yield (name, value) pairs of an aliases file; warnings go to ``message``."""

    def warn(s: str) -> None:
        message("warning: " + s)

    for lineno, line in logical_lines(text, path, warn):
        if any(0xDC80 <= ord(c) <= 0xDCFF for c in line):
            warn(f'{path}, line {lineno}: non-UTF-8 input "{line}" -- ignoring this line')
            continue
        toks = tok822.scan(line)
        if not toks:
            continue
        colon = next((k for k, t in enumerate(toks) if t.type == ":"), None)
        if (colon is None or colon == 0 or colon == len(toks) - 1
                or any(t.type == "," for t in toks[:colon])):
            warn(f"{path}, line {lineno}: need name:value pair")
            continue
        if any(t.type in ("@", "%") for t in toks[:colon]):
            warn(f"{path}, line {lineno}: name must be local")
            continue
        yield tok822.internalize(toks[:colon]), tok822.externalize(toks[colon + 1:])


def add_signatures(writer, now: float, myhostname: str, incremental: bool = False) -> None:
    """Append postalias's ``@``/``YP_*`` entries to a :class:`~mailsim.maps.hashdb.TableWriter`."""
    dup = "replace" if incremental else None
    writer.append("@", "@", dup=dup)
    writer.append("YP_LAST_MODIFIED", "%010d" % int(now), fold=False, nul=False, dup=dup)
    writer.append("YP_MASTER_NAME", myhostname, fold=False, nul=False, dup=dup)
