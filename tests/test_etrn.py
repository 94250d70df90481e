"""ETRN, flush(8) and ``postqueue -s`` against real Postfix 3.7.11.

tests/golden/etrn.json was recorded by tools/record_etrn.py from private
instances of Debian's postfix (``mailsim.realpostfix``): ETRN dialogues under
several configurations with smtpd's log lines, ETRN in ``sendmail -bs``,
``postqueue -s``/``-i`` refusals, and a backup MX whose deferred mail for
example.org and example.net is flushed by ``ETRN example.org`` and
``postqueue -s example.net``, with the contents of ``$queue_directory/flush/``
after each step. Each case is replayed on a mailsim host configured like the
instance (same main.cf settings, hostname real.example.net) and compared:
every reply exactly (code, enhanced status code, text), the log lines with
dates, hosts and pids masked, the flush logfiles with queue ids masked.

The lab tests use data/labs/backup-mx: the backup MX keeps the mail for
example.org while the primary is down and delivers it when asked by ETRN,
not before.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from conformance import ServerThread, replay_socket
from mailsim import flush
from mailsim.clock import SimClock
from mailsim.host import Host, init_host
from mailsim.lab.bridge import Sink, loopback_sink
from mailsim.postqueue import main as postqueue_main
from mailsim.sendmail import sendmail
from mailsim.serve import free_port

GOLDEN = json.loads((Path(__file__).parent / "golden/etrn.json").read_text())
SESSIONS = {s["id"]: s for s in GOLDEN["sessions"]}
#: instance settings that name its private folders: a mailsim host has its own
PATHS = {"config_directory", "data_directory", "maillog_file", "maillog_file_prefixes",
         "queue_directory", "virtual_mailbox_base"}


# -- a host configured like the recorded instance --------------------------------------------------
def instance_settings() -> dict[str, str]:
    out = {}
    for line in GOLDEN["instance_main_cf"].splitlines():
        name, _, value = line.partition(" = ")
        if name.strip() and name not in PATHS:
            out[name.strip()] = value
    return out


def make_host(root: Path, main_cf: dict[str, str], *, clock=None) -> Host:
    init_host(root, hostname="real.example.net", clock=clock)
    settings = {**instance_settings(), "maillog_file": "/var/log/maillog",
                "virtual_mailbox_base": "/var/vmail", **main_cf}
    (root / "etc/postfix/main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
    return Host(root, clock=clock)


def texts(lines: list[str], daemon: str | None = None) -> list[str]:
    """Log lines without date, host and pid: ``postfix/smtpd: text``."""
    out = []
    for ln in lines:
        m = re.search(r"(postfix/[\w-]+)\[\d+\]: (.*)$", ln)
        if m and (daemon is None or m.group(1) == f"postfix/{daemon}"):
            out.append(f"{m.group(1)}: {m.group(2)}")
    return out


def replay(host: Host, dialogue: list[dict]) -> list[str]:
    eng = host.smtpd("127.0.0.1", 40000)
    got = []
    for step in dialogue:
        out = eng.greeting() if step["send"] is None else eng.receive(step["send"].encode("latin-1"))
        got.append(out.decode("latin-1"))
    if not eng.closed:
        eng.lost()
    return got


# -- the replies ----------------------------------------------------------------------------------
@pytest.mark.parametrize("sid", list(SESSIONS))
def test_replies_and_log_as_recorded(sid, tmp_path):
    """Every reply byte for byte, and smtpd's log lines (warnings, rejects, disconnect)."""
    sc = SESSIONS[sid]
    host = make_host(tmp_path / "mx", sc["main_cf"])
    before = len(host.log.lines)
    got = replay(host, sc["dialogue"])
    for step, have in zip(sc["dialogue"], got):
        assert (step["send"], have) == (step["send"], step["reply"])
    assert texts(host.log.lines[before:], "smtpd") == texts(sc["log"])


@pytest.mark.parametrize("sid", ["syntax", "domains", "check-etrn-access", "delay-reject-helo"])
def test_replies_over_a_socket(sid, tmp_path):
    """``mailsim serve`` gives the same replies on a real connection."""
    sc = SESSIONS[sid]
    make_host(tmp_path / "mx", sc["main_cf"])
    st = ServerThread(tmp_path / "mx", clock=SimClock())
    try:
        got = replay_socket(sc, st.port)
    finally:
        st.close()
    assert ["".join(r) for r in got] == [s["reply"] for s in sc["dialogue"]]


