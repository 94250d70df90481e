"""kill -9 in the middle of the mail flow: a message acknowledged with 250 is
delivered after the restart, never lost and never delivered twice.

`mailsim serve` (a master, two smtpd processes and the qmgr process) receives
messages for two local recipients while the test kills the whole process
group with SIGKILL at seeded random moments -- during SMTP sessions, queue
file commits and mailbox appends alike. After the last restart the queue must
drain, and each mailbox must hold every acknowledged message exactly once
(a message whose 250 never reached the client may be there at most once: the
server may have committed it just before the kill, as real Postfix may).
"""
from __future__ import annotations

import os
import random
import re
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

from mailsim.host import init_host
from mailsim.serve import free_port

ROUNDS = 4
PER_ROUND = 25


def start(root: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mailsim", "--root", str(root), "serve",
                             "--listen", f"127.0.0.1:{port}", "--processes", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=2).quit()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mailsim serve did not start")


def kill9(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.05)          # let the kernel reap the group's other processes


def send(port: int, n: int) -> bool:
    """Send message number n; True when the server acknowledged it with 250."""
    msg = (f"From: alice@example.org\r\nSubject: crash {n}\r\nMessage-ID: <crash-{n}@test>\r\n"
           f"\r\nbody {n}\r\n" + "x" * 200 + "\r\n").encode()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as c:
            c.sendmail("alice@example.org", ["peter@example.com", "gerda@example.com"], msg)
        return True
    except (OSError, smtplib.SMTPException):
        return False


def queued(root: Path) -> list[Path]:
    spool = root / "var/spool/postfix"
    return [p for q in ("incoming", "active", "deferred") if (spool / q).is_dir()
            for p in (spool / q).rglob("*") if p.is_file() and not p.name.startswith(".")]


def copies(box: Path) -> dict[int, int]:
    text = box.read_text("latin-1") if box.exists() else ""
    out: dict[int, int] = {}
    for m in re.finditer(r"^Message-ID: <crash-(\d+)@test>$", text, re.M):
        out[int(m.group(1))] = out.get(int(m.group(1)), 0) + 1
    return out


def test_kill_9_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    host = init_host(tmp_path / "mx", users=["peter", "gerda"])
    root = host.root
    # a kill during an mbox append leaves its dot-lock behind: local(8) defers that
    # mailbox until the lock is stale_lock_time (500s) old, and qmgr retries after
    # minimal_backoff_time (300s). Short values keep the test fast; the logic is Postfix's.
    with open(root / "etc/postfix/main.cf", "a") as f:
        f.write("stale_lock_time = 1s\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s\n"
                "queue_run_delay = 1s\n")
    rng = random.Random(2026)
    acked: set[int] = set()
    tried: set[int] = set()
    n = 0
    for _ in range(ROUNDS):
        proc, port = start(root)
        try:
            kill_at = time.monotonic() + rng.uniform(0.2, 0.8)
            for _ in range(PER_ROUND):
                n += 1
                tried.add(n)
                if send(port, n):
                    acked.add(n)
                if time.monotonic() >= kill_at:
                    break
            time.sleep(rng.uniform(0, 0.05))   # qmgr is now busy delivering the backlog
        finally:
            kill9(proc)
    # the last restart: the queue drains
    proc, port = start(root)
    try:
        end = time.monotonic() + 60
        while queued(root) and time.monotonic() < end:
            time.sleep(0.1)
        assert queued(root) == []
    finally:
        proc.terminate()
        proc.wait(10)
    assert len(acked) >= ROUNDS          # the test did exercise acknowledged mail
    for user in ("peter", "gerda"):
        got = copies(root / "var/mail" / user)
        missing = sorted(acked - set(got))
        twice = sorted(k for k, c in got.items() if c > 1)
        assert not missing, f"{user}: acknowledged but never delivered: {missing}"
        assert not twice, f"{user}: delivered more than once: {twice}"
        assert set(got) <= tried


