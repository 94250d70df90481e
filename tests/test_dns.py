"""The virtual DNS (mailsim.dns) and smtp(8)'s next-hop lookups through it.

Measured against real Postfix 3.7.11:

* tests/golden/postfix-3.7-multi/: several hosts over a small DNS. Each
  scenario is replayed hop by hop (submission into the first host's smtpd,
  then smtp(8) from host to host through in-memory connections); the DNS
  query log must equal the recording's ``dns_queries`` (name, type, rcode,
  answer count, in order), and the servers, log texts and Received headers
  must be the recorded ones.
* tests/golden/smtp-client/*not-found* and *dns-down*: one host whose DNS
  answers NXDOMAIN or SERVFAIL; the queries (``name type=N``) and the log line.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from conformance import GOLDEN, build_host
from mailsim.cli import run_command
from mailsim.clock import SimClock
from mailsim.dns import (DNS, EAI, AddrInfoError, DNSStatus, Query, ZoneError, dns_lookup,
                         getaddrinfo, parse_zone, peer_hostname, res_query)
from mailsim.host import Host, init_host
from mailsim.queue import QueueFile, Recipient, read_queue_file
from mailsim.smtp import HostConnector, LookupFailure, SMTPClient
from mailsim.smtp.addr import ServerList, parse_nexthop, resolve

MULTI = GOLDEN / "postfix-3.7-multi"
CLIENT = GOLDEN / "smtp-client"
ZONE = json.loads((MULTI / "01-two-domains.json").read_text())["zones"]
#: main.cf settings of the recording that name the instance's own directories
SKIP = {"config_directory", "data_directory", "queue_directory", "multi_instance_enable",
        "multi_instance_name", "mail_spool_directory"}
USERS = ["alice", "peter", "jim", "bob"]


def recording(name: str) -> dict:
    return json.loads((MULTI / f"{name}.json").read_text())


def keys(lines: list[str]) -> list[tuple]:
    return [Query.parse(ln).key for ln in lines]


# -- zone files ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(MULTI.glob("*.json")), ids=lambda p: p.stem)
def test_recorded_zone_parses(path):
    rrs = parse_zone(json.loads(path.read_text())["zones"], path.name)
    by_type = {}
    for rr in rrs:
        by_type[rr.rtype] = by_type.get(rr.rtype, 0) + 1
    assert by_type == {"SOA": 5, "MX": 11, "A": 9, "PTR": 6}
    null = [rr for rr in rrs if rr.rtype == "MX" and rr.exchange == "."]
    assert [(rr.name, rr.preference) for rr in null] == [("nullmx.example.", 0)]
    assert {rr.ttl for rr in rrs} == {300}


def test_zone_syntax_relative_names_and_continuations():
    rrs = parse_zone("""$ORIGIN example.com.
$TTL 1h
@   IN  SOA ns hostmaster (
            2024010101 ; serial
            3600 600 1w 5m )
    IN  MX  10 mail
    600 TXT "v=spf1 mx -all" "second; part"
mail        A     192.0.2.25
            AAAA  2001:DB8::25
