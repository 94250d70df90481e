"""Interactive tools for the notebooks: an SMTP console and a relay-decision playground.

* :class:`SMTPConsole` -- a telnet in a widget: type an SMTP command, press
  Enter (or *Send*), see the host's reply appended to the dialogue. It is the
  same smtpd a ``%%smtp`` cell talks to; after ``DATA`` every line is a message
  line until a line ``.``, exactly as in telnet (so type ``..`` for a line
  that starts with a dot). *New connection* starts over.
* :class:`RelayPlayground` -- edit ``mynetworks``, ``relay_domains``,
  ``smtpd_relay_restrictions`` and the client address; the decision for every
  recipient is recomputed (with :meth:`mailsim.host.Host.with_settings`, i.e.
  ``postconf -o``-style, nothing written to main.cf) and redrawn. It shows why
  Postfix relays for ``permit_mynetworks`` clients, and refuses
  (``reject_unauth_destination``: 554, or ``defer_unauth_destination``: 454)
  everyone else unless the domain is one of its own or in ``relay_domains``.

The logic lives in plain classes (:class:`ConsoleModel`,
:class:`PlaygroundModel`) that need no browser and no kernel; the widgets only
wire ipywidgets controls to them.

Examples
--------
>>> import tempfile
>>> from mailsim import init_host
>>> h = init_host(tempfile.mkdtemp() + "/mx", users=["alice"])
>>> m = ConsoleModel(h)
>>> m.submit("HELO client.example.org")
'250 mail.example.com'
>>> m.history
['HELO client.example.org']
>>> p = PlaygroundModel(h, ["alice@example.com", "someone@example.net"], client="192.0.2.99")
>>> for row in p.update(): print(row)
('alice@example.com', '250 2.1.5 Ok', 'no element refused it')
('someone@example.net', '454 4.7.1 <someone@example.net>: Relay access denied', 'smtpd_relay_restrictions: defer_unauth_destination')
>>> p.update(mynetworks="192.0.2.0/24")[1][1]
'250 2.1.5 Ok'
"""
from __future__ import annotations

import html
from typing import Iterable

import ipywidgets as widgets

from .graphs import decide, decision_graph, deciding_step, render, to_text
from .magic import Transcript

__all__ = ["ConsoleModel", "SMTPConsole", "PlaygroundModel", "RelayPlayground", "PLAYGROUND_SETTINGS"]

#: main.cf parameters the playground lets you edit
PLAYGROUND_SETTINGS = ("mynetworks", "relay_domains", "smtpd_relay_restrictions")


class ConsoleModel:
    """An SMTP connection driven one line at a time (what the console widget shows).

    ``history`` holds the lines submitted, ``transcript`` the dialogue so far
    (a :class:`~mailsim.magic.Transcript`).
    """

    def __init__(self, host, client: str = "127.0.0.1") -> None:
        self.host = host
        self.client = client
        self.history: list[str] = []
        self.reset()

    def reset(self) -> str:
        """Close the connection (if open) and open a new one; returns the greeting."""
        if getattr(self, "session", None) is not None and not self.session.closed:
            self.session.close()
        self.session = self.host.session(self.client)
        self.transcript = Transcript([("S", self.session.banner)])
        self.in_data = False
        return self.session.banner

    @property
    def closed(self) -> bool:
        return self.session.closed

    def submit(self, line: str) -> str:
        """Send one line; returns the reply ("" for a message line after DATA, which
        the server answers only after the final ``.``).

        >>> import tempfile
        >>> from mailsim import init_host
        >>> m = ConsoleModel(init_host(tempfile.mkdtemp() + "/mx"))
        >>> m.submit("QUIT"), m.closed
        ('221 2.0.0 Bye', True)
        >>> m.submit("NOOP")
        '(connection closed: press New connection)'
        """
        self.history.append(line)
        if self.session.closed:
            return "(connection closed: press New connection)"
        self.transcript.entries.append(("C", line))
        reply = self.session.send(line)      # telnet sends what you type: no dot-stuffing
        if self.in_data:
            self.in_data = line != "."
        else:
            self.in_data = reply.startswith("354")
        if reply:
            self.transcript.entries.append(("S", reply))
        return reply


class SMTPConsole(widgets.VBox):
    """The console widget: a command line, *Send* / *New connection* buttons, a
    drop-down of earlier commands (pick one to edit and send it again) and the
    dialogue, coloured as in ``%%smtp``.

    ``console.model`` is the :class:`ConsoleModel`; ``console.send(line)`` does
    what typing the line and pressing Enter does.
    """

    def __init__(self, host, client: str = "127.0.0.1", **kwargs) -> None:
        self.model = ConsoleModel(host, client)
        self.command = widgets.Text(placeholder="EHLO client.example.org   (Enter sends)",
                                    continuous_update=False,
                                    layout=widgets.Layout(width="32em"))
        self.send_button = widgets.Button(description="Send", button_style="primary")
        self.reset_button = widgets.Button(description="New connection")
        self.recall = widgets.Dropdown(options=[("(earlier commands)", "")], value="",
                                       layout=widgets.Layout(width="18em"))
        self.dialogue = widgets.HTML()
        self.command.observe(self._on_enter, names="value")
        self.send_button.on_click(lambda _: self.send(self.command.value))
        self.reset_button.on_click(lambda _: self.reset())
        self.recall.observe(self._on_recall, names="value")
        self._clearing = False
        self._show()
        super().__init__([widgets.HBox([self.command, self.send_button, self.reset_button,
                                        self.recall]), self.dialogue], **kwargs)

    def send(self, line: str) -> str:
        reply = self.model.submit(line)
        self._clearing = True
        self.command.value = ""
        self._clearing = False
        opts = [("(earlier commands)", "")] + [(h, h) for h in dict.fromkeys(reversed(self.model.history))
                                               if h]
        self.recall.options = opts
        self.recall.value = ""
        self._show()
        return reply

    def reset(self) -> None:
        self.model.reset()
        self._show()

    def _on_enter(self, change) -> None:
        if not self._clearing and change["new"]:
            self.send(change["new"])

    def _on_recall(self, change) -> None:
        if change["new"]:
            self._clearing = True
            self.command.value = change["new"]
            self._clearing = False

    def _show(self) -> None:
        self.dialogue.value = self.model.transcript._repr_html_()


