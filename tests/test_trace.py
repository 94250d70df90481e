"""Traces of a message across a lab's hosts (mailsim.lab.trace) and their graphs
(mailsim.route_graphs): the queue ids chained hop by hop as the logs and the
Received headers tell it, the retry timeline of a deferred message at its
simulated instants, the graphs' nodes and edges, stable text, the CLI, and
pictures drawn by Graphviz's dot and, with dot hidden, by matplotlib.
"""
from __future__ import annotations

import calendar
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailsim import graphs, route_graphs as rg
from mailsim.lab import Lab, LabError
from mailsim.lab.cli import main as lab_main
from mailsim.lab.trace import parse_line, trace

ROOT = Path(__file__).resolve().parent.parent


def at(hhmm: str) -> float:
    """2026-11-25 HH:MM UTC, the shipped labs' day."""
    h, m = map(int, hhmm.split(":"))
    return float(calendar.timegm((2026, 11, 25, h, m, 0, 0, 0, 0)))


@pytest.fixture
def no_dot(monkeypatch):
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "dot" else real(name, *a, **k))


def two_domains(root: Path) -> tuple[Lab, str]:
    lab = Lab.init(root, from_lab="two-domains")
    r = lab.send("alice@example.com", ["peter@example.org", "nosuch@example.org"])
    assert r.ok
    return lab, r.queue_id


def backup_mx(root: Path) -> Lab:
    """mx1 down for an hour: mail hands the message to the backup MX mx2, which retries."""
    lab = Lab.init(root, from_lab="backup-mx")
    lab.stop("mx1")
    assert lab.send("alice@example.com", "peter@example.org").ok
    lab.run(until="1h")
    lab.start("mx1")
    lab.run()
    return lab


def qids(lab: Lab, name: str) -> list[str]:
    """Queue ids in the order they first appear in a host's log."""
    out: list[str] = []
    for ln in lab.log(name):
        m = re.search(r"\]: ([0-9A-F]{10,12}): ", ln)
        if m and m.group(1) not in out:
            out.append(m.group(1))
    return out


# -- two hops -------------------------------------------------------------------------------------
def test_two_hops_by_message_id_and_by_either_queue_id(tmp_path):
    lab, qid = two_domains(tmp_path / "lab")
    mx1_qid = qids(lab, "mx1")[0]
    t = trace(lab, "<1.1@two-domains.lab>")
    assert t.route() == [f"mail/{qid}", f"mx1/{mx1_qid}"]
    assert t.message_id == "<1.1@two-domains.lab>" and t.sender == "alice@example.com"
    for ident in ("1.1@two-domains.lab", qid, mx1_qid, f" {mx1_qid} "):
        assert trace(lab, ident).route() == t.route(), ident
    first, second = t.hops
    assert (first.source, first.client) == ("smtpd", "localhost[127.0.0.1]")
    assert (second.client, second.previous) == ("mail.example.com[127.0.0.2]", 0)
    sent = [d for d in first.deliveries if d.status == "sent"]
    assert [(d.recipient, d.relay, d.target_host, d.next_queue_id, d.next_hop) for d in sent] == [
        ("peter@example.org", "mx1.example.org[127.0.0.3]:25", "mx1", mx1_qid, 1)]
    assert sent[0].reply == f"250 2.0.0 Ok: queued as {mx1_qid}"
    # the lines an administrator greps for, on each host
    assert [ln.split(": ", 2)[1] for ln in second.lines][:1] == [mx1_qid]
    assert any(f"{qid}: client=localhost[127.0.0.1]" in ln for ln in first.lines)
    assert first.lines[-1].endswith(f"{qid}: removed") and second.removed is not None
    # the decision at each hop: trivial-rewrite's class and next hop, the reply
    assert [(r.klass, r.transport, r.nexthop) for r in first.routing] == [
        ("default", "smtp", "example.org"), ("default", "smtp", "example.org")]
    assert [(r.klass, r.transport) for r in second.routing] == [("local", "local")]
    assert second.deliveries[0].reply == "delivered to mailbox"
    # the refused recipient: mail's bounce, and what mx1's smtpd logged
    bounced = next(d for d in first.deliveries if d.status == "bounced")
    assert bounced.recipient == "nosuch@example.org" and bounced.target_host == "mx1"
    assert bounced.remote_reject.startswith("NOQUEUE: reject: RCPT from mail.example.com[127.0.0.2]: "
                                            "550 5.1.1 <nosuch@example.org>: Recipient address rejected")
    assert first.notifications == [f"sender non-delivery notification: {qids(lab, 'mail')[1]}"]
    # the delivered copy's Received headers name the same queue ids
    assert [(r.by, r.id, r.hop) for r in t.received] == [
        ("mx1.example.org", mx1_qid, 1), ("mail.example.com", qid, 0)]


