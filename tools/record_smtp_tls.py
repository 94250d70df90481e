#!/usr/bin/env python3
"""Record what real Postfix 3.7's SMTP client (smtp(8)) logs when it uses TLS.

For every case below: start a private instance of the machine's Postfix
(:func:`mailsim.realpostfix.postfix_instance`, ``postfix -c DIR``: its own
main.cf, queue and log, on 127.0.0.1:PORT; /etc/postfix is never touched)
with ``transport_maps = inline:{ example.org=smtp:[HOST]:PEERPORT }``, the
case's ``smtp_tls_*`` settings and ``smtp_tls_loglevel = 1``. A scripted
SMTP server (mailsim/smtp/peer.py) on 127.0.0.1:PEERPORT offers STARTTLS (or
not), answers it, and shakes hands with the case's certificate -- or breaks
the handshake on purpose. One message from ``carol@real.example`` to
``petre@example.org`` is submitted over SMTP; the instance's smtp(8) takes
it to the peer. Saved per case, as JSON in tests/golden/smtp-tls/ID.json
(plus logs/ID.log): the settings (``$CERTS`` stands for the folder of the
certificates), the peer's script and transcript (the dialogue after
STARTTLS decrypted), and the instance's log lines from the submission on.

Certificates: made here, once, with the lab's well-known keys
(data/tls/keys, :mod:`mailsim.tls.keys`) and fixed serials and dates, and
saved in tests/golden/smtp-tls/certs/ (``certs.json`` says which key goes
with which certificate); a later run uses the saved files, so the
recordings and the tests always use the same certificates. ``--new-certs``
makes them again (the same bytes, except the EC key, which is random).

Needs root (Postfix's master runs as root). Network: everything is on
127.0.0.1; the instance does no DNS (smtp_host_lookup = native,
disable_dns_lookups = yes).

    .venv/bin/python tools/record_smtp_tls.py [--only ID ...]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import socket
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

from mailsim.realpostfix import DOMAIN, postfix_instance  # noqa: E402
from mailsim.serve import free_port  # noqa: E402
from mailsim.smtp.peer import DEFAULT_EHLO, Script, ScriptedServer  # noqa: E402
import record_client as rc  # noqa: E402  (the recorders' shared pieces, next to us)
from record_client import run_dialogue  # noqa: E402

OUT = REPO / "tests/golden/smtp-tls"
CERTS = OUT / "certs"
SENDER = f"carol@{DOMAIN}"
RCPT = "petre@example.org"
EHLO = "EHLO client.example.org\r\n"
DATE = "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"

#: the peer's EHLO reply with STARTTLS where Postfix's smtpd puts it
EHLO_TLS = [*DEFAULT_EHLO[:3], "STARTTLS", *DEFAULT_EHLO[3:]]
#: the peer's EHLO reply without it
EHLO_PLAIN = list(DEFAULT_EHLO)

#: the certificates: file -> how it is made (issuer None: self-signed)
CERT_SPECS: dict[str, dict] = {
    "ca.pem": dict(subject=[("O", "Example Lab"), ("CN", "Example Lab CA")], ca=True,
                   key="pool-ca", not_before="2024-01-01", not_after="2099-12-31", serial=1),
    "mx.pem": dict(subject=[("CN", "mx.example.org")], san=["mx.example.org", "localhost"],
                   issuer="ca.pem", key="pool", not_before="2024-01-01",
                   not_after="2099-12-31", serial=0x1001),
    "self.pem": dict(subject=[("CN", "mx.example.org")], san=["mx.example.org", "localhost"],
                     key="pool", not_before="2024-01-01", not_after="2099-12-31",
                     serial=0x2001),
    "expired.pem": dict(subject=[("CN", "mx.example.org")], san=["mx.example.org", "localhost"],
                        issuer="ca.pem", key="pool", not_before="2020-01-01",
                        not_after="2021-01-01", serial=0x1002),
    "wrong-name.pem": dict(subject=[("CN", "wrong.example.net")], san=["wrong.example.net"],
                           issuer="ca.pem", key="pool", not_before="2024-01-01",
                           not_after="2099-12-31", serial=0x1003),
    "ec.pem": dict(subject=[("CN", "mx.example.org")], san=["mx.example.org", "localhost"],
                   issuer="ca.pem", key="ec", not_before="2024-01-01", not_after="2099-12-31",
                   serial=0x1004),
    "inter.pem": dict(subject=[("O", "Example Lab"), ("CN", "Example Lab Intermediate CA")],
                      ca=True, issuer="ca.pem", key="pool-ca", not_before="2024-01-01",
                      not_after="2099-12-31", serial=0x3001),
    "mx-inter.pem": dict(subject=[("CN", "mx.example.org")], san=["mx.example.org", "localhost"],
                         issuer="inter.pem", key="pool", not_before="2024-01-01",
                         not_after="2099-12-31", serial=0x3101),
}
#: certificate chains the peer sends: file -> the certificates in it, leaf first
CHAINS = {"mx-chain.pem": ["mx-inter.pem", "inter.pem"]}

LOG1 = {"smtp_tls_loglevel": "1"}
#: a "retry" case is flushed (postqueue -f) this many seconds after the submission
RETRY_AFTER = 11
CAFILE = {"smtp_tls_CAfile": "$CERTS/ca.pem"}

#: id, title, main.cf settings, the peer's certificate (None: it has none), its script
#: (over Script's defaults), the next hop's host in transport_maps ("127.0.0.1"), and
#: "retry": flush the queue that many seconds after the submission, wait for the
#: second attempt
CASES: list[dict] = [
    dict(id="none-offered", title="level none: STARTTLS offered but not used "
                                  "(smtp_tls_note_starttls_offer = yes says so)",
         main_cf={"smtp_tls_security_level": "none", "smtp_tls_note_starttls_offer": "yes",
                  **LOG1},
         cert="self.pem", script={"ehlo": EHLO_TLS}),
    dict(id="may-not-offered", title="level may, the server offers no STARTTLS: plaintext",
         main_cf={"smtp_tls_security_level": "may", **LOG1}, cert=None,
         script={"ehlo": EHLO_PLAIN}),
    dict(id="may-self-signed", title="level may, a self-signed certificate: "
                                     "Untrusted TLS connection, sent",
         main_cf={"smtp_tls_security_level": "may", **LOG1}, cert="self.pem",
         script={"ehlo": EHLO_TLS}),
    dict(id="may-loglevel-0", title="as may-self-signed with smtp_tls_loglevel = 0: "
                                    "no TLS line",
         main_cf={"smtp_tls_security_level": "may", "smtp_tls_loglevel": "0"},
         cert="self.pem", script={"ehlo": EHLO_TLS}),
    dict(id="may-trusted", title="level may, a certificate from the lab CA in smtp_tls_CAfile: "
                                 "Trusted TLS connection",
         main_cf={"smtp_tls_security_level": "may", **CAFILE, **LOG1}, cert="mx.pem",
         script={"ehlo": EHLO_TLS}),
    dict(id="may-ecdsa", title="level may, an ECDSA P-256 certificate (server-signature "
                               "ECDSA)",
         main_cf={"smtp_tls_security_level": "may", **CAFILE, **LOG1}, cert="ec.pem",
         script={"ehlo": EHLO_TLS}),
    dict(id="may-starttls-454", title="level may, STARTTLS answered 454: plaintext in the "
                                      "same session",
         main_cf={"smtp_tls_security_level": "may", **LOG1}, cert="self.pem",
         script={"ehlo": EHLO_TLS,
                 "starttls": "454 4.7.0 TLS not available due to local problem"}),
    dict(id="may-handshake-garbage", title="level may, the server answers the TLS client "
                                           "hello with plain text: deferred on the first "
                                           "attempt",
         main_cf={"smtp_tls_security_level": "may", **LOG1}, cert="self.pem",
         script={"ehlo": EHLO_TLS, "after_starttls": "garbage"}),
    dict(id="may-handshake-fallback", title="as may-handshake-garbage; flushed (postqueue -f) "
                                            "after minimal_backoff_time (10s): the handshake "
                                            "fails again, then plaintext to the same server",
         main_cf={"smtp_tls_security_level": "may", **LOG1, "minimal_backoff_time": "10s",
                  "maximal_backoff_time": "4000s"},
         cert="self.pem", script={"ehlo": EHLO_TLS, "after_starttls": "garbage"},
         retry=RETRY_AFTER),
    dict(id="encrypt-not-offered", title="level encrypt, no STARTTLS offered: deferred 4.7.4",
         main_cf={"smtp_tls_security_level": "encrypt", **LOG1}, cert=None,
         script={"ehlo": EHLO_PLAIN}),
    dict(id="encrypt-self-signed", title="level encrypt, a self-signed certificate: sent",
         main_cf={"smtp_tls_security_level": "encrypt", **LOG1}, cert="self.pem",
         script={"ehlo": EHLO_TLS}),
    dict(id="encrypt-starttls-454", title="level encrypt, STARTTLS answered 454: deferred",
         main_cf={"smtp_tls_security_level": "encrypt", **LOG1}, cert="self.pem",
         script={"ehlo": EHLO_TLS,
                 "starttls": "454 4.7.0 TLS not available due to local problem"}),
    dict(id="encrypt-handshake-garbage", title="level encrypt, plain text instead of a "
                                               "server hello: Cannot start TLS",
         main_cf={"smtp_tls_security_level": "encrypt", **LOG1}, cert="self.pem",
         script={"ehlo": EHLO_TLS, "after_starttls": "garbage"}),
    dict(id="encrypt-handshake-close", title="level encrypt, the server hangs up after 220: "
                                             "Cannot start TLS",
         main_cf={"smtp_tls_security_level": "encrypt", **LOG1}, cert="self.pem",
         script={"ehlo": EHLO_TLS, "after_starttls": "close"}),
    dict(id="verify-localhost", title="level verify, next hop [localhost], the lab CA's "
                                      "certificate for localhost: Verified, sent",
         main_cf={"smtp_tls_security_level": "verify", **CAFILE, **LOG1}, cert="mx.pem",
         script={"ehlo": EHLO_TLS}, nexthop="localhost"),
    dict(id="verify-ip-hostname", title="level verify, next hop [127.0.0.1]: the hostname "
                                        "to match is 127.0.0.1",
         main_cf={"smtp_tls_security_level": "verify", **CAFILE, **LOG1}, cert="mx.pem",
         script={"ehlo": EHLO_TLS}),
    dict(id="verify-self-signed", title="level verify, a self-signed certificate: not "
                                        "verified",
         main_cf={"smtp_tls_security_level": "verify", **CAFILE, **LOG1}, cert="self.pem",
         script={"ehlo": EHLO_TLS}, nexthop="localhost"),
    dict(id="verify-no-cafile", title="level verify, no smtp_tls_CAfile: untrusted issuer",
         main_cf={"smtp_tls_security_level": "verify", **LOG1}, cert="mx.pem",
         script={"ehlo": EHLO_TLS}, nexthop="localhost"),
    dict(id="verify-expired", title="level verify, the lab CA's certificate expired in 2021",
         main_cf={"smtp_tls_security_level": "verify", **CAFILE, **LOG1}, cert="expired.pem",
         script={"ehlo": EHLO_TLS}, nexthop="localhost"),
    dict(id="verify-wrong-name", title="level verify, a trusted certificate for "
                                       "wrong.example.net: hostname mismatch",
         main_cf={"smtp_tls_security_level": "verify", **CAFILE, **LOG1},
         cert="wrong-name.pem", script={"ehlo": EHLO_TLS}, nexthop="localhost"),
    dict(id="verify-not-offered", title="level verify, no STARTTLS offered: deferred 4.7.4",
         main_cf={"smtp_tls_security_level": "verify", **CAFILE, **LOG1}, cert=None,
         script={"ehlo": EHLO_PLAIN}, nexthop="localhost"),
    dict(id="secure-localhost", title="level secure, next hop [localhost] (nexthop, "
                                      "dot-nexthop): Verified",
         main_cf={"smtp_tls_security_level": "secure", **CAFILE, **LOG1}, cert="mx.pem",
         script={"ehlo": EHLO_TLS}, nexthop="localhost"),
    dict(id="secure-cert-match", title="level secure, smtp_tls_secure_cert_match = "
                                       ".example.org: a sub-domain name matches",
         main_cf={"smtp_tls_security_level": "secure", **CAFILE, **LOG1,
                  "smtp_tls_secure_cert_match": ".example.org"},
         cert="mx.pem", script={"ehlo": EHLO_TLS}),
    dict(id="verify-cert-match-nexthop", title="level verify, smtp_tls_verify_cert_match = "
                                               "nexthop, next hop [127.0.0.1]",
         main_cf={"smtp_tls_security_level": "verify", **CAFILE, **LOG1,
                  "smtp_tls_verify_cert_match": "nexthop"},
         cert="mx.pem", script={"ehlo": EHLO_TLS}),
    dict(id="policy-secure-match", title="smtp_tls_policy_maps: [127.0.0.1]:PORT secure "
                                         "match=mx.example.org (global level may)",
         main_cf={"smtp_tls_security_level": "may", **CAFILE, **LOG1,
                  "smtp_tls_policy_maps":
                      "inline:{ {[127.0.0.1]:$PEERPORT = secure match=mx.example.org} }"},
         cert="mx.pem", script={"ehlo": EHLO_TLS}),
    dict(id="policy-verify-mismatch", title="smtp_tls_policy_maps: verify "
                                            "match=mail.example.net: not verified",
         main_cf={"smtp_tls_security_level": "may", **CAFILE, **LOG1,
                  "smtp_tls_policy_maps":
                      "inline:{ {[127.0.0.1]:$PEERPORT = verify match=mail.example.net} }"},
         cert="mx.pem", script={"ehlo": EHLO_TLS}),
    dict(id="policy-none", title="smtp_tls_policy_maps: none for the next hop overrides a "
                                 "global encrypt",
         main_cf={"smtp_tls_security_level": "encrypt", **LOG1,
                  "smtp_tls_policy_maps": "inline:{ [127.0.0.1]:$PEERPORT=none }"},
         cert=None, script={"ehlo": EHLO_PLAIN}),
    dict(id="verify-intermediate", title="level verify, the server sends its certificate and "
                                         "an intermediate CA's; smtp_tls_CAfile has the root",
         main_cf={"smtp_tls_security_level": "verify", **CAFILE, **LOG1}, cert="mx-chain.pem",
         script={"ehlo": EHLO_TLS}, nexthop="localhost"),
    dict(id="verify-intermediate-missing", title="level verify, the server sends no "
                                                 "intermediate: untrusted issuer",
         main_cf={"smtp_tls_security_level": "verify", **CAFILE, **LOG1}, cert="mx-inter.pem",
         script={"ehlo": EHLO_TLS}, nexthop="localhost"),
    dict(id="may-tls-lost-fallback", title="level may, the server hangs up after MAIL FROM over "
                                           "TLS; flushed after minimal_backoff_time: that "
                                           "attempt goes on in plaintext (and fails again)",
         main_cf={"smtp_tls_security_level": "may", **LOG1, "minimal_backoff_time": "10s",
                  "maximal_backoff_time": "4000s"},
         cert="self.pem", script={"ehlo": EHLO_TLS, "close_after": "MAIL"}, retry=RETRY_AFTER),
    dict(id="fingerprint-match", title="level fingerprint, the certificate's SHA-256 "
                                       "fingerprint in smtp_tls_fingerprint_cert_match",
         main_cf={"smtp_tls_security_level": "fingerprint", **LOG1,
                  "smtp_tls_fingerprint_cert_match": "$FP(self.pem)"},
         cert="self.pem", script={"ehlo": EHLO_TLS}),
    dict(id="fingerprint-mismatch", title="level fingerprint, another certificate's "
                                          "fingerprint: not verified",
         main_cf={"smtp_tls_security_level": "fingerprint", **LOG1,
                  "smtp_tls_fingerprint_cert_match": "$FP(mx.pem)"},
         cert="self.pem", script={"ehlo": EHLO_TLS}),
    dict(id="dane", title="level dane without DNSSEC lookups: a warning, then as may",
         main_cf={"smtp_tls_security_level": "dane", **LOG1}, cert="self.pem",
         script={"ehlo": EHLO_TLS}),
    dict(id="dane-only", title="level dane-only without DNSSEC lookups: client TLS "
                               "configuration problem",
         main_cf={"smtp_tls_security_level": "dane-only", **LOG1}, cert="self.pem",
         script={"ehlo": EHLO_TLS}),
]


# -- certificates ---------------------------------------------------------------------------
def _date(s: str) -> dt.datetime:
    return dt.datetime.strptime(s, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)


def make_certs(out: Path, new: bool = False) -> None:
    """Write every certificate of CERT_SPECS and CHAINS (and certs.json) into ``out``;
    the random EC key is made again only when ``new``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from mailsim.tls.keys import key_index, key_pem, lab_key, pool_file

    oids = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME, "C": NameOID.COUNTRY_NAME}
    out.mkdir(parents=True, exist_ok=True)
    made: dict[str, tuple] = {}
    manifest = {}
    for name, spec in CERT_SPECS.items():
        subject = x509.Name([x509.NameAttribute(oids[k], v) for k, v in spec["subject"]])
        cn = spec["subject"][-1][1]
        if spec["key"] == "ec":
            key_file = name.replace(".pem", ".key")
            if (out / key_file).exists() and not new:     # a random key: keep the saved one
                key = serialization.load_pem_private_key((out / key_file).read_bytes(), None)
            else:
                key = ec.generate_private_key(ec.SECP256R1())
                (out / key_file).write_bytes(key_pem(key))
        else:
            ca = spec["key"] == "pool-ca"
            key = lab_key(cn, ca=ca)
            key_file = "data/tls/keys/" + pool_file(key_index(cn, ca=ca), ca=ca).name
        if spec.get("issuer"):
            issuer_cert, issuer_key = made[spec["issuer"]]
            issuer_name = issuer_cert.subject
        else:
            issuer_cert, issuer_key, issuer_name = None, key, subject
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
             .public_key(key.public_key()).serial_number(spec["serial"])
             .not_valid_before(_date(spec["not_before"]))
             .not_valid_after(_date(spec["not_after"]))
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                            critical=False))
        if issuer_cert is not None:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer_key.public_key()), critical=False)
        if spec.get("ca"):
            b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            b = b.add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                              key_encipherment=False, data_encipherment=False,
                                              key_agreement=False, key_cert_sign=True,
                                              crl_sign=True, encipher_only=False,
                                              decipher_only=False), critical=True)
        else:
            b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                critical=False)
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in spec["san"]]), critical=False)
        cert = b.sign(issuer_key, hashes.SHA256())
        made[name] = (cert, key)
        (out / name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        manifest[name] = {"key": key_file, **{k: v for k, v in spec.items() if k != "key"}}
    for name, parts in CHAINS.items():
        (out / name).write_bytes(b"".join((out / p).read_bytes() for p in parts))
        manifest[name] = {"key": manifest[parts[0]]["key"], "chain": parts}
    (out / "certs.json").write_text(json.dumps(manifest, indent=1) + "\n")


def fingerprint(cert: str, certs: Path = CERTS) -> str:
    """The SHA-256 fingerprint of a saved certificate, as Postfix's fingerprint level
    wants it (``AB:CD:...``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    c = x509.load_pem_x509_certificate((certs / cert).read_bytes())
    return ":".join(f"{b:02X}" for b in c.fingerprint(hashes.SHA256()))


def server_context(cert: str, certs: Path = CERTS) -> ssl.SSLContext:
    """The peer's TLS server context for certificate ``cert`` of ``certs``."""
    manifest = json.loads((certs / "certs.json").read_text())
    key = manifest[cert]["key"]
    key_path = REPO / key if key.startswith("data/") else certs / key
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs / cert, key_path)
    return ctx


