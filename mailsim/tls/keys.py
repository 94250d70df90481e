"""Private keys: the lab's well-known RSA keys, fresh keys, and reading key files.

Why well-known keys
-------------------
The course compares certificates with saved copies, so one host on one
simulated clock must get the same certificate byte for byte on every run.
Everything in a certificate can be made deterministic -- the serial (derived
from what is certified), the dates (the host's clock), the signature (RSA
PKCS#1 v1.5 is deterministic) -- except the key: ``cryptography`` cannot
seed RSA key generation, and writing our own prime search would be
hand-made cryptography.

So mailsim ships a small pool of pre-generated RSA-2048 keys in
``data/tls/keys/`` (made once by ``tools/make_tls_keys.py``) and takes one by
the certificate's name: ``host-NN.key`` for hosts (:data:`HOST_KEYS` of them),
``ca-N.key`` for lab CAs. Like Debian's "snakeoil" key they are public:
**never use them outside the lab**. ``fresh=True`` (``-fresh`` on the
``mailsim openssl`` command line) generates a new random key instead, as
the real ``openssl`` always does.

Two names can share a pool key (there are only :data:`HOST_KEYS`); the hosts of
each shipped lab have distinct ones (a test checks it).

>>> key_index("mail.example.com") == key_index("MAIL.example.com")
True
>>> lab_key("mail.example.com").key_size
2048
>>> is_encrypted(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\\n...")
True
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import TLSError

__all__ = ["KEYS_DIR", "HOST_KEYS", "CA_KEYS", "key_index", "pool_file", "lab_key",
           "fresh_key", "key_pem", "load_key", "is_encrypted"]

#: where the well-known lab keys live (the repository's data/tls/keys)
KEYS_DIR = Path(__file__).resolve().parents[2] / "data" / "tls" / "keys"
#: how many host keys and CA keys the pool holds
HOST_KEYS = 32
CA_KEYS = 4


def key_index(name: str, *, ca: bool = False) -> int:
    """Which pool key a certificate for ``name`` gets (case-insensitive)."""
    digest = hashlib.sha256(f"mailsim-lab-key:{name.strip().lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (CA_KEYS if ca else HOST_KEYS)


def pool_file(index: int, *, ca: bool = False) -> Path:
    """The file of pool key ``index``: ``host-07.key``, ``ca-1.key``."""
    return KEYS_DIR / (f"ca-{index}.key" if ca else f"host-{index:02d}.key")


@functools.lru_cache(maxsize=None)
def _pool_key(path: Path) -> rsa.RSAPrivateKey:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TLSError(f"{path}: the lab's well-known keys are missing "
                        f"(make them with: python tools/make_tls_keys.py)") from None
    # the pool's keys are checked once by tests/test_certs.py; skipping OpenSSL's
    # (slow) RSA key check here keeps a notebook's first certificate quick
    return serialization.load_pem_private_key(data, password=None,
                                              unsafe_skip_rsa_key_validation=True)


def lab_key(name: str, *, ca: bool = False) -> rsa.RSAPrivateKey:
    """The well-known lab key for a certificate named ``name`` (a CA's if ``ca``)."""
    return _pool_key(pool_file(key_index(name, ca=ca), ca=ca))


def fresh_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A newly generated RSA key (not reproducible), as real openssl makes one."""
    if bits < 1024:
        raise TLSError(f"rsa:{bits}: key size too small (at least 1024 bits; use 2048)")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def key_pem(key, passphrase: str | bytes | None = None) -> bytes:
    """PEM as OpenSSL 3 writes it: PKCS#8, "BEGIN PRIVATE KEY" (unencrypted, what
    Postfix needs) or "BEGIN ENCRYPTED PRIVATE KEY" with a pass phrase (random
    salt: an encrypted key differs on every run)."""
    if passphrase is None:
        enc = serialization.NoEncryption()
    else:
        pw = passphrase.encode() if isinstance(passphrase, str) else passphrase
        enc = serialization.BestAvailableEncryption(pw)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def is_encrypted(key_pem: bytes | str) -> bool:
    """Whether a PEM private key is protected by a pass phrase (PKCS#8
    "ENCRYPTED PRIVATE KEY", or a traditional key with ``Proc-Type: 4,ENCRYPTED``).

    Postfix cannot ask for a pass phrase, so it cannot use such a key.
    """
    text = key_pem.decode("ascii", "replace") if isinstance(key_pem, bytes) else key_pem
    return "-----BEGIN ENCRYPTED PRIVATE KEY-----" in text or "Proc-Type: 4,ENCRYPTED" in text


def load_key(source, passphrase: str | bytes | None = None, *, what: str | None = None):
    """A private key from a file path or PEM text (str/bytes), or a key object as is.

    Raises :class:`~mailsim.tls.errors.TLSError` with a learner-sized message when the file is
    missing, holds no private key, or is encrypted (and no right pass phrase
    was given).
    """
    if hasattr(source, "private_bytes"):
        return source
    name = what
    if isinstance(source, (bytes, bytearray)) or (isinstance(source, str) and "-----BEGIN" in source):
        data = bytes(source, "ascii") if isinstance(source, str) else bytes(source)
        name = name or "key"
    else:
        path = Path(os.fspath(source))
        name = name or str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise TLSError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise TLSError(f"{name}: is a directory, not a key file") from None
    if b"PRIVATE KEY-----" not in data:
        raise TLSError(f"{name}: no private key in this file (a PEM key begins "
                        f"with -----BEGIN PRIVATE KEY-----)")
    pw = passphrase.encode() if isinstance(passphrase, str) else passphrase
    if is_encrypted(data) and pw is None:
        raise TLSError(f"{name}: the private key is encrypted (protected by a pass phrase); "
                        f"Postfix needs an unencrypted key -- make one with -nodes, or strip the "
                        f"pass phrase: openssl rsa -in {name} -out {name}")
    try:
        return serialization.load_pem_private_key(data, password=pw if is_encrypted(data) else None)
    except (ValueError, TypeError) as e:
        if is_encrypted(data):
            raise TLSError(f"{name}: bad decrypt (wrong pass phrase?)") from None
        raise TLSError(f"{name}: cannot read the private key ({e})") from None
