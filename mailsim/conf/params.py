"""main.cf as the Postfix daemons see it: values, defaults, types, lists.

Models global/mail_conf*.c (how daemons read parameters: ``$name``
expansion, ``yes``/``no`` booleans, numbers, time values with units) and
global/mail_parm_split.c with util/mystrtok.c (list splitting). Defaults
come from :mod:`mailsim.conf.defaults`; the parameters that depend on the
machine are ``myhostname``, ``mydomain``, ``mynetworks`` and ``process_id``,
given by the host (:meth:`mailsim.host.Host.host_defaults`).

As in Postfix, ``mydomain`` defaults to ``myhostname`` minus its first
label, and a machine name without a dot becomes ``name.$mydomain``.

>>> conf = MainConfig.from_text("myhostname = mail.example.com\\n"
...                             "mydestination = $myhostname, localhost.$mydomain\\n")
>>> conf["mydestination"], conf.raw("mydestination")
('mail.example.com, localhost.example.com', '$myhostname, localhost.$mydomain')
>>> conf.default("mydestination")
'$myhostname, localhost.$mydomain, localhost'
>>> conf.list("mydestination")
['mail.example.com', 'localhost.example.com']
>>> conf.bool("biff"), conf.int("message_size_limit"), conf.time("maximal_queue_lifetime")
(True, 10240000, 432000.0)
>>> conf.set("relayhost", "[smtp.isp.example]")["relayhost"]
'[smtp.isp.example]'
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Iterator

from .defaults import (DEFAULT_MYDOMAIN, LEGACY, RAW, READONLY, builtin_defaults,
                       service_defaults)
from .expand import PARSE_ERROR, expand as mac_expand
from .parser import MAIN_CF, ConfigError, brace_tokens, parse_main_cf

__all__ = ["MainConfig", "split_list", "default_services", "own_networks"]

_LIST_SEPARATORS = ", \t\r\n"
_INT = re.compile(r"[ \t\r\n\v\f]*[+-]?[0-9]+")
_TIME_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def split_list(value: str, *, strip_braces: bool = True) -> list[str]:
    """Split a parameter value into items, like Postfix's mail_parm_split().

    Separators are comma, space, tab, CR and LF. A ``{...}`` group is never
    split, so ``inline:{ a=b, c=d }`` and ``regexp:{{/^[^A-Z]/ Bogus}}`` stay
    one item. An item that is a whole ``{ ... }`` group loses its braces and
    the whitespace inside them (unless ``strip_braces=False``: smtpd's
    restriction parser keeps them, e.g. for ``check_policy_service { ... }``).

    >>> split_list("permit_mynetworks,reject_unauth_destination  permit")
    ['permit_mynetworks', 'reject_unauth_destination', 'permit']
    >>> split_list("CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}}")
    ['CONNECT', 'GET', 'POST', 'regexp:{{/^[^A-Z]/ Bogus}}']
    >>> split_list("inline:{ a=b, c=d }, { reject_unlisted_recipient }")
    ['inline:{ a=b, c=d }', 'reject_unlisted_recipient']
    >>> split_list("{ x }", strip_braces=False)
    ['{ x }']
    >>> split_list("{a}b")
    Traceback (most recent call last):
    ...
    ValueError: syntax error after '}' in "{a}b"
    """
    from .master import extpar
    out: list[str] = []
    for token in _tokens(value):
        if strip_braces and token.startswith("{"):
            token, err = extpar(token)
            if err:
                raise ValueError(err)
        out.append(token)
    return out


def _tokens(value: str) -> Iterator[str]:
    """util/mystrtok.c mystrtokq(): separators outside ``{}`` end a token."""
    return brace_tokens(value, _LIST_SEPARATORS)


def default_services() -> tuple[tuple[str, str], ...]:
    """``(service, program)`` of Debian's master.cf (``data/master.cf``)."""
    from .defaults import _recorded_services
    return _recorded_services()


def _services_of(path: Path) -> tuple[tuple[str, str], ...]:
    from .master import parse_master_cf
    try:
        return tuple((e.service, e.program) for e in parse_master_cf(path.read_text()))
    except (OSError, ConfigError):
        return default_services()


