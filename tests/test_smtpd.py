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
