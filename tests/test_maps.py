"""The lookup-table API (mailsim.maps) as the daemons of a simulated host use it."""
from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from mailsim.maps import Map, MapError, open_map, postalias_build
from mailsim.maps.commands import postalias_main, postmap_main


class FakeHost:
    """The part of mailsim.host.Host that the maps use: path() and conf/clock."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = {"myhostname": "mail.example.com"}

    def path(self, p: str) -> Path:
        if not p.startswith("/"):
            p = "/etc/postfix/" + p
        return self.root / os.path.normpath(p).lstrip("/")


@pytest.fixture
def host(tmp_path) -> FakeHost:
    root = tmp_path / "h"
    (root / "etc/postfix").mkdir(parents=True)
    (root / "etc/postfix/main.cf").write_text("myhostname = mail.example.com\n")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n"
                                     "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n")
    (root / "etc/group").write_text("mail:x:8:alice,bob\n")
    return FakeHost(root)


def write(host: FakeHost, path: str, text: str) -> None:
    host.path(path).parent.mkdir(parents=True, exist_ok=True)
    host.path(path).write_text(text)


def postmap(host: FakeHost, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = postmap_main(host.root, list(argv), out, err)
    return rc, out.getvalue(), err.getvalue()


def bump_mtime(p: Path) -> None:
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


# -- hash --------------------------------------------------------------------------------------------
def test_missing_db_is_a_lookup_time_error(host):
    m = open_map("hash:/etc/postfix/virtual", host.path)
    assert isinstance(m, Map) and m.type == "hash" and m.spec == "hash:/etc/postfix/virtual"
    assert m.messages == ["error: open database /etc/postfix/virtual.db: No such file or directory"]
    with pytest.raises(MapError) as e:
        m.lookup("info@sue.nl")
    assert e.value.spec == "hash:/etc/postfix/virtual"
    assert e.value.warning == ("hash:/etc/postfix/virtual is unavailable. "
                               "open database /etc/postfix/virtual.db: No such file or directory")
    write(host, "/etc/postfix/virtual", "info@sue.nl gerda\n")
    assert not m.changed()                     # the source is not what a hash table reads
    assert postmap(host, "/etc/postfix/virtual")[0] == 0
    assert m.changed()                         # the .db appeared: a daemon would reopen


def test_hash_answers_from_the_compiled_file_only(host):
    write(host, "/etc/postfix/virtual", "Info@Sue.NL gerda\nsales@unix.nl petra\n@unix.nl jim\n")
    postmap(host, "hash:/etc/postfix/virtual")
    m = open_map("hash:/etc/postfix/virtual", host.path)
    assert m.lookup("info@sue.nl") == "gerda"
    assert m.lookup("INFO@SUE.NL") == "gerda"          # daemons fold the key
    assert m.lookup("@unix.nl") == "jim" and m.lookup("nobody@sue.nl") is None
    assert m.describe() == "hash:/etc/postfix/virtual (compiled virtual.db, 3 entries)"
    write(host, "/etc/postfix/virtual", "info@sue.nl petra\n")
    assert m.lookup("info@sue.nl") == "gerda" and not m.changed()
    assert open_map("hash:/etc/postfix/virtual", host.path).lookup("info@sue.nl") == "gerda"
    postmap(host, "hash:/etc/postfix/virtual")
    bump_mtime(host.path("/etc/postfix/virtual.db"))
    assert m.changed()
    assert open_map("hash:/etc/postfix/virtual", host.path).lookup("info@sue.nl") == "petra"


# -- "database X.db is older than source file X" (dict_db.c, dict_lmdb.c) ---------------------------
def age(p: Path, seconds: float) -> None:
    """Set the file's mtime to ``seconds`` ago by the wall clock (as Postfix's time() sees it)."""
    t = time.time() - seconds
    os.utime(p, (t, t))


STALE = "warning: database /etc/postfix/virtual.db is older than source file /etc/postfix/virtual"


def test_open_warns_when_the_source_is_newer_and_older_than_100_seconds(host):
    write(host, "/etc/postfix/virtual", "info@sue.nl gerda\n")
    postmap(host, "hash:/etc/postfix/virtual")
    assert open_map("hash:/etc/postfix/virtual", host.path).messages == []
    write(host, "/etc/postfix/virtual", "info@sue.nl petra\n")        # edited, not rebuilt
    age(host.path("/etc/postfix/virtual.db"), 600)
    age(host.path("/etc/postfix/virtual"), 300)
    m = open_map("hash:/etc/postfix/virtual", host.path)
    assert m.messages == [STALE]
    assert m.lookup("info@sue.nl") == "gerda"           # a warning only: the old answer stays
    assert open_map("proxy:hash:/etc/postfix/virtual", host.path).messages == [STALE]
    assert open_map("btree:/etc/postfix/virtual", host.path).messages != [STALE]   # wrong format


def test_no_warning_within_100_seconds_of_the_edit(host):
    write(host, "/etc/postfix/virtual", "info@sue.nl gerda\n")
    postmap(host, "hash:/etc/postfix/virtual")
    db, src = host.path("/etc/postfix/virtual.db"), host.path("/etc/postfix/virtual")
    age(db, 600)
    age(src, 60)                      # newer than the .db, but changed only a minute ago
    assert open_map("hash:/etc/postfix/virtual", host.path).messages == []
    age(src, 98)                      # just inside the grace time (whole seconds, "< time() - 100")
    assert open_map("hash:/etc/postfix/virtual", host.path).messages == []
    age(src, 105)
    assert open_map("hash:/etc/postfix/virtual", host.path).messages == [STALE]


def test_no_warning_when_the_db_is_as_new_or_newer(host):
    write(host, "/etc/postfix/virtual", "info@sue.nl gerda\n")
    postmap(host, "hash:/etc/postfix/virtual")
    db, src = host.path("/etc/postfix/virtual.db"), host.path("/etc/postfix/virtual")
    age(src, 600)
    age(db, 300)
    assert open_map("hash:/etc/postfix/virtual", host.path).messages == []
    t = int(time.time()) - 500        # the same second: Postfix compares whole seconds
    os.utime(db, (t + 0.1, t + 0.1))
    os.utime(src, (t + 0.9, t + 0.9))
    assert open_map("hash:/etc/postfix/virtual", host.path).messages == []
    src.unlink()                      # no source at all: nothing to compare
    assert open_map("hash:/etc/postfix/virtual", host.path).messages == []


def test_lmdb_warning_names_the_lmdb_file(host):
    write(host, "/etc/postfix/access", "10.0.0.1 REJECT\n")
    postmap(host, "lmdb:/etc/postfix/access")
    age(host.path("/etc/postfix/access.lmdb"), 600)
    age(host.path("/etc/postfix/access"), 300)
    assert open_map("lmdb:/etc/postfix/access", host.path).messages == [
        "warning: database /etc/postfix/access.lmdb is older than source file /etc/postfix/access"]


def test_postmap_and_postalias_print_the_warning_on_stderr(host):
    # as real postmap 3.7.11 does (tried on Debian 12 with a backdated .db):
    # stderr "postmap: warning: database F.db is older than source file F", the value on stdout
    write(host, "/etc/postfix/virtual", "info@sue.nl gerda\n")
    postmap(host, "hash:/etc/postfix/virtual")
    age(host.path("/etc/postfix/virtual.db"), 600)
    age(host.path("/etc/postfix/virtual"), 300)
    assert postmap(host, "-q", "info@sue.nl", "hash:/etc/postfix/virtual") == (
        0, "gerda\n", "postmap: " + STALE + "\n")
    assert postmap(host, "-q", "nobody", "hash:/etc/postfix/virtual", "hash:/etc/postfix/virtual") == (
        1, "", ("postmap: " + STALE + "\n") * 2)       # each table opened warns
    rc, out, err = postmap(host, "-s", "hash:/etc/postfix/virtual")
    assert (rc, out, err) == (0, "info@sue.nl\tgerda\n", "postmap: " + STALE + "\n")
    assert postmap(host, "-q", "info@sue.nl", "texthash:/etc/postfix/virtual")[2] == ""
    assert postmap(host, "hash:/etc/postfix/virtual") == (0, "", "")   # building never warns
    assert postmap(host, "-q", "info@sue.nl", "hash:/etc/postfix/virtual") == (0, "gerda\n", "")

    write(host, "/etc/aliases", "root: alice\n")
    out, err = io.StringIO(), io.StringIO()
    assert postalias_main(host.root, ["hash:/etc/aliases"], out, err) == 0
    age(host.path("/etc/aliases.db"), 600)
    age(host.path("/etc/aliases"), 300)
    out, err = io.StringIO(), io.StringIO()
    assert postalias_main(host.root, ["-q", "root", "hash:/etc/aliases"], out, err) == 0
    assert (out.getvalue(), err.getvalue()) == (
        "alice\n", "postalias: warning: database /etc/aliases.db is older than source file /etc/aliases\n")


def test_wrong_type_and_foreign_file(host):
    write(host, "/etc/postfix/virtual", "a b\n")
    postmap(host, "hash:/etc/postfix/virtual")
    with pytest.raises(MapError) as e:
        open_map("btree:/etc/postfix/virtual", host.path).lookup("a")
    assert e.value.warning.endswith("open database /etc/postfix/virtual.db: Invalid argument")
    host.path("/etc/postfix/virtual.db").write_bytes(b"\x00\x61\x15\x06 real Berkeley DB")
    with pytest.raises(MapError):
        open_map("hash:/etc/postfix/virtual", host.path).lookup("a")


def test_unknown_type_and_bad_spec(host):
    with pytest.raises(MapError) as e:
        open_map("foo:/etc/postfix/x", host.path)
    assert str(e.value) == "unsupported dictionary type: foo"
    assert e.value.warning == "foo:/etc/postfix/x is unavailable. unsupported dictionary type: foo"
    with pytest.raises(MapError) as e:
        open_map("/etc/postfix/x", host.path)
    assert "expecting \"type:name\" form" in str(e.value)


def test_lmdb_uses_its_own_file(host):
    write(host, "/etc/postfix/transport", "example.org smtp:[relay]\n")
    assert postmap(host, "lmdb:/etc/postfix/transport")[0] == 0
    assert open_map("lmdb:/etc/postfix/transport", host.path).lookup("Example.ORG") == "smtp:[relay]"
    with pytest.raises(MapError):
        open_map("hash:/etc/postfix/transport", host.path).lookup("example.org")


# -- aliases ---------------------------------------------------------------------------------------
def test_postalias_build(host):
    write(host, "/etc/aliases", "postmaster: root\nStaff: peter,gerda\n\"Team Lead\": \\root\n")
    host.clock = type("C", (), {"now": lambda self: 1795597421.0})()
    postalias_build(host, "hash:/etc/aliases")
    m = open_map("hash:/etc/aliases", host.path)
    assert m.lookup("staff") == "peter, gerda"
    assert m.lookup("team lead") == "root"
    assert m.lookup("@") == "@"
    assert m.lookup("YP_MASTER_NAME") is None       # stored unfolded, the query is folded
    seq = dict(m.sequence())
    assert seq["YP_LAST_MODIFIED"] == "1795597421" and seq["YP_MASTER_NAME"] == "mail.example.com"


def test_init_host_builds_aliases_db(tmp_path):
    pytest.importorskip("mailsim.conf", reason="mailsim.conf is written in parallel")
    from mailsim import conf
    if not hasattr(conf, "MainConfig"):
        pytest.skip("mailsim.conf.MainConfig not ready yet")
    from mailsim.host import init_host
    h = init_host(tmp_path / "mx", hostname="mail.example.com", users=["alice"])
    assert h.open_map("hash:/etc/aliases").lookup("mailer-daemon") == "postmaster"
    assert h.open_map("proxy:unix:passwd.byname").lookup("alice").startswith("alice:x:1000:1000:")


# -- pattern tables -----------------------------------------------------------------------------------
def test_regexp_file_and_messages(host):
    write(host, "/etc/postfix/header_checks",
          "/^Subject:.*viagra/  REJECT no spam\n/^(/ broken\nif /^X-/\n/^X-Mailer: (.*)$/ WARN $1\nendif\n")
    m = open_map("regexp:/etc/postfix/header_checks", host.path)
    assert m.messages == ["warning: regexp map /etc/postfix/header_checks, line 2: Unmatched ( or \\("]
    assert m.lookup("Subject: cheap VIAGRA") == "REJECT no spam"
    assert m.lookup("x-mailer: mutt") == "WARN mutt"
    assert m.lookup("From: a@b") is None
    assert m.describe() == "regexp:/etc/postfix/header_checks (header_checks, 2 rules)"
    write(host, "/etc/postfix/header_checks", "/x/ y\n")
    bump_mtime(host.path("/etc/postfix/header_checks"))
    assert m.changed()


def test_regexp_inline_forbidden_commands(host):
    m = open_map("regexp:{{/^[^A-Z]/ Bogus}}", host.path)
    assert m.messages == []
    assert m.lookup("\x16\x03\x01") == "Bogus"
    assert m.lookup("GET") is None and m.lookup("connect") is None
    bad = open_map("regexp:{/x/ y}", host.path)
    with pytest.raises(MapError) as e:
        bad.lookup("x")
    assert e.value.warning == ("regexp:{/x/ y} is unavailable. regexp map: no '{' at start "
                               "of text in \"/x/\"")


def test_missing_pattern_file(host):
    m = open_map("regexp:/etc/postfix/nosuch", host.path)
    with pytest.raises(MapError) as e:
        m.lookup("x")
    assert e.value.warning == ("regexp:/etc/postfix/nosuch is unavailable. "
                               "open /etc/postfix/nosuch: No such file or directory")


def test_pcre(host):
    write(host, "/etc/postfix/pcre", "/^(\\w+)\\d{2}@example\\.com$/ $1\n/^bob$/i case-sensitive\n"
                                      "/unclosed(/ x\n")
    m = open_map("pcre:/etc/postfix/pcre", host.path)
    assert m.lookup("ALICE42@example.com") == "ALICE"
    assert m.lookup("BOB") is None and m.lookup("bob") == "case-sensitive"
    assert len(m.messages) == 1 and "pcre map /etc/postfix/pcre, line 3: error in regex" in m.messages[0]


def test_cidr(host):
    write(host, "/etc/postfix/client.cidr",
          "192.0.2.0/24 REJECT test net\n2001:db8::/32 OK\n192.0.2.1/24 bad\n")
    m = open_map("cidr:/etc/postfix/client.cidr", host.path)
    assert m.lookup("192.0.2.77") == "REJECT test net"
    assert m.lookup("2001:db8::25") == "OK" and m.lookup("198.51.100.1") is None
    assert m.lookup("mail.example.com") is None
    assert m.messages == ['warning: cidr map /etc/postfix/client.cidr, line 3: non-null host address '
                          'bits in "192.0.2.1/24", perhaps you should use "192.0.2.0/24" instead: '
                          'skipping this rule']


# -- other types -------------------------------------------------------------------------------------
def test_texthash_duplicates_break_the_table_in_daemons(host):
    write(host, "/etc/postfix/th", "a 1\nA 2\n")
    m = open_map("texthash:/etc/postfix/th", host.path)
    with pytest.raises(MapError) as e:
        m.lookup("a")
    assert e.value.warning == ('texthash:/etc/postfix/th is unavailable. '
                               '/etc/postfix/th, line 2: duplicate entry: "A"')
    write(host, "/etc/postfix/th", "a 1\nb 2\n")
    m = open_map("texthash:/etc/postfix/th", host.path)
    assert m.lookup("B") == "2"                 # read directly, no postmap needed


def test_inline_static_fail(host):
    assert open_map("inline:{ a=1, { b = two words } }", host.path).lookup("B") == "two words"
    assert open_map("static:{ 550 go away }", host.path).lookup("x") == "550 go away"
    assert open_map("static:OK", host.path).lookup("x") == "OK"
    with pytest.raises(MapError) as e:
        open_map("inline:{a}", host.path).lookup("a")
    assert "missing '=' after attribute name" in e.value.warning
    with pytest.raises(MapError) as e:
        open_map("fail:x", host.path).lookup("a")
    assert e.value.warning == ""


def test_unix_nis_proxy(host):
    m = open_map("proxy:unix:passwd.byname", host.path)
    assert m.lookup("ALICE") == "alice:x:1000:1000:Alice:/home/alice:/bin/bash"
    assert m.lookup("bob") is None
    assert open_map("unix:group.byname", host.path).lookup("mail") == "mail:x:8:alice,bob"
    n = open_map("nis:mail.aliases", host.path)
    assert n.lookup("root") is None
    assert n.messages == ["warning: dict_nis_init: NIS domain name not set - NIS lookups disabled"]
    host.path("/etc/passwd").unlink()
    with pytest.raises(MapError) as e:
        m.lookup("alice")
    assert "cannot access UNIX password database" in e.value.warning
    with pytest.raises(MapError):
        open_map("unix:nosuch", host.path).lookup("x")


def test_unionmap_pipemap(host):
    u = open_map("unionmap:{inline:{a=1}, static:2}", host.path)
    assert u.lookup("a") == "1,2" and u.lookup("b") == "2"
    p = open_map("pipemap:{inline:{a=b}, inline:{b=c}}", host.path)
    assert p.lookup("a") == "c" and p.lookup("b") is None
