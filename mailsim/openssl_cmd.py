"""``mailsim --root HOST openssl ...``: the openssl commands of the TLS lessons, on a host.

The subset a learner types when setting up Postfix TLS (the seed chapter's
one-liner, and the CSR signed by one's own CA), with openssl 3.0's options,
output and messages where practical::

    openssl req -nodes -x509 -newkey rsa:2048 -keyout KEY -out CERT -days 356 [-subj /CN=...]
    openssl req -new -key KEY -out REQ.csr -subj /CN=... [-addext subjectAltName=DNS:...]
    openssl req -in REQ.csr -noout -text|-subject|-verify
    openssl x509 -req -in REQ.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out CERT -days N
         [-copy_extensions copy] [-extfile FILE]
    openssl x509 -in CERT -noout -text|-subject|-issuer|-dates|-serial|-fingerprint [-sha256]
         |-ext subjectAltName|-modulus|-checkend SECONDS
    openssl verify [-CAfile ca.crt] [-verify_hostname NAME] [-attime EPOCH] CERT ...
    openssl genrsa -out KEY [2048]
    openssl rsa -in KEY [-out KEY] [-passin pass:PHRASE] [-check] [-noout] [-modulus]

Paths are server paths inside the host folder; a relative path is taken
relative to /etc/postfix (as if you had typed ``cd /etc/postfix`` first), so
the seed's ``-keyout postfixkey.pem`` lands next to main.cf. "Now" is the
host's clock.

Differences from the real openssl, all for the lab:

* a new key (``-newkey``, ``genrsa``) is one of the **well-known lab keys**
  (:mod:`mailsim.tls.keys`), chosen by the certificate's name, so the same
  command gives the same certificate on every run; ``-fresh`` (a mailsim
  option) makes a new random key as openssl does;
* nothing is asked on the terminal: without ``-subj`` the subject is
  ``/CN=$myhostname``; a key is encrypted only with ``-passout pass:PHRASE``
  (openssl would prompt; without ``-nodes`` and ``-passout`` mailsim refuses);
* ``x509 -req`` writes a version 3 certificate with key identifiers (as
  OpenSSL 3.2 does; 3.0 writes version 1 unless extensions are copied);
* ``verify`` trusts the certificates in ``-CAfile``, ``-CApath`` and the host's
  /etc/ssl/certs (all ``*.pem``/``*.crt`` there: no ``c_rehash`` needed).

Examples
--------
>>> import io, tempfile
>>> from mailsim.host import init_host
>>> h = init_host(tempfile.mkdtemp() + "/mx", hostname="mail.example.com")
>>> def openssl(*args):
...     out, err = io.StringIO(), io.StringIO()
...     rc = main(h.root, list(args), out, err)
...     print(out.getvalue() + err.getvalue(), end=""); return rc
>>> openssl("req", "-nodes", "-x509", "-newkey", "rsa:2048", "-keyout", "postfixkey.pem",
...         "-out", "postfixcert.pem", "-days", "356", "-subj", "/CN=mail.example.com")
mailsim: well-known lab key host-28.key for mail.example.com (never use it outside the lab; -fresh makes a new key)
0
>>> openssl("x509", "-in", "postfixcert.pem", "-noout", "-subject", "-dates")
subject=CN = mail.example.com
notBefore=Nov 25 09:00:00 2026 GMT
notAfter=Nov 16 09:00:00 2027 GMT
0
>>> openssl("verify", "postfixcert.pem")
CN = mail.example.com
error 18 at 0 depth lookup: self-signed certificate
error postfixcert.pem: verification failed
2
>>> openssl("req", "-new", "-key", "postfixkey.pem", "-out", "mx.csr", "-subj", "/CN=x", "-batch")
req: Unknown option or message digest: batch
req: mailsim simulates these options: -new -x509 -nodes -noenc -newkey -key -keyout -out -in -days -subj -addext -set_serial -passout -passin -noout -text -subject -verify -modulus -sha256 -sha1 -sha384 -sha512 -fresh -help
1
"""
from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import TextIO

