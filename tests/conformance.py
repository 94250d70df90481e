"""Replay recorded Postfix dialogues against mailsim (in-process and on a socket).

A scenario file (tests/golden/postfix-3.7*/ID.json) holds the main.cf
overrides, tables, users and the exact bytes a client sent to real Postfix
3.7.11, with every reply. This module builds a host configured like the
scenario and compares each reply on code, enhanced status code and text, with
queue ids masked (they differ on every run, in Postfix too).
"""
from __future__ import annotations

import asyncio
import datetime
import functools
import io
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mailsim.cli import run_command
from mailsim.host import Host, init_host

GOLDEN = Path(__file__).parent / "golden"
QID = re.compile(r"(queued as )[0-9A-Za-z]+")
#: times in reply texts (a $localtime in smtpd_reject_footer) differ on every run, in Postfix too
WHEN = re.compile(r"\b[A-Z][a-z]{2} [ 0-3]\d \d\d:\d\d:\d\d\b")
ENH = re.compile(r"^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})(?=[ \r\n]|$)")
#: scenarios left out of the comparison (none: STARTTLS is simulated since the TLS issue)
OUT_OF_SCOPE: set[str] = set()
#: the key and certificate files main.cf may name; a scenario that names one without
#: shipping it gets a self-signed RSA-2048 certificate for its myhostname (the
#: recording machine's was one: "server-signature RSA-PSS (2048 bits)")
TLS_FILES = ("smtpd_tls_cert_file", "smtpd_tls_key_file")


def scenario_files(*dirs: str) -> list[Path]:
    out: list[Path] = []
    for d in dirs:
        out += sorted(p for p in (GOLDEN / d).glob("*.json") if p.name != "commands.json")
    return out


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def in_scope(sc: dict) -> bool:
    return sc["id"] not in OUT_OF_SCOPE


@functools.lru_cache(maxsize=None)
def tls_certificate(hostname: str = "mail.example.com") -> tuple[bytes, bytes]:
    """(certificate PEM, unencrypted key PEM): self-signed, RSA 2048, made once per process."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def install_tls_files(sc: dict, host: Host) -> None:
    """Write the certificate and key a scenario's main.cf names (if it ships none)."""
    cf = sc.get("main_cf", {})
    cert, key = tls_certificate()
    for param in TLS_FILES:
        path = cf.get(param)
        if not path or path == "none" or path.rsplit("/", 1)[-1] in sc.get("files", {}):
            continue
        target = host.path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.write_bytes(key if "key" in param else cert)
            if "key" in param:
                target.chmod(0o600)


def build_host(sc: dict, root: Path, *, clock=None) -> Host:
    """A host folder configured like the scenario (base-main.cf + overrides + tables)."""
    base_dir = GOLDEN / "postfix-3.7"
    init_host(root, hostname="mail.example.com", users=sc.get("users", []), clock=clock, force=True)
    lines = []
    removed = set(sc.get("main_cf_removed", []))
    overrides = dict(sc.get("main_cf", {}))
    for line in (base_dir / "base-main.cf").read_text().splitlines():
        name = line.split("=", 1)[0].strip()
        if name in removed:
            continue
        if name in overrides:
            lines.append(f"{name} = {overrides.pop(name)}")
        else:
            lines.append(line)
    lines += [f"{k} = {v}" for k, v in overrides.items()]
    (root / "etc/postfix/main.cf").write_text("\n".join(lines) + "\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tmail.example.com mail\n")
    settings = " ".join(str(v) for v in sc.get("main_cf", {}).values())
    quiet = io.StringIO()
    for name, text in sc.get("files", {}).items():
        if name == "aliases":
            (root / "etc/aliases").write_text(text)
            run_command(root, "postalias", ["hash:/etc/aliases"], out=quiet, err=quiet)
            continue
        (root / "etc/postfix" / name).write_text(text)
        # compile it the way main.cf uses it (hash unless named with another type)
        m = re.search(rf"(\w+):/etc/postfix/{re.escape(name)}\b", settings)
        kind = m.group(1) if m else "hash"
        if kind in ("hash", "btree", "lmdb"):
            run_command(root, "postmap", [f"{kind}:/etc/postfix/{name}"], out=quiet, err=quiet)
    host = Host(root, clock=clock)
    install_tls_files(sc, host)
    return host


def numbered(pattern: re.Pattern, text: str, label: str, group: int = 0) -> str:
    """Replace each distinct match of ``pattern`` (its ``group``) by LABEL1, LABEL2, ... in
    order of first appearance: ids that vary between runs are masked, while "the same
    id" must still be the same id."""
    seen: dict[str, str] = {}

    def sub(m: re.Match) -> str:
        v = m.group(group)
        return m.group(0).replace(v, seen.setdefault(v, f"{label}{len(seen) + 1}"))
    return pattern.sub(sub, text)


def per_message(lines: list[str]) -> dict[str, list[str]]:
    """Masked log lines grouped by their (masked) queue id ``QIDn``, in order: Postfix's
    daemons run concurrently, but the lines of one message keep a causal order."""
    out: dict[str, list[str]] = {}
    for ln in lines:
        m = re.search(r"\]: (QID\d+): ", ln)
        if m:
            out.setdefault(m.group(1), []).append(ln)
    return out


