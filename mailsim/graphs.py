"""Decision graphs: how smtpd decided each RCPT TO (or HELO, MAIL FROM), drawn.

Postfix walks its restriction lists left to right for every recipient
(``smtpd_client_restrictions``, ``smtpd_helo_restrictions``,
``smtpd_sender_restrictions`` again at RCPT time when ``smtpd_delay_reject =
yes``, then ``smtpd_relay_restrictions`` and ``smtpd_recipient_restrictions``,
then the recipient tables of ``smtpd_reject_unlisted_recipient``). The first
element with a verdict ends its list: ``OK``/``permit`` goes on to the next
list, a reject answers the client. Which address class trivial-rewrite gave the
domain (local, virtual alias, virtual mailbox, relay, default) is what
``reject_unauth_destination`` looks at.

This module turns the simulator's :class:`~mailsim.smtpd.check.Decision`
records into a graph and draws it:

* :func:`decide` -- one in-process session: EHLO, MAIL FROM, one RCPT TO per
  recipient; returns one Decision per recipient;
* :func:`decide_each` -- vary one thing (client, HELO name, sender, recipient);
* :func:`decision_graph` -- a :class:`networkx.DiGraph`: the request, each list
  walked, each element with its verdict, the table lookups (key and result),
  the address class, the reply; edges in evaluation order;
* :func:`render` -- an SVG picture: Graphviz's ``dot`` when it is installed,
  else networkx + matplotlib; the text form is the same one-line summary for
  both, and the SVG carries no dates, comments or random ids;
* :func:`to_text` -- the same graph as an indented tree (what notebooks
  compare under nbval).

Examples
--------
>>> import tempfile
>>> from mailsim import init_host
>>> h = init_host(tempfile.mkdtemp() + "/mx", users=["alice"])
>>> ds = decide(h, ["alice@example.com", "someone@example.net"], client="192.0.2.99")
>>> [str(d.reply) for d in ds]
['250 2.1.5 Ok', '454 4.7.1 <someone@example.net>: Relay access denied']
>>> g = decision_graph(ds)
>>> print(to_text(g.subgraph(n for n, a in g.nodes(data=True) if a["request"] == 1)))
RCPT TO:<someone@example.net>  (client 192.0.2.99, HELO client.example.org, MAIL FROM:<someone@example.org>)
  smtpd_relay_restrictions
    permit_mynetworks -> DUNNO  (192.0.2.99 is not in mynetworks (127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128))
    permit_sasl_authenticated -> DUNNO  (SASL is not active in this session)
    defer_unauth_destination -> DEFER  (example.net: address class default)  <== decided
      address class: default  (someone@example.net -> smtp:example.net)
  => 454 4.7.1 <someone@example.net>: Relay access denied
>>> render(g, engine="auto")
<decision graph: alice@example.com 250, someone@example.net 454>
"""
from __future__ import annotations

import io
import re
import shutil
from dataclasses import dataclass
from typing import Iterable

import networkx as nx

from .reply import Reply
from .smtpd.check import Decision, Step

__all__ = ["decide", "decide_each", "decision_graph", "deciding_step", "render", "to_text",
           "have_dot", "DecisionFigure", "summary", "sanitize_svg"]

#: fill colours by verdict / reply class
COLOURS = {"request": "#dbe9f6", "list": "#eeeeee", "lookup": "#fff8c5", "lookup-hit": "#ffe58f",
           "class": "#eadcf8", "OK": "#c8f0d0", "DUNNO": "#ffffff", "REJECT": "#f8c4c4",
           "DEFER": "#fde2b8", "other": "#e8e0f8",
           "2": "#c8f0d0", "3": "#dbe9f6", "4": "#fde2b8", "5": "#f8c4c4"}
_NOT_VERDICTS = ("DUNNO", "OK", "class", "restrictions")
_RESOLVING = ("reject_unauth_destination", "defer_unauth_destination", "permit_auth_destination")


