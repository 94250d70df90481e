"""SASL for smtpd's AUTH command: Cyrus SASL with the sasldb user database, Debian's way.

Postfix checks no passwords itself. smtpd(8) hands the AUTH exchange to a SASL
server chosen with ``smtpd_sasl_type``; this module is that server as Debian
12's Postfix 3.7 runs its default, ``cyrus`` (``xsasl_cyrus_server.c`` calling
libsasl2 2.1.28 inside the smtpd process):

* the configuration is ``$config_directory/sasl/$smtpd_sasl_path.conf`` --
  ``/etc/postfix/sasl/smtpd.conf`` (Debian's Postfix looks there;
  ``cyrus_sasl_config_path`` is ignored)::

      pwcheck_method: auxprop
      auxprop_plugin: sasldb
      mech_list: PLAIN LOGIN

  Without ``mech_list`` every mechanism Debian's libsasl2-modules installs is
  offered (SCRAM-SHA-512 ... NTLM PLAIN LOGIN);
* the users are in the sasldb, ``/etc/sasldb2`` (``sasldb_path`` in
  smtpd.conf), one entry per user *and realm*, made with ``saslpasswd2``::

      mailsim --root HOST saslpasswd2 -c -u example.com alice     # asks for the password
      echo secret | mailsim --root HOST saslpasswd2 -p -c -u example.com alice
      mailsim --root HOST sasldblistusers2
      alice@example.com: userPassword

  A client logs in as ``alice@example.com`` (name@realm). A name without
  ``@`` is looked up in the realm ``smtpd_sasl_local_domain`` (then logged as
  ``name@that-realm``) or, when that is empty, in ``$myhostname`` (logged as
  just ``name``) -- so ``saslpasswd2 -c -u $myhostname bob`` makes a user who
  logs in as ``bob``. As in Cyrus the passwords are stored in clear text
  (CRAM-MD5 needs them): the real file is ``root:sasl`` mode 0640.

Setting it up on a host (the real server's commands in comments)::

    mailsim --root HOST postconf -e smtpd_sasl_auth_enable=yes   # postconf -e ...
    # /etc/postfix/sasl/smtpd.conf with the three lines above (mkdir /etc/postfix/sasl)
    mailsim --root HOST saslpasswd2 -c -u example.com alice       # saslpasswd2 -c -u ...
    # real Debian only: adduser postfix sasl, and the sasldb inside smtpd's chroot
    # (/var/spool/postfix/etc/sasldb2 with sasldb_path), or chroot n in master.cf

then a mail client logs in (``swaks --auth PLAIN --auth-user alice@example.com``),
``permit_sasl_authenticated`` lets it relay, and the log shows ``client=...,
sasl_method=PLAIN, sasl_username=alice@example.com``. Port 587 is the usual
place for it: master.cf's ``submission`` service with ``-o
smtpd_sasl_auth_enable=yes -o smtpd_tls_auth_only=yes ...``.

Why Cyrus and sasldb (and not Dovecot): ``cyrus`` is Postfix's default
``smtpd_sasl_type``, so ``smtpd_sasl_auth_enable = yes`` alone uses it; it
runs inside smtpd with one configuration file and one user file, with no
second daemon whose own configuration the course would have to simulate; its
classic tools (``saslpasswd2``, ``sasldblistusers2``) are what the learner
types on a real server; and its behaviour was recorded against the real
Postfix 3.7.11 with Debian's libsasl2 (tests/golden/auth, made by
tools/record_auth.py): the mechanism list, each challenge, every failure text
(``authentication failure``, ``bad protocol / cancel``, ``no mechanism
available``, ``encryption needed to use mechanism``, ...) and the warnings
Cyrus logs through Postfix (``SASL authentication failure: Password
verification failed``). ``smtpd_sasl_type = dovecot`` is answered as Postfix
does when Dovecot's auth socket is missing: smtpd cannot start.

Mechanisms: PLAIN, LOGIN, CRAM-MD5 and ANONYMOUS are simulated; the others
Cyrus may offer (SCRAM-*, DIGEST-MD5, NTLM) are listed but an AUTH with them
fails as an unknown mechanism does (docs/differences.md).

What is trusted: nothing the client sends; every response goes through
Cyrus's own base64 rules (:func:`decode64`). The sasldb file is mailsim's own
JSON, not Berkeley DB (real Cyrus cannot read it, nor mailsim the real one).

Examples
--------
>>> import tempfile
>>> from mailsim import init_host
>>> h = init_host(tempfile.mkdtemp() + "/mx", hostname="mail.example.com")
>>> set_password(h, "alice", "example.com", "secret")
>>> list_users(h)
['alice@example.com: userPassword']
>>> srv = Server(h, h.conf, lambda line: print("log:", line))
>>> srv.mechanisms
'SCRAM-SHA-512 SCRAM-SHA-384 SCRAM-SHA-256 SCRAM-SHA-224 SCRAM-SHA-1 DIGEST-MD5 CRAM-MD5 NTLM PLAIN LOGIN'
>>> srv.start("PLAIN", "AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==")
Step(status='done', text='')
>>> srv.username
'alice@example.com'
>>> Server(h, h.conf, print).start("PLAIN", "AGFsaWNlAHNlY3JldA==")
warning: SASL authentication failure: Password verification failed
Step(status='fail', text='authentication failure')
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["Server", "Step", "SaslFatal", "decode64", "set_password", "delete_user",
           "list_users", "read_sasldb", "saslpasswd2_main", "sasldblistusers2_main",
           "DEFAULT_SASLDB", "INSTALLED", "smtpd_conf_path"]

DEFAULT_SASLDB = "/etc/sasldb2"
FORMAT_TAG = "mailsim-sasldb2"
#: Debian's libsasl2-modules mechanisms, in the order Cyrus lists them without a
#: mech_list (recorded: tests/golden/auth/no-smtpd-conf.json); ANONYMOUS (only
#: offered when smtpd_sasl_security_options lacks noanonymous) comes last
INSTALLED = ("SCRAM-SHA-512", "SCRAM-SHA-384", "SCRAM-SHA-256", "SCRAM-SHA-224", "SCRAM-SHA-1",
             "DIGEST-MD5", "CRAM-MD5", "NTLM", "PLAIN", "LOGIN", "ANONYMOUS")

# sasl.h security flags, and what each plugin declares it is
NOPLAINTEXT, NOACTIVE, NODICTIONARY, FORWARD_SECRECY, NOANONYMOUS, MUTUAL_AUTH = \
    0x1, 0x2, 0x4, 0x8, 0x10, 0x40
_SECURITY_NAMES = {"noplaintext": NOPLAINTEXT, "noactive": NOACTIVE,
                   "nodictionary": NODICTIONARY, "forward_secrecy": FORWARD_SECRECY,
                   "noanonymous": NOANONYMOUS, "mutual_auth": MUTUAL_AUTH}
_MECH_FLAGS = {
    "ANONYMOUS": NOPLAINTEXT,
    "PLAIN": NOANONYMOUS,
    "LOGIN": NOANONYMOUS,
    "CRAM-MD5": NOPLAINTEXT | NOANONYMOUS,
    "NTLM": NOPLAINTEXT | NOANONYMOUS,
    "DIGEST-MD5": NOPLAINTEXT | NOANONYMOUS | MUTUAL_AUTH,
    **{f"SCRAM-SHA-{n}": NOPLAINTEXT | NOACTIVE | NOANONYMOUS | MUTUAL_AUTH
       for n in ("1", "224", "256", "384", "512")},
}
#: mechanisms whose server speaks first (an initial response is a protocol error)
_SERVER_FIRST = {"CRAM-MD5", "DIGEST-MD5"}
_SIMULATED = {"PLAIN", "LOGIN", "CRAM-MD5", "ANONYMOUS"}

# sasl_errstring() texts Postfix puts in its replies
BADPROT = "bad protocol / cancel"
BADAUTH = "authentication failure"
NOMECH = "no mechanism available"
ENCRYPT = "encryption needed to use mechanism"
CONTINUE = "another step is needed in authentication"
FAIL = "generic failure"

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = {c: i for i, c in enumerate(_B64)}


class SaslFatal(Exception):
    """smtpd cannot set SASL up: ``warnings`` are logged, then ``fatal: <message>``."""

    def __init__(self, message: str, warnings: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.warnings = warnings


class _DecodeError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode64(text: str) -> bytes:
    """Cyrus SASL's sasl_decode64(): stricter than Python's, with its own errors.

    Raises an error whose ``reason`` is what Postfix then tells the client:
    ``bad protocol / cancel`` for a bad character or data after ``=``, and
    ``another step is needed in authentication`` (SASL_CONTINUE) when the
    length is not a multiple of 4 -- so a lone ``=`` is not an empty response.

    >>> decode64("AGFsaWNl"), decode64("")
    (b'\\x00alice', b'')
    >>> for bad in ("!!!!", "=", "YWxpY2U", "YQ===", "YQ==YQ=="):
    ...     try:
    ...         decode64(bad)
    ...     except Exception as e:
    ...         print(repr(bad), e)
    '!!!!' bad protocol / cancel
    '=' another step is needed in authentication
    'YWxpY2U' another step is needed in authentication
    'YQ===' bad protocol / cancel
    'YQ==YQ==' bad protocol / cancel
    """
    out = bytearray()
    saw_equal = False
    i = 0
    n = len(text)
    while n - i > 3:
        if saw_equal:
            raise _DecodeError(BADPROT)
        c = text[i:i + 4]
        i += 4
        if c[0] not in _B64_VALUE or c[1] not in _B64_VALUE:
            raise _DecodeError(BADPROT)
        if (c[2] != "=" and c[2] not in _B64_VALUE) or (c[3] != "=" and c[3] not in _B64_VALUE):
            raise _DecodeError(BADPROT)
        if c[2] == "=" and c[3] != "=":
            raise _DecodeError(BADPROT)
        if "=" in c[2:]:
            saw_equal = True
        v = [_B64_VALUE.get(x, 0) for x in c]
        out.append(((v[0] << 2) | (v[1] >> 4)) & 0xFF)
        if c[2] != "=":
            out.append(((v[1] << 4) & 0xF0) | (v[2] >> 2))
            if c[3] != "=":
                out.append(((v[2] << 6) & 0xC0) | v[3])
    if i != n:
        raise _DecodeError(BADPROT if saw_equal else CONTINUE)
    return bytes(out)


def encode64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- the sasldb -----------------------------------------------------------------------------------
class SasldbError(Exception):
    """The sasldb cannot be opened (Cyrus: ``unable to open Berkeley db PATH: why``)."""


def _db_path(host, path: str | None) -> Path:
    return host.path(path or DEFAULT_SASLDB)


def read_sasldb(host, path: str | None = None) -> list[list[str]]:
    """The entries [user, realm, property, value] of the sasldb at server path ``path``."""
    p = _db_path(host, path)
    shown = path or DEFAULT_SASLDB
    try:
        raw = p.read_text("utf-8", "surrogateescape")
    except OSError as e:
        raise SasldbError(f"unable to open Berkeley db {shown}: "
                          f"{os.strerror(e.errno) if e.errno else e}") from None
    try:
        doc = json.loads(raw)
        if doc.get("mailsim") != FORMAT_TAG:
            raise ValueError
        return [[str(x) for x in e] for e in doc["entries"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SasldbError(f"unable to open Berkeley db {shown}: Invalid argument") from None


def _write_sasldb(host, path: str | None, entries: list[list[str]]) -> None:
    p = _db_path(host, path)
    try:
        mode = p.stat().st_mode & 0o777
    except OSError:
        mode = 0o640                       # saslpasswd2 makes it readable by its group only
    doc = {"mailsim": FORMAT_TAG, "note": "stands in for Cyrus SASL's Berkeley DB sasldb; "
                                          "change it with saslpasswd2",
           "entries": entries}
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=0) + "\n", "utf-8",
                   errors="surrogateescape")
    tmp.chmod(mode)
    os.replace(tmp, p)


def set_password(host, user: str, realm: str, password: str, path: str | None = None) -> None:
    """``saslpasswd2 -c -u REALM USER``: add the user or change the password."""
    try:
        entries = read_sasldb(host, path)
    except SasldbError:
        entries = []
    for e in entries:
        if e[:3] == [user, realm, "userPassword"]:
            e[3] = password
            break
    else:
        entries.append([user, realm, "userPassword", password])
    _write_sasldb(host, path, entries)


def delete_user(host, user: str, realm: str, path: str | None = None) -> None:
    """``saslpasswd2 -d -u REALM USER`` (silently nothing when there is no such user)."""
    try:
        entries = read_sasldb(host, path)
    except SasldbError:
        return
    _write_sasldb(host, path, [e for e in entries if e[:2] != [user, realm]])


def list_users(host, path: str | None = None) -> list[str]:
    """``sasldblistusers2``: one ``user@realm: property`` line per entry."""
    return [f"{u}@{r}: {prop}" for u, r, prop, _ in read_sasldb(host, path)]


def default_realm(host) -> str:
    """saslpasswd2's realm without ``-u``: the machine's fully qualified name (from
    /etc/hostname and /etc/hosts, as the resolver would answer)."""
    name = host.hostname_file()
    if "." in name:
        return name
    try:
        for line in host.path("/etc/hosts").read_text().splitlines():
            fields = line.split("#", 1)[0].split()
            if name in fields[1:] and "." in fields[1]:
                return fields[1]
    except OSError:
        pass
    return name


# -- smtpd.conf -----------------------------------------------------------------------------------
def smtpd_conf_path(conf) -> str:
    """Where Debian's Postfix has Cyrus look for its settings: $config_directory/sasl/NAME.conf."""
    confdir = conf.get("config_directory") or "/etc/postfix"
    return f"{confdir.rstrip('/')}/sasl/{conf.get('smtpd_sasl_path') or 'smtpd'}.conf"


