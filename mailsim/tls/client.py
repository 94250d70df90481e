"""TLS for smtp(8), the client side (Postfix's src/tls/tls_client.c, tls_verify.c,
tls_misc.c and src/smtp/smtp_tls_policy.c).

What is real and what is Postfix's
----------------------------------
The handshake is Python's :mod:`ssl` (the machine's OpenSSL), over a real
socket or over :class:`ssl.MemoryBIO` for in-memory channels. What Postfix
*decides* is modelled here: the security level of a next hop
(:func:`tls_policy`: ``smtp_tls_security_level``, ``smtp_tls_policy_maps``,
the legacy ``smtp_use_tls``/``smtp_enforce_tls``), whether the server's
certificate is trusted (:func:`verify_chain`, on :func:`mailsim.tls.certs.verify`:
the chain against ``smtp_tls_CAfile``/``smtp_tls_CApath``) and matched (``hostname``,
``nexthop``, ``dot-nexthop`` or literal names, as OpenSSL's
X509_check_host() with ``X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS``), and what is
logged (:func:`summary_line`, :func:`verify_error_line`,
:func:`handshake_error_lines`).

Like Postfix, the client always completes the handshake (its verify
callback never fails it) and judges the certificate afterwards: at
``verify``/``secure`` a certificate that is not trusted and matched defers
the mail with ``Server certificate not verified`` (4.7.5), at ``may`` and
``encrypt`` it is only logged as ``Untrusted``.

``key-exchange`` and ``server-digest`` in the summary line are read from the
handshake messages themselves (the ServerHello's key share, the
CertificateVerify's signature scheme) through the message callback of
Python's ssl module (``SSLContext._msg_callback``, meant for debugging); a
Python without it logs the line without those two parts. The certificate
chain comes from the Certificate message the same way (Python 3.11's ssl
shows only the server's own certificate).

>>> level_number("verify") > level_number("encrypt") > level_number("may")
True
>>> check_name(["mx.example.org", "*.example.net"], [], "example.org", True)
True
>>> check_name(["mx.example.org"], [], "example.org", False)
False
>>> check_name(["*.example.net"], [], "a.example.net", False), check_name(["*.example.net"], [], "a.b.example.net", False)
(True, False)
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from .context import kex_text, sig_text

__all__ = ["LEVELS", "level_number", "TLSPolicy", "tls_policy", "client_context",
           "HandshakeWatch", "PeerInfo", "peer_info", "VerifyResult", "verify_chain",
           "check_name", "load_trust", "fingerprint_match", "summary_line", "verify_error_line",
           "handshake_error_lines", "oneline", "VERIFY_TEXT"]

#: Postfix's security levels in order (tls.h's TLS_LEV_*)
LEVELS = {"none": 0, "may": 1, "encrypt": 2, "fingerprint": 3, "half-dane": 4, "dane": 5,
          "dane-only": 6, "verify": 7, "secure": 8}


def level_number(name: str) -> int:
    """The level's rank (-2 for an unknown name, as TLS_LEV_INVALID)."""
    return LEVELS.get(name.lower(), -2)


# -- the per-destination policy (smtp_tls_policy.c) -------------------------------------------
@dataclass
class TLSPolicy:
    """What smtp(8) will do about TLS with one next hop."""
    level: str                         # none, may, encrypt, verify, secure; "invalid"
    match: list[str] = field(default_factory=list)    # names to match at verify/secure
    #: log lines (with "warning: " where Postfix warns) to write when the policy is made
    notes: list[str] = field(default_factory=list)
    protocols: str = ""
    servername: str = ""

    @property
    def required(self) -> bool:
        """TLS_REQUIRED(): above ``may``."""
        return self.level not in ("none", "may", "invalid")

    @property
    def must_match(self) -> bool:
        """TLS_MUST_MATCH(): above ``encrypt``."""
        return self.level in ("verify", "secure", "fingerprint")


def _global_level(conf) -> str:
    lev = (conf.get("smtp_tls_security_level") or "").strip().lower()
    if lev:
        return lev
    if conf.bool("smtp_enforce_tls"):
        return "verify" if conf.bool("smtp_tls_enforce_peername") else "encrypt"
    return "may" if conf.bool("smtp_use_tls") else "none"


