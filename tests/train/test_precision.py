"""Precision: bf16 autocast on CPU trains; fp16 scales the loss as fairseq does (init 128, a
step that overflows is no update and the next batch tries it again, a diverging scale stops the
run); the precision a training ran in is recorded, shown and compared by ``plan``."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from ssl_graph import Corpus  # noqa: E402
from ssl_graph.api import Project  # noqa: E402
from ssl_graph.cli import main  # noqa: E402
from ssl_graph.exec.overrides import apply_overrides  # noqa: E402
from ssl_graph.presets import wav2vec  # noqa: E402
from ssl_graph.store.train_log import read_log  # noqa: E402
from ssl_graph.train.distributed import Ranks  # noqa: E402
from ssl_graph.train.precision import autocast_dtype, make_scaler, scale_window  # noqa: E402
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


def _fp16_session(init_scale=128.0):
    model = torch.nn.Linear(4, 2)
    s = object.__new__(TrainSession)
    s.st, s.model = SimpleNamespace(name="pt"), model
    s.node = SimpleNamespace(clip_norm=0.0, min_loss_scale=1e-4)
    s.opt = torch.optim.SGD(model.parameters(), lr=0.1)
    s.scaler, s.skipped, s.ranks = make_scaler(torch.float16, "cpu", init_scale), 0, Ranks()
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
    assert scale == 128.0  # fairseq's fp16_init_scale, not torch's 65536
    assert "step 1 skipped, fp16 gradients overflowed" in capsys.readouterr().err
    s.zero_grad()
    s.backward(model(torch.ones(1, 4)).sum())
    _, skipped = s.update(1, step=1)
    assert not skipped and not torch.equal(model.weight, before)


def test_fp16_loss_scale_at_the_minimum_stops_with_one_line():
    s, model = _fp16_session(init_scale=2e-4)
    s.zero_grad()
    s.backward(model(torch.full((1, 4), math.inf)).sum())
    with pytest.raises(FloatingPointError, match=r"^pt: fp16 loss scale fell to 0\.0001 "
                       r"\(min_loss_scale 0\.0001\) at step 4: the loss is diverging; [^\n]*$"):
        s.update(1, step=3)


def test_fp16_scale_window_is_fairseqs_per_forward():
    node = wav2vec(Corpus(root="wav"), size="tiny", batch_seconds=8.0, max_batch_seconds=2.0)
    assert scale_window(node.with_(max_batch_seconds=None), 1) == 2**14
    assert scale_window(node, 1) == 2**14 // 4  # 4 micro-batches per update
    assert scale_window(node, 2) == 2**14 // 4  # 2 ranks x 2 micro-batches
    assert scale_window(node.with_(fp16_scale_window=100), 2) == 100
    grouped = node.with_(max_batch_seconds=None, group_seconds=2.0)  # 4 crop groups a step
    assert scale_window(grouped, 1) == scale_window(grouped, 2) == 2**14 // 4
    assert scale_window(grouped.with_(max_batch_seconds=1.0), 1) == 2**14 // 8


def test_fp16_overflowing_steps_are_no_updates_and_precision_is_recorded(tmp_path):
    """A first scale of 2**24 overflows fp16 gradients: every skipped batch leaves ``steps`` and
    the LR where they were; the record says fp16, ``show`` prints it, ``plan`` compares it."""
    d = tmp_path
    p = Project(_spec(d, steps=3), str(d / "store"))
    apply_overrides(p.pipeline, ["hb.precision=fp16", f"hb.fp16_init_scale={2**24}"])
    p.run()
    node, rec = p.pipeline.node("hb"), p["hb"].record
    log = read_log(p.store.backend, p["hb"].key)
    assert rec["precision"] == "fp16" and rec["metrics"]["skipped_steps"] > 0
    assert [r["step"] for r in log] == [1, 2, 3]  # one row per update, none per skipped batch
    lrs = [node.optimizer.lr * node.schedule.factor(i, 3) for i in range(3)]
    assert [r["lr"] for r in log] == pytest.approx(lrs)
    skipped = rec["metrics"]["skipped_steps"]
    assert log[0]["loss_scale"] == 2**24 / 2**skipped  # halved once per skipped batch
    assert all(np.isfinite(r["loss"]) for r in log)
    res = CliRunner().invoke(main, ["--store", str(d / "store"), "show", f"{d / 'p.py'}:hb"])
    assert res.exit_code == 0 and '"precision": "fp16"' in res.output
    again = Project(d / "p.py", str(d / "store"))
    assert again.plan()["hb"].notes == []  # auto: the device decides, planning does not look
    apply_overrides(again.pipeline, ["hb.precision=fp32"])
    st = again.plan()["hb"]
    assert st.status == "fresh" and st.notes == ["trained in fp16; fp32 asked"]
