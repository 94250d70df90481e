"""smtpd scenarios for tools/record_postfix.py.

SCENARIOS is a list of dicts:

  id, title          file name and one-line description
  main_cf            overrides on top of tests/golden/postfix-3.7/base-main.cf
                     (value "" writes "key =", i.e. an empty value)
  main_cf_removed    base keys deleted (Postfix's built-in default applies)
  files              {name: content}: lookup tables written to /etc/postfix/<name>
                     (aliases is always the corpus' file)
  table_types        {name: "hash" | "none"}: how a file is compiled
                     (default hash = postmap; "none" for cidr/regexp tables and
                     for tables that must stay uncompiled)
  greeting           replies expected on connect (default 1; None: read
                     until 2.5 s of silence)
  dialogue           the client side, after connect + greeting (implicit):
                       "TEXT"           send, read 1 reply
                       ("TEXT", n)      send, read n replies
                       ("TEXT", None)   send, read until 2.5 s of silence
                     TEXT is sent byte-exact (encoded latin-1).
  setup              commands run after the tables are written (before start)
  prefill            commands run after the queue and /var/mail were emptied
  commands           shell commands run after the queue settled; recorded
  extra_wait         seconds to wait after the queue settled (default 0.3)
  notes              free text copied into the JSON

The recorder always records what really came back; the reply counts here
only tell it when to stop reading.
"""

EHLO = "EHLO client.example.org\r\n"
MAIL = "MAIL FROM:<alice@example.com>\r\n"
QUIT = "QUIT\r\n"
RSET = "RSET\r\n"
DATE = "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"


def rcpt(addr: str, params: str = "") -> str:
    return f"RCPT TO:<{addr}>{(' ' + params) if params else ''}\r\n"


def mail(addr: str, params: str = "") -> str:
    return f"MAIL FROM:<{addr}>{(' ' + params) if params else ''}\r\n"


def message(frm: str, to: str, subject: str, msgid: str,
            body: str = "Hello,\r\nthis is a test message.\r\n-- \r\nalice\r\n") -> str:
    """A complete DATA payload, ending in <CRLF>.<CRLF>."""
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n{DATE}"
            f"Message-ID: <{msgid}@client.example.org>\r\n\r\n{body}.\r\n")


def message_of_size(size: int, tag: str) -> str:
    """A DATA payload whose bytes before the final '.<CRLF>' total `size`
    (headers + empty line + body, CRLF line ends included)."""
    head = (f"From: alice@example.com\r\nTo: peter@example.com\r\n"
            f"Subject: {size} bytes\r\n{DATE}"
            f"Message-ID: <size-{tag}@client.example.org>\r\n\r\n")
    left = size - len(head)
    assert left >= 4, size
    lines = []
    while left > 0:
        n = min(left, 72)          # a line of n-2 'x' + CRLF
        if left - n in (1,):       # avoid a 1-byte remainder
            n -= 2
        lines.append("x" * (n - 2) + "\r\n")
        left -= n
    text = head + "".join(lines)
    assert len(text) == size, (len(text), size)
    return text + ".\r\n"


def tiny_message(size: int) -> str:
    """'Subject: N' + empty line + 'x' lines; `size` bytes before '.<CRLF>'."""
    head = f"Subject: {size}\r\n\r\n"
    left = size - len(head)
    lines = []
    while left > 0:
        n = min(left, 72)
        if left - n == 1:
            n -= 2
        lines.append("x" * (n - 2) + "\r\n")
        left -= n
    text = head + "".join(lines)
    assert len(text) == size, (len(text), size)
    return text + ".\r\n"


def bdat(chunk: str, last: bool = False) -> str:
    return f"BDAT {len(chunk.encode('latin-1'))}{' LAST' if last else ''}\r\n{chunk}"


def msg_simple(subject, msgid, to="peter@example.com", frm="alice@example.com"):
    return message(frm, to, subject, msgid)


def data_steps(subject, msgid, to="peter@example.com", frm="alice@example.com"):
    return ["DATA\r\n", msg_simple(subject, msgid, to, frm)]


SCENARIOS = []


def S(**kw):
    SCENARIOS.append(kw)


OUTSIDER = {"mynetworks": "192.0.2.0/24"}

# ---------------------------------------------------------------------------
# 1. strict_rfc821_envelopes
# ---------------------------------------------------------------------------
S(id="strict-rfc821",
  title="strict_rfc821_envelopes = yes: MAIL FROM / RCPT TO syntax variants",
  main_cf={"strict_rfc821_envelopes": "yes"},
  dialogue=[
      EHLO,
      "MAIL FROM:alice@example.com\r\n",
      "MAIL FROM:<alice>\r\n", RSET,
      "MAIL FROM: <alice@example.com>\r\n", RSET,
      "MAIL FROM:<a b@example.com>\r\n",
      "MAIL FROM:<\"quoted local\"@example.com>\r\n", RSET,
      "MAIL FROM:<>\r\n", RSET,
      "MAIL FROM:<alice@example.com>junk\r\n",
      "MAIL FROM:<alice@example.com> junk\r\n",
      MAIL,
      "RCPT TO:peter@example.com\r\n",
      "RCPT TO:<peter>\r\n",
      "RCPT TO: <gerda@example.com>\r\n",
      "RCPT TO:<\"jim\"@example.com>\r\n",
      "RCPT TO:<a b@example.com>\r\n",
      "RCPT TO:<bob@example.com>x\r\n",
      QUIT,
  ])

S(id="strict-rfc821-default",
  title="strict_rfc821_envelopes = no (default): the same junk-after-address cases",
  dialogue=[
      EHLO,
      "MAIL FROM:<alice@example.com>junk\r\n", RSET,
      "MAIL FROM:<\"quoted local\"@example.com>\r\n",
      "RCPT TO:<bob@example.com>x\r\n",
      "RCPT TO:<\"jim\"@example.com>\r\n",
      "RCPT TO:<peter@example.com> \r\n",
      QUIT,
  ])

# ---------------------------------------------------------------------------
# 2. error limits
# ---------------------------------------------------------------------------
S(id="error-limits",
  title="smtpd_soft_error_limit = 2, smtpd_hard_error_limit = 4, no sleep: unknown commands until the server hangs up",
  main_cf={"smtpd_soft_error_limit": "2", "smtpd_hard_error_limit": "4",
           "smtpd_error_sleep_time": "0"},
  dialogue=[
      EHLO,
      "FOO\r\n", "NOOP\r\n", "BAR\r\n", "BAZ\r\n", "QUX\r\n", "XYZZY\r\n", "NOOP\r\n", QUIT,
  ])

S(id="error-limits-rcpt",
  title="smtpd_hard_error_limit = 3 reached by rejected RCPTs (error_sleep_time 0)",
  main_cf={"smtpd_soft_error_limit": "1", "smtpd_hard_error_limit": "3",
           "smtpd_error_sleep_time": "0"},
  dialogue=[
      EHLO, MAIL,
      rcpt("nosuch1@example.com"), rcpt("nosuch2@example.com"),
      rcpt("peter@example.com"),
      rcpt("nosuch3@example.com"), rcpt("nosuch4@example.com"), QUIT,
  ])

S(id="junk-command-limit",
  title="smtpd_junk_command_limit = 2 (NOOP/RSET/VRFY/ETRN count), hard error limit 3",
  main_cf={"smtpd_junk_command_limit": "2", "smtpd_hard_error_limit": "3",
           "smtpd_error_sleep_time": "0"},
  dialogue=[
      EHLO, "NOOP\r\n", "NOOP\r\n", "RSET\r\n", "VRFY peter\r\n", "NOOP\r\n",
      "NOOP\r\n", "NOOP\r\n", "NOOP\r\n", QUIT,
  ])

