"""Graphs of a lab: its network, one message's route, a deferred message's retries.

Three pictures an administrator draws on a whiteboard, made from the lab
and from a :class:`~mailsim.lab.trace.Trace` (which read the hosts' logs):

* :func:`network_graph` -- the hosts (name, myhostname, addresses; up or
  down), the links between them (with their latency), and what the zone
  says about mail: each domain's MX hosts with their preferences (an
  exchanger outside the lab is a node of its own; a null MX says so), and
  each host's ``relayhost``;
* :func:`route_graph` -- one message: nodes are ``HOST/QUEUEID`` (and the
  client, mailboxes, refused recipients, notifications), solid edges the
  SMTP hand-offs labelled with their time and the reply (``250 2.0.0 Ok:
  queued as ...``), dashed edges the deferred attempts (one edge per
  server and reason, with how many attempts and when);
* :func:`retry_timeline` -- each attempt of each hop over time with its
  outcome (a matplotlib figure: deferred, sent, bounced).

:func:`render` draws the first two with Graphviz's ``dot`` when it is on
PATH, else with networkx's data and matplotlib (:func:`mailsim.graphs.have_dot`
decides, as for the decision graphs); the retry timeline is always
matplotlib. Every picture is a :class:`Picture`: SVG for notebooks (no
dates, comments or random ids), PNG on request, and a one-line text form
that is the same whichever engine drew it, so stored notebook outputs do
not depend on the machine. :func:`to_text` lists a graph's nodes and edges
in a fixed order (for nbval).

Node attributes: ``kind``, ``label`` (lines, for pictures), ``text`` (one
line), ``fill``, ``shape``, ``layer`` and ``row`` (the fallback's grid).
Edge attributes: ``kind``, ``label``, ``text``, ``style`` (solid/dashed),
``color``, ``order``, and for deferred edges ``times`` (every attempt).

Real-server equivalent: ``dig MX``, and ``grep`` in each host's log,
drawn by hand.

Examples
--------
>>> import tempfile, pathlib
>>> from mailsim.lab import Lab
>>> from mailsim.lab.trace import trace
>>> lab = Lab.init(pathlib.Path(tempfile.mkdtemp()) / "lab", from_lab="two-domains")
>>> g = network_graph(lab)
>>> sorted(g.edges(data="label"))
[('domain:example.com', 'mail', 'MX 10'), ('domain:example.org', 'mx1', 'MX 10'), ('mail', 'mx1', 'latency 0s')]
>>> r = lab.send("alice@example.com", "peter@example.org")
>>> route = route_graph(trace(lab, r.queue_id))
>>> [a["kind"] for _, _, a in edges_in_order(route)]
['submit', 'smtp', 'local']
>>> render(route, "matplotlib").text
'<route graph: mail -> mx1; 1 delivered>'
"""
from __future__ import annotations

import io
import ipaddress
import textwrap
from dataclasses import dataclass, field
from typing import Callable

import networkx as nx

from . import graphs
from .graphs import sanitize_svg

__all__ = ["network_graph", "route_graph", "retry_timeline", "timeline_rows", "render", "to_text",
           "edges_in_order", "Picture", "dot_source"]

COLOURS = {"client": "#eeeeee", "host": "#dbe9f6", "host-down": "#f8c4c4", "domain": "#eadcf8",
           "external": "#ffffff", "hop": "#dbe9f6", "hop-queued": "#fde2b8", "mailbox": "#c8f0d0",
           "bounced": "#f8c4c4", "dsn": "#fff8c5", "unreached": "#fde2b8"}
SHAPES = {"client": "ellipse", "host": "box3d", "domain": "ellipse", "external": "box",
          "hop": "box", "mailbox": "cylinder", "bounced": "octagon", "dsn": "note",
          "unreached": "box"}
EDGE_COLOURS = {"sent": "#2a7a3a", "deferred": "#c07000", "bounced": "#c03030", "dsn": "#777777",
                "other": "#444444"}


def _wrap(text: str, width: int = 40) -> str:
    return "\n".join(textwrap.fill(p, width, break_long_words=True) for p in text.split("\n"))


