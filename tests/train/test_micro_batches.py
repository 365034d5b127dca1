"""Global batch vs micro-batches: the same update whatever ``max_batch_seconds`` is."""

from __future__ import annotations

from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ssl_graph import MFCC, Corpus, KMeans, Labels  # noqa: E402
from ssl_graph.presets import hubert, wav2vec2_model  # noqa: E402
from ssl_graph.train.distributed import Ranks  # noqa: E402
from ssl_graph.train.micro import micro_slices  # noqa: E402

SR = 16000


def _no_dropout(model):
    ctx = model.context.with_(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                              layerdrop=0.0)
    return model.with_(context=ctx, dropout_input=0.0, dropout_features=0.0,
                       dropout_context=0.0)


def _session(max_samples, model):
    """The parts of a TrainSession the forward/backward uses, in one process."""
    return SimpleNamespace(
        device="cpu", autocast=nullcontext, backward=lambda loss: loss.backward(),
        micro_slices=lambda rows, width: micro_slices(rows, width, max_samples),
        ranks=Ranks(), ddp=model, shard=lambda n: (slice(0, n), False), reduce=lambda values: values)


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same(a, b, rtol=1e-5):
    """Relative to the whole gradient: some tensors' true gradient is 0 (attention key bias)."""
    assert a.keys() == b.keys() and a
    flat_a = torch.cat([g.flatten() for g in a.values()])
    flat_b = torch.cat([b[n].flatten() for n in a])
    assert float(flat_a.norm()) > 0
    assert float((flat_a - flat_b).norm() / flat_a.norm()) <= rtol
    scale = float(flat_a.abs().max())
    for n in a:
        err = float((a[n] - b[n]).abs().max()) / scale
        assert err <= rtol, f"{n}: difference {err:.2e} of the largest gradient"


def test_micro_slices_bound_samples_and_cover_every_row():
    assert micro_slices(8, 16000, None) == [slice(0, 8)]
    s = micro_slices(10, 16000, 3 * 16000)
    assert s == [slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 10)]
    assert micro_slices(3, 16000, 100) == [slice(0, 1), slice(1, 2), slice(2, 3)]


def test_hubert_batch_in_four_micro_batches_gives_the_same_gradients(tmp_path):
    from ssl_graph.nn import build_model
    from ssl_graph.train.loop import _forward_backward

    corpus = Corpus(root=str(tmp_path))
    labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=20))
    node = hubert(corpus, targets=labels, size="tiny", steps=1, batch_seconds=8.0,
                  crop_seconds=1.0)
    spec = _no_dropout(node.model)
    rng = np.random.default_rng(0)
    group = {"wave": torch.from_numpy(rng.standard_normal((8, SR)).astype(np.float32)),
             "labels": [torch.from_numpy(rng.integers(0, 20, (8, 100)))], "group": 0,
             "group_rows": 8, "offset": 0, "rows": torch.arange(8)}
    batch = {"groups": [group], "stand_in": False}
    results = []
    for max_samples in (None, 2 * SR):
        torch.manual_seed(0)
        model = build_model(spec).train()
        loss, size, _ = _forward_backward(_session(max_samples, model), model, batch,
                                          mask_seed=7)
        grads = {n: g / size for n, g in _grads(model).items()}
        results.append((loss / size, size, grads))
    (l1, n1, g1), (l4, n4, g4) = results
    assert n1 == n4 > 0  # the same frames are masked: one mask for the global batch
    assert l4 == pytest.approx(l1, rel=1e-5)
    _assert_same(g1, g4)


