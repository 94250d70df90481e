from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def host(tmp_path):
    """A fresh host like the corpus's base configuration, users peter and gerda."""
    from conformance import build_host
    sc = {"id": "t", "users": ["peter", "gerda", "alice", "bob"], "main_cf": {},
          "files": {"aliases": "postmaster: root\nmailer-daemon: postmaster\nroot: peter\n"
                               "staff: peter, gerda\n"}}
    return build_host(sc, tmp_path / "mx")


@pytest.fixture
def make_host(tmp_path):
    """make_host(main_cf={...}, files={...}) -> a host configured like a scenario."""
    from conformance import build_host
    n = [0]

    def make(main_cf=None, files=None, users=("peter", "gerda", "alice", "bob")):
        n[0] += 1
        sc = {"id": "t", "users": list(users), "main_cf": dict(main_cf or {}),
              "files": {"aliases": "postmaster: root\nroot: peter\nstaff: peter, gerda\n",
                        **(files or {})}}
        return build_host(sc, tmp_path / f"mx{n[0]}")
    return make