# -- running the requests ---------------------------------------------------------------------
def decide(host, recipients: Iterable[str], *, client: str = "127.0.0.1",
           helo: str = "client.example.org", sender: str = "someone@example.org") -> list[Decision]:
    """One SMTP session from ``client``: EHLO ``helo``, MAIL FROM ``sender``, then one
    RCPT TO per recipient; the Decision of each RCPT, in order.

    A recipient that got no RCPT decision (the session was refused earlier, e.g. a
    HELO or sender rejected with ``smtpd_delay_reject = no``) gets the decision that
    refused the session, or a one-step decision holding the server's reply. Every
    decision has a ``context`` dict: client, helo, sender.

    >>> import tempfile
    >>> from mailsim import init_host
    >>> h = init_host(tempfile.mkdtemp() + "/mx")
    >>> d, = decide(h, ["postmaster"])
    >>> d.stage, d.subject, d.reply.code, d.steps[0].element
    ('RCPT', 'postmaster', 250, 'postmaster')
    """
    ctx = {"client": client, "helo": helo, "sender": sender}
    s = host.session(client)
    out: list[Decision] = []
    try:
        replies = []
        if not s.closed:
            replies.append(s.send(f"EHLO {helo}"))
        if not s.closed:
            replies.append(s.send(f"MAIL FROM:<{sender}>"))
        for r in recipients:
            before = len(s.decisions)
            text = s.send(f"RCPT TO:<{r}>") if not s.closed else (replies[-1] if replies else s.banner)
            new = [d for d in s.decisions[before:] if d.stage == "RCPT"]
            if new:
                d = new[-1]
                if d.reply is None and text[:3].isdigit():
                    d.reply = Reply.parse(text.split("\n")[-1])
            else:
                earlier = [d for d in s.decisions[:before] if d.action == "reject"]
                if earlier:
                    d = earlier[0]
                elif getattr(s.engine, "fatal", None):
                    d = Decision("RCPT", r, [Step("(smtpd)", "startup", "FATAL",
                                                  f"fatal: {s.engine.fatal}")],
                                 action="no reply: smtpd exited at startup, the connection closed "
                                        "(see the maillog)")
                else:
                    last = (text or s.banner).split("\n")[-1]
                    d = Decision("RCPT", r, [Step("(smtpd)", "protocol", "REJECT",
                                                 "the session did not get as far as RCPT TO")],
                                 reply=Reply.parse(last) if last[:3].isdigit() else None,
                                 action="reject")
            d.context = ctx  # type: ignore[attr-defined]
            out.append(d)
    finally:
        if not s.closed:
            s.close()
    return out


def decide_each(host, what: str, values: Iterable[str], *, recipient: str = "someone@example.net",
                client: str = "127.0.0.1", helo: str = "client.example.org",
                sender: str = "someone@example.org") -> list[Decision]:
    """One session per value of ``what`` (``"client"``, ``"helo"``, ``"sender"`` or
    ``"recipient"``), everything else fixed; the RCPT decision of each.

    >>> import tempfile
    >>> from mailsim import init_host
    >>> h = init_host(tempfile.mkdtemp() + "/mx")
    >>> [d.reply.code for d in decide_each(h, "client", ["127.0.0.1", "192.0.2.99"])]
    [250, 454]
    """
    if what not in ("client", "helo", "sender", "recipient"):
        raise ValueError(f"what must be client, helo, sender or recipient, not {what!r}")
    out: list[Decision] = []
    for v in values:
        kw = {"client": client, "helo": helo, "sender": sender}
        rcpt = recipient
        if what == "recipient":
            rcpt = v
        else:
            kw[what] = v
        out += decide(host, [rcpt], **kw)
    return out


def deciding_step(d: Decision) -> Step | None:
    """The element that decided: for a refusal, the one that refused; for an
    acceptance, the last ``permit``/``OK``; None when no element had a verdict."""
    if d.action == "reject" or (d.reply is not None and d.reply.code >= 400):
        for st in reversed(d.steps):
            if st.verdict not in _NOT_VERDICTS:
                return st
        return d.steps[-1] if d.steps else None
    for st in reversed(d.steps):
        if st.verdict not in ("DUNNO", "class", "restrictions"):
            return st
    return None