# -- one case -------------------------------------------------------------------------------
def message(case_id: str) -> str:
    return (f"From: Carol <{SENDER}>\r\nTo: {RCPT}\r\n"
            f"Subject: {case_id}\r\n{DATE}"
            f"Message-ID: <{case_id}@client.example.org>\r\n\r\n"
            "Hello,\r\nthis is a test message.\r\n.\r\n")


def submission(case: dict) -> list[str | None]:
    return [None, EHLO, f"MAIL FROM:<{SENDER}>\r\n", f"RCPT TO:<{RCPT}>\r\n",
            "DATA\r\n", message(case["id"]), "QUIT\r\n"]


def _done(lines: list[str], retry: bool) -> bool:
    """smtp(8) has logged the outcome (for ``retry``: of the second attempt, or sent)."""
    status = [ln for ln in lines if re.search(r"postfix/smtp\[\d+\]: [0-9A-F]+: to=<", ln)]
    if retry:
        return len(status) >= 2 or any("status=sent" in ln for ln in status)
    return bool(status)


def subst(value: str, certs: str, peer_port: int) -> str:
    value = re.sub(r"\$FP\(([\w.-]+)\)", lambda m: fingerprint(m.group(1)), value)
    return value.replace("$CERTS", certs).replace("$PEERPORT", str(peer_port))


