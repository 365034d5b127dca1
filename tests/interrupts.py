"""A Ctrl-C at a chosen training step, for crash-and-resume tests."""

from __future__ import annotations

import contextlib

import pytest


@contextlib.contextmanager
def ctrl_c_at_step(monkeypatch, cls, step: int, method: str = "batch"):
    """Raise KeyboardInterrupt when ``cls.<method>(self, step)`` is asked for ``step``; the body
    must run the training, which must stop there. The real method is back afterwards."""
    real = getattr(cls, method)

    def interrupted(self, s, *args, **kwargs):
        if s == step:
            raise KeyboardInterrupt(f"simulated Ctrl-C at step {step}")
        return real(self, s, *args, **kwargs)

    monkeypatch.setattr(cls, method, interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(cls, method, real)
