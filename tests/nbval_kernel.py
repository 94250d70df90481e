"""A pytest plugin for the nbval runs: start a notebook's kernel again when it dies at birth.

jupyter_client picks a kernel's five ports by binding port 0 and letting go; the kernel binds
them a second later. Anything else on the machine that opens a loopback socket in that second
(the other pytest worker's SMTP sessions, a private Postfix) can take one, and the kernel exits
with "Address already in use" before it has run a cell. CI saw this once, for notebook 02.
The notebook's own code never ran, so starting the kernel again hides nothing about the course;
the warning says what the dead kernel printed.

Loaded with ``-p nbval_kernel`` and ``tests`` on PYTHONPATH (the Makefile and
tests/test_notebooks_without_dot.py do both).
"""
from __future__ import annotations

import tempfile
import warnings
from typing import Any

import nbval.kernel

ATTEMPTS = 3
_start_new_kernel = nbval.kernel.start_new_kernel


def died_at_birth(error: Exception) -> bool:
    """True for jupyter_client's error when the kernel process exits before its first reply.

    >>> died_at_birth(RuntimeError("Kernel died before replying to kernel_info"))
    True
    >>> died_at_birth(RuntimeError("Kernel didn't respond in 60 seconds"))
    False
    """
    return isinstance(error, RuntimeError) and "died before replying" in str(error)


def start_new_kernel(startup_timeout: int = 60, kernel_name: str = "python", **kwargs: Any):
    """nbval's start_new_kernel, tried up to ATTEMPTS times while the kernel dies at birth."""
    kwargs.pop("stderr", None)  # nbval sends it to /dev/null; keep it to say why a kernel died
    for attempt in range(1, ATTEMPTS + 1):
        with tempfile.TemporaryFile("w+") as stderr:
            try:
                return _start_new_kernel(startup_timeout=startup_timeout,
                                         kernel_name=kernel_name, stderr=stderr, **kwargs)
            except RuntimeError as error:
                if not died_at_birth(error) or attempt == ATTEMPTS:
                    raise
                stderr.seek(0)
                said = stderr.read().strip().splitlines()[-3:]
                warnings.warn(f"kernel died at start (attempt {attempt}), starting it again: "
                              + (" | ".join(said) or "it printed nothing"))


nbval.kernel.start_new_kernel = start_new_kernel