def own_networks(interfaces: list[str], style: str, inet_interfaces: list[str],
                 inet_protocols: list[str]) -> str:
    """The default mynetworks for a machine's ``addr/prefix`` interfaces.

    Models global/mynetworks.c: ``host`` gives each address, ``subnet`` each
    interface's network, ``class`` the IPv4 class A/B/C network (subnets for
    IPv6); only interfaces in ``inet_interfaces`` and families in
    ``inet_protocols`` count.

    >>> ifs = ["127.0.0.1/8", "192.0.2.2/24", "::1/128", "fd00::2/64"]
    >>> own_networks(ifs, "subnet", ["all"], ["all"])
    '127.0.0.0/8 192.0.2.0/24 [::1]/128 [fd00::]/64'
    >>> own_networks(ifs, "host", ["all"], ["ipv4"])
    '127.0.0.1/32 192.0.2.2/32'
    >>> own_networks(ifs, "class", ["127.0.0.1"], ["all"])
    '127.0.0.0/8'
    """
    import ipaddress
    protocols = {p.lower() for p in inet_protocols}
    families = ({4, 6} if "all" in protocols or not protocols else
                {4 for p in protocols if p == "ipv4"} | {6 for p in protocols if p == "ipv6"})
    wanted = {i.lower().strip("[]") for i in inet_interfaces}
    listen_all = not wanted or "all" in wanted
    out: list[str] = []
    for text in interfaces:
        iface = ipaddress.ip_interface(text)
        if iface.version not in families:
            continue
        addr = str(iface.ip)
        if not listen_all and addr not in wanted and not (
                iface.ip.is_loopback and wanted & {"loopback-only", "localhost"}):
            continue
        if style == "host":
            net = ipaddress.ip_network(f"{addr}/{iface.max_prefixlen}")
        elif style == "class" and iface.version == 4:
            first = int(iface.ip) >> 24
            bits = 8 if first < 128 else 16 if first < 192 else 24 if first < 224 else 4
            net = ipaddress.ip_network(f"{addr}/{bits}", strict=False)
        else:
            net = iface.network
        shown = f"{net.network_address}/{net.prefixlen}" if net.version == 4 else \
            f"[{net.network_address}]/{net.prefixlen}"
        if shown not in out:
            out.append(shown)
    return " ".join(out)


