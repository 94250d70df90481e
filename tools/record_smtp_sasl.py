#!/usr/bin/env python3
"""Record what real Postfix 3.7's SMTP client (smtp(8)) does with SASL AUTH to a
smarthost (``smtp_sasl_auth_enable = yes``, ``smtp_sasl_password_maps``).

For every case below: start a private instance of the machine's Postfix
(:func:`mailsim.realpostfix.postfix_instance`, ``postfix -c DIR``: its own
main.cf, queue and log, on 127.0.0.1:PORT; /etc/postfix is never touched)
with ``transport_maps = inline:{ example.org=smtp:[HOST]:PEERPORT }`` (or
``relayhost = [HOST]:PEERPORT``) and the case's ``smtp_sasl_*`` settings; its password table ``$config_directory/sasl_passwd``
is written from the case's entries and compiled with the real ``postmap``.
A scripted SMTP server (mailsim/smtp/peer.py) on 127.0.0.1:PEERPORT offers
``AUTH ...`` (or not) in its EHLO reply and answers the AUTH dialogue for
PLAIN, LOGIN and CRAM-MD5 (the user ``relayuser`` with the password
``s3cret``). One message from ``carol@real.example`` to ``petre@example.org``
is submitted over SMTP; the instance's smtp(8) takes it to the peer. Saved per
case, as JSON in tests/golden/smtp-sasl/ID.json (plus logs/ID.log): the
settings, the password table, the peer's script and transcript (the AUTH
lines with their base64), and the instance's log lines from the submission on.

The TLS cases use tests/golden/smtp-tls/certs (tools/record_smtp_tls.py).
Needs root and the Cyrus SASL client plugins (Debian: libsasl2-modules).
Everything is on 127.0.0.1; the instance does no DNS.

    .venv/bin/python tools/record_smtp_sasl.py [--only ID ...]
"""
from __future__ import annotations

import argparse
import re
import socket
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from mailsim.realpostfix import postfix_instance  # noqa: E402
from mailsim.serve import free_port  # noqa: E402
from mailsim.smtp.peer import DEFAULT_EHLO, Script, ScriptedServer  # noqa: E402
import record_client as rc  # noqa: E402  (the recorders' shared pieces, next to us)
from record_client import run_dialogue  # noqa: E402
from record_smtp_tls import CERTS, RCPT, _done, server_context, submission  # noqa: E402

OUT = REPO / "tests/golden/smtp-sasl"
USER, PASSWORD = "relayuser", "s3cret"
#: the peer's SASL server: one account
AUTH = {"users": {USER: PASSWORD}}
RETRY_AFTER = 11


def ehlo(auth: str | None, starttls: bool = False) -> list[str]:
    """The peer's EHLO reply: AUTH (and STARTTLS) where Postfix's smtpd puts them."""
    mid = (["STARTTLS"] if starttls else []) + ([auth] if auth is not None else [])
    return [*DEFAULT_EHLO[:3], *mid, *DEFAULT_EHLO[3:]]


#: the settings of every case
BASE = {"smtp_sasl_auth_enable": "yes",
        "smtp_sasl_password_maps": "hash:$config_directory/sasl_passwd"}
#: no noplaintext: PLAIN and LOGIN are allowed without TLS
NOANON = {**BASE, "smtp_sasl_security_options": "noanonymous"}
#: the password table's entry for the peer (the next hop as written)
ENTRY = {"[127.0.0.1]:$PEERPORT": f"{USER}:{PASSWORD}"}
WRONG = {"[127.0.0.1]:$PEERPORT": f"{USER}:wrong"}
TLS = {"smtp_tls_security_level": "may", "smtp_tls_loglevel": "1"}