def record(case: dict, version: str) -> dict:
    script = Script.from_dict({**Script().to_dict(), **case.get("script", {})})
    ctx = server_context(case["cert"]) if case.get("cert") else None
    certs_dir = Path(tempfile.mkdtemp(prefix="mailsim-tls-certs."))
    certs_dir.chmod(0o755)                 # smtp(8) runs as postfix: it must read the CA file
    try:
        for p in CERTS.glob("*.pem"):
            shutil.copy(p, certs_dir / p.name)
            (certs_dir / p.name).chmod(0o644)
        with ScriptedServer(script, tls=ctx) as peer:
            nexthop = f"[{case.get('nexthop', '127.0.0.1')}]:{peer.port}"
            main_cf = {"transport_maps": f"inline:{{ example.org=smtp:{nexthop} }}",
                       **case.get("main_cf", {})}
            live = {k: subst(v, str(certs_dir), peer.port) for k, v in main_cf.items()}
            port = free_port()
            with postfix_instance(port, live) as pf:
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
                time.sleep(1.0)            # late lines (removed, the disconnect)
                log = pf.log()[since:]
                base = str(pf.base)
    finally:
        shutil.rmtree(certs_dir, ignore_errors=True)
    return {
        "id": case["id"], "title": case["title"], "postfix_version": version,
        "openssl_version": ssl.OPENSSL_VERSION,
        "hostname": socket.gethostname(),
        "instance_base": base,
        "main_cf": {k: re.sub(r"\$FP\(([\w.-]+)\)", lambda m: fingerprint(m.group(1)),
                              v.replace("$PEERPORT", str(peer.port)))
                    for k, v in main_cf.items()},
        "main_cf_effective": effective,
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--new-certs", action="store_true",
                    help="make the certificates again (else the saved ones are used)")
    args = ap.parse_args()
    return rc.record_cases(args, CASES, record,
                           prepare=lambda: make_certs(CERTS, new=args.new_certs))


if __name__ == "__main__":
    sys.exit(main())
