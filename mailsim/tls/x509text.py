"""Certificates and requests printed the way ``openssl`` (3.0, Debian 12) prints them.

Names in OpenSSL's default ``-nameopt oneline`` form (``C = NL, O = "Acme,
Inc.", CN = mail.example.com``), dates as ``Nov 25 09:00:00 2026 GMT``,
fingerprints as ``AA:BB:...``, extensions as ``-ext`` shows them, and the whole
``openssl x509 -noout -text`` / ``openssl req -noout -text`` listing. The
tests compare these with the real ``openssl`` when it is installed.

>>> import datetime as dt
>>> openssl_date(dt.datetime(2026, 11, 5, 9, 0, tzinfo=dt.timezone.utc))
'Nov  5 09:00:00 2026 GMT'
>>> colon_hex(bytes([0xab, 0x01, 0xff]))
'AB:01:FF'
>>> parse_subj("/C=NL/O=Acme, Inc./CN=mail.example.com").rfc4514_string()
'CN=mail.example.com,O=Acme\\\\, Inc.,C=NL'
>>> dn_oneline(parse_subj("/C=NL/O=Acme, Inc./CN=mail.example.com"))
'C = NL, O = "Acme, Inc.", CN = mail.example.com'
"""
from __future__ import annotations

import datetime as _dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from .errors import TLSError

__all__ = ["dn_oneline", "parse_subj", "openssl_date", "colon_hex", "fingerprint",
           "extension_text", "extensions_text", "cert_text", "csr_text", "sig_alg_name",
           "EXT_NAMES"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: attribute OID (dotted) -> OpenSSL's short name (long name where there is none)
_SN = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "street",
    "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.12": "title", "2.5.4.5": "serialNumber",
    "2.5.4.4": "SN", "2.5.4.42": "GN", "2.5.4.43": "initials", "2.5.4.44": "generationQualifier",
    "2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym", "2.5.4.13": "description",
    "2.5.4.15": "businessCategory", "2.5.4.17": "postalCode", "2.5.4.97": "organizationIdentifier",
    "1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
#: OpenSSL's long names, accepted in -subj too
_LN = {
    "commonName": "2.5.4.3", "countryName": "2.5.4.6", "localityName": "2.5.4.7",
    "stateOrProvinceName": "2.5.4.8", "streetAddress": "2.5.4.9", "organizationName": "2.5.4.10",
    "organizationalUnitName": "2.5.4.11", "surname": "2.5.4.4", "givenName": "2.5.4.42",
    "domainComponent": "0.9.2342.19200300.100.1.25", "userId": "0.9.2342.19200300.100.1.1",
}
_BY_NAME = {**{sn: oid for oid, sn in _SN.items()}, **_LN}

#: extension OID -> the title openssl prints
EXT_NAMES = {
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME: "X509v3 Subject Alternative Name",
    ExtensionOID.ISSUER_ALTERNATIVE_NAME: "X509v3 Issuer Alternative Name",
    ExtensionOID.BASIC_CONSTRAINTS: "X509v3 Basic Constraints",
    ExtensionOID.KEY_USAGE: "X509v3 Key Usage",
    ExtensionOID.EXTENDED_KEY_USAGE: "X509v3 Extended Key Usage",
    ExtensionOID.SUBJECT_KEY_IDENTIFIER: "X509v3 Subject Key Identifier",
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER: "X509v3 Authority Key Identifier",
    ExtensionOID.CRL_DISTRIBUTION_POINTS: "X509v3 CRL Distribution Points",
    ExtensionOID.CERTIFICATE_POLICIES: "X509v3 Certificate Policies",
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS: "Authority Information Access",
    ExtensionOID.NAME_CONSTRAINTS: "X509v3 Name Constraints",
}
#: the names ``openssl x509 -ext`` accepts -> OID
EXT_SHORT = {
    "subjectAltName": ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    "issuerAltName": ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    "basicConstraints": ExtensionOID.BASIC_CONSTRAINTS,
    "keyUsage": ExtensionOID.KEY_USAGE,
    "extendedKeyUsage": ExtensionOID.EXTENDED_KEY_USAGE,
    "subjectKeyIdentifier": ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    "authorityKeyIdentifier": ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    "crlDistributionPoints": ExtensionOID.CRL_DISTRIBUTION_POINTS,
    "certificatePolicies": ExtensionOID.CERTIFICATE_POLICIES,
    "authorityInfoAccess": ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    "nameConstraints": ExtensionOID.NAME_CONSTRAINTS,
}
_EKU = {
    ExtendedKeyUsageOID.SERVER_AUTH: "TLS Web Server Authentication",
    ExtendedKeyUsageOID.CLIENT_AUTH: "TLS Web Client Authentication",
    ExtendedKeyUsageOID.CODE_SIGNING: "Code Signing",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "E-mail Protection",
    ExtendedKeyUsageOID.TIME_STAMPING: "Time Stamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSP Signing",
}
_SIG = {
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.10": "rsassaPss",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.3.101.112": "ED25519",
    "1.3.101.113": "ED448",
}
_CURVES = {"secp256r1": ("prime256v1", "P-256"), "secp384r1": ("secp384r1", "P-384"),
           "secp521r1": ("secp521r1", "P-521")}


# -- small pieces ----------------------------------------------------------------------------
def openssl_date(when: _dt.datetime) -> str:
    """``Nov 25 09:00:00 2026 GMT`` (the day padded with a space, as openssl does)."""
    t = when.astimezone(_dt.timezone.utc) if when.tzinfo else when
    return f"{_MONTHS[t.month - 1]} {t.day:2d} {t:%H:%M:%S} {t.year} GMT"


def colon_hex(data: bytes, *, upper: bool = True) -> str:
    """``AB:01:FF``: how openssl prints fingerprints and key identifiers."""
    return ":".join(f"{b:02X}" if upper else f"{b:02x}" for b in data)


def fingerprint(cert: x509.Certificate, digest: str = "sha256") -> str:
    """The certificate's fingerprint (hash of its DER form) as ``AA:BB:...``."""
    algo = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1(), "sha384": hashes.SHA384(),
            "sha512": hashes.SHA512(), "md5": hashes.MD5()}[digest.lower()]
    return colon_hex(cert.fingerprint(algo))


