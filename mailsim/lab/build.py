"""Creating a lab host's folder from its ``[[hosts]]`` entry (like installing a server).

:func:`create_host` does what an administrator does on a new machine:
install Postfix (:func:`mailsim.host.init_host`: Debian's main.cf and
master.cf, etc/aliases, etc/passwd with the users), give the machine its
address in ``/etc/hosts``, set ``myhostname`` and ``mynetworks``, then apply
the lab's ``main_cf`` settings as ``postconf -e`` would and write the lab's
``files``, compiling each table the way main.cf uses it (``postmap``,
``postalias``).

``/etc/hosts`` holds ``localhost``, the host's own address and names (so
the host knows its own address, as a Debian machine with a static address
does) and -- only in a lab without zone files, where it is the lab's whole
name service -- every other lab host.

TLS, from lab.toml's ``[lab] ca`` and ``[hosts.tls]`` (:func:`install_tls`):
the lab CA's certificate in ``/etc/ssl/certs/lab-ca.pem`` on every host of a
lab with a CA; a key and certificate in ``/etc/postfix/tls/`` (signed by the
lab CA, or self-signed) and the main.cf lines that name them, before the
host's own ``main_cf``.

Defaults a lab host gets before its own ``main_cf``: ``mynetworks =
127.0.0.1/32, ADDRESS/32`` (the machine itself; the lab's client at
127.0.0.1 may relay, as in the recordings). Everything else is Debian's.

Not done: a host folder that already exists is left alone (the learner
owns it); ``mailsim lab DIR init --force`` rebuilds it.

Examples
--------
>>> from mailsim.lab.config import HostSpec
>>> hosts_file(HostSpec("mail", ("127.0.0.2",), "mail.example.com"), []).splitlines()[:2]
['127.0.0.1\\tlocalhost', '127.0.0.2\\tmail.example.com mail']
>>> file_path("aliases"), file_path("transport"), file_path("/etc/postfix/virtual")
('/etc/aliases', '/etc/postfix/transport', '/etc/postfix/virtual')
"""
from __future__ import annotations

import io
import ipaddress
import re
import shutil
from pathlib import Path

from ..cli import run_command
from ..clock import Clock
from ..conf.postconf import edit_main_cf
from ..host import Host, init_host
from .config import HostSpec, LabError

__all__ = ["create_host", "hosts_file", "file_path", "default_settings", "install_tls"]


def _net(addr: str) -> str:
    return f"[{addr}]/128" if ipaddress.ip_address(addr).version == 6 else f"{addr}/32"


def default_settings(spec: HostSpec) -> dict[str, str]:
    """main.cf settings every lab host gets before its own ``main_cf``."""
    nets = ["127.0.0.1/32"] + [_net(a) for a in spec.addresses if a != "127.0.0.1"]
    return {"mynetworks": ", ".join(nets)}


def hosts_file(spec: HostSpec, others: list[HostSpec]) -> str:
    """``/etc/hosts`` of a lab host (``others``: the lab hosts it lists besides itself)."""
    short = spec.hostname.split(".")[0]
    names = spec.hostname if short == spec.hostname else f"{spec.hostname} {short}"
    lines = ["127.0.0.1\tlocalhost"]
    lines += [f"{a}\t{names}" for a in spec.addresses]
    for o in others:
        lines += [f"{a}\t{o.hostname}" for a in o.addresses]
    lines.append("::1\t\tlocalhost ip6-localhost ip6-loopback")
    return "\n".join(lines) + "\n"


def file_path(name: str) -> str:
    """Where a ``files`` entry goes: ``aliases`` -> /etc/aliases, a bare name into
    /etc/postfix, an absolute path as it is."""
    if name.startswith("/"):
        return name
    if name in ("aliases", "etc/aliases"):
        return "/etc/aliases"
    if name.startswith("etc/"):
        return "/" + name
    return "/etc/postfix/" + name