class _Builder:
    """Adds nodes and edges with the attributes :func:`render` reads."""

    def __init__(self, g: nx.Graph) -> None:
        self.g = g
        self.order = 0
        self.free: dict[int, int] = {}

    def node(self, nid: str, kind: str, label: str, layer: float, *, row: int | None = None,
             fill: str | None = None, text: str | None = None, **attrs) -> str:
        if nid in self.g:
            return nid
        r = max(row or 0, self.free.get(layer, 0))
        self.free[layer] = r + 1
        self.g.add_node(nid, kind=kind, label=label, text=text or " ".join(label.split("\n")), layer=layer,
                        row=r, fill=fill or COLOURS.get(kind, "#ffffff"),
                        shape=SHAPES.get(kind, "box"), **attrs)
        return nid

    def edge(self, u: str, v: str, kind: str, label: str, *, style: str = "solid",
             color: str = EDGE_COLOURS["other"], text: str | None = None, **attrs) -> None:
        self.g.add_edge(u, v, kind=kind, label=label, text=text or " ".join(label.split("\n")),
                        style=style, color=color, order=self.order, **attrs)
        self.order += 1


# -- the network ---------------------------------------------------------------------------------
def _host_by_name(lab, name: str) -> str | None:
    """The lab host called ``name`` in DNS terms: its myhostname, or an address record
    (read without logging a query) pointing at one of its addresses."""
    name = name.rstrip(".").lower()
    for hname, host in lab.hosts.items():
        if host.conf["myhostname"].lower() == name:
            return hname
    try:
        ipaddress.ip_address(name)
        return lab.network.host_at(name)
    except ValueError:
        pass
    if lab.dns is not None:
        for rtype in ("A", "AAAA"):
            for rr in lab.dns.answer(name, rtype).of_type(rtype):
                h = lab.network.host_at(rr.address)
                if h is not None:
                    return h
    return None


def network_graph(lab) -> nx.MultiDiGraph:
    """The lab's hosts, links, MX relations (from the zone files) and relayhosts."""
    g = nx.MultiDiGraph(name="network", rankdir="TB")
    b = _Builder(g)
    for name, host in lab.hosts.items():
        up = lab.network.is_up(name)
        addrs = ", ".join(lab.network.addresses[name])
        b.node(name, "host", f"{name}\n{host.conf['myhostname']}\n{addrs}" + ("" if up else "\n(stopped)"),
               1, fill=COLOURS["host" if up else "host-down"], up=up)
    mx: dict[str, list] = {}
    if lab.dns is not None:
        for rr in lab.dns.records():
            if rr.rtype == "MX":
                mx.setdefault(rr.name.rstrip("."), []).append(rr)
    for dom, rrs in mx.items():
        null = any(r.exchange == "." for r in rrs)
        d = b.node(f"domain:{dom}", "domain", dom + ("\nnull MX (RFC 7505)" if null else ""), 0,
                   null_mx=null)
        for rr in sorted(rrs, key=lambda r: (r.preference, r.exchange)):
            if rr.exchange == ".":
                continue
            target = _host_by_name(lab, rr.exchange)
            if target is None:
                exch = rr.exchange.rstrip(".")
                target = b.node(f"external:{exch}", "external", f"{exch}\n(not a lab host)", 1)
            b.edge(d, target, "mx", f"MX {rr.preference}", preference=rr.preference)
    for link in lab.network.links.values():
        b.edge(link.a, link.b, "link", f"latency {link.latency:g}s", latency=link.latency)
    for name, host in lab.hosts.items():
        rh = (host.conf.get("relayhost") or "").strip()
        if not rh:
            continue
        bare = rh.strip("[]").rsplit(":", 1)[0].strip("[]") if rh.startswith("[") else rh.split(":")[0]
        target = _host_by_name(lab, bare) if rh.startswith("[") else None
        if target is None and not rh.startswith("[") and f"domain:{bare}" in g:
            target = f"domain:{bare}"
        if target is None:
            target = b.node(f"external:{bare}", "external", f"{bare}\n(not a lab host)", 1)
        b.edge(name, target, "relayhost", f"relayhost = {rh}", style="dashed")
    up = sum(1 for n in lab.hosts if lab.network.is_up(n))
    g.graph["summary"] = (f"<network graph: {len(lab.hosts)} hosts ({up} up), {len(lab.network.links)} "
                          f"links, {len(mx)} MX domains>")
    return g


