"""mailsim.logsumm against the real pflogsumm (Debian package pflogsumm).

A simulated host gets a day of seeded mail (mailsim.traffic: 1,000 SMTP
sessions, delivered / rejected at RCPT / bounced after acceptance / deferred),
then the real ``pflogsumm`` reads the host's log. Its Grand Totals must equal
mailsim.logsumm's counters and the numbers the generator knows it produced,
and the whole report must be the same text, up to the order of equal counts
(pflogsumm lists those in Perl's random hash order).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mailsim.logsumm import read_log, summarize
from mailsim.maillog import log_path
from mailsim.traffic import LOCAL_MIX, RECIPIENT_MIX, generate, make_host

GOLDEN_LOGS = Path(__file__).parent / "golden" / "postfix-3.7" / "logs"


def _pflogsumm() -> str | None:
    return shutil.which("pflogsumm") or shutil.which("pflogsumm", path="/usr/sbin:/usr/bin")


PFLOGSUMM = _pflogsumm()
pytestmark = pytest.mark.skipif(
    PFLOGSUMM is None,
    reason="pflogsumm is not installed (apt-get install pflogsumm; .ci/run installs it)")


def smtp_client_ready() -> bool:
    """Does qmgr have an smtp(8) client to defer mail for other domains with?"""
    try:
        from mailsim.smtp import SMTPClient  # noqa: F401
    except ImportError:
        return False
    return True


def run_pflogsumm(*paths: Path) -> str:
    env = dict(os.environ, LC_ALL="C", PERL_HASH_SEED="0")
    return subprocess.run([PFLOGSUMM, *map(str, paths)], capture_output=True, text=True,
                          env=env, check=True, timeout=60).stdout


def grand_totals(report: str) -> dict[str, int]:
    """The numbers of pflogsumm's Grand Totals block (counts without k/m units)."""
    block = report.split("\nPer-")[0]
    out = {}
    for label, key in (("received", "received"), ("delivered", "delivered"),
                       ("deferred", "deferred"), ("bounced", "bounced"),
                       ("rejected", "rejected"), ("held", "held"),
                       ("discarded", "discarded"), ("forwarded", "forwarded")):
        m = re.search(rf"^ +(\d+)([ km])  {label}\b", block, re.M)
        assert m and m.group(2) == " ", (label, block)
        out[key] = int(m.group(1))
    m = re.search(r"\((\d+)  deferrals\)", block)
    out["deferrals"] = int(m.group(1)) if m else 0
    return out


_COUNT_LINE = re.compile(r"^ *(\d+)[ km]  ")


def canonical(report: str) -> list[str]:
    """The report's lines, each run of count lines (a ranked list) sorted, so that two
    reports that differ only in the order of equal counts become equal."""
    lines = report.split("\n")
    out: list[str] = []
    run: list[str] = []
    for ln in lines + [""]:
        if _COUNT_LINE.match(ln):
            run.append(ln)
            continue
        out += sorted(run)
        run = []
        out.append(ln)
    return out


def assert_ranked(report: str) -> None:
    """In mailsim's report, every ranked list goes from the largest count down."""
    prev: int | None = None
    ranked = report.split("Host/Domain Summary: Message Delivery")[1]
    for ln in ranked.split("\n"):
        m = _COUNT_LINE.match(ln)
        if m:
            n = int(m.group(1))
            assert prev is None or n <= prev, ln
            prev = n
        else:
            prev = None


def pflogsumm_year(month: int) -> int:
    """The year pflogsumm gives a syslog line of ``month``: this year, or last
    year if the month is later than this one (it reads the wall clock)."""
    now = time.localtime()
    return now.tm_year - 1 if month > now.tm_mon else now.tm_year


def test_a_day_of_mail(tmp_path: Path) -> None:
    """1,000 sessions over one simulated day (one test: the day takes seconds to make)."""
    host = make_host(tmp_path / "mx")
    smtp = smtp_client_ready()
    plan = generate(host, 1000, seed=2026, mix=RECIPIENT_MIX if smtp else LOCAL_MIX)
    path = log_path(host)
    mine = summarize(read_log(path), year=pflogsumm_year(11))
    report = run_pflogsumm(path)

    # the traffic is mixed
    assert plan.messages == 1000 and mine.days == 1
    assert plan.received >= 800 and plan.rejected >= 100 and plan.bounced >= 50
    assert all(plan.kinds[k] for k in ("deliver", "unknown", "relay", "alias", "quota"))

    # pflogsumm, mailsim.logsumm and the generator count the same
    theirs = grand_totals(report)
    for key in ("received", "delivered", "deferred", "bounced", "rejected", "deferrals"):
        assert getattr(mine, key) == theirs[key], key
    assert (theirs["received"], theirs["delivered"], theirs["bounced"], theirs["rejected"]) == \
           (plan.received, plan.delivered, plan.bounced, plan.rejected)
    assert theirs["deferred"] == plan.deferred and theirs["deferrals"] >= plan.deferrals
    assert theirs["held"] == theirs["discarded"] == theirs["forwarded"] == 0

    # mail for other domains is deferred (Connection refused), when there is an smtp(8)
    if smtp:
        assert plan.smtp_client and plan.remote > 50
        assert theirs["deferred"] == plan.remote
        assert any("Connection refused" in r for c in mine.deferral_detail.values() for r in c)
    else:
        assert plan.remote == theirs["deferred"] == 0

    # and the whole report reads the same
    text = mine.report()
    assert_ranked(text)
    assert canonical(text) == canonical(report)


def test_conformance_logs_read_alike(tmp_path: Path) -> None:
    """The logs real Postfix 3.7.11 wrote while the corpus was recorded (every line type)."""
    logs = sorted(GOLDEN_LOGS.glob("*.log"))
    assert len(logs) > 30
    report = run_pflogsumm(*logs)
    lines = [ln for p in logs for ln in read_log(p)]
    mine = summarize(lines, year=pflogsumm_year(11))
    assert canonical(mine.report()) == canonical(report)
    assert grand_totals(report)["rejected"] == mine.rejected > 0


def test_two_days_per_day_table_and_daily_average(tmp_path: Path) -> None:
    host = make_host(tmp_path / "mx")
    generate(host, 240, seed=5, span=2 * 86400 - 600, mix=LOCAL_MIX)
    path = log_path(host)
    report = run_pflogsumm(path)
    mine = summarize(read_log(path), year=pflogsumm_year(11))
    assert mine.days == 2
    assert "Per-Day Traffic Summary" in report and "Per-Hour Traffic Daily Average" in report
    assert canonical(mine.report()) == canonical(report)