CASES: list[dict] = [
    dict(id="relayhost", title="relayhost = [127.0.0.1]:PORT (the smarthost set-up, no "
                               "transport_maps), the entry for [127.0.0.1]:PORT: PLAIN, sent",
         main_cf=NOANON, passwd=ENTRY, script={"ehlo": ehlo("AUTH PLAIN LOGIN")},
         relayhost=True),
    dict(id="plain", title="AUTH PLAIN LOGIN offered, smtp_sasl_security_options = "
                           "noanonymous: PLAIN with an initial response, sent",
         main_cf=NOANON, passwd=ENTRY, script={"ehlo": ehlo("AUTH PLAIN LOGIN")}),
    dict(id="login-plain-order", title="AUTH LOGIN PLAIN offered (the other order): which "
                                       "mechanism Cyrus picks",
         main_cf=NOANON, passwd=ENTRY, script={"ehlo": ehlo("AUTH LOGIN PLAIN")}),
    dict(id="login-only", title="only AUTH LOGIN offered: Username:/Password: challenges",
         main_cf=NOANON, passwd=ENTRY, script={"ehlo": ehlo("AUTH LOGIN")}),
    dict(id="noplaintext-default", title="the default smtp_sasl_security_options "
                                         "(noplaintext, noanonymous), only PLAIN and LOGIN "
                                         "offered, no TLS: no mechanism, deferred",
         main_cf=BASE, passwd=ENTRY, script={"ehlo": ehlo("AUTH PLAIN LOGIN")}),
    dict(id="cram-md5-default", title="the default options, AUTH PLAIN LOGIN CRAM-MD5: "
                                      "CRAM-MD5 (no plaintext password)",
         main_cf=BASE, passwd=ENTRY, script={"ehlo": ehlo("AUTH PLAIN LOGIN CRAM-MD5")}),
    dict(id="wrong-password", title="a wrong password: 535, deferred "
                                    "(smtp_sasl_auth_soft_bounce = yes)",
         main_cf=NOANON, passwd=WRONG, script={"ehlo": ehlo("AUTH PLAIN LOGIN")}),
    dict(id="wrong-password-hard", title="a wrong password with smtp_sasl_auth_soft_bounce "
                                         "= no: bounced",
         main_cf={**NOANON, "smtp_sasl_auth_soft_bounce": "no"}, passwd=WRONG,
         script={"ehlo": ehlo("AUTH PLAIN LOGIN")}),
    dict(id="auth-454", title="the server answers AUTH 454 4.7.0: deferred",
         main_cf=NOANON, passwd=ENTRY,
         script={"ehlo": ehlo("AUTH PLAIN LOGIN"),
                 "auth": {"reply": "454 4.7.0 Temporary authentication failure"}}),
    dict(id="no-auth-offered", title="the server offers no AUTH: sent without it",
         main_cf=NOANON, passwd=ENTRY, script={"ehlo": ehlo(None)}),
    dict(id="no-entry", title="no password table entry for this server: sent without AUTH",
         main_cf=NOANON, passwd={"[mail.example.net]:587": f"{USER}:{PASSWORD}"},
         script={"ehlo": ehlo("AUTH PLAIN LOGIN")}),
    dict(id="key-host", title="the entry is for the server's name (127.0.0.1), not the "
                              "next hop [127.0.0.1]:PORT: found",
         main_cf=NOANON, passwd={"127.0.0.1": f"{USER}:{PASSWORD}"},
         script={"ehlo": ehlo("AUTH PLAIN LOGIN")}),
    dict(id="key-localhost", title="next hop [localhost]:PORT, an entry for localhost and "
                                   "a wrong one for [localhost]:PORT: the host name first",
         main_cf=NOANON, passwd={"localhost": f"{USER}:{PASSWORD}",
                                 "[localhost]:$PEERPORT": f"{USER}:wrong"},
         script={"ehlo": ehlo("AUTH PLAIN LOGIN")}, nexthop="localhost"),
    dict(id="mech-filter", title="smtp_sasl_mechanism_filter = login: LOGIN although PLAIN "
                                 "is offered",
         main_cf={**NOANON, "smtp_sasl_mechanism_filter": "login"}, passwd=ENTRY,
         script={"ehlo": ehlo("AUTH PLAIN LOGIN")}),
    dict(id="mech-filter-none", title="smtp_sasl_mechanism_filter = cram-md5, the server "
                                      "offers PLAIN LOGIN: a warning, deferred",
         main_cf={**NOANON, "smtp_sasl_mechanism_filter": "cram-md5"}, passwd=ENTRY,
         script={"ehlo": ehlo("AUTH PLAIN LOGIN")}),
    dict(id="null-auth", title="the server says AUTH without mechanisms",
         main_cf=NOANON, passwd=ENTRY, script={"ehlo": ehlo("AUTH")}),
    dict(id="tls-plain", title="STARTTLS (level may), smtp_sasl_tls_security_options = "
                               "noanonymous: PLAIN over TLS, sent",
         main_cf={**BASE, **TLS, "smtp_sasl_tls_security_options": "noanonymous"},
         passwd=ENTRY, cert="self.pem", script={"ehlo": ehlo("AUTH PLAIN LOGIN", True)}),
    dict(id="tls-noplaintext-default", title="STARTTLS, smtp_sasl_tls_security_options left "
                                             "at $smtp_sasl_security_options: noplaintext "
                                             "over TLS too, deferred",
         main_cf={**BASE, **TLS}, passwd=ENTRY, cert="self.pem",
         script={"ehlo": ehlo("AUTH PLAIN LOGIN", True)}),
    dict(id="auth-cache", title="smtp_sasl_auth_cache_name: a 535 is remembered; the retry "
                                "(postqueue -f after minimal_backoff_time) sends no AUTH",
         main_cf={**NOANON, "smtp_sasl_auth_cache_name":
                  "proxy:btree:$data_directory/sasl_auth_cache",
                  "minimal_backoff_time": "10s", "maximal_backoff_time": "4000s"},
         passwd=WRONG, script={"ehlo": ehlo("AUTH PLAIN LOGIN")}, retry=RETRY_AFTER),
    dict(id="tls-verified", title="level verify, a certificate from the lab CA: "
                                  "smtp_sasl_tls_verified_security_options = noanonymous "
                                  "allows PLAIN where smtp_sasl_tls_security_options "
                                  "(noplaintext) would not",
         main_cf={**BASE, **TLS, "smtp_tls_security_level": "verify",
                  "smtp_tls_CAfile": "$CERTS/ca.pem",
                  "smtp_sasl_tls_security_options": "noplaintext, noanonymous",
                  "smtp_sasl_tls_verified_security_options": "noanonymous"},
         passwd={"localhost": f"{USER}:{PASSWORD}"}, cert="mx.pem",
         script={"ehlo": ehlo("AUTH PLAIN LOGIN", True)}, nexthop="localhost"),
    dict(id="auth-two-lines", title="two AUTH lines (AUTH LOGIN, then the old AUTH=LOGIN "
                                    "PLAIN form): the lists are joined",
         main_cf=NOANON, passwd=ENTRY,
         script={"ehlo": [*ehlo("AUTH LOGIN"), "AUTH=LOGIN PLAIN"]}),
    dict(id="tls-fallback-with-password", title="level may, the TLS handshake fails; flushed "
                                              "after minimal_backoff_time: no plaintext "
                                              "retry, because a password exists for the "
                                              "server (HAVE_SASL_CREDENTIALS)",
         main_cf={**NOANON, **TLS, "minimal_backoff_time": "10s",
                  "maximal_backoff_time": "4000s"},
         passwd=ENTRY, cert="self.pem",
         script={"ehlo": ehlo("AUTH PLAIN LOGIN", True), "after_starttls": "garbage"},
         retry=RETRY_AFTER),
]


