"""Server-side TLS for smtpd(8), on Python's :mod:`ssl` with memory BIOs (no sockets).

What Postfix 3.7.11 does in ``src/tls/tls_server.c``, ``tls_certkey.c`` and
``tls_misc.c``, for mailsim's sans-IO smtpd engine:

* :func:`server_policy` -- ``smtpd_tls_security_level`` (or the legacy
  ``smtpd_use_tls`` / ``smtpd_enforce_tls``): offer STARTTLS? require it?
* :func:`server_init` -- tls_server_init(): the protocols
  (``smtpd_tls_protocols``, ``smtpd_tls_mandatory_protocols``), the cipher
  grade (``smtpd_tls_ciphers``, ``smtpd_tls_mandatory_ciphers``, the
  ``tls_*_cipherlist`` strings and ``smtpd_tls_exclude_ciphers``), the CA
  certificates and the server's keys and certificates, with Postfix's
  warnings when something cannot be loaded (then STARTTLS answers
  ``454 4.7.0 TLS not available due to local problem``). Server paths are
  read inside the host folder (:meth:`mailsim.host.Host.path`).
* :class:`ServerConnection` -- tls_server_start() and tls_server_post_accept()
  for one connection: the handshake over an :class:`ssl.MemoryBIO` pair, then
  encryption of what smtpd says and decryption of what the client sends. The
  same bytes go to an in-process client or to a real socket (``mailsim serve``).
* :class:`TLSInfo` -- what was negotiated, for the log line (``Anonymous TLS
  connection established from ...``) and the Received: header.

``smtpd_tls_loglevel`` 0-4 (and the names ``routine``, ``debug``, ...) as
Postfix: 1 logs the summary line; 2 adds "setting up TLS connection", the
cipher list and the ``SSL_accept:`` handshake states; 3 dumps the handshake
packets; 4 every packet.

Python's ssl does not expose everything OpenSSL tells Postfix: the key
exchange group and the server's signature digest are read from the handshake
messages themselves (CPython's message callback); OpenSSL's error queue is
known only by its last error. docs/differences.md (TLS) lists what differs.

Examples
--------
>>> server_policy_for_level("may")
(True, False)
>>> protocol_limits(">=TLSv1.2")
(0, 771, 0)
>>> protocol_limits("!SSLv2, !SSLv3")
(3, 0, 0)
>>> protocol_limits("TLSv1.4") is None
True
>>> log_mask("1") == LOG_SUMMARY, log_mask("routine, cache") == LOG_SUMMARY | LOG_CACHE
(True, True)
"""
from __future__ import annotations

import base64
import binascii
import errno as _errno
import os
import re
import ssl
import tempfile
import threading
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["ServerPolicy", "server_policy", "server_policy_for_level", "server_init", "ServerTLS",
           "ServerConnection", "TLSInfo", "HandshakeFailed", "protocol_limits", "log_mask",
           "cipher_list", "openssl_error", "LOG_SUMMARY", "LOG_VERBOSE", "LOG_CACHE",
           "LOG_DEBUG", "LOG_TLSPKTS", "LOG_ALLPKTS"]

# -- smtpd_tls_loglevel (tls_misc.c tls_log_table) ------------------------------------------------
LOG_NONE, LOG_SUMMARY, LOG_UNTRUSTED, LOG_PEERCERT = 1 << 0, 1 << 1, 1 << 2, 1 << 3
LOG_CERTMATCH, LOG_VERBOSE, LOG_CACHE, LOG_DEBUG = 1 << 4, 1 << 5, 1 << 6, 1 << 7
LOG_TLSPKTS, LOG_ALLPKTS, LOG_DANE = 1 << 8, 1 << 9, 1 << 10
_LOG_1 = LOG_SUMMARY
_LOG_2 = _LOG_1 | LOG_VERBOSE | LOG_CACHE | LOG_DEBUG
_LOG_3 = _LOG_2 | LOG_TLSPKTS
_LOG_4 = _LOG_3 | LOG_ALLPKTS
_LOG_TABLE = {
    "0": LOG_NONE, "none": LOG_NONE, "1": _LOG_1, "routine": _LOG_1, "2": _LOG_2, "debug": _LOG_2,
    "3": _LOG_3, "ssl-expert": _LOG_3, "4": _LOG_4, "ssl-developer": _LOG_4,
    **{str(n): _LOG_4 for n in range(5, 10)},
    "summary": LOG_SUMMARY, "untrusted": LOG_UNTRUSTED, "peercert": LOG_PEERCERT,
    "certmatch": LOG_CERTMATCH, "verbose": LOG_VERBOSE, "cache": LOG_CACHE, "dane": LOG_DANE,
    "ssl-debug": LOG_DEBUG, "ssl-handshake-packet-dump": LOG_TLSPKTS,
    "ssl-session-packet-dump": LOG_TLSPKTS | LOG_ALLPKTS,
}
_SEP = re.compile(r"[,\s]+")


def log_mask(value: str, param: str = "smtpd_tls_loglevel",
             warn: Callable[[str], None] | None = None) -> int:
    """tls_log_mask(): the feature mask of a loglevel (names in any case, comma or space
    separated); an unknown name gives a warning and no logging at all."""
    mask = 0
    for name in filter(None, _SEP.split(value)):
        bits = _LOG_TABLE.get(name.lower())
        if bits is None:
            if warn:
                warn(f'unknown {param} value "{name}" in "{value}"')
            return 0
        mask |= bits
    return mask


# -- smtpd_tls_security_level -----------------------------------------------------------------------
_LEVELS = ("none", "may", "encrypt", "fingerprint", "dane", "dane-only", "verify", "secure")


@dataclass(frozen=True)
class ServerPolicy:
    """What smtpd's pre-jail init makes of the TLS level: ``use`` (offer STARTTLS),
    ``enforce`` (530 before STARTTLS), warnings to log, or a fatal error."""

    use: bool
    enforce: bool
    warnings: tuple[str, ...] = ()
    fatal: str = ""


def server_policy_for_level(level: str) -> tuple[bool, bool]:
    """(use, enforce) for a valid, supported level name."""
    return {"none": (False, False), "may": (True, False)}.get(level, (True, True))


