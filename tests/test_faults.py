"""Faults in a lab (mailsim.lab.faults): scripted, seeded, undone when they end.

For every kind: the sending host logs what Postfix 3.7 logs (the deferral
texts are compared with the recordings of real Postfix in
tests/golden/smtp-client/ and tests/golden/postfix-3.7-multi/), and the
mail goes through once the fault is over -- retried on qmgr's schedule.
Where real Postfix bounces (a domain that does not exist, a full mailbox)
the mail bounces, and mail sent after the fault is delivered.

Also: [[faults]] in lab.toml (errors name the line), the API and the CLI,
faults at their simulated instants, and the same run whether it is made in
one process or split over CLI commands.
"""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from mailsim.lab import Lab, LabError, parse_lab_toml
from mailsim.lab.cli import main as lab_main
from mailsim.lab.lab import SHIPPED

GOLDEN = Path(__file__).parent / "golden"

LAB = """
[lab]
name = "f"
seed = 5
start = 2026-11-25T09:00:00Z

[[hosts]]
name = "mail"
address = "127.0.0.2"
hostname = "mail.example.com"
users = ["alice"]
[hosts.main_cf]
mydestination = "$myhostname, $mydomain, localhost"

[[hosts]]
name = "mx1"
address = "127.0.0.3"
hostname = "mx1.example.org"
users = ["peter", "jim"]
[hosts.main_cf]
mydestination = "$myhostname, $mydomain, localhost"
mailbox_size_limit = "200000"
message_size_limit = "100000"
"""


def make_lab(tmp_path: Path, extra: str = "", name: str = "lab") -> Lab:
    root = tmp_path / name
    root.mkdir()
    (root / "lab.toml").write_text(LAB + extra)
    shutil.copytree(SHIPPED / "two-domains" / "zones", root / "zones")
    return Lab.load(root)


def status(line: str) -> str:
    """``dsn=..., status=... (reason)`` of a delivery log line."""
    return line[line.index("dsn="):]


def recorded_status(path: str, needle: str, **names: str) -> str:
    """The status part of a recorded log line, with the recording's names replaced."""
    rec = json.loads((GOLDEN / path).read_text())
    lines = rec["log"] if "log" in rec else [ln for v in rec["logs"].values() for ln in v]
    text = status(next(ln for ln in lines if needle in ln))
    for old, new in names.items():
        text = text.replace(old, new)
    return text


def deliveries(lab: Lab, host: str, rcpt: str = "peter@example.org") -> list[tuple[str, str]]:
    """(time, status part) of each delivery attempt of ``host`` to ``rcpt``."""
    return [(ln[7:15], status(ln)) for ln in lab.log(host) if f"to=<{rcpt}>" in ln
            and "status=" in ln]


def delivered(lab: Lab, subject: str) -> bool:
    return f"Subject: {subject}\n" in lab.mailbox("mx1", "peter")


# -- lab.toml ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fault, key, what", [
    ('kind = "meteor"\ntarget = "mx1"\n', "kind", "the kinds of fault are host-down, link-cut"),
    ('kind = "host-down"\ntarget = "mx9"\n', "target", "no host 'mx9' in this lab"),
    ('kind = "link-cut"\ntarget = "mx1"\n', "target", "names two hosts"),
    ('kind = "link-cut"\ntarget = ["mail", "mx1"]\nmode = "slowly"\n', "mode",
     "refused, timeout, unreachable"),
    ('kind = "host-down"\ntarget = "mx1"\nat = "1h"\nuntil = "30m"\n', "until",
     "must end after it begins"),
    ('kind = "host-down"\ntarget = "mx1"\nat = "soon"\n', "at", "write a time from the start"),
    ('kind = "mailbox-full"\ntarget = "mx1"\n', "user", 'user = "peter"'),
    ('kind = "greylist"\ntarget = "mx1"\nwhen = "1h"\n', "when", "unknown key 'when'"),
])
def test_fault_mistakes_name_the_line(fault, key, what):
    text = LAB + "\n[[faults]]\n" + fault
    with pytest.raises(LabError) as e:
        parse_lab_toml(text, "lab.toml")
    lines = text.splitlines()
    header = max(i for i, ln in enumerate(lines, 1) if ln == "[[faults]]")
    want = next((i for i, ln in enumerate(lines, 1) if i > header and ln.startswith(f"{key} =")),
                header)
    assert str(e.value).startswith(f"lab.toml:{want}: "), str(e.value)
    assert what in str(e.value)


def test_fault_times_count_from_the_lab_start():
    cfg = parse_lab_toml(LAB + '[[faults]]\nkind = "host-down"\ntarget = "mx1"\nat = "10m"\n'
                               'duration = "1h"\n')
    f = cfg.faults[0]
    assert (f.at - cfg.start, f.until - cfg.start, f.state) == (600, 4200, "pending")