www   CNAME mail
$ORIGIN sub.example.com.
x     A 192.0.2.26
""", "example.com.zone")
    assert [str(r) for r in rrs] == [
        "example.com. 3600 IN SOA ns.example.com. hostmaster.example.com. 2024010101 3600 600 604800 300",
        "example.com. 3600 IN MX 10 mail.example.com.",
        'example.com. 600 IN TXT "v=spf1 mx -all" "second; part"',
        "mail.example.com. 3600 IN A 192.0.2.25",
        "mail.example.com. 3600 IN AAAA 2001:db8::25",
        "www.example.com. 3600 IN CNAME mail.example.com.",
        "x.sub.example.com. 3600 IN A 192.0.2.26"]


@pytest.mark.parametrize("text, line, message, hint", [
    ("a.example. A 127.0.0.1\nb.example. MX mail.example.\n", 2,
     "MX needs 2 fields of data, got: mail.example.", "example.com. MX 10 mail.example.com."),
    ("a.example. A 127.0.0.300\n", 1, "'127.0.0.300' is not an IPv4 address", "A 192.0.2.25"),
    ("a.example. A 2001:db8::1\n", 1, "is not an IPv4 address", "belongs in an AAAA record"),
    ("; c\n\na.example. MX 70000 b.example.\n", 3, "MX preference '70000'", "MX 0 ."),
    ("mail A 192.0.2.1\n", 1, "relative name 'mail' but no $ORIGIN", "$ORIGIN example.com."),
    ("a.example. SPF \"v=spf1\"\n", 1, "record type 'SPF' is not simulated", "TXT"),
    ("a.example. CH A 192.0.2.1\n", 1, "class CH is not simulated", "class IN"),
    ("   A 192.0.2.1\n", 1, "record without an owner name", "start the line"),
    ("a.example. TXT \"open\n", 1, "unterminated quoted string", 'close the string'),
    ("a.example. SOA ns.a.example. h.a.example. (1 2 3 4\n\n", 1, "'(' is never closed", "')'"),
    ("$INCLUDE other.zone\n", 1, "$INCLUDE is not simulated", "zones/"),
    ("$TTL five\n", 1, "bad TTL 'five'", "1h30m"),
    ("a..example. A 192.0.2.1\n", 1, "empty label", "doubled dot"),
    ("www.example. CNAME a.example.\nwww.example. A 192.0.2.1\n", 2,
     "www.example. has a CNAME and other records", "RFC 1034"),
])
def test_zone_errors_name_file_and_line(text, line, message, hint):
    with pytest.raises(ZoneError) as e:
        parse_zone(text, "lab/zones/example.zone")
    assert (e.value.filename, e.value.line) == ("lab/zones/example.zone", line)
    assert message in e.value.message and hint in e.value.hint
    assert str(e.value).startswith(f"lab/zones/example.zone:{line}: ")


def test_load_reads_a_folder_of_zone_files(tmp_path):
    (tmp_path / "a.zone").write_text("a.example. 300 A 192.0.2.1\n")
    (tmp_path / "b.zone").write_text("b.example. 300 MX 10 a.example.\n")
    (tmp_path / "notes.txt").write_text("not a zone\n")
    dns = DNS.load(tmp_path)
    assert [str(r) for r in dns.records()] == ["a.example. 300 IN A 192.0.2.1",
                                               "b.example. 300 IN MX 10 a.example."]
    (tmp_path / "c.zone").write_text("c.example. 300 A 192.0.2.999\n")
    with pytest.raises(ZoneError, match=r"c\.zone:1: "):
        DNS.load([tmp_path])


# -- answers, as the recording's DNS server gave them -------------------------------------------------

def test_answers_like_the_recording_server():
    dns = DNS.from_text(ZONE)
    mx = dns.query("example.org", "MX")
    assert (mx.rcode, [(r.preference, r.exchange) for r in mx.records]) == \
        ("NOERROR", [(10, "mx1.example.org."), (20, "mx2.example.net.")])
    assert dns.query("2.0.0.127.in-addr.arpa", "PTR").records[0].target == "mail.example.com."
    # NODATA: the name exists, no record of the type; the zone's SOA as authority
    nodata = dns.query("aonly.example", "MX")
    assert (nodata.rcode, nodata.records, nodata.nodata) == ("NOERROR", (), True)
    assert [str(r) for r in nodata.authority] == [
        "example. 300 IN SOA ns.example. hostmaster.example. 1 3600 600 86400 300"]
    nx = dns.query("ghost.noaddr.example", "A")
    assert nx.rcode == "NXDOMAIN" and nx.authority[0].name == "example."
    assert dns.query("nosuch.invalid", "A").authority == ()          # outside every zone
    # an empty non-terminal exists (RFC 8020)
    assert dns.query("0.0.127.in-addr.arpa", "PTR").rcode == "NOERROR"
    # servfail.example and everything below it
    assert [dns.query(n, "MX").rcode for n in ("servfail.example", "a.b.servfail.example")] == \
        ["SERVFAIL", "SERVFAIL"]
    assert dns.query("example", "SOA").count == 1
    assert dns.query_log()[:2] == ["example.org MX -> NOERROR ans=2",
                                   "2.0.0.127.in-addr.arpa PTR -> NOERROR ans=1"]


def test_faults_are_settable():
    dns = DNS.from_text(ZONE)
    dns.servfail.add("example.org")
    dns.nxdomain.add("example.com.")
    assert dns.query("mx1.example.org", "A").rcode == "SERVFAIL"
    assert dns.query("mail.example.com", "A").rcode == "NXDOMAIN"
    dns.servfail.clear()
    assert dns.query("servfail.example", "A").rcode == "NXDOMAIN"
    assert DNS(servfail=()).query("servfail.example", "A").rcode == "NXDOMAIN"


def test_cname_chasing():
    dns = DNS.from_text("""$TTL 60