def test_unknown_ident_is_a_clear_error(tmp_path):
    lab, _ = two_domains(tmp_path / "lab")
    with pytest.raises(LabError, match=r"no queue id or Message-ID 'nosuch' in the log of any host "
                                        r"\(mail, mx1\)"):
        trace(lab, "nosuch")


def test_log_years_and_foreign_lines():
    dec = parse_line("h", 0, "Dec 31 23:59:59 h postfix/qmgr[1]: 0AB12C: removed", at("09:00"))
    assert dec.time == calendar.timegm((2025, 12, 31, 23, 59, 59, 0, 0, 0))
    assert parse_line("h", 0, "Nov 25 09:00:00 h kernel: eth0 up", at("09:00")) is None
    noq = parse_line("h", 0, "Nov 25 09:00:00 h postfix/smtpd[3]: NOQUEUE: reject: RCPT ...", at("09:00"))
    assert noq.qid is None and noq.daemon == "smtpd"


# -- a deferred message ----------------------------------------------------------------------------
def test_deferred_message_timeline(tmp_path):
    lab = backup_mx(tmp_path / "lab")
    t = trace(lab, "<1.1@backup-mx.lab>")
    assert [h.host for h in t.hops] == ["mail", "mx2", "mx1"]
    mail, mx2, mx1 = t.hops
    assert mail.deliveries[-1].next_queue_id == mx2.queue_id
    assert mx2.deliveries[-1].next_queue_id == mx1.queue_id
    assert mail.deliveries[0].context == [
        f"Nov 25 09:00:00 mail postfix/smtp[{mail.deliveries[0].context[0].split('[')[1].split(']')[0]}]: "
        "connect to mx1.example.org[127.0.0.3]:25: Connection refused"]
    assert mail.deliveries[0].tried == [{
        "server": "mx1.example.org", "addr": "127.0.0.3", "host": "mx1",
        "text": "connect to mx1.example.org[127.0.0.3]:25: Connection refused"}]
    # mx2 retries as its qmgr schedules it (test_lab: 5, 10, 20, 40 minutes ...) until mx1 is back
    attempts = mx2.attempts("peter@example.org")
    want = ["09:00", "09:05", "09:10", "09:20", "09:40", "10:20"]
    assert [d.time for d in attempts] == [at(x) for x in want]
    assert [d.status for d in attempts] == ["deferred"] * 5 + ["sent"]
    assert {d.relay for d in attempts[:5]} == {"none"} and attempts[-1].transport == "relay"
    assert attempts[0].reply == "connect to mx1.example.org[127.0.0.3]:25: Connection refused"
    assert attempts[0].target_host == "mx1"
    # ... which is what mx2's own log says
    logged = [ln[7:12] for ln in lab.log("mx2") if "to=<peter@example.org>" in ln]
    assert logged == want
    assert [(h.name, r) for h, r in t.retried()] == [(mx2.name, "peter@example.org")]
    rows = rg.timeline_rows(t)
    assert [(n, r, [s for _, s, _ in a]) for n, r, a in rows] == [
        (mail.name, "peter@example.org", ["sent"]),
        (mx2.name, "peter@example.org", ["deferred"] * 5 + ["sent"]),
        (mx1.name, "peter@example.org", ["sent"])]
    assert [x for x, _, _ in rows[1][2]] == [at(x) for x in want]
    text = t.to_text(log=False)
    assert (f"retries of {mx2.name} for peter@example.org: 5 deferred, then sent\n"
            "   Nov 25 09:00:00  +0s       deferred connect to mx1.example.org[127.0.0.3]:25: "
            "Connection refused\n") in text
    assert "   Nov 25 10:20:00  +1h20m    sent     250 2.0.0 Ok: queued as " in text
    assert [r.hop for r in t.received] == [2, 1, 0]
    pic = rg.retry_timeline(t)
    assert pic.engine == "matplotlib" and pic.svg.startswith("<svg")
    assert repr(pic) == (f"<retry timeline: {mx2.name} peter@example.org: 5 deferred, "
                         "then sent at +1h20m>")
    assert pic.png().startswith(b"\x89PNG")