# ---------------------------------------------------------------------------
# 3. recipient limit
# ---------------------------------------------------------------------------
S(id="recipient-limit",
  title="smtpd_recipient_limit = 2: the third RCPT is refused, mail goes to the first two",
  main_cf={"smtpd_recipient_limit": "2"},
  dialogue=[
      EHLO, MAIL, rcpt("peter@example.com"), rcpt("gerda@example.com"),
      rcpt("jim@example.com"), rcpt("nosuch@example.com"),
      *data_steps("Recipient limit", "recipient-limit",
                  to="peter@example.com, gerda@example.com, jim@example.com"),
      QUIT,
  ])

# ---------------------------------------------------------------------------
# 4. BDAT / CHUNKING
# ---------------------------------------------------------------------------
_bdat_head = ("From: alice@example.com\r\nTo: peter@example.com\r\n"
              "Subject: BDAT chunks\r\n" + DATE +
              "Message-ID: <bdat-chunks@client.example.org>\r\n\r\n")
_bdat_body = "Hello,\r\nthis came in two chunks.\r\n.leading dot\r\n"
S(id="bdat",
  title="BDAT: two chunks, BDAT 0 LAST, a whole message in one chunk, BDAT then DATA",
  dialogue=[
      EHLO, MAIL, rcpt("peter@example.com"),
      bdat(_bdat_head),
      bdat(_bdat_body, last=True),
      MAIL, rcpt("gerda@example.com"),
      bdat(message("alice@example.com", "gerda@example.com", "BDAT then 0 LAST",
                   "bdat-zero-last")[:-3]),
      "BDAT 0 LAST\r\n",
      MAIL, rcpt("jim@example.com"),
      "BDAT 0 LAST\r\n",
      MAIL, rcpt("bob@example.com"),
      bdat("Subject: mixed\r\n\r\n"),
      ("DATA\r\n", None),
      ("RSET\r\n", None),
      "NOOP\r\n",
      QUIT,
  ])

_BDAT_ERRORS = [
    ("bdat-no-arg", "BDAT without a size", [("BDAT\r\n", None)]),
    ("bdat-bad-count", "BDAT with a non-numeric size", [("BDAT x\r\n", None)]),
    ("bdat-bad-keyword", "BDAT 10 FOO (unknown keyword) followed by 10 bytes",
     [("BDAT 10 FOO\r\n0123456789", None)]),
    ("bdat-extra-arg", "BDAT 5 LAST extra, followed by 5 bytes",
     [("BDAT 5 LAST extra\r\nhello", None)]),
    ("bdat-huge-count", "BDAT with a 20-digit size (the session ends after it)",
     [MAIL, rcpt("peter@example.com"), ("BDAT 99999999999999999999 LAST\r\n", None)]),
    ("bdat-without-mail", "BDAT 5 LAST + 5 bytes before MAIL FROM",
     [("BDAT 5 LAST\r\nhello", None)]),
    ("bdat-without-rcpt", "BDAT 5 LAST + 5 bytes after MAIL, before any RCPT",
     [MAIL, ("BDAT 5 LAST\r\nhello", None)]),
    ("bdat-after-rejected-rcpt", "BDAT 5 LAST + 5 bytes when the only RCPT was rejected",
     [MAIL, rcpt("nosuch@example.com"), ("BDAT 5 LAST\r\nhello", None)]),
    ("bdat-helo", "BDAT after HELO (CHUNKING not negotiated)",
     [("HELO client.example.org\r\n"), MAIL, rcpt("peter@example.com"),
      ("BDAT 8 LAST\r\nhi there", None)]),
]
for _id, _what, _steps in _BDAT_ERRORS:
    if _id == "bdat-huge-count":
        S(id=_id, title=_what, dialogue=[EHLO] + _steps,
          notes="Nothing is sent after the BDAT line; the client closes the connection.")
        continue
    S(id=_id, title=f"{_what}; then NOOP and QUIT if the session survives",
      dialogue=([EHLO] if not _id.endswith("-helo") else []) + _steps
      + [("NOOP\r\n", None), QUIT])

S(id="bdat-oversize",
  title="message_size_limit = 2000: BDAT 3000 LAST with 3000 bytes, then a message in two 1500-byte chunks",
  main_cf={"message_size_limit": "2000"},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"),
            ("BDAT 3000 LAST\r\n" + tiny_message(3000)[:-3], None),
            ("NOOP\r\n", None), MAIL, rcpt("peter@example.com"),
            ("BDAT 1500\r\n" + tiny_message(1500)[:-3], None),
            ("BDAT 1500 LAST\r\n" + "y" * 1498 + "\r\n", None), QUIT])

S(id="bdat-pipelined",
  title="BDAT pipelined with MAIL/RCPT in one write, then QUIT in the same write",
  dialogue=[
      EHLO,
      (MAIL + rcpt("peter@example.com") + bdat(message(
          "alice@example.com", "peter@example.com", "Pipelined BDAT",
          "bdat-pipelined")[:-3], last=True) + QUIT, 4),
  ])

# ---------------------------------------------------------------------------
# 5. ETRN
# ---------------------------------------------------------------------------
S(id="etrn",
  title="ETRN: before HELO, no argument, local domain, fast-flush domain, @domain, #queue, inside a transaction",
  main_cf={"relay_domains": "other.org"},
  dialogue=[
      "ETRN other.org\r\n",
      EHLO,
      "ETRN\r\n",
      "ETRN example.com\r\n",
      "ETRN other.org\r\n",
      "ETRN @other.org\r\n",
      "ETRN #x\r\n",
      "ETRN third.org\r\n",
      "ETRN other.org extra\r\n",
      "ETRN bad_domain!\r\n",
      MAIL,
      "ETRN other.org\r\n",
      QUIT,
  ])

# ---------------------------------------------------------------------------
# 6. HELO access
# ---------------------------------------------------------------------------
S(id="helo-access",
  title="smtpd_helo_required + check_helo_access (OK/REJECT/DUNNO/450), odd HELO names",
  main_cf={"smtpd_helo_required": "yes",
           "smtpd_helo_restrictions": "check_helo_access hash:/etc/postfix/helo_access, reject_invalid_helo_hostname"},
  files={"helo_access": (
      "good.example.org      OK\n"
      "bad.example.org       REJECT You are not welcome\n"
      "neutral.example.org   DUNNO\n"
      "busy.example.org      450 4.7.1 Try again later\n"
      "bad.example.net       REJECT\n")},
  dialogue=[
      "HELO bad.example.org\r\n", MAIL, rcpt("peter@example.com"), RSET,
      "HELO busy.example.org\r\n", MAIL, rcpt("peter@example.com"), RSET,
      "HELO bad.example.net\r\n", MAIL, rcpt("peter@example.com"), RSET,
      "HELO neutral.example.org\r\n", MAIL, rcpt("peter@example.com"), RSET,
      "HELO [127.0.0.1]\r\n", MAIL, rcpt("peter@example.com"), RSET,
      "HELO [999.1.1.1]\r\n", MAIL, rcpt("peter@example.com"), RSET,
      "EHLO client.example.org.\r\n", MAIL, rcpt("peter@example.com"), RSET,
      "HELO a b\r\n", MAIL, rcpt("peter@example.com"), RSET,
      QUIT,
  ])

