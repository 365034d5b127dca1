"""The DataLoader hands back today's batches, in step order, whatever the worker count."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sf = pytest.importorskip("soundfile")

from ssl_graph.train.data import CropSampler  # noqa: E402
from ssl_graph.train.loader import step_batches  # noqa: E402
from ssl_graph.train.utterances import UtteranceBatcher  # noqa: E402

from ..conftest import make_corpus  # noqa: E402


def _audio(tmp_path):
    make_corpus(tmp_path, 8)
    files = sorted((tmp_path / "wav").glob("*.flac"))
    return {f.stem: f for f in files}, {f.stem: sf.info(str(f)).frames for f in files}


@pytest.mark.parametrize("workers", [0, 2])
def test_crop_batches_identical_whatever_the_workers(tmp_path, workers):
    paths, lengths = _audio(tmp_path)
    labels = {u: np.arange(n // 160, dtype=np.int64) % 7 for u, n in lengths.items()}
    sampler = CropSampler(paths, lengths, sample_rate=16000, batch_seconds=4.0, crop_seconds=1.0,
                          min_seconds=0.5, seed=3, label_sets=[(labels, 100.0)])
    got = list(step_batches(sampler.batch, 2, 7, workers=workers, device="cpu"))
    assert [s for s, _ in got] == [2, 3, 4, 5, 6]
    for step, b in got:
        want = sampler.batch(step)
        assert b["utts"] == want.utts
        assert len(b["groups"]) == len(want.groups)
        for g, w in zip(b["groups"], want.groups):
            assert np.array_equal(g["wave"].numpy(), w.wave)
            assert np.array_equal(g["labels"][0].numpy(), w.labels[0])
    first = [b["groups"][0]["wave"].numpy()[:1] for _, b in got[:2]]
    assert not np.array_equal(*first)


def test_padded_batches_identical_with_two_workers(tmp_path):
    paths, lengths = _audio(tmp_path)
    batcher = UtteranceBatcher(paths, lengths, sample_rate=16000, batch_seconds=12.0, seed=1)
    got = list(step_batches(batcher.batch, 0, 4, workers=2, device="cpu"))
    for step, b in got:
        want = batcher.batch(step)
        assert b["utts"] == want.utts and len(b["groups"]) == len(want.groups)
        for g, w in zip(b["groups"], want.groups):
            assert np.array_equal(g["wave"].numpy(), w.wave)
            pad = None if g["padding_mask"] is None else g["padding_mask"].numpy()
            assert (pad is None and w.padding_mask is None) or np.array_equal(pad, w.padding_mask)
