"""Labs: several simulated Postfix hosts on a virtual network, with a virtual DNS,
on one simulated clock.

A lab is a folder (``lab.toml``, ``zones/*.zone``, ``hosts/NAME/``); see
:mod:`mailsim.lab.config` for lab.toml and :class:`mailsim.lab.lab.Lab` for the API.
The modules, one job each:

* :mod:`~mailsim.lab.config` -- lab.toml, checked, with errors naming file and line;
* :mod:`~mailsim.lab.build` -- a host folder made from its ``[[hosts]]`` entry;
* :mod:`~mailsim.lab.network` -- addresses, hosts up or down, links; the in-memory connector;
* :mod:`~mailsim.lab.scheduler` -- every host's queue manager on one clock, in time order;
* :mod:`~mailsim.lab.faults` -- faults at simulated instants: a host down, a link cut or
  slow, DNS SERVFAIL/NXDOMAIN, greylisting, a full mailbox;
* :mod:`~mailsim.lab.state` -- what a lab remembers between two commands (state.json);
* :mod:`~mailsim.lab.lab` -- :class:`Lab`: load, send, run, mailq, log, mailbox;
* :mod:`~mailsim.lab.recording` -- a lab built from a recording of real Postfix;
* :mod:`~mailsim.lab.cli` -- ``mailsim lab DIR init|send|run|mailq|log|...``.
"""
from .config import LabConfig, LabError, load_lab_toml, parse_lab_toml
from .lab import Lab, LabSession, SendResult, shipped_labs

__all__ = ["Lab", "LabError", "LabConfig", "LabSession", "SendResult", "load_lab_toml",
           "parse_lab_toml", "shipped_labs"]