def test_still_queued_message(tmp_path):
    lab = Lab.init(tmp_path / "lab", from_lab="two-domains")
    lab.stop("mx1")
    r = lab.send("alice@example.com", "peter@example.org")
    lab.run(until="30m")
    t = trace(lab, r.queue_id)
    (hop,) = t.hops
    assert hop.removed is None and hop.queue == "deferred"
    assert [d.time for d in hop.deliveries] == [at(x) for x in ("09:00", "09:05", "09:10", "09:20")]
    (h, last), = t.outcomes()
    assert last.status == "deferred"
    assert "peter@example.org: deferred in mail's deferred queue since Nov 25 09:20:00" in t.to_text()
    g = rg.route_graph(t)
    assert g.nodes[hop.name]["fill"] == rg.COLOURS["hop-queued"]
    (u, v, a), = [e for e in g.edges(data=True) if e[2]["kind"] == "deferred"]
    assert (u, v, a["style"], len(a["times"])) == (hop.name, "mx1", "dashed", 4)


# -- stable output --------------------------------------------------------------------------------
def test_text_and_json_are_stable(tmp_path):
    a, qa = two_domains(tmp_path / "a")
    b, qb = two_domains(tmp_path / "b")
    assert qa == qb
    ta, tb = trace(a, qa), trace(b, qb)
    assert ta.to_text() == tb.to_text() and ta.to_json() == tb.to_json()
    assert rg.to_text(rg.route_graph(ta)) == rg.to_text(rg.route_graph(tb))
    assert str(tmp_path) not in ta.to_text() + ta.to_json()
    text = ta.to_text()
    assert text.splitlines()[:3] == [
        "message <1.1@two-domains.lab> from <alice@example.com>: 2 hops, mail -> mx1",
        "  nosuch@example.org: bounced by mail at Nov 25 09:00:00 (host mx1.example.org[127.0.0.3] "
        "said: 550 5.1.1 <nosuch@example.org>: Recipient address rejected: User unknown in local "
        "recipient table (in reply to RCPT TO command))",
        "  peter@example.org: delivered to mailbox on mx1 at Nov 25 09:00:00"]
    data = json.loads(ta.to_json())
    assert data["route"] == ta.route()
    assert [h["n"] for h in data["hops"]] == [1, 2] and data["hops"][1]["previous"] == 1
    assert data["hops"][0]["deliveries"][-1]["next_hop"] == 2
    assert data["hops"][0]["arrived_at"] == "2026-11-25 09:00:00 UTC"


# -- graphs ---------------------------------------------------------------------------------------
def test_network_graph(tmp_path):
    lab = Lab.init(tmp_path / "lab", from_lab="backup-mx")
    lab.stop("mx1")
    g = rg.network_graph(lab)
    assert {n: a["kind"] for n, a in g.nodes(data=True)} == {
        "mail": "host", "mx1": "host", "mx2": "host",
        "domain:example.com": "domain", "domain:example.org": "domain"}
    assert sorted((u, v, a["label"]) for u, v, a in g.edges(data=True)) == [
        ("domain:example.com", "mail", "MX 10"), ("domain:example.org", "mx1", "MX 10"),
        ("domain:example.org", "mx2", "MX 20")]
    assert g.nodes["mx1"]["up"] is False and "(stopped)" in g.nodes["mx1"]["label"]
    sm = rg.network_graph(Lab.init(tmp_path / "sm", from_lab="smarthost"))
    kinds = sorted((u, v, a["kind"]) for u, v, a in sm.edges(data=True) if a["kind"] != "mx")
    assert kinds == [("isp", "mx1", "link"), ("office", "isp", "link"), ("office", "isp", "relayhost")]
    assert lab.dns.queries == []                  # drawing asks no question of the DNS


