"""``LAB/state.json``: what a lab remembers between two commands.

The host folders keep the mail (queues, mailboxes, logs). What lives only in
memory on a real network -- the time, which hosts run, each queue manager's
process id and heartbeat phase, the counters behind process and queue ids --
is written here after every command that changes it, so ``mailsim lab DIR
send`` followed by ``mailsim lab DIR run --until 1h`` in another process is
the same run as both done in one notebook. The faults (:mod:`mailsim.lab.faults`)
are kept here too: which have started or ended, the ones added from the
command line, and what they remember (greylisted triples, a mailbox's filler).

Delete state.json to start the clock again from lab.toml's ``start`` (the
mail already queued keeps its time stamps).

Examples
--------
>>> s = LabState(now=1795597200.0, sent=2)
>>> LabState.from_json(s.to_json()) == s
True
"""
from __future__ import annotations

import base64
import json
import os
import random
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["LabState", "HostState", "STATE_FILE", "read_state", "write_state", "pack_rng",
           "unpack_rng"]

STATE_FILE = "state.json"
VERSION = 1


@dataclass
class HostState:
    """One host's process state."""
    up: bool = True
    pid: int = 0                      # the last process id handed out
    queue_ids: int = 0                # the counter behind queue ids
    rng: str = ""                     # the seeded generator's state (pack_rng)
    daemons: dict[str, int] = field(default_factory=dict)   # cleanup, trivial-rewrite pids
    qmgr_pid: int = 0
    qmgr_started: float = 0.0
    qmgr_next_scan: float = 0.0
    qmgr_agents: dict[str, int] = field(default_factory=dict)  # delivery agents' pids


def pack_rng(rng: random.Random) -> str:
    """A :class:`random.Random`'s state as text (the Mersenne Twister's 625 words).

    >>> r = random.Random(7); _ = r.random(); s = pack_rng(r)
    >>> r2 = random.Random(); unpack_rng(r2, s); r2.random() == r.random()
    True
    """
    version, words, gauss = rng.getstate()
    data = struct.pack(f"<{len(words)}I", *words)
    return json.dumps([version, base64.b64encode(data).decode(), gauss])


def unpack_rng(rng: random.Random, text: str) -> None:
    """Restore a state made by :func:`pack_rng`."""
    version, data, gauss = json.loads(text)
    raw = base64.b64decode(data)
    rng.setstate((version, struct.unpack(f"<{len(raw) // 4}I", raw), gauss))


@dataclass
class LabState:
    now: float
    sent: int = 0                     # messages `lab send` made (their Message-IDs)
    hosts: dict[str, HostState] = field(default_factory=dict)
    faults: list[dict] = field(default_factory=list)   # mailsim.lab.faults.Fault.to_dict()

    def to_json(self) -> str:
        return json.dumps({"version": VERSION, **asdict(self)}, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "LabState":
        d = json.loads(text)
        if d.get("version") != VERSION:
            raise ValueError(f"state version {d.get('version')!r}, expected {VERSION}")
        return cls(float(d["now"]), int(d.get("sent", 0)),
                   {k: HostState(**v) for k, v in d.get("hosts", {}).items()},
                   list(d.get("faults", [])))


def read_state(root: Path) -> LabState | None:
    """The saved state of the lab at ``root``; None when there is none (or it is unreadable)."""
    try:
        return LabState.from_json((Path(root) / STATE_FILE).read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_state(root: Path, state: LabState) -> None:
    """Write state.json in one step (a new file renamed over the old one)."""
    path = Path(root) / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.to_json())
    os.replace(tmp, path)