a.example. CNAME b.example.
b.example. CNAME c.example.
c.example. A 192.0.2.3
d.example. CNAME nowhere.example.
e.example. CNAME e.example.
example.   SOA ns.example. h.example. 1 2 3 4 5
""")
    a = dns.query("a.example", "A")
    assert (a.rcode, [r.rtype for r in a.records]) == ("NOERROR", ["CNAME", "CNAME", "A"])
    assert [r.rtype for r in dns.query("a.example", "CNAME").records] == ["CNAME"]
    assert dns.query("d.example", "A").rcode == "NXDOMAIN"            # RFC 6604: the last name's
    assert dns.query("e.example", "A").rcode == "SERVFAIL"            # a loop
    # Postfix asks again for the target when a reply holds only a CNAME
    dns.queries.clear()
    r = dns_lookup(dns, "a.example", "MX")
    assert r.status == DNSStatus.NOTFOUND and "name=c.example type=MX" in r.why
    assert dns.query_log() == ["a.example MX -> NOERROR ans=2", "c.example MX -> NOERROR ans=0"]


def test_query_log_times_and_dig():
    clock = SimClock(start=1795600103.347)
    dns = DNS.from_text(ZONE, clock=clock)
    out = dns.dig("example.org", "MX")
    assert out == ("example.org.\t\t300\tIN\tMX\t10 mx1.example.org.\n"
                   "example.org.\t\t300\tIN\tMX\t20 mx2.example.net.")
    assert dns.dig("mx1.example.org", short=True) == "127.0.0.3"
    assert dns.dig("127.0.0.2", "PTR") == "2.0.0.127.in-addr.arpa.\t300\tIN\tPTR\tmail.example.com."
    assert dns.dig("nosuch.example") == ""
    assert str(dns.queries[0]) == "09:48:23.347 example.org MX -> NOERROR ans=2"
    assert Query.parse(str(dns.queries[0])) == Query(35303.347, "example.org", "MX", "NOERROR", 2)


def test_stub_resolver_asks_twice_after_servfail():
    dns = DNS.from_text(ZONE)
    ans, herr = res_query(dns, "servfail.example", "A")
    assert herr.name == "TRY_AGAIN" and len(dns.queries) == 2
    assert res_query(dns, "aonly.example", "MX")[1].name == "NO_DATA"
    assert res_query(dns, "nosuch.example", "MX")[1].name == "HOST_NOT_FOUND"
    assert len(dns.queries) == 4


def test_getaddrinfo_files_before_dns():
    dns = DNS.from_text(ZONE)
    hosts = [("127.0.0.1", ["localhost"]), ("192.0.2.9", ["mail.example.com"])]
    assert getaddrinfo("mail.example.com", 4, hosts=hosts, dns=dns) == ["192.0.2.9"]
    assert getaddrinfo("mx1.example.org", 4, hosts=hosts, dns=dns) == ["127.0.0.3"]
    assert dns.query_log() == ["mx1.example.org A -> NOERROR ans=1"]
    for name, eai in (("nosuch.example", EAI.NONAME), ("example.org", EAI.NODATA),
                      ("x.servfail.example", EAI.AGAIN)):
        with pytest.raises(AddrInfoError) as e:
            getaddrinfo(name, 4, hosts=hosts, dns=dns)
        assert e.value.eai is eai
    dns.queries.clear()
    with pytest.raises(AddrInfoError):
        getaddrinfo("nosuch.example", None, dns=dns)              # both families: A and AAAA
    assert dns.query_log() == ["nosuch.example A -> NXDOMAIN ans=0",
                               "nosuch.example AAAA -> NXDOMAIN ans=0"]


def test_peer_hostname_needs_a_forward_confirmation():
    dns = DNS.from_text(ZONE + "9.0.0.127.in-addr.arpa. PTR mail.example.net.\n"
                               "8.0.0.127.in-addr.arpa. PTR 127.0.0.8.\n")
    assert peer_hostname("127.0.0.4", dns=dns).name == "mx2.example.net"
    assert peer_hostname("127.0.0.9", dns=dns).name == "mail.example.net"   # A gives 127.0.0.9 back
    assert peer_hostname("127.0.0.10", dns=dns).name == "unknown"           # no PTR
    numeric = peer_hostname("127.0.0.8", dns=dns)
    assert (numeric.name, numeric.warnings) == ("unknown", ("numeric hostname: 127.0.0.8",))
    dns = DNS.from_text(ZONE.replace("mail.example.net.       A   127.0.0.9",
                                     "mail.example.net.       A   127.0.0.19")
                        + "9.0.0.127.in-addr.arpa. PTR mail.example.net.\n")
    forged = peer_hostname("127.0.0.9", dns=dns)
    assert (forged.name, forged.reverse_name, forged.warnings) == (
        "unknown", "mail.example.net", ("hostname mail.example.net does not resolve to address 127.0.0.9",))
    dns.servfail.add("9.0.0.127.in-addr.arpa")
    assert peer_hostname("127.0.0.9", dns=dns).temporary


# -- smtp(8)'s lookups, one next hop at a time ---------------------------------------------------------

def lookup_host(tmp_path, address="127.0.0.2", hostname="mail.example.com", seed=0, **main_cf):
    """A host like the recordings' (inet_interfaces = its address, DNS lookups on)."""
    root = tmp_path / hostname
    init_host(root, hostname=hostname, force=True)
    settings = {"inet_interfaces": address, "inet_protocols": "ipv4", "smtp_bind_address": address,
                "smtp_dns_support_level": "enabled", "smtp_host_lookup": "dns", **main_cf}
    with open(root / "etc/postfix/main.cf", "a") as f:
        f.write("".join(f"{k} = {v}\n" for k, v in settings.items()))
    h = Host(root, seed=seed)
    h.dns = DNS.from_text(ZONE)
    return h