def test_recorded_reply_kinds_are_covered():
    """The recording has every kind of ETRN answer the brief asks for."""
    replies = {s["reply"].strip() for sc in GOLDEN["sessions"] for s in sc["dialogue"]
               if (s["send"] or "").startswith("ETRN")}
    for want in ("250 Queuing started", "500 Syntax: ETRN domain",
                 "501 Error: invalid parameter syntax", "459 <example.com>: service unavailable",
                 "503 Error: send HELO/EHLO first", "503 Error: MAIL transaction in progress",
                 "554 5.7.1 <other.org>: Etrn command rejected: Access denied"):
        assert want in replies


def test_sendmail_bs_refuses_etrn(tmp_path):
    """Stand-alone smtpd: "458 Unable to queue messages" and a warning, after the syntax checks."""
    rec = GOLDEN["standalone"]
    host = make_host(tmp_path / "mx", {"relay_domains": "other.org"})
    before = len(host.log.lines)
    rc, out, err = sendmail(host, rec["argv"][1:], rec["stdin"].encode(), user="root")
    assert (rc, out.replace("\r\n", "\n"), err) == (rec["rc"], rec["stdout"], rec["stderr"])
    assert texts(host.log.lines[before:], "smtpd") == texts(rec["log"], "smtpd")[-4:]


@pytest.mark.parametrize("case", GOLDEN["postqueue"], ids=lambda c: " ".join(c["argv"]))
def test_postqueue_and_sendmail_qR_as_recorded(case, tmp_path):
    """Exit status, stdout, stderr and postqueue's log line."""
    host = make_host(tmp_path / "mx", {"relay_domains": "other.org"})
    before = len(host.log.lines)
    if case["argv"][0] == "postqueue":
        out, err = io.StringIO(), io.StringIO()
        rc = postqueue_main(host.root, case["argv"][1:], out, err, host=host)
        got = (rc, out.getvalue(), err.getvalue())
    else:
        got = sendmail(host, case["argv"][1:], b"", user="root")
    assert got == (case["rc"], case["stdout"], case["stderr"])
    assert texts(host.log.lines[before:]) == texts(case["log"], "postqueue")


# -- the backup MX, replayed ---------------------------------------------------------------------------
def send(host: Host, rcpts: list[str], subject: str) -> str:
    s = host.session()
    s.send("EHLO client.example.org")
    s.send("MAIL FROM:<alice@example.com>")
    for r in rcpts:
        assert s.send(f"RCPT TO:<{r}>").startswith("250")
    s.send("DATA")
    reply = s.message(f"From: <alice@example.com>\nTo: {', '.join(rcpts)}\nSubject: {subject}\n\nhello\n")
    s.send("QUIT")                          # the session ends: qmgr tries at once
    return re.search(r"queued as (\S+)", reply).group(1)


def talk(host: Host, dialogue: list[dict]) -> list[str]:
    s = host.session()
    got = [s.banner + "\r\n"]
    for step in dialogue[1:]:
        got.append(s.send(step["send"].rstrip("\r\n")).replace("\n", "\r\n") + "\r\n")
    return got


def masked_flush(logs: dict, names: dict[str, str]) -> dict[str, list[str]]:
    return {f: [names.get(q, q) for q in (ids.splitlines() if isinstance(ids, str) else ids)]
            for f, ids in logs.items()}


def per_message(lines: list[str], names: dict[str, str], ports: dict[str, str]) -> dict:
    """Each message's log lines, masked: queue id -> letter, ports, times, sizes, message-id."""
    out: dict[str, list[str]] = {}
    for ln in texts(lines):
        m = re.search(r": ([0-9A-F]{10,12}): ", ln)
        if not m or m.group(1) not in names:
            continue
        ln = ln.replace(m.group(1), names[m.group(1)])
        for port, name in ports.items():
            ln = ln.replace(f":{port}", f":{name}")
        ln = re.sub(r"delay=[\d.]+, delays=[\d./]+", "delay=D", ln)
        ln = re.sub(r"size=\d+", "size=S", ln)
        ln = re.sub(r"message-id=<[^>]*>", "message-id=<M>", ln)
        out.setdefault(ln.split(": ", 2)[1], []).append(ln)
    return out


