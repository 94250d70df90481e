"""Small helpers the course notebooks share.

Each stands for something an administrator types on a real server:

* :func:`run` -- a Postfix command (``postconf -n``, ``postmap ...``, ``postfix check``)
  on a host, printing what it writes, as in a terminal;
* :func:`rcpt` -- one short SMTP session from a client, to see how one recipient is
  answered (``telnet mail.example.com 25``: HELO, MAIL FROM, RCPT TO, QUIT);
* :func:`write_table` -- write a lookup table's text file and build it with postmap;
* :func:`send` -- a whole SMTP session that sends one message (``swaks --to ...``);
* :func:`mailbox` -- what is in a user's mailbox (``cat /var/mail/USER``);
* :func:`log` -- the host's mail log, optionally grepped (``grep -E ... /var/log/maillog``).

Examples
--------
>>> import tempfile
>>> from mailsim import init_host
>>> host = init_host(tempfile.mkdtemp() + "/mx", users=["petra"])
>>> run(host, "postconf", "mydomain")
mydomain = example.com
>>> rcpt(host, "petra@example.com", client="192.0.2.99")
'250 2.1.5 Ok'
>>> write_table(host, "sender_access", "spam.example  REJECT\\n")
>>> run(host, "postmap", "-q", "spam.example", "hash:/etc/postfix/sender_access")
REJECT
"""
from __future__ import annotations

import io

from .cli import run_command

__all__ = ["run", "rcpt", "write_table", "send", "mailbox", "log"]


def run(host, command: str, *args: str) -> None:
    """Run a Postfix command on ``host`` and print its output (stdout, then stderr).

    A non-zero exit status is printed too, as ``[exit status N]``.
    """
    out, err = io.StringIO(), io.StringIO()
    status = run_command(host.root, command, list(args), out=out, err=err)
    print(out.getvalue() + err.getvalue(), end="")
    if status:
        print(f"[exit status {status}]")


def rcpt(host, address: str, client: str = "192.0.2.99", sender: str = "bob@example.net") -> str:
    """One SMTP session from ``client``: HELO, MAIL FROM, RCPT TO:<address>; the RCPT reply."""
    s = host.session(client)
    s.send("HELO client.example.org")
    s.send(f"MAIL FROM:<{sender}>")
    reply = s.send(f"RCPT TO:<{address}>")
    s.send("QUIT")
    return reply


def write_table(host, name: str, text: str) -> None:
    """Write /etc/postfix/NAME and build NAME.db with postmap, as on a real server."""
    (host.root / "etc/postfix" / name).write_text(text)
    run(host, "postmap", f"hash:/etc/postfix/{name}")


def send(host, sender: str, recipients: str | list[str], message: str = "Subject: test\n\nHello.\n",
         client: str = "127.0.0.1", helo: str = "client.example.org") -> str:
    """Send one message in a complete SMTP session; returns the reply to the message's end.

    Like ``swaks --server mail.example.com --from SENDER --to RCPT``. When the
    session ends the host's queue manager delivers the message (as a real
    server does at once). A refused recipient is left out, as a client would.

    >>> import tempfile
    >>> from mailsim import init_host
    >>> h = init_host(tempfile.mkdtemp() + "/mx", users=["petra"])
    >>> send(h, "alice@example.org", "petra@example.com")
    '250 2.0.0 Ok: queued as 000891600A4'
    >>> mailbox(h, "petra").splitlines()[0]
    'From alice@example.org  Wed Nov 25 09:00:00 2026'
    """
    rcpts = [recipients] if isinstance(recipients, str) else list(recipients)
    s = host.session(client)
    s.send(f"EHLO {helo}")
    reply = s.send(f"MAIL FROM:<{sender}>")
    accepted = [r for r in rcpts if reply.startswith("250") and s.send(f"RCPT TO:<{r}>").startswith("250")]
    if accepted:
        reply = s.send("DATA")
        if reply.startswith("354"):
            reply = s.message(message)
    elif reply.startswith("250"):
        reply = s.transcript[-1][1]
    s.send("QUIT")
    return reply


def mailbox(host, user: str) -> str:
    """The text of ``/var/mail/USER`` (mail_spool_directory) on ``host``; "" when empty."""
    p = host.path(host.conf.get("mail_spool_directory") or "/var/mail") / user
    return p.read_text("utf-8", "replace") if p.is_file() else ""


def log(host, pattern: str | None = None, last: int | None = None) -> None:
    """Print the host's log lines (those matching the regex ``pattern``; the ``last`` N).

    Like ``grep -E 'reject|warning' /var/log/maillog | tail -n N`` on a real server.
    """
    import re
    from .maillog import log_path
    path = log_path(host)       # the file: every process's lines, also those before a reload
    lines = path.read_text("utf-8", "replace").splitlines() if path.is_file() else host.log.lines
    if pattern:
        rx = re.compile(pattern)
        lines = [ln for ln in lines if rx.search(ln)]
    if last:
        lines = lines[-last:]
    print("\n".join(lines))