def server_policy(conf) -> ServerPolicy:
    """smtpd.c pre_jail_init: a non-empty ``smtpd_tls_security_level`` overrides the
    legacy booleans; fingerprint/verify/secure are "unsupported" (encrypt), dane and
    anything unknown are fatal (names are case-sensitive, as in Postfix)."""
    level = conf.get("smtpd_tls_security_level") or ""
    if level:
        if level not in _LEVELS or level in ("dane", "dane-only"):
            return ServerPolicy(False, False, fatal=f'Invalid TLS level "{level}"')
        warn: tuple[str, ...] = ()
        if level in ("fingerprint", "verify", "secure"):
            warn = (f'smtpd_tls_security_level: unsupported TLS level "{level}", using "encrypt"',)
        use, enforce = server_policy_for_level(level)
        return ServerPolicy(use, enforce, warn)
    enforce = conf.bool("smtpd_enforce_tls")
    return ServerPolicy(conf.bool("smtpd_use_tls") or enforce, enforce)


# -- protocols (tls_proto_mask_lims) -------------------------------------------------------------
_PROTO_BITS = {"SSLv2": 1, "SSLv3": 2, "TLSv1": 4, "TLSv1.1": 8, "TLSv1.2": 16, "TLSv1.3": 32}
_VERSIONS = {"None": 0, "SSLv3": 0x300, "TLSv1": 0x301, "TLSv1.1": 0x302, "TLSv1.2": 0x303,
             "TLSv1.3": 0x304}
_KNOWN = 63


def _version(tok: str) -> int | None:
    if tok in _VERSIONS:
        return _VERSIONS[tok]
    t = tok[2:] if tok[:2].lower() == "0x" else tok
    if t == "":
        return 0 if tok == "" else None
    try:
        v = int(t, 16)
    except ValueError:
        return None
    return v if v <= 2 ** 31 - 1 else None


def protocol_limits(plist: str) -> tuple[int, int, int] | None:
    """(excluded protocol bits, floor, ceiling) as tls_proto_mask_lims() computes them,
    or None for an invalid list ("Invalid TLS protocol list ...: disabling TLS support")."""
    exclude = include = floor = ceiling = 0
    for tok in filter(None, re.split(r"[,\s:]+", plist)):
        if tok.startswith(">="):
            v = _version(tok[2:])
            if v is None:
                return None
            floor = v
        elif tok.startswith("<="):
            v = _version(tok[2:])
            if v is None:
                return None
            ceiling = v
        elif tok.startswith("!"):
            if tok[1:] not in _PROTO_BITS:
                return None
            exclude |= _PROTO_BITS[tok[1:]]
        else:
            if tok not in _PROTO_BITS:
                return None
            include |= _PROTO_BITS[tok]
    return (exclude | (_KNOWN & ~include) if include else exclude), floor, ceiling


_PY_VERSIONS = [(0x301, "TLSv1", ssl.TLSVersion.TLSv1), (0x302, "TLSv1.1", ssl.TLSVersion.TLSv1_1),
                (0x303, "TLSv1.2", ssl.TLSVersion.TLSv1_2), (0x304, "TLSv1.3", ssl.TLSVersion.TLSv1_3)]
_OP_NO = {"TLSv1": "OP_NO_TLSv1", "TLSv1.1": "OP_NO_TLSv1_1", "TLSv1.2": "OP_NO_TLSv1_2",
          "TLSv1.3": "OP_NO_TLSv1_3"}


def _apply_protocols(ctx: ssl.SSLContext, limits: tuple[int, int, int]) -> None:
    exclude, floor, ceiling = limits
    allowed = [(v, name, tv) for v, name, tv in _PY_VERSIONS
               if not exclude & _PROTO_BITS[name] and (not floor or v >= floor)
               and (not ceiling or v <= ceiling)]
    with warnings.catch_warnings():          # TLSv1/TLSv1.1 and OP_NO_* are deprecated in Python
        warnings.simplefilter("ignore", DeprecationWarning)
        if not allowed:                      # no protocol left: every handshake fails, as in OpenSSL
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.options |= ssl.OP_NO_TLSv1_3
            return
        lo, hi = allowed[0], allowed[-1]
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED if lo[0] == 0x301 else lo[2]
        ctx.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED if hi[0] == 0x304 else hi[2]
        names = {a[1] for a in allowed}
        for v, name, _ in _PY_VERSIONS:      # a hole in the middle ("!TLSv1.2")
            if lo[0] < v < hi[0] and name not in names:
                ctx.options |= getattr(ssl, _OP_NO[name])


# -- cipher grades (tls_set_ciphers) --------------------------------------------------------------
_GRADES = ("high", "medium", "low", "export", "null")


def cipher_list(conf, grade: str, exclusions: str) -> tuple[str | None, str]:
    """(OpenSSL cipher string, problem): the grade's ``tls_<grade>_cipherlist`` with
    ``:!X`` for each exclusion. The problem is the text of Postfix's warning
    (it follows ``client: ``) when the grade or an exclusion is invalid."""
    if grade not in _GRADES:
        return None, f'invalid cipher grade: "{grade}"'
    base = conf.get(f"tls_{grade}_cipherlist") or ""
    out = base
    for tok in filter(None, re.split(r"[,\s:]+", exclusions)):
        if tok[0] in "!+-@":
            return None, f"invalid unary '!+-@' in cipher exclusion: {tok}"
        out += f":!{tok}"
    return out, ""


# -- OpenSSL error lines ---------------------------------------------------------------------------
_LIB_TEXT = {
    1: "unknown library", 2: "system library", 3: "bignum routines", 4: "rsa routines",
    5: "Diffie-Hellman routines", 6: "digital envelope routines", 7: "memory buffer routines",
    8: "object identifier routines", 9: "PEM routines", 10: "dsa routines",
    11: "x509 certificate routines", 13: "asn1 encoding routines", 14: "configuration file routines",
    15: "common libcrypto routines", 16: "elliptic curve routines", 20: "SSL routines",
    32: "BIO routines", 33: "PKCS7 routines", 34: "X509 V3 routines", 35: "PKCS12 routines",
    36: "random number generator", 37: "DSO support routines", 40: "UI routines",
    57: "Provider routines", 59: "ENCODER routines", 60: "DECODER routines",
}