def test_backup_mx_flush_as_recorded(tmp_path):
    """Three deferred messages; ``ETRN example.org`` delivers the two with example.org
    recipients (one is deferred again for example.net), ``postqueue -s example.net`` the
    rest: the replies, the flush/ logfiles, what reached the sinks, the log."""
    rec = GOLDEN["flush"]
    p_org, p_net = free_port(), free_port()
    settings = dict(rec["main_cf"])
    settings["transport_maps"] = (settings["transport_maps"]
                                  .replace(str(rec["ports"]["example.org"]), str(p_org))
                                  .replace(str(rec["ports"]["example.net"]), str(p_net)))
    host = make_host(tmp_path / "mx", settings)
    rec_names = {qid: letter for letter, qid in rec["queue_ids"].items()}
    names = {}
    names[send(host, ["peter@example.org"], "A")] = "A"
    names[send(host, ["paul@example.net"], "B")] = "B"
    names[send(host, ["carol@example.org", "dave@example.net"], "C")] = "C"
    raw: list = []                      # what the two sinks received

    def check(step: dict) -> None:
        assert masked_flush(flush.logfiles(host), names) == masked_flush(step["flush"], rec_names)
        deferred = [p.name for p in (host.spool / "deferred").rglob("*") if p.is_file()]
        assert sorted(names[q] for q in deferred) == sorted(rec_names[q] for q in step["deferred"])
        key = lambda d: (d["port_name"], d["rcpt_tos"])     # noqa: E731
        got = Sink(raw).received()
        assert sorted(got, key=key) == sorted(step["delivered"], key=key)

    steps = {s["step"]: s for s in rec["steps"]}
    check(steps["deferred"])
    assert sorted(p.name for p in (host.spool / "flush").iterdir()) == ["example_net", "example_org"]
    with loopback_sink(p_org, raw):
        assert talk(host, steps["etrn example.org"]["dialogue"]) == \
            [s["reply"] for s in steps["etrn example.org"]["dialogue"]]
        check(steps["etrn example.org"])
        assert talk(host, steps["etrn again"]["dialogue"]) == \
            [s["reply"] for s in steps["etrn again"]["dialogue"]]
        check(steps["etrn again"])
    with loopback_sink(p_net, raw):
        err = io.StringIO()
        assert postqueue_main(host.root, ["-s", "example.net"], io.StringIO(), err, host=host) == 0
        assert err.getvalue() == ""
        check(steps["postqueue -s example.net"])
    assert postqueue_main(host.root, ["-s", "example.net"], io.StringIO(), io.StringIO(),
                          host=host) == 0
    check(steps["postqueue -s example.net again"])
    ports = {str(p_org): "ORG", str(p_net): "NET"}
    rec_ports = {str(rec["ports"]["example.org"]): "ORG", str(rec["ports"]["example.net"]): "NET"}
    mine = per_message(host.log.lines, names, ports)
    theirs = per_message(rec["log"], rec_names, rec_ports)
    # each message's lines in the same order (the agents' lines of one message run in
    # parallel in Postfix: compared as sets per queue manager pass)
    assert {k: sorted(v) for k, v in mine.items()} == {k: sorted(v) for k, v in theirs.items()}


def test_etrn_is_not_postqueue_f(tmp_path):
    """ETRN delivers only what is deferred for that site; other deferred mail waits."""
    host = make_host(tmp_path / "mx", {
        "relay_domains": "example.org example.net",
        "transport_maps": f"inline:{{ example.org=smtp:[127.0.0.1]:{free_port()}, "
                          f"example.net=smtp:[127.0.0.1]:{free_port()} }}"})
    a = send(host, ["peter@example.org"], "A")
    b = send(host, ["paul@example.net"], "B")
    assert flush.logfiles(host) == {"example_org": [a], "example_net": [b]}
    s = host.session()
    s.send("EHLO client.example.org")
    assert s.send("ETRN example.org") == "250 Queuing started"
    # moved back to incoming at once; the queue manager delivers when the session ends
    assert (host.spool / "incoming" / a).exists()
    s.send("QUIT")
    assert flush.logfiles(host) == {"example_org": [a], "example_net": [b]}   # deferred again
    qmgr = [ln for ln in host.log.lines if "postfix/qmgr" in ln and "(queue active)" in ln]
    assert [ln.split(": ")[1] for ln in qmgr] == [a, b, a]


