"""The postconf command against recordings of the real Postfix 3.7.11 postconf.

Two sources of truth:

* ``tests/golden/postconf/*.json`` -- real ``postconf -c DIR ...`` runs on
  a given main.cf/master.cf (recorded on a machine named ``vm``; see the
  files' ``recorded_with`` and ``normalized`` fields);
* ``tests/golden/postfix-3.7/commands.json`` -- postconf commands run on the
  recording server of the conformance corpus.

stdout and the exit status must match byte for byte. stderr must match
too, with three allowances for things that are random or repeated in
Postfix (see the docstring of :mod:`mailsim.conf.postconf`): warnings that
Postfix repeats because it reads main.cf several times are compared with
the first read only; warnings Postfix emits in hash-table order
(``read-only``, ``unused``) are compared as sorted lists; mailsim's own
``postconf: mailsim:`` notes are ignored here and tested separately.
"""
from __future__ import annotations

import io
import json
import re
import shlex
from pathlib import Path

import pytest

import mailsim.conf.postconf as postconf_mod
from mailsim.conf import default_master_cf
from mailsim.conf.defaults import recorded_defaults
from mailsim.conf.postconf import main as postconf

GOLDEN = Path(__file__).parent / "golden"
POSTCONF = GOLDEN / "postconf"

#: recorded cases where mailsim differs on purpose: id -> (file, what mailsim writes, how
#: Postfix's recorded file relates to it)
KNOWN_DIFFERENCES = {
    # Postfix appends new names in hash-table order (random per run); mailsim in argument order.
    "e-replace-append": ("main_cf_after", "# top comment\nmyhostname = a.b\n# mid\n"
                         "mydestination = q\n  # inner comment\nrelayhost =\n"
                         "mynetworks = 10.0.0.0/8\nbeta = 3\n", "same lines"),
    # Postfix glues the new setting onto a last line without newline ("a = 1b = 2").
    "e-no-trailing-newline": ("main_cf_after", "a = 1\nb = 2\n", "a = 1b = 2\n"),
}

_ARTIFACT = ("overriding earlier entry", "logical line must not start with whitespace")
_UNORDERED = ("read-only parameter assignment", "unused parameter:")


def _first_read(lines: list[str]) -> list[str]:
    """Postfix's warnings from its first reading of main.cf (later reads repeat them)."""
    out: list[str] = []
    last = 0
    for line in lines:
        m = re.search(r", line (\d+):", line)
        number = int(m.group(1)) if m else None
        if line in out or (number is not None and number < last):
            break
        out.append(line)
        last = number or last
    return out


def canonical_stderr(text: str) -> tuple[list[str], list[str], list[str]]:
    lines = [line for line in text.splitlines(True) if not line.startswith("postconf: mailsim:")]
    artifacts = [line for line in lines if any(a in line for a in _ARTIFACT)]
    unordered = sorted(line for line in lines if any(a in line for a in _UNORDERED))
    rest = [line for line in lines if not any(a in line for a in _ARTIFACT + _UNORDERED)]
    return _first_read(artifacts), unordered, rest


def _machine_defaults(machine: dict) -> dict[str, str]:
    """The recording machine's machine-dependent defaults (its name has no dot;
    ``interfaces`` was read from the real postconf's mynetworks in host and
    subnet style)."""
    return {"hostname": machine["hostname"],
            "myhostname": machine["hostname"] + ".localdomain", "mydomain": "localdomain",
            "mynetworks": machine["mynetworks"], "interfaces": machine["interfaces"],
            "process_id": "4242"}


def make_root(tmp_path: Path, main_cf: str, master_cf: str | None = "@default") -> Path:
    root = tmp_path / "host"
    (root / "etc/postfix").mkdir(parents=True)
    (root / "etc/postfix/main.cf").write_text(main_cf)
    if master_cf is not None:
        text = default_master_cf() if master_cf == "@default" else master_cf
        (root / "etc/postfix/master.cf").write_text(text)
    return root


