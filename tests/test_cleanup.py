"""cleanup(8): canonical maps, header rewriting, virtual alias expansion, missing
headers, checks and limits -- compared with Postfix 3.7.11 recordings where they
exist (tests/golden/virtual/alias-expansion, canonical-*; tests/golden/postfix-3.7*),
else with what Postfix's source (src/cleanup) says.

Masking as in test_qmgr (dates, pids, queue ids by order, delays, Message-Id
time stamps). Postfix's qmgr and local run concurrently with smtpd, so logs are
compared per message (and cleanup's own lines in order), mailboxes as sets of
messages.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conformance import GOLDEN, build_host, load, replay_inprocess  # noqa: E402
from test_qmgr import mask_log, mask_mailbox, per_message  # noqa: E402
from test_virtual import ALIASES, replay  # noqa: E402

from mailsim.canonical import externalize, header_context, parse, rewrite_header  # noqa: E402
from mailsim.cleanup import CleanupError, submit  # noqa: E402
from mailsim.qmgr import QueueManager  # noqa: E402
from mailsim.queue import Recipient, read_queue_file  # noqa: E402
from mailsim.virtual_alias import expand, expand_recipients  # noqa: E402

RECORDED = ["alias-expansion", "canonical-local", "canonical-classes", "canonical-remote",
            "canonical-remote-domain"]
SHARED = ["postfix-3.7/sender-canonical", "postfix-3.7/virtual-alias", "postfix-3.7/missing-headers",
          "postfix-3.7-recorded/header-body-checks", "postfix-3.7-recorded/size-boundary-small",
          "postfix-3.7-recorded/size-boundary", "postfix-3.7/size-limit"]
UNPID = re.compile(r"\[PID\d+\]")


def unpid(lines: list[str]) -> list[str]:
    return [UNPID.sub("[PID]", ln) for ln in lines]


def messages(mbox: str) -> list[str]:
    """An mbox's messages, masked and sorted (delivery order between agents varies)."""
    return sorted(mask_mailbox(m.rstrip("\n")) for m in re.split(r"\n(?=From \S+  )", mbox))


# -- recordings made for this module ------------------------------------------------------------
@pytest.mark.parametrize("name", RECORDED)
def test_recorded_replies(name: str, tmp_path: Path) -> None:
    sc, _, replies = replay(name, tmp_path / "h")
    qid = re.compile(r"queued as \w+")
    for s, got in zip(sc["sessions"], replies):
        want = [qid.sub("Q", st["reply"]) for st in s["dialogue"]]
        assert [qid.sub("Q", "".join(g)) for g in got] == want


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_log(name: str, tmp_path: Path) -> None:
    sc, host, _ = replay(name, tmp_path / "h")
    got, want = mask_log(host.log.lines), mask_log(sc["log"])
    assert sorted(unpid(got)) == sorted(unpid(want))
    cleanup = lambda lines: [ln for ln in unpid(lines) if "cleanup[" in ln]  # noqa: E731
    assert cleanup(got) == cleanup(want)
    for q, lines in per_message(want).items():
        assert sorted(unpid(per_message(got)[q])) == sorted(unpid(lines)), q


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_mailboxes(name: str, tmp_path: Path) -> None:
    sc, host, _ = replay(name, tmp_path / "h")
    boxes = tmp_path / "h/var/mail"
    assert sorted(p.name for p in boxes.iterdir() if p.stat().st_size) == sorted(sc["mailboxes"])
    for user, text in sc["mailboxes"].items():
        assert messages((boxes / user).read_text("latin-1")) == messages(text), user


# -- the shared recordings ----------------------------------------------------------------------
def _run_shared(path: str, root: Path):
    sc = load(GOLDEN / f"{path}.json")
    host = build_host(sc, root)
    replay_inprocess(sc, host)
    QueueManager(host).run()
    return sc, host


@pytest.mark.parametrize("path", SHARED)
def test_shared_cleanup_log_and_mailboxes(path: str, tmp_path: Path) -> None:
    sc, host = _run_shared(path, tmp_path / "h")
    keep = lambda lines: [ln for ln in unpid(mask_log(lines)) if "cleanup[" in ln]  # noqa: E731
    assert keep(host.log.lines) == keep(sc["log"])
    qmgr = lambda lines: sorted(ln for ln in unpid(mask_log(lines)) if "qmgr[" in ln)  # noqa: E731
    assert qmgr(host.log.lines) == qmgr(sc["log"])
    for user, text in sc["mailboxes"].items():
        assert messages((tmp_path / "h/var/mail" / user).read_text("latin-1")) == messages(text)