# -- one message's route -----------------------------------------------------------------------------
def _when(t: float) -> str:
    from .lab.trace import log_stamp
    return log_stamp(t)


def _span(t0: float, t1: float) -> str:
    """``Nov 25 09:00:00 - 09:40:00`` (the day repeated only when it changes)."""
    a, b = _when(t0), _when(t1)
    return f"{a} - {b[7:] if a[:6] == b[:6] else b}"


def route_graph(trace) -> nx.MultiDiGraph:
    """One message's route (see the module docstring); ``trace`` is a
    :class:`~mailsim.lab.trace.Trace`."""
    g = nx.MultiDiGraph(name="route", rankdir="LR")
    b = _Builder(g)
    hops = trace.hops
    for i, h in enumerate(hops):
        layer = h.depth + 1
        parent_row = g.nodes[hops[h.previous].name]["row"] if h.previous is not None else None
        queued = h.removed is None and h.queue is not None
        b.node(h.name, "hop", f"{h.host}\n{h.queue_id}\n{h.hostname}", layer, row=parent_row,
               fill=COLOURS["hop-queued" if queued else "hop"], host=h.host, queue_id=h.queue_id,
               hop=i + 1)
        if h.previous is None:
            origin = {"smtpd": ("client:" + (h.client or "?"), f"client\n{h.client}", "SMTP"),
                      "pickup": ("pickup:" + h.host, f"sendmail on {h.host}\n(pickup)", "pickup")
                      }.get(h.source)
            if origin is not None:
                oid, olabel, how = origin
                b.node(oid, "client", olabel, 0, row=g.nodes[h.name]["row"])
                b.edge(oid, h.name, "submit", f"{_when(h.arrived)} {how}", time=h.arrived,
                       color=EDGE_COLOURS["sent"])
    for h in hops:
        _deliveries(b, trace, h, h.depth + 1)
    delivered = sum(1 for _, d in trace.outcomes() if d.status == "sent")
    g.graph["summary"] = (f"<route graph: {' -> '.join(h.host for h in hops)}; "
                          f"{delivered} delivered>")
    return g


def _host_node(b: _Builder, name: str, addr: str, layer: float, row: int) -> str:
    """A lab host the message did not reach (it has no queue id there); in the
    fallback picture half a column back and a row down, off the main line."""
    return b.node(name, "unreached", f"{name}\n{addr}\n(no queue id)", layer - 0.5, row=row + 1)


def _fallbacks(b: _Builder, h, d, layer: int, row: int) -> None:
    """Servers smtp(8) could not use before it delivered to another one (the next MX
    host, or address): a dashed edge each."""
    for t in d.tried:
        target = (_host_node(b, t["host"], t["addr"], layer + 1, row) if t["host"] else
                  b.node(f"external:{t['server']}[{t['addr']}]", "external",
                         f"{t['server']}[{t['addr']}]\n(outside the lab)", layer + 1, row=row))
        b.edge(h.name, target, "refused", f"{_when(d.time)}\n{_wrap(t['text'])}", style="dashed",
               color=EDGE_COLOURS["deferred"], time=d.time, text=f"{_when(d.time)} {t['text']}")


