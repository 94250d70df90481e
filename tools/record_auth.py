#!/usr/bin/env python3
"""Record SMTP AUTH (RFC 4954) in real Postfix 3.7's smtpd, with Cyrus SASL and sasldb.

For every case below: start a private instance of the machine's Postfix
(:func:`mailsim.realpostfix.postfix_instance`, ``postfix -c DIR``: its own
main.cf, master.cf, queue and log on 127.0.0.1:PORT; /etc/postfix is never
touched) with the case's main.cf settings. Before it starts, the instance's
folder gets what a Debian server has for Cyrus SASL:

* ``DIR/sasl/smtpd.conf`` -- Debian's Postfix reads ``$config_directory/sasl/
  $smtpd_sasl_path.conf`` (``cyrus_sasl_config_path`` is ignored), here::

      pwcheck_method: auxprop
      auxprop_plugin: sasldb
      mech_list: PLAIN LOGIN
      sasldb_path: DIR/sasldb2

  (some cases change it, one has none);
* ``DIR/sasldb2`` -- made with the real ``saslpasswd2 -f DIR/sasldb2 -c -p -u
  REALM USER`` (Debian package sasl2-bin), owned by the postfix account so
  that smtpd can read it: alice in realm example.com (password "secret", she
  logs in as ``alice@example.com``), bob in realm real.example.net, the
  instance's myhostname (password "hunter2", he logs in as ``bob``);
* a self-signed RSA-2048 certificate for STARTTLS (``DIR/tls/``);
* for the submission cases, a second smtpd service on 127.0.0.1:SUBPORT with
  Debian's master.cf ``submission`` options (``-o syslog_name=postfix/
  submission -o smtpd_tls_security_level=encrypt -o smtpd_sasl_auth_enable=yes
  ...``).

Then the case's SMTP sessions run, each command sent and each reply read (TLS
after a 220 to STARTTLS). Saved per case, as JSON in tests/golden/auth/ID.json
(plus logs/ID.log): the settings, ``postconf -n`` of the instance (its folder
written ``$BASE``), smtpd.conf, the users, every session's dialogue, the
instance's log from the first session on, and the mailbox of
carol@real.example when a message was delivered.

Needs root (Postfix's master runs as root) and the Debian packages postfix,
libsasl2-modules and sasl2-bin (``saslpasswd2``). Everything is on 127.0.0.1;
the instance does no DNS. What it changes on the machine: nothing outside the
instance's temporary folder, which is removed at the end (also on an error).

    .venv/bin/python tools/record_auth.py [--only ID ...]
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from mailsim.realpostfix import postfix_instance, unavailable  # noqa: E402
from mailsim.serve import free_port  # noqa: E402
import record_client as rc  # noqa: E402  (the recorders' shared pieces, next to us)

OUT = REPO / "tests/golden/auth"
CLIENT = "client.example.org"
#: realm, user, password -- as saslpasswd2 -u REALM USER stores them
USERS = [("example.com", "alice", "secret"), ("real.example.net", "bob", "hunter2")]
SMTPD_CONF = ("pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n"
              "sasldb_path: $BASE/etc/sasldb2\n")
#: Debian 12's master.cf "submission" entry (commented out there), without the $mua_*
#: restrictions that need main.cf definitions
SUBMISSION = ["syslog_name=postfix/submission", "smtpd_tls_security_level=encrypt",
              "smtpd_sasl_auth_enable=yes", "smtpd_tls_auth_only=yes",
              "smtpd_reject_unlisted_recipient=no", "smtpd_recipient_restrictions=",
              "smtpd_relay_restrictions=permit_sasl_authenticated,reject",
              "milter_macro_daemon_name=ORIGINATING"]
#: every case: AUTH on (unless it says otherwise), the client is not in mynetworks
BASE_CF = {"smtpd_sasl_auth_enable": "yes", "mynetworks": "192.0.2.0/24",
           "smtpd_tls_cert_file": "$config_directory/tls/cert.pem",
           "smtpd_tls_key_file": "$config_directory/tls/key.pem", "smtpd_tls_loglevel": "1"}
TLS = {"smtpd_tls_security_level": "may"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def plain(user: str, password: str, authz: str = "") -> str:
    return b64(f"{authz}\0{user}\0{password}")


ALICE = plain("alice@example.com", "secret")
BOB = plain("bob", "hunter2")
EHLO = f"EHLO {CLIENT}"
MESSAGE = ("From: alice@example.com\r\nTo: carol@real.example\r\nSubject: AUTH test\r\n"
           "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\nMessage-ID: <auth-test@client.example.org>\r\n"
           "\r\nHello from an authenticated client.\r\n.")


def cram(user: str, password: str):
    """The CRAM-MD5 response to the challenge in the previous reply (RFC 2195)."""
    def answer(reply: str) -> str:
        import hashlib
        import hmac
        challenge = base64.b64decode(reply[4:].strip())
        digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
        return b64(f"{user} {digest}")
    answer.cram = [user, password]
    return answer


def mail(sender: str = "alice@example.com", rcpt: str = "carol@real.example", extra: str = "") -> list:
    return [f"MAIL FROM:<{sender}>{extra}", f"RCPT TO:<{rcpt}>", "DATA", MESSAGE]


#: the sessions of the sender-login-mismatch and inline-error cases: unauthenticated, then
#: as bob, senders that the smtpd_sender_login_maps entries own or not
MISMATCH_SESSIONS = [[EHLO, "MAIL FROM:<alice@example.com>", "RCPT TO:<carol@real.example>",
                      "RSET", "MAIL FROM:<other@example.com>", "RCPT TO:<carol@real.example>",
                      "QUIT"],
                     [EHLO, f"AUTH PLAIN {BOB}", "MAIL FROM:<alice@example.com>",
                      "RCPT TO:<carol@real.example>", "RSET", "MAIL FROM:<other@example.com>",
                      "RCPT TO:<carol@real.example>", "RSET", "MAIL FROM:<Shared@Example.COM>",
                      "RCPT TO:<carol@real.example>", "RSET", "MAIL FROM:<>",
                      "RCPT TO:<carol@real.example>", "QUIT"]]

#: id, title, main.cf settings (over BASE_CF), smtpd.conf (None: no file), sessions:
#: lists of commands; "STARTTLS" shakes hands after its 220; a session may be
#: {"service": "submission", "steps": [...]} for the second port
CASES: list[dict] = [
    dict(id="disabled", title="smtpd_sasl_auth_enable = no: no AUTH in EHLO, AUTH refused, "
                              "AUTH= ignored, relaying denied",
         main_cf={"smtpd_sasl_auth_enable": "no"},
         sessions=[[EHLO, f"AUTH PLAIN {ALICE}", "AUTH", "MAIL FROM:<alice@example.com> "
                    "AUTH=<alice@example.com>", "RCPT TO:<petra@example.org>", "QUIT"]]),
    dict(id="plain", title="AUTH PLAIN with an initial response: 235, a second AUTH, relaying "
                           "permitted, a reject and a message (ESMTPA)",
         main_cf={},
         sessions=[[EHLO, f"AUTH PLAIN {ALICE}", f"AUTH PLAIN {ALICE}", "AUTH LOGIN",
                    "MAIL FROM:<alice@example.com>", "RCPT TO:<petra@example.org>",
                    "RCPT TO:<nobody@real.example>", "RSET", *mail(), "QUIT"]]),
    dict(id="plain-challenge", title="AUTH PLAIN without initial response: the empty 334 "
                                     "challenge; bob in the default realm; "
                                     "smtpd_sasl_authenticated_header = yes",
         main_cf={"smtpd_sasl_authenticated_header": "yes"},
         sessions=[[EHLO, "AUTH PLAIN", BOB, *mail("bob@real.example.net"), "QUIT"]]),
    dict(id="login", title="AUTH LOGIN: Username: and Password: challenges; with an initial "
                           "response; bob as bob@real.example.net",
         main_cf={},
         sessions=[[EHLO, "AUTH LOGIN", b64("alice@example.com"), b64("secret"), *mail(), "QUIT"],
                   [EHLO, f"AUTH LOGIN {b64('bob@real.example.net')}", b64("hunter2"),
                    *mail("bob@real.example.net"), "QUIT"]]),
    dict(id="failures", title="wrong password, unknown user, with PLAIN and LOGIN; then success",
         main_cf={},
         sessions=[[EHLO, f"AUTH PLAIN {plain('alice@example.com', 'wrong')}",
                    f"AUTH PLAIN {plain('nobody@example.com', 'secret')}",
                    f"AUTH PLAIN {plain('alice', 'secret')}",
                    "AUTH LOGIN", b64("bob"), b64("wrong"),
                    "AUTH LOGIN", b64("nobody"), b64("x"),
                    f"AUTH PLAIN {plain('bob', 'hunter2', 'alice@example.com')}",
                    f"AUTH PLAIN {plain('bob', 'hunter2', 'bob')}", "QUIT"]]),
    dict(id="abort", title="'*' cancels AUTH PLAIN and AUTH LOGIN at each challenge",
         main_cf={},
         sessions=[[EHLO, "AUTH PLAIN", "*", "AUTH LOGIN", "*", "AUTH LOGIN", b64("bob"), "*",
                    f"AUTH LOGIN {b64('bob')}", "*", f"AUTH PLAIN {ALICE}", "QUIT"]]),
    dict(id="syntax", title="AUTH without mechanism, with too many arguments, unknown and "
                            "unlisted mechanisms, a lower-case mechanism name",
         main_cf={},
         sessions=[[EHLO, "AUTH", "AUTH PLAIN a b", "AUTH FOO", "AUTH CRAM-MD5",
                    "AUTH ANONYMOUS", f"AUTH plain {ALICE}", "MAIL FROM:<alice@example.com>",
                    "RCPT TO:<carol@real.example>", "DATA", MESSAGE, "QUIT"]]),
    dict(id="base64", title="responses that are not base64, an empty initial response (=), "
                            "a PLAIN response without NUL separators, an empty line",
         main_cf={},
         sessions=[[EHLO, "AUTH PLAIN !!!!", "AUTH PLAIN", "%%%", "AUTH PLAIN =",
                    f"AUTH PLAIN {b64('alice@example.com')}", "AUTH PLAIN", "",
                    "AUTH LOGIN", "", "AUTH LOGIN", b64("bob"), "", f"AUTH PLAIN {ALICE}=",
                    f"AUTH PLAIN {ALICE[:-2]}", "QUIT"]]),
    dict(id="sequence", title="AUTH before EHLO, after HELO, inside a mail transaction",
         main_cf={},
         sessions=[[f"AUTH PLAIN {ALICE}", "MAIL FROM:<alice@example.com>",
                    "RCPT TO:<petra@example.org>", "QUIT"],
                   [f"HELO {CLIENT}", "MAIL FROM:<alice@example.com>", f"AUTH PLAIN {ALICE}",
                    "RSET", f"AUTH PLAIN {ALICE}", "RCPT TO:<petra@example.org>",
                    "MAIL FROM:<alice@example.com>", "RCPT TO:<petra@example.org>", *mail()[2:],
                    "QUIT"]]),
    dict(id="helo-required", title="smtpd_helo_required = yes: AUTH before EHLO",
         main_cf={"smtpd_helo_required": "yes"},
         sessions=[[f"AUTH PLAIN {ALICE}", EHLO, f"AUTH PLAIN {ALICE}", "QUIT"]]),
    dict(id="auth-param", title="the AUTH= parameter of MAIL FROM: <>, twice, xtext, "
                                "logged as sasl_sender=",
         main_cf={},
         sessions=[[EHLO, "MAIL FROM:<alice@example.com> AUTH=<>", "RSET",
                    "MAIL FROM:<alice@example.com> AUTH=<a@example.com> AUTH=<b@example.com>",
                    "MAIL FROM:<alice@example.com> AUTH=", "RSET",
                    f"AUTH PLAIN {ALICE}",
                    *mail(extra=" AUTH=alice+40example.com"), "QUIT"]]),
    dict(id="relay", title="default smtpd_relay_restrictions: relaying deferred without AUTH "
                           "(defer_unauth_destination), permitted after AUTH",
         main_cf={},
         sessions=[[EHLO, "MAIL FROM:<alice@example.com>", "RCPT TO:<petra@example.org>",
                    "QUIT"],
                   [EHLO, f"AUTH PLAIN {ALICE}", "MAIL FROM:<alice@example.com>",
                    "RCPT TO:<petra@example.org>", "QUIT"]]),
    dict(id="recipient-restrictions", title="permit_sasl_authenticated in "
                                            "smtpd_recipient_restrictions, an empty "
                                            "smtpd_relay_restrictions",
         main_cf={"smtpd_relay_restrictions": "",
                  "smtpd_recipient_restrictions": "permit_sasl_authenticated, "
                                                  "reject_unauth_destination"},
         sessions=[[EHLO, "MAIL FROM:<alice@example.com>", "RCPT TO:<petra@example.org>",
                    f"AUTH PLAIN {ALICE}", "RSET", f"AUTH PLAIN {ALICE}",
                    "MAIL FROM:<alice@example.com>", "RCPT TO:<petra@example.org>", "QUIT"]]),
    dict(id="broken-clients", title="broken_sasl_auth_clients = yes: AUTH= in EHLO too",
         main_cf={"broken_sasl_auth_clients": "yes"},
         sessions=[[EHLO, f"AUTH PLAIN {ALICE}", "QUIT"]]),
    dict(id="discard-auth", title="smtpd_discard_ehlo_keywords = auth",
         main_cf={"smtpd_discard_ehlo_keywords": "auth"},
         sessions=[[EHLO, f"AUTH PLAIN {ALICE}", "QUIT"]]),
    dict(id="tls-auth-only", title="smtpd_tls_auth_only = yes: no AUTH before STARTTLS; "
                                   "after it, AUTH and a message (ESMTPSA)",
         main_cf={**TLS, "smtpd_tls_auth_only": "yes"},
         sessions=[[EHLO, f"AUTH PLAIN {ALICE}", "STARTTLS", EHLO, f"AUTH PLAIN {ALICE}",
                    *mail(), "QUIT"]]),
    dict(id="tls-no-auth-only", title="TLS may, smtpd_tls_auth_only = no: AUTH before and "
                                      "after STARTTLS; STARTTLS forgets the login",
         main_cf={**TLS},
         sessions=[[EHLO, f"AUTH PLAIN {ALICE}", "STARTTLS", EHLO, "MAIL FROM:<a@example.com>",
                    "RCPT TO:<petra@example.org>", "RSET", f"AUTH PLAIN {ALICE}", "QUIT"]]),
    dict(id="noplaintext", title="smtpd_sasl_security_options = noanonymous, noplaintext, "
                                 "smtpd_sasl_tls_security_options = noanonymous, mech_list "
                                 "PLAIN LOGIN",
         main_cf={**TLS, "smtpd_sasl_security_options": "noanonymous, noplaintext",
                  "smtpd_sasl_tls_security_options": "noanonymous"},
         sessions=[[EHLO, "STARTTLS", EHLO, f"AUTH PLAIN {ALICE}", "QUIT"]]),
    dict(id="noplaintext-cram", title="as noplaintext, mech_list PLAIN LOGIN CRAM-MD5: "
                                      "only CRAM-MD5 before STARTTLS",
         main_cf={**TLS, "smtpd_sasl_security_options": "noanonymous, noplaintext",
                  "smtpd_sasl_tls_security_options": "noanonymous"},
         smtpd_conf=SMTPD_CONF.replace("PLAIN LOGIN", "PLAIN LOGIN CRAM-MD5"),
         sessions=[[EHLO, f"AUTH PLAIN {ALICE}", "AUTH LOGIN", "STARTTLS", EHLO,
                    f"AUTH PLAIN {ALICE}", "QUIT"]]),
    dict(id="no-smtpd-conf", title="no sasl/smtpd.conf: every installed Cyrus mechanism is "
                                   "offered",
         main_cf={}, smtpd_conf=None,
         sessions=[[EHLO, "QUIT"]]),
    dict(id="sender-login-mismatch", title="reject_sender_login_mismatch with "
                                           "smtpd_sender_login_maps",
         main_cf={"smtpd_sender_login_maps": "inline:{ alice@example.com=alice@example.com, "
                                             "bob@real.example.net=bob, "
                                             "{shared@example.com=alice@example.com,bob} }",
                  "smtpd_sender_restrictions": "reject_sender_login_mismatch"},
         sessions=MISMATCH_SESSIONS),
    dict(id="inline-error", title="an inline: table written without braces around a value with "
                                  "a comma: every lookup fails (451 4.3.0)",
         main_cf={"smtpd_sender_login_maps": "inline:{ alice@example.com=alice@example.com, "
                                             "bob@real.example.net=bob, "
                                             "shared@example.com=alice@example.com,bob }",
                  "smtpd_sender_restrictions": "reject_sender_login_mismatch"},
         sessions=MISMATCH_SESSIONS),
    dict(id="known-sender-login-mismatch", title="reject_known_sender_login_mismatch and "
                                                 "reject_authenticated_sender_login_mismatch, "
                                                 "smtpd_delay_reject = no",
         main_cf={"smtpd_sender_login_maps": "inline:{ alice@example.com=alice@example.com }",
                  "smtpd_sender_restrictions": "reject_known_sender_login_mismatch",
                  "smtpd_delay_reject": "no"},
         sessions=[[EHLO, "MAIL FROM:<alice@example.com>", "MAIL FROM:<other@example.com>",
                    "RSET", f"AUTH PLAIN {BOB}", "MAIL FROM:<other@example.com>", "RSET",
                    "MAIL FROM:<alice@example.com>", "QUIT"]]),
    dict(id="response-limit-too-small", title="smtpd_sasl_response_limit = 20: below its "
                                              "minimum, smtpd cannot start",
         main_cf={"smtpd_sasl_response_limit": "20"},
         sessions=[[EHLO, "AUTH PLAIN", ALICE, f"AUTH PLAIN {ALICE}", "QUIT"]]),
    dict(id="response-limit", title="a response longer than smtpd_sasl_response_limit (12288)",
         main_cf={},
         sessions=[[EHLO, "AUTH PLAIN", "QUFB" * 3100, "AUTH LOGIN", "QUFB" * 3072,
                    "QUFB" * 3072 + "QQ==", f"AUTH PLAIN {ALICE}", "QUIT"]]),
    dict(id="check-sasl-access", title="check_sasl_access in smtpd_sender_restrictions",
         main_cf={"smtpd_sender_restrictions": "check_sasl_access inline:{ "
                                               "{bob=REJECT no bobs today} }"},
         sessions=[[EHLO, f"AUTH PLAIN {BOB}", "MAIL FROM:<bob@real.example.net>",
                    "RCPT TO:<carol@real.example>", "QUIT"]]),
    dict(id="plain-edge", title="PLAIN responses with one NUL, three NULs, an empty "
                                "password, an authorization identity",
         main_cf={},
         sessions=[[EHLO, f"AUTH PLAIN {b64(chr(0) + 'alice@example.com')}",
                    f"AUTH PLAIN {b64(chr(0) + 'alice@example.com' + chr(0) + 'secret' + chr(0))}",
                    f"AUTH PLAIN {plain('alice@example.com', '')}",
                    f"AUTH PLAIN {plain('alice@example.com', 'secret', 'alice@example.com')}",
                    *mail(), "QUIT"]]),
    dict(id="local-domain", title="smtpd_sasl_local_domain = example.com: alice logs in "
                                  "without her realm, bob no longer can",
         main_cf={"smtpd_sasl_local_domain": "example.com"},
         sessions=[[EHLO, f"AUTH PLAIN {plain('bob', 'hunter2')}",
                    f"AUTH PLAIN {plain('alice', 'secret')}", *mail(), "QUIT"]]),
    dict(id="exceptions-networks", title="smtpd_sasl_exceptions_networks = 127.0.0.0/8: AUTH "
                                         "not offered to the client, still accepted",
         main_cf={"smtpd_sasl_exceptions_networks": "127.0.0.0/8"},
         sessions=[[EHLO, f"AUTH PLAIN {ALICE}", "QUIT"]]),
    dict(id="anonymous", title="smtpd_sasl_security_options empty, ANONYMOUS in mech_list: "
                               "an anonymous login does not count for permit_sasl_authenticated",
         main_cf={"smtpd_sasl_security_options": ""},
         smtpd_conf=SMTPD_CONF.replace("PLAIN LOGIN", "PLAIN LOGIN ANONYMOUS"),
         sessions=[[EHLO, "AUTH ANONYMOUS", b64("trace@example.org"), "MAIL FROM:<a@example.org>",
                    "RCPT TO:<petra@example.org>", "RSET", *mail("a@example.org"), "QUIT"],
                   [EHLO, f"AUTH ANONYMOUS {b64('x')}", "QUIT"]]),
    dict(id="anonymous-refused", title="ANONYMOUS in mech_list with the default noanonymous",
         main_cf={},
         smtpd_conf=SMTPD_CONF.replace("PLAIN LOGIN", "PLAIN LOGIN ANONYMOUS"),
         sessions=[[EHLO, "AUTH ANONYMOUS", f"AUTH ANONYMOUS {b64('x')}", "QUIT"]]),
    dict(id="cram-md5", title="CRAM-MD5 (mech_list CRAM-MD5 PLAIN LOGIN): success, wrong "
                              "password, unknown user, abort, a malformed response",
         main_cf={},
         smtpd_conf=SMTPD_CONF.replace("PLAIN LOGIN", "CRAM-MD5 PLAIN LOGIN"),
         sessions=[[EHLO, "AUTH CRAM-MD5", cram("alice@example.com", "wrong"),
                    "AUTH CRAM-MD5", cram("nobody@example.com", "secret"),
                    "AUTH CRAM-MD5", "*", "AUTH CRAM-MD5", b64("alice@example.com"),
                    "AUTH CRAM-MD5", b64("alice@example.com 0123"),
                    f"AUTH CRAM-MD5 {b64('x')}",
                    "AUTH CRAM-MD5", cram("bob", "hunter2"), *mail("bob@real.example.net"),
                    "QUIT"]]),
    dict(id="submission", title="a submission service in master.cf (Debian's -o options): "
                                "STARTTLS required, AUTH after it, relaying for logged-in "
                                "users only; port 25 unchanged",
         main_cf={"smtpd_sasl_auth_enable": "no"}, submission=True,
         sessions=[{"service": "submission",
                    "steps": [EHLO, f"AUTH PLAIN {ALICE}", "MAIL FROM:<alice@example.com>",
                              "STARTTLS", EHLO, "MAIL FROM:<alice@example.com>",
                              "RCPT TO:<petra@example.org>", "RSET", f"AUTH PLAIN {ALICE}",
                              "MAIL FROM:<alice@example.com>", "RCPT TO:<petra@example.org>",
                              "RCPT TO:<nobody@real.example>", "RSET", *mail(), "QUIT"]},
                   [EHLO, f"AUTH PLAIN {ALICE}", "QUIT"]]),
    dict(id="dovecot-missing", title="smtpd_sasl_type = dovecot without a Dovecot auth "
                                     "socket: smtpd cannot start",
         main_cf={"smtpd_sasl_type": "dovecot", "smtpd_sasl_path": "private/auth"},
         sessions=[[EHLO]]),
]


# -- talking SMTP ------------------------------------------------------------------------------
def _read(sock, buf: bytearray, timeout: float) -> tuple[str, bool]:
    """One complete reply (possibly multi-line); ("", True) if the server closed first."""
    return rc.read_text_reply_closed(sock, buf, timeout, (socket.timeout, ssl.SSLError, OSError))


def talk(port: int, steps: list[str]) -> list[dict]:
    """Greeting, then each step; a step after DATA's 354 is the message (sent with CRLF)."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as plain_sock:
        sock = plain_sock
        buf = bytearray()
        reply, closed = _read(sock, buf, 30)
        out.append({"send": None, "reply": reply, "n_replies": 1})
        for line in steps:
            if closed:
                break
            extra = {}
            if callable(line):
                extra = {"cram": line.cram}      # computed from the challenge: replay does too
                line = line(out[-1]["reply"])
            data = line + "\r\n"
            try:
                sock.sendall(data.encode("latin-1"))
            except OSError:
                out.append({"send": data, "reply": "", "n_replies": 1, "closed": True})
                break
            reply, closed = _read(sock, buf, 10)
            step = {"send": data, "reply": reply, "n_replies": 1, **extra}
            if closed:
                step["closed"] = True
            if line == "STARTTLS" and reply.startswith("220"):
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                sock = ctx.wrap_socket(plain_sock)
                step["starttls"] = True
                step["tls"] = {"version": sock.version(), "cipher": sock.cipher()[0]}
            out.append(step)
        if not closed:
            time.sleep(0.2)
    return out