def _policy_keys(dest: str) -> list[str]:
    """The keys smtp_tls_policy_maps is asked: ``[host]:port`` as is; a domain,
    then its parents with a leading dot (``example.org``, ``.org``)."""
    if dest.startswith("[") or ":" in dest or "/" in dest:
        return [dest]
    keys = [dest]
    rest = dest
    while "." in rest[1:]:
        rest = rest[rest.index(".", 1):]
        keys.append(rest)
    return keys


def tls_policy(conf, dest: str, *, lookup=None) -> TLSPolicy:
    """The TLS policy for next hop ``dest`` (``[127.0.0.1]:2525``, ``example.org``).

    ``lookup(key)`` asks smtp_tls_policy_maps (None when there is none; it may
    raise :class:`mailsim.maps.MapError`). The ``dane`` levels need DNSSEC
    lookups, which mailsim's DNS never does: ``dane`` falls back to ``may`` with
    Postfix's warning, ``dane-only`` makes the policy invalid (the mail is
    deferred: ``client TLS configuration problem``).

    >>> class C(dict):
    ...     def bool(self, k): return self.get(k) == "yes"
    >>> tls_policy(C(smtp_tls_security_level="encrypt"), "[10.0.0.1]:25").level
    'encrypt'
    >>> tls_policy(C(smtp_tls_security_level="may"), "[x]:25",
    ...            lookup=lambda k: "secure match=.example.org").match
    ['.example.org']
    >>> p = tls_policy(C(smtp_tls_security_level="dane"), "[x]:25"); p.level, p.notes
    ('may', ['warning: [x]:25: dane configured with dnssec lookups disabled'])
    """
    level = _global_level(conf)
    notes: list[str] = []
    match: list[str] | None = None
    protocols = servername = ""
    if level_number(level) == -2:
        # Postfix: fatal: invalid tls security level (smtp(8) dies; qmgr defers)
        return TLSPolicy("invalid", notes=[f"fatal: invalid tls security level: \"{level}\""])
    if lookup is not None:
        title = "smtp_tls_policy_maps"
        for key in _policy_keys(dest):
            try:
                value = lookup(key)
            except Exception:               # a table that cannot be read (MapError)
                notes.append(f"warning: {title}, next-hop destination \"{key}\": "
                             f"policy table lookup error")
                return TLSPolicy("invalid", notes=notes)
            if value is None:
                continue
            where = f"{title}, next-hop destination \"{key}\""
            words = value.replace(",", " ").split()
            if not words:
                notes.append(f"warning: {where}: invalid empty policy")
                return TLSPolicy("invalid", notes=notes)
            site = words[0].lower()
            if level_number(site) == -2:
                notes.append(f"warning: {where}: invalid security level \"{words[0]}\"")
                return TLSPolicy("invalid", notes=notes)
            if level_number(site) < LEVELS["may"]:
                for w in words[1:]:
                    notes.append(f"warning: {where}: ignoring attribute \"{w}\" with TLS disabled")
            else:
                for w in words[1:]:
                    name, eq, val = w.partition("=")
                    name = name.lower()
                    if not eq:
                        notes.append(f"warning: {where}: malformed attribute/value pair "
                                     f"\"{w}\": missing '=' after attribute name")
                        return TLSPolicy("invalid", notes=notes)
                    if name == "match":
                        if site not in ("verify", "secure", "fingerprint"):
                            notes.append(f"warning: {where}: attribute \"match\" invalid at "
                                         f"security level \"{site}\"")
                            return TLSPolicy("invalid", notes=notes)
                        # names are separated by ":", fingerprints (which have colons) by "|"
                        sep = "|" if site == "fingerprint" else ":"
                        match = (match or []) + [m for m in val.split(sep) if m]
                    elif name == "protocols":
                        protocols = val
                    elif name == "servername":
                        servername = val
                    elif name in ("ciphers", "exclude", "tafile", "connection_reuse"):
                        pass                 # accepted, not simulated
                    else:
                        notes.append(f"warning: {where}: invalid attribute name: \"{name}\"")
                        return TLSPolicy("invalid", notes=notes)
            level = site
            break
    if level in ("dane", "dane-only"):
        text = f"{dest}: {level} configured with dnssec lookups disabled"
        notes.append(f"warning: {text}")
        if level == "dane":
            level = "may"
        else:
            return TLSPolicy("invalid", notes=notes)
    if level == "fingerprint" and match is None:
        match = [m for m in re.split(r"[\s,]+", conf.get("smtp_tls_fingerprint_cert_match")
                                     or "") if m]
        if not match:
            notes.append(f"warning: nexthop domain {_domain(dest)}: configured at fingerprint "
                         "security level, but with no fingerprints to match.")
            return TLSPolicy("invalid", notes=notes)
    if match is None and level in ("verify", "secure"):
        param = "smtp_tls_verify_cert_match" if level == "verify" else "smtp_tls_secure_cert_match"
        default = "hostname" if level == "verify" else "nexthop, dot-nexthop"
        match = [m for m in re.split(r"[\s,:]+", conf.get(param) or default) if m]
    if not protocols and level != "none":
        protocols = conf.get("smtp_tls_protocols" if level == "may" else
                             "smtp_tls_mandatory_protocols") or ">=TLSv1"
    if not servername:
        servername = conf.get("smtp_tls_servername") or ""
    return TLSPolicy(level, match or [], notes, protocols, servername)