def _deliveries(b: _Builder, trace, h, layer: int) -> None:
    g = b.g
    row = g.nodes[h.name]["row"]
    groups: list[dict] = []            # consecutive attempts with one target and one outcome
    for d in h.deliveries:
        _fallbacks(b, h, d, layer, row)
        if d.next_hop is not None:
            target, kind = trace.hops[d.next_hop].name, "forward" if d.target_addr is None else "smtp"
        elif d.status == "deferred":
            if d.target_host is not None:
                target = _host_node(b, d.target_host, d.target_addr, layer + 1, row)
            else:
                where = d.target or next((r.nexthop for r in h.routing if r.recipient == d.recipient),
                                         d.recipient.rpartition("@")[2])
                target = b.node(f"unreached:{where}", "unreached", f"{where}\n(not reached)",
                                layer + 1, row=row)
            kind = "deferred"
        elif d.status == "bounced" and d.target_host is not None:
            target = _host_node(b, d.target_host, d.target_addr, layer + 1, row)
            kind = "rejected"
        elif d.status == "sent" and d.target_addr is not None:
            target = b.node(f"external:{d.target}[{d.target_addr}]", "external",
                            f"{d.target}[{d.target_addr}]\n(outside the lab)", layer + 1, row=row)
            kind = "smtp"
        elif d.status == "sent":
            target = b.node(f"{h.name}:{d.recipient}", "mailbox", f"{d.recipient}\n{_wrap(d.reply, 30)}",
                            layer + 1, row=row, text=f"{d.recipient} {d.reply}")
            kind = "local"
        else:
            target = b.node(f"{h.name}:{d.status}:{d.recipient}", "bounced",
                            f"{d.recipient}\n{d.status}\n{_wrap(d.reply, 30)}", layer + 1, row=row,
                            text=f"{d.recipient} {d.status} {d.reply}")
            kind = d.status
        last = groups[-1] if groups else None
        if last and last["target"] == target and last["kind"] == kind and (
                kind == "deferred" and last["reply"] == d.reply or last["time"] == d.time
                and last["reply"] == d.reply):
            last["times"].append(d.time)
            if d.recipient not in last["rcpts"]:
                last["rcpts"].append(d.recipient)
            continue
        groups.append({"target": target, "kind": kind, "reply": d.reply, "time": d.time,
                       "times": [d.time], "rcpts": [d.recipient], "transport": d.transport})
    for gr in groups:
        rc = ", ".join(gr["rcpts"])
        ts = gr["times"]
        if gr["kind"] == "deferred":
            n = len(set(ts))
            when = _when(ts[0]) if n == 1 else _span(ts[0], ts[-1])
            label = f"deferred x{n} {when}\n{rc}\n{_wrap(gr['reply'])}"
            b.edge(h.name, gr["target"], "deferred", label, style="dashed",
                   text=f"deferred x{n} {when} {rc} {gr['reply']}",
                   color=EDGE_COLOURS["deferred"], times=sorted(set(ts)), recipients=gr["rcpts"])
        else:
            colour = EDGE_COLOURS["sent" if gr["kind"] in ("smtp", "forward", "local") else "bounced"]
            label = f"{_when(gr['time'])} {gr['transport']}\n{rc}\n{_wrap(gr['reply'])}"
            b.edge(h.name, gr["target"], gr["kind"], label, color=colour, time=gr["time"],
                   text=f"{_when(gr['time'])} {gr['transport']} {rc} {gr['reply']}",
                   recipients=gr["rcpts"])
    if h.expired is not None:
        e = b.node(f"{h.name}:expired", "bounced", "expired\nreturned to sender", layer + 1, row=row)
        b.edge(h.name, e, "expired", f"{_when(h.expired)} qmgr", color=EDGE_COLOURS["bounced"],
               time=h.expired)
    for note in h.notifications:
        nid = note.rsplit(": ", 1)[-1]
        n = b.node(f"{h.host}/{nid}", "dsn", f"{h.host}\n{nid}\n{note.rsplit(':', 1)[0]}", layer + 1,
                   row=row)
        b.edge(h.name, n, "dsn", "bounce(8)", style="dashed", color=EDGE_COLOURS["dsn"])


# -- text ----------------------------------------------------------------------------------------
def edges_in_order(graph: nx.Graph) -> list[tuple[str, str, dict]]:
    """``(u, v, attributes)`` of every edge in the order the graph was built
    (networkx lists a multigraph's edges by node, not by insertion)."""
    return sorted(graph.edges(data=True), key=lambda e: e[2]["order"])


