"""WavLM's utterance mixing on real demo crops: the labels stay the primary's, the added segment
sits at the drawn place and energy ratio, and the draws depend on (seed, step, global row) only,
so ranks (and hence micro-batches, which split a rank's rows after mixing) see the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from ssl_graph.audio.io import read_audio
from ssl_graph.specs.components_objectives import UtteranceMixing
from ssl_graph.train.data import CropSampler
from ssl_graph.train.mixing import mixing_plan

from ..conftest import DEMO

SR = 16000


@pytest.fixture(scope="module")
def corpus():
    files = sorted((DEMO / "wav").glob("*.flac"))[:12]
    paths = {f.stem: f for f in files}
    lengths = {u: len(read_audio(p, u, SR)) for u, p in paths.items()}
    rng = np.random.default_rng(0)  # a label set at 100 Hz (the values only need to survive)
    table = {u: rng.integers(0, 50, n * 100 // SR + 1) for u, n in lengths.items()}
    return paths, lengths, [(table, 100.0)]


def _sampler(corpus, mixing, seed=0, **kw):
    paths, lengths, labels = corpus
    return CropSampler(paths, lengths, sample_rate=SR, batch_seconds=kw.get("batch", 16.0),
                       crop_seconds=2.0, min_seconds=1.0, seed=seed,
                       group_seconds=kw.get("group"), label_sets=labels, mixing=mixing)


def _rows(step_batch):
    return np.concatenate([g.rows for g in step_batch.groups])


def test_mixed_rows_keep_their_labels_and_get_the_drawn_segment_at_the_drawn_ratio(corpus):
    mix = UtteranceMixing(prob=0.5, max_overlap=0.5, energy_ratio=(-5.0, 5.0))
    plain, mixed = _sampler(corpus, None), _sampler(corpus, mix)
    seen = 0
    for step in range(6):
        a, b = plain.batch(step), mixed.batch(step)
        plan = mixing_plan(mix, mixed.plan.step(step), seed=0)
        for ga, gb in zip(a.groups, b.groups):
            assert gb.utts == ga.utts and gb.starts == ga.starts
            for la, lb in zip(ga.labels, gb.labels):
                assert np.array_equal(la, lb)  # targets: the primary's
            for i, r in enumerate(gb.rows):
                added = gb.wave[i].astype(np.float64) - ga.wave[i]
                m = plan.get(int(r))
                if m is None:
                    assert not added.any()
                    continue
                seen += 1
                width = ga.wave.shape[1]
                assert 1 <= m.length <= 0.5 * width and m.secondary != r
                outside = np.ones(width, bool)
                outside[m.dst:m.dst + m.length] = False
                assert np.abs(added[outside]).max() < 1e-6
                seg = added[m.dst:m.dst + m.length]
                ratio = 10 * np.log10(np.mean(ga.wave[i].astype(np.float64) ** 2)
                                      / np.mean(seg ** 2))
                assert ratio == pytest.approx(m.ratio_db, abs=0.01)
                assert -5.0 <= m.ratio_db <= 5.0
    assert seen >= 10


def test_draws_are_seeded_per_row_so_ranks_see_the_unsplit_rows(corpus):
    mix = UtteranceMixing(prob=0.5)
    s = _sampler(corpus, mix, batch=24.0, group=8.0)
    for step in range(3):
        whole = s.batch(step)
        rows = {int(r): w for g in whole.groups for r, w in zip(g.rows, g.wave)}
        for world in (2, 3):
            for rank in range(world):
                part = s.batch(step, rank=rank, world=world)
                for g in part.groups:
                    for r, w in zip(g.rows, g.wave):
                        assert np.array_equal(w, rows[int(r)])
    again = _sampler(corpus, mix, batch=24.0, group=8.0).batch(1)
    assert all(np.array_equal(a.wave, b.wave) for a, b in zip(again.groups, s.batch(1).groups))
    other = _sampler(corpus, mix, seed=1, batch=24.0, group=8.0)
    assert mixing_plan(mix, other.plan.step(1), 1) != mixing_plan(mix, s.plan.step(1), 0)


def test_probability_and_overlap_follow_the_spec(corpus):
    mix = UtteranceMixing(prob=0.2, max_overlap=0.3)
    s = _sampler(corpus, mix)
    rows = mixed = 0
    for step in range(300):
        plan = s.plan.step(step)
        widths = [g.width for g in plan.groups for _ in g.utts]
        mixes = mixing_plan(mix, plan, 0)
        rows += len(widths)
        mixed += len(mixes)
        assert all(m.length <= 0.3 * widths[r] for r, m in mixes.items())
    assert 0.15 < mixed / rows < 0.25
    assert mixing_plan(mix.with_(prob=0.0), s.plan.step(0), 0) == {}
