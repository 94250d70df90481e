"""lab.toml: what a lab is made of -- its hosts, their addresses, the links between them.

A lab is a folder::

    LAB/lab.toml           this file
    LAB/zones/*.zone       the virtual DNS (standard zone-file syntax)
    LAB/hosts/NAME/        one host root per host (created on first load)

lab.toml, with every key (only ``hosts.name``, ``hosts.address`` and
``hosts.hostname`` are required)::

    [lab]
    name = "two-domains"
    description = "example.com and example.org, each with its MX host"
    seed = 1                          # the same seed gives the same run
    start = 2026-11-25T09:00:00Z      # the simulated clock's start (UTC)
    client = "127.0.0.1"              # where `lab send` connects from
    ca = "mailsim Lab CA"             # a lab CA (LAB/ca/), made on first load

    [[hosts]]
    name = "mail"                     # hosts/mail/, and the name in every command
    address = "127.0.0.2"             # or: addresses = ["127.0.0.2", "192.0.2.2"]
    hostname = "mail.example.com"     # myhostname
    description = "MX of example.com"
    users = ["alice"]                 # accounts in etc/passwd
    [hosts.main_cf]                   # main.cf settings written when the host is created
    relayhost = "[smtp.isp.example.net]"
    [hosts.files]                     # tables written (and compiled) when it is created
    "/etc/postfix/transport" = "example.net  smtp:[127.0.0.4]\\n"
    [hosts.tls]                       # a key and certificate made when it is created
    certificate = "ca"                # "ca" (signed by the lab CA), "self-signed" or "none"
    names = ["mail.example.com"]      # the names it certifies (default: hostname)

    [[links]]
    between = ["mail", "mx1"]
    latency = "0.2s"                  # simulated time a session over the link takes
    loss = 0.0                        # share of connection attempts lost (timed out)

    [[bridges]]                       # a real MTA outside the lab, on loopback
    name = "postfix"                  # (mailsim.lab.bridge)
    address = "127.0.0.50"            # the lab address that leads to it (A records, relayhost)
    connect = "127.0.0.1:2526"        # where it really listens: loopback only

    [[faults]]                        # see mailsim.lab.faults for every kind
    kind = "host-down"                # host-down, link-cut, slow-link, dns-servfail,
    target = "mx1"                    #   dns-nxdomain, greylist, mailbox-full
    at = "10m"                        # counted from [lab] start (or a date-time)
    until = "1h10m"                   # the same; or duration = "1h"

The ``main_cf`` and ``files`` settings apply once, when the host folder is
created; afterwards the learner edits the host's own files, as on a server.

TLS (:mod:`mailsim.tls.certs`): with ``[lab] ca`` the lab has a CA, made in
``LAB/ca/`` (``ca.crt``, ``ca.key``) when the lab is first loaded, and every
host gets its certificate in ``/etc/ssl/certs/lab-ca.pem`` (as if the
administrator had installed it with ``update-ca-certificates``). A host's
``[hosts.tls]`` makes ``/etc/postfix/tls/key.pem`` and ``cert.pem`` when its
folder is created -- ``certificate = "ca"``: the lab CA signs it (``openssl
req -new`` + ``openssl x509 -req``); ``"self-signed"``: ``openssl req -x509``
-- and writes the main.cf lines that name them (``smtpd_tls_cert_file``,
``smtpd_tls_key_file``; for ``"ca"`` also ``smtpd_tls_CAfile`` and
``smtp_tls_CAfile`` = the lab CA). It sets no security level: write
``smtpd_tls_security_level`` and ``smtp_tls_security_level`` in ``main_cf``
(which also wins over these lines).

Every mistake is reported as ``lab.toml:LINE: what is wrong -- how to fix it``
(:class:`LabError`), never as a traceback.

Not modelled: subnets and routing (every address reaches every other one;
links only add latency and loss).

Examples
--------
>>> cfg = parse_lab_toml('''
... [lab]
... name = "demo"
... [[hosts]]
... name = "mail"
... address = "127.0.0.2"
... hostname = "mail.example.com"
... ''')
>>> cfg.name, cfg.hosts[0].addresses, cfg.seed
('demo', ('127.0.0.2',), 0)
>>> parse_lab_toml('[[hosts]]\\nname = "mail"\\nhostname = "m.example"\\n', "x/lab.toml")
Traceback (most recent call last):
...
mailsim.lab.config.LabError: x/lab.toml:1: host "mail" has no address -- add address = "127.0.0.2" (or addresses = [...])
"""
from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from ..clock import DEFAULT_EPOCH
from .duration import parse_duration, parse_instant