S(id="helo-access-delay-no",
  title="check_helo_access with smtpd_delay_reject = no: the reject lands on HELO itself",
  main_cf={"smtpd_delay_reject": "no",
           "smtpd_helo_restrictions": "check_helo_access hash:/etc/postfix/helo_access, reject_invalid_helo_hostname"},
  files={"helo_access": (
      "bad.example.org       REJECT You are not welcome\n"
      "busy.example.org      450 4.7.1 Try again later\n")},
  dialogue=[
      "HELO bad.example.org\r\n", MAIL,
      "EHLO busy.example.org\r\n", MAIL,
      "HELO [999.1.1.1]\r\n",
      "HELO good.example.org\r\n", MAIL, rcpt("peter@example.com"),
      QUIT,
  ])

# ---------------------------------------------------------------------------
# 7./8. smtpd_delay_reject = no
# ---------------------------------------------------------------------------
S(id="delay-reject-no",
  title="smtpd_delay_reject = no + check_client_access REJECT: what EHLO, MAIL, RCPT, NOOP, QUIT get",
  main_cf={"smtpd_delay_reject": "no",
           "smtpd_client_restrictions": "check_client_access hash:/etc/postfix/client_access"},
  files={"client_access": "127.0.0.1   REJECT go away\n"},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), "DATA\r\n", "NOOP\r\n",
            "VRFY peter\r\n", RSET, QUIT])

S(id="delay-reject-no-helo-sender",
  title="smtpd_delay_reject = no with reject_non_fqdn_helo_hostname and check_sender_access: where each reject lands",
  main_cf={"smtpd_delay_reject": "no",
           "smtpd_helo_restrictions": "reject_non_fqdn_helo_hostname",
           "smtpd_sender_restrictions": "check_sender_access hash:/etc/postfix/sender_access"},
  files={"sender_access": "spammer@example.net   REJECT\nlater.org   450 4.7.1 Try again later\n"},
  dialogue=[
      "HELO foo\r\n", MAIL, rcpt("peter@example.com"), RSET,
      "HELO client.example.org\r\n",
      "MAIL FROM:<spammer@example.net>\r\n", rcpt("peter@example.com"),
      "MAIL FROM:<x@later.org>\r\n",
      MAIL, rcpt("peter@example.com"),
      *data_steps("Delay reject no", "delay-reject-no"),
      QUIT,
  ])

# ---------------------------------------------------------------------------
# 9. non-FQDN
# ---------------------------------------------------------------------------
S(id="non-fqdn",
  title="reject_non_fqdn_sender / reject_non_fqdn_recipient",
  main_cf={"smtpd_recipient_restrictions": "reject_non_fqdn_sender, reject_non_fqdn_recipient, permit_mynetworks, reject_unauth_destination"},
  dialogue=[
      EHLO,
      "MAIL FROM:<alice>\r\n", rcpt("peter@example.com"), RSET,
      "MAIL FROM:<alice@localhost>\r\n", rcpt("peter@example.com"), RSET,
      "MAIL FROM:<>\r\n", rcpt("peter@example.com"), RSET,
      MAIL,
      rcpt("bob"), rcpt("bob@foo"), rcpt("bob@[1.2.3.4]"), rcpt("bob@localhost"),
      rcpt("bob@foo."), rcpt("bob@example.com"),
      QUIT,
  ])

# ---------------------------------------------------------------------------
# 10. access actions
# ---------------------------------------------------------------------------
_ACTIONS_REJ = (
    "defer@example.com        DEFER\n"
    "defertext@example.com    DEFER Come back later\n"
    "deferifpermit@example.com  DEFER_IF_PERMIT Maybe later\n"
    "deferifreject@example.com  DEFER_IF_REJECT Maybe not\n"
    "dotted@example.com       4.7.1 dotted text\n"
    "five21@example.com       521 Five twenty-one\n"
    "four99@example.com       499 4.9.9 Odd code\n"
    "permit@example.com       PERMIT\n"
    "lowreject@example.com    reject\n"
    "numeric@example.com      200\n"
    "unknown@example.com      FROBNICATE now\n"
    "rejectnotext@example.com REJECT\n"
    "restriction@example.com  reject_unauth_destination\n"
    "info@example.com         INFO informative\n"
)
S(id="access-actions-reject",
  title="check_recipient_access: DEFER, DEFER_IF_PERMIT/REJECT, odd codes, PERMIT, reject, all-numerical, unknown action, INFO",
  main_cf={"smtpd_recipient_restrictions": "check_recipient_access hash:/etc/postfix/recipient_access, permit_mynetworks, reject_unauth_destination",
           "smtpd_error_sleep_time": "0"},
  files={"recipient_access": _ACTIONS_REJ},
  dialogue=[
      EHLO, MAIL,
      *[rcpt(a) for a in (
          "defer@example.com", "defertext@example.com", "deferifpermit@example.com",
          "deferifreject@example.com", "dotted@example.com", "four99@example.com",
          "permit@example.com", "lowreject@example.com", "numeric@example.com",
          "unknown@example.com", "rejectnotext@example.com", "restriction@example.com",
          "info@example.com", "five21@example.com")],
      RSET, QUIT,
  ],
  notes="smtpd_error_sleep_time = 0 so the many rejects do not slow the session down. "
        "The 521 entry comes last: Postfix hangs up after a 521 reply.")

S(id="access-action-521-enhanced",
  title="check_recipient_access '521 5.7.0 text': reply, then the server hangs up",
  main_cf={"smtpd_recipient_restrictions": "check_recipient_access hash:/etc/postfix/recipient_access, permit_mynetworks, reject_unauth_destination"},
  files={"recipient_access": "five21x@example.com      521 5.7.0 With enhanced code\n"},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), rcpt("five21x@example.com"), QUIT])

S(id="access-actions-accept",
  title="check_recipient_access: WARN, PREPEND, BCC, REDIRECT, FILTER in separate transactions",
  main_cf={"smtpd_recipient_restrictions": "check_recipient_access hash:/etc/postfix/recipient_access, permit_mynetworks, reject_unauth_destination"},
  files={"recipient_access": (
      "peter@example.com   WARN peter is watched\n"
      "gerda@example.com   PREPEND X-Foo: bar\n"
      "jim@example.com     BCC bob@example.com\n"
      "petra@example.com   REDIRECT marc@example.com\n"
      "user@other.org      FILTER smtp:[127.0.0.1]:2526\n")},
  dialogue=[
      EHLO,
      MAIL, rcpt("peter@example.com"), rcpt("gerda@example.com"),
      *data_steps("Warn and prepend", "warn-prepend", to="peter@example.com, gerda@example.com"),
      MAIL, rcpt("jim@example.com"),
      *data_steps("Bcc", "bcc", to="jim@example.com"),
      MAIL, rcpt("petra@example.com"),
      *data_steps("Redirect", "redirect", to="petra@example.com"),
      MAIL, rcpt("user@other.org"),
      *data_steps("Filter", "filter", to="user@other.org"),
      QUIT,
  ])