def install_tls(host: Host, spec: HostSpec, ca=None, filename: str = "lab.toml") -> dict[str, str]:
    """The lab CA's certificate (``ca``, a :class:`mailsim.tls.certs.CA`) and the
    certificate ``spec.tls`` asks for, written into ``host``; returns the main.cf
    settings that name them.

    >>> import tempfile
    >>> from mailsim.lab.config import TLSSpec
    >>> spec = HostSpec("mx", ("127.0.0.2",), "mx.example.org", tls=TLSSpec("self-signed"))
    >>> h = init_host(tempfile.mkdtemp() + "/mx", hostname="mx.example.org")
    >>> install_tls(h, spec)
    {'smtpd_tls_cert_file': '/etc/postfix/tls/cert.pem', 'smtpd_tls_key_file': '/etc/postfix/tls/key.pem'}
    """
    from ..tls import certs
    kind = spec.tls.certificate
    names = list(spec.tls.names or (spec.hostname,))
    if ca is not None:
        path = host.path(certs.LAB_CA_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(ca.pem)
    if kind == "ca":
        if ca is None:
            raise LabError(f'{filename}:{spec.tls.line}: host "{spec.name}": certificate = "ca" '
                           'needs a lab CA -- add ca = "mailsim Lab CA" to [lab]')
        return certs.issue(ca, host, names=names).settings()
    if kind == "self-signed":
        return certs.self_signed(host, names[0], san=names if len(names) > 1 else None).settings()
    return {}


def create_host(root: Path, spec: HostSpec, others: list[HostSpec], *, clock: Clock,
                seed: int = 0, force: bool = False, filename: str = "lab.toml", ca=None) -> Host:
    """Create the host folder ``root`` for ``spec`` (see the module docstring);
    ``ca``: the lab's CA (:class:`mailsim.tls.certs.CA`), if it has one."""
    root = Path(root)
    if force and root.exists():
        shutil.rmtree(root)
    fresh = init_host(root, hostname=spec.hostname, users=list(spec.users), clock=clock)
    (root / "etc/hosts").write_text(hosts_file(spec, others))
    main_cf = root / "etc/postfix/main.cf"
    tls = install_tls(fresh, spec, ca, filename)
    settings = {**default_settings(spec), **tls, **spec.main_cf}
    try:
        text = edit_main_cf(main_cf.read_text(), "e", [f"{k} = {v}" for k, v in settings.items()])
    except Exception as e:                     # postconf's fatal: a bad name or value
        raise LabError(f"{filename}:{spec.line}: host {spec.name!r}: main_cf: {e}") from None
    main_cf.write_text(text)
    written = []
    for name, content in spec.files.items():
        path = file_path(name)
        try:
            target = _inside(root, path)
        except ValueError:
            raise LabError(f"{filename}:{spec.line}: host {spec.name!r}: files {name!r} is "
                           "outside the host folder -- use a path like /etc/postfix/transport") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content if content.endswith("\n") or not content else content + "\n")
        written.append(path)
    host = Host(root, clock=clock, seed=seed)
    _compile(host, written, spec, filename)
    return Host(root, clock=clock, seed=seed)


def _inside(root: Path, path: str) -> Path:
    out = (root / path.lstrip("/")).resolve()
    if root.resolve() not in out.parents:
        raise ValueError(path)
    return out


def _compile(host: Host, paths: list[str], spec: HostSpec, filename: str) -> None:
    """postmap / postalias each written table as main.cf names it (hash, btree, lmdb)."""
    refs: list[tuple[str, str, str]] = []          # (parameter, type, path)
    for param, value in host.conf.explicit.items():
        for m in re.finditer(r"\b(hash|btree|lmdb):(/[^\s,]+)", value):
            refs.append((param, m.group(1), m.group(2)))
    for path in paths:
        uses = [(p, t) for p, t, f in refs if f == path]
        if path == "/etc/aliases" and not uses:
            uses = [("alias_maps", "hash")]
        done = set()
        for param, typ in uses:
            cmd = "postalias" if param in ("alias_maps", "alias_database") else "postmap"
            if (cmd, typ) in done:
                continue
            done.add((cmd, typ))
            err = io.StringIO()
            if run_command(host.root, cmd, [f"{typ}:{path}"], out=io.StringIO(), err=err) != 0:
                raise LabError(f"{filename}:{spec.line}: host {spec.name!r}: {cmd} {typ}:{path} "
                               f"failed: {err.getvalue().strip()}")
