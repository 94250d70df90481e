"""Short LPIC-2 style quizzes at the end of a notebook, checked in the notebook.

LPIC-2 exam questions are multiple choice (one answer, or "choose two") or a
short fill-in-the-blank (a command, a parameter name). A :class:`Quiz` holds
such questions; a learner answers in a cell (``quiz.check(["B", "A,C", "postmap"])``)
or in the widget (``quiz.widget()``: radio buttons, tick boxes or a text box
per question and a *Check* button), and gets each answer explained.

A question is ``(text, choices, correct, explanation)``:

* one answer: ``correct`` is the index of the right choice (0 = A);
* "choose N": ``correct`` is a tuple of indexes;
* fill in the blank: ``choices`` is empty and ``correct`` is the expected
  text, or a tuple of accepted texts (compared without case and outer spaces).

Answers are letters (``"B"``; ``"A,C"`` or ``["A", "C"]`` for "choose N"),
0-based indexes, or the text for a blank; ``None`` means not answered.

Examples
--------
>>> q = Quiz([
...     ("Which command shows only the parameters set in main.cf?",
...      ["postconf -d", "postconf -n", "postfix check", "postmap -q"], 1,
...      "-n prints the non-default settings; -d prints the defaults."),
...     ("Which parameter lists the networks whose clients may relay? (one word)", [],
...      "mynetworks", "permit_mynetworks consults mynetworks."),
... ])
>>> print(q.check(["b", "relay_domains"]))
1. ✔ B. postconf -n -- -n prints the non-default settings; -d prints the defaults.
2. ✘ you answered relay_domains; the answer is mynetworks -- permit_mynetworks consults mynetworks.
Score: 1/2
>>> q
1. Which command shows only the parameters set in main.cf?
   A. postconf -d
   B. postconf -n
   C. postfix check
   D. postmap -q
2. Which parameter lists the networks whose clients may relay? (one word)
   (type the answer)
"""
from __future__ import annotations

import html
import string
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import ipywidgets as widgets

__all__ = ["Question", "Quiz", "QuizWidget"]

LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class Question:
    """One question; see the module docstring for ``correct``."""

    text: str
    choices: tuple[str, ...]
    correct: Any
    explanation: str = ""

    def __post_init__(self) -> None:
        if self.choices:
            idx = self.correct_indexes
            if not idx or any(not 0 <= i < len(self.choices) for i in idx):
                raise ValueError(f"{self.text!r}: correct index out of range: {self.correct!r}")
        elif not self.accepted:
            raise ValueError(f"{self.text!r}: a fill-in question needs the expected text")

    @property
    def kind(self) -> str:
        """``"one"``, ``"many"`` (choose N) or ``"text"`` (fill in the blank)."""
        if not self.choices:
            return "text"
        return "many" if isinstance(self.correct, (tuple, list, set, frozenset)) else "one"

    @property
    def correct_indexes(self) -> tuple[int, ...]:
        if self.kind == "many":
            return tuple(sorted(int(i) for i in self.correct))
        return (int(self.correct),) if self.kind == "one" else ()

    @property
    def accepted(self) -> tuple[str, ...]:
        c = self.correct
        items = c if isinstance(c, (tuple, list, set, frozenset)) else (c,)
        return tuple(" ".join(str(x).split()) for x in items if str(x).strip())

    def answer_text(self) -> str:
        if self.kind == "text":
            return self.accepted[0]
        return ", ".join(f"{LETTERS[i]}. {self.choices[i]}" for i in self.correct_indexes)

    def parse(self, answer: Any) -> tuple[int, ...] | str | None:
        """A learner's answer in canonical form: sorted indexes, or normalized text."""
        if answer is None or (isinstance(answer, str) and not answer.strip()):
            return None
        if self.kind == "text":
            return " ".join(str(answer).split())
        items: Iterable[Any]
        if isinstance(answer, str):
            items = [a for a in answer.replace(",", " ").split() if a]
        elif isinstance(answer, (int,)):
            items = [answer]
        else:
            items = list(answer)
        out = set()
        for a in items:
            if isinstance(a, int):
                out.add(a)
            elif isinstance(a, str) and len(a.strip().rstrip(".")) == 1 and a.strip()[0].isalpha():
                out.add(LETTERS.index(a.strip()[0].upper()))
            elif isinstance(a, str) and a.strip().isdigit():
                out.add(int(a.strip()))
            else:
                raise ValueError(f"cannot read the answer {a!r}: use a letter such as 'B'")
        return tuple(sorted(out))

    def is_right(self, answer: Any) -> bool:
        a = self.parse(answer)
        if a is None:
            return False
        if self.kind == "text":
            return str(a).lower() in [x.lower() for x in self.accepted]
        return a == self.correct_indexes

    def feedback(self, n: int, answer: Any) -> str:
        """One line: ✔ or ✘, what was answered, the right answer, the explanation."""
        why = f" -- {self.explanation}" if self.explanation else ""
        a = self.parse(answer)
        if a is None:
            return f"{n}. ✘ not answered; the answer is {self.answer_text()}{why}"
        if self.is_right(answer):
            return f"{n}. ✔ {self.answer_text()}{why}"
        if self.kind == "text":
            given = str(a)
        else:
            given = ", ".join(LETTERS[i] if 0 <= i < len(self.choices) else f"#{i}" for i in a)
        extra = ""
        if self.kind == "many" and len(a) != len(self.correct_indexes):
            extra = f" (choose {len(self.correct_indexes)})"
        return f"{n}. ✘ you answered {given}{extra}; the answer is {self.answer_text()}{why}"

    def lines(self, n: int) -> list[str]:
        head = f"{n}. {self.text}"
        if self.kind == "many":
            head += f" (choose {len(self.correct_indexes)})"
        out = [head]
        if self.kind == "text":
            out.append("   (type the answer)")
        else:
            out += [f"   {LETTERS[i]}. {c}" for i, c in enumerate(self.choices)]
        return out