# ---------------------------------------------------------------------------
# 11. client access: cidr and hash key forms
# ---------------------------------------------------------------------------
S(id="access-client-cidr",
  title="check_client_access: WARN in hash tables keyed 127.0.0.1 / 127.0.0 / 127 / localhost, then cidr REJECT",
  main_cf={"smtpd_client_restrictions": (
      "check_client_access hash:/etc/postfix/client_ip, "
      "check_client_access hash:/etc/postfix/client_net3, "
      "check_client_access hash:/etc/postfix/client_net1, "
      "check_client_access hash:/etc/postfix/client_name, "
      "check_client_access hash:/etc/postfix/client_domain, "
      "check_client_access cidr:/etc/postfix/client.cidr")},
  files={
      "client_ip": "127.0.0.1      WARN matched key 127.0.0.1\n",
      "client_net3": "127.0.0        WARN matched key 127.0.0\n",
      "client_net1": "127            WARN matched key 127\n",
      "client_name": "localhost      WARN matched key localhost\n",
      "client_domain": ".localhost     WARN matched key .localhost\nlocalhost.localdomain WARN matched localhost.localdomain\n",
      "client.cidr": "127.0.0.0/8    REJECT cidr says no\n",
  },
  table_types={"client.cidr": "none"},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), rcpt("gerda@example.com"), QUIT])

S(id="access-client-hash-net",
  title="check_client_access hash with only the '127.0.0' network key: REJECT",
  main_cf={"smtpd_client_restrictions": "check_client_access hash:/etc/postfix/client_access"},
  files={"client_access": "127.0.0   REJECT net 127.0.0 matched\n"},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), QUIT])

S(id="access-client-hash-name",
  title="check_client_access hash keyed on the client name localhost: REJECT",
  main_cf={"smtpd_client_restrictions": "check_client_access hash:/etc/postfix/client_access"},
  files={"client_access": "localhost   REJECT name localhost matched\n"},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), QUIT])

# ---------------------------------------------------------------------------
# 12. missing tables
# ---------------------------------------------------------------------------
S(id="missing-table-virtual",
  title="virtual_alias_maps names a hash table whose .db does not exist",
  main_cf={"virtual_alias_maps": "hash:/etc/postfix/virtual_missing"},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), rcpt("user@other.org"),
            rcpt("nosuch@example.com"), "DATA\r\n", RSET, "VRFY peter\r\n", QUIT],
  notes="/etc/postfix/virtual_missing(.db) does not exist at all.")

S(id="missing-table-access",
  title="smtpd_sender_restrictions = check_sender_access on a missing hash table",
  main_cf={"smtpd_sender_restrictions": "check_sender_access hash:/etc/postfix/nosuch"},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), RSET, "MAIL FROM:<>\r\n",
            rcpt("peter@example.com"), QUIT],
  notes="/etc/postfix/nosuch(.db) does not exist at all.")

# ---------------------------------------------------------------------------
# 13. VRFY
# ---------------------------------------------------------------------------
S(id="vrfy-more",
  title="VRFY: alias, virtual alias, unknown virtual, <>, SMTPUTF8 argument, two words, inside a transaction",
  main_cf={"virtual_alias_domains": "sue.nl unix.nl", "virtual_alias_maps": "hash:/etc/postfix/virtual"},
  files={"virtual": "info@sue.nl     gerda\nsales@unix.nl   petra\n@unix.nl        jim\n"},
  dialogue=[
      EHLO,
      "VRFY staff\r\n", "VRFY ghost\r\n", "VRFY info@sue.nl\r\n", "VRFY <info@sue.nl>\r\n",
      "VRFY nobody@sue.nl\r\n", "VRFY anything@unix.nl\r\n", "VRFY <>\r\n",
      "VRFY postmaster SMTPUTF8\r\n", "VRFY a b\r\n", "VRFY user@other.org\r\n",
      "VRFY peter@[127.0.0.1]\r\n",
      MAIL, "VRFY peter\r\n", rcpt("gerda@example.com"), "VRFY nosuch\r\n", RSET,
      QUIT,
  ])

# ---------------------------------------------------------------------------
# 14. RCPT syntax
# ---------------------------------------------------------------------------
S(id="rcpt-syntax-more",
  title="RCPT TO address forms: empty domain, <@>, IP literals, quoted local part, trailing dot, subdomains of mydestination",
  main_cf={"smtpd_error_sleep_time": "0"},
  dialogue=[
      EHLO, MAIL,
      rcpt("user@"), rcpt("@"), rcpt("user@[::1]"), rcpt("user@[IPv6:::1]"),
      rcpt("user@[1.2.3]"), rcpt("user@[127.0.0.1]"), rcpt("peter@[127.0.0.1]"),
      rcpt("\"a b\"@example.com"), rcpt("\"peter\"@example.com"),
      rcpt("peter@EXAMPLE.com."), rcpt("PETER@example.com"), rcpt("peter@mail.example.com"),
      rcpt("peter@localhost.example.com"), rcpt("peter@sub.example.com"),
      rcpt("peter@localhost"),
      "RCPT TO:<>\r\n", "RCPT TO:<postmaster>\r\n", "RCPT TO:<@other.org:peter@example.com>\r\n",
      RSET, QUIT,
  ],
  notes="smtpd_error_sleep_time = 0 so the many errors do not slow the session down.")

S(id="rcpt-params",
  title="RCPT TO parameters: NOTIFY variants, ORCPT, duplicates, a 600-character address",
  main_cf={"smtpd_error_sleep_time": "0"},
  dialogue=[
      EHLO, MAIL,
      rcpt("peter@example.com", "NOTIFY=NEVER"),
      rcpt("gerda@example.com", "NOTIFY=SUCCESS,NEVER"),
      rcpt("gerda@example.com", "NOTIFY=SUCCESS,FAILURE,DELAY"),
      rcpt("jim@example.com", "NOTIFY=bogus"),
      rcpt("jim@example.com", "ORCPT=bad"),
      rcpt("jim@example.com", "ORCPT=rfc822;jim+40example.com"),
      rcpt("bob@example.com", "ORCPT=rfc822;bob@example.com"),
      rcpt("bob@example.com", "ORCPT=rfc822;bob+ZZexample.com"),
      rcpt("marc@example.com", "NOTIFY=NEVER NOTIFY=NEVER"),
      rcpt("marc@example.com", "ORCPT=rfc822;a@b ORCPT=rfc822;a@b"),
      rcpt("marc@example.com", "notify=never"),
      rcpt("petra@example.com", "FOO=bar"),
      rcpt("petra@example.com", "SIZE=10"),
      rcpt("x" * 600 + "@example.com"),
      rcpt("y" * 64 + "@example.com"),
      rcpt("peter@" + "d" * 250 + ".com"),
      RSET, QUIT,
  ],
  notes="smtpd_error_sleep_time = 0 so the many errors do not slow the session down.")

# ---------------------------------------------------------------------------
# 15. MAIL parameters
# ---------------------------------------------------------------------------
_mail_params = [
    "SIZE=0", "SIZE=99999999999999", "SIZE=10240000", "SIZE=10240001",
    "BODY=7BIT", "BODY=bogus", "RET=FULL", "RET=bad", "ENVID=abc+2Bdef",
    "ENVID=a+ZZ", "AUTH=<>", "SIZE=10 SIZE=20", "BODY=7BIT BODY=8BITMIME",
    "RET=HDRS RET=FULL", "SMTPUTF8=yes", "SIZE", "size=10",
]
_mp_steps = []
for _p in _mail_params:
    _mp_steps += [mail("alice@example.com", _p), RSET]
S(id="mail-params",
  title="MAIL FROM parameters: SIZE, BODY, RET, ENVID, AUTH, duplicates, lowercase",
  main_cf={"smtpd_error_sleep_time": "0"},
  dialogue=[EHLO, *_mp_steps, "mail from:<alice@example.com> size=10\r\n",
            "rcpt to:<peter@example.com> notify=never\r\n", RSET, QUIT],
  notes="Each MAIL is followed by RSET; smtpd_error_sleep_time = 0.")

