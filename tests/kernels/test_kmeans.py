"""Tests for ssl_graph.kernels.kmeans.

The quality test runs on real MFCC frames of the demo corpus (``data/demo/wav``) when
it exists and on a seeded Gaussian mixture otherwise, and compares against the
fairseq/HuBERT recipe: sklearn ``MiniBatchKMeans`` with its settings (scaled down to
20k frames, k=50, n_init=3 to stay fast).
"""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssl_graph.kernels import kmeans as km
from ssl_graph.kernels import kmeans_candidates
from ssl_graph.kernels.assign import assign_labels
from ssl_graph.kernels.kmeans import KMeansResult, fit_kmeans
from ssl_graph.kernels.kmeans_candidates import Candidates
from ssl_graph.kernels.kmeans_lloyd import assign_pass
from ssl_graph.kernels.kmeans_source import ArraySource, NpyFileSource, gather

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "wav"
N_FRAMES = 20_000


def gaussian_mixture(n: int, d: int = 39, n_comp: int = 80, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n_comp, d)) * 6
    scales = rng.uniform(0.5, 2.0, (n_comp, 1))
    comp = rng.choice(n_comp, n, p=rng.dirichlet(np.ones(n_comp)))
    return (means[comp] + rng.standard_normal((n, d)) * scales[comp]).astype(np.float32)


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    files = sorted(DEMO.glob("*.flac")) if DEMO.is_dir() else []
    if not files:
        return gaussian_mixture(N_FRAMES)
    import soundfile as sf

    from ssl_graph.audio.mfcc import mfcc_hubert

    feats, total = [], 0
    for f in files:
        wave, _ = sf.read(f, dtype="float32")
        feats.append(mfcc_hubert(wave))
        total += len(feats[-1])
        if total >= N_FRAMES:
            break
    return np.concatenate(feats)[:N_FRAMES]


def mean_sq_dist(x: np.ndarray, c: np.ndarray) -> float:
    """Exact (float64) mean squared distance to the nearest centroid."""
    x64, c64 = x.astype(np.float64), c.astype(np.float64)
    d = (x64**2).sum(1)[:, None] - 2 * x64 @ c64.T + (c64**2).sum(1)[None, :]
    nearest = d.argmin(axis=1)
    return float(((x64 - c64[nearest]) ** 2).sum(1).mean())


def test_inertia_no_worse_than_hubert_minibatch_kmeans(frames):
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    k, n_init = 50, 3
    ref = sklearn_cluster.MiniBatchKMeans(
        n_clusters=k,
        init="k-means++",
        max_iter=100,
        batch_size=10000,
        tol=0.0,
        max_no_improvement=100,
        init_size=None,
        n_init=n_init,
        reassignment_ratio=0.0,
        compute_labels=False,
        random_state=0,
    ).fit(frames)
    ours = fit_kmeans(frames, k, seed=0, n_init=n_init)
    assert ours.centroids.shape == (k, frames.shape[1]) and ours.centroids.dtype == np.float32
    assert ours.inertia == pytest.approx(mean_sq_dist(frames, ours.centroids), rel=1e-5)
    assert ours.inertia <= mean_sq_dist(frames, ref.cluster_centers_)


def test_bit_identical_across_runs_and_thread_counts(frames):
    x = frames[:8000]
    a = fit_kmeans(x, 20, seed=3)
    b = fit_kmeans(x, 20, seed=3)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        c = fit_kmeans(x, 20, seed=3)
    finally:
        numba.set_num_threads(threads)
    assert a.centroids.tobytes() == b.centroids.tobytes() == c.centroids.tobytes()
    assert a.inertia == b.inertia == c.inertia and a.n_iter == b.n_iter == c.n_iter
    assert fit_kmeans(x, 20, seed=4).centroids.tobytes() != a.centroids.tobytes()


def test_best_of_n_init_is_no_worse_than_first_run(frames):
    x = frames[:6000]
    one = fit_kmeans(x, 16, seed=7)
    three = fit_kmeans(x, 16, seed=7, n_init=3)
    assert three.n_init == 3 and three.inertia <= one.inertia


def test_streaming_lloyd_matches_plain_lloyd(frames):
    # chunked passes with per-range float64 sums must give Lloyd's iterates: compare
    # with a float64 numpy Lloyd from the same start (no empty clusters on this path)
    x = frames[:12_000]
    with km.blas_single_thread():
        init = km.kmeans_plusplus(x, 40, np.random.default_rng(0))
        source = ArraySource(x, rows=5000)  # 3 chunks, the last one short
        ours, _, n_iter = km.lloyd(source, init, max_iter=12, tol=-1.0)  # tol < 0: never stop
    assert n_iter == 12
    x64, c = x.astype(np.float64), init.astype(np.float64)
    for _ in range(12):
        d = (x64**2).sum(1)[:, None] - 2 * x64 @ c.T + (c**2).sum(1)[None, :]
        labels = d.argmin(axis=1)
        assert np.bincount(labels, minlength=40).min() > 0
        c = np.stack([x64[labels == j].mean(axis=0) for j in range(40)])
    np.testing.assert_allclose(ours, c, atol=1e-3 * np.abs(c).max())