def read_cyrus_conf(host, conf) -> dict[str, str]:
    """The ``key: value`` lines of smtpd.conf ({} when there is none)."""
    try:
        text = host.path(smtpd_conf_path(conf)).read_text("utf-8", "replace")
    except (OSError, PermissionError):
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def security_flags(value: str, warn: Callable[[str], None]) -> int | None:
    """name_mask_opt("SASL security options"): None (after a warning) for an unknown word."""
    flags = 0
    for word in re.split(r"[\s,]+", value.strip()):
        if not word:
            continue
        bit = _SECURITY_NAMES.get(word)
        if bit is None:
            warn(f'unknown SASL security options value "{word}" in "{value}"')
            return None
        flags |= bit
    return flags


# -- one connection's SASL server (xsasl_cyrus_server_create and friends) -------------------------
@dataclass
class Step:
    """What the SASL server says: ``more`` (``text`` is the base64 challenge), ``done``,
    or a failure -- ``fail`` (535), ``temp`` (454) -- with the reason as ``text``."""
    status: str
    text: str = ""


class Server:
    """The SASL server of one smtpd connection (activated with ``security_options``).

    ``log(line)`` writes smtpd's ``warning: ...`` lines (what Cyrus reports
    through Postfix's log callback). Raises :class:`SaslFatal` when no mechanism
    is left, as ``smtpd_sasl_activate()`` does.
    """

    def __init__(self, host, conf, log: Callable[[str], None], *,
                 security_options: str | None = None) -> None:
        self.host = host
        self.conf = conf
        self._log = log
        self.cyrus = read_cyrus_conf(host, conf)
        opts = conf.get("smtpd_sasl_security_options") if security_options is None \
            else security_options
        warnings: list[str] = []
        flags = security_flags(opts or "", warnings.append) if opts else 0
        if flags is None or (opts and flags == 0 and opts.strip()):
            raise SaslFatal("SASL per-connection initialization failed",
                            (*warnings, "bad per-session SASL security properties"))
        self.flags = flags
        self.realm = conf.get("smtpd_sasl_local_domain") or ""
        self.fqdn = conf.get("myhostname") or "localhost"
        mech_list = self.cyrus.get("mech_list")
        if mech_list:
            wanted = [m.upper() for m in re.split(r"[\s,]+", mech_list) if m]
            configured = []
            for m in wanted:
                if m in INSTALLED and m not in configured:
                    configured.append(m)
        else:
            configured = list(INSTALLED)
        self.configured = configured
        listed = [m for m in configured if self._permitted(m) is None]
        if not listed:
            raise SaslFatal("no SASL authentication mechanisms",
                            ("xsasl_cyrus_server_get_mechanism_list: no applicable SASL mechanisms",))
        self.listed = listed
        self.mechanisms = " ".join(listed)
        self.username: str | None = None
        self._mech: str | None = None
        self._state = 0
        self._login_user = b""
        self._challenge = b""

    def _permitted(self, mech: str) -> str | None:
        """Why the security options forbid ``mech`` (None: they allow it)."""
        have = _MECH_FLAGS.get(mech, 0)
        missing = self.flags & ~have
        if not missing:
            return None
        return ENCRYPT if missing & NOPLAINTEXT else NOMECH

    def warn(self, text: str) -> None:
        self._log(f"warning: {text}")

    def _failure(self, text: str) -> None:
        self.warn(f"SASL authentication failure: {text}")

    # -- the exchange ---------------------------------------------------------------------------
    def start(self, mech: str, initial: str | None) -> Step:
        """xsasl_server_first(): ``initial`` is the base64 initial response, if any."""
        self.username = None
        self._state = 0
        data: bytes | None = None
        if initial is not None:
            try:
                data = decode64(initial)
            except _DecodeError as e:
                return Step("fail", e.reason)
        name = mech.upper()
        if name not in self.configured:
            self._failure(f"Couldn't find mech {mech}")
            return Step("fail", NOMECH)
        why = self._permitted(name)
        if why is not None:
            return Step("fail", why)
        if name not in _SIMULATED:
            self._failure(f"Couldn't find mech {mech}")
            return Step("fail", NOMECH)
        if data is not None and name in _SERVER_FIRST:
            self._failure("Remote sent first but mech does not allow it.")
            return Step("fail", BADPROT)
        self._mech = name
        return getattr(self, "_" + name.replace("-", "_").lower())(data)

    def next(self, response: str) -> Step:
        """xsasl_server_next(): the client's base64 answer to a challenge."""
        try:
            data = decode64(response)
        except _DecodeError as e:
            return Step("fail", e.reason)
        return getattr(self, "_" + (self._mech or "plain").replace("-", "_").lower())(data)

    # -- mechanisms -----------------------------------------------------------------------------
    def _plain(self, data: bytes | None) -> Step:
        if data is None:
            self._state = 1
            return Step("more", "")
        parts = data.split(b"\0")
        if len(parts) == 1:
            self._failure("Can only find author (no password)")
            return Step("fail", BADPROT)
        if len(parts) == 2:
            self._failure("Can only find author/en (no password)")
            return Step("fail", BADPROT)
        if len(parts) > 3:
            self._failure("Got more data than we were expecting in the PLAIN plugin?")
            return Step("fail", BADPROT)
        authz, authc, password = (p.decode("utf-8", "surrogateescape") for p in parts)
        user = self._canon(authc)
        self.username = self._canon(authz) if authz else user
        result = self._verify(user, password, log_failure=True)
        if result is not None:
            return result
        if authz and self.username != user:
            self._failure("Requested identity not authenticated identity")
            return Step("fail", BADAUTH)
        return Step("done")

    def _login(self, data: bytes | None) -> Step:
        if self._state == 0:
            if data is None:
                self._state = 1
                return Step("more", encode64(b"Username:"))
            self._login_user = data
            self._state = 2
            return Step("more", encode64(b"Password:"))
        if self._state == 1:
            self._login_user = data or b""
            self._state = 2
            return Step("more", encode64(b"Password:"))
        user = self._canon(self._login_user.decode("utf-8", "surrogateescape"))
        self.username = user
        result = self._verify(user, (data or b"").decode("utf-8", "surrogateescape"),
                              log_failure=False)
        return result if result is not None else Step("done")

    def _cram_md5(self, data: bytes | None) -> Step:
        if self._state == 0:
            now = int(self.host.clock.now())
            self._challenge = (f"<{self.host.rng.randrange(0, 1 << 32)}.{now % 0xFFFFFF}"
                               f"@{self.fqdn}>").encode()
            self._state = 1
            return Step("more", encode64(self._challenge))
        text = (data or b"").decode("utf-8", "surrogateescape")
        pos = text.rfind(" ")
        if pos <= 0:
            self._failure("need authentication name")
            return Step("fail", BADPROT)
        user = self._canon(text[:pos])
        self.username = user
        try:
            secret = self._lookup(user)
        except SasldbError as e:
            self.warn(f"SASL authentication problem: {e}")
            return Step("temp", FAIL)
        if secret is None:
            return Step("fail", BADAUTH)
        digest = hmac.new(secret.encode("utf-8", "surrogateescape"), self._challenge,
                          hashlib.md5).hexdigest()
        if text[pos + 1:pos + 33] != digest:
            self._failure("incorrect digest response")
            return Step("fail", BADAUTH)
        return Step("done")

    def _anonymous(self, data: bytes | None) -> Step:
        if data is None and self._state == 0:
            self._state = 1
            return Step("more", "")
        self.username = "anonymous"
        return Step("done")

    # -- users ----------------------------------------------------------------------------------
    def _canon(self, name: str) -> str:
        """Cyrus's canonical user name: trimmed; ``@smtpd_sasl_local_domain`` appended
        to a name without one."""
        name = name.strip()
        if "@" not in name and self.realm:
            name = f"{name}@{self.realm}"
        return name

    def _lookup(self, user: str) -> str | None:
        """The user's password in the sasldb (name@realm split at the last ``@``)."""
        name, at, realm = user.rpartition("@")
        if not at:
            name, realm = user, self.realm or self.fqdn
        for u, r, prop, value in read_sasldb(self.host, self.cyrus.get("sasldb_path")):
            if (u, r, prop) == (name, realm, "userPassword"):
                return value
        return None

    def _verify(self, user: str, password: str, *, log_failure: bool) -> Step | None:
        """sasl_checkpass() against the sasldb; None when the password is right."""
        try:
            secret = self._lookup(user)
        except SasldbError as e:
            self.warn(f"SASL authentication problem: {e}")
            if log_failure:
                self._failure("Password verification failed")
            return Step("temp", FAIL)
        if secret is None or not password or not hmac.compare_digest(
                secret.encode("utf-8", "surrogateescape"),
                password.encode("utf-8", "surrogateescape")):
            if log_failure:
                self._failure("Password verification failed")
            return Step("fail", BADAUTH)
        return None


