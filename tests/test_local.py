"""local(8) mailbox delivery against the mailboxes and log lines real Postfix 3.7 wrote.

Each scenario's DATA is replayed in-process; the message cleanup left in
incoming/ is expanded through alias_maps and appended to var/mail/USER, which
must equal the recorded mailbox once the per-run parts are masked (From_ line
date, queue ids, the Received date, and the Message-Id/Date cleanup made up).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conformance import GOLDEN, build_host, load, replay_inprocess  # noqa: E402

from mailsim.local import (DeliveryError, deliver_mbox, expand_aliases, format_tv,  # noqa: E402
                           log_delivery, recipient_address)
from mailsim.queue import read_queue_file  # noqa: E402

SC = GOLDEN / "postfix-3.7"

FROM_ = re.compile(r"^(From \S+  )[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \d{4}$", re.M)
RFCDATE = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000 \(UTC\)")
STAMP = re.compile(r"<\d{14}\.")
QIDS = re.compile(r"\b[0-9A-F]{10,12}\b")


def mask(text: str) -> str:
    text = FROM_.sub(r"\1DATE", text)
    text = RFCDATE.sub("DATE", text)
    text = STAMP.sub("<STAMP.", text)
    return QIDS.sub("QID", text)


def mask_log(line: str) -> str:
    line = line.split(": ", 1)[1] if "]: " in line else line     # drop "Mon dd hh:mm:ss mail postfix/local[pid]"
    line = re.sub(r"delay=[\d.]+, delays=[\d./]+", "delay=D, delays=D", line)
    return QIDS.sub("QID", line)


def deliver_all(sc: dict, root: Path, prefill: dict[str, str] | None = None):
    host = build_host(sc, root)
    for user, text in (prefill or {}).items():
        (root / "var/mail" / user).write_text(text)
    replay_inprocess(sc, host)
    lines = []
    for f in sorted((host.spool / "incoming").iterdir()):
        if f.name.startswith("."):
            continue
        qf = read_queue_file(f)
        for r in qf.recipients:
            orig = r.orig or r.address
            for e in expand_aliases(host, r.address):
                try:
                    text = deliver_mbox(host, qf, r, e.dest, orig)
                    lines.append(log_delivery(host, qf, recipient_address(host, e.dest), orig, text))
                except DeliveryError as err:
                    lines.append(log_delivery(host, qf, recipient_address(host, e.dest), orig,
                                              err.text, err.dsn, err.status))
    return host, lines


def recorded_local_lines(sc: dict, qid: str) -> list[str]:
    return [ln for ln in sc["log"] if "postfix/local[" in ln and f": {qid}: " in ln]


def first_qid(sc: dict) -> str:
    for step in sc["dialogue"]:
        m = re.search(r"queued as (\w+)", step["reply"])
        if m:
            return m.group(1)
    raise AssertionError("no queued message")


# scenarios whose every recorded mailbox comes from one local delivery of the client's message
EXACT = ["local-delivery", "alias-single", "alias-multi", "missing-headers", "nul-byte",
         "long-line", "bare-lf-commands"]


@pytest.mark.parametrize("sid", EXACT)
def test_mailboxes_match_postfix(sid, tmp_path):
    sc = load(SC / f"{sid}.json")
    host, lines = deliver_all(sc, tmp_path / "mx")
    for user, want in sc["mailboxes"].items():
        got = (tmp_path / "mx/var/mail" / user).read_bytes().decode("latin-1")
        assert mask(got) == mask(want), user
    want_log = [mask_log(ln) for ln in recorded_local_lines(sc, first_qid(sc))]
    assert [mask_log(ln) for ln in lines] == want_log


def test_dsn_success_recipient_mailbox(tmp_path):
    # peter's copy is plain local delivery; alice's is the DSN bounce(8) makes (not simulated here)
    sc = load(SC / "dsn-success.json")
    deliver_all(sc, tmp_path / "mx")
    got = (tmp_path / "mx/var/mail/peter").read_text()
    assert mask(got) == mask(sc["mailboxes"]["peter"])


def test_mailbox_quota_bounces_and_leaves_mailbox(tmp_path):
    sc = load(SC / "mailbox-quota.json")
    old = sc["mailboxes"]["bob"]            # the prefilled mailbox, unchanged by the failed delivery
    host, lines = deliver_all(sc, tmp_path / "mx", prefill={"bob": old})
    assert (tmp_path / "mx/var/mail/bob").read_text() == old
    assert [mask_log(ln) for ln in lines] == [mask_log(ln) for ln in
                                               recorded_local_lines(sc, first_qid(sc))]
    assert "dsn=5.2.2, status=bounced (cannot update mailbox /var/mail/bob for user bob. " \
           "error writing message: File too large)" in lines[0]


def test_unknown_user_after_alias(tmp_path):
    sc = load(SC / "bounce-alias-missing.json")
    host, lines = deliver_all(sc, tmp_path / "mx")
    assert [mask_log(ln) for ln in lines] == [mask_log(ln) for ln in
                                               recorded_local_lines(sc, first_qid(sc))]


def test_alias_expansion_rules(tmp_path):
    sc = load(SC / "alias-multi.json")
    host = build_host(sc, tmp_path / "mx")
    (tmp_path / "mx/etc/lists").mkdir()
    (tmp_path / "mx/etc/lists/crew").write_text("# crew\npeter\ngerda, staff\n")
    with open(tmp_path / "mx/etc/aliases", "a") as f:
        f.write("marc2: marc2, marc\n"
                "crew: :include:/etc/lists/crew\n"
                "logs: /var/log/mail-archive, \"|/usr/bin/procmail -a x\", bob@example.org\n")
    from mailsim.maps import postalias_build
    postalias_build(host, "hash:/etc/aliases")
    host = host.with_settings(recipient_delimiter="+")    # base-main.cf leaves it unset
    ex = lambda a: [tuple(e) for e in expand_aliases(host, a)]  # noqa: E731
    assert ex("team@example.com") == [("peter", "team@example.com"), ("gerda", "team@example.com"),
                                      ("bob", "team@example.com")]
    assert ex("info@example.com") == [("petra", "info@example.com")]
    # no alias for peter+news nor peter: the user's mailbox, the extension kept for the log
    assert ex("Peter+news@example.com") == [("peter+news", "Peter+news@example.com")]
    assert ex("staff+x@example.com") == [("peter", "staff+x@example.com"),
                                         ("gerda", "staff+x@example.com")]
    assert ex("postmaster@example.com") == [("marc", "postmaster@example.com")]
    assert ex("marc2@example.com") == [("marc2", "marc2@example.com"), ("marc", "marc2@example.com")]
    assert ex("crew@example.com") == [("peter", "crew@example.com"), ("gerda", "crew@example.com")]
    assert [e.kind for e in expand_aliases(host, "logs@example.com")] == ["file", "command", "forward"]


def test_extension_goes_to_user_mailbox(tmp_path):
    from mailsim.queue import QueueFile, Recipient
    host = build_host(load(SC / "local-delivery.json"), tmp_path / "mx")
    host = host.with_settings(recipient_delimiter="+")    # base-main.cf leaves it unset
    r = Recipient("peter+news@example.com")
    qf = QueueFile("ABCDE123456", "", [r], host.clock.now(), content=b"Subject: x\n\nhi\n")
    assert deliver_mbox(host, qf, r, "peter+news", r.address) == "delivered to mailbox"
    text = (tmp_path / "mx/var/mail/peter").read_text()
    assert text.startswith("From MAILER-DAEMON  ")
    assert "\nReturn-Path: <>\nX-Original-To: peter+news@example.com\n" \
           "Delivered-To: peter+news@example.com\nSubject: x\n\nhi\n\n" in text
    with pytest.raises(DeliveryError) as ei:
        deliver_mbox(host, qf, r, "nobody2", r.address)
    assert (ei.value.dsn, ei.value.text) == ("5.1.1", 'unknown user: "nobody2"')


@pytest.mark.parametrize("sec,usec,want", [(0, 0, "0"), (0, 4999, "0"), (0, 5000, "0.01"),
                                            (0, 14000, "0.01"), (0, 15000, "0.02"),
                                            (0, 123456, "0.12"), (1, 234567, "1.2"),
                                            (12, 600000, "13"), (123, 0, "123")])
def test_format_tv(sec, usec, want):
    assert format_tv(sec, usec) == want
