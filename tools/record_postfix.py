#!/usr/bin/env python3
"""Record SMTP dialogues from the real Postfix installed on this machine.

Runs every scenario of tools/scenarios_smtpd.py (or the ones named with
--only) against Debian's postfix package and writes one JSON file per
scenario, in the format of tests/golden/postfix-3.7/, to
tests/golden/postfix-3.7-recorded/ (plus logs/<id>.log).

Needs root. Everything the run changes on the machine is put back when it
ends, also on an exception, Ctrl-C or SIGTERM:

* /etc/postfix (whole directory), /etc/aliases(.db), /etc/mailname,
  /etc/resolv.conf (pointed at 127.0.0.1 while recording);
* the local users it creates (and their homes / mail spools), the account
  files useradd/userdel touch (/etc/passwd, shadow, group, ... and their
  "-" backups);
* /var/mail, /var/log/postfix.log, and whatever Postfix creates under
  /var/spool/postfix and /var/lib/postfix (queue files, sockets, pid files);
* the Postfix instance and the smtp-sink it starts are stopped, the queue
  is emptied.

Network: Postfix listens on 127.0.0.1 only, the relayhost is the loopback
smtp-sink, the SMTP client has DNS disabled, and this script connects to
nothing but 127.0.0.1.

Standard library only:  python3 tools/record_postfix.py [--only ID ...]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import scenarios_smtpd  # noqa: E402  (the scenario list lives next to us)

BASE_MAIN_CF = REPO / "tests/golden/postfix-3.7/base-main.cf"
DEFAULT_OUT = REPO / "tests/golden/postfix-3.7-recorded"

SMTP_HOST, SMTP_PORT = "127.0.0.1", 25
SINK_PORT = 2526
USERS = ["peter", "gerda", "petra", "jim", "marc", "alice", "bob"]
ALIASES = """\
# See man 5 aliases for format
postmaster:    root
mailer-daemon: postmaster
abuse:         postmaster
root:          marc
webmaster:     jim
staff:         peter, gerda
team:          staff, bob
sales:         petra
info:          sales
ghost:         nosuchuser
"""

POSTFIX_ETC = Path("/etc/postfix")
MAIL_DIR = Path("/var/mail")
LOG_FILE = Path("/var/log/postfix.log")
SPOOL_DIRS = [Path("/var/spool/postfix"), Path("/var/lib/postfix")]
SINGLE_FILES = [Path("/etc/aliases"), Path("/etc/aliases.db"),
                Path("/etc/mailname")]
RESOLV = Path("/etc/resolv.conf")
ACCOUNT_FILES = [Path("/etc") / n for n in (
    "passwd", "shadow", "group", "gshadow", "subuid", "subgid",
    "passwd-", "shadow-", "group-", "gshadow-", "subuid-", "subgid-")] + [
    Path("/var/log/lastlog"), Path("/var/log/faillog")]

SILENCE = 2.5          # seconds of silence that end an open-ended read
STEP_TIMEOUT = 20.0    # give up waiting for the expected replies after this
EXTRA_POLL = 0.2       # after the expected replies: anything more coming?
SETTLE_TIMEOUT = 25.0  # wait at most this long for the queue to settle

FINAL_LINE = re.compile(rb"^\d{3}(?: |$)")


def log(msg: str) -> None:
    print(msg, flush=True)


def run(cmd, check=True, timeout=60, **kw) -> subprocess.CompletedProcess:
    """Run a command (list or shell string), capture text output."""
    shell = isinstance(cmd, str)
    cp = subprocess.run(cmd, shell=shell, capture_output=True, text=True,
                        errors="surrogateescape", timeout=timeout, **kw)
    if check and cp.returncode != 0:
        raise RuntimeError(f"command failed ({cp.returncode}): {cmd}\n"
                           f"{cp.stdout}{cp.stderr}")
    return cp


# --------------------------------------------------------------------------
# Machine state: backup and restore
# --------------------------------------------------------------------------

class Machine:
    """Everything we change on the host, and how to put it back."""

    def __init__(self) -> None:
        self.backup_dir = Path("/nonexistent")
        self.saved_files: dict[Path, tuple | None] = {}
        self.etc_snapshot: set[str] = set()
        self.spool_snapshot: dict[Path, set[str]] = {}
        self.mail_snapshot: dict[str, tuple] = {}
        self.log_size: int | None = None
        self.created_users: list[str] = []
        self.homes_before: dict[str, bool] = {}
        self.sink: subprocess.Popen | None = None
        self.postfix_started = False
        self.restored = False
        self.backed_up = False

    # -- helpers ---------------------------------------------------------

    @staticmethod
    def _read_file(p: Path):
        """(kind, data, mode, uid, gid) or None if p does not exist."""
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode):
            return ("link", os.readlink(p), None, st.st_uid, st.st_gid)
        return ("file", p.read_bytes(), stat.S_IMODE(st.st_mode),
                st.st_uid, st.st_gid)

    @staticmethod
    def _put_file(p: Path, saved) -> None:
        """Make p what _read_file() saw, writing in place when possible."""
        if saved is None:
            if os.path.lexists(p):
                os.unlink(p)
            return
        kind, data, mode, uid, gid = saved
        if kind == "link":
            if os.path.islink(p) and os.readlink(p) == data:
                return
            if os.path.lexists(p):
                os.unlink(p)
            os.symlink(data, p)
            return
        if os.path.islink(p):
            os.unlink(p)
        if p.exists() and p.read_bytes() == data:
            pass
        else:
            # in place: keeps the inode (bind mounts such as resolv.conf)
            with open(p, "wb") as f:
                f.write(data)
        os.chmod(p, mode)
        os.chown(p, uid, gid)

    @staticmethod
    def _walk(root: Path) -> set[str]:
        out = set()
        if not root.exists():
            return out
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                out.add(os.path.join(dirpath, n))
        return out

    # -- backup ----------------------------------------------------------

    def backup(self) -> None:
        self.backup_dir = Path(tempfile.mkdtemp(prefix="record_postfix."))
        if os.path.lexists(POSTFIX_ETC):
            run(["cp", "-a", str(POSTFIX_ETC), str(self.backup_dir / "etc-postfix")])
        self.etc_snapshot = self._walk(POSTFIX_ETC)
        for p in SINGLE_FILES + [RESOLV] + ACCOUNT_FILES:
            self.saved_files[p] = self._read_file(p)
        for d in SPOOL_DIRS:
            self.spool_snapshot[d] = self._walk(d)
        if MAIL_DIR.is_dir():
            for e in MAIL_DIR.iterdir():
                if e.is_file() and not e.is_symlink():
                    self.mail_snapshot[e.name] = self._read_file(e)
        self.log_size = LOG_FILE.stat().st_size if LOG_FILE.exists() else None
        for u in USERS:
            self.homes_before[u] = os.path.lexists(f"/home/{u}")
        self.backed_up = True
        log(f"backup of the machine state in {self.backup_dir}")

    # -- restore ---------------------------------------------------------

    def restore(self) -> None:
        if self.restored or not self.backed_up:
            return
        self.restored = True
        log("restoring the machine state ...")
        problems = []

        def step(what, fn):
            try:
                fn()
            except Exception as e:  # keep going: restore as much as we can
                problems.append(f"{what}: {e}")
                log(f"  restore step failed: {what}: {e}")

        step("postfix stop", self.stop_postfix)
        step("empty queue", lambda: run(["postsuper", "-d", "ALL"], check=False))
        step("smtp-sink", self.stop_sink)
        step("users", self.remove_users)
        step("account files", self.restore_account_files)
        step("/var/mail", self.restore_mail)
        step("/etc/postfix", self.restore_etc_postfix)
        step("single files", self.restore_single_files)
        step("resolv.conf", lambda: self._put_file(RESOLV, self.saved_files[RESOLV]))
        step("spool", self.restore_spool)
        step("postfix.log", self.restore_log)
        if problems:
            log("restore finished WITH PROBLEMS (backup kept in "
                f"{self.backup_dir}):\n  " + "\n  ".join(problems))
        else:
            shutil.rmtree(self.backup_dir, ignore_errors=True)
            log("restore finished")

    def master_pid(self) -> int | None:
        try:
            pid = int(Path("/var/spool/postfix/pid/master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            exe = ""
        return pid if "master" in exe else None

    def stop_postfix(self) -> None:
        if not self.postfix_started and self.master_pid() is None:
            return
        run(["postfix", "stop"], check=False, timeout=60)
        for _ in range(100):
            if self.master_pid() is None:
                break
            time.sleep(0.1)
        # daemons notice the missing master within a moment; give them time
        time.sleep(0.5)
        self.postfix_started = False

    def stop_sink(self) -> None:
        if self.sink is not None and self.sink.poll() is None:
            self.sink.terminate()
            try:
                self.sink.wait(5)
            except subprocess.TimeoutExpired:
                self.sink.kill()
                self.sink.wait(5)
        self.sink = None

    def remove_users(self) -> None:
        for u in reversed(self.created_users):
            args = ["userdel"]
            if not self.homes_before.get(u):
                args.append("-r")
            run(args + [u], check=False)
            if not self.homes_before.get(u) and os.path.lexists(f"/home/{u}"):
                shutil.rmtree(f"/home/{u}", ignore_errors=True)
        self.created_users = []

    def restore_account_files(self) -> None:
        for p in ACCOUNT_FILES:
            self._put_file(p, self.saved_files[p])

    def restore_mail(self) -> None:
        if not MAIL_DIR.is_dir():
            return
        for e in MAIL_DIR.iterdir():
            if e.name not in self.mail_snapshot and (e.is_file() or e.is_symlink()):
                e.unlink()
        for name, saved in self.mail_snapshot.items():
            self._put_file(MAIL_DIR / name, saved)

    def restore_etc_postfix(self) -> None:
        saved = self.backup_dir / "etc-postfix"
        if not saved.exists():
            return
        trash = POSTFIX_ETC.with_name("postfix.record-trash")
        if os.path.lexists(trash):
            shutil.rmtree(trash)
        os.rename(POSTFIX_ETC, trash)
        run(["cp", "-a", str(saved), str(POSTFIX_ETC)])
        shutil.rmtree(trash)

    def restore_single_files(self) -> None:
        for p in SINGLE_FILES:
            self._put_file(p, self.saved_files[p])

    def restore_spool(self) -> None:
        for d, before in self.spool_snapshot.items():
            now = self._walk(d)
            # deepest first, so directories are empty when we get to them
            for path in sorted(now - before, key=lambda s: -s.count("/")):
                try:
                    if os.path.isdir(path) and not os.path.islink(path):
                        os.rmdir(path)
                    else:
                        os.unlink(path)
                except FileNotFoundError:
                    pass

    def restore_log(self) -> None:
        if self.log_size is None:
            if LOG_FILE.exists():
                LOG_FILE.unlink()
        elif LOG_FILE.exists():
            os.truncate(LOG_FILE, self.log_size)

    # -- changes made for the recording ------------------------------------

    def point_resolver_at_loopback(self) -> None:
        saved = self.saved_files[RESOLV]
        if saved is not None and saved[0] == "link":
            os.unlink(RESOLV)
        with open(RESOLV, "wb") as f:
            f.write(b"# mailsim record_postfix.py: no DNS during the recording\n"
                    b"nameserver 127.0.0.1\n")

    def create_users(self) -> None:
        for u in USERS:
            if run(["id", u], check=False).returncode == 0:
                continue
            run(["useradd", "-m", "-s", "/bin/bash", u])
            self.created_users.append(u)

    def start_sink(self) -> None:
        self.sink = subprocess.Popen(
            ["smtp-sink", "-u", "nobody", "-h", "sink.example.net",
             f"127.0.0.1:{SINK_PORT}", "64"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        for _ in range(50):
            if port_open(SINK_PORT):
                return
            time.sleep(0.1)
        raise RuntimeError("smtp-sink did not start")


def port_open(port: int) -> bool:
    """Is something listening on 127.0.0.1:port or *:port? Reads /proc and
    never connects (a probe connection would show up in Postfix's log)."""
    wanted = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            f = ln.split()
            if len(f) > 3 and f[3] == "0A" and (
                    f[1] in wanted or f[1] == "0" * 32 + f":{port:04X}"):
                return True
    return False


# --------------------------------------------------------------------------
# Postfix configuration per scenario
# --------------------------------------------------------------------------

def build_main_cf(overrides: dict, removed: list) -> str:
    lines = BASE_MAIN_CF.read_text().splitlines()
    out, seen = [], set()
    for ln in lines:
        m = re.match(r"^\s*([A-Za-z0-9_]+)\s*=", ln)
        if m:
            key = m.group(1)
            if key in removed:
                continue
            if key in overrides:
                seen.add(key)
                out.append(f"{key} = {overrides[key]}".rstrip())
                continue
        out.append(ln)
    for key, val in overrides.items():
        if key not in seen:
            out.append(f"{key} = {val}".rstrip())
    return "\n".join(out) + "\n"


def clean_etc_postfix(machine: Machine) -> None:
    """Remove what an earlier scenario wrote to /etc/postfix."""
    now = Machine._walk(POSTFIX_ETC)
    for path in sorted(now - machine.etc_snapshot, key=lambda s: -s.count("/")):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def write_config(sc: dict, machine: Machine) -> None:
    clean_etc_postfix(machine)
    main_cf = build_main_cf(sc.get("main_cf", {}), sc.get("main_cf_removed", []))
    (POSTFIX_ETC / "main.cf").write_text(main_cf)
    aliases = Path("/etc/aliases")
    if (not aliases.exists() or aliases.read_text() != ALIASES
            or not Path("/etc/aliases.db").exists()):
        aliases.write_text(ALIASES)
        run(["postalias", "hash:/etc/aliases"])
    kinds = sc.get("table_types", {})
    for name, content in sc.get("files", {}).items():
        if name == "aliases":
            continue
        p = POSTFIX_ETC / name
        p.write_text(content)
        kind = kinds.get(name, "hash")
        if kind in ("hash", "btree"):
            run(["postmap", f"{kind}:{p}"])
    for cmd in sc.get("setup", []):
        run(cmd)


def clear_mail() -> None:
    if MAIL_DIR.is_dir():
        for e in MAIL_DIR.iterdir():
            if e.is_file() or e.is_symlink():
                e.unlink()


# --------------------------------------------------------------------------
# SMTP client
# --------------------------------------------------------------------------

def count_replies(data: bytes) -> int:
    """Complete replies in data: complete lines "ddd text" or "ddd"."""
    n = 0
    for line in data.split(b"\n")[:-1]:          # only complete lines
        if FINAL_LINE.match(line.rstrip(b"\r")):
            n += 1
    return n


def last_code(data: bytes) -> str:
    lines = [ln for ln in data.split(b"\r\n") if ln]
    return lines[-1][:3].decode("latin-1") if lines else ""


def read_replies(sock: socket.socket, expect: int | None):
    """Read until `expect` complete replies (None: until SILENCE seconds of
    quiet). Returns (data, closed, note)."""
    data = bytearray()
    closed = False
    note = ""
    start = time.monotonic()

    def recv(timeout: float) -> bytes | None:
        """bytes, b'' on EOF, None on timeout"""
        nonlocal closed
        sock.settimeout(max(timeout, 0.001))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return None
        except ConnectionResetError:
            closed = True
            return b""
        if not chunk:
            closed = True
        return chunk

    if expect is None:
        while not closed:
            chunk = recv(SILENCE)
            if chunk is None:
                break
            data += chunk
        return bytes(data), closed, note

    while not closed and count_replies(data) < expect:
        left = STEP_TIMEOUT - (time.monotonic() - start)
        if left <= 0:
            note = (f"expected {expect} replies, got {count_replies(data)} "
                    f"within {STEP_TIMEOUT:.0f} s")
            return bytes(data), closed, note
        chunk = recv(left)
        if chunk:
            data += chunk
    if closed:
        return bytes(data), closed, note
    # did the server close, or does it say more than we expected? Only
    # after an error (e.g. the 421 that follows the error that reached
    # smtpd_hard_error_limit) or a goodbye is it worth waiting for that.
    code = last_code(data)
    if code in ("221", "421"):
        wait = 3.0
    elif code[:1] in ("4", "5"):
        wait = EXTRA_POLL
    else:
        wait = 0.001
    chunk = recv(wait)
    if chunk:
        data += chunk
        note = f"more than the {expect} expected replies; read until {SILENCE} s of silence"
        while not closed:
            chunk = recv(SILENCE)
            if chunk is None:
                break
            data += chunk
    return bytes(data), closed, note


def run_dialogue(steps: list) -> tuple[list, list]:
    sock = socket.create_connection((SMTP_HOST, SMTP_PORT), timeout=10)
    out, notes = [], []
    try:
        for i, st in enumerate(steps):
            send = st["send"]
            if send is not None:
                try:
                    sock.sendall(send.encode("latin-1"))
                except (BrokenPipeError, ConnectionResetError) as e:
                    notes.append(f"step {i}: send failed: {e}")
                    out.append({"send": send, "reply": "", "n_replies": 0,
                                "closed": True})
                    break
            data, closed, note = read_replies(sock, st.get("expect", 1))
            rec = {"send": send, "reply": data.decode("latin-1"),
                   "n_replies": count_replies(data)}
            if closed:
                rec["closed"] = True
            out.append(rec)
            if note:
                notes.append(f"step {i} ({(send or 'greeting')[:40]!r}): {note}")
            if note.startswith("expected") and not closed:
                # the server is stuck or waits for something we will not
                # send: do not pile more commands on top
                if i + 1 < len(steps):
                    notes.append(f"dialogue stopped after step {i}; "
                                 f"{len(steps) - i - 1} further step(s) not sent")
                break
            if closed:
                if i + 1 < len(steps):
                    notes.append(f"server closed the connection after step {i}; "
                                 f"{len(steps) - i - 1} further step(s) not sent")
                break
    finally:
        sock.close()
    return out, notes


# --------------------------------------------------------------------------
# Postfix control, log and queue
# --------------------------------------------------------------------------

def postfix_start(machine: Machine) -> None:
    cp = run(["postfix", "start"], check=False, timeout=60)
    machine.postfix_started = True
    if cp.returncode != 0:
        raise RuntimeError(f"postfix start failed: {cp.stdout}{cp.stderr}")
    for _ in range(100):
        if machine.master_pid() is not None and port_open(SMTP_PORT):
            return
        time.sleep(0.1)
    raise RuntimeError("postfix did not come up")


def mark(text: str) -> None:
    run(["postlog", "-t", "postfix/record", text])


def wait_log_contains(token: str, offset: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if LOG_FILE.exists():
            with open(LOG_FILE, "rb") as f:
                f.seek(offset)
                if token.encode() in f.read():
                    return
        time.sleep(0.05)
    raise RuntimeError(f"log marker {token} never showed up in {LOG_FILE}")


def log_offset() -> int:
    return LOG_FILE.stat().st_size if LOG_FILE.exists() else 0


def log_between(offset: int, begin: str, end: str) -> list[str]:
    with open(LOG_FILE, "rb") as f:
        f.seek(offset)
        text = f.read().decode("latin-1")
    lines, inside = [], False
    for ln in text.splitlines():
        if begin in ln:
            inside = True
            continue
        if end in ln:
            break
        if inside:
            lines.append(ln)
    return lines


def queue_json() -> list[dict]:
    cp = run(["postqueue", "-j"], check=False)
    items = []
    for ln in cp.stdout.splitlines():
        ln = ln.strip()
        if ln:
            try:
                items.append(json.loads(ln))
            except ValueError:
                pass
    return items


def settle(offset: int, marker: str) -> str:
    """Wait until the smtpd session is logged as over and the queue is
    empty or only holds deferred / held mail. Returns a note if it timed out."""
    end = time.monotonic() + SETTLE_TIMEOUT
    # 1. smtpd has logged the disconnect (it may never, if smtpd died)
    disconnect_deadline = time.monotonic() + 8.0
    while time.monotonic() < disconnect_deadline:
        with open(LOG_FILE, "rb") as f:
            f.seek(offset)
            text = f.read().decode("latin-1")
        after = text.split(marker, 1)[-1]
        if re.search(r"postfix/smtpd\[\d+\]: disconnect from ", after):
            break
        time.sleep(0.05)
    # 2. the queue is quiet
    while time.monotonic() < end:
        q = queue_json()
        busy = [m for m in q if m.get("queue_name") not in ("deferred", "hold")]
        if not busy:
            # incoming/active may still be refilled by a bounce: double check
            time.sleep(0.3)
            q2 = queue_json()
            if not [m for m in q2 if m.get("queue_name") not in ("deferred", "hold")]:
                return ""
            continue
        time.sleep(0.2)
    return f"queue did not settle within {SETTLE_TIMEOUT:.0f} s"


def read_mailboxes() -> dict:
    boxes = {}
    if MAIL_DIR.is_dir():
        for e in sorted(MAIL_DIR.iterdir()):
            if e.is_file():
                boxes[e.name] = e.read_bytes().decode("latin-1")
    return boxes


# --------------------------------------------------------------------------
# One scenario
# --------------------------------------------------------------------------

def normalise_steps(dialogue: list, greeting=1) -> list:
    steps = [{"send": None, "expect": greeting}]
    for st in dialogue:
        if isinstance(st, str):
            steps.append({"send": st, "expect": 1})
        elif isinstance(st, tuple):
            send, expect = st
            steps.append({"send": send, "expect": expect})
        else:
            d = dict(st)
            d.setdefault("expect", 1)
            steps.append(d)
    return steps


def start_marks(sid: str) -> tuple[str, str, int]:
    """Log a unique begin marker and wait for it: (begin, end, log offset); what the
    recording keeps is the log between the two markers."""
    token = uuid.uuid4().hex[:12]
    begin, end = f"record-begin-{sid}-{token}", f"record-end-{sid}-{token}"
    offset = log_offset()
    mark(begin)
    wait_log_contains(begin, offset)
    return begin, end, offset


def record(sc: dict, machine: Machine, version: str) -> tuple[dict, list]:
    sid = sc["id"]
    machine.stop_postfix()
    write_config(sc, machine)
    run(["postsuper", "-d", "ALL"], check=False)
    clear_mail()
    for cmd in sc.get("prefill", []):
        run(cmd)
    postfix_start(machine)
    effective = run(["postconf", "-n"]).stdout

    begin, end, offset = start_marks(sid)

    dialogue, notes = run_dialogue(normalise_steps(sc["dialogue"], sc.get("greeting", 1)))
    settle_note = settle(offset, begin)
    if settle_note:
        notes.append(settle_note)
    time.sleep(sc.get("extra_wait", 0.3))

    queue = run(["postqueue", "-p"], check=False).stdout
    commands = []
    for cmd in sc.get("commands", []):
        cp = run(cmd, check=False)
        commands.append({"cmd": cmd if isinstance(cmd, str) else " ".join(cmd),
                         "rc": cp.returncode, "stdout": cp.stdout,
                         "stderr": cp.stderr})
    if not queue.startswith("Mail queue is empty"):
        # leave nothing for the next scenario, and say so like the corpus
        for cmd in ("postqueue -p", "postsuper -d ALL"):
            if any(c["cmd"] == cmd for c in commands):
                continue
            cp = run(cmd, check=False)
            commands.append({"cmd": cmd, "rc": cp.returncode,
                             "stdout": cp.stdout, "stderr": cp.stderr})
    mailboxes = read_mailboxes()
    mark(end)
    wait_log_contains(end, offset)
    lines = log_between(offset, begin, end)

    files = {"aliases": ALIASES}
    files.update(sc.get("files", {}))
    result = {
        "id": sid,
        "title": sc["title"],
        "postfix_version": version,
        "main_cf": sc.get("main_cf", {}),
    }
    if sc.get("main_cf_removed"):
        result["main_cf_removed"] = sc["main_cf_removed"]
    result.update({
        "main_cf_effective": effective,
        "files": files,
        "users": USERS,
        "client": "127.0.0.1",
        "server": f"{SMTP_HOST}:{SMTP_PORT}",
        "dialogue": dialogue,
        "mailboxes": mailboxes,
        "log": lines,
        "queue": queue,
        "commands": commands,
        "notes": " ".join([sc.get("notes", "")] + notes).strip(),
    })
    return result, notes


# --------------------------------------------------------------------------

def summary(d: dict) -> str:
    out = [f"== {d['id']}: {d['title']}"]
    for st in d["dialogue"]:
        s = "(connect)" if st["send"] is None else st["send"]
        s = s.encode("unicode_escape").decode()[:70]
        r = st["reply"].encode("unicode_escape").decode()
        r = r if len(r) < 150 else r[:147] + "..."
        flag = " [closed]" if st.get("closed") else ""
        out.append(f"  > {s}\n    < ({st['n_replies']}) {r}{flag}")
    if d["notes"]:
        out.append(f"  notes: {d['notes']}")
    return "\n".join(out)


def settle_queue(timeout: float = 25.0) -> str:
    """Wait until no message is in incoming/active (deferred and held ones may stay);
    returns a note for the recording when the queue did not settle in time."""
    def busy() -> list:
        return [m for m in queue_json() if m.get("queue_name") not in ("deferred", "hold")]

    end = time.monotonic() + timeout
    time.sleep(0.3)
    while time.monotonic() < end:
        if not busy():
            time.sleep(0.5)
            if not busy():
                return ""
        time.sleep(0.2)
    return f"queue did not settle within {timeout:.0f} s"


def record_messages(sc: dict, machine: "Machine", write_setup, *, pause: float = 0.5,
                    before=None, collect=None) -> dict:
    """Start Postfix set up for scenario ``sc``, run its SMTP sessions one after another
    (letting the queue settle after each), and return what a delivery recording keeps:
    ``effective`` (postconf -n), ``sessions``, ``notes``, ``queue``, ``mailboxes``,
    ``log``, plus what ``collect()`` returns. ``before()`` runs with Postfix stopped."""
    sid = sc["id"]
    machine.stop_postfix()
    if before is not None:
        before()
    run(["postsuper", "-d", "ALL"], check=False)
    clear_mail()
    write_setup(sc, machine)
    postfix_start(machine)
    effective = run(["postconf", "-n"]).stdout
    begin, end, offset = start_marks(sid)
    sessions, notes = [], []
    for m in sc["messages"]:
        dialogue, n = run_dialogue(normalise_steps(m["steps"]))
        sessions.append({"rcpts": m["rcpts"], "dialogue": dialogue})
        notes += n
        note = settle_queue()
        if note:
            notes.append(note)
        time.sleep(pause)
    queue = run(["postqueue", "-p"], check=False).stdout
    mailboxes = read_mailboxes()
    extra = collect() if collect is not None else {}
    mark(end)
    wait_log_contains(end, offset)
    return {"effective": effective, "sessions": sessions, "notes": " ".join(notes),
            "queue": queue, "mailboxes": mailboxes, "log": log_between(offset, begin, end),
            **extra}


def record_each(scenarios: list[dict], record_one, out: Path, report=None) -> list[str]:
    """Record every scenario with ``record_one(sc) -> dict``, writing ``OUT/ID.json`` and
    ``OUT/logs/ID.log``; a scenario that fails is reported and skipped. Returns the ids
    that failed. ``report(n, total, sc, result, seconds)`` gives the progress line."""
    failed = []
    for n, sc in enumerate(scenarios, 1):
        t = time.monotonic()
        try:
            result = record_one(sc)
        except Exception as e:  # keep going with the next scenario
            failed.append(sc["id"])
            log(f"!! {sc['id']}: {e}")
            continue
        with open(out / f"{sc['id']}.json", "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        with open(out / "logs" / f"{sc['id']}.log", "w", encoding="latin-1") as f:
            f.write("".join(ln + "\n" for ln in result["log"]))
        seconds = time.monotonic() - t
        log(report(n, len(scenarios), sc, result, seconds) if report else
            f"{sc['id']} ({seconds:.1f} s) {result['notes']}")
    return failed


def record_scenarios(machine: "Machine", scenarios: list[dict], record_one, out: Path, *,
                     prepare=None, cleanup=None, report=None) -> int:
    """The whole recording run every recorder makes: back the machine up, point the
    resolver at loopback, create the users, ``prepare()``, chroot off, start the sink,
    then ``record_one(sc, mail_version)`` for each scenario (:func:`record_each`); stop
    Postfix, ``cleanup()`` and restore the machine whatever happens. Returns the exit
    status (1 when a scenario failed or the run was interrupted)."""
    (out / "logs").mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    t0 = time.monotonic()
    try:
        machine.backup()
        machine.point_resolver_at_loopback()
        machine.create_users()
        if prepare is not None:
            prepare()
        # master.cf: Debian's stock file, chroot off for every service
        run(["postconf", "-F", "*/*/chroot = n"])
        machine.start_sink()
        version = run(["postconf", "-dh", "mail_version"]).stdout.strip()
        failed += record_each(scenarios, lambda sc: record_one(sc, version), out, report)
        log(f"recorded {len(scenarios) - len(failed)} scenario(s) in "
            f"{time.monotonic() - t0:.0f} s into {out}")
    except KeyboardInterrupt as e:
        log(f"interrupted ({e})")
        failed.append("<interrupted>")
    finally:
        try:
            machine.stop_postfix()
            if cleanup is not None:
                cleanup()
        finally:
            machine.restore()
    if failed:
        log("FAILED: " + ", ".join(failed))
        return 1
    return 0


def take_machine(ports, *, restore_at_exit: bool = True) -> "Machine":
    """What every recorder checks before it touches the machine, and its safety net.

    Root, Postfix installed, nothing on ``ports``, Postfix not running; then
    SIGTERM/SIGHUP become KeyboardInterrupt (so ``finally`` blocks restore)
    and, with ``restore_at_exit``, the machine is restored when Python exits.
    """
    if os.geteuid() != 0:
        sys.exit("must run as root (it configures and starts the system's postfix)")
    if shutil.which("postfix") is None:
        sys.exit("postfix is not installed (apt-get install postfix)")
    for port in ports:
        if port_open(port):
            sys.exit(f"something already listens on port {port}: not touching it")
    machine = Machine()
    if machine.master_pid() is not None:
        sys.exit("postfix is already running: stop it first")

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if restore_at_exit:
        atexit.register(machine.restore)
    return machine


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID", help="record only these scenarios")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--quiet", action="store_true", help="no dialogue summary")
    ap.add_argument("--scenarios", type=Path, metavar="FILE.py",
                    help="take SCENARIOS from this file instead of tools/scenarios_smtpd.py")
    args = ap.parse_args()

    scenarios = scenarios_smtpd.SCENARIOS
    if args.scenarios:
        ns = {"__name__": "scenarios_extra", "__file__": str(args.scenarios)}
        exec(compile(args.scenarios.read_text(), str(args.scenarios), "exec"), ns)
        scenarios = ns["SCENARIOS"]
    ids = [s["id"] for s in scenarios]
    if len(set(ids)) != len(ids):
        sys.exit("duplicate scenario ids")
    if args.list:
        for s in scenarios:
            print(f"{s['id']:40} {s['title']}")
        return 0
    if args.only:
        unknown = set(args.only) - set(ids)
        if unknown:
            sys.exit(f"unknown scenario id(s): {', '.join(sorted(unknown))}")
        scenarios = [s for s in scenarios if s["id"] in args.only]

    if shutil.which("smtp-sink") is None:
        sys.exit("smtp-sink not installed (apt-get install postfix)")
    machine = take_machine((SMTP_PORT, SINK_PORT))

    def report(n: int, total: int, sc: dict, result: dict, seconds: float) -> str:
        line = f"[{n}/{total}] {sc['id']} ({seconds:.1f} s)"
        return line if args.quiet else line + "\n" + summary(result)

    return record_scenarios(machine, scenarios, lambda sc, version: record(sc, machine, version)[0],
                            args.out, report=report)


if __name__ == "__main__":
    sys.exit(main())
