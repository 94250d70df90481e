"""main.cf/master.cf reading, $name expansion, defaults and MainConfig (mailsim.conf).

Behaviour is Postfix 3.7.11's; where a test states a Postfix message or
value, it was checked against the real postconf (tests/golden/postconf/).
"""
from __future__ import annotations

import pytest

from mailsim.conf import (ConfigError, MainConfig, MasterEntry, default_master_cf,
                          read_master_cf, split_list)
from mailsim.conf.defaults import (HOST_DEPENDENT, LEGACY, RAW, READONLY, builtin_defaults,
                                   recorded_defaults, service_defaults, service_parameter_names)
from mailsim.conf.expand import (PARSE_ERROR, PARSE_UNDEF, compat_level, expand,
                                 format_compat_level, scan)
from mailsim.conf.master import edit_master_cf, format_entry, parse_master_cf
from mailsim.conf.params import default_services
from mailsim.conf.parser import logical_lines, parse_main_cf, split_nameval
from mailsim.conf.simulated import SIMULATED


# -- parser -----------------------------------------------------------------------------------
def test_logical_lines_join_continuations_and_skip_comments():
    text = "a = 1,\n  # comment inside\n\n\t2\nb = x # not a comment\n"
    assert list(logical_lines(text)) == [(1, "a = 1,\t2"), (5, "b = x # not a comment")]


def test_only_newline_ends_a_line():
    assert list(logical_lines("a = x\x0cy\r\nb = 2")) == [(1, "a = x\x0cy\r"), (2, "b = 2")]


def test_leading_whitespace_at_start_is_a_warning_not_an_error():
    parsed = parse_main_cf("  relayhost = x\n    more\nmyhostname = a.b\n")
    assert [(e.name, e.value) for e in parsed.entries] == [("myhostname", "a.b")]
    assert parsed.warnings == ['/etc/postfix/main.cf: logical line must not start with '
                               'whitespace: "  relayhost = x    more"']


def test_long_lost_line_is_truncated_in_the_warning():
    parsed = parse_main_cf("\tsmtpd_banner = $myhostname ESMTP $mail_name (Debian)\n")
    assert parsed.warnings == ['/etc/postfix/main.cf: logical line must not start with '
                               'whitespace: "\tsmtpd_banner = $myhostname ES..."']


@pytest.mark.parametrize("text,line,message", [
    ("myhostname = a\n\n# x\nrelayhost [mail.isp.net]\n", 4,
     "missing '=' after attribute name: \"relayhost [mail.isp.net]\""),
    ("a = 1\nrelayhost\n  [mail.isp.net]\n", 2,
     "missing '=' after attribute name: \"relayhost  [mail.isp.net]\""),
    ("= x\n", 1, 'missing attribute name: "= x"'),
    ("my hostname = x\n", 1, "missing '=' after attribute name: \"my hostname = x\""),
])
def test_bad_lines_name_file_line_and_fix(text, line, message):
    with pytest.raises(ConfigError) as info:
        parse_main_cf(text)
    e = info.value
    assert (e.file, e.line, e.message) == ("/etc/postfix/main.cf", line, message)
    assert e.hint
    assert str(e) == f"/etc/postfix/main.cf, line {line}: {message} -- {e.hint}"


def test_missing_equals_hint_shows_the_fixed_line():
    with pytest.raises(ConfigError) as info:
        parse_main_cf("relayhost [mail.isp.net]\n", "/etc/postfix/main.cf")
    assert 'relayhost = [mail.isp.net]' in info.value.hint


def test_split_nameval_trims():
    assert split_nameval(" a =  b c \t") == ("a", "b c")
    assert split_nameval("a=") == ("a", "")


def test_duplicates_last_wins_with_postfix_warning():
    conf = MainConfig.from_text("myhostname = a.b\nbiff = no\nmyhostname = c.d\nmyhostname = c.d\n")
    assert conf.explicit == {"myhostname": "c.d", "biff": "no"}
    assert list(conf.explicit) == ["myhostname", "biff"]
    assert conf.warnings == ["/etc/postfix/main.cf, line 3: overriding earlier entry: myhostname=a.b"]


# -- expansion ------------------------------------------------------------------------------
VALUES = {"myhostname": "h.example", "mydomain": "example", "empty": "", "n": "10",
          "compatibility_level": "3.6", "a": "$b", "b": "$a", "list": "$myhostname, x"}