# -- virtual alias expansion: what cleanup_map1n.c says ------------------------------------------
def _host(tmp_path: Path, **settings):
    sc = load(GOLDEN / "virtual/alias-expansion.json")
    host = build_host(dict(sc, files={"aliases": ALIASES, **sc["files"]}), tmp_path / "h")
    return host.with_settings(**settings) if settings else host


def test_self_mapping_and_duplicates(tmp_path: Path) -> None:
    h = _host(tmp_path)
    assert expand(h, "marc@example.com", "Q", 1) == ["marc@example.com", "jim@example.com"]
    assert expand(h, "team@sue.nl", "Q", 1) == ["peter@example.com", "gerda@example.com",
                                                "gerda@example.com", "bob@example.com"]
    out = expand_recipients(h, [Recipient("team@sue.nl", "team@sue.nl", "", "rfc822;team@sue.nl")],
                            "Q", 1)
    assert [r.address for r in out] == ["peter@example.com", "gerda@example.com", "bob@example.com"]
    assert {r.orig for r in out} == {"team@sue.nl"}


def test_recursion_limit_warning(tmp_path: Path) -> None:
    h = _host(tmp_path, virtual_alias_recursion_limit="3")
    with pytest.raises(Exception) as e:
        expand(h, "loop1@sue.nl", "QID1", 9)
    assert e.value.status == "defer" and e.value.reason == "4.6.0 Alias expansion error"
    assert h.log.lines[-1].endswith("cleanup[9]: warning: QID1: unreasonable virtual_alias_maps map "
                                    "nesting for loop1@sue.nl -- message not accepted, try again later")


def test_address_length_limit_warning(tmp_path: Path) -> None:
    h = _host(tmp_path, virtual_alias_address_length_limit="15")
    with pytest.raises(Exception):
        expand(h, "team@sue.nl", "QID1", 9)
    assert h.log.lines[-1].endswith("warning: QID1: unreasonable virtual_alias_maps result "
                                    "peter@example.com... -- message not accepted, try again later")


def test_table_problem_is_a_write_error(tmp_path: Path) -> None:
    h = _host(tmp_path, virtual_alias_maps="hash:/etc/postfix/missing")
    with pytest.raises(CleanupError) as e:
        submit(h, sender="alice@example.com", recipients=[Recipient("x@sue.nl", "x@sue.nl")],
               content=b"Subject: x\n\nbody\n", origin="pickup", received="Received: by x")
    assert (e.value.smtp, e.value.dsn, e.value.text) == (451, "4.3.0", "Error: queue file write error")
    assert "warning: " in h.log.lines[-1] and "virtual_alias_maps map lookup problem for x@sue.nl" \
        in h.log.lines[-1]
    assert not [p for q in ("incoming", "hold") for p in (h.spool / q).glob("[!.]*")]


def test_duplicate_filter_limit(tmp_path: Path) -> None:
    h = _host(tmp_path, duplicate_filter_limit="1")
    rs = [Recipient("peter@example.com", "x@sue.nl"), Recipient("peter@example.com", "x@sue.nl"),
          Recipient("gerda@example.com", "y"), Recipient("gerda@example.com", "y")]
    got = expand_recipients(h, rs, "Q", 1, use_maps=False)
    assert [r.address for r in got] == ["peter@example.com", "gerda@example.com", "gerda@example.com"]


def test_notify_success_is_taken_off_expanded_recipients(tmp_path: Path) -> None:
    h = _host(tmp_path)
    out = expand_recipients(h, [Recipient("team@sue.nl", "team@sue.nl", "SUCCESS,FAILURE"),
                                Recipient("info@sue.nl", "info@sue.nl", "SUCCESS")], "Q", 1)
    assert {r.address: r.notify for r in out} == {
        "peter@example.com": "FAILURE", "gerda@example.com": "FAILURE", "bob@example.com": "FAILURE",
        "petra@example.com": "NEVER"}