def subst(value: str, peer_port: int, certs: str = "$CERTS") -> str:
    return value.replace("$PEERPORT", str(peer_port)).replace("$CERTS", certs)


def passwd_text(case: dict, peer_port: int) -> str:
    return "".join(f"{subst(k, peer_port)} {v}\n" for k, v in case["passwd"].items())


def record(case: dict, version: str) -> dict:
    script = Script.from_dict({**Script().to_dict(), "auth": AUTH, **case.get("script", {})})
    ctx = server_context(case["cert"]) if case.get("cert") else None
    certs_dir = Path(tempfile.mkdtemp(prefix="mailsim-sasl-certs."))
    certs_dir.chmod(0o755)                 # smtp(8) runs as postfix: it must read the CA file
    for p in CERTS.glob("*.pem"):
        shutil.copy(p, certs_dir / p.name)
        (certs_dir / p.name).chmod(0o644)
    try:
        return _record(case, version, script, ctx, certs_dir)
    finally:
        shutil.rmtree(certs_dir, ignore_errors=True)


def _record(case: dict, version: str, script: Script, ctx, certs_dir: Path) -> dict:
    with ScriptedServer(script, tls=ctx) as peer:
        nexthop = f"[{case.get('nexthop', '127.0.0.1')}]:{peer.port}"
        route = ({"relayhost": nexthop} if case.get("relayhost") else
                 {"transport_maps": f"inline:{{ example.org=smtp:{nexthop} }}"})
        main_cf = {**route, **case.get("main_cf", {})}
        live = {k: subst(v, peer.port, str(certs_dir)) for k, v in main_cf.items()}
        table = passwd_text(case, peer.port)

        def setup(base: Path) -> None:
            if not case["passwd"]:
                return
            (base / "etc/sasl_passwd").write_text(table)
            subprocess.run(["postmap", "-c", str(base / "etc"),
                            f"hash:{base}/etc/sasl_passwd"], check=True)

        port = free_port()
        with postfix_instance(port, live, setup=setup) as pf:
            effective = subprocess.run(
                ["postconf", "-c", str(pf.config_directory), "-n"],
                capture_output=True, text=True, check=True).stdout
            effective = effective.replace(str(pf.base), "$BASE").replace(
                str(certs_dir), "$CERTS")
            pf.wait_for("commands=0/0")
            time.sleep(0.3)
            since = len(pf.log())
            t0 = time.monotonic()
            dialogue = run_dialogue(port, submission(case))
            retry = case.get("retry", 0)
            end = time.monotonic() + 60
            while not _done(pf.log()[since:], False) and time.monotonic() < end:
                time.sleep(0.1)
            if retry:
                time.sleep(max(0.0, t0 + retry - time.monotonic()))
                subprocess.run(["postqueue", "-c", str(pf.config_directory), "-f"],
                               check=True, timeout=30)
                while not _done(pf.log()[since:], True) and time.monotonic() < end:
                    time.sleep(0.1)
            notes = [] if _done(pf.log()[since:], bool(retry)) else \
                ["smtp(8) logged no outcome within 60 s"]
            peer.wait_idle(15)
            time.sleep(1.0)            # late lines (removed, the disconnect, the bounce)
            log = pf.log()[since:]
            base = str(pf.base)
    return {
        "id": case["id"], "title": case["title"], "postfix_version": version,
        "openssl_version": ssl.OPENSSL_VERSION,
        "sasl_version": _sasl_version(),
        "hostname": socket.gethostname(),
        "instance_base": base,
        "main_cf": {k: subst(v, peer.port) for k, v in main_cf.items()},
        "main_cf_effective": effective,
        "sasl_passwd": table,
        "cert": case.get("cert"),
        "retry_after": case.get("retry", 0),
        "peer": f"127.0.0.1:{peer.port}",
        "nexthop": nexthop,
        "instance_port": port,
        "script": script.to_dict(),
        "sessions": [{"rcpts": [RCPT], "dialogue": dialogue}],
        "remote": peer.sessions,
        "log": log,
        "notes": " ".join(notes),
    }


def _sasl_version() -> str:
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libsasl2-modules"],
                       capture_output=True, text=True)
    return f"libsasl2-modules {r.stdout.strip()}" if r.returncode == 0 else "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    return rc.record_cases(args, CASES, record)


if __name__ == "__main__":
    sys.exit(main())