def test_route_graph(tmp_path):
    t = trace(backup_mx(tmp_path / "lab"), "1.1@backup-mx.lab")
    mail, mx2, mx1 = (h.name for h in t.hops)
    g = rg.route_graph(t)
    assert {n: a["kind"] for n, a in g.nodes(data=True)} == {
        "client:localhost[127.0.0.1]": "client", mail: "hop", mx2: "hop", mx1: "hop",
        "mx1": "unreached", f"{mx1}:peter@example.org": "mailbox"}
    edges = [(u, v, a["kind"], a["style"]) for u, v, a in
             sorted(g.edges(data=True), key=lambda e: e[2]["order"])]
    assert edges == [("client:localhost[127.0.0.1]", mail, "submit", "solid"),
                     (mail, "mx1", "refused", "dashed"),        # mail tried mx1 first, then mx2
                     (mail, mx2, "smtp", "solid"),
                     (mx2, "mx1", "deferred", "dashed"),
                     (mx2, mx1, "smtp", "solid"),
                     (mx1, f"{mx1}:peter@example.org", "local", "solid")]
    deferred = [a for u, _, a in g.edges(data=True) if a["kind"] == "deferred" and u == mx2]
    assert deferred[0]["times"] == [at(x) for x in ("09:00", "09:05", "09:10", "09:20", "09:40")]
    assert deferred[0]["label"].startswith("deferred x5 Nov 25 09:00:00 - 09:40:00\n")
    hand_off = next(a for u, v, a in g.edges(data=True) if (u, v) == (mx2, mx1))
    assert hand_off["label"] == (f"Nov 25 10:20:00 relay\npeter@example.org\n250 2.0.0 Ok: queued as "
                                 f"{t.hops[2].queue_id}")
    assert rg.to_text(g).splitlines()[0] == "<route graph: mail -> mx2 -> mx1; 1 delivered>"


# -- pictures: dot, the fallback, SVG and PNG ------------------------------------------------------
def _check_svg(svg: str) -> None:
    assert svg.startswith("<svg")
    for volatile in ("<!--", "<?xml", "<dc:date", "<metadata", "/tmp/"):
        assert volatile not in svg


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_render_with_dot(tmp_path):
    lab, qid = two_domains(tmp_path / "lab")
    g = rg.route_graph(trace(lab, qid))
    pic = rg.render(g)
    assert pic.engine == "dot"
    _check_svg(pic.svg)
    assert qid in pic.svg and "queued as" in pic.svg
    assert rg.render(g, "dot").svg == pic.svg
    assert pic.png().startswith(b"\x89PNG")
    pic.save(tmp_path / "r.svg")
    pic.save(tmp_path / "r.png")
    assert (tmp_path / "r.svg").read_text() == pic.svg
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    net = rg.render(rg.network_graph(lab))
    assert net.engine == "dot" and "mx1.example.org" in net.svg
    assert repr(net) == "<network graph: 2 hosts (2 up), 1 links, 2 MX domains>"