# -- the backup MX lab ---------------------------------------------------------------------------------
@pytest.fixture
def backup_mx(tmp_path):
    from mailsim.lab import Lab
    lab = Lab.init(tmp_path / "lab", from_lab="backup-mx")
    lab.autosave = False
    lab.stop("mx1")
    r = lab.send("alice@example.com", "peter@example.org", via="mail")
    assert r.ok
    lab.run(until="1m")
    return lab


def test_lab_backup_mx_delivers_after_etrn_not_before(backup_mx):
    lab = backup_mx
    mx2 = lab.host("mx2")
    [qid] = [p.name for p in (mx2.spool / "deferred").rglob("*") if p.is_file()]
    assert flush.logfiles(mx2) == {"example_org": [qid]}
    assert flush.logfiles(lab.host("mail")) == {}              # fast_flush_domains is empty
    lab.start("mx1")
    assert lab.mailbox("mx1", "peter") == ""                    # not before ETRN
    s = lab.session("mx2", client=lab.address("mx1"))
    s.send("EHLO mx1.example.org")
    assert s.send("ETRN example.com") == "459 <example.com>: service unavailable"
    assert s.send("ETRN example.org") == "250 Queuing started"
    s.send("QUIT")
    assert "Subject: lab message 1" in lab.mailbox("mx1", "peter")
    assert flush.logfiles(mx2) == {"example_org": []}
    assert "Mail queue is empty" in lab.mailq("mx2")
    log = "\n".join(lab.log("mx2"))
    assert f"{qid}: to=<peter@example.org>, relay=mx1.example.org[" in log and "status=sent" in log


def test_lab_backup_mx_etrn_while_primary_still_down(backup_mx):
    """ETRN succeeds, the retry fails again, and the message is listed again."""
    lab = backup_mx
    mx2 = lab.host("mx2")
    [qid] = flush.logfiles(mx2)["example_org"]
    s = lab.session("mx2")
    s.send("HELO client.example")
    assert s.send("ETRN example.org") == "250 Queuing started"
    s.send("QUIT")
    assert flush.logfiles(mx2) == {"example_org": [qid]}
    assert lab.mailbox("mx1", "peter") == ""


# -- flush(8)'s housekeeping --------------------------------------------------------------------------
def test_refresh_flushes_unread_logfiles_and_purges_empty_ones(tmp_path):
    host = make_host(tmp_path / "mx", {"relay_domains": "example.org",
                                       "transport_maps": "inline:{ example.org=smtp:[127.0.0.1]:"
                                                         f"{free_port()} }}"})
    a = send(host, ["peter@example.org"], "A")
    assert flush.logfiles(host) == {"example_org": [a]}
    host.clock.advance(3600)
    flush.refresh(host)                                         # read within 12h: left alone
    assert flush.logfiles(host) == {"example_org": [a]}
    host.clock.advance(12 * 3600)
    flush.refresh(host)                                         # as if ETRN had been sent
    assert flush.logfiles(host) == {"example_org": []}
    assert (host.spool / "incoming" / a).exists()
    host.run_queue()                                            # deferred (and listed) again
    assert flush.logfiles(host) == {"example_org": [a]}
    assert flush.send_site(host, "example.org") == flush.OK
    host.run_queue()
    path = host.spool / "flush/example_org"
    assert path.read_text() == a + "\n"
    path.write_text("")                                         # as after a successful flush
    import os
    os.utime(path, (host.clock.now(), host.clock.now()))
    host.clock.advance(6 * 86400)
    flush.refresh(host)
    assert path.exists()
    host.clock.advance(2 * 86400)
    flush.refresh(host)                                         # empty for 7 days: removed
    assert not path.exists()


def test_flush_statuses(tmp_path):
    host = make_host(tmp_path / "mx", {"relay_domains": "example.org",
                                       "fast_flush_domains": "$relay_domains, hash:/etc/postfix/nosuch"})
    assert flush.send_site(host, "example.org") == flush.OK
    assert flush.send_site(host, "example.com") == flush.FAIL   # the table cannot be read
    assert flush.add(host, "example.org", "BAD!ID") == flush.BAD
    assert flush.send_file(host, "BAD!ID") == flush.BAD
    assert flush.send_file(host, "4B2A11600F1") == flush.OK     # not queued: nothing to do