def test_a_dns_fault_needs_zone_files(tmp_path):
    root = tmp_path / "lab"
    root.mkdir()
    (root / "lab.toml").write_text(LAB + '[[faults]]\nkind = "dns-servfail"\n'
                                         'target = "example.org"\n')
    with pytest.raises(LabError, match="needs the lab's DNS"):
        Lab.load(root)


# -- each kind ---------------------------------------------------------------------------------
REFUSED = recorded_status("postfix-3.7-multi/06-deferred-then-bounce.json",
                          "status=deferred (connect to",
                          **{"mx.down.example[127.0.0.10]": "mx1.example.org[127.0.0.3]"})


def test_host_down_then_up(tmp_path):
    lab = make_lab(tmp_path, '[[faults]]\nkind = "host-down"\ntarget = "mx1"\nat = "0s"\n'
                             'until = "30m"\n')
    assert not lab.network.is_up("mx1")
    lab.send("alice@example.com", "peter@example.org", subject="s1")
    lab.run()
    tries = deliveries(lab, "mail")
    assert tries[0] == ("09:00:00", REFUSED)
    assert "connect to mx1.example.org[127.0.0.3]:25: Connection refused" in lab.log("mail")[5]
    # retried at 09:05, 09:10, 09:20 (refused), then 09:40, after mx1 started at 09:30
    assert [t for t, _ in tries] == ["09:00:00", "09:05:00", "09:10:00", "09:20:00", "09:40:00"]
    assert tries[-1][1].startswith("dsn=2.0.0, status=sent")
    assert delivered(lab, "s1")
    assert [ln[7:15] + " " + ln.split(": ", 1)[1] for ln in lab.log("mx1")[:4:2]] == [
        "09:00:00 stopping the Postfix mail system", "09:30:00 starting the Postfix mail system"]


@pytest.mark.parametrize("mode, reason, spent", [
    ("refused", "Connection refused", 0), ("timeout", "Connection timed out", 30),
    ("unreachable", "No route to host", 0)])
def test_link_cut(tmp_path, mode, reason, spent):
    lab = make_lab(tmp_path)
    lab.fault("link-cut", ["mx1", "mail"], duration="15m", mode=mode)
    lab.send("alice@example.com", "peter@example.org", subject="cut")
    lab.run()
    tries = deliveries(lab, "mail")
    assert tries[0][1] == (f"dsn=4.4.1, status=deferred (connect to mx1.example.org"
                           f"[127.0.0.3]:25: {reason})")
    first = next(ln for ln in lab.log("mail") if "status=deferred" in ln)
    assert f"delays=0/0/{spent}/0" in first       # a timeout is the connect wait (30s)
    assert tries[-1][1].startswith("dsn=2.0.0, status=sent")
    assert delivered(lab, "cut")
    assert lab.network.cuts == {}


def test_slow_link(tmp_path):
    lab = make_lab(tmp_path)
    lab.fault("slow-link", ["mail", "mx1"], latency="5s", duration="10m")
    lab.send("alice@example.com", "peter@example.org", subject="slow")
    line = next(ln for ln in lab.log("mail") if "status=sent" in ln)
    assert "delays=0/0/5/0" in line                 # the session took 5 s
    lab.fault("slow-link", ["mail", "mx1"], latency="45s", duration="10m")
    lab.send("alice@example.com", "peter@example.org", subject="slower")
    assert deliveries(lab, "mail")[-1][1] == ("dsn=4.4.1, status=deferred (connect to "
                                              "mx1.example.org[127.0.0.3]:25: Connection timed out)")
    lab.run()
    assert deliveries(lab, "mail")[-1][1].startswith("dsn=2.0.0, status=sent")
    assert delivered(lab, "slower")


def test_dns_servfail(tmp_path):
    lab = make_lab(tmp_path)
    lab.fault("dns-servfail", "example.org", duration="12m")
    lab.send("alice@example.com", "peter@example.org", subject="sf")
    lab.run()
    tries = deliveries(lab, "mail")
    assert tries[0][1] == recorded_status("smtp-client/nexthop-dns-down-dns.json", "status=",
                                          **{"nosuch.example.invalid": "example.org"})
    assert [t for t, _ in tries] == ["09:00:00", "09:05:00", "09:10:00", "09:20:00"]
    assert tries[-1][1].startswith("dsn=2.0.0, status=sent") and delivered(lab, "sf")
    assert "servfail.example" in lab.dns.servfail and "example.org" not in lab.dns.servfail