def _lib_codes() -> dict[str, int]:
    try:
        import _ssl
        return {v: k for k, v in _ssl.lib_codes_to_names.items()}
    except (ImportError, AttributeError):       # pragma: no cover - other Pythons
        return {"SSL": 20, "X509": 11, "PEM": 9, "SYS": 2, "EVP": 6, "BIO": 32}


_LIBS = _lib_codes()


def openssl_error(exc: BaseException, path: str | None = None) -> str:
    """ERR_error_string_n() for what Python's ssl reports (OpenSSL 3 form), e.g.
    ``error:0A00010B:SSL routines::wrong version number``; a system error becomes
    OpenSSL's ``error:80000002:system library::No such file or directory``.

    >>> openssl_error(FileNotFoundError(2, "No such file or directory"))
    'error:80000002:system library::No such file or directory'
    """
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError):
        code = exc.errno or _errno.EIO
        return f"error:{0x80000000 | code:08X}:system library::{os.strerror(code)}"
    lib = getattr(exc, "library", None)
    reason = getattr(exc, "reason", None)
    text = str(exc.args[1] if len(getattr(exc, "args", ())) > 1 else exc)
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)
    text = re.sub(r"\s*\(_ssl\.c:\d+\)$", "", text)
    libcode = _LIBS.get(lib or "", 0)
    rcode = 0
    try:
        import _ssl
        pair = _ssl.err_names_to_codes.get(reason or "")
        if pair and (not libcode or pair[0] == libcode):
            libcode, rcode = pair
    except (ImportError, AttributeError):       # pragma: no cover
        pass
    if not rcode and exc.args and isinstance(exc.args[0], int) and exc.args[0] > 16:
        rcode = exc.args[0] & 0x7FFFFF            # load errors carry the reason code
    if not libcode:
        libcode = 20
    return f"error:{(libcode << 23) | rcode:08X}:{_LIB_TEXT.get(libcode, f'lib({libcode})')}::{text}"


# -- PEM files with keys and certificates (tls_certkey.c) -------------------------------------------
_PEM = re.compile(rb"-----BEGIN ([^\r\n-][^\r\n]*?)-----\r?\n(.*?)-----END ([^\r\n]*?)-----", re.S)
_CERT_NAMES = {b"CERTIFICATE", b"X509 CERTIFICATE"}
_KEY_NAMES = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"DSA PRIVATE KEY"}


def _pem_objects(data: bytes):
    """(name, DER or None if undecodable, headers?) for each PEM object, in order."""
    for m in _PEM.finditer(data):
        name, body = m.group(1), m.group(2)
        headers = b":" in body.split(b"\n", 1)[0]
        b64 = b"".join(line for line in body.split(b"\n") if b":" not in line)
        try:
            der = base64.b64decode(b"".join(b64.split()), validate=True)
        except (binascii.Error, ValueError):
            der = None
        yield name, der, headers


def _load_der_cert(der: bytes):
    from cryptography import x509
    try:
        return x509.load_der_x509_certificate(der)
    except (ValueError, TypeError):
        return None


def _load_der_key(der: bytes | None, encrypted: bool):
    if der is None or encrypted:
        return None
    from cryptography.hazmat.primitives import serialization
    try:
        return serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, Exception):   # unsupported algorithms raise others
        return None


def _spki(obj) -> bytes:
    from cryptography.hazmat.primitives import serialization
    pub = obj.public_key()
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass
class _Chain:
    key: object = None
    cert: object = None
    chain: list = field(default_factory=list)


class _PemLoader:
    """load_pem_bio(): keys and certificate chains from PEM files (the ``chain_files``
    form, or one "mixed" file holding one key and its certificates in any order)."""

    INIT, PKEY, CERT, BOTH, DONE, FAIL, NOGO = "init", "pkey", "cert", "both", "done", "fail", "nogo"

    def __init__(self, origin: str, mixed: bool, warn: Callable[[str], None]) -> None:
        self.origin, self.mixed, self.warn = origin, mixed, warn
        self.state = self.INIT
        self.cur = _Chain()
        self.chains: list[_Chain] = []
        self.keynum = 0
        self.keysrc = ""
        self.source = origin

    def _use_chain(self) -> bool:
        c = self.cur
        ok = c.key is not None and c.cert is not None and _spki(c.key) == _spki(c.cert)
        if ok and any(_key_facts(x.cert)[0] == _key_facts(c.cert)[0] for x in self.chains):
            ok = False                           # that algorithm's slot is taken already
        if ok:
            self.chains.append(c)
        self.cur = _Chain()
        return ok

    def feed(self, source: str, data: bytes) -> None:
        self.source = source
        objnum = 0
        for name, der, headers in _pem_objects(data):
            objnum += 1
            if self.state in (self.FAIL, self.NOGO):
                return
            if der is None:
                self.state = self.FAIL
                return
            if name in _CERT_NAMES:
                self._cert(objnum, der)
            elif name in _KEY_NAMES:
                self._key(objnum, der, headers)
            elif not self.mixed:
                self.warn(f"loading {source}: ignoring PEM type: {name.decode('latin-1')}")

    def _cert(self, objnum: int, der: bytes) -> None:
        cert = _load_der_cert(der)
        if not self.mixed and self.state == self.INIT:
            self.warn(f"error loading chain from {self.source}: key not first")
            self.state = self.NOGO
            return
        if cert is None:
            self.warn(f"error loading certificate (PEM object number {objnum}) from {self.source}")
            self.state = self.FAIL
            return
        if self.state == self.PKEY:
            self.cur.cert = cert
            self.state = self.BOTH if self.mixed else self.CERT
        elif self.state == self.INIT:
            self.cur.cert = cert
            self.state = self.CERT
        else:
            self.cur.chain.append(cert)

    def _key(self, objnum: int, der: bytes, encrypted: bool) -> None:
        key = _load_der_key(der, encrypted)
        if self.state == self.CERT and not self.mixed:
            if not self._use_chain():
                self.warn(f"error loading certificate chain: key at index {self.keynum} in "
                          f"{self.keysrc} does not match the certificate")
                self.state = self.FAIL
                return
        if self.state in (self.CERT, self.INIT):
            if key is None:
                self.warn(f"error loading private key (PEM object number {objnum}) from {self.source}")
                self.state = self.FAIL
                return
            self.cur.key = key
            if self.state == self.INIT or not self.mixed:
                self.state = self.PKEY
            else:
                self.state = self.BOTH
            if not (self.mixed and self.keynum):
                self.keynum, self.keysrc = objnum, self.source
            return
        if self.mixed:
            self.warn(f"ignoring 2nd key at index {objnum} in {self.source} after 1st at {self.keynum}")
            return
        self.warn(f"error loading certificate chain: key at index {self.keynum} in {self.keysrc} "
                  "not followed by a certificate")
        self.state = self.NOGO

    def finish(self) -> list[_Chain] | None:
        st = self.state
        ok = False
        if st == self.FAIL:
            pass                                   # OpenSSL's errors are not known here
        elif st == self.INIT:
            self.warn(f"No PEM data in {self.origin}")
        elif st == self.PKEY:
            self.warn(f"No certs for key at index {self.keynum} in {self.keysrc}")
        elif st == self.CERT and self.mixed:
            self.warn(f"No private key found in {self.origin}")
        elif st in (self.CERT, self.BOTH):
            if self._use_chain():
                ok = True
            else:
                self.warn(f"key at index {self.keynum} in {self.keysrc} does not match next certificate")
        if ok:
            return self.chains
        self.warn(f"error loading private keys and certificates from: {self.origin}: "
                  "disabling TLS support")
        return None