def servers(host, nexthop: str) -> list[str]:
    return [f"{a.name}[{a.addr}]" for a in resolve(host, parse_nexthop(nexthop))]


def failure(host, nexthop: str) -> LookupFailure:
    with pytest.raises(LookupFailure) as e:
        resolve(host, parse_nexthop(nexthop))
    return e.value


def test_mx_then_the_address_of_every_mx_host(tmp_path):
    h = lookup_host(tmp_path)
    assert servers(h, "example.org") == ["mx1.example.org[127.0.0.3]", "mx2.example.net[127.0.0.4]"]
    assert h.dns.query_log() == ["example.org MX -> NOERROR ans=2", "mx1.example.org A -> NOERROR ans=1",
                                 "mx2.example.net A -> NOERROR ans=1"]


def test_bracketed_next_hop_is_one_address_lookup(tmp_path):
    h = lookup_host(tmp_path, "127.0.0.6", "gw.office.example")
    assert servers(h, "[smtp.isp.example.net]") == ["smtp.isp.example.net[127.0.0.5]"]
    assert servers(h, "[127.0.0.4]") == ["127.0.0.4[127.0.0.4]"]
    assert servers(h, "127.0.0.4") == ["127.0.0.4[127.0.0.4]"]     # a literal: no query either
    assert h.dns.query_log() == ["smtp.isp.example.net A -> NOERROR ans=1"]


def test_no_mx_means_the_domains_own_address(tmp_path):
    h = lookup_host(tmp_path)
    assert servers(h, "aonly.example") == ["aonly.example[127.0.0.7]"]
    assert h.dns.query_log() == ["aonly.example MX -> NOERROR ans=0", "aonly.example A -> NOERROR ans=1"]


def test_null_mx_bounces(tmp_path):
    h = lookup_host(tmp_path)
    e = failure(h, "nullmx.example")
    assert (e.dsn, e.reason) == ("5.1.0", "Domain nullmx.example does not accept mail (nullMX)")
    assert h.dns.query_log() == ["nullmx.example MX -> NOERROR ans=1"]     # no A lookup


def test_nxdomain_bounces_with_the_address_lookups_text(tmp_path):
    """As recorded in smtp-client/nexthop-not-found-dns: MX, then A, then type=A's text."""
    h = lookup_host(tmp_path)
    e = failure(h, "nosuch.example")
    assert (e.dsn, e.reason) == ("5.4.4", "Host or domain name not found. Name service error "
                                          "for name=nosuch.example type=A: Host not found")
    assert h.dns.query_log() == ["nosuch.example MX -> NXDOMAIN ans=0",
                                 "nosuch.example A -> NXDOMAIN ans=0"]