# -- submit() for every origin ---------------------------------------------------------------------
def test_pickup_gets_missing_headers_and_canonical_sender(tmp_path: Path) -> None:
    h = _host(tmp_path)
    qf = submit(h, sender="alice", recipients=[Recipient("marc", "marc")],
                content=b"To: marc\nSubject: hi\n\nhello\n", origin="pickup",
                received="Received: by mail.example.com (Postfix, from userid 1000)\n\tid X")
    text = qf.content.decode()
    assert qf.sender == "alice@example.com"
    assert [r.address for r in qf.recipients] == ["marc@example.com", "jim@example.com"]
    assert "\nTo: marc@example.com\n" in text
    assert re.search(r"\nMessage-Id: <\d{14}\.%s@mail\.example\.com>\nDate: .*\nFrom: "
                     r"alice@example\.com\n\nhello\n$" % qf.queue_id, text)
    assert read_queue_file(h.spool / "incoming" / qf.queue_id).content == qf.content
    assert h.qmgr_wanted


def test_bounce_keeps_its_headers_and_logs_its_message_id(tmp_path: Path) -> None:
    h = _host(tmp_path)
    dsn = (b"Received: by mail.example.com (Postfix)\n\tid Q; Wed, 25 Nov 2026 08:57:42 +0000 (UTC)\n"
           b"Date: Wed, 25 Nov 2026 08:57:42 +0000 (UTC)\nFrom: MAILER-DAEMON@example.com\n"
           b"Message-Id: <20261125085742.Q@mail.example.com>\n\nbody\n")
    qf = submit(h, sender="", recipients=[Recipient("alice@example.com", "alice@example.com")],
                content=dsn, origin="bounce", pid=55)
    assert qf.content == dsn and qf.sender == ""
    assert h.log.lines[-1].endswith(f"cleanup[55]: {qf.queue_id}: message-id=<20261125085742.Q@mail.example.com>")


def test_no_received_header_is_rejected(tmp_path: Path) -> None:
    h = _host(tmp_path)
    with pytest.raises(CleanupError) as e:
        submit(h, sender="a@example.com", recipients=[Recipient("peter@example.com")],
               content=b"Subject: x\n\nbody\n", origin="local")
    assert e.value.smtp == 451 and e.value.kind == "bad"
    assert h.log.lines[-1].endswith("message rejected: no Received: header")


def test_hopcount_limit(tmp_path: Path) -> None:
    h = _host(tmp_path, hopcount_limit="3")
    with pytest.raises(CleanupError) as e:
        submit(h, sender="a@example.com", recipients=[Recipient("peter@example.com")],
               content=b"Received: by a\nReceived: by b\nSubject: x\n\nbody\n", origin="local",
               received="Received: by c")
    assert (e.value.smtp, e.value.dsn, e.value.text) == (554, "5.4.0", "Error: too many hops")
    assert h.log.lines[-1].endswith("message rejected: hopcount exceeded")


def test_mailer_daemon_sender_becomes_null(tmp_path: Path) -> None:
    h = _host(tmp_path)
    qf = submit(h, sender="MAILER-DAEMON", recipients=[Recipient("peter@example.com")],
                content=b"Subject: x\n\nbody\n", origin="pickup", received="Received: by x")
    assert qf.sender == "" and "\nFrom: MAILER-DAEMON\n" in qf.content.decode()


def test_hold_goes_to_the_hold_queue(tmp_path: Path) -> None:
    h = _host(tmp_path)
    qf = submit(h, sender="a@example.com", recipients=[Recipient("peter@example.com")],
                content=b"Subject: x\n\nbody\n", origin="pickup", received="Received: by x", hold=True)
    assert (h.spool / "hold" / qf.queue_id).is_file() and qf.hold