@pytest.mark.parametrize("pattern,result", [
    ("$myhostname ${myhostname} $(myhostname)", "h.example h.example h.example"),
    ("${myhostname?x}|${empty?x}|${nosuch?x}", "x||"),
    ("${myhostname:x}|${empty:x}|${nosuch:x}", "|x|x"),
    ("${myhostname?{ a b }}", " a b "),
    ("${myhostname?{yes}:{no}}|${empty?{yes}:{no}}", "yes|no"),
    ("${ myhostname }", "h.example"),
    ("$$ $$myhostname", "$ $myhostname"),
    ("${list}", "h.example, x"),
    ("${{$n} < {9} ? {lt} : {ge}}", "ge"),           # numeric: 10 > 9
    ("${{abc} < {abd} ? {lt} : {ge}}", "lt"),        # string order
    ("${{1} == {01} ? {eq} : {ne}}", "eq"),
    ("${{a} != {b}}|${{2} <= {1}}", "true|"),
    ("${{$compatibility_level} <level {2} ? {old} : {new}}", "new"),
    ("${{3.10} >level {3.9} ? {newer}}", "newer"),
    ("${{3} ==level {3.0.0} ? {same}}", "same"),
    ("${myhostname??foo:{b}ar}", "?foo:{b}ar"),      # Postfix 2.11 compatibility
])
def test_expand_forms(pattern, result):
    assert expand(pattern, VALUES.get)[0] == result


def test_undefined_expands_to_nothing():
    assert expand("[$nosuch]", VALUES.get) == ("[]", PARSE_UNDEF)


@pytest.mark.parametrize("pattern,warning", [
    ("${b", 'truncated macro reference: "${b"'),
    ("x$", 'empty macro name: "x$"'),
    ("${b-c}", 'attribute name syntax error at: "...b>>>-c"'),
    ("${{x}}", '"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...x}>>>"'),
    ("${myhostname?{x} junk}", '":" expected at: "...x}>>>junk"'),
    ("${myhostname:{x} junk}", 'unexpected input at: "...x}>>>junk"'),
    ("${{foo} <level {2}}", 'malformed compatibility level syntax: "foo"'),
    ("${{1} <bogus {2}}", 'bad operator suffix at: "...<>>>bogus"'),
    ("$a", 'unreasonable macro call nesting: "b"'),
])
def test_expand_errors_use_postfix_wording(pattern, warning):
    warnings: list[str] = []
    _, status = expand(pattern, VALUES.get, warn=warnings.append)
    assert status & PARSE_ERROR
    assert warnings == [warning]


def test_scan_visits_every_branch():
    names: list[str] = []
    scan("${x?{$y}:{$z}} ${{$p} == {$q}} $$notme", names.append)
    assert names == ["x", "y", "z", "p", "q"]


def test_compat_levels():
    assert compat_level("3.6") < compat_level("3.10") < compat_level("4")
    assert compat_level("2") == compat_level("2.0.0")
    for bad in ("", "3.", "-1", "3.1024", "1.2.3.4", "x"):
        assert compat_level(bad) is None
    assert format_compat_level(compat_level("3.6.1")) == "3.6.1"


# -- split_list --------------------------------------------------------------------------------
@pytest.mark.parametrize("value,items", [
    ("a, b,c\td\r\ne", ["a", "b", "c", "d", "e"]),
    (" , ,", []),
    ("CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}}",
     ["CONNECT", "GET", "POST", "regexp:{{/^[^A-Z]/ Bogus}}"]),
    ("inline:{ a=b, c=d }, hash:/etc/aliases", ["inline:{ a=b, c=d }", "hash:/etc/aliases"]),
    ("permit_mynetworks, { reject_unlisted_recipient }, permit",
     ["permit_mynetworks", "reject_unlisted_recipient", "permit"]),
    ("check_policy_service { inet:127.0.0.1:9998, timeout=10s }",
     ["check_policy_service", "inet:127.0.0.1:9998, timeout=10s"]),
    ("a} b", ["a}", "b"]),
])
def test_split_list(value, items):
    assert split_list(value) == items


def test_split_list_errors_and_raw_braces():
    with pytest.raises(ValueError, match="missing '}'"):
        split_list("{ a b")
    assert split_list("{ a }", strip_braces=False) == ["{ a }"]


