"""The KMeans op's streamed fit sample (``SampledFrames``) against the in-memory definition."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ssl_graph.ops.kmeans import SampledFrames, sample_frames


class _Store:
    def __init__(self, parts):
        self.parts = parts

    def read_array(self, key):
        return self.parts[key.split("/", 1)[1]]


class _Reader:
    """Just what ``iter_ragged`` touches: ``index``, ``key``, ``store.read_array``, ``read_range``
    (an in-memory stand-in for a ragged node laid out in parts of a given size)."""

    def __init__(self, feats: dict[str, np.ndarray], order: list[str], part_frames: int):
        self.key, self.index, parts, buf, start = "node", {}, {}, [], 0
        for u in order:
            if start >= part_frames:
                parts[f"parts/{len(parts):05d}"] = np.concatenate(buf)
                buf, start = [], 0
            self.index[u] = [f"parts/{len(parts):05d}", start, start + len(feats[u]), "v"]
            buf.append(feats[u])
            start += len(feats[u])
        parts[f"parts/{len(parts):05d}"] = np.concatenate(buf)
        self.store = _Store(parts)

    def length(self, utt):
        e = self.index[utt]
        return e[2] - e[1]

    def read_range(self, part, start, end, utt):
        return np.asarray(self.store.read_array(f"{self.key}/{part}")[start:end])


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 400), min_size=1, max_size=30),
    fraction=st.sampled_from([0.05, 0.3, 1.0]),
    part_frames=st.integers(1, 2000),
    shuffle_seed=st.integers(0, 10),
)
def test_chunks_are_the_sorted_per_utterance_sample(lengths, fraction, part_frames, shuffle_seed):
    rng = np.random.default_rng(len(lengths))
    feats = {f"u{i:03d}": rng.standard_normal((n, 3)).astype(np.float32)
             for i, n in enumerate(lengths)}
    order = list(feats)
    np.random.default_rng(shuffle_seed).shuffle(order)  # storage order differs from sorted
    src = SampledFrames(_Reader(feats, order, part_frames), list(feats), fraction, 7, dim=3)
    src.rows = 64  # small chunks so many groups are exercised
    want = np.concatenate([sample_frames(feats[u], u, fraction, 7) for u in sorted(feats)])
    chunks = list(src.chunks())
    assert src.n_frames == len(want)
    if len(want):
        np.testing.assert_array_equal(np.concatenate(chunks), want)
    assert all(len(c) <= src.rows + max(lengths) for c in chunks)
    assert all(c.dtype == np.float32 and c.flags.c_contiguous for c in chunks)
    again = list(src.chunks())
    assert [c.tobytes() for c in again] == [c.tobytes() for c in chunks]


def test_a_fit_with_few_frames_per_centroid_says_so(tmp_path):
    from ssl_graph.api import Project

    from ..conftest import make_corpus

    make_corpus(tmp_path, 2)
    (tmp_path / "p.py").write_text(
        "from ssl_graph import MFCC, Corpus, KMeans\n"
        "feats = MFCC(corpus=Corpus(root='wav'))\n"
        "sparse = KMeans(features=feats, k=40, fit_fraction=0.5, max_iter=2)\n"
        "dense = KMeans(features=feats, k=4, fit_fraction=0.5, max_iter=2)\n")
    project = Project(tmp_path / "p.py", str(tmp_path / "store"))
    project.run()
    n = project["sparse"].record["metrics"]["fit_frames"]
    assert 40 <= n < 20 * 40
    (warning,) = project["sparse"].record["warnings"]
    assert f"fit on {n:,} frames, {n / 40:.1f} per centroid (fewer than 20)" in warning
    assert not project["dense"].record["warnings"]


def test_compiled_kernels_are_found_in_the_cache_and_missing_ones_are_not():
    from ssl_graph.kernels.jit_cache import is_cached
    from ssl_graph.kernels.kmeans import fit_kmeans

    fit_kmeans(np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32), 4, seed=0,
               max_iter=2)  # compiles (and caches) the Lloyd kernels if nothing did yet
    assert is_cached("kmeans_lloyd")
    assert not is_cached("no_such_kernels")