def test_candidate_checks_give_the_full_assignment(frames, monkeypatch):
    # passes that check each frame's candidates and bounds must give every frame the
    # centroid a full assignment gives (the same counts, sums and inertia, bit for bit),
    # while most frames skip the full GEMM; two candidates keep many frames close to
    # their bounds, where a wrong bound shows
    monkeypatch.setattr(kmeans_candidates, "CANDIDATES", 2)
    x = frames[:12_000]
    source = ArraySource(x, rows=5000)
    with km.blas_single_thread():
        c = km.kmeans_plusplus(x, 40, np.random.default_rng(0))
        cands = Candidates(len(x), 40)  # (fits pick them from 128-d up)
        skipped = []
        for _ in range(8):
            listed, before = cands.bound > 0, cands.since.copy()
            sums, counts, inertia = assign_pass(source, c, cands=cands)
            full_sums, full_counts, full_inertia = assign_pass(source, c)
            np.testing.assert_array_equal(counts, full_counts)
            np.testing.assert_array_equal(sums, full_sums)
            assert inertia == full_inertia
            skipped.append(float((listed & (cands.since == before)).mean()))
            new = (sums / counts[:, None]).astype(np.float32)
            cands.moved(c, new)
            c = new
    assert skipped[0] == 0.0 and max(skipped) > 0.5


def test_candidate_checks_leave_exact_ties_to_the_lowest_index():
    # integer frames and centroids make every distance exact.  After the centroids move,
    # 100 frames sit exactly between centroids 0 and 1, and 100 between 2 and 3 whose
    # lists (from before the move, when 3 was nearer) name 3 first: a check must not
    # settle a tie itself; the full assignment's rule (lowest index) decides
    d, k = 160, 4
    after = np.zeros((k, d), np.float32)
    after[1, 0], after[2, 1], after[3, 1], after[3, 2] = 2, 12, 12, 2
    before = after.copy()
    before[2, 2] = -1  # centroid 2 then moves by 1 towards the frames
    x = np.zeros((300, d), np.float32)
    x[:100, 0] = 1  # ties 0 | 1
    x[100:200, 1], x[100:200, 2] = 12, 1  # ties 2 | 3 once 2 has moved
    x[200:, 1], x[200:, 2] = 12, 2  # on centroid 3 ...
    x[200:, 3:6] = np.arange(3)  # ... plus a clear offset (distance 5)
    source = ArraySource(x)
    cands = Candidates.for_fit(len(x), k, d)
    assert cands is not None
    with km.blas_single_thread():
        assign_pass(source, before, cands=cands)  # refresh: every frame's list
        assert (cands.ids[100:200, 0] == 3).all()
        cands.moved(before, after)
        full = assign_pass(source, after)
        for _ in range(3):  # checks (the ties go to the GEMM and refresh), then checks
            got = assign_pass(source, after, cands=cands)
            cands.moved(after, after)
            np.testing.assert_array_equal(got[1], full[1])
            np.testing.assert_array_equal(got[0], full[0])
    np.testing.assert_array_equal(full[1], [100, 0, 100, 100])


def test_fits_with_candidate_lists_are_bit_identical_to_exhaustive_passes():
    # the lists are on by default from 128-d up because they change no label: the fit
    # equals the exhaustive Lloyd's bit for bit, at any thread count
    x = gaussian_mixture(6000, d=160, n_comp=30, seed=1)
    assert Candidates.for_fit(len(x), 24, x.shape[1]) is not None
    a = fit_kmeans(x, 24, seed=2, max_iter=15)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        b = fit_kmeans(x, 24, seed=2, max_iter=15)
    finally:
        numba.set_num_threads(threads)
    assert a.centroids.tobytes() == b.centroids.tobytes() and a.inertia == b.inertia
    full = fit_kmeans(x, 24, seed=2, max_iter=15, algorithm="lloyd_exhaustive")
    assert full.centroids.tobytes() == a.centroids.tobytes()
    assert (full.inertia, full.n_iter) == (a.inertia, a.n_iter)
    alias = fit_kmeans(x, 24, seed=2, max_iter=15, algorithm="lloyd_candidates")
    assert alias.centroids.tobytes() == a.centroids.tobytes()
    for k in (2, 9):  # lists shorter than CANDIDATES; every other centroid checked
        ours = fit_kmeans(x, k, seed=3, max_iter=15)
        full = fit_kmeans(x, k, seed=3, max_iter=15, algorithm="lloyd_exhaustive")
        assert ours.centroids.tobytes() == full.centroids.tobytes()


