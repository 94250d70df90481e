"""mailsim: a Postfix-faithful mail server simulator and course (LPIC-2 211.1).

The public API::

    from mailsim import init_host, Host
    host = init_host("lab/mx", hostname="mail.example.com", users=["alice"])
    s = host.session()              # an in-process SMTP session
    print(s.send("EHLO client.example.org"))
"""
from .host import Host, init_host
from .reply import Reply

__all__ = ["Host", "init_host", "Reply"]
__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    """``%load_ext mailsim``: registers the ``%%smtp`` cell magic (see :mod:`mailsim.magic`)."""
    from .magic import load_ipython_extension as load
    load(ipython)
