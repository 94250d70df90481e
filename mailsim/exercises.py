"""Check functions for the notebooks' exercises: they say what is right, or what is wrong and how to fix it.

Each check looks at a simulated host the way an examiner would look at a real
Postfix server -- by asking it (an SMTP session, ``postconf``) -- and returns a
:class:`Result` whose text is ``✔ ...`` or ``✘ ... because ...; fix: ... (on a
real server: postconf -e ...; postfix reload)``.

* :func:`check_not_open_relay` -- an outside client (192.0.2.99, TEST-NET-1)
  tries to relay to a foreign domain; Postfix must refuse (554 with
  ``reject_unauth_destination``, 454 with the default
  ``defer_unauth_destination``). If it relays, the check names what let it:
  mynetworks, a ``permit``, an access table's OK, relay_domains.
* :func:`check_relay_domains` -- the host accepts mail for a domain it relays
  for (address class *relay*).
* :func:`check_mynetworks` -- trusted clients are in mynetworks, the others not.
* :func:`check_parameter` -- a parameter has a value (expanded, as ``postconf -x``
  shows it), and the running host has loaded it (``postfix reload``).
* :func:`check_reply` -- a dialogue (``%%smtp`` output) ended with the expected
  reply code.

Examples
--------
>>> import tempfile
>>> from mailsim import init_host
>>> h = init_host(tempfile.mkdtemp() + "/mx", users=["alice"])
>>> check_not_open_relay(h)
✔ not an open relay: 192.0.2.99 cannot relay to relaytest@elsewhere.example (454 4.7.1 <relaytest@elsewhere.example>: Relay access denied). 454 is a temporary refusal (defer_unauth_destination, the default); reject_unauth_destination refuses for good with 554
>>> r = check_not_open_relay(h.with_settings(mynetworks="0.0.0.0/0"))
>>> r.ok
False
>>> print(r)
✘ open relay: 192.0.2.99 relays to relaytest@elsewhere.example (250 2.1.5 Ok) because smtpd_relay_restrictions: permit_mynetworks lets it: 192.0.2.99 is in mynetworks (0.0.0.0/0); fix: list only your own networks in mynetworks (on a real server: postconf -e 'mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128'; postfix reload)
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable

from .conf import MainConfig, split_list
from .domains import match_network
from .graphs import decide, deciding_step
from .reply import Reply

__all__ = ["Result", "check_not_open_relay", "check_relay_domains", "check_mynetworks",
           "check_parameter", "check_reply"]

OUTSIDE_CLIENT = "192.0.2.99"
FOREIGN = "relaytest@elsewhere.example"
SAFE_MYNETWORKS = "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128"
SAFE_RELAY = "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"


@dataclass
class Result:
    """The outcome of a check. ``bool(result)`` is ``result.ok``."""

    ok: bool
    what: str
    because: str = ""
    fix: str = ""
    real: str = ""          # the command(s) on a real server

    def __bool__(self) -> bool:
        return self.ok

    def text(self) -> str:
        if self.ok:
            return f"✔ {self.what}"
        out = f"✘ {self.what}"
        if self.because:
            out += f" because {self.because}"
        if self.fix:
            out += f"; fix: {self.fix}"
        if self.real:
            out += f" (on a real server: {self.real})"
        return out

    __str__ = text

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(self.text())


def _postconf(**settings: str) -> str:
    sets = " ".join(f"'{k} = {v}'" for k, v in settings.items())
    return f"postconf -e {sets}; postfix reload"


def _list(host, name: str) -> str:
    return host.conf.get(name) or ""


# -- relaying ----------------------------------------------------------------------------------
def check_not_open_relay(host, *, client: str = OUTSIDE_CLIENT,
                         recipient: str = FOREIGN) -> Result:
    """Can an outside ``client`` relay to ``recipient`` (a domain this host has no business
    with)? It must not. Also tries the percent hack ``user%domain@myhostname``."""
    local, _, domain = recipient.rpartition("@")
    tries = [recipient, f"{local}%{domain}@{host.conf['myhostname']}"]
    decisions = decide(host, tries, client=client)
    for addr, d in zip(tries, decisions):
        if d.reply is None or d.reply.code >= 400 or d.stage != "RCPT":
            continue
        what = f"open relay: {client} relays to {addr} ({d.reply})"
        because, fix, real = _why_relayed(host, d, client)
        return Result(False, what, because, fix, real)
    first = decisions[0]
    fatal = next((st for st in first.steps if st.verdict == "FATAL"), None)
    if fatal is not None:
        return Result(False, "smtpd does not start, so nobody can send mail to this host",
                      fatal.detail, "end smtpd_relay_restrictions with reject_unauth_destination",
                      _postconf(smtpd_relay_restrictions=SAFE_RELAY))
    reply = str(first.reply) if first.reply else first.action
    what = f"not an open relay: {client} cannot relay to {recipient} ({reply})"
    if first.reply is not None and first.reply.code // 100 == 4 and "Relay access denied" in reply:
        what += (". 454 is a temporary refusal (defer_unauth_destination, the default); "
                 "reject_unauth_destination refuses for good with 554")
    return Result(True, what)


def _why_relayed(host, d, client: str) -> tuple[str, str, str]:
    st = deciding_step(d)
    relay_list = _list(host, "smtpd_relay_restrictions")
    if d.resolved is not None and d.resolved.klass == "relay":
        dom = d.resolved.domain
        rest = [x for x in host.conf.list("relay_domains") if x.lower() != dom.lower()]
        return (f"{dom} is in relay_domains ({host.conf.get('relay_domains')}), so this host relays for it",
                f"take {dom} out of relay_domains", _postconf(relay_domains=" ".join(rest)))
    if st is None:
        return (f"no restriction refuses it: smtpd_relay_restrictions = {relay_list or '(empty)'} "
                "has no reject_unauth_destination (or defer_unauth_destination) for foreign domains",
                "end smtpd_relay_restrictions with reject_unauth_destination",
                _postconf(smtpd_relay_restrictions=SAFE_RELAY))
    el = st.element.split()[0].lower()
    where = f"{st.restriction_list}: {st.element}"
    if el == "permit_mynetworks":
        return (f"{where} lets it: {client} is in mynetworks ({host.conf['mynetworks']})",
                "list only your own networks in mynetworks",
                _postconf(mynetworks=SAFE_MYNETWORKS))
    if el == "permit":
        return (f"{st.restriction_list} permits every client ('permit' comes before any "
                "reject_unauth_destination)",
                f"remove 'permit' from {st.restriction_list}; end smtpd_relay_restrictions with "
                "reject_unauth_destination",
                _postconf(smtpd_relay_restrictions=SAFE_RELAY))
    if el.startswith("check_") and st.detail:
        table = st.element.split()[1] if len(st.element.split()) > 1 else "the access table"
        path = table.partition(":")[2]
        return (f"{where} answers {st.detail} -- OK in an access table permits, relaying included",
                f"remove that entry from {path or table} (or make it REJECT) and run postmap",
                f"edit {path or table}; postmap {table}")
    return (f"{where} permits it ({st.detail or st.verdict})",
            "put reject_unauth_destination before that element",
            _postconf(smtpd_relay_restrictions=SAFE_RELAY))


def check_relay_domains(host, domain: str, *, client: str = OUTSIDE_CLIENT,
                        user: str = "someone") -> Result:
    """Does this host relay for ``domain``: address class *relay* and RCPT accepted from
    an outside client?

    >>> import tempfile
    >>> from mailsim import init_host
    >>> h = init_host(tempfile.mkdtemp() + "/mx")
    >>> print(check_relay_domains(h, "example.net"))
    ✘ example.net is not a relay domain (454 4.7.1 <someone@example.net>: Relay access denied) because relay_domains (= '', the default) does not list it: the domain gets address class default, which reject_unauth_destination refuses; fix: add example.net to relay_domains (on a real server: postconf -e 'relay_domains = example.net'; postfix reload)
    >>> check_relay_domains(h.with_settings(relay_domains="example.net"), "example.net")
    ✔ example.net is a relay domain: someone@example.net from 192.0.2.99 gets 250 2.1.5 Ok (address class relay)
    """
    addr = f"{user}@{domain}"
    d, = decide(host, [addr], client=client)
    reply = str(d.reply) if d.reply else d.action
    klass = d.resolved.klass if d.resolved is not None else host.trivial_rewrite().resolve(addr).klass
    raw = host.conf.raw("relay_domains") or ""
    current = host.conf.get("relay_domains") or ""
    if klass == "relay":
        if d.reply is not None and d.reply.code < 400:
            return Result(True, f"{domain} is a relay domain: {addr} from {client} gets {reply} "
                                "(address class relay)")
        if d.reply is not None and "relay recipient table" in d.reply.text:
            return Result(True, f"{domain} is a relay domain (address class relay); {addr} itself is "
                                f"refused by relay_recipient_maps: {reply}")
        st = deciding_step(d)
        return Result(False, f"{domain} is in relay_domains, but {addr} is refused ({reply})",
                      f"{st.restriction_list}: {st.element} refuses it" if st else "a restriction refuses it",
                      "look at the decision graph: mailsim.graphs.decide(host, [...], client=...)")
    if klass in ("local", "virtual", "alias"):
        param = {"local": "mydestination", "virtual": "virtual_mailbox_domains",
                 "alias": "virtual_alias_domains"}[klass]
        return Result(False, f"{domain} is not a relay domain ({reply})",
                      f"{param} lists it (address class {klass}): this host delivers it itself",
                      f"remove {domain} from {param} and add it to relay_domains",
                      _postconf(relay_domains=" ".join(split_list(current) + [domain])))
    if "relay_domains" in host.conf.explicit:
        shown = f"'{raw}'" + (f", that is '{current}'" if current != raw else "")
    else:
        shown = f"'{current}', the default"
    return Result(False, f"{domain} is not a relay domain ({reply})",
                  f"relay_domains (= {shown}) does not list it: the domain gets address class "
                  f"{klass}, which reject_unauth_destination refuses",
                  f"add {domain} to relay_domains",
                  _postconf(relay_domains=" ".join(split_list(current) + [domain])))


def _as_list(x: str | Iterable[str]) -> list[str]:
    return split_list(x) if isinstance(x, str) else list(x)


def check_mynetworks(host, trusted: str | Iterable[str] = (),
                     untrusted: str | Iterable[str] = ()) -> Result:
    """Are the ``trusted`` client addresses in mynetworks and the ``untrusted`` ones not?

    >>> import tempfile
    >>> from mailsim import init_host
    >>> h = init_host(tempfile.mkdtemp() + "/mx")
    >>> check_mynetworks(h.with_settings(mynetworks="127.0.0.0/8 192.0.2.0/24"), ["192.0.2.10"], ["198.51.100.7"])
    ✔ mynetworks (127.0.0.0/8 192.0.2.0/24) holds 192.0.2.10 and not 198.51.100.7
    >>> print(check_mynetworks(h.with_settings(mynetworks="0.0.0.0/0"), ["127.0.0.1"], ["198.51.100.7"]))
    ✘ mynetworks (0.0.0.0/0) is wrong because 198.51.100.7 should not be in it but 0.0.0.0/0 covers it; fix: set mynetworks to your own networks only (on a real server: postconf -e 'mynetworks = 127.0.0.1/32'; postfix reload)
    """
    trusted, untrusted = _as_list(trusted), _as_list(untrusted)
    entries = host.conf.list("mynetworks")

    def lookup(spec: str, key: str):
        return host.open_map(spec).lookup(key)

    def covered(addr: str, es: list[str]) -> bool:
        return match_network(addr, es, lookup=lookup)

    value = host.conf["mynetworks"]
    problems = []
    for a in trusted:
        if not covered(a, entries):
            problems.append(f"{a} should be in it but is not")
    bad_entries: list[str] = []
    for a in untrusted:
        if covered(a, entries):
            by = [e for e in entries if covered(a, [e])]
            bad_entries += by
            problems.append(f"{a} should not be in it but {', '.join(by) or 'an entry'} covers it")
    note = ""
    relay = [e.lower() for e in host.conf.list("smtpd_relay_restrictions")]
    if "permit_mynetworks" not in relay:
        note = " (note: smtpd_relay_restrictions does not use permit_mynetworks)"
    if not problems:
        parts = []
        if trusted:
            parts.append(f"holds {', '.join(trusted)}")
        if untrusted:
            parts.append(f"not {', '.join(untrusted)}")
        return Result(True, f"mynetworks ({value}) {' and '.join(parts) or 'is set'}{note}")
    keep = [e for e in entries if e not in bad_entries]
    for a in trusted:
        if not covered(a, keep):
            keep.append(f"{a}/32" if ":" not in a else f"[{a}]/128")
    return Result(False, f"mynetworks ({value}) is wrong{note}", "; ".join(problems),
                  "set mynetworks to your own networks only" if bad_entries
                  else "add the trusted addresses (or their networks) to mynetworks",
                  _postconf(mynetworks=" ".join(keep)))


# -- parameters --------------------------------------------------------------------------------
def check_parameter(host, name: str, expected: str) -> Result:
    """Is ``name`` set to ``expected``? Both are compared expanded (``$myhostname`` ->
    its value, as ``postconf -x`` shows), as lists (commas or spaces). If main.cf has
    the value but the host has not loaded it, the fix is ``postfix reload``.

    >>> import tempfile
    >>> from mailsim import init_host
    >>> h = init_host(tempfile.mkdtemp() + "/mx")
    >>> check_parameter(h, "myorigin", "example.com")
    ✔ myorigin = example.com (main.cf: $mydomain)
    >>> print(check_parameter(h, "relayhost", "[smtp.example.net]:587"))
    ✘ relayhost is '' because main.cf sets relayhost = ; fix: set relayhost = [smtp.example.net]:587 (on a real server: postconf -e 'relayhost = [smtp.example.net]:587'; postfix reload)
    >>> print(check_parameter(h, "my_networks", "127.0.0.0/8"))
    ✘ my_networks is not a Postfix parameter because postconf does not know it; fix: did you mean mynetworks?
    """
    conf = host.conf
    if name not in conf:
        close = difflib.get_close_matches(name, list(conf.defaults()), n=1)
        return Result(False, f"{name} is not a Postfix parameter", "postconf does not know it",
                      f"did you mean {close[0]}?" if close else "check the name with postconf -d")
    want = conf.expand(expected)
    have = conf[name]
    real = _postconf(**{name: expected})
    if _same(have, want):
        raw = conf.raw(name) or ""
        src = f" (main.cf: {raw})" if name in conf.explicit and raw != have else ""
        return Result(True, f"{name} = {have}{src}")
    on_disk = _disk_value(host, name)
    if on_disk is not None and _same(on_disk, want):
        return Result(False, f"{name} is still '{have}' in the running host",
                      f"main.cf says {name} = {on_disk}, but the host has not re-read main.cf",
                      "reload: host.reload() (or: mailsim --root HOST postfix reload)",
                      "postfix reload")
    if name in conf.explicit:
        because = f"main.cf sets {name} = {conf.explicit[name]}"
    else:
        because = f"main.cf does not set it, so the default applies ({conf.raw(name)})"
    return Result(False, f"{name} is '{have}'", because, f"set {name} = {expected}", real)


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split()) or split_list(a) == split_list(b)


def _disk_value(host, name: str) -> str | None:
    try:
        fresh = MainConfig.load(host.root / "etc/postfix/main.cf", host_defaults=host.host_defaults())
        return fresh[name]
    except Exception:
        return None


# -- replies -------------------------------------------------------------------------------------
_CLASS_MEANING = {2: "2xx: done, accepted", 3: "3xx: go on (send the message)",
                  4: "4xx: refused for now, the client retries later",
                  5: "5xx: refused for good, the client gives up and bounces"}


def _reply_of(x: Any, command: str | None) -> str:
    from .magic import Transcript
    if isinstance(x, Transcript):
        if command is not None:
            return x.reply_to(command) or ""
        last = ""
        for (who, text), nxt in zip(x.entries, x.entries[1:]):
            if who == "C" and nxt[0] == "S" and text.strip().upper() != "QUIT":
                last = nxt[1]
        return last or x.last
    if isinstance(x, Reply):
        return str(x)
    if hasattr(x, "reply") and isinstance(getattr(x, "reply"), (Reply, type(None))):
        return str(x.reply) if x.reply is not None else ""
    return str(x).strip().split("\n")[-1] if str(x).strip() else ""


def _code_matches(code: int, want: int | str) -> bool:
    w = str(want).lower()
    c = str(code)
    return len(w) >= 1 and all(ch == "x" or ch == c[i] for i, ch in enumerate(w[:3]))


def check_reply(transcript_or_reply: Any, code: int | str, *, command: str | None = None) -> Result:
    """Did the server answer with ``code`` (``554``, or a pattern: ``"5xx"``, ``"45x"``, ``"4"``)?

    Takes a ``%%smtp`` Transcript (its last reply to a command other than QUIT, or the
    reply to the last ``command`` given, e.g. ``command="RCPT"``), a Reply, a Decision
    or reply text.

    >>> check_reply("250 2.1.5 Ok", 250)
    ✔ 250 2.1.5 Ok (2xx: done, accepted)
    >>> print(check_reply("454 4.7.1 <a@elsewhere.example>: Relay access denied", "5xx"))
    ✘ the server answered 454 4.7.1 <a@elsewhere.example>: Relay access denied, not 5xx because 4xx: refused for now, the client retries later; fix: defer_unauth_destination answers 454: use reject_unauth_destination in smtpd_relay_restrictions (on a real server: postconf -e 'smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination'; postfix reload)
    """
    text = _reply_of(transcript_or_reply, command)
    if not text[:3].isdigit():
        return Result(False, f"no reply to check (got {text!r})",
                      "the dialogue has no server reply there", "run the %%smtp cell first")
    got = int(text[:3])
    if _code_matches(got, code):
        return Result(True, f"{text} ({_CLASS_MEANING.get(got // 100, '')})")
    want = str(code)
    fix, real = "look at why with the decision graph (mailsim.graphs.decide)", ""
    if "Relay access denied" in text and got // 100 == 4 and want[:1] == "5":
        fix = "defer_unauth_destination answers 454: use reject_unauth_destination in smtpd_relay_restrictions"
        real = _postconf(smtpd_relay_restrictions=SAFE_RELAY)
    elif "Relay access denied" in text and want[:1] == "2":
        fix = "the client may not relay: add it to mynetworks, or the domain to relay_domains"
    elif got // 100 == 2 and want[:1] in "45":
        fix = "nothing refused it: add a restriction that does (see exercises.check_not_open_relay)"
    elif got == 503:
        fix = "a command is missing before it (MAIL FROM before RCPT TO, RCPT TO before DATA)"
    return Result(False, f"the server answered {text}, not {code}",
                  _CLASS_MEANING.get(got // 100, f"{got} is not a valid reply class"), fix, real)