def test_empty_cluster_is_reseeded_on_farthest_point():
    # two tight blobs; one centroid starts far away from everything -> empty at the
    # first E-step, so it must move onto the frame farthest from its centroid.
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (300, 2)), rng.normal(10, 0.1, (300, 2))])
    x = np.concatenate([x, [[30.0, 30.0]]]).astype(np.float32)  # the farthest frame
    init = np.array([[0, 0], [10, 10], [1e4, 1e4]], dtype=np.float32)
    with km.blas_single_thread():
        c, inertia, _ = km.lloyd(x, init, max_iter=20, tol=0.0)
    labels, _ = assign_labels(x, c)
    assert np.bincount(labels, minlength=3).min() >= 1
    np.testing.assert_allclose(sorted(c[:, 0]), [0, 10, 30], atol=0.05)
    assert inertia == pytest.approx(mean_sq_dist(x, c), rel=1e-5)
    with km.blas_single_thread():
        c2, _, _ = km.lloyd(x, init, max_iter=20, tol=0.0)
    assert c.tobytes() == c2.tobytes()


def test_duplicated_points_fill_all_clusters():
    # exactly k distinct points, heavily duplicated: k-means must put one centroid on each
    pts = np.arange(12, dtype=np.float32).reshape(6, 2) * 5
    x = np.repeat(pts, [50, 3, 200, 1, 7, 20], axis=0)
    res = fit_kmeans(x, 6, seed=1)
    assert res.inertia == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_array_equal(np.unique(res.centroids, axis=0), pts)


def test_minibatch_variant_is_close_to_lloyd(frames):
    x = frames[:10_000]
    lloyd = fit_kmeans(x, 20, seed=0)
    mb = fit_kmeans(x, 20, seed=0, algorithm="minibatch", batch_size=2000, max_iter=20)
    assert mb.inertia == pytest.approx(mean_sq_dist(x, mb.centroids), rel=1e-5)
    assert mb.inertia < 1.05 * lloyd.inertia
    streamed = fit_kmeans(
        ArraySource(x, rows=4096), 20, seed=0, algorithm="minibatch", batch_size=2000,
        max_iter=20,
    )
    assert streamed.inertia < 1.05 * lloyd.inertia
    again = fit_kmeans(x, 20, seed=0, algorithm="minibatch", batch_size=2000, max_iter=20)
    assert again.centroids.tobytes() == mb.centroids.tobytes()


def test_progress_reports_each_iteration():
    x = gaussian_mixture(3000, d=5, n_comp=6)
    seen: list[tuple[int, float]] = []
    res = fit_kmeans(x, 6, seed=0, progress=lambda i, v: seen.append((i, v)))
    assert isinstance(res, KMeansResult)
    assert [i for i, _ in seen] == list(range(len(seen)))
    assert seen[-1][1] == pytest.approx(res.inertia)


def test_k_one_and_input_validation():
    x = gaussian_mixture(500, d=3, n_comp=2)
    res = fit_kmeans(x.astype(np.float64), 1)
    np.testing.assert_allclose(res.centroids[0], x.mean(axis=0), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        fit_kmeans(x, 501)
    with pytest.raises(ValueError):
        fit_kmeans(x, 0)
    with pytest.raises(ValueError):
        fit_kmeans(x, 3, algorithm="elkan")
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError):
        fit_kmeans(bad, 3)


def test_streamed_file_fit_equals_in_memory_fit(frames, tmp_path):
    # same frames, same chunking: reading them from disk chunk by chunk changes nothing
    x = frames[:9000]
    path = tmp_path / "frames.npy"
    np.save(path, x)
    mem = fit_kmeans(ArraySource(x, rows=4096), 12, seed=5)
    disk = fit_kmeans(NpyFileSource(path, rows=4096), 12, seed=5)
    assert mem.centroids.tobytes() == disk.centroids.tobytes()
    assert mem.inertia == disk.inertia == pytest.approx(mean_sq_dist(x, mem.centroids), rel=1e-5)


def test_warm_started_fit_on_large_input_beats_its_seeding(frames, monkeypatch):
    # force the warm-start path (sample < n) on test-sized data
    monkeypatch.setattr(km, "WARM_PER_CLUSTER", 40)
    x = frames[:N_FRAMES]
    res = fit_kmeans(x, 30, seed=2)
    with km.blas_single_thread():
        seeded = km.kmeans_plusplus(x, 30, np.random.default_rng(2))
    assert res.inertia == pytest.approx(mean_sq_dist(x, res.centroids), rel=1e-5)
    assert res.inertia < mean_sq_dist(x, seeded)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 300),
    rows=st.integers(1, 64),
    data=st.data(),
)
def test_gather_returns_the_requested_rows(n, rows, data):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    idx = np.array(sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1))), dtype=np.int64)
    np.testing.assert_array_equal(gather(ArraySource(x, rows=rows), idx), x[idx])