def run(root: Path, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = postconf(root, argv, out, err)
    return rc, out.getvalue(), err.getvalue()


def _cases():
    for path in sorted(POSTCONF.glob("*.json")):
        data = json.loads(path.read_text())
        for case in data["cases"]:
            yield pytest.param(data["machine"], case, id=f"{path.stem}/{case['id']}")


@pytest.mark.parametrize("machine,case", list(_cases()))
def test_recorded_postconf(machine, case, tmp_path, monkeypatch):
    monkeypatch.setattr(postconf_mod, "_host_defaults", lambda root: _machine_defaults(machine))
    root = make_root(tmp_path, case["main_cf"], case.get("master_cf", "@default"))
    for argv in case.get("before", []):
        assert run(root, argv)[0] == 0
    rc, out, err = run(root, case["argv"])
    out = re.sub(r"^process_id = \d+$", "process_id = <pid>", out, flags=re.M)
    assert out == case["stdout"]
    assert rc == case["rc"]
    assert canonical_stderr(err) == canonical_stderr(case["stderr"])
    known = KNOWN_DIFFERENCES.get(case["id"])
    for name in ("main_cf_after", "master_cf_after"):
        if name in case:
            actual = (root / "etc/postfix" / name.replace("_cf_after", ".cf")).read_text()
            if known and known[0] == name:
                assert actual == known[1]
                if known[2] == "same lines":
                    assert sorted(actual.splitlines()) == sorted(case[name].splitlines())
                else:
                    assert case[name] == known[2], "Postfix's output changed: update KNOWN_DIFFERENCES"
            else:
                assert actual == case[name]


# -- commands.json: postconf on the conformance corpus' recording server -------------------------
def _commands():
    data = json.loads((GOLDEN / "postfix-3.7/commands.json").read_text())
    return data, [c for c in data["commands"] if c["cmd"].startswith("postconf")]


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory):
    """A host like the corpus's recording server: base-main.cf plus the run's main_cf,
    Debian's master.cf with chroot off (the recorder ran ``postconf -F '*/*/chroot = n'``)."""
    data, _ = _commands()
    lines = (GOLDEN / "postfix-3.7/base-main.cf").read_text().splitlines()
    lines += [f"{k} = {v}" for k, v in data["main_cf"].items()]
    root = make_root(tmp_path_factory.mktemp("corpus"), "\n".join(lines) + "\n")
    (root / "etc/hostname").write_text("mail\n")
    assert run(root, ["-F", "*/*/chroot = n"])[0] == 0
    return root


@pytest.mark.parametrize("command", _commands()[1], ids=lambda c: c["cmd"])
def test_corpus_commands(command, corpus_root):
    cmd = command["cmd"]
    count = cmd.endswith("| wc -l")
    argv = shlex.split(cmd.removesuffix("| wc -l"))[1:]
    rc, out, err = run(corpus_root, argv)
    if count:
        out = f"{len(out.splitlines())}\n"
    assert out == command["stdout"]
    assert rc == command["rc"]
    assert canonical_stderr(err) == canonical_stderr(command["stderr"])


# -- postconf -d on a host named vm.localdomain = the recorded postconf -d -------------------------
def test_defaults_match_recorded_postconf_d(tmp_path):
    """Every line of data/postconf-d.txt except the machine's networks and pid."""
    root = make_root(tmp_path, "")
    (root / "etc/hostname").write_text("vm.localdomain\n")
    rc, out, err = run(root, ["-d"])
    assert rc == 0 and err == ""
    recorded = (Path(postconf_mod.__file__).parent / "data/postconf-d.txt").read_text()
    host_dependent = re.compile(r"^(mynetworks|process_id) = .*\n", re.M)
    assert host_dependent.sub("", out) == host_dependent.sub("", recorded)
    assert len(out.splitlines()) == len(recorded_defaults())


