"""environment.yml (Binder, conda-forge) and pyproject.toml name the same dependencies."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: conda-forge name -> PyPI name, where they differ. "graphviz" on conda-forge is
#: the dot binaries (no PyPI package); python-graphviz is PyPI's graphviz.
CONDA_TO_PYPI = {"python-graphviz": "graphviz", "graphviz": None, "python": None, "pip": None}


def _norm(name: str) -> str:
    return re.split(r"[<>=!~ \[]", name.strip(), maxsplit=1)[0].lower().replace("_", "-")


def environment_packages() -> set[str]:
    conda: set[str] = set()
    pip: set[str] = set()
    in_pip = in_deps = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        s = line.split("#", 1)[0].rstrip()
        if s and not s.startswith(" "):
            in_deps = s.startswith("dependencies:")
            continue
        if not in_deps:
            continue
        if not s.strip().startswith("- "):
            continue
        item = s.strip()[2:].strip()
        indent = len(s) - len(s.lstrip())
        if item == "pip:":
            in_pip = True
            continue
        if in_pip and indent > 4:
            if not item.startswith("-e"):
                pip.add(_norm(item))
            continue
        in_pip = False
        name = _norm(item)
        mapped = CONDA_TO_PYPI.get(name, name)
        if mapped:
            conda.add(mapped)
    return conda | pip


def pyproject_packages() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = data["project"]["dependencies"] + data["project"]["optional-dependencies"]["test"]
    return {_norm(d) for d in deps}


def test_same_dependencies():
    env, py = environment_packages(), pyproject_packages()
    assert env == py, f"only in environment.yml: {env - py}; only in pyproject.toml: {py - env}"


def test_binder_has_dot_and_python_311():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*python=3\.11\s*$", text, re.M)
    assert re.search(r"^\s*-\s*graphviz\b", text, re.M), "the dot binaries (conda-forge graphviz)"
    assert "-e ." in text, "Binder installs the package itself"
