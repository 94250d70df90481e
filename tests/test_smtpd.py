"""smtpd engine behaviour beyond the recorded corpus: logs, limits, queue files, decisions."""
from __future__ import annotations

import json

from mailsim.queue import read_queue_file


def talk(host, *lines, client="127.0.0.1"):
    s = host.session(client)
    return s, [s.send(l) for l in lines]


def test_accepted_message_is_in_incoming_with_received_header(host):
    s, r = talk(host, "EHLO client.example.org", "MAIL FROM:<alice@example.org>",
                "RCPT TO:<peter@example.com>", "DATA")
    assert r[-1].startswith("354 ")
    reply = s.message("Subject: hi\n\nhello\n.dot line\n")
    assert reply.startswith("250 2.0.0 Ok: queued as ")
    qid = reply.rsplit(" ", 1)[1]
    qf = read_queue_file(host.spool / "incoming" / qid)
    assert qf.sender == "alice@example.org"
    assert [r.address for r in qf.recipients] == ["peter@example.com"]
    text = qf.content.decode()
    assert text.startswith("Received: from client.example.org (localhost [127.0.0.1])\n"
                           f"\tby mail.example.com (Postfix) with ESMTP id {qid}\n"
                           "\tfor <peter@example.com>; ")
    # cleanup adds the headers a local client left out, after the others (as in the corpus)
    assert text.endswith(f"Subject: hi\nMessage-Id: <20261125090000.{qid}@mail.example.com>\n"
                         "Date: Wed, 25 Nov 2026 09:00:00 +0000 (UTC)\nFrom: alice@example.org\n"
                         "\nhello\n.dot line\n")
    assert not list((host.spool / "incoming").glob(".*.tmp"))


def test_log_lines_match_postfix_format(host):
    s, _ = talk(host, "EHLO client.example.org", "MAIL FROM:<a@example.org>",
                "RCPT TO:<nosuch@example.com>", "QUIT")
    lines = [l.split(": ", 1)[1] for l in host.log.lines]
    assert lines[0] == "connect from localhost[127.0.0.1]"
    assert lines[1] == ("NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 550 5.1.1 <nosuch@example.com>: "
                        "Recipient address rejected: User unknown in local recipient table; "
                        "from=<a@example.org> to=<nosuch@example.com> proto=ESMTP helo=<client.example.org>")
    assert lines[2] == "disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4"
    assert host.log.lines[0].split()[3] == "mail"
    assert "postfix/smtpd[" in host.log.lines[0]
    assert (host.root / "var/log/postfix.log").read_text().splitlines() == host.log.lines


def test_hard_error_limit_closes_with_421(make_host):
    # Postfix checks the limit before it reads the next command: the 421 follows the
    # third error at once (tests/golden/postfix-3.7-recorded/error-limits.json)
    h = make_host({"smtpd_hard_error_limit": "3", "smtpd_error_sleep_time": "0"})
    s, r = talk(h, "FOO", "BAR", "BAZ")
    assert r[:2] == ["500 5.5.2 Error: command not recognized"] * 2
    assert r[2] == ("500 5.5.2 Error: command not recognized\n"
                    "421 4.7.0 mail.example.com Error: too many errors")
    assert s.closed
    assert "too many errors after UNKNOWN from localhost[127.0.0.1]" in h.log.lines[-2]


def test_one_session_never_affects_another(host):
    a = host.session()
    a.send("MAIL FROM:<x@example.org>")
    b = host.session()
    assert b.send("RCPT TO:<peter@example.com>") == "503 5.5.1 Error: need MAIL command"
    assert a.send("RCPT TO:<peter@example.com>") == "250 2.1.5 Ok"


def test_garbage_never_crashes(host):
    s = host.session()
    for junk in [b"\x00\x01\x02\r\n", b"\xff\xfe\r\n", b"MAIL FROM:<\r\n", b"RCPT TO:<<<>>>\r\n",
                 b"BDAT -1\r\n", b"BDAT 99999999999999999999\r\n", b"EHLO " + b"a" * 5000 + b"\r\n",
                 b"\r\n" * 5, b"MAIL FROM:<a@b> SIZE=" + b"9" * 40 + b"\r\n"]:
        out = s.engine.receive(junk)
        assert out == b"" or out[:3].isdigit(), (junk, out)


def test_decisions_explain_relay_denied(make_host):
    h = make_host({"mynetworks": "192.0.2.0/24"})
    s, r = talk(h, "EHLO x.example", "MAIL FROM:<a@other.org>", "RCPT TO:<user@other.net>")
    assert r[-1] == "454 4.7.1 <user@other.net>: Relay access denied"
    d = s.decisions[-1]
    assert d.resolved.klass == "default"
    decisive = [st for st in d.steps if st.verdict not in ("DUNNO",)]
    assert decisive[-1].element == "defer_unauth_destination"
    assert "Relay access denied" in d.explain()


