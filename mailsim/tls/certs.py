"""Certificates for lab hosts: self-signed ones, a lab CA, CSRs, and looking inside.

What a learner does with ``openssl`` on a real server, for a simulated host
(the files land in the host folder, at the server paths Postfix reads):

* ``openssl req -nodes -x509 -newkey rsa:2048 -keyout KEY -out CERT -days 356
  -subj /CN=mail.example.com`` -- :func:`self_signed`
* ``openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt
  -subj "/CN=mailsim Lab CA"`` -- :func:`make_ca`
* ``openssl req -new -key KEY -out REQ.csr -subj /CN=...`` -- :func:`csr`
* ``openssl x509 -req -in REQ.csr -CA ca.crt -CAkey ca.key -CAcreateserial
  -out CERT -days N`` -- :func:`sign`
* all three for one host, and the CA certificate installed -- :func:`issue`
* ``openssl x509 -in CERT -noout -subject -issuer -dates -ext subjectAltName
  -fingerprint -sha256`` -- :func:`describe` and :meth:`CertInfo.text`
  (``-text``: :meth:`CertInfo.openssl_text`)
* comparing ``openssl x509 -noout -modulus`` with ``openssl rsa -noout
  -modulus`` -- :func:`check_pair`
* ``openssl verify -CAfile ca.crt -verify_hostname NAME CERT`` -- :func:`verify`

The same commands, typed as on a server, are ``mailsim --root HOST openssl ...``
(:mod:`mailsim.openssl_cmd`).

Where the files go
------------------
* host key and certificate: ``/etc/postfix/tls/key.pem`` (mode 0600,
  unencrypted: Postfix cannot type a pass phrase) and
  ``/etc/postfix/tls/cert.pem`` -- for ``smtpd_tls_key_file`` and
  ``smtpd_tls_cert_file``;
* the request: ``/etc/postfix/tls/req.csr``;
* the lab CA's certificate, on every host it issued for:
  :data:`LAB_CA_FILE` = ``/etc/ssl/certs/lab-ca.pem`` -- for
  ``smtpd_tls_CAfile`` and ``smtp_tls_CAfile`` (as if installed with
  ``update-ca-certificates``);
* the CA itself (``ca.crt``, ``ca.key``, ``ca.srl``): a directory you name,
  ``LAB/ca/`` for a lab, ``/root/ca/`` inside a host that plays CA.

:meth:`TLSFiles.settings` gives the main.cf lines that point Postfix at them.

Determinism (why a "fresh" key is optional)
--------------------------------------------
Notebooks and tests compare certificates with saved copies, so the same host
on the same simulated clock must give the same PEM, byte for byte:

* the key comes from a small pool of **well-known lab keys**
  (``data/tls/keys/``, made once by ``tools/make_tls_keys.py``), chosen by the
  certificate's name (:mod:`mailsim.tls.keys`) -- public like Debian's
  snakeoil key, **never use them outside the lab**; ``fresh=True`` makes a new
  random key instead (``cryptography`` cannot seed RSA key generation). Two
  certificates for the same name get the same key (as when one re-certifies a
  key); for a key that does *not* match, use another name or ``fresh=True``;
* the dates come from the host's (or lab's) clock, whole seconds;
* serial numbers are 159-bit numbers, like openssl's random ones, but derived
  (SHA-256) from what is being certified; a CA's ``ca.srl`` counts on from
  there, as ``-CAcreateserial`` does;
* signatures are RSA PKCS#1 v1.5 with SHA-256, which is deterministic.

Only an encrypted key (``passphrase=``) differs between runs: its salt is random.

Differences from openssl 3.0: ``sign`` (``x509 -req``) always writes a
version 3 certificate with subject and authority key identifiers (as OpenSSL
3.2 and later do; 3.0 writes version 1 unless extensions are copied), and the
lab CA also gets ``keyUsage = critical, keyCertSign, cRLSign`` so that strict
verifiers (Python 3.13's default) accept it.

Examples
--------
>>> import tempfile
>>> from mailsim.host import init_host
>>> h = init_host(tempfile.mkdtemp() + "/mx", hostname="mail.example.com")
>>> files = self_signed(h)
>>> print(describe(files.cert).text())          # doctest: +ELLIPSIS
subject=CN = mail.example.com
issuer=CN = mail.example.com
notBefore=Nov 25 09:00:00 2026 GMT
notAfter=Nov 16 09:00:00 2027 GMT
sha256 Fingerprint=...
>>> check_pair(files.key, files.cert), oct(files.key.stat().st_mode & 0o777)
(True, '0o600')
>>> verify(files.cert, when=h).reason
'self-signed certificate'

A lab CA that issues a certificate for the host:

>>> ca = make_ca(tempfile.mkdtemp(), clock=h.clock)
>>> files = issue(ca, h, names=["mail.example.com", "example.com"])
>>> info = describe(files.cert)
>>> info.issuer, info.san, info.self_signed
('CN = mailsim Lab CA', ['mail.example.com', 'example.com'], False)
>>> r = verify(files.cert, files.ca, "mail.example.com", when=h)
>>> r.ok, r.postfix
(True, 'Verified')
>>> verify(files.cert, files.ca, "mx.example.org", when=h).reason
'hostname mismatch'
>>> files.settings()["smtp_tls_CAfile"]
'/etc/ssl/certs/lab-ca.pem'
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import ipaddress
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from .errors import TLSError
from .keys import fresh_key, is_encrypted, key_pem, lab_key, load_key
from . import x509text as _x509text
from .x509text import (cert_text, dn_oneline, extension_text, fingerprint,
                       openssl_date, parse_subj, sig_alg_name)

__all__ = [
    "self_signed", "make_ca", "load_ca", "csr", "sign", "issue", "describe", "check_pair",
    "load_pair", "is_encrypted", "verify", "CertInfo", "VerifyResult", "TLSFiles", "CA",
    "TLSError", "KEY_FILE", "CERT_FILE", "CSR_FILE", "LAB_CA_FILE", "HOST_CA_DIR",
    "new_self_signed", "new_csr", "new_signed", "load_cert", "load_certs", "load_csr",
    "parse_ext", "VERIFY_REASONS", "next_serial", "serial_file_for",
]

#: where a host's key and certificate go unless told otherwise
KEY_FILE = "/etc/postfix/tls/key.pem"
CERT_FILE = "/etc/postfix/tls/cert.pem"
CSR_FILE = "/etc/postfix/tls/req.csr"
#: where :func:`issue` installs the lab CA's certificate on a host (smtpd_tls_CAfile,
#: smtp_tls_CAfile), as ``update-ca-certificates`` would list it under /etc/ssl/certs
LAB_CA_FILE = "/etc/ssl/certs/lab-ca.pem"
#: where :func:`make_ca` keeps a CA made on a host (the administrator's home)
HOST_CA_DIR = "/root/ca"

#: OpenSSL's X509_V_ERR_* codes that :func:`verify` reports, with OpenSSL 3's words
VERIFY_REASONS = {
    0: "ok",
    2: "unable to get issuer certificate",
    7: "certificate signature failure",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    24: "invalid CA certificate",
    62: "hostname mismatch",
    64: "IP address mismatch",
}
#: errors after which ``openssl verify`` goes on checking (its callback lets them pass)
_CONTINUABLE = {10, 18, 24}

_DIGESTS = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
            "sha1": hashes.SHA1}


# -- small helpers ---------------------------------------------------------------------------
def _instant(when=None) -> _dt.datetime:
    """A moment as an aware UTC datetime in whole seconds, from: None (the wall
    clock), epoch seconds, a datetime, a clock (``.now()``), or a host or lab (its clock)."""
    if when is None:
        t = time.time()
    elif isinstance(when, _dt.datetime):
        d = when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)
        return d.astimezone(_dt.timezone.utc).replace(microsecond=0)
    elif isinstance(when, (int, float)):
        t = float(when)
    elif hasattr(when, "clock"):
        t = when.clock.now()
    elif callable(getattr(when, "now", None)):
        t = when.now()
    else:
        raise TypeError(f"when: expected a time, a clock, a host or a lab, not {when!r}")
    return _dt.datetime.fromtimestamp(int(t), _dt.timezone.utc)


def _write(path: Path, data: bytes, mode: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path


def _serial(*parts: bytes) -> int:
    """A 159-bit serial (the size of openssl's random ones), derived from ``parts``."""
    n = int.from_bytes(hashlib.sha256(b"mailsim-serial\0" + b"\0".join(parts)).digest()[:20],
                       "big") >> 1
    return n or 1


def _digest(key, digest: str = "sha256"):
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        return None
    try:
        return _DIGESTS[digest.lower()]()
    except KeyError:
        raise TLSError(f"unknown digest {digest!r} (known: {', '.join(_DIGESTS)})") from None


def _spki(key) -> bytes:
    pub = key.public_key() if hasattr(key, "public_key") else key
    return pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _host(host):
    from ..host import Host
    if isinstance(host, Host):
        return host
    if hasattr(host, "path") and hasattr(host, "clock"):
        return host
    return Host(host)


def _hostname(host) -> str:
    try:
        return host.conf["myhostname"]
    except Exception:  # pragma: no cover - a host without main.cf cannot be built anyway
        return host.hostname_file()


def _subject(cn: str | None, subj) -> x509.Name:
    if isinstance(subj, x509.Name):
        return subj
    if subj:
        return parse_subj(subj)
    if not cn:
        raise TLSError("a certificate needs a name: give cn= or subj=")
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _general_name(name: str) -> x509.GeneralName:
    kind, sep, value = name.partition(":")
    if sep and kind in ("DNS", "IP", "email", "URI"):
        if kind == "IP":
            return x509.IPAddress(ipaddress.ip_address(value))
        return {"DNS": x509.DNSName, "email": x509.RFC822Name,
                "URI": x509.UniformResourceIdentifier}[kind](value)
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _san(names) -> x509.SubjectAlternativeName | None:
    if not names:
        return None
    if isinstance(names, str):
        names = [n for n in names.replace(",", " ").split() if n]
    return x509.SubjectAlternativeName([_general_name(n) for n in names])


_KU_NAMES = {
    "digitalSignature": "digital_signature", "nonRepudiation": "content_commitment",
    "keyEncipherment": "key_encipherment", "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement", "keyCertSign": "key_cert_sign", "cRLSign": "crl_sign",
    "encipherOnly": "encipher_only", "decipherOnly": "decipher_only",
}
_EKU_NAMES = {
    "serverAuth": x509.ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": x509.ExtendedKeyUsageOID.CLIENT_AUTH,
    "emailProtection": x509.ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "codeSigning": x509.ExtendedKeyUsageOID.CODE_SIGNING,
    "timeStamping": x509.ExtendedKeyUsageOID.TIME_STAMPING,
    "OCSPSigning": x509.ExtendedKeyUsageOID.OCSP_SIGNING,
}


def parse_ext(spec: str) -> tuple[x509.ExtensionType, bool]:
    """One ``-addext`` / extension-file line: ``subjectAltName=DNS:a,IP:192.0.2.1``,
    ``basicConstraints=critical,CA:TRUE,pathlen:0``, ``keyUsage=critical,keyCertSign``,
    ``extendedKeyUsage=serverAuth,clientAuth``. Returns (extension, critical).

    >>> parse_ext("subjectAltName = DNS:mx.example.org, IP:192.0.2.25")[0]
    <SubjectAlternativeName(<GeneralNames([<DNSName(value='mx.example.org')>, <IPAddress(value=192.0.2.25)>])>)>
    """
    name, sep, value = spec.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not value:
        raise TLSError(f"-addext {spec!r}: expected NAME=VALUE, e.g. subjectAltName=DNS:mail.example.com")
    items = [v.strip() for v in value.split(",") if v.strip()]
    critical = bool(items) and items[0] == "critical"
    if critical:
        items = items[1:]
    if name == "subjectAltName":
        bad = [i for i in items if i.partition(":")[0] not in ("DNS", "IP", "email", "URI")]
        if bad:
            raise TLSError(f"subjectAltName: {bad[0]!r} -- write DNS:name, IP:address, "
                           f"email:address or URI:uri")
        return x509.SubjectAlternativeName([_general_name(i) for i in items]), critical
    if name == "basicConstraints":
        ca, pathlen = False, None
        for i in items:
            k, _, v = i.partition(":")
            if k == "CA" and v.upper() in ("TRUE", "FALSE"):
                ca = v.upper() == "TRUE"
            elif k == "pathlen" and v.isdigit():
                pathlen = int(v)
            else:
                raise TLSError(f"basicConstraints: {i!r} -- write CA:TRUE, CA:FALSE or pathlen:N")
        return x509.BasicConstraints(ca=ca, path_length=pathlen if ca else None), critical
    if name == "keyUsage":
        flags = dict.fromkeys(_KU_NAMES.values(), False)
        for i in items:
            if i not in _KU_NAMES:
                raise TLSError(f"keyUsage: unknown {i!r} (known: {', '.join(_KU_NAMES)})")
            flags[_KU_NAMES[i]] = True
        return x509.KeyUsage(**flags), critical
    if name == "extendedKeyUsage":
        bad = [i for i in items if i not in _EKU_NAMES]
        if bad:
            raise TLSError(f"extendedKeyUsage: unknown {bad[0]!r} (known: {', '.join(_EKU_NAMES)})")
        return x509.ExtendedKeyUsage([_EKU_NAMES[i] for i in items]), critical
    raise TLSError(f"extension {name!r} is not simulated (supported: subjectAltName, "
                   f"basicConstraints, keyUsage, extendedKeyUsage)")


# -- reading ---------------------------------------------------------------------------------
def _read_pem(source, what: str) -> tuple[bytes, str]:
    """(PEM bytes, a name for messages) from PEM text or a file path."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), what
    if isinstance(source, str) and "-----BEGIN" in source:
        return source.encode("ascii", "replace"), what
    path = Path(os.fspath(source))
    try:
        return path.read_bytes(), str(path)
    except FileNotFoundError:
        raise TLSError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TLSError(f"{path}: is a directory, not a {what} file") from None


def load_certs(source) -> list[x509.Certificate]:
    """All certificates in a PEM file or text (a CA bundle may hold several);
    also takes certificate objects, :class:`CertInfo`, :class:`TLSFiles`, :class:`CA`
    and lists of any of these."""
    if source is None:
        return []
    if isinstance(source, x509.Certificate):
        return [source]
    if isinstance(source, CertInfo):
        return [source.certificate]
    if isinstance(source, TLSFiles):
        return load_certs(source.cert)
    if isinstance(source, CA):
        return [source.certificate]
    if isinstance(source, (list, tuple)):
        return [c for s in source for c in load_certs(s)]
    data, name = _read_pem(source, "certificate")
    if b"-----BEGIN CERTIFICATE-----" not in data:
        if b"CERTIFICATE REQUEST-----" in data:
            raise TLSError(f"{name}: this is a certificate request (CSR), not a certificate "
                           f"-- a CA signs it first (openssl x509 -req -in ... -CA ...)")
        if b"PRIVATE KEY-----" in data:
            raise TLSError(f"{name}: this file holds a private key, not a certificate")
        raise TLSError(f"{name}: no certificate in this file (a PEM certificate begins "
                       f"with -----BEGIN CERTIFICATE-----)")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise TLSError(f"{name}: cannot read the certificate ({e})") from None


def load_cert(source) -> x509.Certificate:
    """The (first) certificate in ``source`` (see :func:`load_certs`)."""
    certs = load_certs(source)
    if not certs:
        raise TLSError("no certificate given")
    return certs[0]


def load_csr(source) -> x509.CertificateSigningRequest:
    """A certificate request from a PEM file or text (or the object as is)."""
    if isinstance(source, x509.CertificateSigningRequest):
        return source
    data, name = _read_pem(source, "certificate request")
    if b"CERTIFICATE REQUEST-----" not in data:
        what = ("a certificate, not a request" if b"BEGIN CERTIFICATE-----" in data
                else "no certificate request (it begins with -----BEGIN CERTIFICATE REQUEST-----)")
        raise TLSError(f"{name}: {what}")
    try:
        return x509.load_pem_x509_csr(data)
    except ValueError as e:
        raise TLSError(f"{name}: cannot read the certificate request ({e})") from None


# -- what is inside a certificate ------------------------------------------------------------
def _key_type(pub) -> tuple[str, int]:
    if isinstance(pub, rsa.RSAPublicKey):
        return "RSA", pub.key_size
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return "EC", pub.key_size
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return "ED25519", 256
    if isinstance(pub, ed448.Ed448PublicKey):
        return "ED448", 456
    if isinstance(pub, dsa.DSAPublicKey):
        return "DSA", pub.key_size
    return type(pub).__name__, 0  # pragma: no cover


def _ext(cert, cls):
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def _akid_ok(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """OpenSSL's check_issued: the authority key id, if any, names the issuer's key."""
    akid = _ext(cert, x509.AuthorityKeyIdentifier)
    skid = _ext(issuer, x509.SubjectKeyIdentifier)
    if akid is None or akid.key_identifier is None or skid is None:
        return True
    return akid.key_identifier == skid.digest


def _is_self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject and _akid_ok(cert, cert) and _signed_by(cert, cert)


def _is_ca(cert: x509.Certificate) -> bool:
    bc = _ext(cert, x509.BasicConstraints)
    ku = _ext(cert, x509.KeyUsage)
    if ku is not None and not ku.key_cert_sign:
        return False
    if bc is not None:
        return bc.ca
    # a version 1 self-signed certificate counts as a CA (OpenSSL's X509_check_ca)
    return cert.version == x509.Version.v1 and _is_self_signed(cert)


def _match_name(pattern: str, name: str) -> bool:
    """X509_check_host's DNS rules: case-insensitive, a wildcard for one whole
    left-most label only (``*.example.com``)."""
    p, n = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if p.startswith("*.") and "*" not in p[2:]:
        head, _, rest = n.partition(".")
        return bool(head) and rest == p[2:] and rest.count(".") >= 1
    return p == n


@dataclass(frozen=True)
class CertInfo:
    """What is inside a certificate, as ``openssl x509 -noout -text`` would tell.

    Dates are aware UTC datetimes; ``*_text`` gives them as openssl prints them.
    ``san`` lists the subjectAltName entries (DNS names and IP addresses; other
    kinds with their openssl prefix, ``email:...``).
    """
    subject: str
    issuer: str
    serial: int
    not_before: _dt.datetime
    not_after: _dt.datetime
    san: list[str]
    key_type: str
    key_bits: int
    fingerprint: str
    is_ca: bool
    self_signed: bool
    version: int
    signature_algorithm: str
    certificate: x509.Certificate = field(repr=False, compare=False)

    @property
    def cn(self) -> str | None:
        """The subject's common name (CN), if it has one."""
        attrs = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else None

    @property
    def names(self) -> list[str]:
        """The names a peer's name is matched against: the DNS subjectAltNames, or the
        CN when there are none (OpenSSL's and Postfix's rule)."""
        dns = [g.value for g in (_ext(self.certificate, x509.SubjectAlternativeName) or [])
               if isinstance(g, x509.DNSName)]
        if dns:
            return dns
        return [self.cn] if self.cn else []

    def matches(self, name: str | list[str]) -> bool:
        """Whether the certificate is for ``name`` (any of a list). A name that starts
        with a dot matches any sub-domain, like Postfix's ``dot-nexthop``; an IP
        address is matched against IP subjectAltNames."""
        wanted = [name] if isinstance(name, str) else list(name)
        for w in wanted:
            try:
                ip = ipaddress.ip_address(w)
            except ValueError:
                ip = None
            if ip is not None:
                sans = _ext(self.certificate, x509.SubjectAlternativeName) or []
                if any(isinstance(g, x509.IPAddress) and g.value == ip for g in sans):
                    return True
                continue
            for n in self.names:
                if w.startswith("."):
                    if n.lower().endswith(w.lower()) or _match_name(n, "x" + w):
                        return True
                elif _match_name(n, w):
                    return True
        return False

    @property
    def serial_hex(self) -> str:
        """The serial as ``openssl x509 -serial`` prints it (upper-case hex)."""
        h = f"{self.serial:X}"
        return h if len(h) % 2 == 0 else "0" + h

    @property
    def not_before_text(self) -> str:
        return openssl_date(self.not_before)

    @property
    def not_after_text(self) -> str:
        return openssl_date(self.not_after)

    @property
    def sha1_fingerprint(self) -> str:
        return fingerprint(self.certificate, "sha1")

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def valid_at(self, when=None) -> bool:
        """Whether ``when`` lies inside the validity period (notBefore <= when < notAfter)."""
        t = _instant(when)
        return self.not_before <= t < self.not_after

    def text(self) -> str:
        """What ``openssl x509 -noout -subject -issuer -dates -ext subjectAltName
        -fingerprint -sha256`` prints (without a trailing newline)."""
        lines = [f"subject={self.subject}", f"issuer={self.issuer}",
                 f"notBefore={self.not_before_text}", f"notAfter={self.not_after_text}"]
        try:
            ext = self.certificate.extensions.get_extension_for_oid(
                ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
            lines.append(extension_text(ext).rstrip("\n"))
        except x509.ExtensionNotFound:
            pass
        lines.append(f"sha256 Fingerprint={self.fingerprint}")
        return "\n".join(lines)

    def openssl_text(self) -> str:
        """The full ``openssl x509 -noout -text`` listing."""
        return cert_text(self.certificate)

    def __str__(self) -> str:
        return self.text()


def describe(cert) -> CertInfo:
    """Look inside a certificate: a file path, PEM text, or a certificate object
    (also a :class:`TLSFiles` or :class:`CA`). For a file with several
    certificates, the first."""
    c = load_cert(cert)
    pub = c.public_key()
    ktype, bits = _key_type(pub)
    san = []
    for g in _ext(c, x509.SubjectAlternativeName) or []:
        if isinstance(g, (x509.DNSName,)):
            san.append(g.value)
        elif isinstance(g, x509.IPAddress):
            san.append(str(g.value))
        else:
            san.append(_x509text._general_name(g))
    return CertInfo(
        subject=dn_oneline(c.subject), issuer=dn_oneline(c.issuer), serial=c.serial_number,
        not_before=c.not_valid_before_utc, not_after=c.not_valid_after_utc, san=san,
        key_type=ktype, key_bits=bits, fingerprint=fingerprint(c, "sha256"),
        is_ca=_is_ca(c), self_signed=_is_self_signed(c), version=c.version.value + 1,
        signature_algorithm=sig_alg_name(c.signature_algorithm_oid), certificate=c)


def check_pair(key, cert, passphrase: str | bytes | None = None) -> bool:
    """Whether the private key belongs to the certificate (the same public key) --
    the check behind ``openssl x509 -noout -modulus`` vs ``openssl rsa -noout
    -modulus``, and behind Postfix's "cannot load ... certificate and key data".

    Raises :class:`TLSError` if either cannot be read (missing, encrypted key ...).
    """
    k = load_key(key, passphrase)
    c = load_cert(cert)
    return _spki(k) == _spki(c.public_key())


def load_pair(key, cert, passphrase: str | bytes | None = None):
    """(private key, certificate) as Postfix loads ``smtpd_tls_key_file`` and
    ``smtpd_tls_cert_file``; :class:`TLSError` if they do not belong together."""
    k = load_key(key, passphrase)
    c = load_cert(cert)
    if _spki(k) != _spki(c.public_key()):
        kname = key if isinstance(key, (str, os.PathLike)) and "-----BEGIN" not in str(key) else "key"
        cname = cert if isinstance(cert, (str, os.PathLike)) and "-----BEGIN" not in str(cert) else "certificate"
        raise TLSError(f"key values mismatch: the private key {kname} does not belong to the "
                       f"certificate {cname}")
    return k, c


# -- making keys, requests and certificates ---------------------------------------------------
def _with_extensions(builder, exts):
    for ext, critical in exts:
        builder = builder.add_extension(ext, critical=critical)
    return builder


def _merge(defaults, extra):
    """Default extensions, each replaced by an extra one of the same kind; new kinds appended."""
    extra = list(extra)
    out = []
    for ext, crit in defaults:
        repl = next(((e, c) for e, c in extra if e.oid == ext.oid), None)
        out.append(repl or (ext, crit))
    out += [(e, c) for e, c in extra if all(e.oid != d.oid for d, _ in defaults)]
    return out


def new_self_signed(key, subject: x509.Name, not_before: _dt.datetime, days: int, *,
                    extensions=(), serial: int | None = None, digest: str = "sha256",
                    ca_usage: bool = False) -> x509.Certificate:
    """``openssl req -x509``: a self-signed certificate with the v3_ca extensions of
    Debian's openssl.cnf (subject and authority key identifiers, critical
    ``CA:TRUE``), plus ``extensions`` (``(ext, critical)`` pairs, as -addext)."""
    pub = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(pub)
    defaults = [(ski, False),
                (x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False),
                (x509.BasicConstraints(ca=True, path_length=None), True)]
    if ca_usage:
        defaults.append((x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), True))
    not_after = not_before + _dt.timedelta(days=days)
    if serial is None:
        serial = _serial(b"x509", subject.public_bytes(), _spki(key),
                         str(int(not_before.timestamp())).encode(), str(days).encode())
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(pub)
         .serial_number(serial).not_valid_before(not_before).not_valid_after(not_after))
    b = _with_extensions(b, _merge(defaults, extensions))
    return b.sign(key, _digest(key, digest))


