"""Postfix configuration: main.cf, master.cf, ``$name`` expansion, defaults, postconf.

Models the configuration layer every Postfix 3.7 program shares
(postconf(5), master(5), postconf(1)):

* :mod:`.parser` -- main.cf syntax (logical lines, ``name = value``);
* :mod:`.expand` -- ``$name`` / ``${name?value}`` / ``${{a} <level {b} ? ...}``;
* :mod:`.defaults` -- the 3.7.11 defaults (``postconf -d``), service-defined
  and machine-dependent parameters;
* :mod:`.params` -- :class:`MainConfig`, main.cf as the daemons read it;
* :mod:`.master` -- master.cf services;
* :mod:`.postconf` -- the ``postconf`` command;
* :mod:`.simulated` -- which parameters mailsim actually simulates.

>>> conf = MainConfig.from_text("myhostname = mail.example.com\\nmydomain = example.com\\n")
>>> conf["myorigin"], conf.list("mydestination")
('mail.example.com', ['mail.example.com', 'localhost.example.com', 'localhost'])
"""
from __future__ import annotations

from importlib import resources

from .master import MasterEntry, parse_master_cf, read_master_cf
from .params import MainConfig, split_list
from .parser import ConfigError

__all__ = ["ConfigError", "MainConfig", "MasterEntry", "default_master_cf", "split_list",
           "read_master_cf", "parse_master_cf"]


def default_master_cf() -> str:
    """Debian 12's master.cf (the text ``mailsim init`` writes).

    >>> "smtp      inet  n       -       y       -       -       smtpd" in default_master_cf()
    True
    """
    return resources.files(__name__).joinpath("data").joinpath("master.cf").read_text()