def to_text(graph: nx.Graph) -> str:
    """The graph's summary, then its nodes and edges in a fixed order (for nbval)."""
    out = [graph.graph.get("summary", f"<{graph.graph.get('name', 'graph')}>")]
    nodes = sorted(graph.nodes(data=True), key=lambda n: (n[1]["layer"], n[1]["row"], n[0]))
    out += [f"  [{a['kind']}] {n}: {a['text']}" for n, a in nodes]
    for u, v, a in edges_in_order(graph):
        style = "- -" if a["style"] == "dashed" else "-->"
        out.append(f"  {u} {style} {v}  [{a['kind']}] {a['text']}")
    return "\n".join(out)


# -- pictures ----------------------------------------------------------------------------------------
@dataclass(repr=False)      # keep DecisionFigure's text repr (stable in notebooks)
class Picture(graphs.DecisionFigure):
    """A rendered graph or timeline: :class:`mailsim.graphs.DecisionFigure` (SVG for
    notebooks, a summary as text that does not name the engine), plus PNG on request."""
    make_png: Callable[[], bytes] = field(repr=False, default=lambda: b"")

    def png(self) -> bytes:
        """The picture as PNG bytes."""
        return self.make_png()

    def save(self, path) -> None:
        """Write the picture to ``path``: SVG or PNG, by its suffix."""
        s = str(path).lower()
        if s.endswith(".png"):
            with open(path, "wb") as f:
                f.write(self.png())
        elif s.endswith(".svg"):
            with open(path, "w", encoding="utf-8") as f:
                f.write(self.svg)
        else:
            raise ValueError(f"{path}: save as .svg or .png")


def render(graph: nx.Graph, engine: str = "auto") -> Picture:
    """Draw a network or route graph: ``engine`` is ``"dot"``, ``"matplotlib"`` or
    ``"auto"`` (dot when :func:`mailsim.graphs.have_dot`)."""
    if engine == "auto":
        engine = "dot" if graphs.have_dot() else "matplotlib"
    text = graph.graph.get("summary", "")
    if engine == "dot":
        if not graphs.have_dot():
            raise RuntimeError("Graphviz's dot is not installed (Debian: apt-get install graphviz); "
                               "use engine='matplotlib'")
        src = dot_source(graph)
        return Picture(sanitize_svg(src.pipe(format="svg", encoding="utf-8")), "dot", text,
                       lambda: src.pipe(format="png"))
    if engine == "matplotlib":
        fig = _figure(graph)
        return Picture(_svg_of(fig), "matplotlib", text, lambda: _png_of(fig))
    raise ValueError(f"engine must be auto, dot or matplotlib, not {engine!r}")


def _dot_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def dot_source(graph: nx.Graph):
    """The graph as a :class:`graphviz.Digraph` (``.source`` is the DOT text)."""
    import graphviz
    dot = graphviz.Digraph(graph.graph.get("name", "graph"),
                           graph_attr={"rankdir": graph.graph.get("rankdir", "LR"),
                                       "fontname": "Helvetica", "nodesep": "0.35", "ranksep": "0.6"},
                           node_attr={"fontname": "Helvetica", "fontsize": "10", "style": "filled"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "8"})
    ids = {n: f"n{i}" for i, n in enumerate(graph.nodes)}    # "a:b" would be node a, port b
    for n, a in graph.nodes(data=True):
        style = "filled,rounded" if a["kind"] == "hop" else "filled"
        dot.node(ids[n], _dot_label(a["label"]), shape=a["shape"], fillcolor=a["fill"], style=style,
                 tooltip=n)
    for u, v, a in edges_in_order(graph):
        extra = {"dir": "none"} if a["kind"] == "link" else {}
        dot.edge(ids[u], ids[v], label=_dot_label(a["label"]), style=a["style"], color=a["color"],
                 fontcolor=a["color"], **extra)
    return dot


_CHAR_W, _LINE_H, _PAD = 0.056, 0.13, 0.08       # inches at 7 pt (DejaVu Sans)


def _box(label: str) -> tuple[float, float]:
    lines = label.split("\n")
    return max(len(s) for s in lines) * _CHAR_W + 2 * _PAD, len(lines) * _LINE_H + 2 * _PAD


