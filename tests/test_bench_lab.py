"""The lab benchmarks (mailsim.bench_lab) at tiny sizes: they deliver, check and report."""
from __future__ import annotations

import io

import pytest

from mailsim import bench_lab
from mailsim.bench_lab import Big, PostfixRun, TwoHop, big, main, print_big, print_two_hop, two_hop


def test_two_hop_delivers_every_message_and_reports(tmp_path):
    r = two_hop(20, tmp_path)
    assert (r.messages, r.delivered) == (20, 20)
    assert r.logged == {"mail": 20, "mx1": 20}
    assert r.rate > 0
    assert list(tmp_path.iterdir()) == []                 # the lab folder is removed
    out = io.StringIO()
    print_two_hop([r], PostfixRun(skipped="not installed"), out=out)
    text = out.getvalue()
    for field in ("20 messages of 1024 bytes", "spool: disk", "msgs/s", "runs:",
                  "all 20 Message-IDs once in mx1's mbox", "mail 20, mx1 20",
                  "real Postfix: not installed, skipped"):
        assert field in text, field


def test_two_hop_report_with_postfix_prints_the_ratio():
    out = io.StringIO()
    print_two_hop([TwoHop(100, 100, 0.5, {"mail": 100, "mx1": 100})],
                  PostfixRun(rates=[400.0], version="3.7.11"), out=out)
    text = out.getvalue()
    assert "real Postfix 3.7.11" in text and "400 msgs/s" in text
    assert "ratio mailsim two-hop/Postfix: 0.50" in text and "SHORT of the goal" in text


def test_two_hop_notices_a_lost_message(tmp_path, monkeypatch):
    real = bench_lab._message_ids
    monkeypatch.setattr(bench_lab, "_message_ids", lambda data: real(data)[1:])
    with pytest.raises(AssertionError, match="1 missing"):
        two_hop(5, tmp_path)


def test_big_delivers_every_message_and_reports(tmp_path):
    b = big(5, 50, tmp_path, users=2, batch=20)
    assert (b.hosts, b.messages, b.delivered) == (5, 50, 50)
    assert b.peak_mib > 0 and b.wall_seconds > 0
    out = io.StringIO()
    print_big(b, extrapolate_to=100_000, out=out)
    text = out.getvalue()
    for field in ("lab big: 5 hosts", "50 messages", "spool: disk", "wall time", "peak memory",
                  "MiB", "delivered: 50/50", "EXTRAPOLATED", "100000 messages"):
        assert field in text, field


def test_big_report_of_the_full_size_states_the_goals():
    out = io.StringIO()
    print_big(Big(1000, 100_000, 100_000, 10.0, 40.0, 1.0, 900.0, 100.0, 1000), out=out)
    text = out.getvalue()
    assert "goals (< 60 s, < 1024 MiB): time meets the goal, memory meets the goal" in text
    assert "EXTRAPOLATED" not in text


def test_command_line(tmp_path, capsys):
    assert main(["--dir", str(tmp_path), "big", "--hosts", "3", "--messages", "6",
                 "--users", "1"]) == 0
    assert "delivered: 6/6" in capsys.readouterr().out
    assert main(["--dir", str(tmp_path), "two-hop", "--messages", "3", "--runs", "1",
                 "--no-postfix"]) == 0
    out = capsys.readouterr().out
    assert "msgs/s" in out and "real Postfix: not measured" in out


@pytest.mark.skipif(bench_lab.postfix_unavailable() is not None,
                    reason=f"real Postfix: {bench_lab.postfix_unavailable()}")
def test_real_postfix_delivers_into_its_mbox():
    res = bench_lab.real_postfix(20, base=None)      # the postfix account cannot enter tmp_path
    assert res.skipped is None and len(res.rates) == 1 and res.rate > 0