def test_finetune_batch_in_four_micro_batches_gives_the_same_gradients():
    from ssl_graph.nn.ctc import CTCModel
    from ssl_graph.train.finetune import _forward_backward
    from ssl_graph.train.utterances import pad_batch

    spec = _no_dropout(wav2vec2_model("tiny"))
    rng = np.random.default_rng(1)
    lengths = [16000, 12000, 9000, 16000, 8000, 15000, 11000, 10000]
    waves = [rng.standard_normal(n).astype(np.float32) for n in lengths]
    utts = [f"u{i}" for i in range(8)]
    padded = pad_batch(waves, utts)
    group = {"wave": torch.from_numpy(padded.wave),
             "padding_mask": torch.from_numpy(padded.padding_mask), "utts": utts, "group": 0}
    batch = {"groups": [group], "stand_in": False}
    targets = {u: torch.from_numpy(rng.integers(1, 10, 5)) for u in utts}
    results = []
    for max_samples in (None, 2 * 16000):
        torch.manual_seed(0)
        model = CTCModel(spec, 10, mask=None).train()
        loss, n = _forward_backward(_session(max_samples, model), batch, targets, False, 3)
        results.append((loss / n, {k: g / n for k, g in _grads(model).items()}))
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-5)
    _assert_same(results[0][1], results[1][1])


def test_two_crop_groups_split_by_ranks_and_micro_batches_give_the_same_update(tmp_path):
    """A step of two groups of different widths: rank 1 holds the end of group 0 and all of
    group 1; each group's masks are drawn for the whole group and the feature penalty is the
    step's, so the summed update is the one-process one."""
    from ssl_graph.nn import build_model
    from ssl_graph.train.loop import _forward_backward

    corpus = Corpus(root=str(tmp_path))
    labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=20))
    node = hubert(corpus, targets=labels, size="tiny", steps=1, batch_seconds=8.0,
                  crop_seconds=1.0)
    spec = _no_dropout(node.model)
    rng = np.random.default_rng(2)
    groups, first = [], 0
    for index, (rows, width) in enumerate([(5, SR), (3, 12000)]):
        groups.append({"wave": torch.from_numpy(rng.standard_normal((rows, width)).astype(np.float32)),
                       "labels": [torch.from_numpy(rng.integers(0, 20, (rows, width // 160)))],
                       "group": index, "group_rows": rows, "offset": 0,
                       "rows": torch.arange(first, first + rows)})
        first += rows

    def piece(g, lo, hi):
        return {**g, "wave": g["wave"][lo:hi], "labels": [t[lo:hi] for t in g["labels"]],
                "offset": lo, "rows": g["rows"][lo:hi]}

    def ranks(rank, world, summed):
        return SimpleNamespace(rank=rank, on=world > 1, no_sync=lambda ddp, last: nullcontext(),
                               sum_tensor=summed)

    def run(model, batches, max_samples):
        """The ranks one after the other; their one all-reduce (the step's batch statistics:
        HuBERT's feature penalty is a mean over the step's frames) done by hand first."""
        from ssl_graph.train.micro import SplitBatch

        parts = []
        for rank, groups_of_rank in enumerate(batches):
            session = _session(max_samples, model)
            session.ranks = ranks(rank, len(batches), lambda t, device: parts.append(t) or t)
            SplitBatch(session, model, groups_of_rank, 11, False)
        total = sum(parts)
        loss = size = 0
        for rank, groups_of_rank in enumerate(batches):
            session = _session(max_samples, model)
            session.ranks = ranks(rank, len(batches), lambda t, device: total)
            step_loss, step_size, _ = _forward_backward(
                session, model, {"groups": groups_of_rank, "stand_in": False}, mask_seed=11)
            loss, size = loss + step_loss, size + step_size
        return loss, size, _grads(model)

    results = []
    split = [[piece(groups[0], 0, 4)], [piece(groups[0], 4, 5), groups[1]]]
    for batches, max_samples in (([groups], None), (split, None), (split, SR)):
        torch.manual_seed(0)
        model = build_model(spec).train()
        results.append(run(model, batches, max_samples))
    (l1, n1, g1) = results[0]
    for loss, size, grads in results[1:]:
        assert size == n1 > 0
        assert loss == pytest.approx(l1, rel=1e-5)
        _assert_same(g1, grads)