# -- the graph --------------------------------------------------------------------------------
def _request_label(d: Decision) -> tuple[str, str]:
    what = {"RCPT": f"RCPT TO:<{d.subject}>", "MAIL": f"MAIL FROM:<{d.subject}>",
            "HELO": f"HELO {d.subject}", "EHLO": f"EHLO {d.subject}",
            "CONNECT": f"connect from {d.subject}", "VRFY": f"VRFY {d.subject}"}.get(
        d.stage, f"{d.stage} {d.subject}")
    ctx = getattr(d, "context", None)
    more = ""
    if ctx:
        more = f"client {ctx['client']}, HELO {ctx['helo']}, MAIL FROM:<{ctx['sender']}>"
    return what, more


def _verdict_colour(verdict: str) -> str:
    v = verdict.upper()
    if v in COLOURS:
        return COLOURS[v]
    if v[:1] in "45" and v[:3].isdigit():
        return COLOURS[v[:1]]
    if v.startswith("DEFER"):
        return COLOURS["DEFER"]
    return COLOURS["other"]


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def decision_graph(decisions: Iterable[Decision]) -> nx.DiGraph:
    """A DiGraph of the decisions; see the module docstring.

    Node attributes: ``kind`` (request, list, element, lookup, class, reply),
    ``label`` (short, for pictures), ``text`` (one line, for :func:`to_text`),
    ``fill`` (colour), ``request`` (index of the decision), ``seq`` (evaluation
    order within it), ``depth`` (indent in :func:`to_text`), and for elements
    ``verdict``, ``detail``, ``decided``. Edge attributes: ``kind`` (next, lookup,
    resolve), ``order`` (global evaluation order), ``label``.
    """
    decisions = list(decisions)
    g = nx.DiGraph(requests=[(d.stage, d.subject, d.reply.code if d.reply else None)
                             for d in decisions])
    order = 0
    for i, d in enumerate(decisions):
        seq = 0

        def node(nid: str, **attrs) -> str:
            nonlocal seq
            g.add_node(nid, request=i, seq=seq, **attrs)
            seq += 1
            return nid

        def edge(a: str, b: str, kind: str, label: str = "") -> None:
            nonlocal order
            g.add_edge(a, b, kind=kind, order=order, label=label)
            order += 1

        what, ctx = _request_label(d)
        prev = node(f"r{i}", kind="request", depth=0, fill=COLOURS["request"],
                    label=what + ("\n" + ctx.replace(", ", "\n") if ctx else ""),
                    text=what + (f"  ({ctx})" if ctx else ""))
        decided = deciding_step(d)
        current_list = None
        prev_verdict = ""
        class_done = d.resolved is None
        for j, st in enumerate(d.steps):
            if st.restriction_list != current_list:
                current_list = st.restriction_list
                lst = node(f"r{i}.l{j}", kind="list", depth=1, fill=COLOURS["list"],
                           label=current_list, text=current_list)
                edge(prev, lst, "next", prev_verdict)
                prev = lst
            is_decider = st is decided
            more = f"  ({st.detail})" if st.detail else ""
            el = node(f"r{i}.s{j}", kind="element", depth=2, verdict=st.verdict, detail=st.detail,
                      decided=is_decider, fill=_verdict_colour(st.verdict),
                      label=f"{st.element}\n→ {st.verdict}",
                      text=f"{st.element} -> {st.verdict}{more}" + ("  <== decided" if is_decider else ""))
            edge(prev, el, "next", prev_verdict if prev.startswith(f"r{i}.s") else "")
            for k, (table, key, result) in enumerate(st.lookups):
                found = "not found" if result is None else repr(result)
                lk = node(f"r{i}.s{j}.k{k}", kind="lookup", depth=3, hit=result is not None,
                          fill=COLOURS["lookup-hit" if result is not None else "lookup"],
                          label=f"{_short(table, 36)}\n{_short(key, 30)} → {_short(found, 30)}",
                          text=f"lookup {table} {key!r} -> {found}")
                edge(el, lk, "lookup")
            if not class_done and (st.element.split()[0].lower() in _RESOLVING
                                   or st.restriction_list == "smtpd_reject_unlisted_recipient"):
                _class_node(node, edge, d, i, el, 3)
                class_done = True
            prev, prev_verdict = el, st.verdict
        if not class_done:
            _class_node(node, edge, d, i, f"r{i}", 1)
        if d.reply is not None:
            text = str(d.reply).replace("\n", " / ")
            fill = COLOURS.get(str(d.reply.code)[0], COLOURS["other"])
        else:
            text, fill = d.action, COLOURS["OK"] if d.action == "permit" else COLOURS["other"]
        rep = node(f"r{i}.reply", kind="reply", depth=1, fill=fill, label=_short(text, 60),
                   text=f"=> {text}", code=d.reply.code if d.reply else None)
        edge(prev, rep, "next", prev_verdict)
    return g