def mechanism_filter(host, conf, mechanisms: list[str]) -> list[str]:
    """smtpd_sasl_mechanism_filter (default ``!external, static:rest``): which of the
    mechanisms EHLO announces (AUTH itself is not filtered)."""
    patterns = conf.list("smtpd_sasl_mechanism_filter")
    if not patterns:
        return mechanisms
    out = []
    for mech in mechanisms:
        for p in patterns:
            neg = p.startswith("!")
            pat = p[1:] if neg else p
            if ":" in pat and not pat.startswith("/"):
                try:
                    hit = host.open_map(pat).lookup(mech) is not None
                except Exception:
                    hit = False
            else:
                hit = pat.lower() == mech.lower()
            if hit:
                if not neg:
                    out.append(mech)
                break
    return out


# -- the commands ---------------------------------------------------------------------------------
_BANNER = ("\nThis product includes software developed by Computing Services\n"
           "at Carnegie Mellon University (http://www.cmu.edu/computing/).\n\n")
_USAGE = (_BANNER + "saslpasswd2: usage: saslpasswd2 [-v] [-c [-p] [-n]] [-d] [-a appname] "
          "[-f sasldb] [-u DOM] userid\n"
          "\t-p\tpipe mode -- no prompt, password read on stdin\n"
          "\t-c\tcreate -- ask mechs to create the account\n"
          "\t-d\tdisable -- ask mechs to disable/delete the account\n"
          "\t-n\tno userPassword -- don't set plaintext userPassword property\n"
          "\t  \t                   (only set mechanism-specific secrets)\n"
          "\t-f sasldb\tuse given file as sasldb\n"
          "\t-a appname\tuse appname as application name\n"
          "\t-u DOM\tuse DOM for user domain\n"
          "\t-v\tprint version numbers and exit\n")