def _positions(graph: nx.Graph) -> dict[str, tuple[float, float]]:
    """Grid positions in inches: LR graphs put layers in columns, TB graphs in rows."""
    boxes = {n: _box(a["label"]) for n, a in graph.nodes(data=True)}
    w = max((bw for bw, _ in boxes.values()), default=1.0)
    h = max((bh for _, bh in boxes.values()), default=0.5)
    pos = {}
    for n, a in graph.nodes(data=True):
        if graph.graph.get("rankdir") == "TB":
            pos[n] = (a["row"] * (w + 0.8), -a["layer"] * (h + 1.0))
        else:
            pos[n] = (a["layer"] * (w + 2.6), -a["row"] * (h + 1.3))
    return pos


def _clip(p: tuple[float, float], q: tuple[float, float], box: tuple[float, float]) -> tuple[float, float]:
    """Where the segment from box centre ``p`` towards ``q`` leaves the box."""
    dx, dy = q[0] - p[0], q[1] - p[1]
    if dx == dy == 0:
        return p
    sx = (box[0] / 2) / abs(dx) if dx else float("inf")
    sy = (box[1] / 2) / abs(dy) if dy else float("inf")
    s = min(sx, sy, 1.0)
    return p[0] + dx * s, p[1] + dy * s


_MPL_RC = {"svg.hashsalt": "mailsim", "svg.fonttype": "none", "font.family": "DejaVu Sans"}


def _figure(graph: nx.Graph):
    """The fallback picture: boxes on a grid, straight arrows clipped at the boxes,
    parallel edges side by side (no pyplot, no GUI)."""
    import matplotlib
    from matplotlib.figure import Figure
    pos = _positions(graph)
    boxes = {n: _box(a["label"]) for n, a in graph.nodes(data=True)}
    xs = [pos[n][0] + s * boxes[n][0] / 2 for n in pos for s in (-1, 1)] or [0.0]
    ys = [pos[n][1] + s * boxes[n][1] / 2 for n in pos for s in (-1, 1)] or [0.0]
    x0, x1, y0, y1 = min(xs) - 0.3, max(xs) + 0.3, min(ys) - 0.3, max(ys) + 0.3
    with matplotlib.rc_context(_MPL_RC):
        fig = Figure(figsize=(x1 - x0, y1 - y0))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        seen: dict[frozenset, int] = {}
        stacked: dict[frozenset, float] = {}
        for u, v, a in edges_in_order(graph):
            k = seen.get(frozenset((u, v)), 0)
            seen[frozenset((u, v))] = k + 1
            (ux, uy), (vx, vy) = pos[u], pos[v]
            length = max(((vx - ux) ** 2 + (vy - uy) ** 2) ** 0.5, 1e-9)
            off = 0.3 * ((k + 1) // 2) * (1 if k % 2 else -1) if k else 0.0
            nx_, ny_ = -(vy - uy) / length * off, (vx - ux) / length * off
            p, q = (ux + nx_, uy + ny_), (vx + nx_, vy + ny_)
            start, end = _clip(p, q, boxes[u]), _clip(q, p, boxes[v])
            ax.annotate("", xy=end, xytext=start, zorder=1,
                        arrowprops={"arrowstyle": "-" if a["kind"] == "link" else "-|>",
                                    "color": a["color"], "linewidth": 1.0,
                                    "linestyle": "--" if a["style"] == "dashed" else "-",
                                    "shrinkA": 0, "shrinkB": 0})
            if a["label"]:
                # a label at the middle of the pair's line; those of parallel edges below it
                mx, my = (ux + vx) / 2, (uy + vy) / 2
                lh = a["label"].count("\n") * 0.105 + 0.14
                top = stacked.get(frozenset((u, v)), my + lh / 2)
                stacked[frozenset((u, v))] = top - lh - 0.04
                ax.text(mx, top - lh / 2, a["label"], fontsize=6,
                        ha="center", va="center", color=a["color"], zorder=2,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white",
                              "edgecolor": "none", "alpha": 0.85})
        for n, a in graph.nodes(data=True):
            x, y = pos[n]
            ax.text(x, y, a["label"], ha="center", va="center", fontsize=7, zorder=3,
                    bbox={"boxstyle": "round,pad=0.4" if a["kind"] != "domain" else "circle,pad=0.3",
                          "facecolor": a["fill"], "edgecolor": "#222222", "linewidth": 0.7})
    return fig