# -- defaults ------------------------------------------------------------------------------------
def test_builtin_plus_service_defaults_are_postconf_d():
    merged = {**builtin_defaults(), **service_defaults(default_services())}
    assert merged == recorded_defaults()
    assert len(builtin_defaults()) == 831          # real postconf -d with an empty master.cf


def test_host_dependent_defaults_are_only_those():
    other = builtin_defaults({"myhostname": "x.y", "mydomain": "y", "mynetworks": "10.0.0.0/8",
                              "process_id": "1"})
    changed = {n for n in other if other[n] != builtin_defaults()[n]}
    assert changed == set(HOST_DEPENDENT)


def test_service_parameters():
    names = service_parameter_names([("dovecot", "/usr/lib/postfix/pipe"), ("spawner", "spawn"),
                                     ("cleanup", "cleanup")])
    assert names["dovecot_time_limit"] == "$command_time_limit"
    assert names["dovecot_destination_recipient_limit"] == "$default_destination_recipient_limit"
    assert len(names) == 18 and list(names)[-1] == "spawner_time_limit"
    # built-in values win over the service template
    assert "local_destination_concurrency_limit" not in service_defaults([("local", "local")])


def test_legacy_readonly_raw_are_postfix_names():
    d = builtin_defaults()
    assert all(n not in d for n in LEGACY)
    assert all(n in d for n in READONLY + RAW)


def test_simulated_names_are_real_parameters():
    known = set(builtin_defaults()) | set(LEGACY)
    assert SIMULATED <= known
    for name in ("myhostname", "mydestination", "smtpd_recipient_restrictions", "alias_maps",
                 "smtpd_forbid_bare_newline", "unknown_local_recipient_reject_code",
                 "parent_domain_matches_subdomains", "compatibility_level"):
        assert name in SIMULATED


# -- MainConfig ------------------------------------------------------------------------------
HOST = {"myhostname": "mx.example.net", "mydomain": "example.net",
        "mynetworks": "127.0.0.0/8", "process_id": "77"}


def test_values_defaults_and_expansion():
    conf = MainConfig.from_text("myorigin = $mydomain\n", HOST)
    assert conf.raw("myorigin") == "$mydomain" and conf["myorigin"] == "example.net"
    assert conf.default("myorigin") == "$myhostname"
    assert conf.raw("mydestination") == "$myhostname, localhost.$mydomain, localhost"
    assert conf["mydestination"] == "mx.example.net, localhost.example.net, localhost"
    assert conf["process_id"] == "77" and conf["mynetworks"] == "127.0.0.0/8"
    assert conf.raw("nosuch") is None and conf.default("nosuch") is None
    with pytest.raises(KeyError):
        conf["nosuch"]
    assert conf.get("nosuch") is None and conf.get("nosuch", "x") == "x"
    assert "relayhost" in conf and "nosuch" not in conf


def test_user_defined_parameters_are_values():
    conf = MainConfig.from_text("my_domains = a.example b.example\nmydestination = $my_domains\n")
    assert "my_domains" in conf
    assert conf.list("mydestination") == ["a.example", "b.example"]


def test_mydomain_follows_myhostname():
    conf = MainConfig.from_text("myhostname = mail.example.com\n", HOST)
    assert conf["mydomain"] == "example.com"
    assert MainConfig.from_text("myhostname = mail\n", HOST)["mydomain"] == "localdomain"
    assert MainConfig.from_text("", HOST)["mydomain"] == "example.net"


def test_machine_name_without_dot_takes_mydomain():
    hd = {**HOST, "hostname": "gw", "myhostname": "gw.localdomain", "mydomain": "localdomain"}
    assert MainConfig.from_text("mydomain = example.org\n", hd)["myhostname"] == "gw.example.org"
    assert MainConfig.from_text("", hd)["myhostname"] == "gw.localdomain"


def test_compatibility_level_defaults():
    old = MainConfig.from_text("")
    new = MainConfig.from_text("compatibility_level = 3.6\n")
    assert (old["mynetworks_style"], new["mynetworks_style"]) == ("subnet", "host")
    assert old.bool("smtputf8_enable") is False and new.bool("smtputf8_enable") is True
    assert new.list("smtpd_relay_restrictions") == ["permit_mynetworks", "permit_sasl_authenticated",
                                                    "defer_unauth_destination"]
    assert new["relay_domains"] == "" and old["relay_domains"] == old["mydestination"]