# ---------------------------------------------------------------------------
# 16. relay_domains / unauth destination
# ---------------------------------------------------------------------------
S(id="reject-unauth-vs-relay-domains",
  title="outsider, relay_domains = $mydestination other.org, smtpd_relay_restrictions = permit_auth_destination, reject",
  main_cf={**OUTSIDER, "relay_domains": "$mydestination other.org",
           "smtpd_relay_restrictions": "permit_auth_destination, reject"},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), rcpt("user@other.org"),
            rcpt("user@sub.other.org"), rcpt("user@third.org"), rcpt("user@mail.example.com"),
            rcpt("user@sub.example.com"), rcpt("user@[127.0.0.1]"), RSET, QUIT])

S(id="defer-unauth-destination",
  title="outsider, smtpd_relay_restrictions = defer_unauth_destination (no permit_mynetworks) and reject_unauth_destination in recipient restrictions",
  main_cf={**OUTSIDER, "relay_domains": "other.org",
           "smtpd_relay_restrictions": "defer_unauth_destination",
           "smtpd_recipient_restrictions": "reject_unauth_destination"},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), rcpt("user@other.org"),
            rcpt("user@sub.other.org"), rcpt("user@third.org"), RSET, QUIT])

S(id="relay-domains-no-parent-match",
  title="parent_domain_matches_subdomains empty: relay_domains = other.org .other.org vs sub.third.org",
  main_cf={**OUTSIDER, "relay_domains": "other.org, .third.org",
           "parent_domain_matches_subdomains": ""},
  dialogue=[EHLO, MAIL, rcpt("user@other.org"), rcpt("user@sub.other.org"),
            rcpt("user@third.org"), rcpt("user@sub.third.org"), RSET, QUIT])

S(id="insider-relay-restrictions-empty",
  title="smtpd_relay_restrictions empty, recipient restrictions only permit_mynetworks/reject_unauth_destination, client inside",
  main_cf={"smtpd_relay_restrictions": "",
           "smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination"},
  dialogue=[EHLO, MAIL, rcpt("user@other.org"), rcpt("peter@example.com"), RSET, QUIT])

S(id="no-relay-restrictions-at-all",
  title="smtpd_relay_restrictions and smtpd_recipient_restrictions both empty: Postfix refuses to be an open relay",
  main_cf={**OUTSIDER, "smtpd_relay_restrictions": "", "smtpd_recipient_restrictions": ""},
  greeting=None,
  dialogue=[(EHLO, None)],
  notes="smtpd exits with a fatal configuration error before it greets; master throttles "
        "the service. The client sees a connection that never says anything.")

# ---------------------------------------------------------------------------
# 17./18. bare newlines
# ---------------------------------------------------------------------------
_bare_data = "Subject: bare lf\r\n\r\nline one\nline two\r\n.\r\n"
_smuggle = ("Subject: smuggle test\r\n\r\nline1\n.\nMAIL FROM:<evil@other.org>\r\n"
            "RCPT TO:<gerda@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\n"
            "smuggled body\r\n.\r\n")
_NO_EXCL = {"smtpd_forbid_bare_newline_exclusions": ""}
S(id="forbid-bare-newline",
  title="smtpd_forbid_bare_newline = yes (3.7.11: same as normalize), no exclusions: bare LF in DATA and in a command",
  main_cf={"smtpd_forbid_bare_newline": "yes", **_NO_EXCL},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), "DATA\r\n", (_bare_data, None),
            ("NOOP\r\n", None), MAIL, rcpt("gerda@example.com"),
            ("NOOP\n", None), QUIT])

S(id="forbid-bare-newline-smuggle",
  title="smtpd_forbid_bare_newline = yes, no exclusions: SMTP smuggling attempt with <LF>.<LF>",
  main_cf={"smtpd_forbid_bare_newline": "yes", **_NO_EXCL},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), "DATA\r\n", (_smuggle, None),
            ("QUIT\r\n", None)])

S(id="forbid-bare-newline-normalize",
  title="smtpd_forbid_bare_newline = normalize, no exclusions: bare LF commands, bare LF in DATA, smuggling attempt",
  main_cf={"smtpd_forbid_bare_newline": "normalize", **_NO_EXCL},
  dialogue=[("EHLO client.example.org\n", None), ("NOOP\n", None), MAIL,
            rcpt("peter@example.com"), "DATA\r\n", (_bare_data, None),
            MAIL, rcpt("peter@example.com"), "DATA\r\n", (_smuggle, None),
            QUIT])

S(id="forbid-bare-newline-reject",
  title="smtpd_forbid_bare_newline = reject, no exclusions: bare LF inside DATA",
  main_cf={"smtpd_forbid_bare_newline": "reject", **_NO_EXCL},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), "DATA\r\n", (_bare_data, None),
            ("NOOP\r\n", None), QUIT])

S(id="forbid-bare-newline-reject-smuggle",
  title="smtpd_forbid_bare_newline = reject, no exclusions: SMTP smuggling attempt with <LF>.<LF>",
  main_cf={"smtpd_forbid_bare_newline": "reject", **_NO_EXCL},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), "DATA\r\n", (_smuggle, None),
            ("QUIT\r\n", None)])

S(id="forbid-bare-newline-reject-command",
  title="smtpd_forbid_bare_newline = reject, no exclusions: a command ending in a bare LF mid-transaction",
  main_cf={"smtpd_forbid_bare_newline": "reject", **_NO_EXCL},
  dialogue=[EHLO, MAIL, ("RCPT TO:<peter@example.com>\n", None), ("NOOP\r\n", None), QUIT])

S(id="forbid-bare-newline-reject-ehlo",
  title="smtpd_forbid_bare_newline = reject, no exclusions: EHLO terminated by a bare LF",
  main_cf={"smtpd_forbid_bare_newline": "reject", **_NO_EXCL},
  dialogue=[("EHLO client.example.org\n", None), ("NOOP\r\n", None), QUIT])

S(id="forbid-bare-newline-excluded",
  title="smtpd_forbid_bare_newline = reject with the default exclusions ($mynetworks): client 127.0.0.1 is exempt",
  main_cf={"smtpd_forbid_bare_newline": "reject"},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), "DATA\r\n", (_bare_data, None),
            ("NOOP\n", None), MAIL, rcpt("peter@example.com"), "DATA\r\n", (_smuggle, None),
            QUIT])

# ---------------------------------------------------------------------------
# 19. SMTPUTF8 off
# ---------------------------------------------------------------------------
_utf8_local = "p\u00c3\u00a9ter"       # UTF-8 bytes of "péter", as latin-1 chars
S(id="smtputf8-off",
  title="smtputf8_enable = no: EHLO list, MAIL ... SMTPUTF8, UTF-8 addresses and headers",
  main_cf={"smtputf8_enable": "no"},
  dialogue=[
      EHLO,
      mail("alice@example.com", "SMTPUTF8"), RSET,
      mail(f"{_utf8_local}@example.com"), rcpt("peter@example.com"), RSET,
      MAIL, rcpt(f"{_utf8_local}@example.com"),
      rcpt("peter@example.com"),
      "DATA\r\n",
      f"From: alice@example.com\r\nTo: peter@example.com\r\nSubject: Gr\u00c3\u00bc\u00c3\u009fe\r\n{DATE}"
      "Message-ID: <utf8-off@client.example.org>\r\n\r\nK\u00c3\u00b6ln\r\n.\r\n",
      "VRFY " + _utf8_local + "\r\n",
      QUIT,
  ])