# -- the instance ------------------------------------------------------------------------------
def _certificate(etc: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "real.example.net")])
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=3650)).sign(key, hashes.SHA256()))
    (etc / "tls").mkdir()
    (etc / "tls/cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (etc / "tls/key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (etc / "tls/key.pem").chmod(0o600)


def _submission_lines(subport: int) -> str:
    opts = "".join(f"\n  -o {o}" for o in SUBMISSION)
    return f"127.0.0.1:{subport} inet  n  -  n  -  -  smtpd{opts}\n"


def setup_for(case: dict, subport: int):
    conf = case.get("smtpd_conf", SMTPD_CONF)

    def setup(base: Path) -> None:
        etc = base / "etc"
        if conf is not None:
            (etc / "sasl").mkdir()
            (etc / "sasl/smtpd.conf").write_text(conf.replace("$BASE", str(base)))
        db = etc / "sasldb2"
        for realm, user, password in USERS:
            r = subprocess.run(["saslpasswd2", "-f", str(db), "-c", "-p", "-u", realm, user],
                               input=password, text=True, capture_output=True)
            if r.returncode:
                raise RuntimeError(f"saslpasswd2: {r.stderr}")
        shutil.chown(db, "postfix")
        _certificate(etc)
        if case.get("submission"):
            with open(etc / "master.cf", "a") as f:
                f.write(_submission_lines(subport))
    return setup


def _settle(pf, n_sessions: int, start: int, queued: int, timeout: float = 20.0) -> list[str]:
    """The log from ``start`` on, once every session has disconnected and every queued
    message has been removed from the queue."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        lines = pf.log()[start:]
        gone = sum(" disconnect from " in ln or "fatal:" in ln for ln in lines)
        removed = sum(ln.endswith(": removed") for ln in lines)
        if gone >= n_sessions and removed >= queued:
            time.sleep(0.5)
            return pf.log()[start:]
        time.sleep(0.1)
    return pf.log()[start:]


def record(case: dict) -> dict:
    port, subport = free_port(), free_port()
    cf = {**BASE_CF, **case["main_cf"]}
    with postfix_instance(port, cf, setup=setup_for(case, subport)) as pf:
        base = str(pf.base)
        time.sleep(0.5)
        start = len(pf.log())
        sessions = []
        for spec in case["sessions"]:
            if isinstance(spec, dict):
                service, steps = spec["service"], spec["steps"]
            else:
                service, steps = "smtp", spec
            dialogue = talk(subport if service == "submission" else port, steps)
            sessions.append({"service": service, "dialogue": dialogue})
        queued = sum("queued as" in s["reply"] for x in sessions for s in x["dialogue"])
        log = _settle(pf, len(sessions), start, queued)
        effective = subprocess.run(["postconf", "-c", str(pf.config_directory), "-n"],
                                   capture_output=True, text=True).stdout
        master = subprocess.run(["postconf", "-c", str(pf.config_directory), "-M"],
                                capture_output=True, text=True).stdout
        conf = case.get("smtpd_conf", SMTPD_CONF)
        rec = {
            "id": case["id"],
            "title": case["title"],
            "postfix_version": subprocess.run(["postconf", "-dh", "mail_version"],
                                              capture_output=True, text=True).stdout.strip(),
            "cyrus_sasl": _package_version("libsasl2-2"),
            "hostname": socket.gethostname(),
            "instance_base": base,
            "port": port,
            "submission_port": subport if case.get("submission") else None,
            "main_cf": case["main_cf"],
            "main_cf_effective": effective.replace(base, "$BASE"),
            "master_cf_submission": (_submission_lines(subport).replace(str(subport), "$SUBPORT")
                                     if case.get("submission") else None),
            "master_cf_services": [ln.split()[0].replace(str(port), "$PORT").replace(
                str(subport), "$SUBPORT") for ln in master.splitlines() if ln.strip()],
            "smtpd_conf": conf,
            "users": [{"realm": r, "user": u, "password": p} for r, u, p in USERS],
            "sessions": sessions,
            "log": [ln.replace(base, "$BASE") for ln in log],
            "mailboxes": {u: pf.mailbox(u) for u in ("carol",) if pf.mailbox(u)},
        }
    return rec


def _package_version(pkg: str) -> str:
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True,
                       text=True)
    return r.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--only", nargs="*", help="case ids to record (default: all)")
    a = ap.parse_args()
    why = unavailable()
    if why:
        print(f"record_auth: {why}", file=sys.stderr)
        return 1
    if shutil.which("saslpasswd2") is None:
        print("record_auth: saslpasswd2 is missing (apt-get install sasl2-bin)", file=sys.stderr)
        return 1
    (OUT / "logs").mkdir(parents=True, exist_ok=True)
    for case in CASES:
        if a.only and case["id"] not in a.only:
            continue
        print(f"{case['id']}: {case['title']}", file=sys.stderr)
        rec = record(case)
        (OUT / f"{case['id']}.json").write_text(json.dumps(rec, indent=1, ensure_ascii=False) + "\n")
        (OUT / "logs" / f"{case['id']}.log").write_text("\n".join(rec["log"]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