def test_bdat_chunks_are_joined(host):
    s = host.session()
    s.send("EHLO c.example")
    s.send("MAIL FROM:<a@example.org>")
    s.send("RCPT TO:<peter@example.com>")
    out = s.send(b"BDAT 12\r\nSubject: x\r\n")
    assert out == "250 2.0.0 Ok: 12 bytes"
    out = s.send(b"BDAT 8 LAST\r\n\r\nbody\r\n")
    assert out.startswith("250 2.0.0 Ok: 20 bytes queued as ")
    qf = read_queue_file(host.spool / "incoming" / out.rsplit(" ", 1)[1])
    assert b"\nSubject: x\nMessage-Id: <" in qf.content and qf.content.endswith(b"\n\nbody\n")


def test_same_seed_same_transcript_and_log(tmp_path):
    from conformance import build_host
    sc = {"id": "d", "users": ["peter"], "main_cf": {}, "files": {}}
    outs = []
    for i in range(2):
        h = build_host(sc, tmp_path / f"h{i}")
        s, r = talk(h, "EHLO c.example", "MAIL FROM:<a@b.example>", "RCPT TO:<peter@example.com>", "DATA")
        r.append(s.message("Subject: s\n\nx\n"))
        outs.append((r, [l.split(" ", 3)[3] for l in h.log.lines]))
    assert outs[0] == outs[1]


def test_random_input_never_raises(make_host):
    """A seeded fuzz: command fragments, bytes and line ends in random order."""
    import random
    rng = random.Random(2026)
    h = make_host({"smtpd_hard_error_limit": "1000"})
    words = [b"EHLO x", b"HELO", b"MAIL FROM:<a@b>", b"MAIL FROM:", b"RCPT TO:<peter@example.com>",
             b"RCPT TO:<@>", b"DATA", b".", b"BDAT 5", b"BDAT 0 LAST", b"RSET", b"VRFY peter",
             b"ETRN #x", b"NOOP", b"\x00", b"\xff\xfe", b"<<>>", b"SIZE=9", b"NOTIFY=NEVER,SUCCESS"]
    ends = [b"\r\n", b"\n", b"\r", b""]
    for _ in range(150):
        eng = h.smtpd("192.0.2.7")
        eng.greeting()
        for _ in range(rng.randrange(1, 25)):
            chunk = b" ".join(rng.choice(words) for _ in range(rng.randrange(1, 4))) + rng.choice(ends)
            out = eng.receive(chunk)
            assert out == b"" or out[:1].isdigit(), out
            if eng.closed:
                break
        eng.lost()
    assert not list((h.spool / "incoming").glob(".tmp.*")), "aborted sessions leave no temporary files"


def _cleanup_lines(host) -> list[str]:
    return [l.split(": ", 1)[1] for l in host.log.lines if "postfix/cleanup[" in l]


def test_rset_after_bdat_chunk_cleanup_logs_what_it_saw(host):
    # smtpd.c mail_reset() closes cleanup's stream: cleanup has seen the headers of the
    # first chunk and their end, so it logs the Message-Id it added (cleanup_message.c)
    s, _ = talk(host, "EHLO c.example", "MAIL FROM:<a@example.org>", "RCPT TO:<peter@example.com>")
    qid = s.engine.tx.queue_id
    assert s.send(b"BDAT 20\r\nSubject: x\r\n\r\nbody\r\n") == "250 2.0.0 Ok: 20 bytes"
    assert s.send("RSET") == "250 2.0.0 Ok"
    assert _cleanup_lines(host) == [f"{qid}: message-id=<20261125090000.{qid}@mail.example.com>"]
    assert not list((host.spool / "incoming").iterdir())


def test_unfinished_header_block_is_not_examined(host):
    # mime_state.c holds the last header until the next line shows it is not continued
    s, _ = talk(host, "EHLO c.example", "MAIL FROM:<a@example.org>", "RCPT TO:<peter@example.com>")
    assert s.send(b"BDAT 39\r\nSubject: x\r\nMessage-ID: <m@c.example>\r\n") == "250 2.0.0 Ok: 39 bytes"
    s.send("RSET")
    assert _cleanup_lines(host) == []
    s, _ = talk(host, "MAIL FROM:<a@example.org>", "RCPT TO:<peter@example.com>")
    qid = s.engine.tx.queue_id
    assert s.send(b"BDAT 39\r\nMessage-ID: <m@c.example>\r\nSubject: x\r\n") == "250 2.0.0 Ok: 39 bytes"
    s.close()
    assert _cleanup_lines(host) == [f"{qid}: message-id=<m@c.example>"]