# ---------------------------------------------------------------------------
# 20. reject footer and banner
# ---------------------------------------------------------------------------
S(id="banner-reject-footer",
  title="smtpd_reject_footer with \\c, smtpd_banner with $mail_version",
  main_cf={"smtpd_reject_footer": "\\c See http://help.example.com/",
           "smtpd_banner": "$myhostname ESMTP $mail_name $mail_version"},
  dialogue=[EHLO, MAIL, rcpt("nosuch@example.com"), rcpt("peter@example.com"),
            "FOO\r\n", "MAIL FROM:<alice@example.com>\r\n", "VRFY nosuch\r\n", RSET,
            "MAIL FROM:<<bad>\r\n", QUIT])

S(id="reject-footer-multiline",
  title="smtpd_reject_footer without \\c (separate line) with $client_address and \\n",
  main_cf={"smtpd_reject_footer": "For assistance, call 800-555-0101.\\nPlease provide the following information: $localtime $client_address $recipient"},
  dialogue=[EHLO, MAIL, rcpt("nosuch@example.com"), "FOO\r\n",
            "ETRN example.com\r\n", "DATA\r\n", QUIT])

# ---------------------------------------------------------------------------
# 21. header / size limits
# ---------------------------------------------------------------------------
_big_header = ("From: alice@example.com\r\nTo: peter@example.com\r\nSubject: big header\r\n"
               + DATE + "Message-ID: <big-header@client.example.org>\r\n"
               "X-Long: " + "a" * (100 * 1024) + "\r\n\r\nbody\r\n.\r\n")
_many_headers = ("From: alice@example.com\r\nTo: gerda@example.com\r\nSubject: many headers\r\n"
                 + DATE + "Message-ID: <many-headers@client.example.org>\r\n"
                 + "".join(f"X-H-{i}: v\r\n" for i in range(1500)) + "\r\nbody\r\n.\r\n")
S(id="header-limits",
  title="A 100 KB header line, and 1500 header lines",
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), "DATA\r\n", _big_header,
            MAIL, rcpt("gerda@example.com"), "DATA\r\n", _many_headers, QUIT])

S(id="header-limits-small",
  title="header_size_limit = 1000, line_length_limit = 600: long header and long body line",
  main_cf={"header_size_limit": "1000", "line_length_limit": "600"},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), "DATA\r\n",
            "From: alice@example.com\r\nTo: peter@example.com\r\nSubject: small limits\r\n"
            + DATE + "Message-ID: <small-limits@client.example.org>\r\n"
            "X-Long: " + " ".join(["word"] * 400) + "\r\n"
            "X-Folded: start\r\n" + "".join(f"\tcontinuation line {i}\r\n" for i in range(80))
            + "\r\n" + "b" * 1500 + "\r\nend\r\n.\r\n",
            QUIT])

_sizes = [900, 1000, 1100]
_size_steps = []
for _n in _sizes:
    _size_steps += [MAIL, rcpt("peter@example.com"), "DATA\r\n", message_of_size(_n, str(_n))]
S(id="size-boundary",
  title="message_size_limit = 1000: messages of 900, 1000, 1100 bytes as sent; SIZE=1000 / 1001",
  main_cf={"message_size_limit": "1000"},
  dialogue=[EHLO, *_size_steps,
            mail("alice@example.com", "SIZE=1000"), RSET,
            mail("alice@example.com", "SIZE=1001"), QUIT],
  notes="Sizes are the bytes sent between the 354 reply and the final '.<CRLF>' "
        "(headers, empty line and body with CRLF line ends); the Subject names the size.")


_tiny = [20, 900, 1003, 1004, 1005, 1006, 1007, 1100]
_tiny_steps = []
for _n in _tiny:
    _tiny_steps += [MAIL, rcpt("peter@example.com"), "DATA\r\n", tiny_message(_n)]
S(id="size-boundary-small",
  title="message_size_limit = 2000 counts the whole queue file: minimal messages of 20..1100 bytes",
  main_cf={"message_size_limit": "2000"},
  dialogue=[EHLO, *_tiny_steps, QUIT],
  notes="Each message is 'Subject: N', an empty line and lines of x, N bytes as sent "
        "(CRLF included, final '.<CRLF>' excluded). cleanup adds Received, Message-Id, "
        "Date and From headers (qmgr logs size=N+311) and envelope records, and refuses "
        "the message when the queue file would exceed message_size_limit: on the "
        "recording machine 1005 bytes still passed, 1006 did not. The exact boundary "
        "depends on the envelope (addresses, client name, queue id).")

# ---------------------------------------------------------------------------
# 22. pipelining enforcement
# ---------------------------------------------------------------------------
_pipe = MAIL + rcpt("peter@example.com") + "DATA\r\n"
_pipe_msg = message("alice@example.com", "peter@example.com", "pipelined", "pipelined-unauth")
for _variant, _cfg in (("pipelining-unauth", {"smtpd_forbid_unauth_pipelining": "yes"}),
                       ("pipelining-reject-unauth", {"smtpd_data_restrictions": "reject_unauth_pipelining"})):
    _what = ("smtpd_forbid_unauth_pipelining = yes" if "forbid" in str(_cfg)
             else "smtpd_data_restrictions = reject_unauth_pipelining")
    S(id=f"{_variant}-noehlo",
      title=f"{_what}: MAIL/RCPT/DATA in one write without HELO/EHLO",
      main_cf=_cfg,
      dialogue=[(_pipe, None), (_pipe_msg, None), (QUIT, None)])
    S(id=f"{_variant}-helo",
      title=f"{_what}: MAIL/RCPT/DATA in one write after HELO",
      main_cf=_cfg,
      dialogue=["HELO client.example.org\r\n", (_pipe, None), (_pipe_msg, None), (QUIT, None)])
    S(id=f"{_variant}-ehlo",
      title=f"{_what}: MAIL/RCPT/DATA in one write after EHLO (PIPELINING announced)",
      main_cf=_cfg,
      dialogue=[EHLO, (_pipe, None), (_pipe_msg, None), (QUIT, None)])
    S(id=f"{_variant}-ehlo-too-early",
      title=f"{_what}: EHLO and MAIL in one write (before the EHLO reply)",
      main_cf=_cfg,
      dialogue=[(EHLO + MAIL, None), (rcpt("peter@example.com"), None), (QUIT, None)])

# ---------------------------------------------------------------------------
# 23. DATA / end-of-data restrictions
# ---------------------------------------------------------------------------
S(id="data-restrictions",
  title="smtpd_data_restrictions (reject_multi_recipient_bounce, check_sender_access) and smtpd_end_of_data_restrictions",
  main_cf={"smtpd_data_restrictions": "reject_multi_recipient_bounce, check_sender_access hash:/etc/postfix/sender_access",
           "smtpd_end_of_data_restrictions": "check_sender_access hash:/etc/postfix/eod_access"},
  files={"sender_access": "spammer@example.net   REJECT No data from you\n",
         "eod_access": "late@example.net   REJECT Too late\nlater@example.net  450 4.7.1 Later\n"},
  dialogue=[
      EHLO,
      "MAIL FROM:<>\r\n", rcpt("peter@example.com"), rcpt("gerda@example.com"), "DATA\r\n", RSET,
      "MAIL FROM:<>\r\n", rcpt("peter@example.com"), "DATA\r\n",
      message("MAILER-DAEMON@example.org", "peter@example.com", "Single-recipient bounce", "bounce-one"),
      "MAIL FROM:<spammer@example.net>\r\n", rcpt("peter@example.com"), "DATA\r\n", RSET,
      "MAIL FROM:<late@example.net>\r\n", rcpt("peter@example.com"), "DATA\r\n",
      message("late@example.net", "peter@example.com", "Too late", "too-late"),
      MAIL, RSET,
      "MAIL FROM:<later@example.net>\r\n", rcpt("peter@example.com"), "DATA\r\n",
      message("later@example.net", "peter@example.com", "Later", "later"),
      RSET,
      MAIL, rcpt("peter@example.com"), *data_steps("Fine", "data-restrictions-fine"),
      QUIT,
  ])

