"""local(8): Postfix's local delivery agent.

qmgr hands local(8) one recipient in a local domain (``mydestination``) at
a time (``local_destination_recipient_limit = 1``);
:func:`deliver_local` does what Postfix's local(8) does with it and logs
every line itself::

    from mailsim.local import deliver_local
    outcome = deliver_local(host, qf, rcpt, active=t_active, pid=local_pid)

The recipient is done -- qmgr removes it from the queue file -- unless
``outcome.deferred`` is not empty. ``outcome.bounced`` feeds the
non-delivery notice, ``outcome.forwarded`` names the new messages
local(8) posted. :class:`LocalFatal` means local(8) would not start at all
(``mailbox_size_limit`` below ``message_size_limit``).

Where each part lives (named after Postfix's source files):

* :mod:`mailsim.local.recipient` -- the delivery graph: duplicate and loop
  checks (``Delivered-To:``), aliases with ``owner-`` aliases,
  ``:include:``, unknown users;
* :mod:`mailsim.local.dotforward` -- ``.forward`` files (``forward_path``);
* :mod:`mailsim.local.mailbox` -- mbox files (``/var/mail/USER``,
  ``~/Mailbox``, ``/file`` destinations) and maildirs (``home_mailbox =
  Maildir/``), with Postfix's error texts;
* :mod:`mailsim.local.forward` -- copies for other addresses, resubmitted
  through cleanup(8) (``status=sent (forwarded as NEWQID)``);
* :mod:`mailsim.local.command` -- ``|command`` destinations,
  ``mailbox_command``, ``mailbox_transport``, ``fallback_transport``:
  **never executed**, written to ``/var/log/mailsim-commands.log`` in the
  host instead (see there);
* :mod:`mailsim.local.preview` -- :func:`expand_aliases` (what an address
  expands to, without delivering) and other small helpers.

Log lines, mailbox and maildir bytes are compared with recordings of
Postfix 3.7.11 in ``tests/golden/local/`` (tools/record_local.py).

Example
-------
>>> import tempfile
>>> from mailsim.host import init_host
>>> from mailsim.queue import QueueFile, Recipient
>>> h = init_host(tempfile.mkdtemp() + "/mx", users=["jim", "petra"])
>>> _ = h.path("/home/jim/.forward").write_text("petra\\n")
>>> qf = QueueFile("4B2A1160001", "alice@example.org", [Recipient("jim@example.com")],
...                h.clock.now(), b"Subject: hi\\n\\nhello\\n")
>>> out = deliver_local(h, qf, qf.recipients[0], active=h.clock.now(), pid=4242)
>>> line = h.log.lines[-1].split(": ", 2)[2]
>>> line.startswith("to=<jim@example.com>, relay=local,")
True
>>> line.endswith(f"status=sent (forwarded as {out.forwarded[0]})")
True
>>> h.path("/var/spool/postfix/incoming/" + out.forwarded[0]).exists()
True
"""
from __future__ import annotations

from ..log_adhoc import format_tv
from .command import COMMANDS_LOG
from .mailbox import mail_copy, quote_822_local
from .preview import (COMMAND, FILE, FORWARD, DeliveryError, Expansion, deliver_mbox,
                      expand_aliases, log_delivery, mailbox_path, mbox_entry, recipient_address)
from .dotforward import forward_paths
from .recipient import LocalFatal, deliver_local, delivered_to_headers, parse_tokens
from .state import LocalOutcome

__all__ = ["deliver_local", "LocalOutcome", "LocalFatal", "COMMANDS_LOG", "expand_aliases", "Expansion",
           "deliver_mbox", "DeliveryError", "log_delivery", "format_tv", "mailbox_path",
           "recipient_address", "mbox_entry", "mail_copy", "quote_822_local",
           "parse_tokens", "delivered_to_headers", "forward_paths", "FILE", "COMMAND", "FORWARD"]
