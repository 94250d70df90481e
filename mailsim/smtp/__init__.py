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
* TLS (:mod:`mailsim.tls.client`): ``smtp_tls_security_level`` (empty: from
  ``smtp_use_tls``/``smtp_enforce_tls``/``smtp_tls_enforce_peername``, i.e. none),
  ``smtp_tls_policy_maps``, ``smtp_tls_loglevel`` (0), ``smtp_tls_note_starttls_offer``
  (no), ``smtp_starttls_timeout`` (300s), ``smtp_tls_CAfile``, ``smtp_tls_CApath``,
  ``smtp_tls_verify_cert_match`` (hostname), ``smtp_tls_secure_cert_match`` (nexthop,
  dot-nexthop), ``smtp_tls_fingerprint_cert_match``, ``smtp_tls_fingerprint_digest``
  (sha256), ``smtp_tls_protocols``, ``smtp_tls_mandatory_protocols``,
  ``smtp_tls_servername``, ``smtp_tls_cert_file``/``smtp_tls_key_file``, and
  ``minimal_backoff_time`` (when a failed opportunistic handshake may be retried in
  plaintext).
* SASL AUTH (:mod:`mailsim.smtp.sasl`): ``smtp_sasl_auth_enable`` (no),
  ``smtp_sasl_password_maps``, ``smtp_sasl_security_options`` (noplaintext,
  noanonymous), ``smtp_sasl_tls_security_options``,
  ``smtp_sasl_tls_verified_security_options``, ``smtp_sasl_mechanism_filter``,
  ``smtp_sasl_auth_soft_bounce`` (yes), ``smtp_sasl_auth_cache_name``,
  ``smtp_sasl_auth_cache_time`` (90d), ``smtp_sender_dependent_authentication`` (no),
  ``smtp_send_dummy_mail_auth`` (no).

STARTTLS
--------
With ``may`` and above, smtp(8) sends STARTTLS when the server offers it and
shakes hands for real (Python's ssl: a socket, or memory BIOs into a simulated
host's engine); then EHLO again. What Postfix 3.7.11 does, recorded in
``tests/golden/smtp-tls/`` (``tools/record_smtp_tls.py``):

* ``may``: no STARTTLS offered, or STARTTLS refused (``454``): plaintext. A failed
  handshake defers the mail (``4.7.5 Cannot start TLS: handshake failure``);
  only when the message has waited ``minimal_backoff_time`` before this attempt
  does smtp(8) try the same server again in plaintext (``QID: Cannot start TLS:
  handshake failure``, then the plaintext delivery) -- likewise when the TLS
  session breaks later (``lost connection ...``).
* ``encrypt``: ``4.7.4 TLS is required, but was not offered by host NAME[ADDR]``;
  ``TLS is required, but host NAME[ADDR] refused to start TLS: REPLY``; a failed
  handshake defers (never plaintext).
* ``verify``/``secure``/``fingerprint``: the certificate must be trusted
  (``smtp_tls_CAfile``) and match (``hostname``; ``nexthop, dot-nexthop``; literal
  names; fingerprints), else ``certificate verification failed for ...`` and
  ``4.7.5 Server certificate not verified`` (QUIT is still sent, over TLS).
* ``dane``/``dane-only``: mailsim's DNS has no DNSSEC, so Postfix's own fallback
  applies: ``warning: DEST: dane configured with dnssec lookups disabled`` and
  ``may``; ``dane-only`` is a configuration problem (``warning: TLS policy lookup
  for DEST/HOST: client TLS configuration problem``, the mail deferred 4.7.5,
  ``relay=none``).
* ``smtp_tls_loglevel = 1``: ``Anonymous|Untrusted|Trusted|Verified TLS connection
  established to NAME[ADDR]:PORT: TLSv1.3 with cipher ... key-exchange X25519
  server-signature RSA-PSS (2048 bits) server-digest SHA256``.

SASL AUTH
---------
With ``smtp_sasl_auth_enable = yes`` smtp(8) authenticates after EHLO (after the
EHLO over TLS, when STARTTLS was used) to a server that offers ``AUTH`` and has a
``user:password`` entry in ``smtp_sasl_password_maps`` (looked up by the server's
name, then by the next hop as written: ``[smtp.isp.example]:587``). What Postfix
3.7.11 with Cyrus SASL does, recorded in ``tests/golden/smtp-sasl/``
(``tools/record_smtp_sasl.py``): no entry or no AUTH offered -- the mail goes
without AUTH; the default security options refuse PLAIN and LOGIN, over TLS too
(``SASL authentication failed; cannot authenticate to server NAME[ADDR]: no
mechanism available``, deferred 4.7.0) -- a smarthost configuration says
``smtp_sasl_tls_security_options = noanonymous``; a 535 defers the mail
(``SASL authentication failed; server NAME[ADDR] said: 535 ...``) unless
``smtp_sasl_auth_soft_bounce = no``. See :mod:`mailsim.smtp.sasl`.

Next hops are found as Postfix finds them: through the lab's virtual DNS
(:mod:`mailsim.dns`, MX then A records, null MX, loops) when the host has
one (``host.dns``), else through the host's ``etc/hosts``
(:mod:`~mailsim.smtp.addr`).

Not simulated
-------------
TLS session caching and connection reuse (``smtp_tls_session_cache_database``,
``smtp_tls_connection_reuse``, tlsproxy), ``smtp_tls_wrappermode``, cipher
settings (``smtp_tls_ciphers`` ...: OpenSSL's defaults apply), DANE with real
TLSA records, SASL mechanisms other than PLAIN, LOGIN and CRAM-MD5, XFORWARD,
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