def test_servfail_defers(tmp_path):
    h = lookup_host(tmp_path)
    e = failure(h, "servfail.example")
    assert (e.dsn, e.reason) == ("4.4.3", "Host or domain name not found. Name service error "
                                          "for name=servfail.example type=MX: Host not found, try again")
    assert h.dns.query_log() == ["servfail.example MX -> SERVFAIL ans=0"] * 2
    e = failure(h, "[smtp.servfail.example]")
    assert (e.dsn, e.reason) == ("4.4.3", "Host or domain name not found. Name service error "
                                          "for name=smtp.servfail.example type=A: Host not found, try again")


def test_ignore_mx_lookup_error_tries_the_address(tmp_path):
    h = lookup_host(tmp_path, ignore_mx_lookup_error="yes")
    h.dns.servfail.add("aonly.example")
    e = failure(h, "aonly.example")
    assert e.reason.endswith("type=A: Host not found, try again")


def test_mx_host_without_address(tmp_path):
    h = lookup_host(tmp_path)
    e = failure(h, "noaddr.example")
    assert (e.dsn, e.reason) == ("5.4.4", "Host or domain name not found. Name service error "
                                          "for name=ghost.noaddr.example type=A: Host not found")
    assert e.warnings == ["no MX host for noaddr.example has a valid address record"]
    assert h.dns.query_log() == ["noaddr.example MX -> NOERROR ans=1",
                                 "ghost.noaddr.example A -> NXDOMAIN ans=0"]
    h = lookup_host(tmp_path / "2", smtp_defer_if_no_mx_address_found="yes")
    assert failure(h, "noaddr.example").dsn == "4.4.4"


def test_an_mx_host_that_fails_is_skipped(tmp_path):
    h = lookup_host(tmp_path)
    h.dns.add(parse_zone("broken.example. 300 MX 10 ghost.noaddr.example.\n"
                         "broken.example. 300 MX 20 mx1.example.org.\n"))
    assert servers(h, "broken.example") == ["mx1.example.org[127.0.0.3]"]


def test_best_mx_is_myself(tmp_path):
    h = lookup_host(tmp_path)                     # mail.example.com, 127.0.0.2
    e = failure(h, "selfloop.example")
    assert (e.dsn, e.reason, e.i_am_mx) == ("5.4.6", "mail for selfloop.example loops back to myself", True)
    e = failure(h, "[mail.example.com]")
    assert (e.dsn, e.reason) == ("5.4.6", "mail for mail.example.com loops back to myself")
    assert servers(h, "[mail.example.com]:2525") == ["mail.example.com[127.0.0.2]"]   # not port 25


def test_backup_mx_sends_only_to_better_mx_hosts(tmp_path):
    h = lookup_host(tmp_path, "127.0.0.4", "mx2.example.net")
    got = resolve(h, parse_nexthop("example.org"))
    assert isinstance(got, ServerList) and got.i_am_mx
    assert [a.name for a in got] == ["mx1.example.org"]
    # the better MX host has no address: "unable to find primary relay"
    h.dns.add(parse_zone("backup.example. 300 MX 10 ghost.noaddr.example.\n"
                         "backup.example. 300 MX 20 mx2.example.net.\n"))
    e = failure(h, "backup.example")
    assert (e.dsn, e.reason) == ("4.4.4", "unable to find primary relay for backup.example")


def test_equal_preferences_in_seeded_random_order(tmp_path):
    zone = "".join(f"eq.example. 300 MX 10 mx{i}.eq.example.\nmx{i}.eq.example. 300 A 127.0.1.{i}\n"
                   for i in range(1, 5)) + "eq.example. 300 MX 5 best.eq.example.\n" \
                                           "best.eq.example. 300 A 127.0.1.9\n"
    orders = set()
    for seed in range(8):
        h = lookup_host(tmp_path / str(seed), seed=seed)
        h.dns.add(parse_zone(zone))
        got = servers(h, "eq.example")
        assert got[0] == "best.eq.example[127.0.1.9]"
        # the lookups go in the answer's order, sorted by preference, whatever the shuffle
        assert [q.qname for q in h.dns.queries] == ["eq.example", "best.eq.example"] + \
            [f"mx{i}.eq.example" for i in range(1, 5)]
        again = lookup_host(tmp_path / f"again{seed}", seed=seed)
        again.dns.add(parse_zone(zone))
        assert servers(again, "eq.example") == got                 # same seed, same order
        orders.add(tuple(got))
    assert len(orders) > 1
    h = lookup_host(tmp_path / "fixed", smtp_randomize_addresses="no")
    h.dns.add(parse_zone(zone))
    assert servers(h, "eq.example")[1:] == [f"mx{i}.eq.example[127.0.1.{i}]" for i in range(1, 5)]