class PlaygroundModel:
    """Recipients decided again whenever settings change.

    ``update(**settings)`` takes main.cf parameters (any; the widget offers
    :data:`PLAYGROUND_SETTINGS`) and ``client``; settings given once stay until
    changed (an empty string is a valid value: ``relay_domains =``). Returns
    ``[(recipient, reply_text, deciding_element)]``; ``decisions`` and
    :meth:`graph` give the full story.
    """

    def __init__(self, host, recipients: Iterable[str], client: str = "192.0.2.99", *,
                 helo: str = "client.example.org", sender: str = "someone@example.org") -> None:
        self.host = host
        self.recipients = list(recipients)
        self.client = client
        self.helo = helo
        self.sender = sender
        self.settings: dict[str, str] = {}
        self.decisions: list = []
        self.error = ""

    def value(self, name: str) -> str:
        """The value the playground uses for ``name``: main.cf's (expanded, as
        ``postconf -x`` shows it), unless changed here."""
        if name in self.settings:
            return self.settings[name]
        return self.host.conf.get(name) or ""

    def update(self, **settings: str) -> list[tuple[str, str, str]]:
        client = settings.pop("client", None)
        if client is not None:
            self.client = client.strip()
        self.settings.update(settings)
        self.error = ""
        try:
            view = self.host.with_settings(**self.settings) if self.settings else self.host
            self.decisions = decide(view, self.recipients, client=self.client, helo=self.helo,
                                    sender=self.sender)
        except Exception as e:  # a value main.cf would refuse: say so instead of a traceback
            self.decisions = []
            self.error = f"{type(e).__name__}: {e}"
            return [(r, f"(not evaluated: {self.error})", "") for r in self.recipients]
        return self.rows()

    def rows(self) -> list[tuple[str, str, str]]:
        out = []
        for r, d in zip(self.recipients, self.decisions):
            st = deciding_step(d)
            who = f"{st.restriction_list}: {st.element}" if st is not None else "no element refused it"
            reply = str(d.reply).replace("\n", " / ") if d.reply is not None else d.action
            out.append((r, reply, who))
        return out

    def graph(self):
        """The decision graph of the last update (:func:`mailsim.graphs.decision_graph`)."""
        return decision_graph(self.decisions)

    def text(self) -> str:
        """The decisions as an indented tree (:func:`mailsim.graphs.to_text`)."""
        return to_text(self.graph())


def _rows_html(rows: list[tuple[str, str, str]]) -> str:
    from .magic import CLASS_COLOURS
    cells = []
    for r, reply, who in rows:
        colour = CLASS_COLOURS.get(reply[:1], "inherit")
        cells.append(f"<tr><td><code>{html.escape(r)}</code></td>"
                     f"<td style='color:{colour}'><code>{html.escape(reply)}</code></td>"
                     f"<td>{html.escape(who)}</td></tr>")
    return ("<table><tr><th>recipient</th><th>reply</th><th>decided by</th></tr>"
            + "".join(cells) + "</table>")


class RelayPlayground(widgets.VBox):
    """Text fields for mynetworks, relay_domains, smtpd_relay_restrictions and the
    client address; on every change (Enter or leaving the field) the table of
    decisions and the decision graph are redrawn.

    ``playground.model`` is the :class:`PlaygroundModel`; ``playground.fields``
    maps a setting name to its Text widget; ``playground.table`` and
    ``playground.picture`` are HTML widgets.
    """

    def __init__(self, host, recipients: Iterable[str], client: str = "192.0.2.99", *,
                 draw: bool = True, **kwargs) -> None:
        self.model = PlaygroundModel(host, recipients, client)
        self.draw = draw
        self.fields: dict[str, widgets.Text] = {}
        for name in PLAYGROUND_SETTINGS:
            self.fields[name] = widgets.Text(value=self.model.value(name), description=name,
                                             continuous_update=False,
                                             style={"description_width": "14em"},
                                             layout=widgets.Layout(width="48em"))
        self.fields["client"] = widgets.Text(value=client, description="client address",
                                             continuous_update=False,
                                             style={"description_width": "14em"},
                                             layout=widgets.Layout(width="48em"))
        for f in self.fields.values():
            f.observe(self._changed, names="value")
        self.table = widgets.HTML()
        self.picture = widgets.HTML()
        self.refresh()
        super().__init__([*self.fields.values(), self.table, self.picture], **kwargs)

    def _changed(self, change) -> None:
        self.refresh()

    def refresh(self) -> list[tuple[str, str, str]]:
        """Decide again with the fields' values; redraw."""
        values = {n: f.value for n, f in self.fields.items()}
        rows = self.model.update(**values)
        self.table.value = _rows_html(rows)
        if self.model.error or not self.draw:
            self.picture.value = f"<pre>{html.escape(self.model.text())}</pre>" if not self.model.error else ""
            return rows
        fig = render(self.model.graph())
        self.picture.value = f'<div style="overflow:auto">{fig.svg}</div>'
        return rows
