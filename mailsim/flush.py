"""flush(8): the fast flush service -- deferred mail by destination, for ETRN and ``postqueue -s``.

Models Postfix 3.7's ``src/flush/flush.c`` with its client side
``src/global/flush_clnt.c``.

What Postfix does, and mailsim with it
--------------------------------------
* For every destination (the part after the last ``@`` of a recipient) that
  matches ``fast_flush_domains`` (default ``$relay_domains``), flush(8) keeps
  a *logfile* ``$queue_directory/flush/SITE``: one queue id per line. The
  file name is the domain in lower case with every character that is not a
  letter or digit replaced by ``_`` (``example.org`` -> ``example_org``).
* When a delivery agent defers a recipient, its ``defer_append()`` asks
  flush(8) to append the message's queue id to that recipient domain's
  logfile (:func:`add`; in mailsim the queue manager does it for every
  deferred recipient). Domains that are not eligible are ignored.
* ``ETRN example.org`` (smtpd(8)), ``postqueue -s example.org`` and
  ``sendmail -qRexample.org`` ask for that site's mail (:func:`send_site`):
  flush(8) reads the logfile, sets the time stamps of the listed queue files
  to now and moves them from ``deferred`` back to ``incoming`` (skipping
  duplicates and ids that are no longer queued), truncates the logfile and
  wakes the queue manager, which delivers them at once. The logfile is
  truncated when delivery is *requested*: a message that is deferred again
  is added again. Every message in the logfile goes, whatever its other
  recipients (mail for a relay domain rarely has others).
* ``postqueue -i QUEUE_ID`` asks for one message (:func:`send_file`).
* Housekeeping (:func:`refresh`, what master(8)'s wakeup timer of the
  ``flush`` service triggers every 1000 s): a non-empty logfile not read for
  ``fast_flush_refresh_time`` (12h) is flushed as if asked for; an empty one
  not changed for ``fast_flush_purge_time`` (7d) is removed. ``purge``
  (:func:`refresh` with ``max_age=0``) flushes every logfile.

Results are flush_clnt's: ``OK`` (0), ``FAIL`` (-1: e.g. a
``fast_flush_domains`` table cannot be read), ``BAD`` (3: an invalid name),
``DENY`` (4: the destination is not eligible).

Times come from the host's clock, so on a simulated clock a notebook sees
the same file times as the queue.

Not simulated: the queue manager's "dead destination" cache that a flush
clears (mailsim's qmgr has none; a transport throttled after its agent died
stays so until the queue manager restarts), file locking, and the
``UNTHROTTLE_AFTER`` permission bit of ``postqueue -i``; ``refresh`` runs
only when called (mailsim has no master(8) wakeup timer).

Examples
--------
>>> import tempfile, pathlib
>>> from mailsim.host import init_host
>>> h = init_host(pathlib.Path(tempfile.mkdtemp()) / "mx")
>>> h = h.with_settings(relay_domains="example.org")
>>> add(h, "example.org", "4B2A11600F1"), add(h, "example.com", "4B2A11600F1")
(0, 4)
>>> logfiles(h)
{'example_org': ['4B2A11600F1']}
>>> send_site(h, "EXAMPLE.ORG"), logfiles(h)      # nothing queued any more: just truncated
(0, {'example_org': []})
>>> send_site(h, "example.com")
4
"""
from __future__ import annotations

import os
from pathlib import Path

from .domains import match_domain, parent_matches
from .maps import MapError
from .queue import queue_dir

__all__ = ["OK", "FAIL", "BAD", "DENY", "eligible", "site_to_path", "queue_id_ok", "add",
           "send_site", "send_file", "refresh", "purge", "logfile", "logfiles"]

#: flush_clnt.h's FLUSH_STAT_*
FAIL, OK, BAD, DENY = -1, 0, 3, 4
#: flush.c: how many queue ids one flush remembers to skip duplicates
DUP_FILTER_SIZE = 10000
#: VALID_HOSTNAME_LEN: the longest queue id or logfile name
_NAME_MAX = 255


def eligible(host, site: str) -> int:
    """flush_clnt's check: OK if ``site`` matches ``fast_flush_domains``, DENY if it
    does not, FAIL if a table in the list cannot be read."""
    c = host.conf
    try:
        hit = match_domain(site, c.list("fast_flush_domains"),
                           parent_matches=parent_matches(c, "fast_flush_domains"),
                           lookup=lambda spec, key: host.open_map(spec).lookup(key),
                           read_file=lambda p: host.path(p).read_text())
    except (MapError, OSError):
        return FAIL
    return OK if hit else DENY


def site_to_path(site: str) -> str | None:
    """flush_site_to_path: the logfile name of a destination (None: no ASCII form).

    >>> site_to_path("Example.ORG"), site_to_path("mail-1.example.net"), site_to_path("[1.2.3.4]")
    ('example_org', 'mail_1_example_net', None)
    """
    from .smtpd.check import valid_hostname
    if site.isascii():
        ascii_ = site.lower()
    else:
        try:
            ascii_ = site.encode("idna").decode("ascii").lower()
        except UnicodeError:
            return None
    if not valid_hostname(ascii_):
        return None             # midna_domain_to_ascii: "Problem translating domain ..."
    return "".join(ch if ch.isalnum() else "_" for ch in ascii_)