def _question(q: Question | Sequence) -> Question:
    if isinstance(q, Question):
        return q
    text, choices, correct, *rest = q
    return Question(text, tuple(choices), correct, rest[0] if rest else "")


class Quiz:
    """A list of questions; :meth:`check` and :meth:`widget` grade them."""

    def __init__(self, questions: Iterable[Question | Sequence]) -> None:
        self.questions = [_question(q) for q in questions]

    def __len__(self) -> int:
        return len(self.questions)

    def score(self, answers: Sequence[Any]) -> int:
        """How many answers are right."""
        return sum(q.is_right(a) for q, a in zip(self.questions, self._pad(answers)))

    def _pad(self, answers: Sequence[Any]) -> list[Any]:
        answers = list(answers)
        if len(answers) > len(self.questions):
            raise ValueError(f"{len(answers)} answers for {len(self.questions)} questions")
        return answers + [None] * (len(self.questions) - len(answers))

    def check(self, answers: Sequence[Any]) -> str:
        """Text feedback: one line per question, then the score."""
        answers = self._pad(answers)
        lines = [q.feedback(i + 1, a) for i, (q, a) in enumerate(zip(self.questions, answers))]
        lines.append(f"Score: {self.score(answers)}/{len(self.questions)}")
        return "\n".join(lines)

    def text(self) -> str:
        return "\n".join(l for i, q in enumerate(self.questions) for l in q.lines(i + 1))

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(self.text())

    def _repr_markdown_(self) -> str:
        out = []
        for i, q in enumerate(self.questions):
            lines = q.lines(i + 1)
            out.append(f"**{lines[0]}**\n")
            out += [f"- {l.strip()}" if q.kind != "text" else f"- *{l.strip()[1:-1]}*" for l in lines[1:]]
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    def widget(self) -> "QuizWidget":
        """An ipywidgets form: one control per question, a *Check* button, feedback."""
        return QuizWidget(self)


class QuizWidget(widgets.VBox):
    """The quiz as a form. ``controls[i]`` is question i's RadioButtons,
    SelectMultiple or Text; ``check()`` does what the button does and returns
    the feedback text, also shown in ``feedback`` (an HTML widget)."""

    def __init__(self, quiz: Quiz) -> None:
        self.quiz = quiz
        self.controls: list[widgets.Widget] = []
        rows: list[widgets.Widget] = []
        for i, q in enumerate(quiz.questions):
            rows.append(widgets.HTML(f"<b>{i + 1}.</b> {html.escape(q.text)}"
                                     + (f" <i>(choose {len(q.correct_indexes)})</i>"
                                        if q.kind == "many" else "")))
            opts = [(f"{LETTERS[j]}. {c}", j) for j, c in enumerate(q.choices)]
            layout = widgets.Layout(width="auto")
            if q.kind == "one":
                c = widgets.RadioButtons(options=opts, value=None, layout=layout)
            elif q.kind == "many":
                c = widgets.SelectMultiple(options=opts, value=(), rows=len(opts), layout=layout)
            else:
                c = widgets.Text(placeholder="your answer")
            self.controls.append(c)
            rows.append(c)
        self.button = widgets.Button(description="Check", button_style="primary")
        self.feedback = widgets.HTML()
        self.button.on_click(lambda _: self.check())
        super().__init__([*rows, self.button, self.feedback])

    def answers(self) -> list[Any]:
        out: list[Any] = []
        for c in self.controls:
            v = c.value
            out.append(None if v in (None, (), "") else (list(v) if isinstance(v, tuple) else v))
        return out

    def check(self) -> str:
        text = self.quiz.check(self.answers())
        self.feedback.value = "<pre>" + html.escape(text) + "</pre>"
        return text