def _class_node(node, edge, d: Decision, i: int, parent: str, depth: int) -> None:
    r = d.resolved
    cid = node(f"r{i}.class", kind="class", depth=depth, fill=COLOURS["class"],
               label=f"address class: {r.klass}\n{r.recipient} → {r.transport}:{r.nexthop}",
               text=f"address class: {r.klass}  ({r.recipient} -> {r.transport}:{r.nexthop})")
    edge(parent, cid, "resolve", "trivial-rewrite")


def to_text(graph: nx.DiGraph) -> str:
    """The graph as an indented tree, one line per node, in evaluation order."""
    nodes = sorted(graph.nodes(data=True), key=lambda n: (n[1]["request"], n[1]["seq"]))
    return "\n".join("  " * a["depth"] + a["text"] for _, a in nodes)


def summary(graph: nx.DiGraph) -> str:
    """One line: every request and its reply code (the text form of a rendered graph)."""
    parts = []
    for stage, subject, code in graph.graph.get("requests", []):
        who = subject if stage == "RCPT" else f"{stage} {subject}"
        parts.append(f"{who} {code if code is not None else '-'}")
    return f"<decision graph: {', '.join(parts)}>"


# -- pictures ------------------------------------------------------------------------------------
def have_dot() -> bool:
    """Is Graphviz's ``dot`` on PATH? (Then :func:`render` uses it.)"""
    return shutil.which("dot") is not None