S(id="data-restrictions-bdat",
  title="smtpd_data_restrictions check_sender_access with BDAT instead of DATA",
  main_cf={"smtpd_data_restrictions": "check_sender_access hash:/etc/postfix/sender_access",
           "smtpd_end_of_data_restrictions": "check_sender_access hash:/etc/postfix/eod_access"},
  files={"sender_access": "spammer@example.net   REJECT No data from you\n",
         "eod_access": "late@example.net   REJECT Too late\n"},
  dialogue=[
      EHLO,
      "MAIL FROM:<spammer@example.net>\r\n", rcpt("peter@example.com"),
      (bdat("Subject: x\r\n\r\nhi\r\n", last=True), None), RSET,
      "MAIL FROM:<late@example.net>\r\n", rcpt("peter@example.com"),
      (bdat("Subject: x\r\n\r\nhi\r\n", last=True), None),
      QUIT,
  ])

# ---------------------------------------------------------------------------
# 24. QUIT and friends
# ---------------------------------------------------------------------------
S(id="quit-variants",
  title="lowercase commands, NOOP with arguments, HELO inside a transaction, QUIT with an argument",
  dialogue=[
      "ehlo client.example.org\r\n",
      "noop\r\n", "NOOP " + " ".join(f"arg{i}" for i in range(50)) + "\r\n",
      "mail from:<alice@example.com>\r\n", "rcpt to:<peter@example.com>\r\n",
      "HELO other.example.org\r\n", rcpt("gerda@example.com"),
      MAIL, rcpt("peter@example.com"), EHLO, rcpt("gerda@example.com"),
      "Mail From:<alice@example.com>\r\n", "RcPt To:<peter@example.com>\r\n", "rset\r\n",
      "QUIT foo\r\n",
  ])

# ---------------------------------------------------------------------------
# more: things a faithful smtpd needs
# ---------------------------------------------------------------------------
S(id="ehlo-discard-keywords",
  title="smtpd_discard_ehlo_keywords = chunking, dsn, etrn, silent-discard; message_size_limit = 0 (SIZE without number)",
  main_cf={"smtpd_discard_ehlo_keywords": "chunking, dsn, etrn, silent-discard",
           "message_size_limit": "0"},
  dialogue=[EHLO, "ETRN other.org\r\n",
            MAIL, rcpt("peter@example.com", "NOTIFY=NEVER"), rcpt("peter@example.com"),
            RSET, mail("alice@example.com", "SIZE=99999999999"), RSET,
            mail("alice@example.com", "RET=HDRS"), rcpt("peter@example.com"),
            ("BDAT 5 LAST\r\nhello", None), QUIT])

S(id="ehlo-discard-logged",
  title="smtpd_discard_ehlo_keywords = pipelining, 8bitmime, smtputf8, size, vrfy, enhancedstatuscodes (logged)",
  main_cf={"smtpd_discard_ehlo_keywords": "pipelining, 8bitmime, smtputf8, size, vrfy, enhancedstatuscodes"},
  dialogue=[EHLO, "VRFY peter\r\n", mail("alice@example.com", "BODY=8BITMIME"),
            rcpt("nosuch@example.com"), RSET, "FOO\r\n", QUIT])

S(id="soft-bounce",
  title="soft_bounce = yes: 5xx rejects become 4xx (outsider)",
  main_cf={**OUTSIDER, "soft_bounce": "yes",
           "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination"},
  dialogue=[EHLO, MAIL, rcpt("nosuch@example.com"), rcpt("user@other.org"),
            rcpt("peter@example.com"), "FOO\r\n", MAIL, RSET, "MAIL FROM:<alice@example.com\r\n",
            "VRFY nosuch\r\n", RSET, mail("alice@example.com", "SIZE=99999999999"), QUIT])

S(id="reject-codes",
  title="unknown_local_recipient_reject_code=450, relay_domains_reject_code=550, access_map_reject_code=551, access_map_defer_code=451 (outsider)",
  main_cf={**OUTSIDER,
           "unknown_local_recipient_reject_code": "450",
           "relay_domains_reject_code": "550",
           "access_map_reject_code": "551",
           "access_map_defer_code": "451",
           "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
           "smtpd_recipient_restrictions": "check_recipient_access hash:/etc/postfix/recipient_access"},
  files={"recipient_access": "gerda@example.com  REJECT\njim@example.com  DEFER\nbob@example.com  REJECT Bob says no\n"},
  dialogue=[EHLO, MAIL, rcpt("nosuch@example.com"), rcpt("user@other.org"),
            rcpt("gerda@example.com"), rcpt("jim@example.com"), rcpt("bob@example.com"),
            rcpt("peter@example.com"), RSET, QUIT])

S(id="reject-unlisted-sender",
  title="smtpd_reject_unlisted_sender = yes: unknown local / virtual senders",
  main_cf={"smtpd_reject_unlisted_sender": "yes", "virtual_alias_domains": "sue.nl",
           "virtual_alias_maps": "hash:/etc/postfix/virtual"},
  files={"virtual": "info@sue.nl     gerda\n"},
  dialogue=[EHLO,
            "MAIL FROM:<nosuch@example.com>\r\n", rcpt("peter@example.com"), RSET,
            "MAIL FROM:<nobody@sue.nl>\r\n", rcpt("peter@example.com"), RSET,
            "MAIL FROM:<info@sue.nl>\r\n", rcpt("peter@example.com"), RSET,
            "MAIL FROM:<alice@example.com>\r\n", rcpt("peter@example.com"), RSET,
            "MAIL FROM:<anyone@other.org>\r\n", rcpt("peter@example.com"), RSET,
            QUIT])

S(id="mynetworks-hash",
  title="mynetworks = hash table containing 127.0.0.1: relaying from the client",
  main_cf={"mynetworks": "hash:/etc/postfix/network_table"},
  files={"network_table": "127.0.0.1   OK\n"},
  dialogue=[EHLO, MAIL, rcpt("user@other.org"), RSET, QUIT])

S(id="mynetworks-hash-netkey",
  title="mynetworks = hash table containing only '127.0.0' (no exact address): relaying from the client",
  main_cf={"mynetworks": "hash:/etc/postfix/network_table"},
  files={"network_table": "127.0.0   OK\n"},
  dialogue=[EHLO, MAIL, rcpt("user@other.org"), RSET, QUIT])

S(id="mynetworks-style-host",
  title="mynetworks unset, mynetworks_style = host: 127.0.0.1 is still trusted",
  main_cf={"mynetworks_style": "host"},
  main_cf_removed=["mynetworks"],
  dialogue=[EHLO, MAIL, rcpt("user@other.org"), RSET, QUIT],
  commands=["postconf -h mynetworks"],
  notes="The value Postfix computes for mynetworks depends on the host's interfaces; "
        "the recorded 'postconf -h mynetworks' shows the recording machine's.")

