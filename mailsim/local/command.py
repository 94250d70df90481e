"""|command destinations, mailbox_command, and the hand-off to other
transports -- recorded, never executed.

Models ``src/local/command.c`` (deliver_command) and
``src/global/deliver_pass.c`` (mailbox_transport, fallback_transport).

NOTHING IS EVER RUN. Where Postfix would start a program (an alias
``"|/usr/bin/procmail"``, a ``.forward`` line ``|vacation``, or
``mailbox_command``), mailsim appends one line to the host's
``/var/log/mailsim-commands.log`` saying which command would have run, as
which user, for which queue id and recipient, and then logs what Postfix
logs when the command exits with status 0::

    QID: to=<gerda@example.com>, relay=local, ..., status=sent (delivered to command: /bin/true)

(The command is logged as written; ``$EXTENSION`` and the like would be
expanded by the shell from the environment local(8) sets.) Exit codes,
output captured for bounces, ``command_time_limit`` and
``command_execution_directory`` therefore play no part.

``mailbox_transport`` / ``fallback_transport`` (and their ``_maps``) hand
the recipient to another delivery agent (``lmtp:unix:private/dovecot-lmtp``,
``maildrop``, ...). mailsim runs none of those: local(8) logs Postfix's
``QID: passing <rcpt> to transport=NAME``, the hand-off is recorded in
the same file, and the recipient is deferred with Postfix's
``4.3.0 mail transport unavailable`` (relay=none) -- what a real server
does when that transport does not answer. It stays in the queue.

Parameters: ``allow_mail_to_commands`` (``alias, forward``; checked where
the destination is found), ``default_privs`` (``nobody``),
``prepend_delivered_header`` (``command, file, forward``).

Example
-------
>>> import tempfile
>>> from mailsim.host import init_host
>>> from mailsim.queue import QueueFile, Recipient
>>> from mailsim.local.state import Attr, Run, UserAttr
>>> h = init_host(tempfile.mkdtemp() + "/mx", users=["gerda"])
>>> qf = QueueFile("4B2A1160001", "alice@example.org", [Recipient("gerda@example.com")],
...                h.clock.now(), b"Subject: hi\\n\\nhello\\n")
>>> run = Run(h, qf, 4242, None)
>>> deliver_command(run, Attr(qf.recipients[0], qf.sender), UserAttr.of(h.users()["gerda"]),
...                 "/usr/bin/procmail")
0
>>> h.log.lines[-1].split(", dsn=")[1]
'2.0.0, status=sent (delivered to command: /usr/bin/procmail)'
>>> print(h.path(COMMANDS_LOG).read_text().split(" ", 3)[3].replace(" for", "\\n for"), end="")
4B2A1160001: command as user=gerda (uid 1000, home /home/gerda)
 for <gerda@example.com>: /usr/bin/procmail
"""
from __future__ import annotations

from .state import Attr, Run, UserAttr, defer, sent

__all__ = ["COMMANDS_LOG", "deliver_command", "deliver_pass", "record"]

#: where the commands and hand-offs that would have happened are written (in the host)
COMMANDS_LOG = "/var/log/mailsim-commands.log"


def record(run: Run, text: str) -> None:
    """Append one line ``DATE QID: text`` to the host's commands log."""
    host = run.host
    path = host.path(COMMANDS_LOG)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", errors="surrogateescape") as f:
        f.write(f"{host.log.stamp()} {run.qf.queue_id}: {text}\n")


def _who(run: Run, u: UserAttr) -> str:
    """The account the command would run as: the recipient, else default_privs."""
    if u.name is not None and u.uid != 0:
        return f"user={u.name} (uid {u.uid}, home {u.home})"
    name = run.host.conf["default_privs"]
    pw = run.host.users().get(name)
    return f"user={name}" + (f" (uid {pw.uid})" if pw else "")


def deliver_command(run: Run, a: Attr, u: UserAttr, command: str) -> int:
    """Record ``command`` instead of running it; log Postfix's success line."""
    a = a.down()
    if run.been_here(f"command {a.user}:{u.uid} {command}"):
        return 0
    if run.trace_only:
        return sent(run, a, f"delivers to command: {command}")
    record(run, f"command as {_who(run, u)} for <{a.rcpt.address}>: {command}")
    return sent(run, a, f"delivered to command: {command}")


def deliver_pass(run: Run, a: Attr, service: str) -> int:
    """Hand the recipient to the transport ``service`` (``transport[:nexthop]``)."""
    transport = service.split(":", 1)[0]
    run.info(f"{run.qf.queue_id}: passing <{a.rcpt.address}> to transport={transport}")
    record(run, f"hand-off of <{a.rcpt.address}> to transport {service} (not simulated)")
    return defer(run, a, "4.3.0", "mail transport unavailable", relay="none")