def _domain(dest: str) -> str:
    """smtp_parse_destination(): ``[127.0.0.1]:2525`` -> ``127.0.0.1``."""
    d = dest
    if d.startswith("["):
        return d[1:d.index("]")] if "]" in d else d[1:]
    return d.rsplit(":", 1)[0] if d.count(":") == 1 else d


# -- the client context ------------------------------------------------------------------------
_VERSIONS = {"sslv2": None, "sslv3": ssl.TLSVersion.SSLv3, "tlsv1": ssl.TLSVersion.TLSv1,
             "tlsv1.1": ssl.TLSVersion.TLSv1_1, "tlsv1.2": ssl.TLSVersion.TLSv1_2,
             "tlsv1.3": ssl.TLSVersion.TLSv1_3}
_ORDER = ["sslv3", "tlsv1", "tlsv1.1", "tlsv1.2", "tlsv1.3"]


def _protocol_range(spec: str) -> tuple[str | None, str | None]:
    """``>=TLSv1``, ``<=TLSv1.2``, ``!SSLv2, !SSLv3``, ``TLSv1.2 TLSv1.3`` -> (min, max)."""
    lo, hi = 0, len(_ORDER) - 1
    include: set[str] = set()
    exclude: set[str] = set()
    for tok in re.split(r"[\s,:]+", spec.strip().lower()):
        if not tok:
            continue
        if tok.startswith(">="):
            if tok[2:] in _ORDER:
                lo = max(lo, _ORDER.index(tok[2:]))
        elif tok.startswith("<="):
            if tok[2:] in _ORDER:
                hi = min(hi, _ORDER.index(tok[2:]))
        elif tok.startswith("!"):
            exclude.add(tok[1:])
        elif tok in _ORDER:
            include.add(tok)
    allowed = [i for i in range(lo, hi + 1) if _ORDER[i] not in exclude
               and (not include or _ORDER[i] in include)]
    if not allowed:
        return None, None
    return _ORDER[allowed[0]], _ORDER[allowed[-1]]


