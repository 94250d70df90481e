#!/usr/bin/env python3
"""Make the student copies of the course notebooks: the solutions taken out.

Solutions are written once, in the notebooks themselves, in cells tagged
``solution``. A student copy is the same notebook with

* each ``solution`` code cell's source replaced by ``# your code here`` and its
  outputs and execution count cleared;
* each ``solution`` markdown cell's source replaced by ``*(your answer)*``;

and every other cell unchanged (outputs included).

    python tools/make_student_copies.py                 # -> build/student/
    python tools/make_student_copies.py OUTDIR          # -> OUTDIR/
    python tools/make_student_copies.py --src DIR ...   # notebooks from DIR (default notebooks/)
    python tools/make_student_copies.py --check         # write nothing; exit 1 if a copy would
                                                        # still hold a solution or be invalid

``--check`` makes every student copy in memory and verifies it: valid nbformat,
no ``solution`` cell with anything but the placeholder, no outputs left on one,
and the same cells in the same order as the source otherwise.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTION_TAG = "solution"
CODE_PLACEHOLDER = "# your code here"
MARKDOWN_PLACEHOLDER = "*(your answer)*"


def is_solution(cell) -> bool:
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def strip_notebook(nb):
    """A student copy of ``nb`` (a new object; ``nb`` is not changed)."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if not is_solution(cell):
            continue
        if cell.cell_type == "code":
            cell.source = CODE_PLACEHOLDER
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = MARKDOWN_PLACEHOLDER
            cell.pop("attachments", None)
    return out


def problems(src, student) -> list[str]:
    """What is wrong with ``student`` as a copy of ``src`` (empty: nothing)."""
    out = []
    try:
        nbformat.validate(student)
    except nbformat.ValidationError as e:
        out.append(f"not valid nbformat: {e.message}")
    if len(src.cells) != len(student.cells):
        return out + [f"{len(student.cells)} cells, the source has {len(src.cells)}"]
    for i, (a, b) in enumerate(zip(src.cells, student.cells)):
        if a.cell_type != b.cell_type:
            out.append(f"cell {i}: {b.cell_type}, the source has {a.cell_type}")
        elif is_solution(a):
            want = CODE_PLACEHOLDER if a.cell_type == "code" else MARKDOWN_PLACEHOLDER
            if a.cell_type == "raw":
                continue
            if b.source != want:
                out.append(f"cell {i}: a solution is still there")
            if a.cell_type == "code" and b.outputs:
                out.append(f"cell {i}: a solution's outputs are still there")
        elif a != b:
            out.append(f"cell {i}: changed, but it is not tagged {SOLUTION_TAG!r}")
    return out


def notebooks(src: Path) -> list[Path]:
    return sorted(p for p in src.glob("*.ipynb") if not p.name.startswith("."))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write student copies of the notebooks, solutions removed.")
    p.add_argument("outdir", nargs="?", default=str(ROOT / "build/student"),
                   help="where to write the copies (default: build/student/)")
    p.add_argument("--src", default=str(ROOT / "notebooks"), help="the notebooks (default: notebooks/)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; check that every copy is valid and has no solution left")
    a = p.parse_args(argv)
    src, outdir = Path(a.src), Path(a.outdir)
    paths = notebooks(src)
    if not paths:
        print(f"make_student_copies: no notebooks in {src}", file=sys.stderr)
        return 1
    bad = 0
    for path in paths:
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        student = strip_notebook(nb)
        n = sum(is_solution(c) for c in nb.cells)
        if a.check:
            errs = problems(nb, student)
            for e in errs:
                print(f"{path.name}: {e}", file=sys.stderr)
            bad += bool(errs)
            print(f"{path.name}: {'FAIL' if errs else 'ok'} ({n} solution cell(s))")
            continue
        outdir.mkdir(parents=True, exist_ok=True)
        nbformat.write(student, outdir / path.name)
        print(f"{path.name}: {n} solution cell(s) removed -> {outdir / path.name}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
