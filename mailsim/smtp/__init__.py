"""smtp(8): Postfix's SMTP client, the delivery agent for mail to other hosts.

The queue manager hands smtp(8) one message, a next hop and up to
``smtp_destination_recipient_limit`` (50) recipients -- cutting the list is
qmgr's job, as is sorting it (Postfix's qmgr sorts recipients by address, so
``user2@`` comes before ``user@``). smtp(8) finds the server(s) of the next
hop, connects, and speaks SMTP (RFC 5321), passing on the extensions the
message needs: SIZE (RFC 1870), 8BITMIME (RFC 6152), DSN (RFC 3461),
SMTPUTF8 (RFC 6531), and PIPELINING (RFC 2920) when the server offers it.
For every recipient it logs Postfix's line and reports the result::

    connect to 127.0.0.1[127.0.0.1]:2599: Connection refused
    QID: to=<user@other.org>, relay=none, delay=0.01, delays=0.01/0.01/0/0,
         dsn=4.4.1, status=deferred (connect to 127.0.0.1[127.0.0.1]:2599: Connection refused)

The modules follow Postfix's source files: :mod:`~mailsim.smtp.addr`
(smtp_addr.c: next hop and server addresses), :mod:`~mailsim.smtp.connect`
(how bytes reach a server: loopback sockets or a simulated host in memory),
:mod:`~mailsim.smtp.proto` (smtp_proto.c, smtp_trouble.c: the dialogue and
what a reply means for each recipient), and :mod:`~mailsim.smtp.peer`, a
scripted server that records what a client sends (not a Postfix part).
What Postfix 3.7.11's client sends and logs was recorded with that peer
(``tools/record_smtp_client.py``, ``tests/golden/smtp-client/``).

Trust: server replies are untrusted; any reply, or none, leads to one of
Postfix's outcomes (sent, deferred, bounced), never to an exception.

Parameters read (Postfix 3.7 defaults)
--------------------------------------
* ``smtp_helo_name`` ($myhostname), ``myhostname``
* ``smtp_connect_timeout`` (30s), ``smtp_helo_timeout`` (300s),
  ``smtp_mail_timeout`` (300s), ``smtp_rcpt_timeout`` (300s),
  ``smtp_data_init_timeout`` (120s), ``smtp_data_xfer_timeout`` (180s),
  ``smtp_data_done_timeout`` (600s), ``smtp_rset_timeout`` (20s),
  ``smtp_quit_timeout`` (300s)
* ``smtp_always_send_ehlo`` (yes), ``smtp_never_send_ehlo`` (no),
  ``smtp_skip_5xx_greeting`` (yes), ``smtp_skip_quit_response`` (yes)
* ``smtp_line_length_limit`` (998): longer lines are broken with CRLF SPACE
* ``smtp_tcp_port`` (smtp), ``smtp_bind_address`` (empty),
  ``smtp_mx_address_limit`` (5), ``smtp_dns_support_level`` (empty),
  ``smtp_host_lookup`` (dns), ``inet_protocols`` (all)
* ``relayhost`` (empty): a relayhost that cannot be found defers (4.3.5)
  instead of bouncing, with ``warning: relayhost configuration problem``
* ``soft_bounce`` (no), ``disable_mime_output_conversion`` (no), ``delay_logging_resolution_limit`` (2)
* ``smtp_destination_recipient_limit`` (50) is applied by qmgr, not here.

Next hops are found as Postfix finds them: through the lab's virtual DNS
(:mod:`mailsim.dns`, MX then A records, null MX, loops) when the host has
one (``host.dns``), else through the host's ``etc/hosts``
(:mod:`~mailsim.smtp.addr`).

Not simulated
-------------
TLS (STARTTLS is never sent), SASL, XFORWARD,
connection caching (``conn_use=``), fall-back relays, ``smtp_generic_maps``
and header/body checks, ``smtp_discard_ehlo_keywords``, PIX workarounds,
postmaster notices of protocol errors, and the 8-bit to 7-bit MIME
conversion for servers without 8BITMIME (the content goes out unchanged;
like Postfix, SIZE= is then left out).

Example
-------
>>> import tempfile
>>> from mailsim.host import init_host
>>> from mailsim.queue import QueueFile, Recipient
>>> from mailsim.smtp.peer import ScriptedServer
>>> h = init_host(tempfile.mkdtemp() + "/mx")
>>> qf = QueueFile("4B2A1160001", "alice@example.com", [Recipient("bob@example.org")],
...                h.clock.now(), b"Subject: hi\\n\\nhello\\n")
>>> with ScriptedServer() as peer:
...     res = SMTPClient(h).deliver(qf, qf.recipients, f"[127.0.0.1]:{peer.port}",
...                                 active=h.clock.now())
...     peer.wait_idle()
>>> res[0].status, res[0].text
('sent', '250 2.0.0 Ok: queued as 4A1B2C3D4E')
>>> print(peer.sessions[0][2]["client"].replace("\\r\\n", "\\n"), end="")
MAIL FROM:<alice@example.com> SIZE=22
RCPT TO:<bob@example.org>
DATA
"""
from .addr import LookupFailure, NextHop, ServerAddress, parse_nexthop, resolve
from .connect import (Channel, ChannelLost, ChannelTimeout, ConnectFailure, Connector,
                      HostConnector, NotLoopback, SocketConnector)
from .proto import RcptResult, ServerReply, SMTPClient

__all__ = ["SMTPClient", "RcptResult", "ServerReply", "Connector", "Channel", "SocketConnector",
           "HostConnector", "ConnectFailure", "NotLoopback", "ChannelLost", "ChannelTimeout",
           "NextHop", "ServerAddress", "LookupFailure", "parse_nexthop", "resolve"]