def client_context(conf, policy: TLSPolicy, resolve=None) -> ssl.SSLContext:
    """An SSL context as tls_client_init() makes one: no verification inside the
    handshake (it is judged afterwards), the policy's protocols, the client's own
    certificate when ``smtp_tls_cert_file`` names one (``resolve`` maps the
    simulated server's paths to real files)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    lo, hi = _protocol_range(policy.protocols or ">=TLSv1")
    try:
        if lo and _VERSIONS.get(lo) and _VERSIONS[lo] > ctx.minimum_version:
            ctx.minimum_version = _VERSIONS[lo]
        if hi and _VERSIONS.get(hi):
            ctx.maximum_version = _VERSIONS[hi]
    except (ValueError, ssl.SSLError):
        pass
    cert = (conf.get("smtp_tls_cert_file") or "").strip()
    if cert:
        key = (conf.get("smtp_tls_key_file") or "").strip() or cert
        resolve = resolve or (lambda p: Path(p))
        try:
            ctx.load_cert_chain(resolve(cert), resolve(key))
        except (OSError, ssl.SSLError):
            pass                         # Postfix: warning, and no client certificate
    return ctx


# -- what the handshake messages say (tls_get_signature_params) ------------------------------------
#: TLS 1.3 named groups -> (key-exchange name, curve)
_GROUPS = {0x001D: ("X25519", ""), 0x001E: ("X448", ""), 0x0017: ("ECDHE", "prime256v1"),
           0x0018: ("ECDHE", "secp384r1"), 0x0019: ("ECDHE", "secp521r1"),
           0x0100: ("DHE", "2048"), 0x0101: ("DHE", "3072"), 0x0102: ("DHE", "4096"),
           0x0103: ("DHE", "6144"), 0x0104: ("DHE", "8192")}
#: signature schemes -> the digest's short name (None: no pre-hash, as Ed25519)
_SCHEMES = {0x0401: "SHA256", 0x0501: "SHA384", 0x0601: "SHA512", 0x0403: "SHA256",
            0x0503: "SHA384", 0x0603: "SHA512", 0x0804: "SHA256", 0x0805: "SHA384",
            0x0806: "SHA512", 0x0809: "SHA256", 0x080A: "SHA384", 0x080B: "SHA512",
            0x0807: None, 0x0808: None, 0x0201: "SHA1", 0x0203: "SHA1"}


class HandshakeWatch:
    """Reads the handshake messages of one connection (``SSLContext._msg_callback``):
    the key-exchange group, the server's signature scheme and its certificate chain."""

    def __init__(self) -> None:
        self.group: int | None = None
        self.scheme: int | None = None
        self.chain: list[bytes] = []
        self.available = False

    def attach(self, ctx: ssl.SSLContext) -> None:
        if hasattr(ctx, "_msg_callback"):
            try:
                ctx._msg_callback = self._callback
                self.available = True
            except (AttributeError, TypeError):
                self.available = False

    def _callback(self, conn, direction, version, content_type, msg_type, data) -> None:
        try:
            if direction != "read" or int(content_type) != 22 or len(data) < 4:
                return
            body = bytes(data[4:])
            if msg_type == 2:                    # ServerHello
                self._server_hello(body)
            elif msg_type == 11:                 # Certificate
                self._certificate(body, int(version) >= 0x0304)
            elif msg_type == 15 and len(body) >= 2:   # CertificateVerify
                self.scheme = int.from_bytes(body[:2], "big")
        except Exception:                        # a debugging hook never breaks delivery
            pass

    def _server_hello(self, b: bytes) -> None:
        p = 2 + 32                               # version, random
        p += 1 + b[p]                            # session id
        p += 2 + 1                               # cipher suite, compression
        if p + 2 > len(b):
            return
        end = p + 2 + int.from_bytes(b[p:p + 2], "big")
        p += 2
        while p + 4 <= end:
            typ = int.from_bytes(b[p:p + 2], "big")
            ln = int.from_bytes(b[p + 2:p + 4], "big")
            if typ == 0x0033 and ln >= 2:        # key_share: the server's group
                self.group = int.from_bytes(b[p + 4:p + 6], "big")
            p += 4 + ln

    def _certificate(self, b: bytes, tls13: bool) -> None:
        p = 0
        if tls13:
            p = 1 + b[0]                         # certificate_request_context
        end = p + 3 + int.from_bytes(b[p:p + 3], "big")
        p += 3
        chain = []
        while p + 3 <= end:
            ln = int.from_bytes(b[p:p + 3], "big")
            chain.append(b[p + 3:p + 3 + ln])
            p += 3 + ln
            if tls13:
                p += 2 + int.from_bytes(b[p:p + 2], "big")
        self.chain = chain


@dataclass
class PeerInfo:
    """What tls_client_post_connect() collects for the summary line."""
    protocol: str
    cipher: str
    usebits: int
    algbits: int
    chain: list                          # cryptography certificates, leaf first
    kex: str = ""                        # X25519, ECDHE, DHE
    kex_curve: str = ""
    kex_bits: int = 0
    sig: str = ""                        # RSA-PSS, ECDSA, ED25519
    sig_curve: str = ""
    sig_bits: int = 0
    sig_digest: str = ""