def test_dns_nxdomain_bounces_as_postfix_does(tmp_path):
    lab = make_lab(tmp_path)
    lab.fault("dns-nxdomain", "example.org", duration="10m")
    lab.send("alice@example.com", "peter@example.org", subject="nx")
    assert deliveries(lab, "mail")[0][1] == recorded_status(
        "smtp-client/nexthop-not-found-dns.json", "status=",
        **{"nosuch.example.invalid": "example.org"})
    assert "Subject: Undelivered Mail Returned to Sender" in lab.mailbox("mail", "alice")
    lab.run(until="10m")
    lab.send("alice@example.com", "peter@example.org", subject="after")
    assert delivered(lab, "after") and not delivered(lab, "nx")


GREYLISTED = ("450 4.2.0 <peter@example.org>: Recipient address rejected: Greylisted, see "
              "http://postgrey.schweikert.ch/help/example.org.html")


def test_greylisting(tmp_path):
    lab = make_lab(tmp_path)
    lab.fault("greylist", "mx1", delay="6m")
    lab.send("alice@example.com", "peter@example.org", subject="grey")
    lab.run()
    tries = deliveries(lab, "mail")
    assert tries[0][1] == ("dsn=4.2.0, status=deferred (host mx1.example.org[127.0.0.3] said: "
                           f"{GREYLISTED} (in reply to RCPT TO command))")
    # 09:05 is too early (6 minutes), 09:10 passes
    assert [t for t, _ in tries] == ["09:00:00", "09:05:00", "09:10:00"]
    assert tries[-1][1].startswith("dsn=2.0.0, status=sent") and delivered(lab, "grey")
    rejects = [ln for ln in lab.log("mx1") if "reject: RCPT" in ln]
    assert rejects[0].endswith(f"NOQUEUE: reject: RCPT from mail.example.com[127.0.0.2]: "
                               f"{GREYLISTED}; from=<alice@example.com> to=<peter@example.org> "
                               "proto=ESMTP helo=<mail.example.com>")
    assert len(rejects) == 2
    # the triple is known now: no delay; a new recipient is greylisted afresh
    lab.send("alice@example.com", "peter@example.org", subject="again")
    assert delivered(lab, "again")
    lab.send("alice@example.com", "jim@example.org", subject="jim")
    assert deliveries(lab, "mail", "jim@example.org")[0][1].startswith("dsn=4.2.0")
    # mail to postmaster is never checked (Postfix accepts it before any restriction)
    d = lab.session("mx1", client="127.0.0.9")
    d.send("EHLO x.example")
    d.send("MAIL FROM:<a@x.example>")
    assert d.send("RCPT TO:<postmaster>").startswith("250")


def test_greylisting_ends_with_the_fault(tmp_path):
    lab = make_lab(tmp_path)
    lab.fault("greylist", "mx1", duration="1m")
    lab.send("alice@example.com", "peter@example.org", subject="g1")
    lab.run()
    assert [t for t, _ in deliveries(lab, "mail")] == ["09:00:00", "09:05:00"]
    assert lab.network.smtpd_hooks["mx1"] == []


def test_mailbox_full_bounces_then_mail_is_delivered_again(tmp_path):
    lab = make_lab(tmp_path)
    lab.send("alice@example.com", "peter@example.org", subject="before")
    mbox = lab.host("mx1").path("/var/mail/peter")
    size = mbox.stat().st_size
    lab.fault("mailbox-full", "mx1", user="peter", duration="1h")
    assert mbox.stat().st_size == 200000                 # filled to mailbox_size_limit
    assert lab.mailbox("mx1", "peter").count("Subject:") == 1   # the filler is not shown
    lab.send("alice@example.com", "peter@example.org", subject="full")
    line = next(ln for ln in lab.log("mx1") if "status=bounced" in ln)
    assert status(line) == ("dsn=5.2.2, status=bounced (cannot update mailbox /var/mail/peter "
                            "for user peter. error writing message: File too large)")
    assert "peter@example.org" in lab.mailbox("mail", "alice")     # alice got the bounce
    lab.run(until="1h")
    assert mbox.stat().st_size == size
    lab.send("alice@example.com", "peter@example.org", subject="after")
    assert delivered(lab, "after") and not delivered(lab, "full")


def test_mailbox_full_needs_a_mailbox_size_limit(tmp_path):
    lab = make_lab(tmp_path)
    with pytest.raises(LabError, match="mailbox_size_limit = 0 means no mailbox is ever full"):
        lab.fault("mailbox-full", "mail", user="alice")
    assert len(lab.faults) == 0


