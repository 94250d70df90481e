"""``make bench``: throughput of ``mailsim serve`` next to an aiosmtpd sink, as a ratio.

The load is the one of the conformance corpus's perf.md: 10 parallel sessions,
2000 messages of 1024 bytes, a new connection per message, HELO. With
Postfix's ``smtp-source`` installed it generates the load (as for the recorded
Postfix figures); otherwise a Python asyncio client does the same. Both
servers run as separate processes and are measured in the same run; each
figure is the median of five runs (this machine type is noisy: ±30% between runs). Reference (perf.md, same machine type):
real Postfix 0.78 x the aiosmtpd sink, with the same configuration as here
(smtpd -> cleanup -> queue -> qmgr -> discard(8), every message really queued
and delivered while the load runs).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SESSIONS, MESSAGES, SIZE = 10, 2000, 1024


def _wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.recv(512)
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


async def _one_message(port: int, body: bytes) -> None:
    r, w = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> bytes:
        while True:
            line = await r.readline()
            if not line or line[3:4] != b"-":
                return line

    await reply()
    for cmd in (b"HELO client.example.org\r\n", b"MAIL FROM:<a@example.com>\r\n",
                b"RCPT TO:<sink@example.com>\r\n", b"DATA\r\n"):
        w.write(cmd)
        await reply()
    w.write(body + b".\r\n")
    line = await reply()
    if not line.startswith(b"250"):
        raise RuntimeError(f"message refused: {line!r}")
    w.write(b"QUIT\r\n")
    await reply()
    w.close()


async def _python_load(port: int, sessions: int, messages: int, size: int) -> None:
    line = b"X" * 78 + b"\r\n"
    body = b"Subject: bench\r\n\r\n" + line * max(1, (size - 18) // len(line))
    queue = iter(range(messages))

    async def worker() -> None:
        for _ in queue:
            await _one_message(port, body)

    await asyncio.gather(*(worker() for _ in range(sessions)))


def run_load(port: int, tool: str) -> float:
    """Run one load against ``port``; return messages per second."""
    t0 = time.perf_counter()
    if tool == "smtp-source":
        subprocess.run(["smtp-source", "-s", str(SESSIONS), "-m", str(MESSAGES), "-l", str(SIZE),
                        "-f", "a@example.com", "-t", "sink@example.com", f"127.0.0.1:{port}"],
                       check=True)
    else:
        asyncio.run(_python_load(port, SESSIONS, MESSAGES, SIZE))
    return MESSAGES / (time.perf_counter() - t0)


def _bench_host(root: Path) -> None:
    from .host import init_host
    # the configuration of the recorded Postfix figure (perf.md): every message is
    # accepted, queued, and handed by qmgr to discard(8) while smtpd takes the next ones
    init_host(root, hostname="mail.example.com")
    cf = root / "etc/postfix/main.cf"
    cf.write_text(cf.read_text() + "\nlocal_recipient_maps =\nmynetworks = 127.0.0.0/8\n"
                  "local_transport = discard\ndefault_transport = discard\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--python-client", action="store_true", help="do not use smtp-source")
    p.add_argument("--dir", default=".bench", help="where the benchmark host is created (removed after)")
    a = p.parse_args(argv)
    tool = "smtp-source" if shutil.which("smtp-source") and not a.python_client else "python"
    # The host lives under ./.bench (not /tmp): on some machines /tmp is a busy
    # file system where creating queue files costs ten times more.
    base = Path(a.dir)
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    _bench_host(tmp / "mx")
    from .serve import free_port
    pm, ps = free_port(), free_port()
    env = dict(os.environ)
    procs = [
        subprocess.Popen([sys.executable, "-m", "mailsim", "--root", str(tmp / "mx"), "serve",
                          "--listen", f"127.0.0.1:{pm}"], stderr=subprocess.DEVNULL, env=env),
        subprocess.Popen([sys.executable, "-m", "mailsim.peers", f"127.0.0.1:{ps}"],
                         stderr=subprocess.DEVNULL, env=env),
    ]
    try:
        _wait_port(pm)
        _wait_port(ps)
        mailsim, sink = [], []
        for _ in range(a.runs):
            mailsim.append(run_load(pm, tool))
            sink.append(run_load(ps, tool))
        m, s = statistics.median(mailsim), statistics.median(sink)
        print(f"load: {tool}, {SESSIONS} sessions, {MESSAGES} messages of {SIZE} bytes, "
              f"one connection per message, median of {a.runs} runs")
        print(f"mailsim serve (smtpd, cleanup, queue, qmgr -> discard): {m:8.0f} msgs/s  runs: "
              + ", ".join(f"{x:.0f}" for x in mailsim))
        print(f"aiosmtpd sink (handle_DATA -> 250):       {s:8.0f} msgs/s  runs: "
              + ", ".join(f"{x:.0f}" for x in sink))
        print(f"ratio mailsim/aiosmtpd: {m / s:.2f}   (real Postfix 3.7: 0.78; goal >= 1.0)")
    finally:
        for pr in procs:
            pr.terminate()
            pr.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
