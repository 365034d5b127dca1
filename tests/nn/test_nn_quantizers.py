"""Gumbel and k-means quantizers against hand computations on fixed weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ssl_graph.nn.quantizers import GumbelQuantizerModule, KMeansQuantizerModule, perplexity
from ssl_graph.nn.row_random import RowRandom
from ssl_graph.specs.components import GumbelQuantizer, KMeansQuantizer

# G=2 groups × V=3 entries, 2-d input, 2-d entries (4-d output)
# group 0 logits = (x0, x1, -x0-x1); group 1 logits = (2x0, -x1, x0+x1)
W = np.array([[1, 0], [0, 1], [-1, -1], [2, 0], [0, -1], [1, 1]], dtype=np.float32)
BOOK = np.arange(12, dtype=np.float32).reshape(1, 6, 2)  # entry j of the flat book = (2j, 2j+1)
X = np.array([[1.0, 2.0], [-1.0, 0.5], [0.2, -3.0]], dtype=np.float32)


def _gumbel(**kw) -> GumbelQuantizerModule:
    q = GumbelQuantizerModule(GumbelQuantizer(groups=2, entries=3, dim=4, **kw), in_dim=2)
    with torch.no_grad():
        q.weight_proj[0].weight.copy_(torch.from_numpy(W))
        q.weight_proj[0].bias.zero_()
        if not kw.get("combine_groups"):
            q.codebook.copy_(torch.from_numpy(BOOK))
    return q.eval()


def test_gumbel_eval_argmax_codes_and_vectors():
    out = _gumbel()(torch.from_numpy(X)[None])
    # logits by hand: x=(1,2): g0 (1,2,-3) → 1; g1 (2,-2,3) → 2
    #                 x=(-1,.5): g0 (-1,.5,.5) → 1 (first max); g1 (-2,-.5,-.5) → 1
    #                 x=(.2,-3): g0 (.2,-3,2.8) → 2; g1 (.4,3,-2.8) → 1
    codes = [[1, 2], [1, 1], [2, 1]]
    assert out.codes[0].tolist() == codes
    # group g entry v is flat book row g*3 + v = (2(3g+v), 2(3g+v)+1)
    expect = [[2 * (3 * g + v) + d for g, v in enumerate(c) for d in (0, 1)] for c in codes]
    assert out.x[0].tolist() == expect


def test_gumbel_perplexities_by_hand():
    out = _gumbel()(torch.from_numpy(X)[None])
    logits = X @ W.T  # (3, 6)
    code_ppl = prob_ppl = 0.0
    for g in range(2):
        lg = logits[:, 3 * g : 3 * g + 3].astype(np.float64)
        hist = np.bincount(lg.argmax(1), minlength=3) / 3.0
        code_ppl += math.exp(-(hist * np.log(hist + 1e-7)).sum())
        p = np.exp(lg - lg.max(1, keepdims=True))
        pbar = (p / p.sum(1, keepdims=True)).mean(0)
        prob_ppl += math.exp(-(pbar * np.log(pbar + 1e-7)).sum())
    assert out.code_perplexity.item() == pytest.approx(code_ppl, rel=1e-5)
    assert out.prob_perplexity.item() == pytest.approx(prob_ppl, rel=1e-5)
    assert out.num_vars == 6


def test_perplexity_extremes():
    uniform = torch.full((2, 4), 0.25)
    onehot = torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0]])
    assert perplexity(uniform).item() == pytest.approx(8.0, rel=1e-5)
    assert perplexity(onehot).item() == pytest.approx(2.0, rel=1e-5)


def test_valid_mask_restricts_statistics():
    q = _gumbel()
    x = torch.from_numpy(X)[None]
    full = q(x[:, :2])
    part = q(x, valid=torch.tensor([[True, True, False]]))
    assert part.code_perplexity.item() == pytest.approx(full.code_perplexity.item())
    assert part.prob_perplexity.item() == pytest.approx(full.prob_perplexity.item())


def test_combine_groups_shares_one_codebook():
    q = _gumbel(combine_groups=True)
    assert q.codebook.shape == (1, 3, 2)
    out = q(torch.tensor([[[1.0, 2.0]]]))  # codes (1, 2)
    book = q.codebook[0]
    assert torch.equal(out.x[0, 0], torch.cat([book[1], book[2]]))


@pytest.mark.parametrize("step", [0, 1, 1000, 100_000, 277_000, 10**6])
def test_temperature_schedule(step):
    q = _gumbel(temperature=(2.0, 0.5, 0.999995))
    q.set_num_updates(step)
    assert q.temperature == pytest.approx(max(2.0 * 0.999995**step, 0.5))
    assert GumbelQuantizer().temperature_at(step) == q.temperature


def test_gumbel_training_straight_through_and_seeded():
    q = _gumbel().train()
    x = torch.from_numpy(X)[None].requires_grad_(True)
    a = q(x, gumbel=RowRandom(7, [0], "cpu").gumbel_noise)
    b = q(x, gumbel=RowRandom(7, [0], "cpu").gumbel_noise)
    assert torch.equal(a.codes, b.codes) and torch.equal(a.x, b.x)
    # forward values are exactly codebook rows (hard), yet gradients reach the logits
    rows = {tuple(r) for r in BOOK[0].tolist()}
    assert all(tuple(v) in rows for v in a.x.view(-1, 2).tolist())
    a.x.sum().backward()
    assert q.weight_proj[0].weight.grad.abs().sum() > 0


def test_kmeans_nearest_code_and_losses():
    q = KMeansQuantizerModule(KMeansQuantizer(groups=1, entries=3, dim=2, gamma=0.25), in_dim=2)
    with torch.no_grad():
        q.codebook.copy_(torch.tensor([[[0.0, 0.0]], [[1.0, -1.0]], [[-1.0, 1.0]]]))
    x = torch.randn(1, 5, 2, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = q(x)
    ze = q.norm(q.proj(x.transpose(1, 2))).transpose(1, 2)[0].detach().numpy()
    book = q.codebook[:, 0].detach().numpy()
    ids = ((ze[:, None] - book[None]) ** 2).sum(-1).argmin(1)
    assert out.codes[0, :, 0].tolist() == ids.tolist()
    assert np.allclose(out.x[0].detach().numpy(), book[ids], atol=1e-6)
    mse = ((ze - book[ids]) ** 2).mean()
    assert out.loss.item() == pytest.approx(1.25 * mse, rel=1e-5)
    # straight-through: the projection gets gradients (a plain sum would vanish through the norm)
    (out.x * torch.randn(out.x.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    assert q.proj.weight.grad.abs().sum() > 0
