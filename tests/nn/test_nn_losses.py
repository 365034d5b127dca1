"""Loss functions and heads against step-by-step numpy computations on tiny tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ssl_graph.nn import losses as L
from ssl_graph.nn.heads import MaskedPredictionHead, StepPredictionHead
from ssl_graph.nn.quantizers import perplexity
from ssl_graph.nn.row_random import RowRandom
from ssl_graph.specs.components import MaskedPrediction, StepPrediction


def _cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _logsumexp(v):
    v = np.asarray(v, dtype=np.float64)
    finite = v[np.isfinite(v)]
    m = finite.max()
    return m + math.log(np.exp(finite - m).sum())


def test_contrastive_logits_and_loss_by_hand():
    x = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 2.0]])
    y = np.array([[1.0, 1.0], [2.0, 0.0], [0.0, 1.0]])
    neg_idx = np.array([[1, 2], [0, 0], [1, 2]])  # row 2's second distractor is itself
    tau = 0.1
    expected_loss, expected_logits = 0.0, []
    for i in range(3):
        row = [_cos(x[i], y[i]) / tau]
        for j in neg_idx[i]:
            same = np.array_equal(y[j], y[i])
            row.append(-np.inf if same else _cos(x[i], y[j]) / tau)
        expected_logits.append(row)
        expected_loss += _logsumexp(row) - row[0]  # CE with target 0
    t = lambda a: torch.tensor(a, dtype=torch.float32)
    yt = t(y)
    logits = L.similarity_logits(t(x), yt, yt[torch.from_numpy(neg_idx)], tau)
    assert np.allclose(logits.numpy(), np.array(expected_logits), rtol=1e-5)
    assert logits[2, 2].item() == -math.inf
    assert L.info_nce(logits).item() == pytest.approx(expected_loss, rel=1e-5)
    # accuracy: positive strictly above all distractors
    wins = [row[0] > max(row[1:]) for row in expected_logits]
    assert L.positive_wins(logits).tolist() == wins


def test_diversity_loss_by_hand():
    pbar = np.array([[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    ppl = sum(math.exp(-(p * np.log(p + 1e-7)).sum()) for p in pbar)  # ≈ 2 + 4
    expected = (8 - ppl) / 8  # ≈ 0.25
    got = L.diversity_loss(perplexity(torch.tensor(pbar, dtype=torch.float32)), 8)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(0.25, abs=1e-5)


def test_feature_penalty():
    z = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    assert L.feature_penalty(z).item() == pytest.approx((1 + 4 + 9 + 0) / 4)


def test_negatives_same_row_never_self_and_seeded():
    rows = torch.tensor([0] * 5 + [1] * 3 + [2] * 1)  # row 2 has a single masked frame
    u = lambda num: torch.rand(9, num, generator=torch.Generator().manual_seed(11),
                               dtype=torch.float64)
    idx = L.sample_negatives(rows, u(50))
    assert torch.equal(idx, L.sample_negatives(rows, u(50)))
    assert idx.shape == (9, 50)
    self_idx = torch.arange(9)[:, None]
    assert torch.equal(rows[idx], rows[:, None].expand(-1, 50))  # same utterance
    assert not (idx[:8] == self_idx[:8]).any()  # never the frame itself ...
    assert (idx[8] == 8).all()  # ... unless it is alone (then masked as a duplicate)
    assert set(idx[:5].flatten().tolist()) == set(range(5))  # uniform over the others
    cross = L.sample_negatives(rows, None, u(40))
    assert not (cross == self_idx).any() and cross.max() <= 8


def test_hubert_logits_and_ce_by_hand():
    rng = np.random.default_rng(0)
    C, D, n_cls = 6, 3, (4, 2)
    head = MaskedPredictionHead(
        MaskedPrediction(temperature=0.1, untie_final_proj=True),
        context_dim=C,
        final_dim=D,
        num_classes=n_cls,
    )
    W = rng.normal(size=(2 * D, C)).astype(np.float32)
    b = rng.normal(size=2 * D).astype(np.float32)
    E = rng.normal(size=(sum(n_cls), D)).astype(np.float32)
    with torch.no_grad():
        head.final_proj.weight.copy_(torch.from_numpy(W))
        head.final_proj.bias.copy_(torch.from_numpy(b))
        head.label_embs.copy_(torch.from_numpy(E))
    c = rng.normal(size=(1, 4, C)).astype(np.float32)
    t0, t1 = np.array([[3, 0, 1, 2]]), np.array([[1, 1, 0, 0]])
    masked = np.array([[True, False, True, True]])
    out = head(
        torch.from_numpy(c),
        [torch.from_numpy(t0), torch.from_numpy(t1)],
        torch.from_numpy(masked),
        torch.ones(1, 4, dtype=torch.bool),
    )
    expected, correct = 0.0, 0
    for t in np.flatnonzero(masked[0]):
        proj = W @ c[0, t] + b
        for s, (targets, embs) in enumerate([(t0, E[:4]), (t1, E[4:])]):
            o = proj[s * D : (s + 1) * D]  # untied: set s reads its own slice
            logits = [_cos(o, e) / 0.1 for e in embs]
            expected += _logsumexp(logits) - logits[targets[0, t]]
            correct += int(np.argmax(logits) == targets[0, t])
    assert set(out) == {"masked"}  # unmasked_weight 0 → no unmasked term
    assert out["masked"].count == 3
    assert out["masked"].loss.item() == pytest.approx(expected, rel=1e-5)
    acc = out["masked"].logs
    assert (acc["accuracy_masked_0"] + acc["accuracy_masked_1"]).item() * 3 == pytest.approx(
        correct
    )


def test_step_scores_bce_and_infonce_by_hand():
    pred = np.array([[1.0, 2.0], [0.0, -1.0]])
    y = np.array([[0.5, 0.5], [1.0, 1.0]])
    negs = np.array([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.5, -0.5]]])
    scores = [[float(p @ c) for c in [yy, *nn]] for p, yy, nn in zip(pred, y, negs)]
    sig = lambda s: 1 / (1 + math.exp(-s))
    bce = sum(-math.log(sig(r[0])) - sum(math.log(1 - sig(s)) for s in r[1:]) for r in scores)
    bal = sum(-math.log(sig(r[0])) - 0.5 * sum(math.log(1 - sig(s)) for s in r[1:]) for r in scores)
    nce = sum(_logsumexp(r) - r[0] for r in scores)
    t = lambda a: torch.tensor(a, dtype=torch.float32)
    got = L.step_scores(t(pred), t(y), t(negs))
    assert np.allclose(got.numpy(), scores)
    assert L.step_loss(got, infonce=False).item() == pytest.approx(bce, rel=1e-5)
    assert L.step_loss(got, infonce=False, balanced=True).item() == pytest.approx(bal, rel=1e-5)
    assert L.step_loss(got, infonce=True).item() == pytest.approx(nce, rel=1e-5)


def test_step_head_counts_and_padding():
    head = StepPredictionHead(
        StepPrediction(negatives=3), steps=2, offset=1, context_dim=4, target_dim=3
    )
    valid = torch.ones(2, 6, dtype=torch.bool)
    valid[1, 4:] = False  # row 1 has 4 frames
    c, y = torch.randn(2, 6, 4), torch.randn(2, 6, 3)
    out = head(c, y, valid, RowRandom(0, range(c.size(0)), "cpu"))
    # step k predicts t + 1 + k: row 0 has 5 + 4 targets, row 1 has 3 + 2
    assert out.count == 14
    assert torch.isfinite(out.loss)
