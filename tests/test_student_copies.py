"""tools/make_student_copies.py: solutions out, everything else kept, valid notebooks."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("make_student_copies", ROOT / "tools/make_student_copies.py")
msc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(msc)


def sample():
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    out = new_output("stream", name="stdout", text="✔ solved\n")
    nb.cells = [
        new_markdown_cell("# 99 · Sample"),
        new_code_cell("x = 1\nprint(x)", outputs=[new_output("stream", name="stdout", text="1\n")],
                      execution_count=1),
        new_code_cell("secret = 42\nprint('✔ solved')", outputs=[out], execution_count=2,
                      metadata={"tags": ["solution"]}),
        new_markdown_cell("The answer is **B** because ...", metadata={"tags": ["solution"]}),
        new_code_cell("print(check(secret))", metadata={"tags": ["nbval-ignore-output"]}),
    ]
    return nb


def test_strip_replaces_solutions_and_keeps_the_rest():
    nb = sample()
    st = msc.strip_notebook(nb)
    assert st.cells[2].source == "# your code here"
    assert st.cells[2].outputs == [] and st.cells[2].execution_count is None
    assert st.cells[2].metadata["tags"] == ["solution"]
    assert st.cells[3].source == "*(your answer)*"
    for i in (0, 1, 4):
        assert st.cells[i] == nb.cells[i]
    assert st.cells[1].outputs[0]["text"] == "1\n"
    # the source notebook is not changed
    assert nb.cells[2].source.startswith("secret = 42")
    nbformat.validate(st)
    assert msc.problems(nb, st) == []


def test_problems_sees_a_solution_left_in():
    nb = sample()
    assert msc.problems(nb, nb) == ["cell 2: a solution is still there",
                                    "cell 2: a solution's outputs are still there",
                                    "cell 3: a solution is still there"]


def test_command_line_writes_valid_copies(tmp_path, capsys):
    src = tmp_path / "nb"
    src.mkdir()
    nbformat.write(sample(), src / "99-sample.ipynb")
    out = tmp_path / "student"
    assert msc.main(["--src", str(src), str(out)]) == 0
    written = nbformat.read(out / "99-sample.ipynb", as_version=4)
    nbformat.validate(written)
    text = (out / "99-sample.ipynb").read_text()
    assert "secret = 42" not in text and "because ..." not in text and "✔ solved" not in text
    assert "x = 1" in text
    assert msc.main(["--src", str(src), "--check"]) == 0
    assert "99-sample.ipynb: ok (2 solution cell(s))" in capsys.readouterr().out


@pytest.mark.skipif(not list((ROOT / "notebooks").glob("*.ipynb")), reason="no course notebooks yet")
def test_course_notebooks(tmp_path):
    """Every course notebook makes a valid student copy with no solution left in it."""
    assert msc.main(["--check"]) == 0
    for path in msc.notebooks(ROOT / "notebooks"):
        nb = nbformat.read(path, as_version=4)
        assert any(msc.is_solution(c) for c in nb.cells), f"{path.name}: no cell tagged 'solution'"
