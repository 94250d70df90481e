"""``make bench`` for labs: mail end to end through lab hosts into mailboxes.

Three measurements, each checking its result (a benchmark that does not
check what it delivered measures nothing):

* ``two-hop`` -- a lab of two hosts, ``mail`` (example.com) and ``mx1``
  (example.org, its MX in the lab's zone): N messages of 1024 bytes, one SMTP
  session each (:meth:`mailsim.lab.Lab.send`, as smtp-source would send
  them), go into ``mail``; its smtp(8) passes each on to ``mx1``, whose
  local(8) appends it to peter's mbox; :meth:`Lab.run` runs until no host has
  mail waiting. Every hop logs, as on a server. Figure: messages per second,
  from the first session to the last delivery. Checked: every Message-ID is
  in the mbox exactly once, and each host logged N ``status=sent`` lines.
* real Postfix, in the same run (when ``/usr/sbin/postfix`` and
  ``smtp-source`` are installed and we are root): a private instance
  (:func:`mailsim.realpostfix.postfix_instance`, ``postfix -c``: its own
  main.cf, master.cf, queue and log under ./.bench, so ``/etc/postfix`` and
  the machine's own Postfix are never touched; stopped and removed
  afterwards), ``smtp-source -s 10 -m N -l 1024`` into its smtpd on
  127.0.0.1, local(8) into an mbox; timed until the N-th message is in the
  mbox. Printed as a ratio mailsim/Postfix. Note that mailsim's figure is
  two hops (twice the SMTP, queue and log work per message) and Postfix's
  one, and that Postfix runs many processes on every core while a lab runs
  in one Python process.
* ``big`` -- a generated lab of H hosts (one domain each, every MX, A and
  PTR record in one zone file) and M messages between random users on
  different hosts (seeded). Messages go in by SMTP sessions in batches
  (``--batch``, default 1000); after each batch the lab delivers what is
  queued (:meth:`Lab.settle`), and :meth:`Lab.run` at the end. (``--batch 1``
  is the lab's own way, a settle after every session; each settle looks at
  every host's incoming queue, ~40 ms for 1,000 hosts, so that costs more
  than the mail itself in a big lab.) Figures: wall time (building the host folders,
  and the run), peak memory of the process (``ru_maxrss``), delivered count;
  checked: every message in the right mailbox exactly once, every queue
  empty.

The spool is always on disk (queue files, mailboxes and logs in each host's
folder, under ``./.bench`` -- not /tmp, which is a slow, busy file system on
some machines); mailsim has no other spool mode. ``lab.autosave`` is off
while messages flow (``state.json`` is written once at the end) unless
``--autosave``: saving writes every host's state after each session.

Usage::

    python -m mailsim.bench_lab two-hop [--messages 2000] [--runs 3] [--no-postfix]
    python -m mailsim.bench_lab big [--hosts 1000] [--messages 100000] [--extrapolate-to M]

Example
-------
>>> m = bench_message(7, "alice@example.com", "peter@example.org")
>>> m.splitlines()[:3]
['From: <alice@example.com>', 'To: <peter@example.org>', 'Message-ID: <7.bench@mailsim.invalid>']
>>> len(m.split("\\n\\n", 1)[1])
1024
"""
from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .bench import SESSIONS, SIZE

__all__ = ["bench_message", "two_hop", "big", "real_postfix", "TwoHop", "Big", "PostfixRun",
           "SPOOL_MODE", "main"]

#: where queue files, mailboxes and logs live while a benchmark runs
SPOOL_MODE = "disk"
#: the goals of the issue
GOAL_RATIO, GOAL_SECONDS, GOAL_MIB = 1.0, 60.0, 1024.0
_MSGID = re.compile(rb"^Message-I[Dd]: <([^>]*)>", re.M | re.I)