def queue_id_ok(name: str) -> bool:
    """mail_queue_id_ok: a queue id or logfile name (letters, digits and ``_``).

    >>> queue_id_ok("4B2A11600F1"), queue_id_ok("example_org"), queue_id_ok("BAD!ID")
    (True, True, False)
    """
    return 0 < len(name) <= _NAME_MAX and name.isascii() and \
        all(ch.isalnum() or ch == "_" for ch in name)


def logfile(host, site: str) -> Path | None:
    """Where the logfile of ``site`` is (``$queue_directory/flush/example_org``)."""
    name = site_to_path(site)
    return host.spool / "flush" / name if name else None


def logfiles(host) -> dict[str, list[str]]:
    """Every logfile and the queue ids in it, as a learner would ``cat flush/*``."""
    d = host.spool / "flush"
    try:
        names = sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
    except FileNotFoundError:
        return {}
    out = {}
    for p in names:
        st = p.stat()
        out[p.name] = p.read_text("ascii", "replace").splitlines()
        os.utime(p, (st.st_atime, st.st_mtime))     # looking is not flush(8) reading
    return out


# -- the requests ----------------------------------------------------------------------------------
def add(host, site: str, queue_id: str) -> int:
    """flush_add: message ``queue_id`` has mail deferred for ``site``."""
    status = eligible(host, site)
    if status != OK:
        return status
    if not queue_id_ok(queue_id):
        return BAD
    name = site_to_path(site)
    if name is None:
        return DENY
    if not queue_id_ok(name):
        return BAD
    path = host.spool / "flush" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        st = os.fstat(fd)
        os.write(fd, f"{queue_id}\n".encode("ascii"))
        # the file's times on the host's clock: a write changes mtime, creation sets atime
        now = host.clock.now()
        os.utime(fd, (st.st_atime if st.st_size else now, now))
    finally:
        os.close(fd)
    return OK


def send_site(host, site: str) -> int:
    """flush_send_site: deliver what is queued for ``site`` now (ETRN, postqueue -s)."""
    status = eligible(host, site)
    if status != OK:
        return status
    name = site_to_path(site)
    if name is None:
        return DENY
    return _send_path(host, name)


def send_file(host, queue_id: str) -> int:
    """flush_send_file: deliver message ``queue_id`` now (postqueue -i)."""
    if not queue_id_ok(queue_id):
        return BAD
    now = host.clock.now()
    if _flush_one(host, queue_id, now):
        host.wake_qmgr(b"I")
    return OK


def refresh(host, max_age: float | None = None) -> int:
    """flush_refresh_service: flush logfiles unread for ``max_age`` seconds (default
    ``fast_flush_refresh_time``), remove empty ones unchanged for
    ``fast_flush_purge_time``."""
    if not host.conf.list("fast_flush_domains"):
        return DENY                           # the client does not bother the server
    if max_age is None:
        max_age = host.conf.time("fast_flush_refresh_time")
    purge_time = host.conf.time("fast_flush_purge_time")
    now = host.clock.now()
    d = host.spool / "flush"
    try:
        names = sorted(p.name for p in d.iterdir())
    except FileNotFoundError:
        return OK
    for name in names:
        if not queue_id_ok(name):
            continue
        try:
            st = (d / name).stat()
        except FileNotFoundError:
            continue
        if st.st_size == 0:
            if st.st_mtime + purge_time < now:
                (d / name).unlink(missing_ok=True)
        elif st.st_atime + max_age < now:
            _send_path(host, name)
    return OK


def purge(host) -> int:
    """flush_purge: refresh every logfile, whatever its age."""
    return refresh(host, 0)


# -- the server's work -----------------------------------------------------------------------------
def _send_path(host, name: str) -> int:
    """flush_send_path: move the listed messages to ``incoming`` and truncate the log."""
    if not queue_id_ok(name):
        return BAD
    path = host.spool / "flush" / name
    try:
        text = path.read_text("ascii", "replace")
    except FileNotFoundError:
        return OK                             # nothing was ever deferred for it
    now = host.clock.now()
    seen: set[str] = set()
    count = 0
    for qid in text.splitlines():
        count += 1
        if not queue_id_ok(qid):
            host.log.write("flush", host.next_pid(),
                           f'warning: bad queue id "{qid[:30]}..." in fast flush logfile {name}')
            continue
        if len(seen) >= DUP_FILTER_SIZE or qid not in seen:
            if len(seen) <= DUP_FILTER_SIZE:
                seen.add(qid)
            count += _flush_one(host, qid, now)
    if count:
        with open(path, "r+b") as f:
            f.truncate(0)
    os.utime(path, (now, now))                # read now: refresh() leaves it alone
    if count:
        host.wake_qmgr(b"I")                  # QMGR_REQ_SCAN_INCOMING
    return OK


def _flush_one(host, qid: str, now: float) -> int:
    """flush_one_file: time-stamp the message and move it from deferred to incoming."""
    spool = host.spool
    deferred = queue_dir(spool, "deferred", qid) / qid
    incoming = spool / "incoming" / qid
    for path in (deferred, incoming):
        try:
            os.utime(path, (now, now))
            break
        except FileNotFoundError:
            continue
    else:
        return 0                              # delivered, bounced or held since
    if path == deferred:
        try:
            incoming.parent.mkdir(parents=True, exist_ok=True)
            os.replace(deferred, incoming)
        except FileNotFoundError:
            pass                              # the queue manager took it meanwhile
    return 1