# -- mailsim's additions ----------------------------------------------------------------------
def test_not_simulated_note(tmp_path):
    root = make_root(tmp_path, "myhostname = mail.example.com\n")
    rc, out, err = run(root, ["myhostname", "lmtp_sasl_auth_enable", "nosuch"])
    assert out == "myhostname = mail.example.com\nlmtp_sasl_auth_enable = no\n"
    assert err == ("postconf: mailsim: lmtp_sasl_auth_enable is accepted but not simulated\n"
                   "postconf: warning: nosuch: unknown parameter\n")


def test_no_notes_without_names(tmp_path):
    root = make_root(tmp_path, "smtp_tls_security_level = may\n")
    assert run(root, ["-n"]) == (0, "smtp_tls_security_level = may\n", "")


def test_fatal_error_has_mailsim_hint(tmp_path):
    root = make_root(tmp_path, "myhostname = a.b\nrelayhost [mail.isp.net]\n")
    rc, out, err = run(root, ["-n"])
    assert rc == 1 and out == ""
    first, second = err.splitlines()
    assert first == ('postconf: fatal: /etc/postfix/main.cf, line 2: missing \'=\' after '
                     'attribute name: "relayhost [mail.isp.net]"')
    assert second.startswith("postconf: mailsim: hint: ") and "relayhost = [mail.isp.net]" in second


def test_not_a_host(tmp_path):
    rc, out, err = run(tmp_path / "nothing", ["-n"])
    assert rc == 1
    assert "postconf: fatal: open /etc/postfix/main.cf: No such file or directory" in err
    assert "mailsim init" in err


def test_edit_then_show(tmp_path):
    root = make_root(tmp_path, "# my settings\nrelayhost =\nbiff = no\n")
    assert run(root, ["-e", "relayhost = [smtp.isp.example]", "mynetworks = 10.0.0.0/8"])[0] == 0
    assert (root / "etc/postfix/main.cf").read_text() == (
        "# my settings\nrelayhost = [smtp.isp.example]\nbiff = no\nmynetworks = 10.0.0.0/8\n")
    assert run(root, ["-h", "relayhost"])[1] == "[smtp.isp.example]\n"
    assert run(root, ["-#", "biff"])[0] == 0
    assert run(root, ["-n"])[1] == "mynetworks = 10.0.0.0/8\nrelayhost = [smtp.isp.example]\n"
    assert run(root, ["-X", "mynetworks"])[0] == 0
    assert "mynetworks" not in (root / "etc/postfix/main.cf").read_text()


def test_edit_leaves_no_temporary_files(tmp_path):
    root = make_root(tmp_path, "a = 1\n")
    run(root, ["-e", "relayhost = x"])
    run(root, ["-M", "smtp/inet=smtp inet n - n - - smtpd"])
    assert sorted(p.name for p in (root / "etc/postfix").iterdir()) == ["main.cf", "master.cf"]


def test_unsupported_option(tmp_path):
    root = make_root(tmp_path, "")
    rc, out, err = run(root, ["-m"])
    assert rc == 1 and out == "" and "not simulated" in err


def test_host_defaults_from_host_folder(tmp_path):
    """Without monkeypatching, postconf takes the machine's name from etc/hostname."""
    root = make_root(tmp_path, "mydomain = example.org\n")
    (root / "etc/hostname").write_text("gw\n")
    assert run(root, ["-x", "myhostname", "mydestination"])[1] == (
        "myhostname = gw.example.org\nmydestination = gw.example.org, localhost.example.org, localhost\n")
    assert run(root, ["-d", "myhostname", "mydomain"])[1] == (
        "myhostname = gw.localdomain\nmydomain = localdomain\n")


def test_cli_dispatch(tmp_path):
    from mailsim.cli import run_command
    root = make_root(tmp_path, "myhostname = mail.example.com\n")
    out, err = io.StringIO(), io.StringIO()
    assert run_command(root, "postconf", ["-h", "myhostname"], out, err) == 0
    assert out.getvalue() == "mail.example.com\n"
