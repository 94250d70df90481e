"""transport_maps (mailsim.transport and trivial-rewrite): transport(5)'s rules.

* the search order of "TABLE SEARCH ORDER": full address, address without
  extension, domain, parent domains (``.parent`` in Postfix 3.7, bare
  parents when parent_domain_matches_subdomains lists transport_maps), ``*``;
  pattern tables are asked only the full address and ``*``;
* the result forms of "RESULT FORMAT": ``transport:nexthop``,
  ``transport:`` (next hop reset to the recipient domain), ``:nexthop``
  (transport kept), ``:`` (nothing changed), ``error:5.1.1 text``,
  ``[host]:port`` next hops;
* resolve.c's order: the address class first, then main.cf's explicit
  ``transport:nexthop``, relayhost, then the table -- never for a virtual
  alias domain; a table that cannot be read defers (address resolver failure);
* end to end in a lab: error(8) bounces with the entry's text, smtp(8)
  connects where the entry says.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailsim.host import init_host
from mailsim.lab import Lab
from mailsim.transport import TransportTable, search_keys, strip_extension, update_entry


# -- search order ---------------------------------------------------------------------------------
def test_search_order_postfix_37_default_dot_parents():
    assert search_keys("jim+news@mail.sub.example.net", delimiter="+") == [
        "jim+news@mail.sub.example.net", "jim@mail.sub.example.net", "mail.sub.example.net",
        ".sub.example.net", ".example.net", ".net", "*"]


def test_search_order_when_parent_domain_matches_subdomains_lists_transport_maps():
    assert search_keys("jim@mail.example.net", delimiter="+", parent_matches=True) == [
        "jim@mail.example.net", "mail.example.net", "example.net", "net", "*"]


@pytest.mark.parametrize("local, delims, want", [
    ("jim+news", "+", "jim"), ("jim+a+b", "+", "jim"), ("jim-news", "+-", "jim"),
    ("jim", "+", None), ("+news", "+", None), ("jim+news", "", None),
    ("postmaster+x", "+", "postmaster"), ("MAILER-DAEMON", "-", None), ("double-bounce", "-", None),
    ("owner-list", "-", None), ("list-request", "-", None), ("owner+x", "+", "owner"),
])
def test_extension_stripping_follows_split_addr(local, delims, want):
    assert strip_extension(local, delims) == want


def table(entries: dict[str, str], **kw) -> tuple[TransportTable, list[str]]:
    asked: list[str] = []

    def lookup(spec: str, key: str):
        asked.append(key)
        return entries.get(key.lower()) if not spec.startswith("regexp") else \
            next((v for k, v in entries.items() if re.search(k, key)), None)
    return TransportTable(["hash:/etc/postfix/transport"], lookup, **kw), asked


def test_the_first_key_found_wins_and_later_keys_are_not_asked():
    t, asked = table({"jim@example.net": "a:", "example.net": "b:", "*": "c:"}, delimiter="+")
    assert t.lookup("jim+x@example.net", "smtp", "example.net").transport == "a"
    assert asked == ["jim+x@example.net", "jim@example.net"]


@pytest.mark.parametrize("address, key", [
    ("jim+x@example.net", "jim+x@example.net"),
    ("jim+y@example.net", "jim@example.net"),        # without the extension
    ("ann@example.net", "example.net"),
    ("ann@mx.example.net", ".example.net"),          # a subdomain: only the .parent entry
    ("ann@example.org", "*"),
])
def test_which_entry_matches(address, key):
    t, _ = table({"jim+x@example.net": "t1:", "jim@example.net": "t2:", "example.net": "t3:",
                  ".example.net": "t4:", "*": "t5:"}, delimiter="+")
    assert t.lookup(address, "smtp", address.split("@")[1]).key == key


def test_a_domain_entry_does_not_match_subdomains_in_postfix_37():
    t, _ = table({"example.net": "relay:"})
    assert t.lookup("ann@mx.example.net", "smtp", "mx.example.net") is None
    t, _ = table({"example.net": "relay:"}, parent_matches=True)
    assert t.lookup("ann@mx.example.net", "smtp", "mx.example.net").key == "example.net"


def test_pattern_tables_are_asked_only_the_full_address_and_the_wildcard():
    asked: list[tuple[str, str]] = []

    def lookup(spec, key):
        asked.append((spec.split(":")[0], key))
        return None
    t = TransportTable(["regexp:/etc/postfix/transport.re", "hash:/etc/postfix/transport"],
                       lookup, delimiter="+")
    assert t.lookup("jim+x@mx.example.net", "smtp", "mx.example.net") is None
    assert [k for s, k in asked if s == "regexp"] == ["jim+x@mx.example.net", "*"]
    assert [k for s, k in asked if s == "hash"] == search_keys("jim+x@mx.example.net",
                                                               delimiter="+")


def test_each_key_is_asked_of_every_table_before_the_next_key():
    order: list[tuple[str, str]] = []

    def lookup(spec, key):
        order.append((spec, key))
        return "x:" if (spec, key) == ("hash:/b", "example.net") else None
    t = TransportTable(["hash:/a", "hash:/b"], lookup)
    assert t.lookup("u@example.net", "smtp", "example.net").table == "hash:/b"
    assert order == [("hash:/a", "u@example.net"), ("hash:/b", "u@example.net"),
                     ("hash:/a", "example.net"), ("hash:/b", "example.net")]


# -- result forms ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value, want", [
    ("smtp:[127.0.0.4]", ("smtp", "[127.0.0.4]")),
    ("smtp:[mail.example.net]:2525", ("smtp", "[mail.example.net]:2525")),
    ("smtp:mail.example.net:submission", ("smtp", "mail.example.net:submission")),
    ("smtp:[a.example], [b.example]", ("smtp", "[a.example], [b.example]")),
    ("slow:", ("slow", "example.net")),              # transport: -> next hop reset to the domain
    ("slow", ("slow", "example.net")),
    (":[gw.example]", ("relay", "[gw.example]")),    # :nexthop -> transport kept
    (":", ("relay", "[mx2.example]")),               # : -> nothing changes
    ("error:5.1.1 jim has left", ("error", "5.1.1 jim has left")),
    ("error:", ("error", "Address is undeliverable")),
    ("retry:4.3.2 maintenance", ("retry", "4.3.2 maintenance")),
    ("local:", ("local", "example.net")),
])
def test_result_forms(value, want):
    t, _ = table({"example.net": value})
    m = t.lookup("jim@example.net", "relay", "[mx2.example]")
    assert (m.transport, m.nexthop) == want


def test_update_entry_is_transport_c_update_entry():
    assert update_entry("", "", "d.example", "smtp", "[relay]") == ("smtp", "[relay]")
    assert update_entry("smtp", "", "d.example", "local", "host") == ("smtp", "d.example")


# -- in trivial-rewrite ------------------------------------------------------------------------------
@pytest.fixture
def host(tmp_path):
    h = init_host(tmp_path / "mail", hostname="mail.example.com", users=["peter"])
    (tmp_path / "mail/etc/postfix/transport").write_text(
        "example.net      smtp:[127.0.0.4]\n"
        ".example.net     relay:\n"
        "bob@example.org  error:5.1.1 bob has left the company\n"
        "sue.nl           smtp:[sue-mx.example]\n"
        "example.com      :\n")
    return h


def resolver(host, **settings):
    return host.with_settings(transport_maps="texthash:/etc/postfix/transport",
                              **settings).trivial_rewrite()


def test_the_table_overrides_the_default_class_and_relayhost(host):
    r = resolver(host, relayhost="[smarthost.example]").resolve("jim@example.net")
    assert (r.klass, r.transport, r.nexthop) == ("default", "smtp", "[127.0.0.4]")
    assert r.why[-2:] == [
        "default class: transport smtp (default_transport), nexthop [smarthost.example] (relayhost)",
        'transport_maps texthash:/etc/postfix/transport: example.net -> "smtp:[127.0.0.4]": '
        "transport smtp (unchanged), nexthop [127.0.0.4]"]
    assert r.transport_entry.key == "example.net"


def test_relay_transport_nexthop_beats_relayhost_and_the_table_beats_both(host):
    tr = resolver(host, relay_domains="example.net, mx.example.net, example.edu",
                  relay_transport="relay:[mx2.example]", relayhost="[smarthost.example]")
    r = tr.resolve("ann@example.edu")
    assert (r.klass, r.transport, r.nexthop) == ("relay", "relay", "[mx2.example]")
    assert "no entry for ann@example.edu" in r.why[-1]
    r = tr.resolve("ann@mx.example.net")              # .example.net relay:
    assert (r.klass, r.transport, r.nexthop) == ("relay", "relay", "mx.example.net")


def test_local_mail_goes_through_the_table_too(host):
    tr = resolver(host)
    r = tr.resolve("peter@example.com")                # example.com ":" -- no change
    assert (r.klass, r.transport, r.nexthop) == ("local", "local", "mail.example.com")
    assert r.transport_entry.value == ":"


def test_virtual_alias_domains_ignore_the_table(host):
    r = resolver(host, virtual_alias_domains="sue.nl").resolve("info@sue.nl")
    assert (r.klass, r.transport, r.nexthop) == (
        "alias", "error", "5.1.1 User unknown in virtual alias table")
    assert r.transport_entry is None and "transport_maps is not consulted" in r.why[-1]


def test_a_table_that_cannot_be_read_defers_as_a_resolver_failure(host):
    r = host.with_settings(transport_maps="hash:/etc/postfix/transport").trivial_rewrite() \
        .resolve("jim@example.net")                    # never postmapped: no transport.db
    assert r.fail and (r.transport, r.nexthop) == ("retry", "4.3.0 address resolver failure")
    assert "transport_maps lookup failure" in r.why[-1]


def test_without_transport_maps_nothing_changes(host):
    r = host.trivial_rewrite().resolve("jim@example.net")
    assert (r.transport, r.nexthop, r.transport_entry) == ("smtp", "example.net", None)


# -- end to end in a lab ------------------------------------------------------------------------------
LAB = """
[lab]
name = "transport"
[[hosts]]
name = "mail"
address = "127.0.0.2"
hostname = "mail.example.com"
users = ["alice"]
[hosts.main_cf]
transport_maps = "hash:/etc/postfix/transport"
recipient_delimiter = "+"
[hosts.files]
"/etc/postfix/transport" = \"\"\"
bob@example.org   error:5.1.1 bob has left the company
example.org       smtp:[127.0.0.3]:2525
example.net       :[127.0.0.3]
\"\"\"
[[hosts]]
name = "mx"
address = "127.0.0.3"
hostname = "mx.example.org"
users = ["jim"]
[hosts.main_cf]
mydestination = "$myhostname, example.org, example.net"
"""


def lab(tmp_path: Path) -> Lab:
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab/lab.toml").write_text(LAB)
    return Lab.load(tmp_path / "lab")


def test_lab_error_entry_bounces_and_port_entry_connects_there(tmp_path):
    lb = lab(tmp_path)
    r = lb.send("alice@example.com", ["bob+x@example.org", "jim@example.org"], via="mail")
    assert r.ok
    log = "\n".join(lb.log("mail"))
    assert re.search(r"postfix/error\[\d+\]: \w+: to=<bob\+x@example.org>, relay=none, .*"
                     r"dsn=5\.1\.1, status=bounced \(bob has left the company\)", log)
    # nothing listens on 127.0.0.3:2525: smtp(8) connected where the entry said
    assert re.search(r"to=<jim@example.org>, relay=none, .*dsn=4\.4\.1, status=deferred "
                     r"\(connect to 127\.0\.0\.3\[127\.0\.0\.3\]:2525: Connection refused\)", log)
    assert "bob has left the company" in lb.mailbox("mail", "alice")    # the bounce


def test_lab_nexthop_only_entry_keeps_smtp_and_skips_dns(tmp_path):
    lb = lab(tmp_path)
    assert lb.send("alice@example.com", "jim@example.net", via="mail").ok
    assert "relay=127.0.0.3[127.0.0.3]:25" in "\n".join(lb.log("mail"))
    assert "jim@example.net" in lb.mailbox("mx", "jim")
