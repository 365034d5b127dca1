"""Precision: bf16 autocast on CPU trains; fp16 steps that overflow are skipped and counted."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ssl_graph.api import Project  # noqa: E402
from ssl_graph.exec.overrides import apply_overrides  # noqa: E402
from ssl_graph.train.distributed import Ranks  # noqa: E402
from ssl_graph.train.precision import autocast_dtype, make_scaler  # noqa: E402
from ssl_graph.train.session import TrainSession  # noqa: E402

from .test_runtime import _curve, _spec  # noqa: E402


def test_auto_precision_by_device():
    assert autocast_dtype("auto", "cpu") is None
    assert autocast_dtype("bf16", "cpu") == torch.bfloat16
    assert make_scaler(torch.bfloat16, "cpu") is None
    assert make_scaler(torch.float16, "cpu") is not None


def test_bf16_autocast_trains_on_cpu(tmp_path):
    curves = {}
    for precision in ("fp32", "bf16"):
        d = tmp_path / precision
        p = Project(_spec(d, steps=4), str(d / "store"))
        apply_overrides(p.pipeline, [f"hb.precision={precision}"])
        p.run()
        curves[precision] = _curve(p)
    assert np.isfinite(curves["bf16"]).all()
    assert curves["bf16"] != curves["fp32"]  # autocast really ran in bf16
    assert np.allclose(curves["bf16"], curves["fp32"], rtol=0.05)


def _fp16_session():
    model = torch.nn.Linear(4, 2)
    s = object.__new__(TrainSession)
    s.st, s.node, s.model = SimpleNamespace(name="pt"), SimpleNamespace(clip_norm=0.0), model
    s.opt = torch.optim.SGD(model.parameters(), lr=0.1)
    s.scaler, s.skipped, s.ranks = make_scaler(torch.float16, "cpu"), 0, Ranks()
    return s, model


def test_fp16_overflowing_step_is_skipped_and_logged(capsys):
    s, model = _fp16_session()
    before = model.weight.detach().clone()
    scale = s.scaler.get_scale()
    s.zero_grad()
    s.backward(model(torch.full((1, 4), math.inf)).sum())
    gnorm, skipped = s.update(1, step=0)
    assert skipped and s.skipped == 1 and not math.isfinite(gnorm)
    assert torch.equal(model.weight, before)  # never silently applied
    assert s.scaler.get_scale() < scale
    assert "step 1 skipped, fp16 gradients overflowed" in capsys.readouterr().err
    s.zero_grad()
    s.backward(model(torch.ones(1, 4)).sum())
    _, skipped = s.update(1, step=1)
    assert not skipped and not torch.equal(model.weight, before)