def test_crash_between_append_and_journal_delivers_once(tmp_path: Path, monkeypatch) -> None:
    """The narrowest window: the copy is in the mailbox, the journal does not say so yet."""
    from mailsim import qmgr as qmgr_mod
    from mailsim.notebook import mailbox, send as send_msg

    host = init_host(tmp_path / "mx", users=["peter", "gerda"])
    host.auto_deliver = False
    send_msg(host, "alice@example.org", ["peter@example.com", "gerda@example.com"],
             "Subject: once\nMessage-ID: <once@test>\n\nbody\n")
    real = qmgr_mod._append_journal

    def die_after_first_delivery(path, key):
        if "gerda" in key:
            raise KeyboardInterrupt("kill -9")      # after gerda's append, before her D line
        real(path, key)
    monkeypatch.setattr(qmgr_mod, "_append_journal", die_after_first_delivery)
    try:
        host.run_queue()
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(qmgr_mod, "_append_journal", real)
    assert len(list((host.spool / "active").glob("[0-9A-F]*"))) == 1
    restarted = qmgr_mod.QueueManager(host)          # a new qmgr process takes over active/
    assert restarted.run() == 1
    for user in ("peter", "gerda"):
        assert mailbox(host, user).count("Message-ID: <once@test>") == 1, user
    assert list((host.spool / "active").iterdir()) == []


def test_crash_before_the_queue_file_is_removed_delivers_once(tmp_path: Path) -> None:
    """One recipient, no journal: delivered, then killed before the file left active/."""
    import shutil
    from mailsim import qmgr as qmgr_mod
    from mailsim.notebook import mailbox, send as send_msg

    host = init_host(tmp_path / "mx", users=["peter"])
    host.auto_deliver = False
    send_msg(host, "alice@example.org", "peter@example.com",
             "Subject: once\nMessage-ID: <single@test>\n\nbody\n")
    (queued_file,) = (host.spool / "incoming").glob("[0-9A-F]*")
    saved = tmp_path / "saved"
    shutil.copy(queued_file, saved)
    host.run_queue()                                   # delivered and removed ...
    shutil.copy(saved, host.spool / "active" / queued_file.name)   # ... or so it seemed
    assert qmgr_mod.QueueManager(host).run() == 1      # a new qmgr takes over active/
    assert mailbox(host, "peter").count("Message-ID: <single@test>") == 1
    assert list((host.spool / "active").iterdir()) == []


def test_in_doubt_survives_a_deferral(tmp_path: Path, monkeypatch) -> None:
    """Killed after peter's append, with his mailbox's dot-lock still there: the restarted
    qmgr cannot lock the mailbox and defers him, more mail reaches him meanwhile, and the
    retry still finds the copy made before the kill (the queue file keeps "in_doubt")."""
    from mailsim import qmgr as qmgr_mod
    from mailsim.notebook import mailbox, send as send_msg
    from mailsim.queue import read_queue_file

    host = init_host(tmp_path / "mx", users=["peter", "gerda"])
    host.auto_deliver = False
    send_msg(host, "alice@example.org", ["peter@example.com", "gerda@example.com"],
             "Subject: once\nMessage-ID: <doubt@test>\n\nbody\n")
    real = qmgr_mod._append_journal

    def die_after_peter(path, key):
        raise KeyboardInterrupt("kill -9")          # gerda sorts first: she is journalled
    monkeypatch.setattr(qmgr_mod, "_append_journal",
                        lambda p, k: die_after_peter(p, k) if "peter" in k else real(p, k))
    try:
        host.run_queue()
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(qmgr_mod, "_append_journal", real)
    lock = host.root / "var/mail/peter.lock"
    lock.write_text("")                              # the killed local(8) held the lock
    restarted = qmgr_mod.QueueManager(host)
    restarted.run()
    (deferred,) = [p for p in (host.spool / "deferred").rglob("[0-9A-F]*") if p.is_file()]
    assert "peter" in read_queue_file(deferred).attrs["in_doubt"]
    assert [r.address for r in read_queue_file(deferred).recipients] == ["peter@example.com"]
    lock.unlink()
    for i in range(20):                              # later mail: the copy is far from the end
        send_msg(host, "alice@example.org", "peter@example.com",
                 f"Subject: later {i}\n\n" + "x" * 500 + "\n")
        restarted.run()
    restarted.advance(3600)
    assert [p for p in (host.spool / "deferred").rglob("*") if p.is_file()] == []
    assert mailbox(host, "peter").count("Message-ID: <doubt@test>") == 1
    assert mailbox(host, "gerda").count("Message-ID: <doubt@test>") == 1