def test_unknown_origin(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        submit(_host(tmp_path), sender="", recipients=[], content=b"", origin="smtp")


def test_header_context(tmp_path: Path) -> None:
    h = _host(tmp_path)
    assert header_context(h, "smtpd", "127.0.0.1") == "local"
    assert header_context(h, "smtpd", "192.0.2.9") is None
    assert header_context(h.with_settings(remote_header_rewrite_domain="x.example"), "smtpd",
                          "192.0.2.9") == "remote"
    assert header_context(h, "pickup") == header_context(h, "bounce") == "local"


# -- RFC 822 header output: the recorded header, piece by piece ---------------------------------------
def test_tok822_forms_from_the_recording() -> None:
    cc = '"Smith, J" <jim@old.example.com> (Jim),\n list: pp@example.com, gerda.g; ,\n\tmarc@mail'
    assert externalize(parse(cc)) == '"Smith, J" <jim@old.example.com>(Jim), list: pp@example.com, ' \
                                     'gerda.g;, marc@mail'


def test_header_untouched_without_change(tmp_path: Path) -> None:
    h = _host(tmp_path)
    hdr = 'Cc: "Smith, J"   <jim@example.com>'
    assert rewrite_header(h, hdr, "local", "Q", 1) == hdr
    assert rewrite_header(h, "Subject: jim", "local", "Q", 1) == "Subject: jim"


def test_canonical_table_problem(tmp_path: Path) -> None:
    h = _host(tmp_path, sender_canonical_maps="hash:/etc/postfix/missing")
    with pytest.raises(CleanupError) as e:
        submit(h, sender="alice@example.com", recipients=[Recipient("peter@example.com")],
               content=b"Subject: x\n\nbody\n", origin="pickup", received="Received: by x")
    assert (e.value.smtp, e.value.dsn) == (451, "4.3.0")
    assert h.log.lines[-1].endswith("warning: %s: sender_canonical_maps map lookup problem for "
                                    "alice@example.com -- message not accepted, try again later"
                                    % h.log.lines[-1].split("warning: ")[1].split(":")[0])


def test_header_checks_filter_redirect_bcc(tmp_path: Path) -> None:
    # cleanup_message.c: FILTER/REDIRECT are the queue file's FILT/RDR records (they win over
    # smtpd's), BCC adds a recipient with NOTIFY=NEVER; REDIRECT ends header/body checks
    from mailsim.cleanup import Delegated
    h = _host(tmp_path)
    (h.root / "etc/postfix/hc").write_text("/^Subject: f/ FILTER smtp:[10.0.0.1]\n"
                                           "/^Subject: b/ BCC bob@example.com\n"
                                           "/^Subject: r/ REDIRECT gerda@example.com\n"
                                           "/^X-After: r/ REJECT no\n"
                                           "/^Subject: x/ BCC nobody\n")
    h = h.with_settings(header_checks="regexp:/etc/postfix/hc")

    def go(subject: str, **kw):
        return submit(h, sender="a@example.com", recipients=[Recipient("peter@example.com")],
                      content=f"Subject: {subject}\nX-After: {subject}\n\nbody\n".encode(),
                      origin="pickup", received="Received: by x", delegated=Delegated(**kw))

    qf = go("r", redirect="jim@example.com", filter="relay:x")
    assert (qf.redirect, qf.filter) == ("gerda@example.com", "relay:x")   # X-After: not checked
    assert h.log.lines[-2].split(": ", 1)[1].startswith(f"{qf.queue_id}: redirect: header Subject: r")
    qf = go("b", bcc=["marc@example.com"])
    assert [(r.address, r.notify, r.orcpt) for r in qf.recipients[1:]] == [
        ("marc@example.com", "", ""), ("jim@example.com", "", ""),    # virtual_alias_maps apply
        ("bob@example.com", "NEVER", "")]
    assert go("f", filter="relay:x").filter == "smtp:[10.0.0.1]"
    assert len(go("x").recipients) == 1
    assert any('warning: bad BCC address "nobody" in header_checks map -- need user@domain' in l
               for l in h.log.lines)


def test_header_size_limit_truncates_as_mime_state_and_cleanup_out(tmp_path: Path) -> None:
    # mime_state.c keeps records while the header is under header_size_limit; cleanup_out.c
    # then cuts at a line boundary (keeping > 90%) or at the limit; the SIZE record counts
    # line_length_limit records
    h = _host(tmp_path, header_size_limit="100", line_length_limit="30")
    long = b"X-Long: " + b"a" * 200
    folded = b"X-Folded: s" + b"".join(b"\n\tline %02d" % i for i in range(20))
    qf = submit(h, sender="a@example.com", recipients=[Recipient("peter@example.com")],
                content=long + b"\n" + folded + b"\nSubject: x\n\nbody\n", origin="pickup",
                received="Received: by x")
    heads = qf.content.split(b"\n\n")[0].split(b"\n")
    assert heads[1] == long[:100]                   # 4 records of 30 kept (120), unkind cut
    kept = [ln for ln in heads if ln.startswith(b"\tline")]
    # 11 + 10*9 = 101 kept; line 09 would end past 100 and starts past 90: nice cut before it
    assert len(kept) == 9 and kept[-1] == b"\tline 08"
    assert b"Subject: x" in heads
    from mailsim.postqueue import message_size
    assert qf.size == message_size(qf.content, 30) > message_size(qf.content)