def saslpasswd2_main(root, argv: list[str], out, err, stdin=None) -> int:
    """``saslpasswd2 [-c] [-p] [-d] [-n] [-f sasldb] [-u DOM] [-a appname] userid``.

    The password comes from standard input: with ``-p`` (or when it is not a
    terminal) the first line; on a terminal it is asked twice, as the real
    command does (``Password:``, ``Again (for verification):``).

    >>> import io, tempfile
    >>> from mailsim import init_host
    >>> h = init_host(tempfile.mkdtemp() + "/mx", hostname="mail.example.com")
    >>> saslpasswd2_main(h.root, ["-p", "-c", "-u", "example.com", "alice"], io.StringIO(),
    ...                  io.StringIO(), stdin=io.StringIO("secret\\n"))
    0
    >>> saslpasswd2_main(h.root, ["-p", "bob"], io.StringIO(), io.StringIO(), stdin=io.StringIO("pw"))
    0
    >>> sasldblistusers2_main(h.root, [], o := io.StringIO(), io.StringIO()); print(o.getvalue(), end="")
    0
    alice@example.com: userPassword
    bob@mail.example.com: userPassword
    """
    import getopt
    import sys

    from .host import Host
    try:
        opts, args = getopt.getopt(argv, "vcpdnf:u:a:h?")
    except getopt.GetoptError:
        err.write(_USAGE)
        return 1
    o = dict(opts)
    if "-v" in o:
        err.write(_BANNER + "Built against SASL API version 2.1.28\n"
                            "LibSasl version 2.1.28 by \"Cyrus SASL\"\n")
        return 0
    if len(args) != 1 or "-h" in o or "-?" in o:
        err.write(_USAGE)
        return 1
    host = Host(root)
    user = args[0]
    realm = o.get("-u") or default_realm(host)
    path = o.get("-f")
    if "-d" in o:
        delete_user(host, user, realm, path)
        return 0
    stdin = stdin if stdin is not None else sys.stdin
    if "-p" not in o and hasattr(stdin, "isatty") and stdin.isatty():
        import getpass
        password = getpass.getpass("Password: ")
        again = getpass.getpass("Again (for verification): ")
        if password != again:
            err.write("saslpasswd2: passwords don't match\n")
            return 1
    else:
        password = stdin.readline().rstrip("\r\n")
    if not password:
        err.write("saslpasswd2: invalid parameter supplied\n")
        return 7
    if "-n" in o:
        return 0
    set_password(host, user, realm, password, path)
    return 0


def sasldblistusers2_main(root, argv: list[str], out, err) -> int:
    """``sasldblistusers2 [-f sasldb]``: ``user@realm: userPassword`` per entry."""
    import getopt

    from .host import Host
    try:
        opts, args = getopt.getopt(argv, "vf:h?")
    except getopt.GetoptError:
        opts, args = [("-h", "")], []
    o = dict(opts)
    if "-h" in o or "-?" in o or len(args) > 1:
        err.write(_BANNER + "sasldblistusers2: usage: sasldblistusers2 [-v] [[-f] sasldb]\n"
                            "\t-f sasldb\tuse given file as sasldb\n"
                            "\t-v\tprint version numbers and exit\n")
        return 1
    path = o.get("-f") or (args[0] if args else None)
    try:
        lines = list_users(Host(root), path)
    except SasldbError:
        err.write("listusers failed\n")
        return 0
    for line in lines:
        out.write(line + "\n")
    return 0