def peer_info(tls, ctx: ssl.SSLContext, watch: HandshakeWatch | None = None) -> PeerInfo:
    """The protocol, cipher and server-signature details of a finished handshake
    (``tls``: an :class:`ssl.SSLSocket` or :class:`ssl.SSLObject`)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    name, _proto, bits = tls.cipher() or ("", "", 0)
    algbits = bits
    for suite in ctx.get_ciphers():
        if suite.get("name") == name:
            algbits = suite.get("alg_bits", bits)
            break
    ders = list(watch.chain) if watch and watch.chain else []
    leaf = tls.getpeercert(binary_form=True)
    if leaf and (not ders or ders[0] != leaf):
        ders = [leaf]
    chain = []
    for d in ders:
        try:
            chain.append(x509.load_der_x509_certificate(d))
        except ValueError:
            break
    info = PeerInfo(tls.version() or "", name, bits or 0, algbits or 0, chain)
    if info.protocol != "TLSv1.3":
        return info                      # Postfix logs these details for TLS 1.3 only
    if watch and watch.group is not None:
        kex, extra = _GROUPS.get(watch.group, ("", ""))
        info.kex = kex
        if kex == "DHE":
            info.kex_bits = int(extra)
        else:
            info.kex_curve = extra
    if chain:
        pub = chain[0].public_key()
        if isinstance(pub, rsa.RSAPublicKey):
            info.sig, info.sig_bits = "RSA-PSS", pub.key_size
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            info.sig = "ECDSA"
            info.sig_curve = {"secp256r1": "prime256v1"}.get(pub.curve.name, pub.curve.name)
        elif isinstance(pub, ed25519.Ed25519PublicKey):
            info.sig = "ED25519"
        elif isinstance(pub, ed448.Ed448PublicKey):
            info.sig = "ED448"
        if watch and watch.scheme is not None:
            info.sig_digest = _SCHEMES.get(watch.scheme) or ""
    return info


def summary_line(kind: str, namaddrport: str, p: PeerInfo) -> str:
    """tls_log_summary(): ``Trusted TLS connection established to NAME[ADDR]:PORT: ...``."""
    s = (f"{kind} TLS connection established to {namaddrport}: {p.protocol} with cipher "
         f"{p.cipher} ({p.usebits}/{p.algbits} bits)")
    if p.kex:
        s += kex_text(p.kex, p.kex_curve, p.kex_bits)
    if p.sig:
        s += sig_text(p.sig, p.sig_curve, p.sig_bits, p.sig_digest)
    return s


# -- the certificate (tls_verify.c, OpenSSL's X509_verify_cert) ------------------------------------
#: X509_verify_cert_error_string() of OpenSSL 3.0, for the errors modelled here
VERIFY_TEXT = {
    0: "ok", 2: "unable to get issuer certificate", 7: "certificate signature failure",
    9: "certificate is not yet valid", 10: "certificate has expired",
    18: "self-signed certificate", 19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate", 24: "invalid CA certificate",
    26: "unsupported certificate purpose", 62: "hostname mismatch", 64: "IP address mismatch",
    65: "no matching DANE TLSA records",
}


@dataclass
class VerifyResult:
    """The first error at the lowest depth (Postfix's update_error_state()), or 0."""
    code: int = 0
    depth: int = -1
    cert: object = None                  # the certificate the error is about
    trusted: bool = False                # X509_V_OK: chain trusted (and names matched)

    @property
    def text(self) -> str:
        return VERIFY_TEXT.get(self.code, f"error {self.code}")


_SN = {"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
       "2.5.4.11": "OU", "1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.25": "DC",
       "2.5.4.5": "serialNumber"}


def oneline(name) -> str:
    """X509_NAME_oneline(): ``/O=Example Lab/CN=Example Lab CA``."""
    out = []
    for rdn in name.rdns:
        for a in rdn:
            value = "".join(c if 32 <= ord(c) < 127 else "\\x%02X" % ord(c) for c in str(a.value))
            out.append(f"/{_SN.get(a.oid.dotted_string, a.oid.dotted_string)}={value}")
    return "".join(out)


def load_trust(cafile: str | os.PathLike | None, capath: str | os.PathLike | None) -> list:
    """The certificates of ``smtp_tls_CAfile`` (PEM, several) and ``smtp_tls_CApath``
    (the files OpenSSL looks up there: named ``HASH.N`` as ``c_rehash`` /
    ``openssl rehash`` make them -- the hash itself is not checked); unreadable files
    give nothing."""
    from cryptography import x509
    out = []
    files = []
    if cafile:
        files.append(Path(cafile))
    if capath and Path(capath).is_dir():
        files += sorted(p for p in Path(capath).iterdir()
                        if re.fullmatch(r"[0-9a-f]{8}\.\d+", p.name) and p.is_file())
    for f in files:
        try:
            data = f.read_bytes()
        except OSError:
            continue
        if b"-----BEGIN CERTIFICATE-----" not in data:
            continue
        try:
            out += x509.load_pem_x509_certificates(data)
        except ValueError:
            continue
    return out


def _signed_by(cert, issuer) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except Exception:
        return False


def _dns_names(cert) -> tuple[list[str], list[str]]:
    from cryptography import x509
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is None:
        cns = [str(a.value) for a in cert.subject.get_attributes_for_oid(
            x509.oid.NameOID.COMMON_NAME)]
        return cns, []
    return (san.get_values_for_type(x509.DNSName),
            [str(ip) for ip in san.get_values_for_type(x509.IPAddress)])


def check_name(dns: list[str], ips: list[str], name: str, subdomain: bool) -> bool:
    """X509_check_host() / X509_check_ip_asc() for one name (``subdomain``: any name
    below ``name``, Postfix's ``.example.org`` and ``dot-nexthop``); wildcards only as
    a whole left-most label, one label deep."""
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    if ip is not None and not subdomain:
        return any(ipaddress.ip_address(a) == ip for a in ips)
    want = name.lower().rstrip(".")
    for d in dns:
        d = d.lower().rstrip(".")
        if subdomain:
            if d.endswith("." + want) and not d.startswith("*."):
                return True
            continue
        if d == want:
            return True
        if d.startswith("*.") and "." in want:
            head, rest = want.split(".", 1)
            if head and rest == d[2:] and "." in rest:
                return True
    return False


def _check_ids(cert, names: list[tuple[str, bool]]) -> int:
    """OpenSSL's check_id() for Postfix's names: 0, 62 (hostname mismatch) or 64 (IP
    address mismatch). SSL_add1_host() keeps an IP address apart (one only): the
    host names must match (any of them), and so must the IP address."""
    dns, ips = _dns_names(cert)
    hosts = [(n, sub) for n, sub in names if sub or not _is_ip(n)]
    ip = next((n for n, sub in names if not sub and _is_ip(n)), None)
    if hosts and not any(check_name(dns, ips, n, sub) for n, sub in hosts):
        return 62
    if ip is not None and not check_name(dns, ips, ip, False):
        return 64
    return 0


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def verify_chain(chain: list, trust: list, names: list[tuple[str, bool]] | None = None,
                 now: _dt.datetime | None = None) -> VerifyResult:
    """OpenSSL's verification as Postfix's callback sees it: ``chain`` is what the
    server sent (leaf first), ``trust`` the CA certificates, ``names`` the
    (name, subdomain?) pairs to match (None: no name check, as at may/encrypt).

    The chain, CA flags, signatures and dates are :func:`mailsim.tls.certs.verify`'s
    (OpenSSL's order: build the chain -- 18, 19, 20 --, CA flags -- 24 --, then
    signatures and dates from the top down -- 7, 9, 10); here come the server
    purpose (26, with the extensions) and the names (62/64, before the signatures)
    as Postfix hands them to OpenSSL, and Postfix's choice among the errors: the
    first one at the lowest depth (update_error_state()).
    """
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from .certs import verify as _verify
    from .x509text import dn_oneline

    res = VerifyResult()
    if not chain:
        return res
    leaf = chain[0]
    # certificates the server sent may complete the chain, but never anchor it
    extra = [c for c in chain[1:] if not (c.subject == c.issuer and _signed_by(c, c))]
    pool = list(trust) + extra
    r = _verify(leaf, pool, None, when=now)
    errors = [(code, depth) for code, depth, _ in r.errors]
    late = next((i for i, (code, _) in enumerate(errors) if code in (7, 9, 10)), len(errors))
    mine = []
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.SERVER_AUTH not in eku and \
                x509.ObjectIdentifier("2.5.29.37.0") not in eku:
            mine.append((26, 0))
    except x509.ExtensionNotFound:
        pass
    if names:
        code = _check_ids(leaf, names)
        if code:
            mine.append((code, 0))
    errors[late:late] = mine
    for code, depth in errors:
        if res.depth >= 0 and res.depth <= depth:
            continue
        res.code, res.depth = code, depth
    if res.code:
        if res.depth == 0:
            res.cert = leaf
        else:
            subject = r.chain[res.depth] if res.depth < len(r.chain) else None
            res.cert = next((c for c in pool if dn_oneline(c.subject) == subject), None)
    res.trusted = res.code == 0
    return res


def fingerprint_match(leaf, fingerprints: list[str], digest: str = "sha256") -> VerifyResult:
    """The ``fingerprint`` level: the server's certificate or its public key has one of
    the digests (hex, colons optional; Postfix's synthetic "3 0 255" / "3 1 255" TLSA
    records). No CA, no names, no dates. A mismatch is OpenSSL's DANE error 65."""
    from cryptography.hazmat.primitives import hashes, serialization
    algo = {"sha256": hashes.SHA256, "sha1": hashes.SHA1, "md5": hashes.MD5,
            "sha384": hashes.SHA384, "sha512": hashes.SHA512}.get(digest.lower(), hashes.SHA256)
    res = VerifyResult()
    if leaf is None:
        return res
    spki = leaf.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    h = hashes.Hash(algo())
    h.update(spki)
    have = {leaf.fingerprint(algo()).hex(), h.finalize().hex()}
    want = {f.replace(":", "").lower() for f in fingerprints}
    if have & want:
        res.trusted = True
    else:
        res.code, res.depth, res.cert = 65, 0, leaf
    return res


def verify_error_line(namaddrport: str, r: VerifyResult) -> str | None:
    """tls_log_verify_error(): the line Postfix logs for a failed verification."""
    if r.code == 0:
        return None
    purpose = "CA" if r.depth > 0 else "server"
    if r.code == 27:
        return (f"certificate verification failed for {namaddrport}: "
                "not trusted by local or TLSA policy")
    if r.code == 18:
        return f"certificate verification failed for {namaddrport}: self-signed certificate"
    if r.code in (19, 20):
        issuer = oneline(r.cert.issuer) if r.cert is not None else "<unknown>"
        return f"certificate verification failed for {namaddrport}: untrusted issuer {issuer}"
    if r.code == 9:
        return (f"{purpose} certificate verification failed for {namaddrport}: "
                "certificate not yet valid")
    if r.code == 10:
        return (f"{purpose} certificate verification failed for {namaddrport}: "
                "certificate has expired")
    if r.code == 26:
        return (f"certificate verification failed for {namaddrport}: not designated for "
                f"use as a {purpose} certificate")
    return (f"{purpose} certificate verification failed for {namaddrport}: "
            f"num={r.code}:{r.text}")


# -- a failed handshake (tls_client_start, tls_print_errors) -----------------------------------------
#: where OpenSSL 3.0 raises the errors seen in tests/golden/smtp-tls (file:line); Python's
#: ssl does not say, so the recordings do -- other errors are logged without it
_WHERE = {"error:0A00010B:": "../ssl/record/ssl3_record.c:350"}


def handshake_error_lines(namaddrport: str, exc: BaseException) -> list[tuple[str, str]]:
    """What Postfix logs when SSL_connect() fails: ``SSL_connect error to X: -1`` and
    a ``warning: TLS library problem: error:CODE:LIB::REASON:FILE:LINE:`` line (the
    error text is :func:`mailsim.tls.context.openssl_error`'s); ``...: lost
    connection`` when the server hung up without a TLS error; the system's error
    text when the connection broke. Pairs of (level, text), level "info" or "warning".

    >>> handshake_error_lines("mx[127.0.0.1]:25", ssl.SSLEOFError(8, "EOF"))
    [('info', 'SSL_connect error to mx[127.0.0.1]:25: lost connection')]
    """
    import errno as _errno
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return [("info", f"SSL_connect error to {namaddrport}: lost connection")]
    if isinstance(exc, ssl.SSLError) and getattr(exc, "reason", None) and \
            not isinstance(exc, ssl.SSLSyscallError):
        from .context import openssl_error
        text = openssl_error(exc)
        where = next((w for code, w in _WHERE.items() if text.startswith(code)), None)
        return [("info", f"SSL_connect error to {namaddrport}: -1"),
                ("warning", f"TLS library problem: {text}" + (f":{where}:" if where else ""))]
    err = getattr(exc, "errno", None)
    if err and err not in (_errno.EAGAIN,):
        return [("info", f"SSL_connect error to {namaddrport}: {os.strerror(err)}")]
    return [("info", f"SSL_connect error to {namaddrport}: lost connection")]