def test_plusplus_picks_one_frame_per_separated_blob():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((25, 16)).astype(np.float32) * 100
    x = np.repeat(centers, 40, axis=0) + rng.standard_normal((1000, 16)).astype(np.float32)
    with km.blas_single_thread():
        c = km.kmeans_plusplus(np.ascontiguousarray(x), 25, np.random.default_rng(1))
    assert c.shape == (25, 16)
    assert np.isin(c.view([("", c.dtype)] * 16), x.view([("", x.dtype)] * 16)).all()
    nearest = ((c[:, None, :] - centers[None]) ** 2).sum(-1).argmin(axis=1)
    assert sorted(nearest) == list(range(25))


def test_chunks_are_validated_for_non_finite_values():
    x = gaussian_mixture(5000, d=4, n_comp=3)
    x[4500, 2] = np.inf  # in the second chunk only
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_kmeans(ArraySource(x, rows=4096), 3)


def test_sources_check_frames_until_one_whole_pass(tmp_path):
    # a pass stopped early (a gather that found its rows) leaves the rest unchecked, so
    # the next pass still checks and names the bad frames; after one whole pass the
    # same frames are served without the scan
    x = gaussian_mixture(1000, d=4, n_comp=3)
    bad = x.copy()
    bad[-1, 0] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    np.save(tmp_path / "good.npy", x)
    for source in (NpyFileSource(tmp_path / "bad.npy", rows=300), ArraySource(bad, rows=300)):
        chunks = source.chunks()
        next(chunks)
        chunks.close()
        assert not source.validated
        with pytest.raises(ValueError, match="NaN or inf"):
            list(source.chunks())
    for source in (NpyFileSource(tmp_path / "good.npy", rows=300), ArraySource(x, rows=300)):
        first = np.concatenate([c.copy() for c in source.chunks()])
        assert source.validated
        again = np.concatenate([c.copy() for c in source.chunks()])  # (one reused buffer)
        np.testing.assert_array_equal(again, first)
        np.testing.assert_array_equal(first, x)


def test_seeded_top_selection_matches_the_full_scan():
    # a refresh seeds its top-M scan with the frame's previous candidates: the kept ids
    # and values must be the full scan's, and the (M+1)-th value a lower bound on every
    # other centroid; columns without a list or with too many values under the seed's
    # threshold fall back to the full scan
    rng = np.random.default_rng(3)
    k, m, big_m = 300, 64, 8
    g = rng.standard_normal((k, m)).astype(np.float32)
    g[5, :] = g[6, :]  # exact ties inside the lists
    cnorm = np.zeros(k, np.float32)
    full_v, full_j = np.empty((m, 17), np.float32), np.empty((m, 17), np.int32)
    kmeans_candidates._top(g, cnorm, full_v, full_j, m)
    prev = full_j[:, :big_m].astype(np.int64).copy()  # rows 7::8 keep their exact list
    prev[::4, 7] = full_j[::4, 9]  # one moved out: the 10th seeds, the 9th is collected
    prev[1::4, 0] = full_j[1::4, 16]  # a far seed: a loose threshold
    prev[2::4] = -1  # no list
    prev[3::8] = rng.permutation(k)[:big_m]  # random seeds: past the cap, rescanned
    top_v, top_j = np.empty((m, big_m + 1), np.float32), np.empty((m, big_m + 1), np.int32)
    buf_v, buf_j = (np.empty((m, kmeans_candidates.SEEDED_CAP), t) for t in (np.float32, np.int32))
    count, thr = np.empty(m, np.int64), np.empty(m, np.float32)
    kmeans_candidates._top_seeded(g, cnorm, top_v, top_j, m, prev, buf_v, buf_j, count, thr)
    np.testing.assert_array_equal(top_j[:, :big_m], full_j[:, :big_m])
    np.testing.assert_array_equal(top_v[:, :big_m], full_v[:, :big_m])
    exact = np.ones(m, bool)
    exact[7::8] = False  # only the M listed are <= T: T bounds the rest
    np.testing.assert_array_equal(top_v[exact, big_m], full_v[exact, big_m])
    np.testing.assert_array_equal(top_v[~exact, big_m], full_v[~exact, big_m - 1])
    assert (full_v[~exact, big_m] > full_v[~exact, big_m - 1]).all()  # (no tie there)
    assert (count[3::8] > kmeans_candidates.SEEDED_CAP).all() and exact[3::8].all()