def test_mx_address_limit(tmp_path):
    h = lookup_host(tmp_path, smtp_mx_address_limit="2")
    h.dns.add(parse_zone("".join(f"many.example. 300 MX {i} m{i}.many.example.\n"
                                 f"m{i}.many.example. 300 A 127.0.2.{i}\n" for i in range(1, 5))))
    assert servers(h, "many.example") == ["m1.many.example[127.0.2.1]", "m2.many.example[127.0.2.2]"]
    assert len(h.dns.queries) == 5                  # Postfix still looks every MX host up


def test_native_lookups_read_etc_hosts_first(tmp_path):
    h = lookup_host(tmp_path, smtp_dns_support_level="disabled", smtp_host_lookup="native")
    (h.root / "etc/hosts").write_text("127.0.0.1 localhost\n127.0.0.3 mx1.example.org\n")
    assert servers(h, "mx1.example.org") == ["mx1.example.org[127.0.0.3]"]
    assert servers(h, "mx2.example.net") == ["mx2.example.net[127.0.0.4]"]
    assert h.dns.query_log() == ["mx2.example.net A -> NOERROR ans=1"]     # no MX lookup
    e = failure(h, "nosuch.example")
    assert (e.dsn, e.reason) == ("5.4.4", "unable to look up host nosuch.example: Name or service not known")
    e = failure(h, "x.servfail.example")
    assert (e.dsn, e.reason) == ("4.4.4", "unable to look up host x.servfail.example: "
                                          "Temporary failure in name resolution")


def test_without_dns_etc_hosts_as_before(tmp_path):
    h = lookup_host(tmp_path)
    h.dns = None
    e = failure(h, "example.org")
    assert (e.dsn, e.reason) == ("4.4.3", "Host or domain name not found. Name service error "
                                          "for name=example.org type=MX: Host not found, try again")
    assert h.reverse_lookup("127.0.0.2") == "unknown" and h.reverse_lookup("127.0.0.1") == "localhost"


# -- the smtp-client recordings with a DNS that says NXDOMAIN or SERVFAIL ---------------------------------

LOOKUP_CASES = sorted(p.stem for p in CLIENT.glob("*.json")
                      if "not-found" in p.stem or "dns-down" in p.stem)
TYPES = {"1": "A", "15": "MX", "28": "AAAA", "12": "PTR"}


@pytest.mark.parametrize("case", LOOKUP_CASES)
def test_smtp_client_lookup_recordings(case, tmp_path):
    rec = json.loads((CLIENT / f"{case}.json").read_text())
    host = build_host({"id": case, "users": ["alice"], "main_cf": rec["main_cf"]}, tmp_path / "mx")
    host.dns = DNS()
    if rec.get("dns_answer") == "SERVFAIL":
        host.dns.servfail.add("nosuch.example.invalid")
    rcpt = next(s["send"] for s in rec["submit"] if (s["send"] or "").startswith("RCPT TO:"))
    rcpt = rcpt[9:rcpt.index(">")]
    qf = QueueFile("896AB160382", "alice@example.com", [Recipient(rcpt, rcpt, "", f"rfc822;{rcpt}")],
                   host.clock.now(), b"Subject: t\n\nhello\n")
    nexthop = rec["main_cf"].get("relayhost") or rcpt.rpartition("@")[2]
    res = SMTPClient(host).deliver(qf, qf.recipients, nexthop, active=host.clock.now())
    want = [ln for ln in rec["log"] if " postfix/smtp[" in ln]
    m = re.search(r"dsn=([\d.]+), status=(\w+) \((.*)\)$", want[-1])
    assert (res[0].dsn, res[0].status, res[0].text) == m.groups()
    got_queries = [f"{q.qname} type={k}" for q in host.dns.queries
                   for k, t in TYPES.items() if t == q.qtype]
    assert got_queries == rec["dns_queries"]


# -- the multi-host recordings, hop by hop ------------------------------------------------------------