def test_raw_parameters_are_not_expanded():
    conf = MainConfig.from_text("smtpd_reject_footer = Call $myhostname\n")
    assert conf["smtpd_reject_footer"] == "Call $myhostname"
    assert conf.expand(conf["smtpd_reject_footer"]).startswith("Call ")
    assert conf["default_rbl_reply"].startswith("$rbl_code Service unavailable")


def test_readonly_settings_are_ignored():
    conf = MainConfig.from_text("process_id = 5\nmyhostname = a.b\n", HOST)
    assert conf["process_id"] == "77"
    assert "process_id" not in conf.explicit and conf.readonly_assignments == {"process_id": "5"}


def test_typed_values():
    conf = MainConfig.from_text("biff = YES\nsmtpd_recipient_limit = 100\n"
                                "delay_warning_time = 4\nipc_timeout = 2m\nbounce_queue_lifetime = 1w\n")
    assert conf.bool("biff") is True and conf.bool("smtpd_delay_reject") is True
    assert conf.int("smtpd_recipient_limit") == 100
    assert conf.time("delay_warning_time") == 4 * 3600      # default unit of 0h is h
    assert conf.time("ipc_timeout") == 120 and conf.time("bounce_queue_lifetime") == 7 * 86400
    assert conf.time("smtpd_error_sleep_time") == 1
    assert conf.time("delay_warning_time", "m") == 240


@pytest.mark.parametrize("setting,call,message", [
    ("biff = maybe", lambda c: c.bool("biff"), "bad boolean configuration: biff = maybe"),
    ("smtpd_recipient_limit = 10k", lambda c: c.int("smtpd_recipient_limit"),
     "bad numerical configuration: smtpd_recipient_limit = 10k"),
    ("ipc_timeout = 3x", lambda c: c.time("ipc_timeout"),
     "parameter ipc_timeout: bad time value or unit: 3x"),
    ("ipc_timeout = -3s", lambda c: c.time("ipc_timeout"),
     "parameter ipc_timeout: bad time value or unit: -3s"),
    ("mydestination = {a", lambda c: c.list("mydestination"),
     "mydestination: missing '}' in \"{a\""),
])
def test_typed_errors(setting, call, message):
    conf = MainConfig.from_text("# x\n" + setting + "\n")
    with pytest.raises(ConfigError) as info:
        call(conf)
    assert info.value.message == message and info.value.line == 2 and info.value.hint


def test_macro_error_names_parameter_file_and_line():
    conf = MainConfig.from_text("a = 1\nmyorigin = ${mydomain\n")
    with pytest.raises(ConfigError) as info:
        conf["myorigin"]
    e = info.value
    assert (e.file, e.line) == ("/etc/postfix/main.cf", 2)
    assert "truncated macro reference" in e.message and "macro processing error" in e.message


def test_set_returns_a_new_config():
    conf = MainConfig.from_text("relayhost =\n", HOST)
    other = conf.set("relayhost", "[smtp.example]").set("foo", "$myhostname")
    assert conf["relayhost"] == "" and other["relayhost"] == "[smtp.example]"
    assert other["foo"] == "mx.example.net" and other.host_defaults == HOST


def test_load(tmp_path):
    (tmp_path / "main.cf").write_text("myhostname = a.example\n")
    (tmp_path / "master.cf").write_text("smtp inet n - n - - smtpd\nfast unix - - n - - smtp\n")
    conf = MainConfig.load(tmp_path / "main.cf", HOST)
    assert conf["myhostname"] == "a.example"
    assert conf["fast_destination_concurrency_limit"] == "20"
    assert conf.raw("relay_destination_concurrency_limit") is None      # no relay service here
    with pytest.raises(ConfigError) as info:
        MainConfig.load(tmp_path / "nosuch.cf")
    assert info.value.message == "open /etc/postfix/main.cf: No such file or directory"


def test_load_without_master_cf_uses_debian_services(tmp_path):
    (tmp_path / "main.cf").write_text("")
    assert MainConfig.load(tmp_path / "main.cf")["relay_destination_concurrency_limit"] == "20"


def test_host_uses_mainconfig(tmp_path):
    from mailsim.host import init_host
    host = init_host(tmp_path / "mx", hostname="mail.example.org", users=["alice"])
    assert isinstance(host.conf, MainConfig)
    assert host.conf["mydestination"] == ("mail.example.org, localhost.example.org, localhost, "
                                         "example.org")
    assert host.conf.list("alias_maps") == ["hash:/etc/aliases"]


