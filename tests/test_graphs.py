"""Decision graphs: the graph's content, and both renderers (dot and matplotlib)."""
from __future__ import annotations

import shutil

import networkx as nx
import pytest

from mailsim import graphs
from mailsim.graphs import decide, decide_each, decision_graph, deciding_step, render, to_text

RCPTS = ["alice@example.com", "someone@example.net", "nosuch@example.com"]


@pytest.fixture
def no_dot(monkeypatch):
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "dot" else real(name, *a, **k))


def test_decide_one_decision_per_recipient(host):
    ds = decide(host, RCPTS, client="192.0.2.99")
    assert [d.subject for d in ds] == RCPTS
    assert [d.reply.code for d in ds] == [250, 454, 550]
    assert ds[1].context == {"client": "192.0.2.99", "helo": "client.example.org",
                             "sender": "someone@example.org"}
    assert deciding_step(ds[1]).element == "defer_unauth_destination"
    assert deciding_step(ds[2]).restriction_list == "smtpd_reject_unlisted_recipient"
    assert deciding_step(ds[0]) is None                       # nothing refused, nothing permitted
    assert deciding_step(decide(host, ["someone@example.net"])[0]).element == "permit_mynetworks"


def test_graph_structure(host):
    g = decision_graph(decide(host, RCPTS, client="192.0.2.99"))
    assert isinstance(g, nx.DiGraph)
    kinds = nx.get_node_attributes(g, "kind")
    assert {"request", "list", "element", "lookup", "class", "reply"} <= set(kinds.values())
    assert [n for n, k in kinds.items() if k == "request"] == ["r0", "r1", "r2"]
    # the main chain of request 1, in evaluation order
    chain = ["r1"]
    while True:
        nxt = [v for _, v, a in g.out_edges(chain[-1], data=True) if a["kind"] == "next"]
        if not nxt:
            break
        chain += nxt
    assert [g.nodes[n]["kind"] for n in chain] == ["request", "list", "element", "element",
                                                     "element", "reply"]
    assert g.nodes[chain[1]]["label"] == "smtpd_relay_restrictions"
    assert g.nodes[chain[4]]["decided"] and g.nodes[chain[4]]["verdict"] == "DEFER"
    assert g.nodes["r1.reply"]["code"] == 454
    assert g.nodes["r1.class"]["label"].startswith("address class: default")
    orders = [g.edges[u, v]["order"] for u, v in zip(chain, chain[1:])]
    assert orders == sorted(orders)
    lookups = [a for n, a in g.nodes(data=True) if a["kind"] == "lookup" and a["request"] == 2]
    assert [l["hit"] for l in lookups] == [False] * 4
    assert all(a["fill"].startswith("#") for _, a in g.nodes(data=True))


def test_to_text(host):
    text = to_text(decision_graph(decide(host, RCPTS[2:], client="192.0.2.99")))
    assert text.splitlines()[0].startswith("RCPT TO:<nosuch@example.com>  (client 192.0.2.99")
    assert "    recipient tables -> REJECT  <== decided" in text
    assert "      lookup hash:/etc/aliases 'nosuch' -> not found" in text
    assert text.splitlines()[-1] == ("  => 550 5.1.1 <nosuch@example.com>: Recipient address rejected: "
                                     "User unknown in local recipient table")


def test_access_table_lookup_shown(make_host):
    h = make_host(main_cf={"smtpd_recipient_restrictions": "check_sender_access hash:/etc/postfix/senders"},
                  files={"senders": "spammer@example.org REJECT go away\n"})
    ds = decide_each(h, "sender", ["spammer@example.org", "friend@example.org"], recipient="alice@example.com")
    assert [d.reply.code for d in ds] == [554, 250]
    text = to_text(decision_graph(ds))
    assert "lookup hash:/etc/postfix/senders 'spammer@example.org' -> 'REJECT go away'" in text
    assert "check_sender_access hash:/etc/postfix/senders -> REJECT" in text


def test_decide_each_helo_and_client(make_host):
    h = make_host(main_cf={"smtpd_helo_restrictions": "reject_non_fqdn_helo_hostname"})
    ds = decide_each(h, "helo", ["localhost", "client.example.org"], recipient="alice@example.com")
    assert [d.reply.code for d in ds] == [504, 250]
    assert "smtpd_helo_restrictions" in to_text(decision_graph(ds[:1]))
    with pytest.raises(ValueError):
        decide_each(h, "port", ["25"])


def test_refused_before_rcpt(make_host):
    h = make_host(main_cf={"smtpd_delay_reject": "no", "smtpd_client_restrictions": "reject"})
    ds = decide(h, ["alice@example.com", "bob@example.com"], client="192.0.2.99")
    assert len(ds) == 2 and all(d.reply is not None and d.reply.code >= 500 for d in ds)
    assert to_text(decision_graph(ds))


def _check_svg(svg: str) -> None:
    assert svg.startswith("<svg")
    for volatile in ("<!--", "<?xml", "<dc:date", "<metadata", "/tmp/"):
        assert volatile not in svg


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_render_with_dot(host):
    g = decision_graph(decide(host, RCPTS, client="192.0.2.99"))
    assert graphs.have_dot()
    fig = render(g)
    assert fig.engine == "dot"
    _check_svg(fig.svg)
    assert "RCPT TO:&lt;someone@example.net&gt;" in fig.svg
    assert render(g, "dot").svg == fig.svg


def test_render_without_dot(host, no_dot):
    g = decision_graph(decide(host, RCPTS, client="192.0.2.99"))
    assert not graphs.have_dot()
    fig = render(g)
    assert fig.engine == "matplotlib"
    _check_svg(fig.svg)
    assert "RCPT TO:&lt;someone@example.net&gt;" in fig.svg       # text kept as text
    assert render(g, "matplotlib").svg == fig.svg                  # no random ids
    with pytest.raises(RuntimeError, match="dot is not installed"):
        render(g, "dot")
    with pytest.raises(ValueError):
        render(g, "png")


def test_text_form_same_for_both_engines(host, monkeypatch):
    g = decision_graph(decide(host, RCPTS, client="192.0.2.99"))
    expected = "<decision graph: alice@example.com 250, someone@example.net 454, nosuch@example.com 550>"
    mpl = render(g, "matplotlib")
    assert repr(mpl) == expected
    monkeypatch.setattr(graphs, "have_dot", lambda: True)
    if shutil.which("dot"):
        assert repr(render(g, "dot")) == expected


def test_figure_in_ipython(host, tmp_path):
    from IPython.core.interactiveshell import InteractiveShell
    fig = render(decision_graph(decide(host, RCPTS[:1])), "matplotlib")
    data = InteractiveShell.instance().display_formatter.format(fig)[0]
    assert data["text/plain"] == "<decision graph: alice@example.com 250>"
    assert data["image/svg+xml"].startswith("<svg")
    fig.save(tmp_path / "g.svg")
    assert (tmp_path / "g.svg").read_text() == fig.svg
