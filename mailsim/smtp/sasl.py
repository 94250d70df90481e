"""The SASL client of smtp(8): AUTH to a smarthost (Postfix's smtp_sasl_glue.c,
smtp_sasl_proto.c, smtp_sasl_auth_cache.c and xsasl_cyrus_client.c with the
Cyrus SASL client plugins of Debian's libsasl2-modules).

What a learner sees, as recorded from Postfix 3.7.11 (tests/golden/smtp-sasl/):

* ``smtp_sasl_auth_enable = yes`` and a ``smtp_sasl_password_maps`` entry
  ``user:password`` for the server: smtp(8) looks up the server's *name*
  first (``mail.isp.example``, ``127.0.0.1``), then the next hop as written
  (``[mail.isp.example]:587``) -- and, with
  ``smtp_sender_dependent_authentication = yes``, the sender before both;
* no entry, or no ``AUTH`` in the server's EHLO reply: the mail goes without AUTH;
* the mechanism is chosen by Cyrus among the server's that pass
  ``smtp_sasl_mechanism_filter`` and the security options --
  ``smtp_sasl_security_options`` in plaintext, ``smtp_sasl_tls_security_options``
  over TLS, ``smtp_sasl_tls_verified_security_options`` over a verified TLS
  session. The default ``noplaintext, noanonymous`` refuses PLAIN and LOGIN
  *even over TLS* (the TLS options default to the plaintext ones), and the mail
  is deferred: ``SASL authentication failed; cannot authenticate to server
  NAME[ADDR]: no mechanism available`` after ``warning: SASL authentication
  failure: No worthy mechs found``. CRAM-MD5 passes noplaintext. Among the
  ones allowed Cyrus prefers CRAM-MD5, then PLAIN, then LOGIN, whatever the
  server's order;
* a rejection (``535 5.7.8 ...``) defers the mail (``smtp_sasl_auth_soft_bounce
  = yes`` turns the 5 into a 4) with ``SASL authentication failed; server
  NAME[ADDR] said: REPLY``; with ``smtp_sasl_auth_cache_name`` a 535 is
  remembered (server name, user, a hash of the password) for
  ``smtp_sasl_auth_cache_time``, and later attempts send no AUTH:
  ``SASL [CACHED] authentication failed; server NAME said: REPLY``.

Mechanisms simulated: PLAIN, LOGIN, CRAM-MD5 (others a server offers are not
known to this client, as if their plugins were not installed).

>>> sorted(security_flags("noplaintext, noanonymous")[0]), security_flags("noactive x")[1]
(['noanonymous', 'noplaintext'], ['x'])
>>> choose(["LOGIN", "PLAIN"], {"noanonymous"}), choose(["PLAIN", "LOGIN"], {"noplaintext"})
('PLAIN', None)
>>> mech_filter("cram-md5, !login, plain", "PLAIN LOGIN CRAM-MD5")
'PLAIN CRAM-MD5'
>>> base64.b64decode(initial_response("PLAIN", "u", "p"))
b'\\x00u\\x00p'
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

__all__ = ["MECH_FLAGS", "security_flags", "choose", "mech_filter", "initial_response",
           "next_response", "SaslStepError"]

#: the Cyrus plugins' security flags (what each mechanism *has*)
MECH_FLAGS = {
    "CRAM-MD5": {"noplaintext", "noanonymous"},
    "PLAIN": {"noanonymous"},
    "LOGIN": {"noanonymous"},
}
#: Cyrus's preference among the mechanisms that pass (recorded: PLAIN before LOGIN in
#: either server order; CRAM-MD5 has more security flags than both)
PREFERENCE = ("CRAM-MD5", "PLAIN", "LOGIN")
#: xsasl_cyrus_security.c's option names
OPTION_NAMES = ("noplaintext", "noactive", "nodictionary", "forward_secrecy", "noanonymous",
                "mutual_auth")


class SaslStepError(Exception):
    """The client cannot go on (Cyrus's sasl_errstring() text)."""


def security_flags(value: str) -> tuple[set[str], list[str]]:
    """The required flags of a security options value, and the unknown words."""
    words = [w for w in value.replace(",", " ").split() if w]
    bad = [w for w in words if w.lower() not in OPTION_NAMES]
    return {w.lower() for w in words if w.lower() in OPTION_NAMES}, bad


def choose(mechs: list[str], required: set[str]) -> str | None:
    """The mechanism Cyrus picks from the server's list (None: "No worthy mechs found")."""
    offered = {m.upper() for m in mechs}
    for m in PREFERENCE:
        if m in offered and required <= MECH_FLAGS[m]:
            return m
    return None


def mech_filter(filter_value: str, words: str) -> str:
    """sasl_mech_filter(): the server's mechanisms that match smtp_sasl_mechanism_filter
    (a string list: names, ``!name``; first match decides); no filter: as offered."""
    pats = [p for p in filter_value.replace(",", " ").split() if p]
    if not pats or not words:
        return words
    out = []
    for mech in words.split():
        for p in pats:
            neg = p.startswith("!")
            if p.lstrip("!").lower() == mech.lower():
                if not neg:
                    out.append(mech)
                break
    return " ".join(out)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def initial_response(mech: str, user: str, password: str) -> str:
    """The initial client response (base64; "" for none)."""
    if mech == "PLAIN":
        return _b64(b"\0" + user.encode() + b"\0" + password.encode())
    return ""


def next_response(mech: str, step: int, challenge: str, user: str, password: str) -> str:
    """The client's answer (base64) to server challenge number ``step`` (0-based)."""
    try:
        data = base64.b64decode(challenge.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeError):
        raise SaslStepError("bad protocol / cancel") from None
    if mech == "LOGIN" and step < 2:
        return _b64((user if step == 0 else password).encode())
    if mech == "CRAM-MD5" and step == 0:
        digest = hmac.new(password.encode(), data, hashlib.md5).hexdigest()
        return _b64(f"{user} {digest}".encode())
    raise SaslStepError("generic failure")


def password_hash(password: str) -> str:
    """smtp_sasl_auth_cache_make_pass(): base64 of the SHA-1 of the password."""
    return _b64(hashlib.sha1(password.encode()).digest())
