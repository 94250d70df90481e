"""The lab's virtual network: which host has which address, who is up, links' latency.

Every connection stays in memory: a lab host's smtp(8) client reaches
another lab host's smtpd engine through a :class:`LabConnector`, the same
client code that would otherwise open a loopback socket
(:class:`mailsim.smtp.SocketConnector`). What a real network would say, the
connector says:

* an address where a lab host is up and master.cf has an ``inet`` smtpd
  service on that port: a session with that host's smtpd; the server sees
  the client's own lab address (``smtp_bind_address`` if it is one of the
  client host's addresses, else the host's first address);
* an address of a host that is down, or a port nobody listens on:
  ``Connection refused`` (the machine answers with a TCP reset);
* an address no lab host has: ``Connection refused`` on loopback
  (127.0.0.0/8, as in the recordings) and ``No route to host`` elsewhere;
* the address of a bridge (lab.toml's ``[[bridges]]``, see
  :mod:`mailsim.lab.bridge`): a real TCP connection to the real MTA behind it
  on loopback, bound to the client host's own address when that is a
  loopback one, so the real server sees the lab host as its client.

A link's ``latency`` is the simulated time one session over it takes: the
shared clock moves on by that much when the connection opens.

Faults (:mod:`mailsim.lab.faults`) change what the network says:

* a cut link (:attr:`Network.cuts`): ``Connection refused``, ``No route to
  host``, or -- after the client's connect timeout has passed on the clock
  -- ``Connection timed out``;
* a slow link (:attr:`Network.slow`) has its own latency; from the client's
  connect timeout on, connecting times out;
* ``smtpd_hooks``: lab-level policies attached to every smtpd session of a
  host (greylisting).

A link's ``loss`` is the share of connection attempts over it that are
lost altogether: every SYN dropped, so the client waits its connect timeout
and logs ``Connection timed out`` (TCP's retransmissions hide light packet
loss; what a mail server sees of a bad link is attempts that fail). Which
attempts are lost follows from the lab's seed, the instant and the two
ends, so the same seed gives the same run.

Not simulated: per-packet loss within a session, bandwidth, routing
between subnets; several addresses of one host listen alike
(inet_interfaces is not consulted).

Examples
--------
>>> net = Network({"mx": ("192.0.2.10",)})
>>> net.host_at("192.0.2.10"), net.host_at("192.0.2.99")
('mx', None)
>>> net.refusal("192.0.2.99"), net.refusal("127.0.0.9")
('No route to host', 'Connection refused')
>>> net.cuts[frozenset(("mx", "mail"))] = "timeout"
>>> net.cut("mail", "mx")
'timeout'
"""
from __future__ import annotations

import errno
import ipaddress
import os
import random
from dataclasses import dataclass
from typing import Callable

from ..smtp import ConnectFailure, HostConnector, SocketConnector
from ..smtp.addr import SERVICES
from .config import BridgeSpec, LinkSpec
from .faults import LINK_MODES

__all__ = ["Network", "LabConnector", "Connection", "listening_ports", "DEFAULT_CONNECT_TIMEOUT"]

#: what a connection waits without smtp_connect_timeout (Linux gives up on a SYN after ~127 s)
DEFAULT_CONNECT_TIMEOUT = 127.0


@dataclass(frozen=True)
class Connection:
    """One TCP connection made in the lab (kept for tracing and tests)."""
    time: float
    source: str            # host name, or the client address for `lab send`
    source_addr: str
    target: str | None     # host name, None when nobody has the address
    addr: str
    port: int
    result: str            # "connected" or the failure text


def listening_ports(host) -> set[int]:
    """TCP ports on which master.cf runs smtpd (``smtp inet ... smtpd`` -> 25)."""
    ports: set[int] = set()
    for e in host.master_entries():
        if e.type != "inet" or e.program != "smtpd":
            continue
        service = e.service.rpartition(":")[2]
        if service.isdigit():
            ports.add(int(service))
        elif service.lower() in SERVICES:
            ports.add(SERVICES[service.lower()])
    return ports


