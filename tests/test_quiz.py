"""Quizzes: checking answers in a cell and in the widget."""
from __future__ import annotations

import pytest

from mailsim.quiz import Question, Quiz, QuizWidget

QUESTIONS = [
    ("Which reply class tells the client to try again later?", ["2xx", "3xx", "4xx", "5xx"], 2,
     "4xx is a transient failure."),
    ("Which TWO restrictions can stop relaying?", ["permit_mynetworks", "reject_unauth_destination",
                                                  "defer_unauth_destination", "permit"], (1, 2),
     "Both refuse foreign domains."),
    ("Which command rebuilds /etc/aliases.db?", [], ("newaliases", "postalias /etc/aliases"),
     "newaliases is postalias on alias_database."),
]


def test_check_all_right():
    q = Quiz(QUESTIONS)
    out = q.check(["C", "B,C", "newaliases"])
    assert out.splitlines()[-1] == "Score: 3/3"
    assert out.splitlines()[0] == "1. ✔ C. 4xx -- 4xx is a transient failure."
    assert q.check([2, [1, 2], "  NEWALIASES "]).endswith("Score: 3/3")
    assert q.check(["c.", "c b", "postalias   /etc/aliases"]).endswith("Score: 3/3")


def test_check_wrong_and_missing():
    q = Quiz(QUESTIONS)
    out = q.check(["D", "B"]).splitlines()
    assert out[0] == "1. ✘ you answered D; the answer is C. 4xx -- 4xx is a transient failure."
    assert out[1].startswith("2. ✘ you answered B (choose 2); the answer is B. reject_unauth_destination, "
                             "C. defer_unauth_destination")
    assert out[2].startswith("3. ✘ not answered; the answer is newaliases")
    assert out[3] == "Score: 0/3"
    with pytest.raises(ValueError):
        q.check(["A", "B", "C", "D"])
    with pytest.raises(ValueError):
        q.check(["what?"])


def test_invalid_questions():
    with pytest.raises(ValueError):
        Question("q", ("a", "b"), 5)
    with pytest.raises(ValueError):
        Quiz([("q", [], "")])


def test_reprs_are_deterministic():
    q = Quiz(QUESTIONS)
    text = repr(q)
    assert text.splitlines()[:3] == ["1. Which reply class tells the client to try again later?",
                                     "   A. 2xx", "   B. 3xx"]
    assert "2. Which TWO restrictions can stop relaying? (choose 2)" in text
    assert text.splitlines()[-1] == "   (type the answer)"
    assert "answer is" not in text            # the answers are not given away
    md = q._repr_markdown_()
    assert "**1. Which reply class" in md and "- C. 4xx" in md and "*type the answer*" in md
    assert repr(Quiz(QUESTIONS)) == text and len(q) == 3


def test_widget():
    q = Quiz(QUESTIONS)
    w = q.widget()
    assert isinstance(w, QuizWidget)
    radio, multi, blank = w.controls
    assert radio.options[2] == ("C. 4xx", 2) or radio.options[2] == "C. 4xx"
    w.button.click()
    assert "Score: 0/3" in w.feedback.value and "not answered" in w.feedback.value
    radio.value = 2
    multi.value = (1, 2)
    blank.value = "newaliases"
    assert w.check().endswith("Score: 3/3")
    assert "Score: 3/3" in w.feedback.value
