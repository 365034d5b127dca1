"""Per-row draws and global-batch loss shares: the pieces that make a split batch's update the
unsplit one (the end-to-end check is tests/train/test_split_invariance.py)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from ssl_graph.nn import losses as L  # noqa: E402
from ssl_graph.nn.batch_stats import BatchStats  # noqa: E402
from ssl_graph.nn.quantizers import perplexity  # noqa: E402
from ssl_graph.nn.row_random import NEGATIVES_STREAM, RowRandom  # noqa: E402


def test_a_rows_draws_do_not_depend_on_the_rows_beside_it():
    whole, part = RowRandom(5, [0, 1, 2, 3], "cpu"), RowRandom(5, [2, 3], "cpu")
    assert torch.equal(whole.gumbel_noise((4, 6, 2, 3))[2:], part.gumbel_noise((2, 6, 2, 3)))
    u = whole.uniform(NEGATIVES_STREAM, [3, 1, 4, 2], 7)
    assert torch.equal(u[4:], part.uniform(NEGATIVES_STREAM, [4, 2], 7))
    assert not torch.equal(u[:3], RowRandom(6, [0], "cpu").uniform(NEGATIVES_STREAM, [3], 7))
    assert not torch.equal(u[:3], whole.uniform(NEGATIVES_STREAM + 1, [3], 7))


def test_diversity_shares_sum_to_the_global_term_and_its_gradient():
    G, V, N = 2, 5, 9  # 9 frames scored, split 4 + 5; the sample size differs from the frames
    logits = torch.randn(N, G, V, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sample_size, w = 13, 0.1

    x = logits.clone().requires_grad_(True)
    exact = w * L.diversity_loss(perplexity(torch.softmax(x, -1).mean(0)), G * V) * sample_size
    exact.backward()

    y = logits.clone().requires_grad_(True)
    with torch.no_grad():
        pbar = torch.softmax(y, -1).mean(0)
    stats = BatchStats(rows=2, sample_size=sample_size, scored=N, probs=pbar)
    total = 0.0
    for part, size in ((slice(0, 4), 6), (slice(4, 9), 7)):
        probs = torch.softmax(y[part], -1)
        share = stats.diversity_share(probs.sum(0), probs.size(0), size, G * V)
        (w * share).backward()
        total += float(w * share.detach())
    assert total == pytest.approx(float(exact), rel=1e-6)
    assert torch.allclose(y.grad, x.grad, rtol=1e-5, atol=1e-9)
    assert float(x.grad.abs().max()) > 0