__all__ = ["main", "COMMANDS"]

#: the openssl commands mailsim simulates
COMMANDS = ("req", "x509", "verify", "genrsa", "rsa", "version", "help")

_DIGESTS = ("-sha256", "-sha1", "-sha384", "-sha512")

# option -> 0 (flag), 1 (takes a value), 2 (takes a value, repeatable)
_REQ = {"-new": 0, "-x509": 0, "-nodes": 0, "-noenc": 0, "-newkey": 1, "-key": 1, "-keyout": 1,
        "-out": 1, "-in": 1, "-days": 1, "-subj": 1, "-addext": 2, "-set_serial": 1,
        "-passout": 1, "-passin": 1, "-noout": 0, "-text": 0, "-subject": 0, "-verify": 0,
        "-modulus": 0}
_X509 = {"-in": 1, "-out": 1, "-req": 0, "-CA": 1, "-CAkey": 1, "-CAcreateserial": 0,
         "-CAserial": 1, "-set_serial": 1, "-days": 1, "-signkey": 1, "-copy_extensions": 1,
         "-extfile": 1, "-extensions": 1, "-passin": 1, "-noout": 0, "-text": 0, "-subject": 0,
         "-issuer": 0, "-dates": 0, "-startdate": 0, "-enddate": 0, "-serial": 0,
         "-fingerprint": 0, "-modulus": 0, "-ext": 1, "-checkend": 1, "-pubkey": 0}
_VERIFY = {"-CAfile": 1, "-CApath": 1, "-no-CAfile": 0, "-no-CApath": 0, "-verify_hostname": 1,
           "-verify_ip": 1, "-attime": 1, "-show_chain": 0}
_GENRSA = {"-out": 1, "-passout": 1, "-aes256": 0, "-aes128": 0}
_RSA = {"-in": 1, "-out": 1, "-passin": 1, "-passout": 1, "-aes256": 0, "-aes128": 0,
        "-check": 0, "-noout": 0, "-modulus": 0, "-traditional": 0, "-pubout": 0}

USAGE = """\
mailsim openssl: the openssl commands of the TLS lessons, on a simulated host
(paths are server paths; relative ones are taken from /etc/postfix):

  req -nodes -x509 -newkey rsa:2048 -keyout KEY -out CERT -days N [-subj /CN=NAME]
  req -new -key KEY -out REQ.csr -subj /CN=NAME [-addext subjectAltName=DNS:NAME,...]
  req -in REQ.csr -noout -text|-subject|-verify
  x509 -req -in REQ.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out CERT -days N
       [-copy_extensions copy] [-extfile FILE]
  x509 -in CERT -noout -text|-subject|-issuer|-dates|-serial|-fingerprint [-sha256]
       |-ext subjectAltName|-modulus|-checkend SECONDS
  verify [-CAfile ca.crt] [-verify_hostname NAME] [-attime EPOCH] CERT ...
  genrsa -out KEY [2048]
  rsa -in KEY [-out KEY] [-passin pass:PHRASE] [-check] [-noout] [-modulus]

New keys are mailsim's well-known lab keys (same command, same certificate);
-fresh makes a new random key.
"""