def split_replies(text: str) -> list[str]:
    out, cur = [], ""
    for line in text.splitlines(keepends=True):
        cur += line
        if len(line) < 4 or line[3:4] != "-":
            out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out


def parts(reply: str) -> tuple[str | None, str | None, str]:
    code = reply[:3] if reply[:3].isdigit() else None
    m = ENH.match(reply)
    return code, (m.group(1) if m else None), WHEN.sub("TIME", QID.sub(r"\1QUEUEID", reply))


@dataclass
class Result:
    id: str
    total: int = 0
    code: int = 0
    enhanced: int = 0
    text: int = 0
    diffs: list[tuple[int, str, str]] = field(default_factory=list)


def compare(sc_id: str, expected: list[list[str]], got: list[list[str]]) -> Result:
    r = Result(sc_id)
    for step, (exp, have) in enumerate(zip(expected, got)):
        for i, e in enumerate(exp):
            h = have[i] if i < len(have) else ""
            ec, ee, et = parts(e)
            hc, he, ht = parts(h)
            r.total += 1
            r.code += ec == hc
            r.enhanced += (ec == hc and ee == he)
            if et == ht:
                r.text += 1
            else:
                r.diffs.append((step, e, h))
    return r


def expected_replies(sc: dict) -> list[list[str]]:
    return [split_replies(s["reply"]) for s in sc["dialogue"]]


def replay_inprocess(sc: dict, host: Host, tls: list | None = None) -> list[list[str]]:
    """Replay a dialogue into an engine; a step marked ``"starttls"`` is followed by a
    real TLS handshake (memory BIOs) when the server says 220, and later steps go
    encrypted. ``tls`` collects (version, cipher) of each handshake."""
    from mailsim.smtpd.client import EngineTLS
    eng = host.smtpd("127.0.0.1", 40000)
    got = []
    conn = None
    for step in sc["dialogue"]:
        if step["send"] is None:
            out = eng.greeting()
        elif eng.closed:
            out = b""
        elif conn is not None:
            out = conn.exchange(step["send"].encode("latin-1"))
        else:
            out = eng.receive(step["send"].encode("latin-1"))
        got.append(split_replies(out.decode("latin-1")))
        if step.get("starttls") and out.startswith(b"220") and not eng.closed:
            conn = EngineTLS(eng)
            conn.handshake()
            if tls is not None:
                tls.append((conn.version(), conn.cipher()[0]))
    if not eng.closed:
        eng.lost()
    return got


class ServerThread:
    """`mailsim serve` for one host, in a background thread, on an ephemeral port."""

    def __init__(self, root: Path, clock=None) -> None:
        from mailsim.serve import SMTPServerProtocol, Server
        self.srv = Server(root, clock=clock)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self._proto = SMTPServerProtocol

        def run():
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(self.loop.create_server(
                lambda: self._proto(self.srv), "127.0.0.1", 0))
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        self.ready.wait(5)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def _read_replies(sock: socket.socket, n: int, buf: bytearray, timeout: float = 5.0) -> tuple[bytes, bool]:
    sock.settimeout(timeout)
    closed = False
    while True:
        text = bytes(buf).decode("latin-1")
        complete = [r for r in split_replies(text) if r.endswith("\n")]
        if len(complete) >= n:
            # take exactly the bytes of n complete replies
            k = sum(len(r) for r in complete[:n])
            out = bytes(buf[:k])
            del buf[:k]
            return out, closed
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            out = bytes(buf)
            buf.clear()
            return out, closed
        if not chunk:
            out = bytes(buf)
            buf.clear()
            return out, True
        buf.extend(chunk)


def replay_socket(sc: dict, port: int, tls: list | None = None) -> list[list[str]]:
    from mailsim.smtpd.client import client_context
    got = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
        sock = plain
        buf = bytearray()
        closed = False
        first = True
        for step in sc["dialogue"]:
            n = step.get("n_replies", 1)
            if step["send"] is not None and not closed:
                try:
                    sock.sendall(step["send"].encode("latin-1"))
                except OSError:
                    closed = True
            if first and step["send"] is not None:
                pass  # the greeting arrives first and is part of this step's replies
            first = False
            out, c = (b"", True) if closed and not buf else _read_replies(sock, n, buf)
            closed = closed or c
            got.append(split_replies(out.decode("latin-1")))
            if step.get("starttls") and out.startswith(b"220") and not closed:
                sock = client_context().wrap_socket(plain, server_hostname=None)
                if tls is not None:
                    tls.append((sock.version(), sock.cipher()[0]))
        if sock is not plain:
            sock.close()
    return got


def wait_for_file(path, needle: bytes, timeout: float = 20) -> bytes:
    """Wait until ``path`` exists and holds ``needle`` (mail delivered by a server in
    another process or thread); its content, or AssertionError after ``timeout``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and needle in (data := path.read_bytes()):
            return data
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} not in {path} after {timeout}s")
