"""Every parameter the simulator reads is listed as simulated, so postconf tells the truth."""
from __future__ import annotations

import re
from pathlib import Path

from mailsim.conf.simulated import SIMULATED

PKG = Path(__file__).resolve().parent.parent / "mailsim"
# conf.bool("x"), conf.int("x"), conf.list("x"), conf.get("x"), conf.time("x"), conf.raw("x"), conf["x"]
READ = re.compile(r"""\b(?:conf|config|c)\s*(?:\.(?:bool|int|list|get|time|raw)\(\s*|\[\s*)["']([a-z0-9_]+)["']""")
# modules that read parameters only to print or edit them (postconf itself, its tests of defaults)
NOT_DAEMONS = {"conf"}
# modules written but not yet part of the mail flow: their parameters become
# "simulated" when mail reaches them (none left since qmgr runs every agent)
NOT_WIRED: set[str] = set()
# read so that smtpd answers as Postfix does while they are off (none since SASL came)
LATER: set[str] = set()


def parameters_read() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in PKG.rglob("*.py"):
        if path.relative_to(PKG).parts[0] in NOT_DAEMONS | NOT_WIRED:
            continue
        for name in READ.findall(path.read_text()):
            found.setdefault(name, set()).add(str(path.relative_to(PKG)))
    return found


def test_parameters_read_are_marked_simulated():
    missing = {n: sorted(w) for n, w in parameters_read().items()
               if n not in SIMULATED and n not in LATER}
    assert not missing, f"add these to mailsim/conf/simulated.py: {missing}"


def test_the_scan_finds_something():
    found = parameters_read()
    assert "mydestination" in found and "smtpd_banner" in found
