"""Postfix 3.7's parameter defaults, and the rules that make some of them.

Models postconf/postconf_builtin.c (built-in, legacy and read-only
parameters) and postconf/postconf_service.c (parameters named after
master.cf services). The values come from ``data/postconf-d.txt``, the
``postconf -d`` output of Debian's Postfix 3.7.11 on a host called
``vm.localdomain`` whose master.cf was ``data/master.cf``.

That file mixes three kinds of lines, which this module separates:

* built-in parameters (``myhostname``, ``smtpd_banner``, ...);
* service-defined parameters: for every master.cf service whose command is a
  delivery agent (``local``, ``error``, ``virtual``, ``smtp``, ``lmtp``,
  ``pipe``) Postfix adds ``SERVICE_destination_concurrency_limit`` and 15 more
  names whose default is ``$default_...``; ``pipe`` and ``spawn`` services get
  ``SERVICE_time_limit = $command_time_limit``. They exist only while the
  service does (``relay_destination_concurrency_limit`` is an unknown
  parameter on a host without a ``relay`` service). Two of them are also
  built-in with their own value: ``local_destination_concurrency_limit = 2``
  and ``local_destination_recipient_limit = 1``;
* machine-dependent values, :data:`HOST_DEPENDENT`: ``myhostname`` (the
  machine's name; when it has no dot Postfix appends ``.$mydomain``),
  ``mydomain`` (derived from ``myhostname``), ``mynetworks`` (computed from
  the machine's interfaces and ``mynetworks_style``) and ``process_id``.
  Everything else in ``postconf -d`` is the same on every Debian 12 machine
  (``config_directory`` is always ``/etc/postfix`` on a simulated host).

>>> d = builtin_defaults()
>>> d["smtpd_banner"], d["mail_version"]
('$myhostname ESMTP $mail_name', '3.7.11')
>>> "relay_destination_concurrency_limit" in d
False
>>> service_defaults([("relay", "smtp"), ("dovecot", "pipe")])["dovecot_time_limit"]
'$command_time_limit'
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Iterable

__all__ = ["builtin_defaults", "service_defaults", "service_parameter_names",
           "recorded_defaults", "HOST_DEPENDENT", "LEGACY", "READONLY", "RAW",
           "SERVICE_SUFFIXES", "DELIVERY_PROGRAMS", "DEFAULT_HOSTNAME", "DEFAULT_MYDOMAIN"]

#: parameters whose default depends on the machine (``postconf -d`` differs)
HOST_DEPENDENT = ("myhostname", "mydomain", "mynetworks", "process_id")

#: Postfix's fallback domain for a host name without a dot (DEF_MYDOMAIN)
DEFAULT_MYDOMAIN = "localdomain"
#: the machine name used when nothing better is known
DEFAULT_HOSTNAME = "localhost"

#: Legacy parameters: known to postconf (so not "unused"), never listed
#: unless set in main.cf; their default is empty (postconf_builtin.c).
LEGACY = ("virtual_maps", "fallback_relay", "authorized_verp_clients",
          "smtpd_client_connection_limit_exceptions", "postscreen_dnsbl_ttl",
          "postscreen_blacklist_action", "postscreen_dnsbl_whitelist_threshold",
          "postscreen_whitelist_interfaces", "lmtp_per_record_deadline",
          "smtp_per_record_deadline", "smtpd_per_record_deadline",
          "tlsproxy_client_level", "tlsproxy_client_policy")

#: Read-only parameters: a main.cf setting is ignored with a warning.
READONLY = ("process_id", "process_name", "service_name")

#: Raw parameters: their programs expand them at run time with their own
#: macros ($rbl_code, $home, ...), so ``postconf -x`` leaves them alone.
#: (The raw_table entries of smtpd.c, local.c and postscreen.c; checked
#: against real postconf, see tests/golden/postconf/expand.json.)
RAW = ("smtpd_expansion_filter", "default_rbl_reply", "smtpd_reject_footer",
       "command_execution_directory", "forward_path", "mailbox_command",
       "luser_relay", "postscreen_reject_footer", "postscreen_expansion_filter")

#: suffix -> the parameter that provides the default (postconf_service.c)
SERVICE_SUFFIXES: dict[str, str] = {
    "_time_limit": "command_time_limit",
    "_recipient_limit": "default_recipient_limit",
    "_extra_recipient_limit": "default_extra_recipient_limit",
    "_recipient_refill_limit": "default_recipient_refill_limit",
    "_recipient_refill_delay": "default_recipient_refill_delay",
    "_delivery_slot_cost": "default_delivery_slot_cost",
    "_delivery_slot_loan": "default_delivery_slot_loan",
    "_delivery_slot_discount": "default_delivery_slot_discount",
    "_minimum_delivery_slots": "default_minimum_delivery_slots",
    "_initial_destination_concurrency": "initial_destination_concurrency",
    "_destination_concurrency_limit": "default_destination_concurrency_limit",
    "_destination_recipient_limit": "default_destination_recipient_limit",
    "_destination_concurrency_positive_feedback": "default_destination_concurrency_positive_feedback",
    "_destination_concurrency_negative_feedback": "default_destination_concurrency_negative_feedback",
    "_destination_concurrency_failed_cohort_limit": "default_destination_concurrency_failed_cohort_limit",
    "_destination_rate_delay": "default_destination_rate_delay",
    "_transport_rate_delay": "default_transport_rate_delay",
}
_DELIVERY = tuple(s for s in SERVICE_SUFFIXES if s != "_time_limit")

#: master.cf command -> the service-parameter suffixes it gets
DELIVERY_PROGRAMS: dict[str, tuple[str, ...]] = {
    "local": _DELIVERY, "error": _DELIVERY, "virtual": _DELIVERY,
    "smtp": _DELIVERY, "lmtp": _DELIVERY,
    "pipe": ("_time_limit",) + _DELIVERY,
    "spawn": ("_time_limit",),
}


def _data(name: str) -> str:
    return resources.files("mailsim.conf").joinpath("data").joinpath(name).read_text()


@lru_cache(maxsize=1)
def recorded_defaults() -> dict[str, str]:
    """Every line of ``data/postconf-d.txt``, as name -> raw value, in file order.

    >>> len(recorded_defaults())
    1043
    """
    out: dict[str, str] = {}
    for line in _data("postconf-d.txt").splitlines():
        name, sep, value = line.partition(" =")
        if sep:
            out[name] = value[1:] if value.startswith(" ") else value
    return out


def service_parameter_names(services: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Service-defined parameter names for ``(service, command)`` pairs -> default.

    ``command`` is the program name (the first word of master.cf's command
    field, path removed).

    >>> service_parameter_names([("retry", "error")])["retry_recipient_limit"]
    '$default_recipient_limit'
    >>> service_parameter_names([("cleanup", "cleanup")])
    {}
    """
    out: dict[str, str] = {}
    for service, command in services:
        for suffix in DELIVERY_PROGRAMS.get(command.rsplit("/", 1)[-1], ()):
            out.setdefault(service + suffix, "$" + SERVICE_SUFFIXES[suffix])
    return out


@lru_cache(maxsize=1)
def _recorded_services() -> tuple[tuple[str, str], ...]:
    from .master import parse_master_cf
    return tuple((e.service, e.command) for e in parse_master_cf(_data("master.cf")))


@lru_cache(maxsize=1)
def _builtin() -> dict[str, str]:
    recorded = recorded_defaults()
    generated = service_parameter_names(_recorded_services())
    return {name: value for name, value in recorded.items()
            if generated.get(name) != value}


def builtin_defaults(host_defaults: dict[str, str] | None = None) -> dict[str, str]:
    """Built-in parameters -> raw default value (a new dict, in name order).

    ``host_defaults`` replaces machine-dependent values (:data:`HOST_DEPENDENT`).

    >>> builtin_defaults({"myhostname": "mx.example.org"})["myhostname"]
    'mx.example.org'
    >>> builtin_defaults()["local_destination_concurrency_limit"]
    '2'
    """
    out = dict(_builtin())
    for name, value in (host_defaults or {}).items():
        if name in out:
            out[name] = value
    return out


def service_defaults(services: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Service-defined parameters of these master.cf services, minus built-in ones."""
    builtin = _builtin()
    return {n: v for n, v in service_parameter_names(services).items() if n not in builtin}
