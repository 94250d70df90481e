"""tests/nbval_kernel.py starts a kernel again only when it died at birth, and says why."""
from __future__ import annotations

import pytest

import nbval_kernel


def test_a_kernel_that_died_at_birth_is_started_again(monkeypatch):
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            kwargs["stderr"].write("zmq.error.ZMQError: Address already in use\n")
            kwargs["stderr"].flush()
            raise RuntimeError("Kernel died before replying to kernel_info")
        return "km", "kc"

    monkeypatch.setattr(nbval_kernel, "_start_new_kernel", flaky)
    with pytest.warns(UserWarning, match="attempt 1.*Address already in use"):
        assert nbval_kernel.start_new_kernel(kernel_name="python3", cwd="/") == ("km", "kc")
    assert len(calls) == 2 and calls[1]["cwd"] == "/"


def test_other_failures_and_the_last_attempt_are_not_hidden(monkeypatch):
    def slow(**kwargs):
        raise RuntimeError("Kernel didn't respond in 60 seconds")

    monkeypatch.setattr(nbval_kernel, "_start_new_kernel", slow)
    with pytest.raises(RuntimeError, match="didn't respond"):
        nbval_kernel.start_new_kernel()

    def dead(**kwargs):
        raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(nbval_kernel, "_start_new_kernel", dead)
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="died before"):
        nbval_kernel.start_new_kernel()