# -- master.cf ------------------------------------------------------------------------------
def test_default_master_cf_parses():
    entries = read_master_cf_text(default_master_cf())
    assert len(entries) == 31
    relay = next(e for e in entries if e.service == "relay")
    assert (relay.type, relay.chroot, relay.command) == ("unix", "y", "smtp")
    assert relay.params == {"syslog_name": "postfix/$service_name"}
    assert relay.line == 24 and relay.readonly_params["service_name"] == "relay"
    pipe = next(e for e in entries if e.service == "maildrop")
    assert pipe.args[:2] == ["flags=DRXhu", "user=vmail"]


def read_master_cf_text(text: str) -> list[MasterEntry]:
    return parse_master_cf(text)


def test_master_option_normalization():
    [e] = parse_master_cf("sub inet n - y - - smtpd -vo a=1 -ob=2 -o { c = x y } {arg with space}\n")
    assert e.args == ["-v", "-o", "a=1", "-o", "b=2", "-o", "c=x y", "arg with space"]
    assert e.params == {"a": "1", "b": "2", "c": "x y"}
    # postconf puts braces around -o values with spaces, but not around the first
    # non-option argument (checked with the real postconf -M)
    assert format_entry(e) == ("sub        inet  n       -       y       -       -       smtpd "
                               "-v -o a=1 -o b=2 -o {c=x y} arg with space\n")


@pytest.mark.parametrize("text,line,message", [
    ("smtp inet n - y - - smtpd\nbroken unix - - y -\n", 2, "bad field count"),
    ("x unixx - - y - - smtp\n", 1, 'invalid type field "unixx" in "x unixx - - y - - smtp"'),
    ("x inet yes - y - - smtpd\n", 1, 'invalid private field "yes" in "x inet yes - y - - smtpd"'),
    ("# c\np unix n - y 6x 1 pickup\n", 2, 'invalid wakeup field "6x" in "p unix n - y 6x 1 pickup"'),
    ("p unix n - y 60 one pickup\n", 1,
     'invalid process_limit field "one" in "p unix n - y 60 one pickup"'),
])
def test_master_errors(text, line, message, tmp_path):
    path = tmp_path / "master.cf"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_master_cf(path)
    e = info.value
    assert (e.file, e.line, e.message) == ("/etc/postfix/master.cf", line, message)
    assert str(e).startswith(f"/etc/postfix/master.cf, line {line}: ") and e.hint


def test_master_missing(tmp_path):
    with pytest.raises(ConfigError, match="No such file"):
        read_master_cf(tmp_path / "nosuch")


def test_master_edits():
    text = "smtp inet n - y - - smtpd\n  -o a=b\n# keep\npickup unix n - y 60 1 pickup\n"
    # the comment after the entry is read with it and so comes out first (as in Postfix)
    assert edit_master_cf(text, "P", "e", ["smtp/inet/a=c"]) == (
        "# keep\nsmtp       inet  n       -       y       -       -       smtpd\n    -o a=c\n"
        "pickup unix n - y 60 1 pickup\n")
    assert edit_master_cf(text, "M", "#", ["smtp/inet"]) == (
        "#smtp inet n - y - - smtpd\n#  -o a=b\n# keep\npickup unix n - y 60 1 pickup\n")
    assert edit_master_cf(text, "M", "X", ["pickup/unix"]) == (
        "smtp inet n - y - - smtpd\n  -o a=b\n# keep\n")
    warnings: list[str] = []
    assert edit_master_cf(text, "F", "e", ["x/unix/chroot=n"], warn=warnings.append) == text
    assert warnings == ['unmatched service_name/type: "x/unix/chroot=n"']


def test_master_entry_field_and_param_updates():
    [e] = parse_master_cf("relay unix - - y - - smtp\n")
    e.set_field(4, "n")
    assert e.chroot == "n"
    e.set_param("smtp_helo_timeout", "5")
    assert e.params == {"smtp_helo_timeout": "5"}
    assert e.set_param("smtp_helo_timeout", None) and e.params == {}


def test_no_network(monkeypatch):
    """The configuration layer never opens sockets."""
    import socket

    def refuse(*a, **k):
        raise AssertionError("network access")
    monkeypatch.setattr(socket, "socket", refuse)
    conf = MainConfig.from_text("myhostname = a.example\n")
    assert conf["myhostname"] == "a.example" and conf.list("mydestination")