class MainConfig:
    """An immutable view of main.cf plus Postfix's defaults.

    Build one with :meth:`load` or :meth:`from_text`. ``explicit`` holds the
    settings of main.cf (the last one of each name, in file order);
    ``warnings`` Postfix's warnings about the file. Read-only parameters
    (``process_id``, ``process_name``, ``service_name``) set in main.cf are
    ignored, as Postfix ignores them; they are kept in
    ``readonly_assignments``.

    ``host_defaults`` gives the machine-dependent defaults (``myhostname``,
    ``mydomain``, ``mynetworks``, ``process_id``). Two optional keys let
    Postfix's own rules apply: ``hostname``, the machine's name, which Postfix
    completes with ``.$mydomain`` when it has no dot; ``interfaces``, the
    machine's ``addr/prefix`` list, from which the default ``mynetworks`` is
    computed with ``mynetworks_style``, ``inet_interfaces`` and
    ``inet_protocols`` (without it, ``mynetworks`` is taken as given). ``services`` lists master.cf's
    ``(service, program)`` pairs, which define parameters such as
    ``relay_destination_concurrency_limit`` (default: Debian's master.cf).
    """

    def __init__(self, explicit: dict[str, str], *, filename: str = MAIN_CF,
                 host_defaults: dict[str, str] | None = None,
                 services: Iterable[tuple[str, str]] | None = None,
                 warnings: Iterable[str] = (), lines: dict[str, int] | None = None,
                 readonly_assignments: dict[str, str] | None = None) -> None:
        self.filename = filename
        self.explicit: dict[str, str] = dict(explicit)
        self.lines: dict[str, int] = dict(lines or {})
        self.warnings: list[str] = list(warnings)
        self.readonly_assignments: dict[str, str] = dict(readonly_assignments or {})
        self.host_defaults: dict[str, str] = dict(host_defaults or {})
        self.services: tuple[tuple[str, str], ...] = (
            default_services() if services is None else tuple(services))
        self._defaults = builtin_defaults(self.host_defaults)
        for name in LEGACY:
            self._defaults.setdefault(name, "")
        self._defaults.update(service_defaults(self.services))
        self._cache: dict[str, str] = {}

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_text(cls, text: str, host_defaults: dict[str, str] | None = None,
                  filename: str = MAIN_CF, *,
                  services: Iterable[tuple[str, str]] | None = None) -> "MainConfig":
        """Parse main.cf text (:class:`ConfigError` on a line Postfix refuses)."""
        parsed = parse_main_cf(text, filename)
        explicit: dict[str, str] = {}
        lines: dict[str, int] = {}
        readonly: dict[str, str] = {}
        for e in parsed.entries:
            if e.name in READONLY:
                readonly[e.name] = e.value
                continue
            explicit[e.name] = e.value
            lines[e.name] = e.line
        return cls(explicit, filename=filename, host_defaults=host_defaults,
                   services=services, warnings=parsed.warnings, lines=lines,
                   readonly_assignments=readonly)

    @classmethod
    def load(cls, path: str | os.PathLike, host_defaults: dict[str, str] | None = None, *,
             filename: str = MAIN_CF,
             services: Iterable[tuple[str, str]] | None = None) -> "MainConfig":
        """Read main.cf at ``path`` (messages call it ``filename``).

        The services come from the master.cf next to it when it can be
        read, else from Debian's master.cf.
        """
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError(filename, None, f"open {filename}: {e.strerror}",
                              "create the host with 'mailsim init' (it writes main.cf)") from None
        if services is None:
            services = _services_of(path.with_name("master.cf"))
        return cls.from_text(text, host_defaults, filename, services=services)

    def set(self, name: str, value: str) -> "MainConfig":
        """A new config with ``name = value`` added or replaced (like ``-o name=value``)."""
        explicit = dict(self.explicit)
        explicit[name] = value
        lines = {k: v for k, v in self.lines.items() if k != name}
        return MainConfig(explicit, filename=self.filename, host_defaults=self.host_defaults,
                          services=self.services, warnings=self.warnings, lines=lines,
                          readonly_assignments=self.readonly_assignments)

    # -- raw values and defaults ----------------------------------------------------------------
    def default(self, name: str) -> str | None:
        """The raw default value of ``name`` (None for an unknown parameter)."""
        if name == "myhostname":
            return self._default_myhostname()
        if name == "mydomain":
            return self._default_mydomain()
        if name == "process_id":
            return self.host_defaults.get("process_id") or str(os.getpid())
        if name == "mynetworks" and self.host_defaults.get("interfaces"):
            return self._default_mynetworks()
        return self._defaults.get(name)

    def defaults(self) -> dict[str, str]:
        """Every known parameter's raw default (built-in, service, legacy)."""
        out = dict(self._defaults)
        for name in ("myhostname", "mydomain", "process_id"):
            out[name] = self.default(name) or ""
        return out

    def raw(self, name: str) -> str | None:
        """main.cf's value if set, else the default; None for an unknown parameter."""
        if name in self.explicit:
            return self.explicit[name]
        return self.default(name)

    def _explicit_eval(self, name: str) -> str | None:
        """A main.cf value expanded with main.cf values only (mail_conf_lookup_eval)."""
        if name not in self.explicit:
            return None
        return mac_expand(self.explicit[name], self.explicit.get)[0]

    def _default_myhostname(self) -> str:
        machine = self.host_defaults.get("hostname")
        if machine and "." not in machine:
            return f"{machine}.{self._explicit_eval('mydomain') or DEFAULT_MYDOMAIN}"
        return self.host_defaults.get("myhostname") or machine or self._defaults["myhostname"]

    def _default_mydomain(self) -> str:
        if "myhostname" in self.explicit:
            host = self._explicit_eval("myhostname") or ""
        elif self.host_defaults.get("mydomain"):
            return self.host_defaults["mydomain"]
        else:
            host = self._default_myhostname()
        return host.partition(".")[2] if "." in host else DEFAULT_MYDOMAIN

    def _default_mynetworks(self) -> str:
        """Postfix's mynetworks(): the networks of the interfaces Postfix listens on."""
        style = self["mynetworks_style"].strip().lower()
        if style not in ("class", "subnet", "host"):
            raise self._bad("mynetworks_style",
                            f'unknown mynetworks mask style value "{style}" in "{style}"',
                            "use host, subnet or class")
        return own_networks(self.host_defaults["interfaces"].split(), style,
                            self.list("inet_interfaces"), self.list("inet_protocols"))

    # -- expanded values --------------------------------------------------------------------
    def _lookup(self, name: str) -> str | None:
        return self.raw(name)

    def _expand(self, text: str, name: str | None = None) -> str:
        problems: list[str] = []
        result, status = mac_expand(text, self._lookup, warn=problems.append)
        if status & PARSE_ERROR:
            where = f"{name} = {text}: " if name else f'"{text}": '
            raise ConfigError(self.filename, self.lines.get(name or ""),
                              where + "; ".join(problems + ["macro processing error"]),
                              "check the $name, ${name?value}, ${name:value} syntax "
                              "(postconf(5)); write $$ for a literal $")
        return result

    def __getitem__(self, name: str) -> str:
        """The value of ``name`` with ``$name`` expanded (raw parameters stay raw)."""
        try:
            return self._cache[name]
        except KeyError:
            pass
        value = self.raw(name)
        if value is None:
            raise KeyError(name)
        if name not in RAW:
            value = self._expand(value, name)
        self._cache[name] = value
        return value

    def get(self, name: str, default: str | None = None) -> str | None:
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self.explicit or self.default(name) is not None)

    def expand(self, text: str) -> str:
        """Expand ``$name`` in any text with this configuration's values.

        >>> MainConfig.from_text("myhostname = mx.example.org\\n").expand("$myhostname ESMTP $mail_name")
        'mx.example.org ESMTP Postfix'
        """
        return self._expand(text)

    # -- typed access -----------------------------------------------------------------------
    def _bad(self, name: str, message: str, hint: str) -> ConfigError:
        return ConfigError(self.filename, self.lines.get(name), message, hint)

    def bool(self, name: str) -> bool:
        """``yes`` or ``no`` (any case); anything else is Postfix's fatal error."""
        value = self[name]
        if value.lower() == "yes":
            return True
        if value.lower() == "no":
            return False
        raise self._bad(name, f"bad boolean configuration: {name} = {value}",
                        f'set {name} to "yes" or "no"')

    def int(self, name: str) -> int:
        """An integer parameter (optional sign, digits, nothing else)."""
        value = self[name]
        m = _INT.match(value)
        if not m or m.end() != len(value) or not -2**31 <= int(m.group(0)) < 2**31:
            raise self._bad(name, f"bad numerical configuration: {name} = {value}",
                            f"set {name} to a whole number, e.g. {self.default(name) or 0}")
        return int(m.group(0))

    def time(self, name: str, default_unit: str | None = None) -> float:
        """A time parameter in seconds: a number and a unit ``s m h d w``.

        Without a unit the parameter's own default unit applies (Postfix takes
        it from the default value: ``delay_warning_time = 4`` means 4 hours);
        ``default_unit`` overrides that.

        >>> c = MainConfig.from_text("delay_warning_time = 4\\nipc_timeout = 2m\\n")
        >>> c.time("delay_warning_time"), c.time("ipc_timeout")
        (14400.0, 120.0)
        """
        value = self[name]
        unit = default_unit or self._default_unit(name)
        m = _INT.match(value)
        if m:
            number = int(m.group(0))
            rest = value[m.end():]
            u = rest or unit            # one unit letter at most: "5d1h" is invalid (conv_time)
            if number >= 0 and u in _TIME_UNITS and number * _TIME_UNITS[u] < 2**31:
                return float(number * _TIME_UNITS[u])
        raise self._bad(name, f"parameter {name}: bad time value or unit: {value}",
                        f"write a number and a unit (s, m, h, d or w), e.g. "
                        f"{self.default(name) or '300s'}")

    def _default_unit(self, name: str) -> str:
        default = self.default(name)
        if default is None:
            return "s"
        try:
            text = self._expand(default)
        except ConfigError:
            text = default
        for c in text:
            if c.isalpha():
                return c
        return "s"

    def list(self, name: str) -> list[str]:
        """The expanded value split into items (see :func:`split_list`)."""
        try:
            return split_list(self[name])
        except ValueError as e:
            raise self._bad(name, f"{name}: {e}",
                            "balance the { } braces; a braced item stands alone") from None

    def __repr__(self) -> str:
        return f"<MainConfig {self.filename}: {len(self.explicit)} settings>"