__all__ = ["LabError", "LabConfig", "HostSpec", "LinkSpec", "BridgeSpec", "TLSSpec",
           "parse_lab_toml", "load_lab_toml"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_LAB_KEYS = {"name", "description", "seed", "start", "client", "ca"}
_HOST_KEYS = {"name", "address", "addresses", "hostname", "description", "users", "main_cf", "files",
              "tls"}
_TLS_KEYS = {"certificate", "names"}
#: [hosts.tls] certificate = ...
CERTIFICATE_KINDS = ("ca", "self-signed", "none")
_LINK_KEYS = {"between", "latency", "loss", "description"}
_BRIDGE_KEYS = {"name", "address", "connect", "description"}


class LabError(Exception):
    """A mistake in a lab (its lab.toml, a host name, a command): the text says what to fix."""


@dataclass(frozen=True)
class TLSSpec:
    """A host's ``[hosts.tls]``: which certificate it gets, for which names."""
    certificate: str = "none"                 # "ca", "self-signed" or "none"
    names: tuple[str, ...] = ()               # default: the host's hostname
    line: int = 0


@dataclass(frozen=True)
class HostSpec:
    """One ``[[hosts]]`` entry."""
    name: str
    addresses: tuple[str, ...]
    hostname: str
    description: str = ""
    users: tuple[str, ...] = ()
    main_cf: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    line: int = 0
    tls: TLSSpec = field(default_factory=TLSSpec)

    @property
    def address(self) -> str:
        """The host's first (primary) address: where it connects from."""
        return self.addresses[0]


@dataclass(frozen=True)
class LinkSpec:
    """One ``[[links]]`` entry: two hosts, the latency of a session, the loss rate."""
    a: str
    b: str
    latency: float = 0.0
    loss: float = 0.0
    description: str = ""
    line: int = 0


@dataclass(frozen=True)
class BridgeSpec:
    """One ``[[bridges]]`` entry: a lab address whose connections go to a real socket."""
    name: str
    address: str
    connect: tuple[str, int]
    description: str = ""
    line: int = 0


@dataclass
class LabConfig:
    """The parsed lab.toml."""
    name: str
    hosts: list[HostSpec]
    links: list[LinkSpec] = field(default_factory=list)
    description: str = ""
    seed: int = 0
    start: float = DEFAULT_EPOCH
    client: str = "127.0.0.1"
    filename: str = "lab.toml"
    faults: list = field(default_factory=list)      # mailsim.lab.faults.Fault, lab.toml's
    bridges: list[BridgeSpec] = field(default_factory=list)
    ca: str | None = None                           # [lab] ca: the lab CA's name

    def host(self, name: str) -> HostSpec:
        for h in self.hosts:
            if h.name == name:
                return h
        raise LabError(unknown_host(name, [h.name for h in self.hosts]))


def unknown_host(name: str, known: list[str]) -> str:
    """The text for a host name the lab does not have."""
    return (f"no host {name!r} in this lab -- the hosts are: {', '.join(known) or '(none)'}"
            " (see [[hosts]] in lab.toml)")


class _Lines:
    """Finds the line of a table or key in the TOML text (tomllib reports no positions
    for values, only for syntax errors)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def header(self, table: str, index: int) -> int:
        """Line of the ``index``-th ``[[table]]`` (1-based line numbers; 0 if not found)."""
        n = -1
        pat = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
        for i, ln in enumerate(self.lines, 1):
            if pat.match(ln):
                n += 1
                if n == index:
                    return i
        return 0

    def key(self, key: str, start: int = 0) -> int:
        """Line of ``key =`` at or after line ``start``, before the next array-of-tables
        entry; ``start`` itself if not found."""
        pat = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for i in range(max(start, 1), len(self.lines) + 1):
            ln = self.lines[i - 1]
            if i > start and start and re.match(r"^\s*\[\[", ln):
                break
            if pat.match(ln):
                return i
        return start


def _err(filename: str, line: int, text: str) -> LabError:
    return LabError(f"{filename}:{line}: {text}" if line else f"{filename}: {text}")


def load_lab_toml(path) -> LabConfig:
    """Read and check ``path`` (a lab.toml)."""
    from pathlib import Path
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except FileNotFoundError:
        raise LabError(f"{p}: no such file -- a lab folder holds lab.toml; copy a shipped lab "
                       f"with: mailsim lab {p.parent} init --from two-domains") from None
    except UnicodeDecodeError as e:
        raise LabError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    cfg = parse_lab_toml(text, str(p))
    if cfg.name == "":
        cfg.name = p.parent.name
    return cfg


def _str(v: Any, what: str, filename: str, line: int) -> str:
    if not isinstance(v, str):
        raise _err(filename, line, f"{what} must be a string in quotes, not {v!r}")
    return v


def _setting(v: Any, what: str, filename: str, line: int) -> str:
    """A main.cf value: strings as they are; numbers and booleans as Postfix writes them."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return ", ".join(v)
    return _str(v, what, filename, line)


def _check_keys(table: dict, allowed: set[str], where: str, filename: str, lines: _Lines,
                start: int) -> None:
    for k in table:
        if k not in allowed:
            raise _err(filename, lines.key(k, start),
                       f"unknown key {k!r} in {where} -- the keys are: {', '.join(sorted(allowed))}")


def parse_lab_toml(text: str, filename: str = "lab.toml") -> LabConfig:
    """Parse and check lab.toml text; raise :class:`LabError` naming the file and line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        where = f"{filename}:{m.group(1)}:{m.group(2)}" if m else filename
        raise LabError(f"{where}: TOML syntax error: {msg} -- strings need quotes "
                       "(name = \"mail\"), tables [lab], host entries [[hosts]]") from None
    lines = _Lines(text)
    for k in data:
        if k not in ("lab", "hosts", "links", "faults", "bridges"):
            raise _err(filename, lines.key(k) or _find_table(lines, k),
                       f"unknown table or key {k!r} -- lab.toml has [lab], [[hosts]], [[links]], "
                       "[[faults]] and [[bridges]]")
    lab = data.get("lab", {})
    if not isinstance(lab, dict):
        raise _err(filename, lines.key("lab"), "lab must be a table: [lab]")
    lab_line = _find_table(lines, "lab")
    _check_keys(lab, _LAB_KEYS, "[lab]", filename, lines, lab_line)
    cfg = LabConfig(name="", hosts=[], filename=filename)
    if "name" in lab:
        cfg.name = _str(lab["name"], "[lab] name", filename, lines.key("name", lab_line))
    cfg.description = _str(lab.get("description", ""), "[lab] description", filename,
                           lines.key("description", lab_line))
    seed = lab.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise _err(filename, lines.key("seed", lab_line), f"seed must be a whole number, not {seed!r}")
    cfg.seed = seed
    if "start" in lab:
        try:
            cfg.start = parse_instant(lab["start"])
        except ValueError as e:
            raise _err(filename, lines.key("start", lab_line), str(e)) from None
    cfg.client = _address(lab.get("client", "127.0.0.1"), "[lab] client", filename,
                          lines.key("client", lab_line))
    if "ca" in lab:
        ca = _str(lab["ca"], "[lab] ca", filename, lines.key("ca", lab_line)).strip()
        if not ca:
            raise _err(filename, lines.key("ca", lab_line), "[lab] ca is the lab CA's name "
                       "(its CN), e.g. ca = \"mailsim Lab CA\" -- or leave it out")
        cfg.ca = ca

    hosts = data.get("hosts", [])
    if not isinstance(hosts, list) or not hosts:
        raise _err(filename, 0, "no hosts -- add at least one [[hosts]] entry with name, "
                                "address and hostname")
    seen: dict[str, str] = {}
    for i, h in enumerate(hosts):
        cfg.hosts.append(_host(h, i, filename, lines, seen))
    for h in cfg.hosts:
        if h.tls.certificate == "ca" and cfg.ca is None:
            raise _err(filename, h.tls.line, f'host "{h.name}": certificate = "ca" needs a lab '
                       'CA -- add ca = "mailsim Lab CA" to [lab] (or use "self-signed")')
    names = [h.name for h in cfg.hosts]
    for i, ln in enumerate(data.get("links", []) or []):
        cfg.links.append(_link(ln, i, filename, lines, names))
    for i, f in enumerate(data.get("faults", []) or []):
        cfg.faults.append(_fault(f, i, filename, lines, names, cfg.start))
    for i, b in enumerate(data.get("bridges", []) or []):
        cfg.bridges.append(_bridge(b, i, filename, lines, cfg))
    return cfg


def _bridge(b: Any, i: int, filename: str, lines: _Lines, cfg: LabConfig) -> BridgeSpec:
    """A ``[[bridges]]`` entry (see :mod:`mailsim.lab.bridge`).

    >>> parse_lab_toml('''
    ... [[hosts]]
    ... name = "mail"
    ... address = "127.0.0.2"
    ... hostname = "mail.example.com"
    ... [[bridges]]
    ... name = "real"
    ... address = "127.0.0.50"
    ... connect = "192.0.2.1:25"
    ... ''')
    Traceback (most recent call last):
    ...
    mailsim.lab.config.LabError: lab.toml:9: bridge "real": connect = "192.0.2.1:25" is not on loopback -- mailsim never leaves this machine: write e.g. connect = "127.0.0.1:2526"
    """
    from ..serve import parse_listen
    start = lines.header("bridges", i)
    if not isinstance(b, dict):
        raise _err(filename, start, "each bridge is a [[bridges]] table")
    _check_keys(b, _BRIDGE_KEYS, "[[bridges]]", filename, lines, start)
    name = _str(b.get("name", ""), "[[bridges]] name", filename, lines.key("name", start) or start)
    taken = [h.name for h in cfg.hosts] + [x.name for x in cfg.bridges]
    if not _NAME.match(name) or name in taken:
        raise _err(filename, lines.key("name", start) or start,
                   f"a bridge needs a name of its own (letters, digits, - and _), not {name!r}")
    cline = lines.key("connect", start) or start
    connect = _str(b.get("connect", ""), "[[bridges]] connect", filename, cline)
    try:
        where = parse_listen(connect)
    except ValueError:
        raise _err(filename, cline, f'bridge "{name}": connect = "{connect}" is not on loopback -- '
                   'mailsim never leaves this machine: write e.g. connect = "127.0.0.1:2526"') from None
    aline = lines.key("address", start) or start
    address = _address(b.get("address", where[0]), f'bridge "{name}" address', filename, aline)
    owners = {a: h.name for h in cfg.hosts for a in h.addresses}
    owners.update({x.address: x.name for x in cfg.bridges})
    if address in owners:
        raise _err(filename, aline, f'bridge "{name}": address {address} belongs to '
                   f'"{owners[address]}" -- give the bridge a lab address of its own, '
                   'e.g. 127.0.0.50')
    return BridgeSpec(name, address, where,
                      _str(b.get("description", ""), "description", filename, start), start)


def _fault(f: Any, i: int, filename: str, lines: _Lines, names: list[str], start: float):
    from .faults import FaultError, parse_fault
    line = lines.header("faults", i)
    if not isinstance(f, dict):
        raise _err(filename, line, "each fault is a [[faults]] table")
    try:
        return parse_fault(f, start=start, hosts=names, origin="lab.toml")
    except FaultError as e:
        key, text = e.args
        raise _err(filename, lines.key(key, line), text) from None


def _find_table(lines: _Lines, name: str, start: int = 0) -> int:
    """Line of the table ``[name]`` (after line ``start``, before the next ``[[...]]``
    when ``start`` is given); 0 if not found."""
    pat = re.compile(rf"^\s*\[\s*{re.escape(name)}\s*\]")
    for i, ln in enumerate(lines.lines, 1):
        if i <= start:
            continue
        if start and re.match(r"^\s*\[\[", ln):
            break
        if pat.match(ln):
            return i
    return 0


def _address(v: Any, what: str, filename: str, line: int) -> str:
    s = _str(v, what, filename, line)
    try:
        return str(ipaddress.ip_address(s.strip("[]")))
    except ValueError:
        raise _err(filename, line, f"{what}: {s!r} is not an IP address -- write e.g. "
                                   "\"127.0.0.2\" (names belong in the zone files)") from None


def _host(h: Any, i: int, filename: str, lines: _Lines, seen: dict[str, str]) -> HostSpec:
    start = lines.header("hosts", i)
    if not isinstance(h, dict):
        raise _err(filename, start, "each host is a [[hosts]] table")
    _check_keys(h, _HOST_KEYS, "[[hosts]]", filename, lines, start)
    if "name" not in h:
        raise _err(filename, start, "a host without a name -- add name = \"mail\" "
                                    "(its folder is hosts/NAME)")
    name = _str(h["name"], "host name", filename, lines.key("name", start))
    if not _NAME.match(name):
        raise _err(filename, lines.key("name", start),
                   f"host name {name!r}: use letters, digits, '-' and '_' (it names a folder)")
    if name in seen:
        raise _err(filename, lines.key("name", start), f"two hosts are named {name!r} -- "
                                                       "host names must differ")
    seen[name] = name
    if "address" in h and "addresses" in h:
        raise _err(filename, lines.key("addresses", start),
                   f"host {name!r} has both address and addresses -- keep one")
    raw = h.get("addresses", h.get("address"))
    if raw is None:
        raise _err(filename, start, f"host \"{name}\" has no address -- add address = "
                                    "\"127.0.0.2\" (or addresses = [...])")
    key = "addresses" if "addresses" in h else "address"
    raw_list = raw if isinstance(raw, list) else [raw]
    if not raw_list:
        raise _err(filename, lines.key(key, start), f"host {name!r}: addresses is empty")
    addrs = tuple(_address(a, f"host {name!r} address", filename, lines.key(key, start))
                  for a in raw_list)
    for a in addrs:
        if a in seen:
            raise _err(filename, lines.key(key, start),
                       f"address {a} of host {name!r} is also host {seen[a]!r}'s -- "
                       "every host needs addresses of its own")
        seen[a] = name
    if "hostname" not in h:
        raise _err(filename, start, f"host {name!r} has no hostname -- add hostname = "
                                    f"\"{name}.example.com\" (it becomes myhostname)")
    hostname = _str(h["hostname"], "hostname", filename, lines.key("hostname", start)).rstrip(".")
    if not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", hostname):
        raise _err(filename, lines.key("hostname", start),
                   f"hostname {hostname!r} is not a host name -- write e.g. mail.example.com")
    users = h.get("users", [])
    if not isinstance(users, list) or not all(isinstance(u, str) and u for u in users):
        raise _err(filename, lines.key("users", start), "users is a list of account names, "
                                                        "e.g. users = [\"alice\", \"bob\"]")
    tables: dict[str, dict[str, str]] = {}
    for tkey in ("main_cf", "files"):
        t = h.get(tkey, {})
        if not isinstance(t, dict):
            raise _err(filename, lines.key(tkey, start), f"{tkey} must be a table: "
                                                         f"[hosts.{tkey}] after the host's keys")
        tables[tkey] = {str(k): _setting(v, f"{tkey} {k}", filename, lines.key(str(k), start))
                        for k, v in t.items()}
    for k, v in tables["main_cf"].items():
        if "\n" in v:
            raise _err(filename, lines.key(k, start), f"main_cf {k}: one line only "
                                                      "(main.cf continues lines with leading space)")
    return HostSpec(name, addrs, hostname, _str(h.get("description", ""), "description", filename,
                                                lines.key("description", start)),
                    tuple(users), tables["main_cf"], tables["files"], start,
                    _tls(h.get("tls", {}), name, hostname, filename, lines, start))


def _tls(t: Any, name: str, hostname: str, filename: str, lines: _Lines, start: int) -> TLSSpec:
    """A host's ``[hosts.tls]`` table.

    >>> HOST = '[[hosts]]\\nname = "mx"\\naddress = "127.0.0.2"\\nhostname = "mx.example.org"\\n'
    >>> parse_lab_toml(HOST + '[hosts.tls]\\ncertificate = "self-signed"\\n').hosts[0].tls
    TLSSpec(certificate='self-signed', names=('mx.example.org',), line=6)
    >>> parse_lab_toml(HOST + '[hosts.tls]\\ncertificate = "ca"\\n')
    Traceback (most recent call last):
    ...
    mailsim.lab.config.LabError: lab.toml:6: host "mx": certificate = "ca" needs a lab CA -- add ca = "mailsim Lab CA" to [lab] (or use "self-signed")
    >>> parse_lab_toml(HOST + '[hosts.tls]\\ncertificate = "selfsigned"\\n')
    Traceback (most recent call last):
    ...
    mailsim.lab.config.LabError: lab.toml:6: host "mx": certificate = "selfsigned" -- write "ca" (signed by the lab CA), "self-signed" or "none"
    >>> parse_lab_toml(HOST + '[hosts.tls]\\ncertificate = "self-signed"\\nnames = "mx"\\n')
    Traceback (most recent call last):
    ...
    mailsim.lab.config.LabError: lab.toml:7: host "mx": names is a list of host names the certificate is for, e.g. names = ["mx.example.org"]
    """
    tline = _find_table(lines, "hosts.tls", start) or start
    if not isinstance(t, dict):
        raise _err(filename, lines.key("tls", start), "tls must be a table: [hosts.tls] after "
                                                      "the host's keys")
    _check_keys(t, _TLS_KEYS, "[hosts.tls]", filename, lines, tline)
    cline = lines.key("certificate", tline) if "certificate" in t else tline
    kind = _str(t.get("certificate", "none"), "[hosts.tls] certificate", filename, cline)
    if kind not in CERTIFICATE_KINDS:
        raise _err(filename, cline, f'host "{name}": certificate = "{kind}" -- write "ca" '
                   '(signed by the lab CA), "self-signed" or "none"')
    nline = lines.key("names", tline) if "names" in t else tline
    names = t.get("names", [hostname])
    ok = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\.?$")
    if (not isinstance(names, list) or not names
            or not all(isinstance(n, str) and ok.match(n) for n in names)):
        raise _err(filename, nline, f'host "{name}": names is a list of host names the '
                   f'certificate is for, e.g. names = ["{hostname}"]')
    if "names" in t and kind == "none":
        raise _err(filename, nline, f'host "{name}": names without a certificate -- add '
                   'certificate = "ca" or "self-signed"')
    return TLSSpec(kind, tuple(n.rstrip(".") for n in names), cline)


def _link(ln: Any, i: int, filename: str, lines: _Lines, names: list[str]) -> LinkSpec:
    start = lines.header("links", i)
    if not isinstance(ln, dict):
        raise _err(filename, start, "each link is a [[links]] table")
    _check_keys(ln, _LINK_KEYS, "[[links]]", filename, lines, start)
    pair = ln.get("between")
    bline = lines.key("between", start)
    if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
        raise _err(filename, bline or start, "a link joins two hosts: between = [\"mail\", \"mx1\"]")
    for n in pair:
        if n not in names:
            raise _err(filename, bline, unknown_host(n, names))
    if pair[0] == pair[1]:
        raise _err(filename, bline, f"a link joins two different hosts, not {pair[0]!r} to itself")
    try:
        latency = parse_duration(ln.get("latency", 0))
    except ValueError as e:
        raise _err(filename, lines.key("latency", start), f"latency: {e}") from None
    loss = ln.get("loss", 0.0)
    if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not 0 <= loss <= 1:
        raise _err(filename, lines.key("loss", start),
                   f"loss is a fraction from 0 to 1 (0.05 = 5 %), not {loss!r}")
    return LinkSpec(pair[0], pair[1], latency, float(loss),
                    _str(ln.get("description", ""), "description", filename, start), start)
