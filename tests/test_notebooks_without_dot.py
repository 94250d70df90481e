"""The course notebooks also run, and match their stored outputs, where Graphviz's dot is missing.

`make test` runs nbval where dot is usually installed; this runs it once more with a PATH
that holds only the virtualenv's programs, so mailsim.graphs falls back to matplotlib.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
def test_notebooks_pass_nbval_without_dot(tmp_path):
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=str(bindir), PYTHONPATH=str(ROOT / "tests"))
    probe = subprocess.run([sys.executable, "-c", "import shutil; print(shutil.which('dot'))"],
                           env=env, capture_output=True, text=True)
    if probe.stdout.strip() != "None":
        pytest.skip(f"dot is still found on a PATH of only {bindir}")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval", "-p", "no:cacheprovider",
                        "-p", "nbval_kernel",
                        "--nbval-sanitize-with", str(ROOT / "tests/nbval_sanitize.cfg"),
                        *map(str, NOTEBOOKS)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