class Hops:
    """The recording's hosts on one clock and one DNS; SMTP between them in memory."""

    def __init__(self, rec: dict, tmp_path: Path) -> None:
        self.rec = rec
        self.clock = SimClock()
        self.dns = DNS.from_text(rec["zones"], f"{rec['id']}.zones", clock=self.clock)
        self.hosts: dict[str, Host] = {}
        self.addr: dict[str, str] = {}
        for name, spec in rec["hosts"].items():
            self.hosts[name] = self._host(tmp_path / name, spec)
            self.addr[name] = spec["address"]
        self.down: set[str] = set()

    def _host(self, root: Path, spec: dict) -> Host:
        init_host(root, hostname=spec["myhostname"], users=USERS, clock=self.clock)
        lines = [ln for ln in spec["main_cf"].splitlines() if ln.split("=")[0].strip() not in SKIP]
        (root / "etc/postfix/main.cf").write_text("\n".join(lines) + "\n")
        for fname, text in spec.get("files", {}).items():
            m = re.search(rf"(\w+):(/\S*/{re.escape(fname)})\b", spec["main_cf"])
            (root / m.group(2).lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (root / m.group(2).lstrip("/")).write_text(text)
            run_command(root, "postmap", [f"{m.group(1)}:{m.group(2)}"], out=io.StringIO(),
                        err=io.StringIO())
        h = Host(root, clock=self.clock)
        h.dns = self.dns
        h.auto_deliver = False
        return h

    def submit(self, name: str) -> QueueFile:
        """The recorded dialogue from 127.0.0.1 into ``name``'s smtpd; the queued message."""
        engine = self.hosts[name].smtpd("127.0.0.1", 40000)
        replies = engine.greeting()
        for step in self.rec["submit"]["dialogue"]:
            if step["send"]:
                replies += engine.receive(step["send"].encode("latin-1"))
        qid = re.findall(rb"queued as (\w+)", replies)[-1].decode()
        return self.queued(name, qid)

    def queued(self, name: str, qid: str) -> QueueFile:
        return read_queue_file(next(self.hosts[name].spool.glob(f"*/{qid}")))

    def send(self, name: str, qf: QueueFile):
        """smtp(8) of ``name`` delivers ``qf`` as qmgr would route it (trivial-rewrite)."""
        h = self.hosts[name]
        r = h.trivial_rewrite().resolve(qf.recipients[0].address)
        transport, nexthop = r.transport, r.nexthop
        for spec in h.conf.list("transport_maps"):      # trivial-rewrite does not read it yet
            found = h.open_map(spec).lookup(r.domain)
            if found:
                transport, _, nexthop = found.partition(":")
                break
        listening = {self.addr[n]: self.hosts[n] for n in self.hosts if n not in self.down}
        client = SMTPClient(h, transport=transport,
                            connector=HostConnector(listening, client_addr=self.addr[name]))
        res = client.deliver(qf, qf.recipients, nexthop, active=self.clock.now())[0]
        m = re.search(r"queued as (\w+)", res.text)
        return res, (m.group(1) if m else None)

    def host_of(self, relay: str) -> str:
        addr = relay[relay.index("[") + 1:relay.index("]")]
        return next(n for n, a in self.addr.items() if a == addr)

    def query_keys(self) -> list[tuple]:
        return [q.key for q in self.dns.queries]


def received_from(qf: QueueFile) -> list[str]:
    return re.findall(r"^Received: from (.*)$", qf.content.decode("latin-1"), re.M)


def test_01_two_domains(tmp_path):
    rec = recording("01-two-domains")
    lab = Hops(rec, tmp_path)
    qf = lab.submit("mail")
    assert lab.dns.queries == []                         # localhost comes from etc/hosts
    res, qid = lab.send("mail", qf)
    assert (res.status, res.relay) == ("sent", "mx1.example.org[127.0.0.3]:25")
    arrived = lab.queued("mx1", qid)
    assert received_from(arrived) == ["mail.example.com (mail.example.com [127.0.0.2])",
                                      "client.example (localhost [127.0.0.1])"]
    assert lab.query_keys() == keys(rec["dns_queries"])


def test_02_backup_mx(tmp_path):
    rec = recording("02-backup-mx")
    lab = Hops(rec, tmp_path)
    lab.down.add("mx1")
    res, qid = lab.send("mail", lab.submit("mail"))
    assert (res.status, res.relay) == ("sent", "mx2.example.net[127.0.0.4]:25")
    assert any(" postfix/smtp[" in ln and ln.endswith("]: connect to mx1.example.org[127.0.0.3]:25: "
                                                       "Connection refused")
               for ln in lab.hosts["mail"].log.lines)
    at_mx2 = lab.queued("mx2", qid)
    res, _ = lab.send("mx2", at_mx2)                     # the relay transport; mx1 still down
    assert (res.status, res.relay, res.dsn, res.text) == (
        "deferred", "none", "4.4.1", "connect to mx1.example.org[127.0.0.3]:25: Connection refused")
    assert any(" postfix/relay/smtp[" in ln for ln in lab.hosts["mx2"].log.lines)
    lab.down.clear()
    lab.clock.advance(5)
    res, qid = lab.send("mx2", at_mx2)                   # postqueue -f
    assert (res.status, res.relay) == ("sent", "mx1.example.org[127.0.0.3]:25")
    assert received_from(lab.queued("mx1", qid)) == [
        "mx2.example.net (mx2.example.net [127.0.0.4])",
        "mail.example.com (mail.example.com [127.0.0.2])",
        "client.example (localhost [127.0.0.1])"]
    assert lab.query_keys() == keys(rec["dns_queries"])


def test_05_smarthost(tmp_path):
    rec = recording("05-smarthost")
    lab = Hops(rec, tmp_path)
    res, qid = lab.send("office", lab.submit("office"))
    assert (res.status, res.relay) == ("sent", "smtp.isp.example.net[127.0.0.5]:25")
    res, qid = lab.send("isp", lab.queued("isp", qid))
    assert (res.status, res.relay) == ("sent", "mx1.example.org[127.0.0.3]:25")
    assert received_from(lab.queued("mx1", qid))[:2] == [
        "smtp.isp.example.net (smtp.isp.example.net [127.0.0.5])",
        "gw.office.example (gw.office.example [127.0.0.6])"]
    assert lab.query_keys() == keys(rec["dns_queries"])


def test_06_deferred_then_bounce(tmp_path):
    """Each delivery attempt looks the MX and its address up again."""
    rec = recording("06-deferred-then-bounce")
    lab = Hops(rec, tmp_path)
    qf = lab.submit("mail")
    attempts = [ln for ln in rec["logs"]["mail"] if "status=deferred" in ln]
    for i, _ in enumerate(attempts):
        res, _ = lab.send("mail", qf)
        assert (res.status, res.dsn, res.text) == (
            "deferred", "4.4.1", "connect to mx.down.example[127.0.0.10]:25: Connection refused")
        lab.clock.advance(20)
    assert lab.query_keys() == keys(rec["dns_queries"])


def test_08_transport_maps(tmp_path):
    rec = recording("08-transport-maps")
    lab = Hops(rec, tmp_path)
    res, qid = lab.send("mail", lab.submit("mail"))
    assert (res.status, res.relay) == ("sent", "127.0.0.4[127.0.0.4]:25")
    assert received_from(lab.queued("mx2", qid))[0] == "mail.example.com (mail.example.com [127.0.0.2])"
    assert lab.query_keys() == keys(rec["dns_queries"])


def test_recorded_query_times_on_a_simulated_clock(tmp_path):
    """The query log's times read like the recording's (the clock set to its start)."""
    rec = recording("01-two-domains")
    first = Query.parse(rec["dns_queries"][0])
    lab = Hops(rec, tmp_path)
    lab.clock.advance(first.time - 9 * 3600)             # SimClock starts 09:00:00 UTC
    lab.send("mail", lab.submit("mail"))
    assert str(lab.dns.queries[0]) == rec["dns_queries"][0].replace("127.0.0.1:49649 ", "")


def test_smtpd_logs_an_unverified_client_name(tmp_path):
    # PTR says mail.example.com, but that name has no address: smtpd warns and calls it unknown
    from mailsim.dns import DNS
    from mailsim.host import init_host
    h = init_host(tmp_path / "mx1", hostname="mx1.example.org")
    h.dns = DNS.from_text("2.0.0.127.in-addr.arpa. 300 PTR mail.example.com.\n")
    s = h.session("127.0.0.2")
    assert s.banner.startswith("220 ")
    tail = [ln.split(": ", 1)[1] for ln in h.log.lines[-2:]]
    assert tail == ["warning: hostname mail.example.com does not resolve to address 127.0.0.2: "
                    "Name or service not known", "connect from unknown[127.0.0.2]"]
