"""TLS for simulated hosts: certificates and keys (:mod:`mailsim.tls.certs`).

* :mod:`mailsim.tls.certs` -- self-signed certificates, a lab CA, CSRs,
  looking inside a certificate, key/certificate pairs, verification in
  OpenSSL's words;
* :mod:`mailsim.tls.keys` -- the lab's well-known keys (deterministic
  certificates) and reading key files;
* :mod:`mailsim.tls.x509text` -- names, dates and listings printed as
  ``openssl`` prints them;
* ``mailsim --root HOST openssl ...`` (:mod:`mailsim.openssl_cmd`) -- the same,
  typed as on a server.

The STARTTLS side (SSL contexts, the handshake in smtpd and smtp) lives in
:mod:`mailsim.tls.context`.

>>> from mailsim.tls import describe, self_signed, verify
>>> callable(describe) and callable(self_signed) and callable(verify)
True
"""
from .certs import (CA, CERT_FILE, CSR_FILE, HOST_CA_DIR, KEY_FILE, LAB_CA_FILE,
                    CertInfo, TLSFiles, VerifyResult, check_pair, csr, describe, is_encrypted,
                    issue, load_ca, load_cert, load_certs, load_csr, load_pair, make_ca,
                    self_signed, sign, verify)
from .errors import TLSError

__all__ = [
    "self_signed", "make_ca", "load_ca", "csr", "sign", "issue", "describe", "check_pair",
    "load_pair", "is_encrypted", "verify", "load_cert", "load_certs", "load_csr",
    "CertInfo", "VerifyResult", "TLSFiles", "CA", "TLSError",
    "KEY_FILE", "CERT_FILE", "CSR_FILE", "LAB_CA_FILE", "HOST_CA_DIR",
]