class Network:
    """Addresses, up/down state and links of a lab's hosts (names, not Host objects)."""

    def __init__(self, addresses: dict[str, tuple[str, ...]],
                 links: list[LinkSpec] | tuple[LinkSpec, ...] = (),
                 bridges: list[BridgeSpec] | tuple[BridgeSpec, ...] = (), seed: int = 0) -> None:
        self.addresses = {name: tuple(a) for name, a in addresses.items()}
        self.seed = seed
        #: lab address -> the real MTA on loopback behind it
        self.bridges = {b.address: b for b in bridges}
        self._by_addr = {a: name for name, addrs in self.addresses.items() for a in addrs}
        self.links = {frozenset((ln.a, ln.b)): ln for ln in links}
        self.down: set[str] = set()
        self.connections: list[Connection] = []
        #: links cut by a fault: {frozenset((a, b)): "refused" | "timeout" | "unreachable"}
        self.cuts: dict[frozenset, str] = {}
        #: links slowed by a fault: {frozenset((a, b)): seconds a session takes}
        self.slow: dict[frozenset, float] = {}
        #: host name -> callables run on each new smtpd session of that host (lab policies)
        self.smtpd_hooks: dict[str, list[Callable]] = {}

    def host_at(self, addr: str) -> str | None:
        """The name of the lab host with address ``addr``, if any."""
        return self._by_addr.get(addr)

    def is_up(self, name: str) -> bool:
        return name not in self.down

    def latency(self, a: str, b: str) -> float:
        """Seconds a session between hosts ``a`` and ``b`` takes (0 without a link;
        a slow-link fault's latency while it lasts)."""
        pair = frozenset((a, b))
        if pair in self.slow:
            return self.slow[pair]
        link = self.links.get(pair)
        return link.latency if link else 0.0

    def lost(self, a: str, b: str | None, when: float, src: str, addr: str, port: int) -> bool:
        """Is this connection attempt from host ``a`` to host ``b`` lost (the link's ``loss``)?

        >>> from mailsim.lab.config import LinkSpec
        >>> net = Network({"a": ("192.0.2.1",), "b": ("192.0.2.2",)}, [LinkSpec("a", "b", loss=0.5)])
        >>> [net.lost("a", "b", t, "192.0.2.1", "192.0.2.2", 25) for t in range(8)]
        [False, False, True, True, True, True, True, False]
        """
        link = self.links.get(frozenset((a, b))) if b is not None else None
        if link is None or link.loss <= 0:
            return False
        # a string seed goes through SHA-512: a fair draw for each attempt
        return random.Random(f"{self.seed}:{when:.6f}:{src}:{addr}:{port}").random() < link.loss

    def cut(self, a: str | None, b: str | None) -> str | None:
        """How the link between hosts ``a`` and ``b`` is cut (None: it is not)."""
        if a is None or b is None:
            return None
        return self.cuts.get(frozenset((a, b)))

    def hooked(self, name: str, host):
        """``host`` as smtpd clients reach it: with the lab's policies for ``name``."""
        hooks = self.smtpd_hooks.get(name)
        return _Hooked(host, list(hooks)) if hooks else host

    @staticmethod
    def refusal(addr: str) -> str:
        """What connecting to an address without a (running) host gives."""
        try:
            loop = ipaddress.ip_address(addr).is_loopback
        except ValueError:
            loop = False
        return os.strerror(errno.ECONNREFUSED if loop else errno.EHOSTUNREACH)


class LabConnector:
    """smtp(8)'s connector for one lab host: connections into other lab hosts, in memory.

    ``hosts`` maps host names to :class:`~mailsim.host.Host`; ``clock`` is the
    lab's clock (moved on by a link's latency).
    """

    def __init__(self, network: Network, hosts: dict, source: str, clock) -> None:
        self.network = network
        self.hosts = hosts
        self.source = source
        self.clock = clock

    def source_address(self) -> str:
        """The address this host connects from (smtp_bind_address when it is the host's)."""
        mine = self.network.addresses.get(self.source, ())
        host = self.hosts.get(self.source)
        bind = (host.conf.get("smtp_bind_address") or "") if host is not None else ""
        if bind in mine:
            return bind
        return mine[0] if mine else self.source

    def connect(self, addr: str, port: int, timeout: float | None = None):
        net = self.network
        src = self.source_address()
        now = self.clock.now()
        if addr in net.bridges:
            return self._bridge(net.bridges[addr], src, now, port, timeout)
        target = net.host_at(addr)
        wait = timeout if timeout and timeout > 0 else DEFAULT_CONNECT_TIMEOUT
        cut = net.cut(self.source, target)
        delay = net.latency(self.source, target) if target is not None else 0.0
        if cut is None and target is not None and net.lost(self.source, target, now, src, addr, port):
            cut = "timeout"                     # the link's loss took every SYN of this attempt
        if cut is not None or delay >= wait:
            mode = cut or "timeout"
            if mode == "timeout":               # the SYN goes unanswered until the timeout
                self.clock.advance(wait)
            reason = os.strerror(LINK_MODES[mode])
            net.connections.append(Connection(now, self.source, src, target, addr, port, reason))
            raise ConnectFailure(reason)
        if target is None or not net.is_up(target) or port not in listening_ports(self.hosts[target]):
            reason = net.refusal(addr) if target is None else os.strerror(errno.ECONNREFUSED)
            net.connections.append(Connection(now, self.source, src, target, addr, port, reason))
            raise ConnectFailure(reason)
        if delay > 0:
            self.clock.advance(delay)
        net.connections.append(Connection(now, self.source, src, target, addr, port, "connected"))
        host = net.hooked(target, self.hosts[target])
        return HostConnector({addr: host}, client_addr=src).connect(addr, port, timeout)

    def _bridge(self, bridge: BridgeSpec, src: str, now: float, port: int,
                timeout: float | None):
        """Out of the lab: a real loopback connection to the MTA behind ``bridge``
        (whatever port the lab host asked for, the bridge's own port is used)."""
        try:
            loop = ipaddress.ip_address(src).is_loopback
        except ValueError:
            loop = False
        try:
            channel = SocketConnector(src if loop else "").connect(*bridge.connect, timeout)
        except ConnectFailure as e:
            self.network.connections.append(
                Connection(now, self.source, src, bridge.name, bridge.address, port, str(e)))
            raise
        self.network.connections.append(
            Connection(now, self.source, src, bridge.name, bridge.address, port, "connected"))
        return channel


class _Hooked:
    """A host whose new smtpd sessions get the lab's policies (everything else as is)."""

    def __init__(self, host, hooks: list[Callable]) -> None:
        self._host = host
        self._hooks = hooks

    def smtpd(self, client_addr: str = "127.0.0.1", client_port: int = 0, service=None):
        engine = self._host.smtpd(client_addr, client_port, service=service)
        for hook in self._hooks:
            hook(engine)
        return engine

    def __getattr__(self, name: str):
        return getattr(self._host, name)
