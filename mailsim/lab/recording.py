"""A lab built from a recording of real Postfix, and the recorded scenario replayed in it.

The recordings in ``tests/golden/postfix-3.7-multi/`` (see their README)
were made with six Postfix instances on one machine: each host's
``postconf -n``, its tables, the zone, the client's dialogue, a timeline of
what the recorder did (stop a host, start it, ``postqueue -f``, ``postqueue
-p``), and what came out (logs, mailboxes, queues, DNS queries).

:func:`lab_toml` turns one into a lab: one ``[[hosts]]`` entry per
instance with its ``postconf -n`` as ``main_cf`` -- minus the settings that
only separate the instances on one machine (``config_directory``,
``data_directory``, ``queue_directory``, ``multi_instance_*``; instance
paths ``/etc/postfix-NAME/`` become ``/etc/postfix/``) -- its tables as
``files``, the recording's zone as ``zones/recording.zone``, and every
account the dialogue names on every host (the instances shared one
``/etc/passwd``). :func:`replay` then submits the recorded dialogue and
follows the timeline on the lab's clock.

Not replayed: the recorder's own ``postfix reload`` before a scenario (its
log lines are in the recording, not in the lab's logs).

Examples
--------
>>> rec = {"hosts": {"mail": {"address": "127.0.0.2", "myhostname": "mail.example.com",
...        "main_cf": "config_directory = /etc/postfix-mail\\nrelay_domains =\\n", "files": {}}},
...        "submit": {"dialogue": [{"send": "MAIL FROM:<alice@example.com>\\r\\n"}]},
...        "zones": "", "timeline": [{"t": "09:48:23.320", "elapsed_s": 0.0, "event": "submit"}]}
>>> print(lab_toml(rec, name="x"))       # doctest: +ELLIPSIS
[lab]
name = "x"
seed = 0
start = "2026-11-25 09:48:23.320"
<BLANKLINE>
[[hosts]]
name = "mail"
address = "127.0.0.2"
hostname = "mail.example.com"
users = ["alice"]
[hosts.main_cf]
relay_domains = ""
<BLANKLINE>
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .duration import format_instant, parse_instant

__all__ = ["lab_toml", "write_lab", "replay", "Replay", "submission_time", "INSTANCE_ONLY"]

#: postconf -n settings that only keep the recording's instances apart on one machine
INSTANCE_ONLY = {"config_directory", "data_directory", "queue_directory", "multi_instance_enable",
                 "multi_instance_name", "multi_instance_directories", "multi_instance_group"}
#: the recordings were made on this day (the logs say "Nov 25", the Date headers 2026)
DAY = "2026-11-25"


def _q(s: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(s, ensure_ascii=False)


def submission_time(rec: dict) -> float:
    """When the client connected: the time of the timeline's "submit" event; else the
    second of the first host's first ``connect from`` line, with the fraction of the
    first DNS query made in that second (the lookups start as the mail arrives).

    >>> from mailsim.lab.duration import format_instant
    >>> format_instant(submission_time({"timeline": [{"t": "09:48:23.320", "event": "submit"}]}))
    '2026-11-25 09:48:23 UTC'
    """
    for ev in rec.get("timeline", []):
        if "submit" in ev["event"]:
            return parse_instant(f"{DAY} {ev['t']}")
    to_host = rec["submit"]["to_host"]
    first = next(ln for ln in rec["logs"][to_host] if "/smtpd[" in ln and "connect from" in ln)
    second = parse_instant(f"{DAY} {first.split()[2]}")
    for q in rec.get("dns_queries", []):
        t = parse_instant(f"{DAY} {q.split()[0]}")
        if int(t) == int(second):
            return t
    return second


def _main_cf(text: str, name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        k, eq, v = line.partition("=")
        if not eq or k.strip() in INSTANCE_ONLY:
            continue
        out[k.strip()] = v.strip().replace(f"/etc/postfix-{name}/", "/etc/postfix/")
    return out


def _users(rec: dict) -> list[str]:
    users = set()
    for step in rec.get("submit", {}).get("dialogue", []):
        m = re.match(r"(?:MAIL FROM|RCPT TO):<([^@>]+)@", step.get("send", ""), re.I)
        if m:
            users.add(m.group(1))
    users |= {k.split("@")[0] for k in rec.get("mailboxes", {})}
    return sorted(users)


def lab_toml(rec: dict, *, name: str = "recording", seed: int = 0,
             start: float | None = None) -> str:
    """lab.toml for the recording ``rec`` (its parsed JSON); ``start`` defaults to the
    moment of submission."""
    t0 = submission_time(rec) if start is None else start
    stamp = format_instant(t0).replace(" UTC", "") + f"{t0 % 1:.3f}"[1:]
    out = ["[lab]", f"name = {_q(name)}", f"seed = {seed}", f"start = {_q(stamp)}", ""]
    users = _users(rec)
    for hname, h in rec["hosts"].items():
        out += ["[[hosts]]", f"name = {_q(hname)}", f"address = {_q(h['address'])}",
                f"hostname = {_q(h['myhostname'])}",
                "users = [" + ", ".join(_q(u) for u in users) + "]"]
        settings = _main_cf(h["main_cf"], hname)
        if settings:
            out.append("[hosts.main_cf]")
            out += [f"{k} = {_q(v)}" for k, v in settings.items()]
        if h.get("files"):
            out.append("[hosts.files]")
            out += [f"{_q('/etc/postfix/' + k)} = {_q(v)}" for k, v in h["files"].items()]
        out.append("")
    return "\n".join(out)


def write_lab(rec: dict, root: str | Path, *, name: str | None = None, seed: int = 0,
              start: float | None = None) -> Path:
    """Write the lab folder (lab.toml and zones/recording.zone) for ``rec`` at ``root``."""
    root = Path(root)
    (root / "zones").mkdir(parents=True, exist_ok=True)
    (root / "lab.toml").write_text(lab_toml(rec, name=name or rec.get("id", "recording"),
                                            seed=seed, start=start))
    if rec.get("zones"):
        (root / "zones" / "recording.zone").write_text(rec["zones"])
    return root


@dataclass
class Replay:
    """What a replayed scenario gave: the server's replies to the client, each host's
    log lines since the scenario began, the ``postqueue -p`` listings the
    timeline asked for, as ``(elapsed seconds, host, listing)``, and the
    questions the lab's DNS was asked (:class:`mailsim.dns.Query`)."""
    replies: list[str] = field(default_factory=list)
    logs: dict[str, list[str]] = field(default_factory=dict)
    queues: list[tuple[float, str, str]] = field(default_factory=list)
    dns_queries: list = field(default_factory=list)


