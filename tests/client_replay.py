"""What the tests of mailsim's smtp(8) against recordings of real Postfix's share
(tests/test_smtp_tls.py, test_smtp_sasl.py, test_remote_bounce.py): the masks, a host
configured like the recording's instance, and the scripted peer (mailsim.smtp.peer) at
the recorded address -- over a real loopback socket or in memory.

Imported by those tests as ``from client_replay import ...`` (tests/ is on sys.path).
"""
from __future__ import annotations

import json
import re
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tools"))
from conformance import numbered, replay_inprocess  # noqa: E402
from record_smtp_tls import server_context  # noqa: E402
from mailsim.host import Host, init_host  # noqa: E402
from mailsim.smtp.connect import ConnectFailure, SocketConnector, _EngineChannel  # noqa: E402
from mailsim.smtp.peer import Script, ScriptedEngine, ScriptedServer  # noqa: E402

#: main.cf settings of the instance that name its private folders (mailsim's host has its own)
PATHS = {"config_directory", "data_directory", "queue_directory", "maillog_file",
         "maillog_file_prefixes", "virtual_mailbox_base"}
#: where the host finds the recorded certificates ($CERTS in the recordings)
HOST_CERTS = "/etc/postfix/tls"

# -- masks: only what differs between two runs, in Postfix too ----------------------------------
#: queue ids, numbered by first appearance (the same id must stay the same id)
QID = re.compile(r"\b[0-9A-F]{10,12}\b")
#: the log's time stamp and syslog host name (the instance's "real", mailsim's own)
STAMP = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ ", re.M)
#: process ids
PID = re.compile(r"(postfix/[\w/-]+)\[\d+\]")
#: delays (they depend on the machine's speed)
DELAYS = re.compile(r"delay=[\d.]+, delays=[\d./]+")
#: RFC 2822 dates (the Received: header the message carries to the peer, Date:, Arrival-Date:)
RFCDATE = re.compile(r"[A-Z][a-z]{2}, [ \d]\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(UTC\)")


def unstamped(lines: list[str]) -> str:
    """The log lines as one text without time stamps, host names, process ids and delays."""
    return DELAYS.sub("delay=D, delays=D", PID.sub(r"\1[PID]", STAMP.sub("", "\n".join(lines))))


def mask_log(lines: list[str]) -> list[str]:
    return numbered(QID, unstamped(lines), "QID").split("\n")


def mask_remote(sessions: list) -> str:
    return numbered(QID, RFCDATE.sub("RFCDATE", json.dumps(sessions, indent=0)), "QID")


# -- the recorded server, over a socket or in memory --------------------------------------------
class MappedSockets(SocketConnector):
    """Real loopback sockets; the recorded peer port is where the live peer listens."""

    def __init__(self, ports: dict[int, int]) -> None:
        super().__init__()
        self.ports = ports

    def connect(self, addr: str, port: int, timeout: float | None = None):
        if port not in self.ports:
            raise ConnectFailure("Connection refused")
        return super().connect(addr, self.ports[port], timeout)


class EnginePeer:
    """The scripted peer in memory (ScriptedEngine) at the recorded address and port."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None, addr: str, port: int) -> None:
        self.script, self.tls, self.addr, self.port = script, tls, addr, port
        self.engines: list[ScriptedEngine] = []

    def connect(self, addr: str, port: int, timeout: float | None = None):
        if (addr, port) != (self.addr, self.port):
            raise ConnectFailure("Connection refused")
        eng = ScriptedEngine(self.script, tls=self.tls)
        self.engines.append(eng)
        return _EngineChannel(eng)

    @property
    def sessions(self) -> list[list[dict]]:
        return [e.steps for e in self.engines]


# -- the host -------------------------------------------------------------------------------------
def init_like(rec: dict, root: Path, certs: Path | None = None) -> None:
    """Set ``root`` up like the recording's instance: its main.cf (less its folders, the
    certificates' folder at /etc/postfix/tls), real.example's virtual mailboxes in
    /var/vmail; the certificates in ``certs`` (``*.pem``) copied to /etc/postfix/tls."""
    init_host(root, hostname="real.example.net", force=True)
    conf = [ln.replace("$CERTS", HOST_CERTS) for ln in rec["main_cf_effective"].splitlines()
            if ln.split("=", 1)[0].strip() not in PATHS]
    conf.append("virtual_mailbox_base = /var/vmail")
    (root / "etc/postfix/main.cf").write_text("\n".join(conf) + "\n")
    (root / "var/vmail").mkdir(parents=True, exist_ok=True)
    if certs is not None:
        dest = root / HOST_CERTS.lstrip("/")
        dest.mkdir(parents=True, exist_ok=True)
        for p in certs.glob("*.pem"):
            (dest / p.name).write_bytes(p.read_bytes())


def replay_to_peer(rec: dict, host: Host, mode: str,
                   tls: ssl.SSLContext | None = None) -> list[list[dict]]:
    """Submit the recording's message to ``host`` and run its queue, its smtp(8) talking to
    the recording's scripted peer (with ``tls``) over a socket (``mode="socket"``) or in
    memory; flush the queue again ``rec["retry_after"]`` seconds later if the recorder did.
    The peer's sessions."""
    script = Script.from_dict(rec["script"])
    rport = int(rec["peer"].rsplit(":", 1)[1])
    server = None
    if mode == "socket":
        server = ScriptedServer(script, tls=tls)
        host.smtp_connector = MappedSockets({rport: server.port})
    else:
        host.smtp_connector = EnginePeer(script, tls, "127.0.0.1", rport)
    try:
        replay_inprocess({"dialogue": rec["sessions"][0]["dialogue"]}, host)
        host.run_queue()
        if rec.get("retry_after"):
            # the recorder flushed the queue (postqueue -f) this long after the submission
            host.advance(float(rec["retry_after"]))
            host.run_queue(flush=True)
        if server is not None:
            server.wait_idle()
            return server.sessions
        return host.smtp_connector.sessions
    finally:
        if server is not None:
            server.close()


def run_recorded(path: Path, root: Path, mode: str, build: Callable[[dict, Path], Host]):
    """Replay the recording at ``path`` on the host ``build(rec, root)`` makes, the peer (with
    the recorded certificate, if any) over a socket (``mode="socket"``) or in memory.
    (rec, host, the peer's sessions)."""
    rec = json.loads(path.read_text())
    host = build(rec, root)
    ctx = server_context(rec["cert"]) if rec["cert"] else None
    return rec, host, replay_to_peer(rec, host, mode, ctx)
