"""Binder readiness: repo2docker accepts the repository, and the README links to Binder.

``jupyter-repo2docker --no-build`` (PyPI: jupyter-repo2docker, in the ``ci``
extra; no Docker needed) picks a build pack for the repository and prints the
Dockerfile it would build, without building it. mybinder.org runs the same
tool, so this is what Binder would do with the repository: it must choose the
conda build pack, i.e. read ``environment.yml`` (python=3.11 from conda-forge,
then ``pip install -e .``), and not fall back to a bare Python image.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TIMEOUT = 120

#: what the README gives as the Binder link (OWNER stands for the GitHub account)
BINDER_URL = re.compile(
    r"https://mybinder\.org/v2/gh/[\w.-]+/mailsim/[\w.-]+\?urlpath=lab/tree/notebooks/00-welcome\.ipynb")


def _repo2docker() -> str:
    exe = BIN / "jupyter-repo2docker"
    if exe.exists():
        return str(exe)
    found = shutil.which("jupyter-repo2docker")
    if found:
        return found
    pytest.skip("jupyter-repo2docker is not installed (pip install -e '.[test,ci]')")


def test_repo2docker_accepts_the_repository():
    exe = _repo2docker()
    r = subprocess.run([exe, "--no-build", str(ROOT)], capture_output=True, text=True,
                       timeout=TIMEOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    # repo2docker's own words when it picks the conda build pack for environment.yml
    assert "Building conda environment for python=3.11" in r.stderr, r.stderr[-2000:]
    # the Dockerfile it would build installs environment.yml into the notebook env
    assert re.search(r'env update -p \$\{NB_PYTHON_PREFIX\} --file "environment\.yml"', r.stdout), \
        r.stdout[-3000:]
    assert "COPY --chown" in r.stdout and "${REPO_DIR}" in r.stdout, "the repository is copied in"


def test_repo2docker_picks_the_conda_build_pack():
    """The first build pack that detects the repository is CondaBuildPack, as in
    repo2docker's own choice (app.Repo2Docker.build)."""
    _repo2docker()
    code = ("from repo2docker.app import Repo2Docker\n"
            "a = Repo2Docker()\n"
            "print(next(bp.__name__ for bp in a.buildpacks if bp(base_image=a.base_image).detect()))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=TIMEOUT, cwd=ROOT, stdin=subprocess.DEVNULL)
    if r.returncode and "ModuleNotFoundError" in r.stderr:
        pytest.skip("repo2docker is not importable from this Python")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "CondaBuildPack", r.stdout


def test_readme_links_to_binder():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert BINDER_URL.search(text), \
        "README.md should give the Binder link ...?urlpath=lab/tree/notebooks/00-welcome.ipynb"