def test_render_without_dot(tmp_path, no_dot):
    lab, qid = two_domains(tmp_path / "lab")
    g = rg.route_graph(trace(lab, qid))
    assert not graphs.have_dot()
    pic = rg.render(g)
    assert pic.engine == "matplotlib"
    _check_svg(pic.svg)
    assert qid in pic.svg                                  # text kept as text
    assert rg.render(g, "matplotlib").svg == pic.svg       # no random ids
    assert pic.png().startswith(b"\x89PNG")
    assert repr(pic) == "<route graph: mail -> mx1; 1 delivered>"
    assert rg.render(rg.network_graph(lab)).engine == "matplotlib"
    with pytest.raises(RuntimeError, match="dot is not installed"):
        rg.render(g, "dot")
    with pytest.raises(ValueError):
        rg.render(g, "png")
    with pytest.raises(ValueError, match="save as .svg or .png"):
        pic.save(tmp_path / "r.pdf")


def test_text_form_same_for_both_engines(tmp_path):
    lab, qid = two_domains(tmp_path / "lab")
    g = rg.route_graph(trace(lab, qid))
    texts = {repr(rg.render(g, "matplotlib"))}
    if shutil.which("dot"):
        texts.add(repr(rg.render(g, "dot")))
    assert texts == {"<route graph: mail -> mx1; 1 delivered>"}


# -- the command line ------------------------------------------------------------------------------
def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return lab_main(None, list(argv), out, err), out.getvalue(), err.getvalue()


def test_cli_trace(tmp_path):
    d = str(tmp_path / "lab")
    assert cli(d, "init", "--from", "two-domains")[0] == 0
    rc, out, _ = cli(d, "send", "--from", "alice@example.com", "--to", "peter@example.org", "--json")
    qid = json.loads(out)["queue_id"]
    rc, text, _ = cli(d, "trace", "<1.1@two-domains.lab>")
    assert rc == 0 and text == trace(Lab.load(d), qid).to_text()
    rc, out, _ = cli(d, "trace", qid, "--format", "json")
    assert rc == 0 and json.loads(out)["route"][0] == f"mail/{qid}"
    rc, out, _ = cli(d, "trace", qid, "--format", "dot")
    assert rc == 0 and out.startswith("digraph route {") and f"mail\\n{qid}" in out
    rc, out, _ = cli(d, "trace", qid, "--format", "svg")
    assert rc == 0 and out.startswith("<svg")
    assert cli(d, "trace", qid, "--format", "svg", "--output", str(tmp_path / "t.svg")) == (0, "", "")
    assert (tmp_path / "t.svg").read_text() == out
    rc, _, err = cli(d, "trace", qid, "--format", "png")
    assert rc == 1 and "--output FILE.png" in err
    assert cli(d, "trace", qid, "--format", "png", "--output", str(tmp_path / "t.png"))[0] == 0
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    rc, _, err = cli(d, "trace", "nosuch")
    assert rc == 1 and "no queue id or Message-ID 'nosuch'" in err
    assert cli(d, "trace", qid, "--format", "pdf")[0] == 2


def test_cli_svg_where_dot_is_missing(tmp_path):
    """As tests/test_notebooks_without_dot.py does: a PATH of only the virtualenv's programs."""
    d = tmp_path / "lab"
    lab, qid = two_domains(d)
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    probe = subprocess.run([sys.executable, "-c", "import shutil; print(shutil.which('dot'))"],
                           env=env, capture_output=True, text=True)
    if probe.stdout.strip() != "None":
        pytest.skip("dot is still found on a PATH of only the virtualenv")
    r = subprocess.run([sys.executable, "-m", "mailsim", "lab", str(d), "trace", qid, "--format", "svg"],
                       env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    _check_svg(r.stdout)
    assert 'id="figure_1"' in r.stdout and qid in r.stdout      # matplotlib's, not dot's


def test_expiry_names_the_lifetime_that_applied():
    """A bounce (null sender) expires after bounce_queue_lifetime, other mail after
    maximal_queue_lifetime; the trace names the one that applied."""
    from mailsim.lab.trace import Hop, Trace
    for sender, limit in (("", "bounce_queue_lifetime"), ("bob@example.com", "maximal_queue_lifetime")):
        hop = Hop("mx1", "mx1.example.org", "ABC", 0.0, "smtpd", sender=sender, expired=86400.0)
        text = Trace("ABC", [hop]).to_text()
        assert f"expired ({limit}), returned to sender" in text, text
