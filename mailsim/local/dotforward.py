""".forward files: per-user forwarding, as local(8) reads them.

Models ``src/local/dotforward.c`` and ``local_expand.c``. A user's
``.forward`` is the first file of ``forward_path`` that exists (default
``$home/.forward${recipient_delimiter}${extension}, $home/.forward``: mail
for ``bob+news`` tries ``~bob/.forward+news`` first). ``$user``, ``$home``,
``$shell``, ``$recipient``, ``$extension``, ``$domain``, ``$local`` and
``$recipient_delimiter`` are expanded (characters outside
``forward_expansion_filter`` become ``_``); an entry that names an
undefined value is skipped. Home directories come from the host's
``/etc/passwd`` and are looked up inside the host folder.

Each line has the syntax of an alias value: addresses (local users named
here are forwarded as a new message, with the user as Delivered-To),
``/file``, ``|command``, ``:include:``. An empty file is ignored (mail goes
to the mailbox); a user listing herself gets her mailbox. A file that is
not a regular file or is world-writable is ignored with Postfix's warning.

Parameters: ``forward_path``, ``forward_expansion_filter``,
``recipient_delimiter``, ``propagate_unmatched_extensions``,
``frozen_delivered_to``. Not simulated: the owner check (the .forward must
belong to the user or root) -- the host folder has one owner.

Example
-------
>>> import tempfile
>>> from mailsim.host import init_host
>>> from mailsim.queue import Recipient
>>> h = init_host(tempfile.mkdtemp() + "/mx", users=["bob"])
>>> a = Attr(Recipient("bob+news@example.com"), "", local="bob+news", user="bob",
...          extension="news", domain="example.com")
>>> [p for p, _ in forward_paths(h.with_settings(recipient_delimiter="+"), a,
...                              UserAttr.of(h.users()["bob"]))]
['/home/bob/.forward+news', '/home/bob/.forward']
"""
from __future__ import annotations

import os
import stat
from dataclasses import replace

from ..conf.expand import PARSE_ERROR, PARSE_UNDEF, expand
from .state import EXPAND_FORWARD, Attr, Run, UserAttr, propagate, strip_success

__all__ = ["forward_paths", "deliver_dotforward"]


# -- .forward -----------------------------------------------------------------------------------
def forward_paths(host, a: Attr, u: UserAttr) -> list[tuple[str, bool]]:
    """The forward_path candidates for ``a``: (path, used $extension), expandable ones only.

    Expanded values are filtered with forward_expansion_filter (other
    characters become ``_``); an entry naming an undefined value (no
    extension, no delimiter) is skipped.
    """
    allowed = set(host.conf["forward_expansion_filter"])
    values = {"user": a.user, "home": u.home, "shell": u.shell, "domain": a.domain,
              "local": a.local, "mailbox": a.local, "recipient": a.rcpt.address,
              "extension": a.extension}
    delim = a.local[len(a.user):len(a.user) + 1] or (host.conf.get("recipient_delimiter") or "")[:1]
    values["recipient_delimiter"] = delim or None
    out = []
    for pattern in host.conf.list("forward_path"):
        used: set[str] = set()

        def lookup(name: str) -> str | None:
            used.add(name)
            v = values.get(name)
            return None if v is None else "".join(c if c in allowed else "_" for c in v)

        text, st = expand(pattern, lookup, recurse=False)
        if not st & (PARSE_ERROR | PARSE_UNDEF):
            out.append((text, "extension" in used))
    return out


def deliver_dotforward(run: Run, a: Attr, u: UserAttr) -> tuple[bool, int]:
    """The user's .forward file; (found, status)."""
    host = run.host
    a = a.down()
    if not (host.conf.raw("forward_path") or "").strip():
        return False, 0
    pw = host.users().get(a.user)
    if pw is None:
        return False, 0
    if not host.conf.bool("frozen_delivered_to"):
        a.delivered = a.rcpt.address
    u = UserAttr.of(pw)
    a.exp_type = EXPAND_FORWARD
    a.owner = a.user
    path = None
    for candidate, used_extension in forward_paths(host, a, u):
        if not candidate.startswith("/"):
            continue
        try:
            st = os.lstat(host.path(candidate))
        except (OSError, PermissionError):
            continue
        path = candidate
        if used_extension or "forward" not in propagate(host):
            a.unmatched = None
        break
    if path is None:
        return False, 0
    if run.been_here(f"forward {path}"):
        return f"forward-done {path}".lower() in run.seen, 0
    a.exp_from = a.local
    if not stat.S_ISREG(st.st_mode):
        run.warn(f"file {path} is not a regular file")
        return False, 0
    if st.st_mode & stat.S_IWOTH:
        run.warn(f"file {path} is world writable")
        return False, 0
    try:
        text = host.path(path).read_text(errors="surrogateescape")
    except OSError as e:
        run.warn(f"cannot open file {path}: {os.strerror(e.errno or 5)}")
        return False, 0
    a.rcpt = replace(a.rcpt, notify=strip_success(a.rcpt.notify))
    from .recipient import deliver_token_stream     # the recursion: .forward -> tokens
    status, count = deliver_token_stream(run, a, u, text)
    if count > 0:
        run.been_here(f"forward-done {path}")
        return True, status
    return False, status
