"""data2vec's pieces by hand: the EMA step, instance norm over valid frames, the teacher's
targets (top-K FFN outputs of the unmasked input), the regression loss on masked frames only,
and the plan-time refusals of combinations that cannot work."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ssl_graph.nn import build_model
from ssl_graph.nn.target_sources import ForwardState
from ssl_graph.nn.teacher import instance_norm
from ssl_graph.specs.base import SpecError
from ssl_graph.specs.components import (
    ConvContext,
    FeaturePenalty,
    MaskedPrediction,
    Regression,
    TeacherTargets,
    data2vec_model,
    hubert_model,
    wav2vec_model,
)
from ssl_graph.specs.nodes import MFCC, Corpus, KMeans, Labels

LABELS = Labels(kmeans=KMeans(features=MFCC(corpus=Corpus(root="audio")), k=20))


def _model(**teacher):
    spec = data2vec_model("tiny")
    spec = spec.with_(target=spec.target.with_(**teacher), dropout_input=0.0,
                      context=spec.context.with_(dropout=0.0, attention_dropout=0.0))
    torch.manual_seed(0)
    return build_model(spec).train()


def test_ema_step_and_schedule():
    t = TeacherTargets(ema_decay=0.9, ema_end_decay=0.99, ema_anneal_end_step=10)
    assert [t.decay_at(n) for n in (0, 5, 10, 50)] == pytest.approx([0.9, 0.945, 0.99, 0.99])
    m = _model(ema_decay=0.9, ema_end_decay=0.99, ema_anneal_end_step=10)
    teacher = m.target_sources[0].teacher
    before = {k: v.clone() for k, v in teacher.named_parameters()}
    with torch.no_grad():
        for p in m.context.parameters():
            p.add_(0.5)
    m.after_update(5)  # τ = 0.945
    for k, s in m.context.named_parameters():
        want = s if k.startswith("pos_conv.") else 0.945 * before[k] + 0.055 * s
        assert torch.allclose(dict(teacher.named_parameters())[k], want, atol=1e-6), k
    assert all(not p.requires_grad for p in teacher.parameters())


def test_instance_norm_over_valid_frames_only():
    y = torch.randn(2, 7, 3)
    valid = torch.ones(2, 7, dtype=torch.bool)
    ref = F.instance_norm(y.transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(instance_norm(y, valid), ref, atol=1e-5)
    valid[1, 4:] = False
    out = instance_norm(y, valid)
    alone = F.instance_norm(y[1:, :4].transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(out[1:, :4], alone, atol=1e-5)


def test_targets_are_the_top_k_ffn_outputs_of_the_unmasked_input():
    m = _model(top_k_layers=2, instance_norm_target_layer=True).eval()
    source = m.target_sources[0]
    x = torch.randn(2, 20, m.spec.context.dim)
    # by hand: run the teacher, catching each layer's fc2 output (FFN before residual + LN)
    outs = []
    hooks = [layer.fc2.register_forward_hook(lambda mod, i, o: outs.append(o))
             for layer in source.teacher.layers]
    with torch.no_grad():
        source.teacher(x, None)
    for h in hooks:
        h.remove()
    valid = torch.ones(2, 20, dtype=torch.bool)
    want = sum(F.instance_norm(o.transpose(1, 2)).transpose(1, 2) for o in outs) / 2
    got = source(_state(x.requires_grad_(), valid)).features
    assert torch.allclose(got, want, atol=1e-5) and not got.requires_grad
    block = _model(top_k_layers=1, layer_output="block").target_sources[0]
    block.teacher.load_state_dict(source.teacher.state_dict())
    with torch.no_grad():
        last = source.teacher(x.detach(), None)[0]
    ref = F.instance_norm(last.transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(block(_state(x.detach(), valid)).features, ref, atol=1e-5)


def _state(x, valid):
    """What a forward hands its target sources (the teacher reads x, pad and valid)."""
    return ForwardState(z=x, u=x, x=x, qres=None, labels=None, mask=None, valid=valid, pad=None,
                        rand=None, quantize=None)


def test_regression_scores_masked_frames_only_with_l2_or_smooth_l1():
    m = _model()
    head = m.heads["regression"]
    c, y = torch.randn(5, m.spec.context.dim), torch.randn(5, m.spec.context.dim)
    d = y.size(-1)
    r = head(c, y)
    pred = head.final_proj(c)
    assert r.loss.item() == pytest.approx(((pred - y) ** 2).sum().item() / math.sqrt(d), rel=1e-5)
    assert r.count == 5
    head.spec = Regression(beta=0.5, loss_scale=2.0)
    ref = F.smooth_l1_loss(pred, y, beta=0.5, reduction="sum") * 2.0
    assert head(c, y).loss.item() == pytest.approx(ref.item(), rel=1e-5)
    # the loss counts masked frames: sample size = masked frames
    wave = torch.randn(2, 8000)
    out = m(wave, None, None, mask_seed=1)
    assert out.sample_size == int(out.mask.sum()) > 0


@pytest.mark.parametrize("change, message", [
    (lambda m: m.with_(target=hubert_model("tiny", LABELS).target),
     r"Regression needs target=TeacherTargets"),
    (lambda m: m.with_(mask=None), r"target=TeacherTargets predicts masked frames; set mask="),
    (lambda m: m.with_(target=TeacherTargets(top_k_layers=3)),
     r"TeacherTargets.top_k_layers=3 exceeds the context's 2 layers"),
    (lambda m: m.with_(losses=(MaskedPrediction(),)), r"MaskedPrediction needs target="),
    (lambda m: m.with_(target=(m.target, m.target)), r"lists a target kind twice"),
    (lambda m: m.with_(target=(m.target, hubert_model("tiny", LABELS).target)),
     r"ClusterTargets is read by no loss"),
])
def test_combinations_that_cannot_work_are_refused_naming_the_field(change, message):
    with pytest.raises((SpecError, ValueError), match=message):
        change(data2vec_model("tiny"))


def test_teacher_needs_a_transformer():
    w2v = wav2vec_model("tiny")
    assert isinstance(w2v.context, ConvContext)
    with pytest.raises((SpecError, ValueError), match=r"TeacherTargets averages transformer"):
        data2vec_model("tiny").with_(context=w2v.context)


def test_hubert_with_a_teacher_builds_both_heads():
    h = hubert_model("tiny", LABELS)
    spec = h.with_(target=(h.target, TeacherTargets(top_k_layers=2)),
                   losses=(MaskedPrediction(), Regression(), FeaturePenalty()))
    assert spec.target_kind == "ClusterTargets+TeacherTargets"
    m = build_model(spec)
    assert set(m.heads) == {"masked_prediction", "regression"}
    out = m(torch.randn(2, 16000), None, [torch.randint(0, 20, (2, 100))], mask_seed=0)
    assert {"loss_masked", "loss_regression", "loss_feature_penalty"} <= set(out.logs)
    assert out.sample_size == 2 * int(out.mask.sum())