def new_csr(key, subject: x509.Name, *, extensions=(), digest: str = "sha256"
            ) -> x509.CertificateSigningRequest:
    """``openssl req -new``: a request signed with its own key; ``extensions``
    (``(ext, critical)`` pairs) become its requested extensions."""
    b = x509.CertificateSigningRequestBuilder().subject_name(subject)
    b = _with_extensions(b, extensions)
    return b.sign(key, _digest(key, digest))


def new_signed(req: x509.CertificateSigningRequest, ca_cert: x509.Certificate, ca_key, *,
               not_before: _dt.datetime, days: int, serial: int, copy_extensions: bool = True,
               extensions=(), digest: str = "sha256") -> x509.Certificate:
    """``openssl x509 -req -CA -CAkey``: the request's subject and key, certified
    by the CA. With ``copy_extensions`` (``-copy_extensions copy``) the requested
    extensions are kept (subjectAltName above all); then the subject and
    authority key identifiers; then ``extensions`` (as from ``-extfile``)."""
    if not req.is_signature_valid:
        raise TLSError("Certificate request self-signature verify failure (the request was "
                       "not signed by its own key)")
    if _spki(ca_key) != _spki(ca_cert.public_key()):
        raise TLSError("CA certificate and CA private key do not match")
    pub = req.public_key()
    exts = []
    if copy_extensions:
        exts += [(e.value, e.critical) for e in req.extensions
                 if e.oid not in (ExtensionOID.SUBJECT_KEY_IDENTIFIER,
                                  ExtensionOID.AUTHORITY_KEY_IDENTIFIER)]
    exts.append((x509.SubjectKeyIdentifier.from_public_key(pub), False))
    ca_ski = _ext(ca_cert, x509.SubjectKeyIdentifier)
    akid = (x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski) if ca_ski
            else x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()))
    exts.append((akid, False))
    exts = _merge(exts, extensions)
    b = (x509.CertificateBuilder().subject_name(req.subject).issuer_name(ca_cert.subject)
         .public_key(pub).serial_number(serial).not_valid_before(not_before)
         .not_valid_after(not_before + _dt.timedelta(days=days)))
    b = _with_extensions(b, exts)
    return b.sign(ca_key, _digest(ca_key, digest))