# -- what was negotiated ---------------------------------------------------------------------------
def kex_text(name: str, curve: str = "", bits: int = 0) -> str:
    """tls_log_summary()'s key-exchange part, the same in smtpd's and smtp's lines.

    >>> kex_text("X25519"), kex_text("ECDHE", "prime256v1"), kex_text("DHE", bits=2048)
    (' key-exchange X25519', ' key-exchange ECDHE (prime256v1)', ' key-exchange DHE (2048 bits)')
    """
    s = f" key-exchange {name}"
    if curve:
        s += f" ({curve})"
    elif bits > 0:
        s += f" ({bits} bits)"
    return s


def sig_text(name: str, curve: str = "", bits: int = 0, digest: str = "") -> str:
    """tls_log_summary()'s server-signature part (and its digest).

    >>> sig_text("RSA-PSS", bits=2048, digest="SHA256")
    ' server-signature RSA-PSS (2048 bits) server-digest SHA256'
    """
    s = f" server-signature {name}"
    if curve:
        s += f" ({curve})"
    elif bits > 0:
        s += f" ({bits} bits)"
    if digest:
        s += f" server-digest {digest}"
    return s


@dataclass
class TLSInfo:
    """TLScontext's facts for the log and the Received: header (TLS 1.3 adds the
    key exchange and the server's signature; TLS 1.2 and older have neither)."""

    protocol: str
    cipher_name: str
    cipher_usebits: int
    cipher_algbits: int
    kex_name: str = ""
    kex_curve: str = ""
    kex_bits: int = 0
    srvr_sig_name: str = ""
    srvr_sig_curve: str = ""
    srvr_sig_bits: int = 0
    srvr_sig_dgst: str = ""
    peer_cert: bool = False

    def _kex(self) -> str:
        return kex_text(self.kex_name, self.kex_curve, self.kex_bits)

    def _sig(self) -> str:
        return sig_text(self.srvr_sig_name, self.srvr_sig_curve, self.srvr_sig_bits,
                        self.srvr_sig_dgst)

    def summary(self, namaddr: str) -> str:
        """tls_log_summary(): the one line of smtpd_tls_loglevel 1.

        >>> TLSInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256, "X25519", "", 0,
        ...         "RSA-PSS", "", 2048, "SHA256").summary("localhost[127.0.0.1]")
        'Anonymous TLS connection established from localhost[127.0.0.1]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256'
        """
        msg = (f"{'Untrusted' if self.peer_cert else 'Anonymous'} TLS connection established from "
               f"{namaddr}: {self.protocol} with cipher {self.cipher_name} "
               f"({self.cipher_usebits}/{self.cipher_algbits} bits)")
        if self.kex_name:
            msg += self._kex()
        if self.srvr_sig_name:
            msg += self._sig()
        return msg

    def received_lines(self, ask_ccert: bool = False) -> list[str]:
        """The Received: header's TLS comment (smtpd_tls_received_header = yes), one
        string per header line, each beginning with a TAB.

        >>> TLSInfo("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", 256, 256).received_lines()
        ['\\t(using TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits))', '\\t(No client certificate requested)']
        """
        out = []
        buf = (f"\t(using {self.protocol} with cipher {self.cipher_name} "
               f"({self.cipher_usebits}/{self.cipher_algbits} bits)")
        cont = False
        if self.kex_name:
            out.append(buf)
            buf = "\t" + self._kex()
            cont = True
        if self.srvr_sig_name:
            if cont:
                buf += self._sig()
            else:
                out.append(buf)
                buf = "\t" + self._sig()
        out.append(buf + ")")
        out.append("\t(Client did not present a certificate)" if ask_ccert
                   else "\t(No client certificate requested)")
        return out


# -- the application context (tls_server_init) -------------------------------------------------------
_GROUPS = {0x001D: ("X25519", ""), 0x001E: ("X448", ""), 0x0017: ("ECDHE", "prime256v1"),
           0x0018: ("ECDHE", "secp384r1"), 0x0019: ("ECDHE", "secp521r1"),
           0x0100: ("DHE", 2048), 0x0101: ("DHE", 3072), 0x0102: ("DHE", 4096),
           0x0103: ("DHE", 6144), 0x0104: ("DHE", 8192)}