@dataclass
class DecisionFigure:
    """A rendered decision graph: SVG for notebooks, a one-line summary as text.

    ``engine`` is ``"dot"`` or ``"matplotlib"``; the text form does not say
    which, so stored notebook outputs do not depend on the machine.
    """

    svg: str
    engine: str
    text: str

    def _repr_svg_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return self.text

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(self.text)

    def save(self, path) -> None:
        """Write the SVG to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg)


_COMMENT = re.compile(r"<!--.*?-->\s*", re.S)
_PROLOG = re.compile(r"<\?xml[^>]*\?>\s*|<!DOCTYPE[^>]*>\s*", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)


def sanitize_svg(svg: str) -> str:
    """Drop what changes from run to run or machine to machine: the XML prolog,
    comments (Graphviz's version), matplotlib's metadata (date, version).

    >>> sanitize_svg('<?xml version="1.0"?>\\n<!-- Generated by graphviz 2.43 -->\\n<svg><metadata>x</metadata></svg>')
    '<svg></svg>'
    """
    svg = _PROLOG.sub("", svg)
    svg = _COMMENT.sub("", svg)
    svg = _METADATA.sub("", svg)
    return svg.strip()


def render(graph: nx.DiGraph, engine: str = "auto") -> DecisionFigure:
    """Draw ``graph``: ``engine`` is ``"dot"``, ``"matplotlib"`` or ``"auto"`` (dot when
    :func:`have_dot`). The figure's text form is :func:`summary` whichever engine drew it."""
    if engine == "auto":
        engine = "dot" if have_dot() else "matplotlib"
    if engine == "dot":
        if not have_dot():
            raise RuntimeError("Graphviz's dot is not installed (Debian: apt-get install graphviz); "
                               "use engine='matplotlib'")
        svg = _render_dot(graph)
    elif engine == "matplotlib":
        svg = _render_matplotlib(graph)
    else:
        raise ValueError(f"engine must be auto, dot or matplotlib, not {engine!r}")
    return DecisionFigure(sanitize_svg(svg), engine, summary(graph))


def _dot_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def dot_source(graph: nx.DiGraph):
    """The graph as a :class:`graphviz.Digraph` (``.source`` is the DOT text)."""
    import graphviz
    dot = graphviz.Digraph("decisions", graph_attr={"rankdir": "TB", "fontname": "Helvetica",
                                                    "nodesep": "0.25", "ranksep": "0.3"},
                           node_attr={"fontname": "Helvetica", "fontsize": "10", "style": "filled",
                                      "shape": "box"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "8"})
    shapes = {"request": "box", "list": "folder", "element": "box", "lookup": "note",
              "class": "component", "reply": "box"}
    requests = sorted({a["request"] for _, a in graph.nodes(data=True)})
    for r in requests:
        with dot.subgraph(name=f"cluster_r{r}", graph_attr={"style": "invis"}) as sub:
            for n, a in sorted(graph.nodes(data=True), key=lambda x: x[1]["seq"]):
                if a["request"] != r:
                    continue
                extra = {}
                if a["kind"] in ("request", "reply"):
                    extra["style"] = "filled,rounded,bold"
                if a.get("decided"):
                    extra["penwidth"] = "2.5"
                sub.node(n, _dot_label(a["label"]), shape=shapes[a["kind"]], fillcolor=a["fill"],
                         **extra)
    for u, v, a in sorted(graph.edges(data=True), key=lambda e: e[2]["order"]):
        style = "dashed" if a["kind"] != "next" else "solid"
        dot.edge(u, v, label=_dot_label(a.get("label", "")), style=style)
    return dot


def _render_dot(graph: nx.DiGraph) -> str:
    return dot_source(graph).pipe(format="svg", encoding="utf-8")


def _layout(graph: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Columns per request; main chain on the left of a column, lookups and the
    address class to its right; one row per node in evaluation order."""
    pos: dict[str, tuple[float, float]] = {}
    for n, a in graph.nodes(data=True):
        side = a["kind"] in ("lookup", "class")
        x = a["request"] * 3.2 + (1.6 if side else 0.0)
        pos[n] = (x, -float(a["seq"]))
    return pos


_MPL_RC = {"svg.hashsalt": "mailsim", "svg.fonttype": "none", "font.family": "DejaVu Sans"}


def matplotlib_figure(graph: nx.DiGraph):
    """The fallback picture as a :class:`matplotlib.figure.Figure` (no pyplot, no GUI)."""
    import matplotlib
    from matplotlib.figure import Figure
    pos = _layout(graph)
    ncols = max((a["request"] for _, a in graph.nodes(data=True)), default=0) + 1
    nrows = max((a["seq"] for _, a in graph.nodes(data=True)), default=0) + 1
    with matplotlib.rc_context(_MPL_RC):
        fig = Figure(figsize=(max(4.0, 4.2 * ncols), max(2.0, 0.62 * nrows)))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        edges = sorted(graph.edges(data=True), key=lambda e: e[2]["order"])
        nx.draw_networkx_edges(graph, pos, ax=ax, edgelist=[(u, v) for u, v, _ in edges],
                               style=["solid" if a["kind"] == "next" else "dashed" for _, _, a in edges],
                               arrows=True, arrowstyle="-|>", arrowsize=10, edge_color="#555555",
                               node_size=0, min_source_margin=12, min_target_margin=12)
        for n, a in graph.nodes(data=True):
            x, y = pos[n]
            ax.text(x, y, a["label"], ha="center", va="center", fontsize=7, zorder=3,
                    bbox={"boxstyle": "round,pad=0.3", "facecolor": a["fill"],
                          "edgecolor": "#222222", "linewidth": 2.0 if a.get("decided") else 0.6})
        ax.set_xlim(-1.5, 3.2 * ncols - 0.1)
        ax.set_ylim(-nrows + 0.4, 0.6)
    return fig


def _render_matplotlib(graph: nx.DiGraph) -> str:
    import matplotlib
    fig = matplotlib_figure(graph)
    buf = io.StringIO()
    with matplotlib.rc_context(_MPL_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()