def test_end_of_data_reject_still_shows_cleanup_message_id(make_host):
    h = make_host({"smtpd_end_of_data_restrictions": "reject"})
    s, _ = talk(h, "EHLO c.example", "MAIL FROM:<a@example.org>", "RCPT TO:<peter@example.com>", "DATA")
    qid = s.engine.tx.queue_id
    assert s.message("Message-ID: <late@c.example>\n\nbody\n").startswith("554 5.7.1 ")
    assert _cleanup_lines(h) == [f"{qid}: message-id=<late@c.example>"]


def test_bare_newline_reject_stops_the_copy_to_cleanup(make_host):
    # smtpd.c: after a bare <LF> no record goes to cleanup; here the headers had not ended
    h = make_host({"smtpd_forbid_bare_newline": "reject",
                   "smtpd_forbid_bare_newline_exclusions": ""})
    s, _ = talk(h, "EHLO c.example", "MAIL FROM:<a@example.org>", "RCPT TO:<peter@example.com>", "DATA")
    r = s.send(b"Subject: x\r\nMessage-ID: <bare@c.example>\nX: y\r\n\r\nbody\r\n.\r\n")
    assert r.startswith("550 5.5.2 ")
    assert _cleanup_lines(h) == []


def _access_host(make_host, table: str, **main_cf):
    return make_host({"smtpd_recipient_restrictions":
                      "check_recipient_access hash:/etc/postfix/rcpt_access, "
                      "permit_mynetworks, reject_unauth_destination", **main_cf},
                     {"rcpt_access": table})


def _queued(host, s, *rcpts: str, body: str = "Subject: s\n\nx\n"):
    host.auto_deliver = False
    s.send("EHLO c.example")
    s.send("MAIL FROM:<alice@example.com>")
    for r in rcpts:
        assert s.send(f"RCPT TO:<{r}>").startswith("250 ")
    s.send("DATA")
    reply = s.message(body)
    assert reply.startswith("250 2.0.0 Ok: queued as "), reply
    return read_queue_file(host.spool / "incoming" / reply.rsplit(" ", 1)[1])


def test_access_bcc_adds_a_recipient_after_the_content(make_host):
    # smtpd.c sends BCC recipients in the extracted segment; nrcpt counts them
    h = _access_host(make_host, "peter@example.com BCC bob@example.com\n"
                                "gerda@example.com BCC alice@example.com\n")
    qf = _queued(h, h.session(), "peter@example.com", "gerda@example.com")
    assert [(r.address, r.original, r.notify) for r in qf.recipients] == [
        ("peter@example.com", "peter@example.com", ""), ("gerda@example.com", "gerda@example.com", ""),
        ("bob@example.com", "bob@example.com", ""),
        ("alice@example.com", "alice@example.com", "NEVER")]    # smtpd's NOTIFY=NEVER applies to the next
    # our Received: header names no recipient (two were given)
    assert b"\n\tfor <" not in qf.content


def test_access_redirect_delivers_once_to_the_target(make_host):
    # qmgr_message.c: the first recipient goes to the REDIRECT address, the others are dropped
    h = _access_host(make_host, "peter@example.com REDIRECT bob@example.com\n")
    qf = _queued(h, h.session(), "peter@example.com", "gerda@example.com")
    assert qf.redirect == "bob@example.com" and len(qf.recipients) == 2
    h.run_queue()
    local = [l for l in h.log.lines if "postfix/local[" in l]
    assert len(local) == 1
    assert "to=<bob@example.com>, orig_to=<peter@example.com>, relay=local" in local[0]
    assert "X-Original-To: peter@example.com\n" in (h.root / "var/mail/bob").read_text()
    assert not (h.root / "var/mail/gerda").exists()


def test_access_filter_overrides_the_resolver(make_host):
    h = _access_host(make_host, "peter@example.com FILTER error:filtered away\n"
                                "gerda@example.com FILTER error:\n")
    qf = _queued(h, h.session(), "peter@example.com")
    assert qf.filter == "error:filtered away"
    h.run_queue()
    line = next(l for l in h.log.lines if "postfix/error[" in l)
    assert "to=<peter@example.com>, relay=none" in line and "status=bounced (filtered away)" in line
    # without a nexthop: default_filter_nexthop, else the recipient's domain
    from mailsim.qmgr import QueueManager
    qm = QueueManager(h)
    qf.filter = "error:"
    assert qm._route(qf, qf.recipients[0])[1:] == ("error", "example.com")


def test_access_prepend_goes_above_our_received_header(make_host):
    h = _access_host(make_host, "peter@example.com PREPEND X-Seen: yes\n"
                                "gerda@example.com PREPEND no header\n")
    s = h.session()
    qf = _queued(h, s, "peter@example.com", "gerda@example.com")
    assert qf.content.startswith(b"X-Seen: yes\nReceived: from c.example ")
    assert any('access table hash:/etc/postfix/rcpt_access entry "gerda@example.com" requires '
               'header: text' in l for l in h.log.lines)