def sig_alg_name(oid) -> str:
    return _SIG.get(oid.dotted_string, getattr(oid, "_name", None) or oid.dotted_string)


def _attr_name(oid) -> str:
    return _SN.get(oid.dotted_string) or getattr(oid, "_name", None) or oid.dotted_string


def _escape(value: str) -> str:
    """One attribute value as ``-nameopt oneline`` shows it (RFC 2253 characters
    make openssl put the value in quotes; UTF-8 bytes are shown as ``\\C3\\BC``)."""
    out: list[str] = []
    quote = False
    last = len(value) - 1
    for i, ch in enumerate(value):
        o = ord(ch)
        if o > 0x7F:
            out += [f"\\{b:02X}" for b in ch.encode("utf-8")]
        elif ch in ",+;<>" or (ch == " " and i in (0, last)) or (ch == "#" and i == 0):
            quote = True
            out.append(ch)
        elif ch in '"\\':
            out.append("\\" + ch)
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\{o:02X}")
        else:
            out.append(ch)
    s = "".join(out)
    return f'"{s}"' if quote else s


def dn_oneline(name: x509.Name) -> str:
    """A distinguished name as ``openssl x509 -subject`` prints it: ``C = NL, CN = x``."""
    rdns = []
    for rdn in name.rdns:
        rdns.append(" + ".join(f"{_attr_name(a.oid)} = {_escape(str(a.value))}" for a in rdn))
    return ", ".join(rdns)


def parse_subj(subj: str) -> x509.Name:
    """``openssl req -subj``: ``/C=NL/O=Example/CN=mail.example.com`` (``\\/`` for a slash
    in a value, ``+`` between attributes of one multi-valued RDN).

    Raises :class:`TLSError` for a malformed string or an unknown attribute name.
    """
    s = subj.strip()
    if not s.startswith("/"):
        raise TLSError(f"name is expected to be in the format /type0=value0/type1=value1"
                       f"/type2=... where characters may be escaped by \\. This name is not "
                       f"in that format: '{subj}'")
    rdns: list[list[tuple[str, str]]] = []
    cur: list[tuple[str, str]] = []
    field, buf, in_value = "", [], False
    i = 1

    def close(new_rdn: bool) -> None:
        nonlocal field, buf, in_value, cur
        if not in_value:
            if field.strip() or buf:
                raise TLSError(f"Hit end of string before finding the '=' in {subj!r}")
            return
        cur.append((field, "".join(buf)))
        if new_rdn:
            rdns.append(cur)
            cur = []
        field, buf, in_value = "", [], False

    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            if in_value:
                buf.append(s[i + 1])
            else:
                field += s[i + 1]
            i += 2
            continue
        if ch == "/":
            close(True)
        elif ch == "+" and in_value:
            close(False)
        elif ch == "=" and not in_value:
            in_value = True
        elif in_value:
            buf.append(ch)
        else:
            field += ch
        i += 1
    close(True)
    out = []
    for rdn in rdns:
        attrs = []
        for field, value in rdn:
            key = field.strip()
            oid = _BY_NAME.get(key) or next((o for n, o in _BY_NAME.items()
                                             if n.lower() == key.lower()), None)
            if oid is None:
                raise TLSError(f"-subj: unknown attribute {key!r} (known: C, ST, L, O, OU, CN, "
                               f"emailAddress, DC, serialNumber ...)")
            if not value:
                continue            # openssl skips empty fields ("/CN=")
            if oid == "2.5.4.6" and len(value) != 2:
                raise TLSError(f"-subj: C (countryName) must be two letters, not {value!r}")
            attrs.append(x509.NameAttribute(x509.ObjectIdentifier(oid), value))
        if attrs:
            out.append(x509.RelativeDistinguishedName(attrs))
    if not out:
        raise TLSError(f"-subj {subj!r}: the name is empty")
    return x509.Name(out)


