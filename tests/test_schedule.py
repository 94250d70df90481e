"""qmgr's retry schedule on the simulated clock against real Postfix 3.7.11.

The recording (postfix-3.7-multi/06-deferred-then-bounce) is a message whose
next hop refuses connections, on a host with short lifetimes:
queue_run_delay=20s, minimal_backoff_time=20s, maximal_backoff_time=40s,
delay_warning_time=60s, maximal_queue_lifetime=bounce_queue_lifetime=150s.
Postfix tried at +0, +19, +39, +79, +119 and +159 s, sent one delay warning
at +79 s and returned the message at +159 s. mailsim replays the client's
dialogue at the same simulated times and must log the same lines at the same
times, list the same queue at every sample, and put the same two
notifications in alice's mailbox.

Masked: queue ids and pids (numbered in order of appearance, so "the same id"
must still be the same id) and delays below one second (the recording's
0.01 s are real process latency). Whole-second times, delays and dates are
compared as they are.

One deliberate difference in the set-up: the recording found the next hop by
DNS (MX of down.example -> mx.down.example -> 127.0.0.10). DNS comes with the
labs; here ``relayhost = [mx.down.example]`` and etc/hosts give the same
host and address, so Postfix's log lines are the same.
"""
from __future__ import annotations

import calendar
import json
import re
import socket
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conformance import numbered, per_message  # noqa: E402

from mailsim.clock import SimClock  # noqa: E402
from mailsim.host import Host, init_host  # noqa: E402
from mailsim.postqueue import listing  # noqa: E402

MULTI = Path(__file__).parent / "golden/postfix-3.7-multi"
QID = re.compile(r"\b[0-9A-F]{10,12}\b")
PID = re.compile(r"\[(\d+)\]:")
SUBSECOND = re.compile(r"\b0(\.\d+)?(?=[/,])")
START = calendar.timegm((2026, 11, 25, 9, 50, 24, 0, 0, 0)) + 0.577   # qmgr's heartbeat phase
ARRIVAL = calendar.timegm((2026, 11, 25, 9, 50, 25, 0, 0, 0)) + 0.551

DROP = {"config_directory", "data_directory", "multi_instance_enable", "multi_instance_name",
        "smtp_bind_address", "inet_interfaces"}


def mask(text: str) -> str:
    text = numbered(QID, text, "QID")
    text = numbered(PID, text, "PID", 1)
    return re.sub(r"(delays?=)([\d./]+)", lambda m: m.group(1) + SUBSECOND.sub("S", m.group(2) + ",")[:-1],
                  text)


def port_closed(addr: str, port: int) -> bool:
    try:
        socket.create_connection((addr, port), timeout=0.5).close()
    except OSError:
        return True
    return False


@pytest.fixture(scope="module")
def scenario():
    return json.loads((MULTI / "06-deferred-then-bounce.json").read_text())


def build(sc: dict, root: Path) -> Host:
    clock = SimClock(START)
    init_host(root, hostname="mail.example.com", users=["alice", "peter"], clock=clock, force=True)
    lines = [ln for ln in sc["hosts"]["mail"]["main_cf"].splitlines()
             if ln.split("=")[0].strip() not in DROP]
    lines += ["relayhost = [mx.down.example]", "smtp_dns_support_level = disabled",
              "smtp_host_lookup = native", "inet_interfaces = 127.0.0.2"]
    lines = [ln for ln in lines if not ln.startswith(("smtp_dns_support_level = enabled",
                                                        "smtp_host_lookup = dns"))]
    (root / "etc/postfix/main.cf").write_text("\n".join(lines) + "\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.0.2\tmail.example.com mail\n"
                                    "127.0.0.10\tmx.down.example\n")
    return Host(root, clock=clock)


def run(sc: dict, root: Path) -> tuple[Host, dict[str, str]]:
    host = build(sc, root)
    host.qmgr                                  # qmgr starts: its heartbeat phase is set
    host.clock.advance(ARRIVAL - host.clock.now())
    s = host.session()
    for step in sc["submit"]["dialogue"][1:]:
        s.send(step["send"].encode())
    queues = {}
    for at in range(15, 166, 15):
        host.advance(ARRIVAL + at - host.clock.now())
        queues[f"mail @{at}s"] = listing(host.spool)
    return host, queues


@pytest.fixture(scope="module")
def result(scenario, tmp_path_factory):
    if not port_closed("127.0.0.10", 25):
        pytest.skip("something listens on 127.0.0.10:25; the scenario needs a refused connection")
    return run(scenario, tmp_path_factory.mktemp("sched") / "mail")


def test_log_matches_recording(scenario, result):
    # the same lines at the same seconds; each message's lines in the same order
    # (Postfix's daemons run concurrently, so lines of different messages logged
    # in the same second may interleave differently)
    host, _ = result
    got = mask("\n".join(host.log.lines)).split("\n")
    want = mask("\n".join(scenario["logs"]["mail"])).split("\n")
    assert Counter(got) == Counter(want)
    assert per_message(got) == per_message(want)



def test_queue_listing_at_every_sample(scenario, result):
    _, queues = result
    for name, want in scenario["queues"].items():
        assert mask(queues[name]) == mask(want), name


def test_delay_warning_and_bounce_in_mailbox(scenario, result):
    host, _ = result
    got = host.path("/var/mail/mail/alice").read_text()
    assert mask(got) == mask(scenario["mailboxes"]["alice@mail.example.com"])
