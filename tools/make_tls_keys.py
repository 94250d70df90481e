#!/usr/bin/env python3
"""Generate the lab's well-known RSA keys: data/tls/keys/host-NN.key and ca-N.key.

    .venv/bin/python tools/make_tls_keys.py           # writes the missing keys
    .venv/bin/python tools/make_tls_keys.py --force   # replaces all of them

Why: the course compares certificates with saved copies, so the same host and
clock must give the same certificate byte for byte. ``cryptography`` cannot
seed RSA key generation, so mailsim does not generate a key each time: it
picks one of these pre-generated keys by the certificate's name (see
:mod:`mailsim.tls.keys`). RSA PKCS#1 v1.5 signatures are deterministic, so with
a fixed key, serial and dates the certificate is fixed too.

THESE ARE WELL-KNOWN LAB KEYS -- NEVER USE THEM OUTSIDE THE LAB. Like
Debian's "snakeoil" key they are published with the software: anybody can
decrypt or impersonate whatever they protect.

Replacing the keys changes every certificate the notebooks and tests have
saved, so the script keeps existing files unless told ``--force``. Each key is
a fresh RSA-2048 key from ``cryptography`` (OpenSSL's generator), written as
unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"), as ``openssl req -nodes
-newkey rsa:2048`` and ``openssl genrsa`` (OpenSSL 3) write it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from mailsim.tls.keys import CA_KEYS, HOST_KEYS, KEYS_DIR, pool_file  # noqa: E402

README = """\
# Well-known lab keys -- NEVER USE THEM OUTSIDE THE LAB

These RSA-2048 private keys are published with mailsim, like Debian's
"snakeoil" key: anybody can read them, so they protect nothing. mailsim uses
them so that a simulated host, on a simulated clock, gets the same certificate
byte for byte on every run (notebooks and tests compare certificates with saved
copies, and RSA key generation cannot be seeded).

* host-00.key ... host-{last_host:02d}.key: picked for a host certificate by its name
  (mailsim.tls.keys.key_index: SHA-256 of the name, modulo {hosts});
* ca-0.key ... ca-{last_ca}.key: picked for a lab CA by the CA's name.

Made by tools/make_tls_keys.py (cryptography's RSA generator). Pass
``fresh=True`` to the mailsim.tls functions (``-fresh`` to ``mailsim openssl``)
for a newly generated key instead.
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--force", action="store_true",
                   help="replace existing keys (changes every saved certificate)")
    a = p.parse_args(argv)
    KEYS_DIR.mkdir(parents=True, exist_ok=True)
    made = 0
    for ca, count in ((False, HOST_KEYS), (True, CA_KEYS)):
        for i in range(count):
            path = pool_file(i, ca=ca)
            if path.exists() and not a.force:
                continue
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
            made += 1
    (KEYS_DIR / "README.md").write_text(README.format(
        last_host=HOST_KEYS - 1, hosts=HOST_KEYS, last_ca=CA_KEYS - 1))
    print(f"make_tls_keys: {made} new key(s) in {KEYS_DIR.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