def _pem(obj) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class TLSFiles:
    """A host's TLS files: server paths (``key_file`` ...) and where they are in
    the host folder (``key`` ...)."""
    key_file: str
    cert_file: str
    key: Path
    cert: Path
    cafile: str | None = None
    ca: Path | None = None
    csr_file: str | None = None
    csr: Path | None = None

    def settings(self) -> dict[str, str]:
        """The main.cf settings that make Postfix use these files (set them with
        ``postconf -e``, then ``postfix reload``)."""
        out = {"smtpd_tls_cert_file": self.cert_file, "smtpd_tls_key_file": self.key_file}
        if self.cafile:
            out["smtpd_tls_CAfile"] = self.cafile
            out["smtp_tls_CAfile"] = self.cafile
        return out

    def info(self) -> CertInfo:
        return describe(self.cert)


def _files(host, key_file, cert_file, cafile=None, csr_file=None) -> TLSFiles:
    return TLSFiles(key_file=key_file, cert_file=cert_file, key=host.path(key_file),
                    cert=host.path(cert_file), cafile=cafile,
                    ca=host.path(cafile) if cafile else None, csr_file=csr_file,
                    csr=host.path(csr_file) if csr_file else None)


def self_signed(host, cn: str | None = None, *, days: int = 356, key: str = KEY_FILE,
                cert: str = CERT_FILE, san=None, subj: str | None = None, fresh: bool = False,
                passphrase: str | None = None) -> TLSFiles:
    """``openssl req -nodes -x509 -newkey rsa:2048 -keyout KEY -out CERT -days 356
    -subj /CN=...`` on ``host``: a new key (mode 0600, unencrypted) and a
    self-signed certificate, valid from the host's clock for ``days`` days.

    ``cn`` defaults to the host's ``myhostname``; ``subj`` takes a whole
    ``-subj`` string instead; ``san`` a list of names for subjectAltName (like
    ``-addext subjectAltName=DNS:...``; the seed's one-liner has none). The key
    is the well-known lab key for the name, or a new random one with ``fresh``.
    ``passphrase`` encrypts the key (what Postfix cannot use: a lesson, not a default).
    """
    h = _host(host)
    subject = _subject(cn or (None if subj else _hostname(h)), subj)
    name = _cn_of(subject) or _hostname(h)
    k = fresh_key() if fresh else lab_key(name)
    exts = [(_san(san), False)] if san else []
    c = new_self_signed(k, subject, _instant(h), days, extensions=exts)
    _write(h.path(key), key_pem(k, passphrase), 0o600)
    _write(h.path(cert), _pem(c), 0o644)
    return _files(h, key, cert)