S(id="header-body-checks",
  title="header_checks / body_checks (regexp): REJECT, DISCARD, HOLD, WARN, REPLACE, PREPEND at end of DATA",
  main_cf={"header_checks": "regexp:/etc/postfix/header_checks",
           "body_checks": "regexp:/etc/postfix/body_checks"},
  files={"header_checks": ("/^Subject: .*spam/   REJECT No spam please\n"
                           "/^Subject: .*drop/   DISCARD\n"
                           "/^Subject: .*hold/   HOLD held for review\n"
                           "/^Subject: .*warn/   WARN header warning\n"
                           "/^Subject: .*tempfail/   450 4.7.1 try later\n"
                           "/^Subject: .*prepend/   PREPEND X-Prepended: yes\n"
                           "/^X-Replace: /   REPLACE X-Replaced: yes\n"),
         "body_checks": "/^evil body/   REJECT Body rejected\n"},
  table_types={"header_checks": "none", "body_checks": "none"},
  dialogue=[
      EHLO,
      MAIL, rcpt("peter@example.com"), *data_steps("buy spam now", "hc-spam"),
      MAIL, rcpt("peter@example.com"), *data_steps("please drop", "hc-drop"),
      MAIL, rcpt("peter@example.com"), *data_steps("please hold", "hc-hold"),
      MAIL, rcpt("peter@example.com"), *data_steps("please warn", "hc-warn"),
      MAIL, rcpt("peter@example.com"), *data_steps("tempfail me", "hc-tempfail"),
      MAIL, rcpt("gerda@example.com"), "DATA\r\n",
      "From: alice@example.com\r\nTo: gerda@example.com\r\nSubject: replace\r\n"
      "X-Replace: old value\r\n" + DATE + "Message-ID: <hc-replace@client.example.org>\r\n"
      "\r\nX-Not-A-Header: body\r\na fine body\r\n.\r\n",
      MAIL, rcpt("gerda@example.com"), "DATA\r\n",
      message("alice@example.com", "gerda@example.com", "please prepend", "hc-prepend"),
      MAIL, rcpt("gerda@example.com"), "DATA\r\n",
      message("alice@example.com", "gerda@example.com", "body check", "hc-body",
              body="hello\r\nevil body here\r\n"),
      QUIT,
  ])

S(id="smtpd-null-access-key",
  title="check_sender_access for the null sender: key <> (smtpd_null_access_lookup_key)",
  main_cf={"smtpd_sender_restrictions": "check_sender_access hash:/etc/postfix/sender_access"},
  files={"sender_access": "<>   REJECT No bounces here\n"},
  dialogue=[EHLO, "MAIL FROM:<>\r\n", rcpt("peter@example.com"), RSET, MAIL,
            rcpt("peter@example.com"), RSET, QUIT])

S(id="restriction-classes",
  title="smtpd_restriction_classes: a recipient access table naming a class",
  main_cf={"smtpd_restriction_classes": "strict",
           "strict": "reject_non_fqdn_sender, check_sender_access hash:/etc/postfix/sender_access",
           "smtpd_recipient_restrictions": "check_recipient_access hash:/etc/postfix/recipient_access, permit_mynetworks, reject_unauth_destination"},
  files={"recipient_access": "peter@example.com   strict\n",
         "sender_access": "bad@example.net   REJECT Not for peter\n"},
  dialogue=[EHLO,
            "MAIL FROM:<bad@example.net>\r\n", rcpt("peter@example.com"), rcpt("gerda@example.com"), RSET,
            "MAIL FROM:<alice>\r\n", rcpt("peter@example.com"), rcpt("gerda@example.com"), RSET,
            QUIT])

S(id="helo-required-variants",
  title="smtpd_helo_required = yes: VRFY, ETRN, NOOP, RSET, HELP, STARTTLS before HELO",
  main_cf={"smtpd_helo_required": "yes"},
  dialogue=["NOOP\r\n", RSET, "VRFY peter\r\n", "ETRN example.com\r\n", "HELP\r\n",
            "MAIL FROM:<alice@example.com>\r\n", "DATA\r\n", "RCPT TO:<peter@example.com>\r\n",
            "HELO client.example.org\r\n", MAIL, QUIT])

# ---------------------------------------------------------------------------
# Tables opened at process start; the postmaster's transcript notice
# ---------------------------------------------------------------------------
# "Five minutes ago the source was edited, ten minutes ago it was compiled":
# dict_db.c warns when the source is newer than the .db and older than 100 s.
STALE = "touch -d '-10 min' {db}; touch -d '-5 min' {src}"

S(id="stale-aliases-db",
  title="/etc/aliases edited after newaliases (5 min ago): who logs 'older than source file'",
  setup=["echo 'sales2: peter' >> /etc/aliases",
         STALE.format(db="/etc/aliases.db", src="/etc/aliases")],
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"), rcpt("sales2@example.com"),
            *data_steps("stale aliases", "stale-aliases"), QUIT],
  notes="Before the start, 'sales2: peter' was appended to /etc/aliases without newaliases; "
        "aliases.db was dated 10 minutes back and /etc/aliases 5 minutes back.")

S(id="stale-virtual-db",
  title="virtual_alias_maps edited after postmap (5 min ago): smtpd, trivial-rewrite, cleanup warn",
  main_cf={"virtual_alias_maps": "hash:/etc/postfix/virtual"},
  files={"virtual": "sue.nl          anything\ninfo@sue.nl     gerda\n"},
  setup=["echo 'sales@sue.nl    petra' >> /etc/postfix/virtual",
         STALE.format(db="/etc/postfix/virtual.db", src="/etc/postfix/virtual")],
  dialogue=[EHLO, MAIL, rcpt("info@sue.nl"), rcpt("sales@sue.nl"),
            *data_steps("stale virtual", "stale-virtual", to="info@sue.nl"), QUIT],
  notes="Before the start, 'sales@sue.nl petra' was appended to /etc/postfix/virtual "
        "without postmap; virtual.db was dated 10 minutes back, virtual 5 minutes back.")

S(id="header-checks-bad-lines",
  title="header_checks with lines regexp cannot use: cleanup's warnings when it opens the table",
  main_cf={"header_checks": "regexp:/etc/postfix/header_checks"},
  files={"header_checks": "/^Subject: spam/ REJECT no spam\nnot a pattern\n"
                          "/^X-Bad: (/ REJECT unbalanced\n/^X-Test:/ FROBNICATE now\n"},
  table_types={"header_checks": "none"},
  dialogue=[EHLO, MAIL, rcpt("peter@example.com"),
            "DATA\r\n",
            "From: alice@example.com\r\nTo: peter@example.com\r\nSubject: hello\r\n"
            "X-Test: yes\r\n" + DATE + "Message-Id: <hc-bad@client.example.org>\r\n\r\nhi\r\n.\r\n",
            QUIT])

S(id="notify-policy-protocol",
  title="notify_classes = policy, protocol: the postmaster gets the session's transcript",
  main_cf={"notify_classes": "policy, protocol", "smtpd_error_sleep_time": "0"},
  dialogue=[EHLO, "FROBNICATE\r\n", MAIL, rcpt("nosuch@example.com"), "RCPT TO:bad address\r\n",
            rcpt("peter@example.com"), RSET, QUIT])

S(id="notify-lost-connection",
  title="notify_classes = protocol: a session that ends without QUIT (Session aborted)",
  main_cf={"notify_classes": "protocol", "smtpd_error_sleep_time": "0"},
  dialogue=[EHLO, "FROBNICATE\r\n", MAIL],
  notes="The client closes the connection after MAIL FROM, without QUIT.")