#: TLS 1.3 SignatureScheme -> (key kind, digest name as OBJ_nid2sn gives it)
_SCHEMES = {0x0804: ("rsa", "SHA256"), 0x0805: ("rsa", "SHA384"), 0x0806: ("rsa", "SHA512"),
            0x0809: ("rsa-pss", "SHA256"), 0x080A: ("rsa-pss", "SHA384"), 0x080B: ("rsa-pss", "SHA512"),
            0x0403: ("ec", "SHA256"), 0x0503: ("ec", "SHA384"), 0x0603: ("ec", "SHA512"),
            0x0807: ("ed25519", ""), 0x0808: ("ed448", ""),
            0x0401: ("rsa", "SHA256"), 0x0501: ("rsa", "SHA384"), 0x0601: ("rsa", "SHA512"),
            0x0201: ("rsa", "SHA1"), 0x0203: ("ec", "SHA1")}
_CURVES = {"secp256r1": "prime256v1", "secp192r1": "prime192v1"}


def _key_facts(cert) -> tuple[str, str, str, int]:
    """(kind, signature name, curve, bits) of a certificate's key, as tls_misc.c names them."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
    pub = cert.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        return "rsa", "RSA-PSS", "", pub.key_size
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return "ec", "ECDSA", _CURVES.get(pub.curve.name, pub.curve.name), 0
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return "ed25519", "ED25519", "", 0
    if isinstance(pub, ed448.Ed448PublicKey):
        return "ed448", "ED448", "", 0
    if isinstance(pub, dsa.DSAPublicKey):
        return "dsa", "DSA", "", 0
    return "other", "", "", 0


class ServerTLS:
    """smtpd's TLS application context (``smtpd_tls_ctx``): an :class:`ssl.SSLContext`
    configured from main.cf, the certificates it serves, the loglevel."""

    def __init__(self, ctx: ssl.SSLContext, *, log_mask: int, cipher_string: str | None,
                 cipher_problem: str, cipher_error: str, certs: list) -> None:
        self.ctx = ctx
        self.log_mask = log_mask
        self.cipher_string = cipher_string
        self.cipher_problem = cipher_problem   # invalid grade/exclusion: warning text
        self.cipher_error = cipher_error       # OpenSSL refused the cipher string
        self.certs = certs                     # [(kind, sig name, curve, bits)]
        self._recorders: dict[int, list] = {}
        self._lock = threading.Lock()
        self.alg_bits = {ci["name"]: (ci.get("strength_bits", 0), ci.get("alg_bits", 0))
                         for ci in ctx.get_ciphers()} if cipher_string is not None else {}
        self.has_messages = False
        try:
            ctx._msg_callback = self._on_message      # CPython's (private) message trace
            self.has_messages = True
        except (AttributeError, TypeError, ValueError):   # pragma: no cover - other Pythons
            pass

    def _on_message(self, conn, direction, version, content_type, msg_type, data) -> None:
        try:
            rec = self._recorders.get(id(conn))
            if rec is not None:
                rec.append((direction, int(content_type), int(msg_type), bytes(data)))
        except Exception:                    # pragma: no cover - never break a handshake
            pass

    def record(self, obj) -> list:
        rec: list = []
        with self._lock:
            self._recorders[id(obj)] = rec
        return rec

    def unrecord(self, obj) -> None:
        with self._lock:
            self._recorders.pop(id(obj), None)


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()
_PARAMS = ("smtpd_tls_cert_file", "smtpd_tls_key_file", "smtpd_tls_dcert_file", "smtpd_tls_dkey_file",
           "smtpd_tls_eccert_file", "smtpd_tls_eckey_file", "smtpd_tls_chain_files",
           "smtpd_tls_CAfile", "smtpd_tls_CApath", "smtpd_tls_protocols",
           "smtpd_tls_mandatory_protocols", "smtpd_tls_ciphers", "smtpd_tls_mandatory_ciphers",
           "smtpd_tls_exclude_ciphers", "smtpd_tls_mandatory_exclude_ciphers", "smtpd_tls_loglevel",
           "tls_high_cipherlist", "tls_medium_cipherlist", "tls_low_cipherlist",
           "tls_export_cipherlist", "tls_null_cipherlist", "tls_preempt_cipherlist",
           "tls_append_default_CA", "smtpd_tls_session_cache_timeout", "tls_session_ticket_cipher")


def _file_stamp(host, name: str) -> tuple:
    try:
        st = host.path(name).stat()
        return (name, st.st_mtime_ns, st.st_size, st.st_ino)
    except (OSError, ValueError):
        return (name, None)


def server_init(host, enforce: bool, pid: int | None = None,
                log: Callable[[str], None] | None = None) -> ServerTLS | None:
    """tls_server_init() for ``host``'s smtpd: the context, or None after the warnings
    Postfix logs ("... disabling TLS support", "No server certs available. TLS won't
    be enabled"). Results are kept per host while main.cf and the files stay the same;
    the init lines are logged (through ``log``) once per smtpd process id, as
    Postfix logs them once when a process starts (in-process, each session is a
    process of its own)."""
    c = host.conf
    key = (enforce,) + tuple(c.get(p) or "" for p in _PARAMS)
    files = [f for p in _PARAMS[:9] for f in re.split(r"[,\s]+", c.get(p) or "")]
    key += tuple(_file_stamp(host, f) for f in files if f and f != "none")
    with _CACHE_LOCK:
        per_host = _CACHE.setdefault(host, {})
        entry = per_host.get(key)
        if entry is None:
            lines: list[str] = []
            result = _init(host, enforce, lines.append)
            entry = per_host[key] = (result, lines, set())
            if len(per_host) > 16:                     # old configurations
                per_host.pop(next(iter(per_host)))
        result, lines, logged = entry
        if log is not None and (pid is None or pid not in logged):
            if pid is not None:
                logged.add(pid)
            for line in lines:
                log(line)
    return result


def _init(host, enforce: bool, log: Callable[[str], None]) -> ServerTLS | None:
    c = host.conf

    def warn(text: str) -> None:
        log(f"warning: {text}")

    def lib(exc: BaseException) -> None:
        warn(f"TLS library problem: {openssl_error(exc)}")

    mask = log_mask(c.get("smtpd_tls_loglevel") or "0", warn=warn)
    cert_file = c.get("smtpd_tls_cert_file") or ""
    if cert_file.lower() == "none":
        no_cert_ok, cert_file = True, ""
    else:
        no_cert_ok = False
    chain_files = c.get("smtpd_tls_chain_files") or ""
    ec_file = c.get("smtpd_tls_eccert_file") or ""
    d_file = c.get("smtpd_tls_dcert_file") or ""
    have_cert = bool(cert_file or ec_file or d_file)
    if chain_files:
        if not have_cert:
            have_cert = True
        else:
            warn("Both smtpd_tls_chain_files and one or more of the legacy  smtpd_tls_cert_file, "
                 "smtpd_tls_eccert_file or smtpd_tls_dcert_file are non-empty; the legacy  "
                 "parameters will be ignored")
    if not (have_cert or no_cert_ok):
        warn("No server certs available. TLS won't be enabled")
        return None
    if mask & LOG_VERBOSE:
        log("initializing the server-side TLS engine")
    protocols = c.get("smtpd_tls_mandatory_protocols" if enforce else "smtpd_tls_protocols") or ""
    limits = protocol_limits(protocols)
    if limits is None:
        warn(f'Invalid TLS protocol list "{protocols}": disabling TLS support')
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.verify_mode = ssl.CERT_NONE
    if not c.bool("tls_preempt_cipherlist"):
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    # tickets (one per handshake) while the session cache lasts, as tls_server_init
    ticketable = bool(c.get("tls_session_ticket_cipher")) and c.time("smtpd_tls_session_cache_timeout") > 0
    if ticketable:
        ctx.num_tickets = 1
    else:
        ctx.options |= ssl.OP_NO_TICKET
    _apply_protocols(ctx, limits)
    # CA certificates
    ca_file = c.get("smtpd_tls_CAfile") or ""
    ca_path = c.get("smtpd_tls_CApath") or ""
    if ca_file or ca_path:
        try:
            ctx.load_verify_locations(cafile=str(host.path(ca_file)) if ca_file else None,
                                      capath=str(host.path(ca_path)) if ca_path else None)
            if c.bool("tls_append_default_CA"):
                ctx.set_default_verify_paths()
        except (OSError, ValueError) as e:          # ssl.SSLError is an OSError
            what = ", ".join(f'{n}="{v}"' for n, v in (("CAfile", ca_file), ("CApath", ca_path)) if v)
            log(f"cannot load Certification Authority data, {what}: disabling TLS support")
            lib(e if isinstance(e, OSError) else OSError(_errno.EACCES, ""))
            return None
    # keys and certificates
    certs: list = []
    if chain_files:
        files = [f for f in re.split(r"[,\s]+", chain_files) if f]
        if not _load_pem_files(host, ctx, files, chain_files, False, warn, certs):
            return None
    else:
        for kind, cf, kf in (("RSA", cert_file, c.get("smtpd_tls_key_file") or ""),
                             ("DSA", d_file, c.get("smtpd_tls_dkey_file") or ""),
                             ("ECDSA", ec_file, c.get("smtpd_tls_eckey_file") or "")):
            if cf and not _set_cert_stuff(host, ctx, kind, cf, kf, warn, lib, certs):
                return None
    # the cipher list (tls_set_ciphers; Postfix applies it per connection)
    grade = c.get("smtpd_tls_mandatory_ciphers" if enforce else "smtpd_tls_ciphers") or ""
    excl = " ".join(filter(None, [c.get("smtpd_tls_exclude_ciphers") or "",
                                  c.get("smtpd_tls_mandatory_exclude_ciphers") if enforce else ""]))
    clist, problem = cipher_list(c, grade, excl)
    error = ""
    if clist is not None:
        try:
            # Postfix: SSL_CTX_set_security_level(ctx, 0), for opportunistic TLS
            ctx.set_ciphers(clist + ":@SECLEVEL=0")
        except ssl.SSLError as e:
            error = openssl_error(e)
            clist = None
            problem = f'error setting cipher grade: "{grade}"'
    return ServerTLS(ctx, log_mask=mask, cipher_string=clist, cipher_problem=problem,
                     cipher_error=error, certs=certs)


def _read(host, name: str) -> bytes:
    try:
        return host.path(name).read_bytes()
    except PermissionError as e:
        raise OSError(_errno.EACCES, os.strerror(_errno.EACCES)) from e


def _set_cert_stuff(host, ctx, kind: str, cert_file: str, key_file: str, warn, lib, certs) -> bool:
    """set_cert_stuff(): a certificate (chain) file and its private key file."""
    if cert_file == key_file:
        return _load_pem_files(host, ctx, [cert_file], cert_file, True, warn, certs)
    cert_exc: BaseException | None = None
    first = None
    try:
        data = _read(host, cert_file)
        for name, der, _ in _pem_objects(data):
            if name in _CERT_NAMES or name == b"TRUSTED CERTIFICATE":
                first = _load_der_cert(der) if der is not None else None
                break
    except OSError as e:
        cert_exc = e
    if cert_exc is None and first is None:
        cert_exc = ssl.SSLError(0x6C, "[PEM: NO_START_LINE] no start line")
        cert_exc.library, cert_exc.reason = "PEM", "NO_START_LINE"
    if cert_exc is not None:
        warn(f'cannot get {kind} certificate from file "{cert_file}": disabling TLS support')
        lib(cert_exc)
        return False
    asked = []

    def no_tty() -> bytes:          # smtpd has no terminal to ask for a pass phrase
        asked.append(True)
        return b""
    try:
        key_path = str(host.path(key_file)) if key_file else ""
        if not key_file:
            raise OSError(_errno.ENOENT, os.strerror(_errno.ENOENT))
        _read(host, key_file)
        ctx.load_cert_chain(str(host.path(cert_file)), key_path, password=no_tty)
    except (OSError, ValueError) as e:   # ssl.SSLError is an OSError
        warn(f'cannot get {kind} private key from file "{key_file}": disabling TLS support')
        lib(e if isinstance(e, OSError) else OSError(_errno.EIO, ""))
        return False
    certs.append(_key_facts(first))
    return True


def _load_pem_files(host, ctx, files: list[str], origin: str, mixed: bool, warn, certs) -> bool:
    """load_mixed_file() / load_chain_files(): parse as Postfix does, then hand each
    key and chain to OpenSSL (through a private temporary PEM file)."""
    loader = _PemLoader(origin, mixed, warn)
    for f in files:
        try:
            data = _read(host, f)
        except OSError as e:
            warn(f"error opening chain file: {f}: {os.strerror(e.errno or _errno.EIO)}")
            return False
        loader.feed(f, data)
        if loader.state in (loader.FAIL, loader.NOGO):
            break
    chains = loader.finish()
    if chains is None:
        return False
    from cryptography.hazmat.primitives import serialization
    for ch in chains:
        pem = ch.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
        for cert in [ch.cert, *ch.chain]:
            pem += cert.public_bytes(serialization.Encoding.PEM)
        fd, tmp = tempfile.mkstemp(prefix="mailsim-tls-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            ctx.load_cert_chain(tmp, tmp)
        except (OSError, ValueError) as e:
            warn(f"TLS library problem: {openssl_error(e if isinstance(e, OSError) else OSError(5, ''))}")
            warn(f"error loading private keys and certificates from: {origin}: disabling TLS support")
            return False
        finally:
            os.unlink(tmp)
        certs.append(_key_facts(ch.cert))
    return True


# -- one connection (tls_server_start, tls_server_post_accept) -------------------------------------
class HandshakeFailed(Exception):
    """The TLS handshake failed; the lines Postfix logs were written already."""


_ALERTS = {0: "close notify", 10: "unexpected_message", 20: "bad record mac", 22: "record overflow",
           40: "handshake failure", 42: "bad certificate", 43: "unsupported certificate",
           46: "certificate unknown", 47: "illegal parameter", 48: "unknown CA", 50: "decode error",
           51: "decrypt error", 70: "protocol version", 71: "insufficient security",
           80: "internal error", 86: "inappropriate fallback", 90: "user canceled",
           109: "missing extension", 110: "unsupported extension", 112: "unrecognized name",
           116: "no application protocol"}
_WRITE_STATES = {2: "SSLv3/TLS write server hello", 8: "TLSv1.3 write encrypted extensions",
                 11: "SSLv3/TLS write certificate", 12: "SSLv3/TLS write key exchange",
                 13: "SSLv3/TLS write certificate request", 14: "SSLv3/TLS write server done",
                 15: "TLSv1.3 write server certificate verify", 20: "SSLv3/TLS write finished",
                 4: "SSLv3/TLS write session ticket"}
_READ_STATES = {1: "SSLv3/TLS read client hello", 16: "SSLv3/TLS read client key exchange",
                11: "SSLv3/TLS read client certificate", 20: "SSLv3/TLS read finished",
                15: "SSLv3/TLS read certificate verify"}
_HEADER, _CCS, _ALERT, _HANDSHAKE = 256, 20, 21, 22


def _dump(log: Callable[[str], None], data: bytes) -> None:
    """tls_dump_buffer(): 16 bytes a line, hex then text; trailing spaces/NULs summarised."""
    last = len(data)
    while last > 0 and data[last - 1] in (0, 32):
        last -= 1
    for row in range(0, last, 16):
        chunk = data[row:min(row + 16, last)]
        hexpart = "".join(f"{b:02x}{'|' if i == 7 else ' '}" for i, b in enumerate(chunk))
        hexpart += "   " * (16 - len(chunk))
        text = "".join((chr(b) if 32 <= b < 127 else ".") + (" " if i == 7 else "")
                       for i, b in enumerate(chunk))
        log(f"{row:04x} {hexpart} {text}")
    if last < len(data):
        log(f"{last:04x} - <SPACES/NULLS>")


class ServerConnection:
    """The server side of one TLS connection, without I/O.

    Bytes from the client go to :meth:`handshake` (until it returns True) and
    then to :meth:`decrypt`; what smtpd says goes to :meth:`encrypt`;
    :meth:`output` gives the bytes to send to the client. ``log(text)`` writes
    one smtpd log line.
    """

    #: fake BIO and buffer addresses for the packet dumps (Postfix prints pointers)
    _BIO, _BUF = 0x55D0C0DE2A40, 0x55D0C0DE6B03

    def __init__(self, app: ServerTLS, namaddr: str, log: Callable[[str], None]) -> None:
        self.app = app
        self.namaddr = namaddr
        self.log = log
        self.mask = app.log_mask
        self.established = False
        self.info: TLSInfo | None = None
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._dump_in = b""
        self._events_seen = 0
        self._started = False
        if self.mask & LOG_VERBOSE:
            log(f"setting up TLS connection from {namaddr}")
        if app.cipher_string is None:
            log(f"warning: {namaddr}: {app.cipher_problem}")
            if app.cipher_error:
                log(f"warning: TLS library problem: {app.cipher_error}")
            raise HandshakeFailed(app.cipher_problem)
        if self.mask & LOG_VERBOSE:
            log(f'{namaddr}: TLS cipher list "{app.cipher_string}"')
        self.obj = app.ctx.wrap_bio(self._in, self._out, server_side=True)
        self._events = app.record(self.obj)

    # -- packet dumps (smtpd_tls_loglevel 3 and 4) ---------------------------------------------
    def _dumping(self) -> bool:
        return bool(self.mask & LOG_TLSPKTS) and (not self.established or bool(self.mask & LOG_ALLPKTS))

    def _dump_read(self, data: bytes) -> None:
        """OpenSSL reads a record's 5-byte header, then its body."""
        self._dump_in += data
        buf = self._dump_in
        while len(buf) >= 5:
            n = int.from_bytes(buf[3:5], "big")
            if len(buf) < 5 + n:
                break
            for part in (buf[:5], buf[5:5 + n]):
                self.log(f"read from {self._BIO:08X} [{self._BUF:08X}] ({len(part)} bytes => "
                         f"{len(part)} (0x{len(part):X}))")
                _dump(self.log, part)
            buf = buf[5 + n:]
        self._dump_in = buf

    def _dump_write(self, data: bytes) -> None:
        self.log(f"write to {self._BIO:08X} [{self._BUF:08X}] ({len(data)} bytes => "
                 f"{len(data)} (0x{len(data):X}))")
        _dump(self.log, data)

    # -- SSL_accept states (smtpd_tls_loglevel 2) ------------------------------------------------
    def _states(self) -> None:
        if not self.mask & LOG_DEBUG:
            self._events_seen = len(self._events)
            return
        if not self._started:
            self._started = True
            self.log("SSL_accept:before SSL initialization")
            self.log("SSL_accept:before SSL initialization")
        tls13 = any(d == "write" and ct == _HANDSHAKE and mt == 8 for d, ct, mt, _ in self._events)
        for d, ct, mt, data in self._events[self._events_seen:]:
            if ct == _ALERT and len(data) >= 2 and not (data[0] == 1 and data[1] == 0):
                self.log(f"SSL3 alert {d}:{'fatal' if data[0] == 2 else 'warning'}:"
                         f"{_ALERTS.get(data[1], 'unknown')}")
            elif ct == _CCS:
                self.log(f"SSL_accept:SSLv3/TLS {d} change cipher spec")
            elif ct == _HANDSHAKE:
                state = (_WRITE_STATES if d == "write" else _READ_STATES).get(mt)
                if state:
                    self.log(f"SSL_accept:{state}")
                if d == "write" and mt == 20 and tls13:
                    self.log("SSL_accept:TLSv1.3 early data")
                    self.log("SSL_accept:TLSv1.3 early data")
        self._events_seen = len(self._events)

    # -- the handshake -----------------------------------------------------------------------------
    def handshake(self, data: bytes) -> bool:
        """Feed client bytes; True once the handshake is complete (then the summary is
        logged). Raises :class:`HandshakeFailed` after logging why."""
        if data:
            if self.mask & LOG_TLSPKTS:
                self._dump_read(data)
            self._in.write(data)
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            self._states()
            return False
        except ssl.SSLError as e:
            self._states()
            self.app.unrecord(self.obj)
            if isinstance(e, (ssl.SSLEOFError, ssl.SSLSyscallError)) or not getattr(e, "reason", None):
                self.log(f"SSL_accept error from {self.namaddr}: lost connection")
            else:
                self.log(f"SSL_accept error from {self.namaddr}: -1")
                self.log(f"warning: TLS library problem: {openssl_error(e)}")
            raise HandshakeFailed(str(e)) from None
        self._states()
        self.app.unrecord(self.obj)
        self.established = True
        self.info = self._post_accept()
        if self.mask & LOG_SUMMARY:
            self.log(self.info.summary(self.namaddr))
        return True

    def eof_in_handshake(self) -> None:
        """The client went away during the handshake (tls_server_start's "lost connection")."""
        self.app.unrecord(self.obj)
        self.log(f"SSL_accept error from {self.namaddr}: lost connection")

    def _post_accept(self) -> TLSInfo:
        name, _, usebits = self.obj.cipher() or ("", "", 0)
        algbits = self.app.alg_bits.get(name, (usebits, usebits))[1] or usebits
        info = TLSInfo(self.obj.version() or "", name, usebits, algbits)
        if info.protocol != "TLSv1.3":
            return info                       # tls_get_signature_params: TLS 1.3 only
        hello = [d for dr, ct, mt, d in self._events if dr == "write" and ct == _HANDSHAKE and mt == 2]
        group = _server_hello_group(hello[-1]) if hello else None
        if group in _GROUPS:
            kex, extra = _GROUPS[group]
            info.kex_name = kex
            if isinstance(extra, int):
                info.kex_bits = extra
            else:
                info.kex_curve = extra
        elif group is not None:
            info.kex_name = f"group-0x{group:04x}"
        verify = [d for dr, ct, mt, d in self._events if dr == "write" and ct == _HANDSHAKE and mt == 15]
        kind, digest = _SCHEMES.get(int.from_bytes(verify[-1][4:6], "big"), ("", "")) \
            if verify and len(verify[-1]) >= 6 else ("", "")
        facts = None
        for f in self.app.certs:
            if f[0] == kind or (kind == "rsa-pss" and f[0] == "rsa"):
                facts = f
                break
        if facts is None and len(self.app.certs) == 1:
            facts = self.app.certs[0]          # no message trace: the only certificate
        if facts is not None:
            _, info.srvr_sig_name, info.srvr_sig_curve, info.srvr_sig_bits = facts
            info.srvr_sig_dgst = digest
        return info

    # -- after the handshake ----------------------------------------------------------------------
    def decrypt(self, data: bytes) -> tuple[bytes, str]:
        """Client bytes -> (plaintext, end): end is "" while the connection goes on,
        "eof" after the client's close_notify, "error" after a TLS error (logged)."""
        if data:
            if self._dumping():
                self._dump_read(data)
            self._in.write(data)
        out = []
        end = ""
        while True:
            try:
                chunk = self.obj.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                end = "eof"
                break
            except ssl.SSLError as e:
                if getattr(e, "reason", None):
                    self.log(f"warning: TLS library problem: {openssl_error(e)}")
                end = "error"
                break
            if not chunk:
                end = "eof"
                break
            out.append(chunk)
        return b"".join(out), end

    def encrypt(self, data: bytes) -> None:
        if data:
            try:
                self.obj.write(data)
            except ssl.SSLError:               # pragma: no cover - the connection is broken
                pass

    def shutdown(self) -> None:
        """tls_server_stop(): send close_notify (tls_fast_shutdown_enable: once, no wait)."""
        try:
            self.obj.unwrap()
        except (ssl.SSLError, ValueError):
            pass

    def output(self) -> bytes:
        data = self._out.read()
        if data and self._dumping():
            self._dump_write(data)
        return data


def _server_hello_group(msg: bytes) -> int | None:
    """The key_share group of a ServerHello handshake message (type, length, body)."""
    try:
        p = 4 + 2 + 32
        sid = msg[p]
        p += 1 + sid + 2 + 1
        end = p + 2 + int.from_bytes(msg[p:p + 2], "big")
        p += 2
        while p + 4 <= end:
            typ = int.from_bytes(msg[p:p + 2], "big")
            n = int.from_bytes(msg[p + 2:p + 4], "big")
            if typ == 51 and n >= 2:
                return int.from_bytes(msg[p + 4:p + 6], "big")
            p += 4 + n
    except IndexError:
        return None
    return None
