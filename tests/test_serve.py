"""`mailsim serve` on a real loopback socket: smtplib, swaks, raw bytes, reload by signal."""
from __future__ import annotations

import os
import shutil
import smtplib
import socket
import subprocess
import time

import pytest

from mailsim.cli import run_command
from mailsim.serve import background


@pytest.fixture
def served(host):
    """The host's smtpd on a loopback port, as `mailsim serve` (two processes, like a real master)."""
    with background(host.root, processes=2) as port:
        pid = int((host.spool / "pid/master.pid").read_text())
        yield host, port, pid


def banner(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        data = s.recv(1024)
        s.sendall(b"QUIT\r\n")
        return data


def test_smtplib_sends_mail(served):
    host, port, _ = served
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        code, _ = c.ehlo("client.example.org")
        assert code == 250 and c.has_extn("pipelining") and c.has_extn("chunking")
        refused = c.sendmail("alice@example.org", ["peter@example.com"], b"Subject: t\r\n\r\nhi\r\n")
        assert refused == {}
    # the qmgr process delivers it: into peter's mailbox, out of the queue
    box = host.path("/var/mail/peter")
    end = time.monotonic() + 15
    while not (box.exists() and b"\nhi\n" in box.read_bytes()) and time.monotonic() < end:
        time.sleep(0.05)
    assert box.read_bytes().startswith(b"From alice@example.org  ")
    assert [p for q in ("incoming", "active") for p in (host.spool / q).iterdir()
            if not p.name.startswith(".")] == []


def test_not_loopback_is_refused(host):
    rc = run_command(host.root, "serve", ["--listen", "192.0.2.1:25"],
                     out=open(os.devnull, "w"), err=open(os.devnull, "w"))
    assert rc == 1


def test_pidfile_status_and_reload_by_signal(served):
    host, port, pid = served
    import io
    err = io.StringIO()
    assert run_command(host.root, "postfix", ["status"], out=io.StringIO(), err=err) == 0
    assert f"PID: {pid}" in err.getvalue()
    assert banner(port).startswith(b"220 mail.example.com ESMTP Postfix (Debian/GNU)")
    run_command(host.root, "postconf", ["-e", "smtpd_banner = $myhostname ESMTP ready"],
                out=io.StringIO(), err=io.StringIO())
    # until reload, the running server keeps its configuration
    assert banner(port).startswith(b"220 mail.example.com ESMTP Postfix")
    assert run_command(host.root, "postfix", ["reload"], out=io.StringIO(), err=io.StringIO()) == 0
    for _ in range(50):
        if banner(port) == b"220 mail.example.com ESMTP ready\r\n":
            break
        time.sleep(0.05)
    assert banner(port) == b"220 mail.example.com ESMTP ready\r\n"


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed (apt-get install swaks)")
def test_swaks_delivers(served):
    host, port, _ = served
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--from", "alice@example.org",
                        "--to", "peter@example.com", "--helo", "client.example.org",
                        "--body", "hello from swaks"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<-  250 2.0.0 Ok: queued as" in r.stdout
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--from", "alice@example.org",
                        "--to", "nosuch@example.com", "--quit-after", "RCPT"],
                       capture_output=True, text=True, timeout=30)
    assert "<** 550 5.1.1 <nosuch@example.com>: Recipient address rejected: User unknown in local recipient table" in r.stdout
