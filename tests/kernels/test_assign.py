"""Tests for ssl_graph.kernels.assign against a brute-force argmin.

Integer-valued inputs make every float32 operation exact (products and sums of small
integers), so labels must equal the brute-force argmin *exactly*, ties included
(lowest index wins, like ``np.argmin``).  General float inputs are checked up to
float32 round-off.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ssl_graph.kernels.assign import assign_labels


def brute_force(x: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = ((x[:, None, :].astype(np.float64) - c[None, :, :]) ** 2).sum(-1)
    return d.argmin(axis=1), d.min(axis=1)


@st.composite
def integer_problem(draw):
    n = draw(st.integers(1, 60))
    k = draw(st.integers(1, 12))
    d = draw(st.integers(1, 6))
    elems = st.integers(-6, 6).map(float)
    x = draw(arrays(np.float32, (n, d), elements=elems))
    c = draw(arrays(np.float32, (k, d), elements=elems))
    if draw(st.booleans()) and k > 1:  # force exact ties: duplicate a centroid
        c[draw(st.integers(1, k - 1))] = c[0]
    chunk = draw(st.sampled_from([1, 7, 65536]))
    return x, c, chunk


@settings(max_examples=150, deadline=None)
@given(integer_problem())
def test_matches_brute_force_exactly_on_integers(problem):
    x, c, chunk = problem
    labels, dists = assign_labels(x, c, chunk=chunk)
    ref_labels, ref_dists = brute_force(x, c)
    assert labels.dtype == np.int32 and dists.dtype == np.float32
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_array_equal(dists, ref_dists.astype(np.float32))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 300),
    st.integers(1, 40),
    st.integers(1, 50),
    st.integers(0, 2**32 - 1),
)
def test_float_data_is_nearest_up_to_roundoff(n, k, d, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, d)) * 5 + 3).astype(np.float32)
    c = (rng.standard_normal((k, d)) * 5 + 3).astype(np.float32)
    labels, dists = assign_labels(x, c)
    ref_labels, ref_dists = brute_force(x, c)
    d_all = ((x[:, None, :].astype(np.float64) - c[None]) ** 2).sum(-1)
    chosen = d_all[np.arange(n), labels]
    scale = (x.astype(np.float64) ** 2).sum(1) + (c.astype(np.float64) ** 2).sum(1).max()
    tol = 1e-5 * scale
    assert np.all(chosen <= ref_dists + tol)
    assert np.all(np.abs(dists - ref_dists) <= tol)
    assert np.mean(labels == ref_labels) > 0.95


def test_large_block_path_and_chunking_agree():
    # > one GEMM block per thread, several outer chunks, uneven tail
    rng = np.random.default_rng(1)
    x = rng.integers(-4, 5, (5003, 13)).astype(np.float32)
    c = rng.integers(-4, 5, (37, 13)).astype(np.float32)
    ref_labels, ref_dists = brute_force(x, c)
    for chunk in (65536, 1000, 4097):
        labels, dists = assign_labels(x, c, chunk=chunk)
        np.testing.assert_array_equal(labels, ref_labels)
        np.testing.assert_array_equal(dists, ref_dists.astype(np.float32))


def test_accepts_other_dtypes_and_layouts():
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 4, (40, 8)).astype(np.float64)
    c = rng.integers(-3, 4, (5, 8)).astype(np.float16)
    ref_labels, _ = brute_force(x, c.astype(np.float64))
    np.testing.assert_array_equal(assign_labels(x, c)[0], ref_labels)
    xt = np.asfortranarray(x)
    np.testing.assert_array_equal(assign_labels(xt[::2], c)[0], ref_labels[::2])


def test_empty_input_and_shape_errors():
    labels, dists = assign_labels(np.zeros((0, 3), np.float32), np.ones((2, 3), np.float32))
    assert labels.shape == (0,) and dists.shape == (0,)
    with pytest.raises(ValueError):
        assign_labels(np.zeros((4, 3), np.float32), np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError):
        assign_labels(np.zeros((4, 3), np.float32), np.zeros((0, 3), np.float32))


@pytest.mark.parametrize("k", [3, 100, 600])
def test_exact_ties_go_to_the_lowest_index(k):
    # Small integers make every product exact, so equal distances are equal floats and
    # only the tie rule decides: the lowest centroid index, like np.argmin.  Several GEMM
    # blocks plus a tail (gemm_rows(600) = 436), and duplicated centroids at the first,
    # middle and last index so the tie partner sits in every position of a block.
    rng = np.random.default_rng(k)
    x = rng.integers(-2, 3, (3001, 5)).astype(np.float32)
    c = rng.integers(-2, 3, (k, 5)).astype(np.float32)
    c[k - 1] = c[0]
    c[k // 2] = c[(k - 1) // 3]
    d = ((x[:, None, :].astype(np.float64) - c[None]) ** 2).sum(-1)
    tied = (d == d.min(axis=1, keepdims=True)).sum(axis=1) > 1
    assert tied.mean() > 0.3  # the test really exercises ties
    labels, dists = assign_labels(x, c, chunk=2000)
    np.testing.assert_array_equal(labels, d.argmin(axis=1))
    np.testing.assert_array_equal(dists, d.min(axis=1).astype(np.float32))
    # a centroid moved to the front still wins every tie it takes part in
    swapped = np.concatenate([c[k - 1 :], c[: k - 1]])
    d2 = np.concatenate([d[:, k - 1 :], d[:, : k - 1]], axis=1)
    np.testing.assert_array_equal(assign_labels(x, swapped)[0], d2.argmin(axis=1))