class _Fail(Exception):
    """Print the message on stderr and exit with ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _options(cmd: str, argv: list[str], spec: dict[str, int], *, positional: bool = False,
             fresh: bool = True) -> tuple[dict, list[str], list[str]]:
    """(options, their order, positional arguments), openssl style (``-opt value``)."""
    opts: dict = {}
    order: list[str] = []
    pos: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-help", "--help", "-h"):
            raise _Fail(USAGE, 0)
        if a.startswith("-") and len(a) > 1:
            if a in _DIGESTS:
                opts["digest"] = a[1:]
            elif a == "-fresh" and fresh:
                opts["-fresh"] = True
            elif a in spec:
                if spec[a] == 0:
                    opts[a] = True
                else:
                    if i + 1 >= len(argv):
                        raise _Fail(f"{cmd}: Option {a} needs a value")
                    i += 1
                    if spec[a] == 2:
                        opts.setdefault(a, []).append(argv[i])
                    else:
                        opts[a] = argv[i]
            else:
                known = list(spec) + ([*_DIGESTS] if cmd in ("req", "x509") else [])
                known += ["-fresh"] if fresh else []
                raise _Fail(f"{cmd}: Unknown option or message digest: {a[1:]}\n"
                            f"{cmd}: mailsim simulates these options: {' '.join(known + ['-help'])}")
            order.append(a)
        elif positional:
            pos.append(a)
        else:
            raise _Fail(f"{cmd}: Unknown parameter {a}\n{cmd}: Use -help for summary.")
        i += 1
    return opts, order, pos


def _days(cmd: str, value: str | None) -> int:
    if value is None:
        return 30                   # openssl's default
    try:
        n = int(value)
    except ValueError:
        raise _Fail(f"{cmd}: Non-numeric value for option -days: {value}") from None
    if n <= 0:
        raise _Fail(f"{cmd}: -days must be positive")
    return n


def _pass(cmd: str, spec: str | None) -> str | None:
    """openssl's pass-phrase arguments: ``pass:PHRASE`` or ``env:VARIABLE``."""
    if spec is None:
        return None
    kind, sep, value = spec.partition(":")
    if sep and kind == "pass":
        return value
    if sep and kind == "env":
        if value not in os.environ:
            raise _Fail(f"{cmd}: No environment variable {value}")
        return os.environ[value]
    raise _Fail(f"{cmd}: Invalid password argument \"{spec}\" (mailsim reads pass:PHRASE or "
                f"env:VARIABLE; it cannot prompt)")


