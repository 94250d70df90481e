"""mailsim.logsumm: counting a Postfix log the way pflogsumm does.

The expected numbers and report lines for the recorded logs are what the real
pflogsumm 1.1.5 printed for them (tests/test_pflogsumm.py compares the two
tools live when pflogsumm is installed; these tests run without it).
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from mailsim.cli import run_command
from mailsim.host import init_host
from mailsim.logsumm import (client_domain, format_report, parse_line, read_log,
                             summarize)

LOGS = Path(__file__).parent / "golden" / "postfix-3.7" / "logs"
D = "Nov 25 09:00:00 mail "


def corpus():
    return summarize([ln for p in sorted(LOGS.glob("*.log")) for ln in read_log(p)])


# -- lines ----------------------------------------------------------------------------------------
def test_parse_line_forms() -> None:
    ln = parse_line("Nov  5 23:01:02 mx postfix/submission/smtpd[99]: 3F2A1: client=x[192.0.2.1]")
    assert (ln.month, ln.day, ln.hour, ln.service, ln.word) == (11, 5, 23, "smtpd", "3F2A1")
    ln = parse_line("2026-11-25T08:57:37.123456+00:00 mail postfix/relay/smtp[1]: ABC123: to=<a@b>")
    assert (ln.year, ln.month, ln.service) == (2026, 11, "relay/smtp")
    assert ln.timestamp(1999) == 1795597057.0
    assert parse_line(D + "postfix-out/qmgr[3]: X: removed", "postfix-out").service == "qmgr"
    assert parse_line(D + "postfix-out/qmgr[3]: X: removed") is None
    assert parse_line(D + "kernel: eth0 up") is None
    assert parse_line("garbage") is None


def test_client_domain() -> None:
    assert client_domain("mail.sub.example.com[192.0.2.1]") == "example.com"
    assert client_domain("mx.example.co.uk[192.0.2.1]") == "example.co.uk"
    assert client_domain("a.b.example.de[192.0.2.1]") == "a.b.example.de"
    assert client_domain("unknown[2001:db8::1]") == "2001:db8::1"


# -- the recorded logs of Postfix 3.7.11 ------------------------------------------------------------
def test_corpus_grand_totals_as_pflogsumm() -> None:
    assert corpus().totals() == {
        "received": 47, "delivered": 39, "forwarded": 0, "deferred": 2, "deferrals": 4,
        "bounced": 4, "rejected": 32, "reject_warnings": 0, "held": 1, "discarded": 2,
        "bytes_received": 17332, "bytes_delivered": 34982, "senders": 7,
        "sending_domains": 4, "recipients": 7, "recipient_domains": 2}


def test_corpus_report_sections_as_pflogsumm() -> None:
    s = corpus()
    text = s.report()
    assert s.reject_percent == 43 and s.discard_percent == 2
    assert text.startswith("\nGrand Totals\n------------\nmessages\n\n     47   received\n")
    assert "      2   deferred  (4  deferrals)\n" in text
    assert "     32   rejected (43%)\n" in text
    assert ("\nHost/Domain Summary: Message Delivery \n--------------------------------------\n"
            " sent cnt  bytes   defers   avg dly max dly host/domain\n"
            " -------- -------  -------  ------- ------- -----------\n"
            "     37    34244        0     0.0 s    0.0 s  example.com\n"
            "      2      738        4     0.0 s    3.1 s  other.org\n") in text
    assert ("\nmessage deferral detail\n-----------------------\n  smtp (total: 4)\n"
            "         4   127.0.0.1[127.0.0.1]:2599: Connection refused\n") in text
    assert ("\nmessage bounce detail (by relay)\n--------------------------------\n"
            "  local (total: 4)\n         2   unknown user: \"nosuch\"\n"
            "         1   File too large\n         1   unknown user: \"nosuchuser\"\n") in text
    assert ("    Relay access denied (total: 10)\n          10   localhost\n"
            "    Sender address rejected: Access denied (total: 1)\n           1   bad@example.net\n"
            ) in text
    assert "  MAIL\n    5.3.4 Message size exceeds fixed limit (total: 1)\n" in text
    assert "\nmessage reject warning detail: none\n" in text
    assert ("\nFatal Errors\n------------\n  local (total: 1)\n         1   configuration error: "
            "mailbox_size_limit is smaller than message...\n") in text
    assert text.endswith("\nMaster daemon messages\n----------------------\n"
                         "      1   daemon started -- version 3.7.11, configuration /etc/postfix\n")
    assert "    0800-0900          21         15          0          2         26 \n" in text


def test_reject_reasons_and_hours() -> None:
    s = corpus()
    assert s.reject_reasons().most_common(2) == [
        ("Relay access denied", 10),
        ("Recipient address rejected: User unknown in local recipient table", 8)]
    assert sum(s.per_hour["received"]) == 47 and s.per_hour["received"][8:10] == [21, 26]
    assert sum(s.per_hour["rejected"]) == 32 + 1 + 2        # rejects, holds, discards


# -- counting rules -----------------------------------------------------------------------------------
def test_retries_counted_once_deferrals_every_time() -> None:
    log = [D + "postfix/smtpd[1]: AAA111: client=mx.example.org[192.0.2.1]",
           D + "postfix/qmgr[2]: AAA111: from=<Ann@Example.ORG>, size=500, nrcpt=1 (queue active)",
           D + "postfix/smtp[3]: AAA111: to=<u@other.org>, relay=none, delay=1, delays=1/0/0/0, "
               "dsn=4.4.1, status=deferred (connect to other.org[192.0.2.9]:25: Connection refused)",
           "Nov 25 10:00:00 mail postfix/qmgr[2]: AAA111: from=<Ann@Example.ORG>, size=500, nrcpt=1 "
           "(queue active)",
           "Nov 25 10:00:00 mail postfix/smtp[3]: AAA111: to=<u@other.org>, relay=none, delay=3601, "
           "dsn=4.4.1, status=deferred (host other.org[192.0.2.9] said: 450 4.2.0 try later (in "
           "reply to RCPT TO command))",
           "Nov 25 11:00:00 mail postfix/smtp[3]: AAA111: to=<u@other.org>, relay=other.org[192.0.2.9]"
           ":25, delay=7201, delays=7200/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X)",
           "Nov 25 11:00:00 mail postfix/qmgr[2]: AAA111: removed"]
    s = summarize(log)
    assert (s.received, s.deferred, s.deferrals, s.delivered) == (1, 1, 2, 1)
    assert s.bytes_received == 500 and s.bytes_delivered == 500
    assert s.senders == {"Ann@example.org": 1} and s.sending_domains == {"example.org": 1}
    d = s.recipient_domains["other.org"]
    assert (d.sent, d.defers, d.delay_max) == (1, 2, 7201.0)
    # as pflogsumm: the reason ends at the first ")", "said:" and the reply code go
    assert s.deferral_detail["smtp"] == {"other.org[192.0.2.9]:25: Connection refused": 1,
                                         "4.2.0 try later (in reply to RCPT TO command": 1}
    assert " 2.0 h  other.org\n" in s.report()


def test_bounces_generated_here_are_not_received_and_no_size() -> None:
    log = [D + "postfix/pickup[1]: BBB222: uid=0 from=<root>",
           D + "postfix/qmgr[2]: BBB222: from=<root@example.com>, size=300, nrcpt=1 (queue active)",
           D + "postfix/qmgr[2]: CCC333: from=<>, size=2000, nrcpt=1 (queue active)",
           D + "postfix/local[4]: CCC333: to=<root@example.com>, relay=local, delay=0, "
               "delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)",
           D + "postfix/local[4]: DDD444: to=<x@example.com>, relay=local, delay=0, dsn=2.0.0, "
               "status=sent (delivered to mailbox)",
           D + "postfix/local[4]: EEE555: to=<y@example.com>, relay=local, delay=0, dsn=2.0.0, "
               "status=sent (forwarded as FFF666)"]
    s = summarize(log)
    assert (s.received, s.delivered, s.forwarded, s.bytes_received, s.bytes_delivered) == \
           (1, 2, 1, 300, 2000)
    assert s.senders == {"root@example.com": 1}
    assert s.no_size == {"DDD444": "x@example.com"}
    assert "\nMessages with no size data\n--------------------------\n DDD444  x@example.com\n" \
           in s.report()


def test_restriction_actions_and_cleanup_checks() -> None:
    log = [D + "postfix/smtpd[1]: NOQUEUE: reject_warning: RCPT from x[192.0.2.1]: 554 5.7.1 "
               "<a@b.c>: Relay access denied; from=<s@d.e> to=<a@b.c> proto=ESMTP helo=<x>",
           D + "postfix/smtpd[1]: AAA111: hold: RCPT from x[192.0.2.1]: <a@b.c>: Recipient address "
               "triggers HOLD action; from=<s@d.e> to=<a@b.c> proto=ESMTP helo=<x>",
           D + "postfix/cleanup[5]: AAA111: reject: header Subject: BUY NOW from x[192.0.2.1]; "
               "from=<s@d.e> to=<a@b.c> proto=ESMTP helo=<x>: 550 5.7.1 spam",
           D + "postfix/cleanup[5]: AAA111: warning: body funny text from x[192.0.2.1]; from=<s@d.e>"]
    s = summarize(log)
    assert (s.rejected, s.reject_warnings, s.held, s.discarded) == (1, 2, 1, 0)
    assert s.rejects == {"cleanup": {"header": {"Subject: BUY NOW": 1}}}
    assert s.reject_warning_detail["RCPT"]["Relay access denied"] == {"x": 1}
    assert s.reject_warning_detail["cleanup"]["body"] == {"funny text": 1}
    assert s.holds["RCPT"]["Recipient address triggers HOLD action"] == {"x": 1}
    assert sum(s.per_hour["rejected"]) == 4


def test_large_numbers_get_units() -> None:
    log = [D + "postfix/smtpd[1]: AAA111: client=x[192.0.2.1]",
           D + "postfix/qmgr[2]: AAA111: from=<a@b.c>, size=2000000, nrcpt=1 (queue active)"]
    assert "   1953k  bytes received\n" in summarize(log).report()


def test_two_days_average_per_hour() -> None:
    log = [f"Nov {d} 08:{m:02d}:00 mail postfix/smtpd[1]: Q{d}{m:04d}: client=x[192.0.2.1]"
           for d in (24, 25) for m in range(3 if d == 24 else 2)]
    s = summarize(log, year=2025)
    text = s.report()
    assert s.days == 2
    assert "    Nov 24 2025         3          0          0          0          0 \n" in text
    assert "\nPer-Hour Traffic Daily Average\n" in text
    assert "    0800-0900           3          0" in text       # 5 / 2 + 0.5, cut


def test_report_options() -> None:
    s = corpus()
    text = format_report(s, top_hosts=1, top_users=2, detail=1, quiet=True)
    assert "Host/Domain Summary: Message Delivery (top 1)" in text
    assert "other.org" not in text.split("Host/Domain Summary: Messages Received")[0].split(
        "(top 1)")[1]
    assert "\ntop 2 Senders by message count\n" in text
    assert "  smtp (top 1) (total: 4)\n" in text
    assert "reject warning detail" not in text                  # -q: no empty sections
    first = format_report(s, problems_first=True)
    assert first.index("message reject detail") < first.index("Per-Hour Traffic")
    assert "Host/Domain" not in format_report(s, top_hosts=0)


# -- the command ----------------------------------------------------------------------------------------
def test_cli_reads_the_hosts_log_by_default(tmp_path: Path) -> None:
    h = init_host(tmp_path / "mx", users=["peter"])
    s = h.session()
    s.send("EHLO client.example.org")
    s.send("MAIL FROM:<alice@example.org>")
    s.send("RCPT TO:<nosuch@example.com>")
    s.send("QUIT")
    out, err = io.StringIO(), io.StringIO()
    assert run_command(h.root, "logsumm", [], out, err) == 0, err.getvalue()
    assert "      1   rejected (100%)\n" in out.getvalue()
    assert "User unknown in local recipient table (total: 1)\n" in out.getvalue()


def test_cli_logfile_argument_and_errors(tmp_path: Path) -> None:
    h = init_host(tmp_path / "mx")
    log = tmp_path / "mail.log"
    log.write_text(D + "postfix/smtpd[1]: AAA111: client=x[192.0.2.1]\n")
    out, err = io.StringIO(), io.StringIO()
    assert run_command(h.root, "logsumm", ["-q", str(log)], out, err) == 0
    assert "      1   received\n" in out.getvalue()
    assert "none" not in out.getvalue()
    assert run_command(h.root, "logsumm", [str(tmp_path / "nope.log")], out, err) == 1
    assert "cannot read" in err.getvalue()


@pytest.mark.parametrize("argv", [["--detail", "x"], ["--bogus"]])
def test_cli_usage_errors(tmp_path: Path, argv: list[str]) -> None:
    h = init_host(tmp_path / "mx")
    err = io.StringIO()
    assert run_command(h.root, "logsumm", argv, io.StringIO(), err) == 2
    assert err.getvalue().startswith("logsumm: ") and "usage: logsumm" in err.getvalue()


# -- the traffic generator: what it knows it sent is what the summary counts --------------------------
@pytest.fixture(scope="module")
def small_day(tmp_path_factory):
    from mailsim.traffic import LOCAL_MIX, generate, make_host
    host = make_host(tmp_path_factory.mktemp("traffic") / "mx")
    plan = generate(host, 150, seed=11, mix=LOCAL_MIX)
    from mailsim.logsumm import summarize_host
    return host, plan, summarize_host(host)


def test_generated_counts_are_the_summarys(small_day) -> None:
    host, plan, s = small_day
    assert (s.received, s.delivered, s.bounced, s.rejected) == \
           (plan.received, plan.delivered, plan.bounced, plan.rejected)
    assert plan.messages == 150 and plan.dsns > 0 and s.days == 1
    assert set(s.reject_reasons()) == {
        "Recipient address rejected: User unknown in local recipient table", "Relay access denied"}
    assert set(s.bounce_detail["local"]) == {'unknown user: "nosuchuser"', "File too large"}
    busy, quiet = sum(s.per_hour["received"][9:17]), sum(s.per_hour["received"][0:5])
    assert busy > 4 * quiet                   # office hours


def test_generator_is_deterministic(tmp_path: Path, small_day) -> None:
    from mailsim.traffic import LOCAL_MIX, generate, make_host
    host = make_host(tmp_path / "again")
    plan = generate(host, 150, seed=11, mix=LOCAL_MIX)
    assert plan == small_day[1]
    assert host.log.lines == small_day[0].log.lines


# -- figures: the data behind them ---------------------------------------------------------------------
def test_traffic_by_hour_bars(small_day) -> None:
    from mailsim.plots import STACKED, hourly_counts, traffic_by_hour
    _, _, s = small_day
    ax = traffic_by_hour(s).axes[0]
    assert [c.get_label() for c in ax.containers] == list(STACKED)
    labels, counts = hourly_counts(s)
    assert len(labels) == 24 and counts["delivered"] == s.per_hour["delivered"]
    bottom = [0] * 24
    for c, outcome in zip(ax.containers, STACKED):
        assert [p.get_height() for p in c] == counts[outcome]
        assert [p.get_y() for p in c] == bottom
        bottom = [b + v for b, v in zip(bottom, counts[outcome])]
    line = ax.get_lines()[0]
    assert line.get_label() == "received" and list(line.get_ydata()) == s.per_hour["received"]
    assert sum(counts["rejected"]) == s.rejected


def test_traffic_timeline_over_two_days() -> None:
    from mailsim.plots import hourly_counts, traffic_by_hour
    log = ["Nov 24 22:10:00 mail postfix/smtpd[1]: AAA111: client=x[192.0.2.1]",
           "Nov 25 01:10:00 mail postfix/smtpd[1]: BBB222: client=x[192.0.2.1]",
           "Nov 25 01:20:00 mail postfix/smtpd[1]: CCC333: client=x[192.0.2.1]"]
    s = summarize(log)
    labels, counts = hourly_counts(s)
    assert labels == ["Nov 24 22:00", "Nov 24 23:00", "Nov 25 00:00", "Nov 25 01:00"]
    assert counts["received"] == [1, 0, 0, 2]
    assert list(traffic_by_hour(s).axes[0].get_lines()[0].get_ydata()) == [1, 0, 0, 2]
    assert hourly_counts(s, timeline=False)[1]["received"][1] == 2


def test_queue_series_of_a_generated_day(small_day) -> None:
    from mailsim.plots import queue_series
    host, plan, _ = small_day
    qs = queue_series(host.log.lines)
    assert qs.times == sorted(qs.times) and len(qs.times) >= 2 * plan.received
    in_spool = sum(1 for q in ("incoming", "active", "deferred", "hold")
                   for p in (host.spool / q).rglob("*") if p.is_file() and not p.name.startswith("."))
    assert qs.queued[-1] == in_spool
    assert qs.peak()[1] >= 1 and max(qs.deferred) == 0


def test_queue_series_deferred_and_cleanup_rejects() -> None:
    from mailsim.plots import queue_series, queue_size
    log = [D + "postfix/cleanup[1]: AAA111: message-id=<1@x>",
           D + "postfix/cleanup[1]: BBB222: message-id=<2@x>",
           D + "postfix/cleanup[1]: BBB222: reject: header Subject: spam from x[192.0.2.1]; "
               "from=<a@b> to=<c@d> proto=ESMTP helo=<x>: 5.7.1 no",
           D + "postfix/qmgr[2]: AAA111: from=<a@b>, size=1, nrcpt=1 (queue active)",
           "Nov 25 09:00:01 mail postfix/smtp[3]: AAA111: to=<c@d.org>, relay=none, delay=1, "
           "dsn=4.4.1, status=deferred (connect to d.org[192.0.2.9]:25: Connection refused)",
           "Nov 25 09:05:00 mail postfix/qmgr[2]: CCC333: from=<>, size=1, nrcpt=1 (queue active)",
           "Nov 25 14:00:00 mail postfix/qmgr[2]: AAA111: from=<a@b>, status=expired, "
           "returned to sender",
           "Nov 25 14:00:00 mail postfix/qmgr[2]: AAA111: removed"]
    qs = queue_series(log)
    assert list(zip(qs.queued, qs.deferred)) == [(1, 0), (2, 0), (1, 0), (1, 1), (2, 1), (1, 0)]
    assert qs.times[-1] - qs.times[0] == 5 * 3600
    ax = queue_size(log).axes[0]
    queued, deferred = ax.get_lines()
    assert list(queued.get_ydata()) == qs.queued and list(deferred.get_ydata()) == qs.deferred


def test_reject_reasons_bars() -> None:
    from mailsim.plots import reject_reasons
    s = corpus()
    ax = reject_reasons(s, top=3).axes[0]
    got = [(t.get_text(), int(p.get_width())) for t, p in zip(ax.get_yticklabels(), ax.patches)]
    assert got == [("Sender address rejected: No spam please", 2),
                   ("Recipient address rejected: User unknown in local recipient table", 8),
                   ("Relay access denied", 10)]
    assert len(reject_reasons(s).axes[0].patches) == 10
    assert "no rejects" in reject_reasons(summarize([])).axes[0].get_title()


def test_cli_help_and_a_host_without_log(tmp_path: Path) -> None:
    h = init_host(tmp_path / "mx")
    out = io.StringIO()
    assert run_command(h.root, "logsumm", ["--help"], out, io.StringIO()) == 0
    assert "--detail" in out.getvalue()
    out = io.StringIO()
    assert run_command(h.root, "logsumm", [], out, io.StringIO()) == 0
    assert "      0   received\n" in out.getvalue()