def bench_message(seq: int, sender: str, rcpt: str, size: int = SIZE) -> str:
    """A test message like smtp-source's: From, To, Message-ID, then ``size`` bytes of
    80-column body. Its Message-ID ``<SEQ.bench@mailsim.invalid>`` tells it apart."""
    line = "X" * 79 + "\n"
    body = (line * (size // len(line) + 1))[:size - 1] + "\n"
    return (f"From: <{sender}>\nTo: <{rcpt}>\nMessage-ID: <{seq}.bench@mailsim.invalid>\n\n"
            + body)


def _peak_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1048576 if sys.platform == "darwin" else rss / 1024


def _message_ids(data: bytes) -> list[str]:
    return [m.decode("ascii", "replace") for m in _MSGID.findall(data)]


def _mbox_count(data: bytes) -> int:
    """Messages in an mbox (its ``From`` separator lines)."""
    return data.count(b"\nFrom ") + data.startswith(b"From ")


def _quiet_disk() -> None:
    """Write out what earlier runs left in the page cache, so that a run does not pay
    for the one before it (Postfix fsyncs every queue file and mailbox)."""
    if hasattr(os, "sync"):
        os.sync()


def _runs(xs: list[float]) -> str:
    return ", ".join(f"{x:.0f}" for x in xs)


def _goal(ok: bool) -> str:
    return "meets the goal" if ok else "SHORT of the goal"


# -- the lab folders -------------------------------------------------------------------------
_SOA = "SOA ns.example. hostmaster.example. 1 3600 600 86400 300"


def _write_lab(root: Path, name: str, hosts: list[tuple[str, str, str, list[str]]],
               zone: list[str]) -> None:
    """lab.toml and zones/lab.zone for ``hosts`` (name, address, hostname, users)."""
    out = [f'[lab]\nname = "{name}"\nseed = 1\n']
    for hname, addr, hostname, users in hosts:
        out.append(f'[[hosts]]\nname = "{hname}"\naddress = "{addr}"\nhostname = "{hostname}"\n'
                   'users = [' + ", ".join(f'"{u}"' for u in users) + ']\n'
                   '[hosts.main_cf]\nmydestination = "$myhostname, $mydomain, localhost"\n')
    root.mkdir(parents=True, exist_ok=True)
    (root / "lab.toml").write_text("\n".join(out))
    (root / "zones").mkdir(exist_ok=True)
    (root / "zones/lab.zone").write_text("\n".join(["$TTL 300"] + zone) + "\n")


def _new_dir(base: Path, prefix: str) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


# -- two hops --------------------------------------------------------------------------------
@dataclass
class TwoHop:
    """One two-hop run: ``messages`` sent, ``delivered`` found in the mbox, in ``seconds``."""
    messages: int
    delivered: int
    seconds: float
    logged: dict[str, int] = field(default_factory=dict)    # host -> status=sent lines

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def two_hop_lab(root: Path):
    """The two-host lab of the two-hop run, loaded (autosave on, as Lab.load leaves it)."""
    from .lab import Lab
    _write_lab(root, "two-hop", [
        ("mail", "127.0.0.2", "mail.example.com", ["alice"]),
        ("mx1", "127.0.0.3", "mx1.example.org", ["peter"]),
    ], [
        f"example.com. {_SOA}", f"example.org. {_SOA}",
        "example.com. MX 10 mail.example.com.", "mail.example.com. A 127.0.0.2",
        "example.org. MX 10 mx1.example.org.", "mx1.example.org. A 127.0.0.3",
        f"127.in-addr.arpa. {_SOA}",
        "2.0.0.127.in-addr.arpa. PTR mail.example.com.",
        "3.0.0.127.in-addr.arpa. PTR mx1.example.org.",
    ])
    return Lab.load(root)


def two_hop(messages: int = 2000, base: str | os.PathLike = ".bench", *,
            autosave: bool = False, keep: bool = False) -> TwoHop:
    """Send ``messages`` into ``mail``, run the lab, check mx1's mbox (see the module doc).
    Raises AssertionError when a message is missing or twice in the mbox."""
    root = _new_dir(Path(base), "two-hop-")
    try:
        lab = two_hop_lab(root)
        lab.autosave = autosave
        sender, rcpt = "alice@example.com", "peter@example.org"
        texts = [bench_message(i, sender, rcpt) for i in range(messages)]
        _quiet_disk()
        t0 = time.perf_counter()
        for text in texts:
            r = lab.send(sender, rcpt, via="mail", message=text)
            if not r.ok:
                raise AssertionError(f"mail refused a message:\n{r.transcript()}")
        lab.run()
        seconds = time.perf_counter() - t0
        lab.autosave = True
        lab.save()
        box = lab.mailbox("mx1", "peter").encode("utf-8", "surrogateescape")
        ids = _message_ids(box)
        want = {f"{i}.bench@mailsim.invalid" for i in range(messages)}
        if len(ids) != messages or set(ids) != want or _mbox_count(box) != messages:
            missing = len(want - set(ids))
            raise AssertionError(f"two-hop: {messages} sent, {len(ids)} in mx1's mbox "
                                 f"({missing} missing, {len(ids) - len(set(ids))} twice)")
        logged = {name: sum("status=sent" in ln for ln in lab.log(name)) for name in lab.hosts}
        if any(n != messages for n in logged.values()):
            raise AssertionError(f"two-hop: status=sent lines per host {logged}, "
                                 f"expected {messages} each")
        return TwoHop(messages, len(ids), seconds, logged)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


# -- real Postfix ----------------------------------------------------------------------------
@dataclass
class PostfixRun:
    """Real Postfix's runs (``rates``), or why it did not run (``skipped``)."""
    rates: list[float] = field(default_factory=list)
    skipped: str | None = None
    version: str = ""

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)


def smtp_source() -> str | None:
    """The path of Postfix's smtp-source, if installed."""
    return shutil.which("smtp-source") or next(
        (p for p in ("/usr/sbin/smtp-source", "/usr/bin/smtp-source") if os.path.exists(p)), None)


def postfix_unavailable() -> str | None:
    """Why real Postfix cannot be measured here (None: it can)."""
    from .realpostfix import POSTFIX, unavailable
    if not os.path.exists(POSTFIX):
        return "not installed"
    why = unavailable()
    if why:
        return why
    if smtp_source() is None:
        return "smtp-source is not installed (it comes with Debian's postfix package)"
    return None


@contextlib.contextmanager
def _tempdir(path: Path | None):
    """tempfile's default folder is ``path`` for a while (postfix_instance makes its
    folder there: the same disk as mailsim's spool). The postfix account must be able
    to reach it (pytest's tmp_path, mode 0700, will not do); None: the usual one."""
    old = tempfile.tempdir
    if path is None:
        yield
        return
    path.mkdir(parents=True, exist_ok=True)
    tempfile.tempdir = str(path.resolve())
    try:
        yield
    finally:
        tempfile.tempdir = old


@contextlib.contextmanager
def postfix_local(base: str | os.PathLike | None = ".bench"):
    """A private real Postfix on a free loopback port (its folder in ``base``; None: the
    system's temporary folder) that delivers ``nobody@localhost`` with local(8) into
    the mbox ``FOLDER/mail/nobody``; yields (instance, port)."""
    from .realpostfix import postfix_instance
    from .serve import free_port
    port = free_port()
    settings = {
        "myhostname": "mail.example.com",
        "mydestination": "localhost",                   # local(8) delivers nobody@localhost
        "mail_spool_directory": "$queue_directory/../mail",
        "alias_maps": "inline:{ postmaster=root }",     # an alias lookup, as mailsim's hosts do
    }
    with _tempdir(None if base is None else Path(base)), postfix_instance(port, settings) as pf:
        (pf.base / "mail").mkdir(mode=0o755, exist_ok=True)
        yield pf, port


def postfix_once(pf, port: int, messages: int, timeout: float = 300.0) -> float:
    """One smtp-source load into the instance; messages per second until all N are in
    the mbox (which is emptied first)."""
    mbox = pf.base / "mail" / "nobody"
    mbox.unlink(missing_ok=True)
    _quiet_disk()
    t0 = time.perf_counter()
    subprocess.run([smtp_source(), "-s", str(SESSIONS), "-m", str(messages), "-l", str(SIZE),
                    "-f", "alice@example.com", "-t", "nobody@localhost", f"127.0.0.1:{port}"],
                   check=True, stdout=subprocess.DEVNULL)
    n = 0
    while True:
        try:
            n = _mbox_count(mbox.read_bytes())
        except FileNotFoundError:
            n = 0
        if n >= messages:
            break
        if time.perf_counter() - t0 > timeout:
            raise AssertionError(f"real Postfix: only {n} of {messages} messages in the mbox "
                                 f"after {timeout:.0f} s:\n" + "\n".join(pf.log()[-5:]))
        time.sleep(0.01)
    seconds = time.perf_counter() - t0
    if n != messages:
        raise AssertionError(f"real Postfix: {n} messages in the mbox, {messages} sent")
    return messages / seconds


def real_postfix(messages: int = 2000, runs: int = 1,
                 base: str | os.PathLike | None = ".bench") -> PostfixRun:
    """Real Postfix's end-to-end rate into an mbox (median of ``runs``), or why skipped."""
    why = postfix_unavailable()
    if why:
        return PostfixRun(skipped=why)
    res = PostfixRun(version=_postfix_version())
    with postfix_local(base) as (pf, port):
        for _ in range(runs):
            res.rates.append(postfix_once(pf, port, messages))
    return res


def _postfix_version() -> str:
    try:
        out = subprocess.run(["postconf", "-h", "mail_version"], capture_output=True, text=True,
                             timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out or "?"


# -- a big lab -------------------------------------------------------------------------------
@dataclass
class Big:
    """One big run: sizes, times (s), memory (MiB), what arrived."""
    hosts: int
    messages: int
    delivered: int
    build_seconds: float
    run_seconds: float
    verify_seconds: float
    peak_mib: float
    build_mib: float            # peak after the lab was built, before any mail
    batch: int
    mid_messages: int = 0       # messages sent when mid_mib was taken (about half of them)
    mid_mib: float = 0.0

    @property
    def wall_seconds(self) -> float:
        """Building the lab plus delivering every message (the checks not counted)."""
        return self.build_seconds + self.run_seconds

    @property
    def rate(self) -> float:
        return self.messages / self.run_seconds if self.run_seconds else 0.0


def _big_address(i: int) -> str:
    n = i + 1
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def big_lab(root: Path, hosts: int, users: int = 5):
    """Write and load a lab of ``hosts`` hosts hNNNN (domain dNNNN.example, MX
    mx.dNNNN.example at 10.x.y.z) with ``users`` users u0, u1, ... each."""
    specs, zone = [], [f"example. {_SOA}", f"10.in-addr.arpa. {_SOA}"]
    names = [f"u{u}" for u in range(users)]
    for i in range(hosts):
        addr, dom = _big_address(i), f"d{i:04d}.example"
        specs.append((f"h{i:04d}", addr, f"mx.{dom}", names))
        rev = ".".join(reversed(addr.split(".")))
        zone += [f"{dom}. MX 10 mx.{dom}.", f"mx.{dom}. A {addr}",
                 f"{rev}.in-addr.arpa. PTR mx.{dom}."]
    _write_lab(root, f"big-{hosts}", specs, zone)
    from .lab import Lab

    class BatchLab(Lab):
        """A lab whose sessions leave their mail queued until :meth:`deliver_batch`
        (a settle after each session looks at every host's queue: O(hosts) per message)."""
        batching = False

        def settle(self) -> int:
            return 0 if self.batching else super().settle()

        def deliver_batch(self) -> int:
            return super().settle()

    return BatchLab.load(root)


def _raise_open_files(hosts: int) -> None:
    """Each host keeps its log file open: allow a few descriptors per host."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4 * hosts + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def big(hosts: int = 1000, messages: int = 100_000, base: str | os.PathLike = ".bench", *,
        users: int = 5, seed: int = 1, batch: int = 1000, autosave: bool = False,
        keep: bool = False, progress=None) -> Big:
    """Build a lab of ``hosts`` hosts and deliver ``messages`` seeded messages through it
    (see the module doc). Raises AssertionError when the mailboxes are not as sent.
    ``progress(done, elapsed)`` is called after each batch, if given."""
    if hosts < 2:
        raise ValueError("big: at least two hosts (messages go between hosts)")
    _raise_open_files(hosts)
    root = _new_dir(Path(base), f"big-{hosts}-")
    try:
        t0 = time.perf_counter()
        lab = big_lab(root, hosts, users)
        lab.autosave = autosave
        build = time.perf_counter() - t0
        build_mib = _peak_mib()
        rng = random.Random(seed)
        names = list(lab.hosts)
        expect: dict[tuple[int, int], list[int]] = {}
        mid: tuple[int, float] | tuple[()] = ()
        t1 = time.perf_counter()
        lab.batching = True
        for seq in range(messages):
            s = rng.randrange(hosts)
            r = rng.randrange(hosts - 1)
            r += r >= s                                  # another host: the mail crosses the lab
            su, ru = rng.randrange(users), rng.randrange(users)
            sender, rcpt = f"u{su}@d{s:04d}.example", f"u{ru}@d{r:04d}.example"
            res = lab.send(sender, rcpt, via=names[s], message=bench_message(seq, sender, rcpt))
            if not res.ok:
                raise AssertionError(f"{names[s]} refused a message:\n{res.transcript()}")
            expect.setdefault((r, ru), []).append(seq)
            if (seq + 1) % batch == 0:
                lab.deliver_batch()
                if not mid and seq + 1 >= messages // 2:
                    mid = (seq + 1, _peak_mib())
                if progress is not None:
                    progress(seq + 1, time.perf_counter() - t1)
        lab.batching = False
        lab.run()
        run = time.perf_counter() - t1
        peak = _peak_mib()
        t2 = time.perf_counter()
        delivered = _check_big(lab, names, users, expect, messages)
        lab.autosave = True
        lab.save()
        verify = time.perf_counter() - t2
        return Big(hosts, messages, delivered, build, run, verify, peak, build_mib, batch, *mid)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def _check_big(lab, names: list[str], users: int, expect: dict, messages: int) -> int:
    """Every message in the mailbox it was sent to, once; every queue empty."""
    delivered, wrong = 0, []
    for h, name in enumerate(names):
        for u in range(users):
            ids = _message_ids(lab.mailbox(name, f"u{u}").encode("utf-8", "surrogateescape"))
            want = [f"{seq}.bench@mailsim.invalid" for seq in expect.get((h, u), [])]
            delivered += len(ids)
            if sorted(ids) != sorted(want):
                wrong.append(f"{name} u{u}: {len(ids)} messages, {len(want)} expected")
    queued = sum(row["queued"] for row in lab.status())
    if wrong or queued or delivered != messages:
        raise AssertionError(f"big: {delivered} of {messages} delivered, {queued} still queued; "
                             + "; ".join(wrong[:5]))
    return delivered


# -- printing --------------------------------------------------------------------------------
def print_two_hop(runs: list[TwoHop], pf: PostfixRun | None, autosave: bool = False,
                  out=None) -> None:
    out = out or sys.stdout
    n = runs[0].messages
    m = statistics.median(r.rate for r in runs)
    p = lambda *a: print(*a, file=out)                                   # noqa: E731
    p(f"lab two-hop: mail -> mx1 (smtpd, cleanup, qmgr, smtp -> smtpd, cleanup, qmgr, local "
      f"-> mbox), {n} messages of {SIZE} bytes, one session each, logs on, spool: {SPOOL_MODE} "
      f"(./.bench), lab.autosave {'on' if autosave else 'off'}, median of {len(runs)} run(s)")
    p(f"mailsim lab two-hop (end to end, 2 hops):  {m:8.0f} msgs/s  runs: "
      + _runs([r.rate for r in runs]))
    p(f"  checked: all {n} Message-IDs once in mx1's mbox; status=sent lines: "
      + ", ".join(f"{h} {c}" for h, c in runs[-1].logged.items()))
    if pf is None:
        p("real Postfix: not measured (--no-postfix)")
    elif pf.skipped:
        p(f"real Postfix: {pf.skipped}, skipped")
    else:
        p(f"real Postfix {pf.version} (smtp-source -s {SESSIONS} -> smtpd, cleanup, qmgr, local "
          f"-> mbox, 1 hop): {pf.rate:8.0f} msgs/s  runs: {_runs(pf.rates)}")
        ratio = m / pf.rate
        p(f"ratio mailsim two-hop/Postfix: {ratio:.2f}   (goal >= {GOAL_RATIO:.1f}: "
          f"{_goal(ratio >= GOAL_RATIO)}; mailsim's figure is 2 hops in one Python process, "
          f"Postfix's 1 hop in many processes)")


def print_big(b: Big, extrapolate_to: int | None = None, out=None) -> None:
    out = out or sys.stdout
    p = lambda *a: print(*a, file=out)                                   # noqa: E731
    p(f"lab big: {b.hosts} hosts (one domain each, MX/A/PTR in one zone), {b.messages} messages "
      f"of {SIZE} bytes between random users on different hosts (seed), sent in batches of "
      f"{b.batch} then delivered, logs on, spool: {SPOOL_MODE} (./.bench)")
    p(f"build (host folders): {b.build_seconds:.1f} s   run: {b.run_seconds:.1f} s "
      f"({b.rate:.0f} msgs/s)   checks: {b.verify_seconds:.1f} s")
    p(f"wall time (build + run): {b.wall_seconds:.1f} s   peak memory (process, at the end of "
      f"the run): {b.peak_mib:.0f} MiB   "
      f"delivered: {b.delivered}/{b.messages}")
    full = extrapolate_to and extrapolate_to != b.messages
    if b.hosts == 1000 and b.messages == 100_000:
        p(f"goals (< {GOAL_SECONDS:.0f} s, < {GOAL_MIB:.0f} MiB): time "
          f"{_goal(b.wall_seconds < GOAL_SECONDS)}, memory {_goal(b.peak_mib < GOAL_MIB)}")
    if full:
        per_msg_s = b.run_seconds / b.messages
        wall = b.build_seconds + per_msg_s * extrapolate_to
        # memory grows fastest at first (caches, tables): the second half's slope
        if 0 < b.mid_messages < b.messages:
            slope = max(0.0, b.peak_mib - b.mid_mib) / (b.messages - b.mid_messages)
        else:
            slope = max(0.0, b.peak_mib - b.build_mib) / b.messages
        mib = b.peak_mib + slope * (extrapolate_to - b.messages)
        p(f"EXTRAPOLATED to {b.hosts} hosts x {extrapolate_to} messages -- NOT measured: this "
          f"run sent {b.messages} (the full size takes far longer than a few minutes here); "
          f"linear in messages (memory: the second half's growth): wall time ~{wall:.0f} s, "
          f"peak memory ~{mib:.0f} MiB (goals < {GOAL_SECONDS:.0f} s, < {GOAL_MIB:.0f} MiB: time "
          f"{_goal(wall < GOAL_SECONDS)}, memory {_goal(mib < GOAL_MIB)})")


# -- command line ----------------------------------------------------------------------------
def _terminate_as_interrupt() -> None:
    """SIGTERM/SIGHUP end the run through ``finally`` (the Postfix instance is stopped)."""
    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mailsim.bench_lab",
                                description=__doc__.splitlines()[0])
    p.add_argument("--dir", default=".bench", help="where labs (and Postfix) are created; "
                                                   "removed after")
    p.add_argument("--keep", action="store_true", help="keep the lab folders")
    p.add_argument("--autosave", action="store_true", help="write state.json after each session")
    p.add_argument("--profile", metavar="N", type=int, default=0,
                   help="run under cProfile and print the N hottest functions")
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("two-hop", help="msgs/s through two lab hosts into an mbox; real Postfix")
    t.add_argument("--messages", type=int, default=2000)
    t.add_argument("--runs", type=int, default=3)
    t.add_argument("--no-postfix", action="store_true", help="do not measure real Postfix")
    b = sub.add_parser("big", help="a generated lab of many hosts: wall time and peak memory")
    b.add_argument("--hosts", type=int, default=1000)
    b.add_argument("--messages", type=int, default=100_000)
    b.add_argument("--users", type=int, default=5)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--batch", type=int, default=1000, help="messages sent between deliveries")
    b.add_argument("--extrapolate-to", type=int, metavar="M",
                   help="also print the figures extrapolated to M messages (clearly labelled)")
    b.add_argument("--progress", action="store_true")
    a = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)

    def work() -> None:
        if a.what == "two-hop":
            _two_hop_main(a)
        else:
            _big_main(a)

    if a.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.runcall(work)
        pstats.Stats(prof).sort_stats("tottime").print_stats(a.profile)
        pstats.Stats(prof).sort_stats("cumtime").print_stats(a.profile)
    else:
        work()
    return 0


def _two_hop_main(a) -> None:
    runs: list[TwoHop] = []
    pf: PostfixRun | None = None
    if a.no_postfix:
        for _ in range(a.runs):
            runs.append(two_hop(a.messages, a.dir, autosave=a.autosave, keep=a.keep))
    else:
        pf = PostfixRun(skipped=postfix_unavailable())
        if pf.skipped is None:
            _terminate_as_interrupt()
            pf.version = _postfix_version()
            with postfix_local(a.dir) as (inst, port):
                for _ in range(a.runs):               # in turns, as bench.py does
                    runs.append(two_hop(a.messages, a.dir, autosave=a.autosave, keep=a.keep))
                    pf.rates.append(postfix_once(inst, port, a.messages))
        else:
            for _ in range(a.runs):
                runs.append(two_hop(a.messages, a.dir, autosave=a.autosave, keep=a.keep))
    print_two_hop(runs, pf, a.autosave)


def _big_main(a) -> None:
    def progress(done: int, elapsed: float) -> None:
        print(f"  {done}/{a.messages} messages, {elapsed:.0f} s, {_peak_mib():.0f} MiB",
              flush=True)
    res = big(a.hosts, a.messages, a.dir, users=a.users, seed=a.seed, batch=a.batch,
              autosave=a.autosave, keep=a.keep, progress=progress if a.progress else None)
    print_big(res, a.extrapolate_to)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