class _Env:
    """The host the command acts on: paths and clock."""

    def __init__(self, root: Path) -> None:
        from .host import Host
        self.host = Host(root)

    def path(self, p: str) -> Path:
        try:
            return self.host.path(p)
        except PermissionError as e:
            raise _Fail(str(e)) from None

    def now(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(int(self.host.clock.now()), _dt.timezone.utc)

    def read(self, p: str, what: str) -> bytes:
        path = self.path(p)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise _Fail(f"Could not open file or uri for loading {what} from {p}\n"
                        f"{p}: No such file or directory\nUnable to load {what}") from None
        except IsADirectoryError:
            raise _Fail(f"Could not open file or uri for loading {what} from {p}\n"
                        f"{p}: Is a directory\nUnable to load {what}") from None

    def write(self, p: str | None, data: bytes, out: TextIO, mode: int = 0o644) -> None:
        if p is None:
            out.write(data.decode("ascii"))
            return
        from .tls.certs import _write
        _write(self.path(p), data, mode)


def _load_key(env: _Env, p: str, passphrase: str | None, what: str = "private key"):
    from .tls.keys import is_encrypted, load_key
    from .tls.errors import TLSError
    data = env.read(p, what)
    if is_encrypted(data) and passphrase is None:
        raise _Fail(f"Could not read {what} from {p}\n{p}: the key is encrypted; openssl "
                    f"would ask for its pass phrase -- give it with -passin pass:PHRASE "
                    f"(Postfix cannot: strip it with openssl rsa -in {p} -out {p} -passin pass:...)")
    try:
        return load_key(data, passphrase, what=p)
    except TLSError as e:
        raise _Fail(f"Could not read {what} from {p}\n{e}") from None


def _load_cert(env: _Env, p: str, what: str = "certificate"):
    from cryptography import x509
    data = env.read(p, what)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        hint = (" (it is a certificate request: sign it with openssl x509 -req)"
                if b"CERTIFICATE REQUEST-----" in data else "")
        raise _Fail(f"Could not read {what} from {p}{hint}\nUnable to load {what}")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise _Fail(f"Could not read {what} from {p}\nUnable to load {what}") from None


def _load_csr(env: _Env, p: str):
    from cryptography import x509
    data = env.read(p, "certificate request")
    try:
        return x509.load_pem_x509_csr(data)
    except ValueError:
        hint = " (it is a certificate, not a request)" if b"BEGIN CERTIFICATE-----" in data else ""
        raise _Fail(f"Could not read certificate request from {p}{hint}\n"
                    f"Unable to load X509 request") from None


def _new_key(env: _Env, cmd: str, spec: str, name: str, fresh: bool, err: TextIO):
    """-newkey rsa:BITS: the lab key for ``name`` (or a new one)."""
    from .tls.keys import HOST_KEYS, fresh_key, key_index, lab_key, pool_file
    alg, _, bits_s = spec.partition(":")
    if alg != "rsa":
        raise _Fail(f"{cmd}: -newkey {spec}: mailsim makes RSA keys only (-newkey rsa:2048)")
    try:
        bits = int(bits_s) if bits_s else 2048
    except ValueError:
        raise _Fail(f"{cmd}: -newkey {spec}: expected rsa:BITS, e.g. rsa:2048") from None
    if fresh or bits != 2048:
        if not fresh:
            err.write(f"mailsim: the well-known lab keys are rsa:2048; made a new rsa:{bits} key "
                      f"(it differs on every run)\n")
        return fresh_key(bits)
    idx = key_index(name)
    assert idx < HOST_KEYS
    err.write(f"mailsim: well-known lab key {pool_file(idx).name} for {name} "
              f"(never use it outside the lab; -fresh makes a new key)\n")
    return lab_key(name)


def _modulus(key_or_pub) -> str:
    pub = key_or_pub.public_key() if hasattr(key_or_pub, "private_bytes") else key_or_pub
    n = getattr(pub, "public_numbers", None)
    if n is None or not hasattr(n(), "n"):
        raise _Fail("modulus: this is not an RSA key")
    return f"Modulus={n().n:X}\n"


# -- req ---------------------------------------------------------------------------------------
def _req(env: _Env, argv: list[str], out: TextIO, err: TextIO) -> int:
    from .tls import certs
    from .tls.errors import TLSError
    from .tls.keys import key_pem
    from .tls.x509text import csr_text, dn_oneline, parse_subj
    o, order, _ = _options("req", argv, _REQ)
    digest = o.get("digest", "sha256")
    if "-in" in o:
        if "-x509" in o or "-newkey" in o or "-key" in o:
            raise _Fail("req: -in with -x509/-key is not simulated; sign a request with "
                        "openssl x509 -req -in REQ -CA ca.crt -CAkey ca.key (or -signkey KEY)")
        req = _load_csr(env, o["-in"])
        if o.get("-verify"):
            if not req.is_signature_valid:
                raise _Fail("Certificate request self-signature verify failure")
            err.write("Certificate request self-signature verify OK\n")
        stream: list[str] = []
        if o.get("-text"):
            stream.append(csr_text(req))
        if o.get("-subject"):
            stream.append(f"subject={dn_oneline(req.subject)}\n")
        if o.get("-modulus"):
            stream.append(_modulus(req.public_key()))
        if not o.get("-noout"):
            from cryptography.hazmat.primitives import serialization
            stream.append(req.public_bytes(serialization.Encoding.PEM).decode())
        env.write(o.get("-out"), "".join(stream).encode(), out)
        return 0
    try:
        subject = parse_subj(o["-subj"]) if "-subj" in o else None
        exts = [certs.parse_ext(e) for e in o.get("-addext", [])]
    except TLSError as e:
        raise _Fail(f"req: {e}") from None
    if subject is None:
        name = env.host.conf["myhostname"]
        err.write(f"mailsim: no -subj given; openssl would ask for the Distinguished Name -- "
                  f"using -subj /CN={name}\n")
        subject = parse_subj(f"/CN={name}")
    cn = certs._cn_of(subject) or env.host.conf["myhostname"]
    passin = _pass("req", o.get("-passin"))
    if "-key" in o:
        key = _load_key(env, o["-key"], passin)
    else:
        nodes = o.get("-nodes") or o.get("-noenc")
        passout = _pass("req", o.get("-passout"))
        if not nodes and passout is None:
            raise _Fail("req: without -nodes the new key would be encrypted and openssl would ask "
                        "for a PEM pass phrase, which mailsim cannot do.\n"
                        "req: add -nodes (Postfix needs an unencrypted key) or -passout pass:PHRASE")
        key = _new_key(env, "req", o.get("-newkey", "rsa:2048"), cn, bool(o.get("-fresh")), err)
        keyout = o.get("-keyout", "privkey.pem")
        env.write(keyout, key_pem(key, None if nodes else passout), out, 0o600)
    try:
        if o.get("-x509"):
            serial = _serial_arg("req", o.get("-set_serial"))
            obj = certs.new_self_signed(key, subject, env.now(), _days("req", o.get("-days")),
                                        extensions=exts, serial=serial, digest=digest)
        else:
            obj = certs.new_csr(key, subject, extensions=exts, digest=digest)
    except TLSError as e:
        raise _Fail(f"req: {e}") from None
    from cryptography.hazmat.primitives import serialization
    from .tls.x509text import cert_text
    stream = []
    if o.get("-text"):
        stream.append(cert_text(obj) if o.get("-x509") else csr_text(obj))
    if o.get("-subject"):
        stream.append(f"subject={dn_oneline(obj.subject)}\n")
    if o.get("-modulus"):
        stream.append(_modulus(key))
    if not o.get("-noout"):
        stream.append(obj.public_bytes(serialization.Encoding.PEM).decode())
    env.write(o.get("-out"), "".join(stream).encode(), out)
    return 0


def _serial_arg(cmd: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        raise _Fail(f"{cmd}: Error converting serial number {value!r} (decimal, or hex with 0x)") from None


# -- x509 --------------------------------------------------------------------------------------
_PRINTS = ("-subject", "-issuer", "-serial", "-dates", "-startdate", "-enddate", "-fingerprint",
           "-text", "-ext", "-modulus", "-pubkey")


def _x509(env: _Env, argv: list[str], out: TextIO, err: TextIO) -> int:
    from cryptography.hazmat.primitives import serialization
    from .tls.x509text import (EXT_SHORT, cert_text, dn_oneline, extensions_text, fingerprint,
                               openssl_date)
    o, order, _ = _options("x509", argv, _X509, fresh=False)
    if "-in" not in o:
        raise _Fail("x509: give the file with -in FILE (mailsim reads no standard input)")
    digest = o.get("digest")
    if o.get("-req"):
        cert = _x509_req(env, o, err, digest or "sha256")
    else:
        for bad in ("-CA", "-CAkey", "-signkey"):
            if bad in o:
                raise _Fail(f"x509: {bad} without -req (re-signing a certificate) is not "
                            f"simulated; sign a request: openssl x509 -req -in REQ ...")
        cert = _load_cert(env, o["-in"])[0]
    stream: list[str] = []
    for opt in order:
        if opt == "-subject":
            stream.append(f"subject={dn_oneline(cert.subject)}\n")
        elif opt == "-issuer":
            stream.append(f"issuer={dn_oneline(cert.issuer)}\n")
        elif opt == "-serial":
            h = f"{cert.serial_number:X}"
            stream.append(f"serial={'0' + h if len(h) % 2 else h}\n")
        elif opt in ("-dates", "-startdate"):
            stream.append(f"notBefore={openssl_date(cert.not_valid_before_utc)}\n")
            if opt == "-dates":
                stream.append(f"notAfter={openssl_date(cert.not_valid_after_utc)}\n")
        elif opt == "-enddate":
            stream.append(f"notAfter={openssl_date(cert.not_valid_after_utc)}\n")
        elif opt == "-fingerprint":
            name = digest or "SHA1"
            stream.append(f"{name} Fingerprint={fingerprint(cert, name.lower())}\n")
        elif opt == "-text":
            stream.append(cert_text(cert))
        elif opt == "-modulus":
            stream.append(_modulus(cert.public_key()))
        elif opt == "-pubkey":
            stream.append(cert.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
        elif opt == "-ext":
            wanted = []
            for n in o["-ext"].split(","):
                n = n.strip()
                if n not in EXT_SHORT:
                    raise _Fail(f"x509: Invalid extension name: {n} (mailsim knows: "
                                f"{', '.join(EXT_SHORT)})")
                wanted.append(EXT_SHORT[n])
            found = [e for e in cert.extensions if e.oid in wanted]
            if found:
                stream.append(extensions_text(found))
            else:
                err.write("No extensions in certificate\n")
    status = 0
    if "-checkend" in o:
        try:
            secs = int(o["-checkend"])
        except ValueError:
            raise _Fail(f"x509: Non-numeric value for option -checkend: {o['-checkend']}") from None
        if cert.not_valid_after_utc < env.now() + _dt.timedelta(seconds=secs):
            stream.append("Certificate will expire\n")
            status = 1
        else:
            stream.append("Certificate will not expire\n")
    if not o.get("-noout"):
        stream.append(cert.public_bytes(serialization.Encoding.PEM).decode())
    if stream or "-out" in o:
        env.write(o.get("-out"), "".join(stream).encode(), out)   # like openssl: all into -out
    return status


def _x509_req(env: _Env, o: dict, err: TextIO, digest: str):
    from cryptography.hazmat.primitives import serialization
    from .tls import certs
    from .tls.errors import TLSError
    from .tls.x509text import dn_oneline
    req = _load_csr(env, o["-in"])
    if not req.is_signature_valid:
        raise _Fail("Certificate request self-signature did not match\n"
                    "Certificate request self-signature verify failure")
    err.write(f"Certificate request self-signature ok\nsubject={dn_oneline(req.subject)}\n")
    copy = o.get("-copy_extensions", "none")
    if copy not in ("none", "copy", "copyall"):
        raise _Fail(f"x509: Invalid extension copy option: \"{copy}\" (none, copy or copyall)")
    extra = []
    if "-extfile" in o:
        extra = _extfile(env, o["-extfile"], o.get("-extensions"))
    days = _days("x509", o.get("-days"))
    serial = _serial_arg("x509", o.get("-set_serial"))
    passin = _pass("x509", o.get("-passin"))
    if "-signkey" in o:
        if "-CA" in o:
            raise _Fail("x509: give either -signkey (self-sign) or -CA/-CAkey, not both")
        key = _load_key(env, o["-signkey"], passin)
        try:
            if certs._spki(key) != certs._spki(req.public_key()):
                raise _Fail("x509: the -signkey key does not belong to the request "
                            "(key values mismatch)")
            exts = [(e.value, e.critical) for e in req.extensions] if copy != "none" else []
            return _signkey(req, key, env.now(), days, serial, exts + extra, digest)
        except TLSError as e:
            raise _Fail(f"x509: {e}") from None
    if "-CA" not in o:
        raise _Fail("x509: -req needs -CA ca.crt -CAkey ca.key (or -signkey KEY)")
    ca_cert = _load_cert(env, o["-CA"], "CA certificate")[0]
    ca_key = _load_key(env, o.get("-CAkey", o["-CA"]), passin, "CA private key")
    if certs._spki(ca_key) != certs._spki(ca_cert.public_key()):
        raise _Fail("CA certificate and CA private key do not match")
    if serial is None:
        if "-CAserial" in o or o.get("-CAcreateserial"):
            srl = env.path(o["-CAserial"]) if "-CAserial" in o else certs.serial_file_for(
                env.path(o["-CA"]))
            shown = o.get("-CAserial") or str(certs.serial_file_for(o["-CA"]))
            try:
                serial = certs.next_serial(srl, ca_cert, create=bool(o.get("-CAcreateserial")))
            except TLSError as e:
                raise _Fail(str(e).replace(str(srl), shown)) from None
        else:
            # openssl 3.0: a random serial, no file; mailsim derives one from the request
            serial = certs._serial(b"x509-req", req.public_bytes(serialization.Encoding.DER),
                                   str(int(env.now().timestamp())).encode())
    try:
        return certs.new_signed(req, ca_cert, ca_key, not_before=env.now(), days=days,
                                serial=serial, copy_extensions=copy != "none", extensions=extra,
                                digest=digest)
    except TLSError as e:
        raise _Fail(f"x509: {e}") from None


def _signkey(req, key, now, days, serial, exts, digest):
    """``x509 -req -signkey KEY``: the request signed by its own key (issuer = subject)."""
    from cryptography import x509
    from .tls import certs
    pub = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(pub)
    base = [(ski, False), (x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)]
    if serial is None:
        serial = certs._serial(b"signkey", req.subject.public_bytes(), certs._spki(key),
                               str(int(now.timestamp())).encode())
    b = (x509.CertificateBuilder().subject_name(req.subject).issuer_name(req.subject)
         .public_key(pub).serial_number(serial).not_valid_before(now)
         .not_valid_after(now + _dt.timedelta(days=days)))
    b = certs._with_extensions(b, certs._merge(exts, base) if exts else base)
    return b.sign(key, certs._digest(key, digest))


def _extfile(env: _Env, p: str, section: str | None) -> list:
    """An extensions file: ``name = value`` lines, optionally under ``[section]``."""
    from .tls import certs
    from .tls.errors import TLSError
    text = env.read(p, "extensions file").decode("utf-8", "replace")
    cur, found, out = None, section is None, []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            cur = line[1:-1].strip()
            found = found or cur == section
            continue
        if section is not None and cur != section:
            continue
        try:
            out.append(certs.parse_ext(line))
        except TLSError as e:
            raise _Fail(f"x509: {p}: {e}") from None
    if section is not None and not found:
        raise _Fail(f"x509: Error checking extension section {section} (not in {p})")
    return out


# -- verify ------------------------------------------------------------------------------------
def _store(env: _Env, o: dict) -> list:
    from cryptography import x509
    certs = []
    if "-CAfile" in o:
        certs += _load_cert(env, o["-CAfile"], "certificate file")
    dirs = []
    if "-CApath" in o:
        dirs.append(o["-CApath"])
    elif not o.get("-no-CApath"):
        dirs.append("/etc/ssl/certs")
    for d in dirs:
        path = env.path(d)
        if not path.is_dir():
            if "-CApath" in o:
                raise _Fail(f"verify: {d}: No such directory")
            continue
        for f in sorted(path.iterdir()):
            if f.suffix in (".pem", ".crt") and f.is_file():
                try:
                    certs += x509.load_pem_x509_certificates(f.read_bytes())
                except ValueError:
                    continue
    return certs


def _verify(env: _Env, argv: list[str], out: TextIO, err: TextIO) -> int:
    from .tls import certs
    from .tls.x509text import dn_oneline
    o, _, files = _options("verify", argv, _VERIFY, positional=True, fresh=False)
    if not files:
        raise _Fail("verify: name the certificate(s) to check (mailsim reads no standard input)")
    store = _store(env, o)
    when = env.now()
    if "-attime" in o:
        try:
            when = _dt.datetime.fromtimestamp(int(o["-attime"]), _dt.timezone.utc)
        except ValueError:
            raise _Fail(f"verify: Non-numeric value for option -attime: {o['-attime']}") from None
    name = o.get("-verify_ip") or o.get("-verify_hostname")
    status = 0
    for f in files:
        try:
            leaf = _load_cert(env, f, "certificate file")[0]
        except _Fail as e:
            err.write(f"{e}\n")
            status = 2
            continue
        r = certs.verify(leaf, store, name, when)
        if r.ok:
            out.write(f"{f}: OK\n")
            if o.get("-show_chain"):
                out.write("Chain:\n")
                for i, s in enumerate(r.chain):
                    tag = " (untrusted)" if i == 0 and len(r.chain) > 1 else ""
                    out.write(f"depth={i}: {s}{tag}\n")
            continue
        for code, depth, reason in r.errors:
            subj = r.chain[depth] if depth < len(r.chain) else dn_oneline(leaf.subject)
            err.write(f"{subj}\nerror {code} at {depth} depth lookup: {reason}\n")
            if certs.stops_openssl_verify(code):
                break
        err.write(f"error {f}: verification failed\n")
        status = 2
    return status


# -- keys --------------------------------------------------------------------------------------
def _genrsa(env: _Env, argv: list[str], out: TextIO, err: TextIO) -> int:
    from .tls.keys import key_pem
    o, _, pos = _options("genrsa", argv, _GENRSA, positional=True)
    bits = pos[0] if pos else "2048"
    if not bits.isdigit() or len(pos) > 1:
        raise _Fail(f"genrsa: Extra arguments given: {' '.join(pos)}\ngenrsa: usage: genrsa "
                    f"[-out KEY] [-aes256 -passout pass:PHRASE] [2048]")
    passout = _pass("genrsa", o.get("-passout"))
    if (o.get("-aes256") or o.get("-aes128")) and passout is None:
        raise _Fail("genrsa: -aes256 needs -passout pass:PHRASE (mailsim cannot prompt)")
    name = f"{env.host.conf['myhostname']}:{o.get('-out', '-')}"
    key = _new_key(env, "genrsa", f"rsa:{bits}", name, bool(o.get("-fresh")), err)
    env.write(o.get("-out"), key_pem(key, passout if (o.get("-aes256") or o.get("-aes128")) else None),
              out, 0o600)
    return 0


def _rsa(env: _Env, argv: list[str], out: TextIO, err: TextIO) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from .tls.keys import key_pem
    o, _, _ = _options("rsa", argv, _RSA, fresh=False)
    if "-in" not in o:
        raise _Fail("rsa: give the key with -in KEY (mailsim reads no standard input)")
    key = _load_key(env, o["-in"], _pass("rsa", o.get("-passin")))
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _Fail(f"rsa: {o['-in']}: not an RSA key")
    if o.get("-modulus"):
        out.write(_modulus(key))
    if o.get("-check"):
        out.write("RSA key ok\n")
    if o.get("-noout"):
        return 0
    err.write("writing RSA key\n")
    if o.get("-pubout"):
        data = key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        env.write(o.get("-out"), data, out, 0o644)
        return 0
    passout = _pass("rsa", o.get("-passout"))
    enc = o.get("-aes256") or o.get("-aes128")
    if enc and passout is None:
        raise _Fail("rsa: -aes256 needs -passout pass:PHRASE (mailsim cannot prompt)")
    if o.get("-traditional"):
        from cryptography.hazmat.primitives.serialization import (BestAvailableEncryption,
                                                                  NoEncryption)
        data = key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.TraditionalOpenSSL,
                                 BestAvailableEncryption(passout.encode()) if enc else NoEncryption())
    else:
        data = key_pem(key, passout if enc else None)
    env.write(o.get("-out"), data, out, 0o600)
    return 0


def _version(env, argv, out, err) -> int:
    import cryptography
    from cryptography.hazmat.backends.openssl import backend
    out.write(f"mailsim openssl (simulates OpenSSL 3.0's req, x509, verify, genrsa, rsa; "
              f"cryptography {cryptography.__version__}, "
              f"{backend.openssl_version_text()})\n")
    return 0


def main(root: Path, argv: list[str], out: TextIO, err: TextIO) -> int:
    """``mailsim --root HOST openssl CMD ...``; returns openssl's exit status."""
    if not argv or argv[0] in ("help", "-help", "--help", "-h"):
        out.write(USAGE)
        return 0 if argv else 1
    cmd, rest = argv[0], argv[1:]
    handlers = {"req": _req, "x509": _x509, "verify": _verify, "genrsa": _genrsa, "rsa": _rsa,
                "version": _version}
    if cmd not in handlers:
        err.write(f"Invalid command '{cmd}'; type \"help\" for a list.\n"
                  f"(mailsim simulates: {', '.join(handlers)})\n")
        return 1
    try:
        env = _Env(Path(root))
    except FileNotFoundError as e:
        err.write(f"mailsim openssl: {e}\n")
        return 1
    try:
        return handlers[cmd](env, rest, out, err)
    except _Fail as e:
        (out if e.status == 0 else err).write(str(e).rstrip("\n") + "\n")
        return e.status
