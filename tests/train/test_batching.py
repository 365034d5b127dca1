"""Length-sorted batches (``train/batching.py``): what each step holds, and how ranks split it."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from ssl_graph.train.batching import LengthPlan, groups_per_step, rank_rows

SR = 16000


def _lengths(n=300, seed=0) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    return {f"u{i:04d}": int(rng.uniform(0.5, 20.0) * SR) for i in range(n)}


def _crop_plan(lengths, seed=0, per_step=4):
    return LengthPlan(lengths, group_budget=40 * SR, groups_per_step=per_step, seed=seed,
                      max_samples=int(15.6 * SR), min_samples=2 * SR)


def test_every_epoch_trains_each_usable_utterance_once_in_a_new_order():
    lengths = _lengths()
    plan = _crop_plan(lengths)
    usable = {u for u, n in lengths.items() if n >= 2 * SR}
    epochs = []
    for e in range(2):
        steps = [plan.step(e * plan.steps_per_epoch + k) for k in range(plan.steps_per_epoch)]
        seen = Counter(u for s in steps for g in s.groups for u in g.utts)
        assert set(seen) == usable and set(seen.values()) == {1}
        assert all(len(s.groups) <= 4 for s in steps)
        epochs.append([g.utts for s in steps for g in s.groups])
    assert epochs[0] != epochs[1]  # groups reshuffled, ties among the capped reshuffled


def test_groups_hold_similar_lengths_cropped_to_their_shortest_within_budget():
    lengths = _lengths()
    plan = _crop_plan(lengths)
    cap = int(15.6 * SR)
    for step in range(plan.steps_per_epoch):
        for g in plan.step(step).groups:
            capped = [min(lengths[u], cap) for u in g.utts]
            assert g.width == min(capped)
            assert len(g.utts) == 1 or len(g.utts) * max(capped) <= 40 * SR
            assert capped == sorted(capped, reverse=True)  # consecutive in the length order
            for u, s in zip(g.utts, g.starts):
                assert 0 <= s <= lengths[u] - g.width
    # what cropping to the group's shortest discards, over an epoch: little, as fairseq's rule
    kept = sum(g.rows * g.width for k in range(plan.steps_per_epoch)
               for g in plan.step(k).groups)
    capped_total = sum(min(n, cap) for n in lengths.values() if n >= 2 * SR)
    assert 1 - kept / capped_total < 0.05


def test_a_step_is_a_pure_function_of_seed_and_step():
    lengths = _lengths()
    a, b = _crop_plan(lengths), _crop_plan(lengths)
    later = [a.step(k) for k in (57, 3, 120, 3)]  # epochs visited out of order
    assert later[1] == later[3] == b.step(3) and later[0] == b.step(57)
    assert later[2] == _crop_plan(lengths).step(120)
    assert _crop_plan(lengths, seed=1).step(3) != b.step(3)


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_rank_pieces_are_the_global_batch_in_row_order(world):
    plan = _crop_plan(_lengths(), per_step=3)
    step = plan.step(5)
    rows = [(g.index, u, s, g.width) for g in step.groups for u, s in zip(g.utts, g.starts)]
    got, covered = [], []
    for rank in range(world):
        pieces, stand_in = step.share(rank, world)
        assert not stand_in
        for p in pieces:
            got += [(p.index, u, s, p.width) for u, s in zip(p.utts, p.starts)]
            covered += list(p.global_rows)
    assert got == rows and covered == list(range(step.rows))


def test_fewer_rows_than_ranks_stand_in_with_row_zero():
    assert rank_rows(1, 0, 2) == (0, 1, True) and rank_rows(1, 1, 2) == (0, 1, False)
    plan = LengthPlan({"a": 5 * SR}, group_budget=10 * SR, groups_per_step=1, seed=0,
                      max_samples=4 * SR)
    pieces, stand_in = plan.step(0).share(0, 2)
    assert stand_in and [p.utts for p in pieces] == [("a",)]


def test_padded_groups_are_length_sorted_with_little_padding():
    lengths = _lengths(seed=2)
    plan = LengthPlan(lengths, group_budget=30 * SR, groups_per_step=2, seed=0)
    padded = audio = 0
    for k in range(plan.steps_per_epoch):
        for g in plan.step(k).groups:
            assert g.width == max(lengths[u] for u in g.utts) and set(g.starts) == {0}
            padded += g.rows * g.width
            audio += sum(lengths[u] for u in g.utts)
    assert 1 - audio / padded < 0.05  # random batches of these lengths pad ~40 %


def test_groups_per_step_and_group_seconds_validation(tmp_path):
    from ssl_graph import MFCC, Corpus, KMeans, Labels
    from ssl_graph.presets import hubert

    assert groups_per_step(2800.0, 87.5) == 32 and groups_per_step(12.0, None) == 1
    corpus = Corpus(root=str(tmp_path))
    labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=20))
    base = hubert(corpus, targets=labels, size="base")
    assert base.group_seconds == 87.5 and base.batch_seconds == 2800.0
    with pytest.raises(ValueError, match="group_seconds .1.0. must lie between crop_seconds"):
        hubert(corpus, targets=labels, size="tiny", group_seconds=1.0)  # below crop_seconds


def test_a_rank_decodes_only_its_rows(tmp_path):
    sf = pytest.importorskip("soundfile")
    from ssl_graph.train.data import CropSampler

    from ..conftest import make_corpus

    make_corpus(tmp_path, 12)
    files = sorted((tmp_path / "wav").glob("*.flac"))
    paths = {f.stem: f for f in files}
    lengths = {f.stem: sf.info(str(f)).frames for f in files}

    def sampler():
        return CropSampler(paths, lengths, sample_rate=SR, batch_seconds=12.0, crop_seconds=3.0,
                           min_seconds=1.0, seed=0, group_seconds=6.0)

    whole = sampler().batch(2)
    assert whole.batch_rows >= 2 and len(whole.groups) == 2
    for rank in range(2):
        mine = sampler()
        part = mine.batch(2, rank=rank, world=2)
        lo, hi, _ = rank_rows(whole.batch_rows, rank, 2)
        assert part.utts == whole.utts[lo:hi]
        assert set(mine.wave._waves) == set(part.utts)  # nothing else was decoded
        assert [r for p in part.groups for r in p.rows] == list(range(lo, hi))
        for p in part.groups:
            g = whole.groups[p.group]
            assert np.array_equal(p.wave, g.wave[p.offset:p.offset + len(p.utts)])
            assert p.labels == [] and p.group_rows == len(g.utts)


def test_no_utterance_reaching_min_seconds_is_one_line_naming_the_node(tmp_path):
    from ssl_graph.api import Project

    from ..conftest import make_corpus

    make_corpus(tmp_path, 3)  # 2-6 s utterances
    (tmp_path / "p.py").write_text(
        "from ssl_graph import Corpus\nfrom ssl_graph.presets import wav2vec2\n"
        "pre = wav2vec2(Corpus(root='wav'), size='tiny', steps=1, batch_seconds=30.0,\n"
        "               crop_seconds=10.0, min_seconds=20.0)\n")
    with pytest.raises(ValueError, match=r"^pre: no utterance of the corpus is at least "
                                         r"min_seconds=20 long; lower min_seconds$"):
        Project(tmp_path / "p.py", str(tmp_path / "store")).run()