def _svg_of(fig) -> str:
    import matplotlib
    buf = io.StringIO()
    with matplotlib.rc_context(_MPL_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return sanitize_svg(buf.getvalue())


def _png_of(fig) -> bytes:
    import matplotlib
    buf = io.BytesIO()
    with matplotlib.rc_context(_MPL_RC):
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


# -- retries over time ---------------------------------------------------------------------------
def timeline_rows(trace) -> list[tuple[str, str, list[tuple[float, str, str]]]]:
    """``(HOST/QUEUEID, recipient, [(time, status, reply), ...])`` for every hop and
    recipient, in route order: what :func:`retry_timeline` draws."""
    rows = []
    for h in trace.hops:
        for r in h.recipients():
            attempts = [(d.time, d.status, d.reply) for d in h.attempts(r)]
            if h.expired is not None and attempts and attempts[-1][1] == "deferred":
                attempts.append((h.expired, "expired", "returned to sender"))
            rows.append((h.name, r, attempts))
    return rows


_MARKERS = {"deferred": ("o", EDGE_COLOURS["deferred"]), "sent": ("s", EDGE_COLOURS["sent"]),
            "bounced": ("X", EDGE_COLOURS["bounced"]), "expired": ("X", EDGE_COLOURS["bounced"])}


def retry_timeline(trace) -> Picture:
    """Each delivery attempt of each hop over time, marked by its outcome (matplotlib)."""
    import matplotlib
    from matplotlib.figure import Figure
    from .lab.duration import format_duration, format_instant
    rows = timeline_rows(trace)
    t0 = min((h.arrived for h in trace.hops), default=0.0)
    with matplotlib.rc_context(_MPL_RC):
        fig = Figure(figsize=(8.0, 1.2 + 0.45 * max(1, len(rows))))
        ax = fig.add_axes((0.3, 0.8 / (1.2 + 0.45 * max(1, len(rows))), 0.66,
                           1 - 1.3 / (1.2 + 0.45 * max(1, len(rows)))))
        shown: set[str] = set()
        for i, (name, rcpt, attempts) in enumerate(rows):
            y = -i
            hop = next(h for h in trace.hops if h.name == name)
            xs = [(t - t0) / 3600 for t, _, _ in attempts]
            ax.plot([(hop.arrived - t0) / 3600, max(xs, default=(hop.arrived - t0) / 3600)], [y, y],
                    color="#bbbbbb", linewidth=1, zorder=1)
            for (t, status, _), x in zip(attempts, xs):
                marker, colour = _MARKERS.get(status, ("d", EDGE_COLOURS["other"]))
                ax.scatter([x], [y], marker=marker, color=colour, s=36, zorder=2,
                           label=status if status not in shown else None)
                shown.add(status)
        ax.set_yticks([-i for i in range(len(rows))],
                      [f"{n}\n{r}" for n, r, _ in rows], fontsize=7)
        ax.set_ylim(-len(rows) + 0.5, 0.5)
        ax.set_xlabel(f"hours after {format_instant(t0)}", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", color="#eeeeee")
        if shown:
            ax.legend(fontsize=7, loc="upper right")
        ax.set_title(trace.summary(), fontsize=8)
    parts = []
    for name, rcpt, attempts in rows:
        n = sum(s == "deferred" for _, s, _ in attempts)
        if n:
            end = attempts[-1]
            tail = "" if end[1] == "deferred" else \
                f", then {end[1]} at +{format_duration(end[0] - attempts[0][0])}"
            parts.append(f"{name} {rcpt}: {n} deferred{tail}")
    text = f"<retry timeline: {'; '.join(parts) if parts else 'no deferrals'}>"
    return Picture(_svg_of(fig), "matplotlib", text, lambda: _png_of(fig))
