"""What a daemon logs when it starts and opens its lookup tables.

A Postfix daemon opens the tables its parameters name when its process starts
(``maps_create()`` in each daemon's init code), once per process even when two
parameters name the same table (``maps.c`` shares opened dictionaries by name).
Whatever goes wrong while opening is logged there and then, under that daemon's
name and pid -- long before any lookup::

    postfix/smtpd[16213]: error: open database /etc/postfix/virtual.db: No such file or directory
    postfix/local[2231]: warning: database /etc/aliases.db is older than source file /etc/aliases
    postfix/cleanup[977]: warning: regexp map /etc/postfix/header_checks, line 2: unknown regexp option "q": skipping this rule

So ``grep 'older than source file' /var/log/mail.log`` finds a forgotten
``postmap`` as soon as any daemon restarts. :data:`DAEMON_TABLES` lists, per
daemon, the parameters whose tables it opens (from each daemon's source:
smtpd/smtpd_check.c, trivial-rewrite/resolve.c and transport.c, cleanup/cleanup_init.c,
local/local.c, virtual/virtual.c); :func:`log_open_messages` logs the messages of
those tables for one process, once.

Only tables that live in files are considered (hash, btree, lmdb, regexp, pcre,
cidr, texthash): the others have nothing to report at open time in mailsim.

>>> import tempfile, pathlib
>>> from mailsim.host import init_host
>>> h = init_host(pathlib.Path(tempfile.mkdtemp()) / "h")
>>> h = h.with_settings(virtual_alias_maps="hash:/etc/postfix/virtual")  # never postmap'ed
>>> table_specs(h.conf, "cleanup")
['hash:/etc/postfix/virtual']
>>> log_open_messages(h, "cleanup", 977)
>>> print(h.log.lines[-1].split(" ", 4)[4])
postfix/cleanup[977]: error: open database /etc/postfix/virtual.db: No such file or directory
>>> n = len(h.log.lines); log_open_messages(h, "cleanup", 977); len(h.log.lines) == n   # once
True
"""
from __future__ import annotations

from typing import Callable

from .maps import split_spec

__all__ = ["DAEMON_TABLES", "RESTRICTION_LISTS", "table_specs", "log_open_messages"]

#: the smtpd restriction lists (smtpd_check.c parses each at startup, opening its tables)
RESTRICTION_LISTS = ("smtpd_client_restrictions", "smtpd_helo_restrictions",
                     "smtpd_sender_restrictions", "smtpd_relay_restrictions",
                     "smtpd_recipient_restrictions", "smtpd_data_restrictions",
                     "smtpd_end_of_data_restrictions", "smtpd_etrn_restrictions")

#: per daemon, the parameters whose tables it opens at startup, in that order
DAEMON_TABLES: dict[str, tuple[str, ...]] = {
    "smtpd": (*RESTRICTION_LISTS, "mynetworks", "relay_domains", "virtual_alias_domains",
              "virtual_mailbox_domains", "canonical_maps", "sender_canonical_maps",
              "recipient_canonical_maps", "virtual_alias_maps", "virtual_mailbox_maps",
              "relay_recipient_maps", "local_recipient_maps", "smtpd_sender_login_maps",
              "smtpd_reject_footer_maps", "rbl_reply_maps",
              "smtpd_discard_ehlo_keyword_address_maps"),
    "trivial-rewrite": ("mydestination", "relay_domains", "virtual_alias_domains",
                        "virtual_mailbox_domains", "relocated_maps", "transport_maps"),
    "cleanup": ("canonical_maps", "sender_canonical_maps", "recipient_canonical_maps",
                "virtual_alias_maps", "header_checks", "mime_header_checks",
                "nested_header_checks", "body_checks", "sender_bcc_maps", "recipient_bcc_maps"),
    "local": ("alias_maps", "mailbox_command_maps", "mailbox_transport_maps",
              "fallback_transport_maps"),
    "virtual": ("virtual_mailbox_maps", "virtual_uid_maps", "virtual_gid_maps"),
}

#: table types whose opening reads a file, and so can go wrong in a way worth logging
FILE_TYPES = {"hash", "btree", "lmdb", "regexp", "pcre", "cidr", "texthash"}


def _tables_in(conf, param: str) -> list[str]:
    """The ``type:table`` entries of one parameter (a map list, domain list or restriction
    list; the names in smtpd_restriction_classes are restriction lists too)."""
    out = []
    for item in conf.list(param):
        if item.startswith("!"):
            item = item[1:]
        if ":" not in item or item.startswith("/") or item.startswith("["):
            continue
        type_, _ = split_spec(item)
        if type_ in FILE_TYPES:
            out.append(item)
    return out


def table_specs(conf, daemon: str) -> list[str]:
    """The file-backed tables ``daemon`` opens at startup, each once, in order."""
    params = list(DAEMON_TABLES.get(daemon, ()))
    if daemon == "smtpd":
        params += conf.list("smtpd_restriction_classes")
    seen: dict[str, None] = {}
    for p in params:
        for spec in _tables_in(conf, p):
            seen.setdefault(spec, None)
    return list(seen)


def log_open_messages(host, daemon: str, pid: "int | Callable[[], int]", log=None) -> None:
    """Log what opening its tables made ``daemon`` (process ``pid``) say -- once per process.

    ``pid`` may be a function, called only when there is something to log (so a
    host whose tables are fine hands out no pid for it); ``log`` is the log to
    write to (a service's own syslog_name), the host's by default.
    """
    done = host.__dict__.setdefault("_opened_by", set())
    if not callable(pid) and (daemon, pid) in done:
        return
    said = [text for spec in _specs(host, daemon) for text in _open_messages(host, spec)]
    if not said:
        return
    pid = pid() if callable(pid) else pid
    if (daemon, pid) in done:
        return
    done.add((daemon, pid))
    for text in said:
        (log or host.log).write(daemon, pid, text)


def _specs(host, daemon: str) -> list[str]:
    """table_specs for the host's current main.cf (worked out again after a reload)."""
    cache = host.__dict__.setdefault("_table_specs", {})
    hit = cache.get(daemon)
    if hit is None or hit[0] is not host.conf:
        hit = cache[daemon] = (host.conf, table_specs(host.conf, daemon))
    return hit[1]


def _open_messages(host, spec: str) -> list[str]:
    try:
        return host.open_map(spec).messages
    except Exception:        # noqa: BLE001 - a table that cannot even be named: lookups say so
        return []
