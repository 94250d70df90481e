"""Small helpers the course notebooks share.

Each stands for something an administrator types on a real server:

* :func:`run` -- a Postfix command (``postconf -n``, ``postmap ...``, ``postfix check``)
  on a host, printing what it writes, as in a terminal;
* :func:`rcpt` -- one short SMTP session from a client, to see how one recipient is
  answered (``telnet mail.example.com 25``: HELO, MAIL FROM, RCPT TO, QUIT);
* :func:`write_table` -- write a lookup table's text file and build it with postmap.

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

__all__ = ["run", "rcpt", "write_table"]


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