# -- extensions ------------------------------------------------------------------------------
def _general_name(g) -> str:
    if isinstance(g, x509.DNSName):
        return f"DNS:{g.value}"
    if isinstance(g, x509.IPAddress):
        ip = g.value
        if isinstance(ip, ipaddress.IPv6Address):
            b = ip.packed
            return "IP Address:" + ":".join(f"{(b[i] << 8) | b[i + 1]:X}" for i in range(0, 16, 2))
        return f"IP Address:{ip}"
    if isinstance(g, x509.RFC822Name):
        return f"email:{g.value}"
    if isinstance(g, x509.UniformResourceIdentifier):
        return f"URI:{g.value}"
    if isinstance(g, x509.DirectoryName):
        return "DirName:" + "".join(f"/{_attr_name(a.oid)}={a.value}" for a in g.value)
    if isinstance(g, x509.RegisteredID):
        return f"Registered ID:{g.value.dotted_string}"
    return "othername:<unsupported>"


def _ext_value_lines(ext: x509.Extension) -> list[str]:
    """The value part of one extension, as lines (without indentation)."""
    v = ext.value
    if isinstance(v, (x509.SubjectAlternativeName, x509.IssuerAlternativeName)):
        return [", ".join(_general_name(g) for g in v)]
    if isinstance(v, x509.BasicConstraints):
        s = "CA:TRUE" if v.ca else "CA:FALSE"
        if v.path_length is not None:
            s += f", pathlen:{v.path_length}"
        return [s]
    if isinstance(v, x509.KeyUsage):
        names = [("digital_signature", "Digital Signature"), ("content_commitment", "Non Repudiation"),
                 ("key_encipherment", "Key Encipherment"), ("data_encipherment", "Data Encipherment"),
                 ("key_agreement", "Key Agreement"), ("key_cert_sign", "Certificate Sign"),
                 ("crl_sign", "CRL Sign")]
        out = [label for attr, label in names if getattr(v, attr)]
        if v.key_agreement:
            out += [label for attr, label in (("encipher_only", "Encipher Only"),
                                              ("decipher_only", "Decipher Only")) if getattr(v, attr)]
        return [", ".join(out)]
    if isinstance(v, x509.ExtendedKeyUsage):
        return [", ".join(_EKU.get(o, o.dotted_string) for o in v)]
    if isinstance(v, x509.SubjectKeyIdentifier):
        return [colon_hex(v.digest)]
    if isinstance(v, x509.AuthorityKeyIdentifier):
        more = v.authority_cert_issuer is not None or v.authority_cert_serial_number is not None
        out = []
        if v.key_identifier is not None:
            out.append(("keyid:" if more else "") + colon_hex(v.key_identifier))
        for g in v.authority_cert_issuer or []:
            out.append(_general_name(g))
        if v.authority_cert_serial_number is not None:
            n = v.authority_cert_serial_number
            out.append("serial:" + colon_hex(n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")))
        return out
    # anything else: the raw value, as ASN1_STRING_print shows it
    raw = ext.value.public_bytes() if hasattr(ext.value, "public_bytes") else b""
    return ["".join(chr(b) if 32 <= b <= 126 else "." for b in raw)]


def extension_text(ext: x509.Extension, indent: int = 0) -> str:
    """One extension as ``openssl x509 -ext NAME`` prints it (title line, value lines)."""
    title = EXT_NAMES.get(ext.oid) or getattr(ext.oid, "_name", None) or ext.oid.dotted_string
    head = f"{' ' * indent}{title}: {'critical' if ext.critical else ''}\n"
    return head + "".join(f"{' ' * (indent + 4)}{line}\n" for line in _ext_value_lines(ext))


def extensions_text(exts, indent: int = 0) -> str:
    return "".join(extension_text(e, indent) for e in exts)


# -- the -text listings ----------------------------------------------------------------------
def _hexdump(data: bytes, per_line: int, indent: int) -> str:
    lines = []
    for i in range(0, len(data), per_line):
        chunk = data[i:i + per_line]
        last = i + per_line >= len(data)
        lines.append(" " * indent + ":".join(f"{b:02x}" for b in chunk) + ("" if last else ":"))
    return "\n".join(lines) + "\n"


def _spki_text(key) -> str:
    out = ["        Subject Public Key Info:\n"]
    if isinstance(key, rsa.RSAPublicKey):
        n = key.public_numbers()
        mod = n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")
        if mod[0] & 0x80:
            mod = b"\x00" + mod
        out += ["            Public Key Algorithm: rsaEncryption\n",
                f"                Public-Key: ({key.key_size} bit)\n",
                "                Modulus:\n", _hexdump(mod, 15, 20),
                f"                Exponent: {n.e} (0x{n.e:x})\n"]
    elif isinstance(key, ec.EllipticCurvePublicKey):
        point = key.public_bytes(serialization.Encoding.X962,
                                 serialization.PublicFormat.UncompressedPoint)
        oid, nist = _CURVES.get(key.curve.name, (key.curve.name, None))
        out += ["            Public Key Algorithm: id-ecPublicKey\n",
                f"                Public-Key: ({key.key_size} bit)\n",
                "                pub:\n", _hexdump(point, 15, 20),
                f"                ASN1 OID: {oid}\n"]
        if nist:
            out.append(f"                NIST CURVE: {nist}\n")
    elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        name = "ED25519" if isinstance(key, ed25519.Ed25519PublicKey) else "ED448"
        out += [f"            Public Key Algorithm: {name}\n",
                f"                {name} Public-Key:\n", "                pub:\n",
                _hexdump(raw, 15, 20)]
    elif isinstance(key, dsa.DSAPublicKey):
        out += ["            Public Key Algorithm: dsaEncryption\n",
                f"                Public-Key: ({key.key_size} bit)\n"]
    else:  # pragma: no cover - other key types
        out.append(f"            Public Key Algorithm: {type(key).__name__}\n")
    return "".join(out)


def _serial_text(serial: int) -> str:
    if 0 <= serial < (1 << 63):
        return f"        Serial Number: {serial} (0x{serial:x})\n"
    mag = abs(serial)
    data = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "big")
    neg = " (Negative)" if serial < 0 else ""
    return ("        Serial Number:\n" + " " * 12 + neg
            + ":".join(f"{b:02x}" for b in data) + "\n")


def cert_text(cert: x509.Certificate) -> str:
    """``openssl x509 -noout -text`` (OpenSSL 3.0's layout)."""
    version = cert.version.value + 1
    sig = sig_alg_name(cert.signature_algorithm_oid)
    out = ["Certificate:\n", "    Data:\n",
           f"        Version: {version} (0x{version - 1:x})\n",
           _serial_text(cert.serial_number),
           f"        Signature Algorithm: {sig}\n",
           f"        Issuer: {dn_oneline(cert.issuer)}\n",
           "        Validity\n",
           f"            Not Before: {openssl_date(cert.not_valid_before_utc)}\n",
           f"            Not After : {openssl_date(cert.not_valid_after_utc)}\n",
           f"        Subject: {dn_oneline(cert.subject)}\n",
           _spki_text(cert.public_key())]
    exts = list(cert.extensions)
    if exts:
        out.append("        X509v3 extensions:\n")
        out.append(extensions_text(exts, 12))
    out += [f"    Signature Algorithm: {sig}\n", "    Signature Value:\n",
            _hexdump(cert.signature, 18, 8)]
    return "".join(out)


def csr_text(req: x509.CertificateSigningRequest) -> str:
    """``openssl req -noout -text`` (OpenSSL 3.0's layout)."""
    sig = sig_alg_name(req.signature_algorithm_oid)
    out = ["Certificate Request:\n", "    Data:\n", "        Version: 1 (0x0)\n",
           f"        Subject: {dn_oneline(req.subject)}\n", _spki_text(req.public_key()),
           "        Attributes:\n"]
    exts = list(req.extensions)
    others = [a for a in req.attributes if a.oid.dotted_string != "1.2.840.113549.1.9.14"]
    for a in others:
        v = a.value.decode("utf-8", "replace") if isinstance(a.value, bytes) else str(a.value)
        out.append(f"            {getattr(a.oid, '_name', a.oid.dotted_string)}:{v}\n")
    if not exts and not others:
        out.append("            (none)\n")
    out.append("            Requested Extensions:\n")
    out.append(extensions_text(exts, 16))
    out += [f"    Signature Algorithm: {sig}\n", "    Signature Value:\n",
            _hexdump(req.signature, 18, 8)]
    return "".join(out)