def _cn_of(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else None


# -- a lab CA ----------------------------------------------------------------------------------
@dataclass
class CA:
    """A certificate authority kept in a directory: ``ca.crt``, ``ca.key`` and the
    serial counter ``ca.srl`` (as ``-CAcreateserial`` names it). ``clock`` gives
    "now" when it signs."""
    cert_file: Path
    key_file: Path
    clock: object = None

    @property
    def certificate(self) -> x509.Certificate:
        return load_cert(self.cert_file)

    @property
    def private_key(self):
        return load_key(self.key_file)

    @property
    def pem(self) -> bytes:
        return self.cert_file.read_bytes()

    @property
    def info(self) -> CertInfo:
        return describe(self.cert_file)

    @property
    def serial_file(self) -> Path:
        return serial_file_for(self.cert_file)

    def next_serial(self) -> int:
        """The next serial, as ``-CAcreateserial``: read ``ca.srl`` (or start from a
        number derived from the CA certificate), add one, save it."""
        return next_serial(self.serial_file, self.certificate)

    def __repr__(self) -> str:
        return f"<CA {self.cert_file}>"


def next_serial(srl: Path, ca_cert: x509.Certificate, *, create: bool = True) -> int:
    """Read a serial file (hex), add one, write it back, return the new serial --
    what ``openssl x509 -req -CAserial F`` does. A missing file starts from a
    number derived from the CA certificate (``-CAcreateserial``; openssl takes a
    random one), or is an error without ``create``."""
    srl = Path(srl)
    try:
        n = int(srl.read_text().split()[0], 16)
    except FileNotFoundError:
        if not create:
            raise TLSError(f"{srl}: No such file or directory\nerror while loading serial number"
                           ) from None
        n = _serial(b"srl", ca_cert.public_bytes(serialization.Encoding.DER))
    except (ValueError, IndexError):
        raise TLSError(f"{srl}: unable to load number from file (expected hex digits)\n"
                       f"error while loading serial number") from None
    n += 1
    h = f"{n:X}"
    _write(srl, (("0" + h if len(h) % 2 else h) + "\n").encode(), 0o644)
    return n


def serial_file_for(ca_cert: Path | str) -> Path:
    """openssl's default serial file for a CA certificate: ``ca.crt`` -> ``ca.srl``."""
    p = Path(ca_cert)
    return p.with_suffix(".srl") if p.suffix else p.with_name(p.name + ".srl")


def _ca_place(where, clock):
    """(directory, clock) for make_ca/load_ca: a lab, a host, or a directory."""
    from ..host import Host
    if isinstance(where, Host):
        return where.path(HOST_CA_DIR), clock or where.clock
    if hasattr(where, "hosts") and hasattr(where, "root") and hasattr(where, "clock"):  # a Lab
        return Path(where.root) / "ca", clock or where.clock
    if clock is None:
        from ..clock import SimClock
        clock = SimClock()
    return Path(where), clock


def make_ca(path_or_host, name: str = "mailsim Lab CA", days: int = 3650, *, clock=None,
            fresh: bool = False) -> CA:
    """A new lab CA: ``ca.key`` (0600) and the self-signed ``ca.crt`` (critical
    ``CA:TRUE``, ``keyUsage = keyCertSign, cRLSign``), like ``openssl req -x509
    -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj
    "/CN=mailsim Lab CA"``.

    ``path_or_host``: a directory; a lab (its ``ca/`` folder, the lab's clock);
    or a host (``/root/ca`` inside it, the host's clock). A directory without
    ``clock`` gets a new simulated clock (2026-11-25 09:00 UTC). Any old
    ``ca.srl`` goes: a new CA counts serials afresh.
    """
    d, clk = _ca_place(path_or_host, clock)
    subject = _subject(name, None) if not str(name).startswith("/") else parse_subj(name)
    k = fresh_key() if fresh else lab_key(_cn_of(subject) or name, ca=True)
    c = new_self_signed(k, subject, _instant(clk), days, ca_usage=True)
    ca = CA(d / "ca.crt", d / "ca.key", clk)
    _write(ca.key_file, key_pem(k), 0o600)
    _write(ca.cert_file, _pem(c), 0o644)
    ca.serial_file.unlink(missing_ok=True)
    return ca


def load_ca(path_or_host, *, clock=None) -> CA:
    """An existing CA (``ca.crt`` and ``ca.key``) from where :func:`make_ca` put it."""
    d, clk = _ca_place(path_or_host, clock)
    ca = CA(d / "ca.crt", d / "ca.key", clk)
    for p in (ca.cert_file, ca.key_file):
        if not p.is_file():
            raise TLSError(f"{p}: no such file (make the CA first: make_ca)")
    return ca


def csr(host, cn: str | None = None, *, names=None, subj: str | None = None, key: str = KEY_FILE,
        out: str = CSR_FILE, new_key: bool | None = None, fresh: bool = False) -> Path:
    """A certificate signing request on ``host`` (``openssl req -new -key KEY -out
    REQ -subj /CN=...``); returns where it is in the host folder.

    The subject is ``/CN=cn`` (default: the first of ``names``, else
    ``myhostname``) or ``subj``; ``names`` are requested as subjectAltName.
    The key file is used if it exists, else a new key is written there (as
    ``-newkey rsa:2048 -nodes -keyout KEY``); ``new_key=True`` always writes a new one.
    """
    h = _host(host)
    names = [names] if isinstance(names, str) else list(names or [])
    subject = _subject(cn or (names[0] if names else None) or (None if subj else _hostname(h)), subj)
    kpath = h.path(key)
    if new_key or (new_key is None and not kpath.exists()):
        k = fresh_key() if fresh else lab_key(_cn_of(subject) or _hostname(h))
        _write(kpath, key_pem(k), 0o600)
    else:
        k = load_key(kpath, what=key)
    exts = [(_san(names), False)] if names else []
    return _write(h.path(out), _pem(new_csr(k, subject, extensions=exts)), 0o644)


def sign(ca: CA, csr, *, days: int = 365, out=None, copy_extensions: bool = True, when=None,
         serial: int | None = None) -> bytes:
    """The CA signs a request (``openssl x509 -req -in REQ -CA ca.crt -CAkey ca.key
    -CAcreateserial -out OUT -days N -copy_extensions copy``); returns the
    certificate's PEM and writes it to ``out`` (a real path) if given.

    ``csr``: a file path or PEM text. The serial comes from ``ca.srl``; the
    dates from ``when`` (default: the CA's clock). The requested extensions
    (subjectAltName) are kept unless ``copy_extensions=False`` (openssl's default;
    then only the CN names the host).
    """
    if not isinstance(ca, CA):
        raise TypeError(f"sign: expected a CA (from make_ca or load_ca), not {ca!r}")
    req = load_csr(csr)
    ca_cert, ca_key = ca.certificate, ca.private_key
    c = new_signed(req, ca_cert, ca_key, not_before=_instant(ca.clock if when is None else when),
                   days=days, serial=ca.next_serial() if serial is None else serial,
                   copy_extensions=copy_extensions)
    pem = _pem(c)
    if out is not None:
        _write(Path(out), pem, 0o644)
    return pem


def issue(ca: CA, host, names=None, *, days: int = 365, key: str = KEY_FILE,
          cert: str = CERT_FILE, csr_file: str = CSR_FILE, cafile: str = LAB_CA_FILE,
          fresh: bool = False) -> TLSFiles:
    """Key, request and CA-signed certificate for a lab host in one call, and the
    CA certificate installed where Postfix reads it (``cafile``, by default
    :data:`LAB_CA_FILE` = /etc/ssl/certs/lab-ca.pem).

    ``names`` (default: the host's ``myhostname``): the first is the CN, all are
    subjectAltNames. The certificate starts at the host's clock.
    """
    h = _host(host)
    names = [names] if isinstance(names, str) else list(names or [_hostname(h)])
    csr(h, names[0], names=names, key=key, out=csr_file, new_key=True, fresh=fresh)
    sign(ca, h.path(csr_file), days=days, out=h.path(cert), when=h)
    _write(h.path(cafile), ca.pem, 0o644)
    return _files(h, key, cert, cafile, csr_file)


# -- verification --------------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify`.

    ``errors`` lists every problem found, as ``(code, depth, reason)`` in the
    order OpenSSL meets them; ``code``/``reason``/``depth`` are the first (what
    ``openssl verify`` and Postfix's log report). ``trusted``: the chain to a
    trusted CA is sound (signatures, CA flags and dates), whatever the name;
    ``matched``: the name matched (None when no name was asked).
    """
    ok: bool
    code: int
    reason: str
    depth: int
    subject: str
    issuer: str
    trusted: bool
    matched: bool | None
    errors: list[tuple[int, int, str]]
    chain: list[str]

    @property
    def postfix(self) -> str:
        """How Postfix's TLS client calls the connection: ``"Verified"`` (trusted
        chain, name matched), ``"Trusted"`` (trusted chain; name not matched or not
        checked) or ``"Untrusted"``."""
        if not self.trusted:
            return "Untrusted"
        return "Verified" if self.matched else "Trusted"

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return "OK" if self.ok else f"error {self.code} at {self.depth} depth lookup: {self.reason}"


def _find_issuer(cert, store, when):
    cands = [c for c in store if c.subject == cert.issuer and _akid_ok(cert, c)]
    if not cands:
        return None
    valid = [c for c in cands if c.not_valid_before_utc <= when < c.not_valid_after_utc]
    return (valid or cands)[-1]    # OpenSSL prefers an issuer valid now, else the last


def verify(cert, ca=None, name: str | list[str] | None = None, when=None) -> VerifyResult:
    """Check a certificate the way OpenSSL does for Postfix: chain to a trusted CA
    in ``ca``, CA flags, the peer's ``name``, signatures and dates at ``when``.

    ``cert``: path, PEM or certificate; ``ca``: the trusted certificates (a
    CAfile path, PEM, :class:`CA`, or a list), None for none; ``name``: the
    name the client expects (a list: any of them); ``when``: a time, clock, host
    or lab (default: the wall clock -- pass the host in a simulation).

    The reasons are OpenSSL 3's words: ``self-signed certificate``, ``unable to
    get local issuer certificate``, ``certificate has expired``, ``certificate
    is not yet valid``, ``hostname mismatch`` ...
    """
    leaf = load_cert(cert)
    store = load_certs(ca)
    t = _instant(when)
    errors: list[tuple[int, int]] = []
    chain = [leaf]
    anchored = False
    # 1. build the chain (OpenSSL's build_chain)
    while True:
        cur, depth = chain[-1], len(chain) - 1
        if _is_self_signed(cur):
            if any(cur == s for s in store):
                anchored = True
            else:
                errors.append((18 if depth == 0 else 19, depth))
            break
        if depth > 0 and depth > 8:  # pragma: no cover - loops in a strange store
            break
        issuer = _find_issuer(cur, store, t)
        if issuer is None or issuer in chain:
            if depth == 0 and any(cur == s for s in store):
                errors.append((2, depth))      # a trusted leaf whose own issuer is unknown
            else:
                errors.append((20 if depth == 0 else 2, depth))
            break
        chain.append(issuer)
    # 2. CA certificates must be CAs (check_extensions)
    for depth, c in enumerate(chain[1:], start=1):
        if not _is_ca(c):
            errors.append((24, depth))
    # 3. the name (check_id)
    matched = None
    if name is not None:
        info = describe(leaf)
        matched = info.matches(name)
        if not matched:
            names = [name] if isinstance(name, str) else list(name)
            is_ip = all(_is_ip(n) for n in names)
            errors.append((64 if is_ip else 62, 0))
    # 4. signatures and dates, from the top of the chain down (internal_verify)
    for depth in range(len(chain) - 1, -1, -1):
        c = chain[depth]
        if depth + 1 < len(chain):
            if not _signed_by(c, chain[depth + 1]):
                errors.append((7, depth))
        if t < c.not_valid_before_utc:
            errors.append((9, depth))
        elif t >= c.not_valid_after_utc:
            errors.append((10, depth))
    full = [(code, depth, VERIFY_REASONS[code]) for code, depth in errors]
    first = full[0] if full else (0, 0, "ok")
    at = chain[first[1]] if first[1] < len(chain) else leaf
    return VerifyResult(
        ok=not full, code=first[0], reason=first[2], depth=first[1],
        subject=dn_oneline(at.subject), issuer=dn_oneline(at.issuer),
        trusted=all(code in (62, 64) for code, _, _ in full), matched=matched,
        errors=full, chain=[dn_oneline(c.subject) for c in chain])


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def stops_openssl_verify(code: int) -> bool:
    """Whether ``openssl verify`` stops at this error (else it reports it and goes on)."""
    return code not in _CONTINUABLE