# -- scheduling, determinism, CLI ------------------------------------------------------------------
def test_faults_start_at_their_instant_before_that_instants_queue_scan(tmp_path):
    lab = make_lab(tmp_path, '[[faults]]\nkind = "link-cut"\ntarget = ["mail", "mx1"]\n'
                             'mode = "unreachable"\nat = "5m"\nuntil = "20m"\n')
    lab.run()                                  # nothing waits for the fault: the clock stays
    assert lab.faults.faults[0].state == "pending" and lab.now == lab.config.start
    lab.stop("mx1")                            # the first attempt is refused ...
    lab.send("alice@example.com", "peter@example.org", subject="x")
    lab.start("mx1")
    lab.run(until="1h")
    # ... the 09:05 retry meets the cut that starts at 09:05, the 09:20 one its end
    assert [(t, s.split(": ")[-1] if "deferred" in s else "sent")
            for t, s in deliveries(lab, "mail")] == [
        ("09:00:00", "Connection refused)"), ("09:05:00", "No route to host)"),
        ("09:10:00", "No route to host)"), ("09:20:00", "sent")]
    assert [f.state for f in lab.faults] == ["over"]


def scenario_api(root: Path) -> Lab:
    lab = Lab.init(root, from_lab="faults")
    lab.fault("greylist", "mx1", at="1h", duration="2h")
    lab.run(until="15m")
    lab.send("bob@office.example", "peter@example.org")
    lab.run(until="3h")
    return lab


def test_the_faults_lab_split_over_cli_commands_is_the_same_run(tmp_path):
    api = scenario_api(tmp_path / "api")
    d = str(tmp_path / "cli")
    out, err = io.StringIO(), io.StringIO()
    for argv in (["init", "--from", "faults"], ["fault", "greylist", "mx1", "--at", "1h",
                                                 "--for", "2h"],
                 ["run", "--until", "15m"],
                 ["send", "--from", "bob@office.example", "--to", "peter@example.org"],
                 ["run", "--until", "1h30m"], ["run", "--until", "1h30m"]):
        assert lab_main(None, [d, *argv], out, err) == 0, err.getvalue()
    cli = Lab.load(d)
    assert cli.now == api.now
    for name in api.hosts:
        assert cli.log(name) == api.log(name), name
    assert any("Greylisted" in ln for ln in api.log("isp"))
    assert "Subject: lab message 1" in api.mailbox("mx1", "peter")
    again = scenario_api(tmp_path / "again")
    assert all(again.log(n) == api.log(n) for n in api.hosts)


def test_cli_fault_list_and_end(tmp_path):
    d = str(tmp_path / "lab")
    out, err = io.StringIO(), io.StringIO()
    assert lab_main(None, [d, "init", "--from", "faults"], out, err) == 0
    assert lab_main(None, [d, "fault", "link-cut", "isp", "mx1", "--mode", "timeout"],
                    out := io.StringIO(), err) == 0
    assert out.getvalue() == ("fault 2: link-cut isp <-> mx1 (timeout) from 2026-11-25 09:00:00 "
                              "UTC, until ended (fault end N) -- active\n")
    assert lab_main(None, [d, "fault", "list"], out := io.StringIO(), err) == 0
    assert out.getvalue().splitlines() == [
        " 1  pending  2026-11-25 09:10:00 UTC -> 2026-11-25 10:10:00 UTC  host-down isp -- "
        "the ISP's relay is down for an hour (postfix stop, then postfix start)",
        " 2  active   2026-11-25 09:00:00 UTC -> (until ended)  link-cut isp <-> mx1 (timeout)"]
    assert lab_main(None, [d, "fault", "end", "2"], out := io.StringIO(), err) == 0
    assert lab_main(None, [d, "fault", "list", "--json"], out := io.StringIO(), err) == 0
    assert [r["state"] for r in json.loads(out.getvalue())] == ["pending", "over"]
    assert lab_main(None, [d, "fault", "end", "7"], io.StringIO(), err := io.StringIO()) == 1
    assert "no fault 7" in err.getvalue()
    assert lab_main(None, [d, "fault", "host-down", "nosuch"], io.StringIO(),
                    err := io.StringIO()) == 1
    assert "no host 'nosuch'" in err.getvalue()


# -- the shipped lab ------------------------------------------------------------------------------
def test_shipped_faults_lab_relay_down_for_an_hour(tmp_path):
    lab = Lab.init(tmp_path / "lab", from_lab="faults")
    lab.run(until="15m")
    assert not lab.network.is_up("isp")
    assert lab.send("bob@office.example", "peter@example.org").ok
    assert "(connect to smtp.isp.example.net[127.0.0.5]:25: Connection refused)" in \
        lab.mailq("office")
    lab.run()
    tries = deliveries(lab, "office")
    assert [t for t, _ in tries] == ["09:15:00", "09:20:00", "09:25:00", "09:35:00", "09:55:00",
                                     "10:35:00"]
    assert all(s.startswith("dsn=4.4.1, status=deferred") for _, s in tries[:-1])
    assert tries[-1][1].startswith("dsn=2.0.0, status=sent")
    assert lab.mailq("office") == "Mail queue is empty\n"
    assert "Subject: lab message 1" in lab.mailbox("mx1", "peter")