def replay(lab, rec: dict, *, at: float | None = None) -> Replay:
    """Play ``rec``'s scenario in ``lab`` (built by :func:`write_lab`): stop the hosts
    the first event says are stopped, run the clock to the submission (``at``,
    default :func:`submission_time`), replay the client's bytes, then each
    timeline event at its elapsed time: ``start NAME``, ``postqueue -c
    /etc/postfix-NAME -f``, ``postqueue -p`` (a listing of its ``host``)."""
    from datetime import datetime, timezone
    t0 = submission_time(rec) if at is None else at
    events = rec.get("timeline", [])
    first = events[0]["event"] if events else ""
    for m in re.finditer(r"\b(\w+) stopped\b", first):
        if lab.network.is_up(m.group(1)):
            lab.stop(m.group(1))
    if t0 > lab.now:
        lab.run(until=datetime.fromtimestamp(t0, timezone.utc))
    offsets = {name: len(lab.log(name)) for name in lab.hosts}
    asked = len(lab.dns.queries) if lab.dns is not None else 0
    out = Replay()
    sub = rec["submit"]
    s = lab.session(sub["to_host"], client=sub.get("client"))
    out.replies.append(s.banner)
    for step in sub["dialogue"][1:]:
        out.replies.append(s.send(step["send"].encode("latin-1")))
    for ev in events:
        when = t0 + float(ev.get("elapsed_s", 0.0))
        if when > lab.now:
            lab.run(until=datetime.fromtimestamp(when, timezone.utc))
        text = ev["event"]
        m = re.match(r"start (\w+)$", text)
        if m:
            lab.start(m.group(1))
        m = re.match(r"postqueue -c /etc/postfix-(\w+) -f$", text)
        if m:
            lab.flush(m.group(1))
        if text == "postqueue -p" and ev.get("host"):
            out.queues.append((float(ev["elapsed_s"]), ev["host"], lab.mailq(ev["host"])))
    lab.run()
    out.logs = {name: lab.log(name)[offsets[name]:] for name in lab.hosts}
    out.dns_queries = list(lab.dns.queries[asked:]) if lab.dns is not None else []
    return out
