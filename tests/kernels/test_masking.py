"""Tests for ssl_graph.kernels.masking (fairseq ``compute_mask_indices`` semantics).

Statistical tests use fixed seeds, so they are deterministic; tolerances are still
set at ~5 standard errors (estimated from the same sample) so that a correct
implementation would pass for essentially any seed, while a wrong span process
(e.g. an off-by-one in the start range or in random rounding) is far outside them.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ssl_graph.kernels import _masking_impl as impl
from ssl_graph.kernels import masking
from ssl_graph.kernels.masking import compute_channel_mask, compute_mask_indices

MASK_TYPES = ["static", "uniform", "normal", "poisson"]
OTHER = {"static": 0.0, "uniform": 2.0, "normal": 2.0, "poisson": 0.0}


def runs(row: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True in a 1-D bool array."""
    d = np.diff(np.concatenate([[0], row.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), (ends - starts).tolist()))


# ----------------------------------------------------------------- reference
# A literal, slow numpy transcription of fairseq's per-row algorithm (including its
# geometry quirks), used to check that the fast kernel samples the same distribution.


def reference_row(rng, sz, mask_prob, M, mask_type, mask_other, min_masks, no_overlap, min_space):
    num = max(min_masks, int(mask_prob * sz / float(M) + rng.random()))
    if mask_type == "static":
        lengths = np.full(num, M)
    elif mask_type == "uniform":
        lengths = rng.integers(int(mask_other), M * 2 + 1, size=num)
    elif mask_type == "normal":
        lengths = np.maximum(1, np.rint(rng.normal(M, mask_other, size=num))).astype(int)
    else:
        lengths = rng.poisson(M, size=num)
    if num and lengths.sum() == 0:
        lengths = np.array([min(M, sz - 1)])
    if num == 0:
        return np.zeros(0, int)
    idc = []
    if no_overlap:
        parts = [(0, sz)]
        keep = lengths.min()
        for ln in sorted(lengths, reverse=True):
            w = np.array([e - s if e - s >= ln + max(min_space, 1) else 0 for s, e in parts])
            if w.sum() == 0:
                break
            s, e = parts.pop(rng.choice(len(parts), p=w / w.sum()))
            start = rng.integers(s, e - ln)
            idc.extend(range(start, start + ln))
            if start - s - min_space >= keep:
                parts.append((s, start - min_space + 1))
            if e - start - ln - min_space > keep:
                parts.append((start + ln + min_space, e))
    else:
        min_len = lengths.min()
        if sz - min_len <= num:
            min_len = sz - num - 1
        starts = rng.choice(sz - min_len, num, replace=False)
        for s, ln in zip(starts, lengths):
            idc.extend(range(s, s + ln))
    idc = np.unique(np.asarray(idc, dtype=int))
    return idc[idc < sz]


def exact_static_coverage(sz: int, mask_prob: float, M: int) -> float:
    """E[masked fraction] for static spans, overlap path, no equalisation."""
    x = mask_prob * sz / M
    out = 0.0
    for k, w_k in (
        (math.floor(x), 1 - (x - math.floor(x))),
        (math.floor(x) + 1, x - math.floor(x)),
    ):
        if w_k == 0:
            continue
        n = sz - M if sz - M > k else k + 1
        f = np.arange(sz)
        w = np.minimum(f, n - 1) - np.maximum(0, f - M + 1) + 1  # starts covering frame f
        w = np.maximum(w, 0)
        j = np.arange(k)
        # P(no chosen start among w given k distinct of n) = prod (n - w - j) / (n - j)
        p_none = np.prod(np.clip((n - w[:, None] - j) / (n - j), 0, None), axis=1)
        out += w_k * float(np.mean(1 - p_none))
    return out


# ------------------------------------------------------------------ coverage


@pytest.mark.parametrize("mask_prob", [0.65, 0.8])
def test_coverage_matches_theory(mask_prob):
    B, T, M = 4000, 1000, 10
    m = compute_mask_indices((B, T), mask_prob, M, require_same_masks=False, seed=1)
    per_row = m.mean(axis=1)
    cov, se = per_row.mean(), per_row.std() / math.sqrt(B)
    assert abs(cov - exact_static_coverage(T, mask_prob, M)) < 5 * se
    # The textbook 1-(1-p)^M ignores sampling without replacement from sz-M starts and
    # the row edges; both shift it by < 0.5 percentage points at T=1000.
    assert abs(cov - (1 - (1 - mask_prob / M) ** M)) < 0.01
    assert not m[:, -1].any()  # fairseq draws starts below sz - M: last frame never masked
    assert m[:, 0].any()


def test_random_rounding_of_span_count():
    """num = int(mask_prob * sz / M + U): mean exactly mask_prob * sz / M, per row's sz."""
    B, T = 4000, 1000
    lengths = np.where(np.arange(B) % 2 == 0, 1000, 500)
    m = compute_mask_indices(
        (B, T), 0.255, 10, lengths=lengths, no_overlap=True, min_space=1,
        require_same_masks=False, seed=4,
    )  # fmt: skip
    n_spans = np.array([len(runs(row)) for row in m])
    for sz, x in ((1000, 25.5), (500, 12.75)):
        got = n_spans[lengths == sz]
        assert set(got.tolist()) == {int(x), int(x) + 1}
        se = math.sqrt((x % 1) * (1 - x % 1) / len(got))
        assert abs(got.mean() - x) < 5 * se


def test_require_same_masks_cuts_to_batch_minimum():
    kw = {"shape": (16, 800), "mask_prob": 0.65, "mask_length": 10, "min_masks": 2, "seed": 5}
    free = compute_mask_indices(**kw, require_same_masks=False)
    same = compute_mask_indices(**kw)
    counts = same.sum(axis=1)
    assert (counts == free.sum(axis=1).min()).all()
    assert not (same & ~free).any()  # a subset of the unequalised spans
    more = compute_mask_indices(**kw, add_masks=True)
    assert (more.sum(axis=1) == free.sum(axis=1).max()).all()
    assert not (free & ~more).any()


@pytest.mark.parametrize("mask_type", MASK_TYPES)
@pytest.mark.parametrize("no_overlap", [False, True])
def test_distribution_matches_reference(mask_type, no_overlap):
    """Mean/std of masked frames per row agree with the literal fairseq algorithm."""
    B, T, M, prob = 1000, 400, 10, 0.65
    kw = {
        "mask_type": mask_type,
        "mask_other": OTHER[mask_type],
        "min_masks": 2,
        "no_overlap": no_overlap,
        "min_space": 1 if no_overlap else 0,
    }
    ours = compute_mask_indices((B, T), prob, M, require_same_masks=False, seed=11, **kw)
    rng = np.random.default_rng(0)
    ref = np.zeros((B, T), bool)
    for row in ref:
        row[
            reference_row(
                rng, T, prob, M, mask_type, kw["mask_other"], 2, no_overlap, kw["min_space"]
            )
        ] = True
    a, b = ours.sum(axis=1), ref.sum(axis=1)
    se = math.sqrt(a.var() / B + b.var() / B)
    assert abs(a.mean() - b.mean()) <= 5 * se + 1e-9
    assert abs(a.std() - b.std()) <= 0.15 * b.std() + 1
    # where frames get masked: the edges are where off-by-ones would show
    for sl in (slice(0, 10), slice(T - 20, T), slice(100, 300)):
        x, y = ours[:, sl].mean(), ref[:, sl].mean()
        assert abs(x - y) < 0.07, (sl, x, y)  # > 4 SE of the difference


# -------------------------------------------------------------- span shapes


def test_static_spans_are_runs_of_mask_length():
    m = compute_mask_indices(
        (64, 600), 0.65, 10, no_overlap=True, min_space=1, require_same_masks=False, seed=3
    )
    for row in m:
        r = runs(row)
        assert r and all(ln == 10 for _, ln in r)
    # overlapping spans merge, but never produce a run shorter than one span
    m = compute_mask_indices((64, 600), 0.65, 10, require_same_masks=False, seed=3)
    assert all(ln >= 10 for row in m for _, ln in runs(row))


@pytest.mark.parametrize("min_space", [1, 3, 7])
def test_min_space_respected(min_space):
    m = compute_mask_indices(
        (64, 500),
        0.5,
        6,
        mask_type="uniform",
        mask_other=1,
        no_overlap=True,
        min_space=min_space,
        require_same_masks=False,
        seed=min_space,
    )
    for row in m:
        r = runs(row)
        gaps = [s2 - (s1 + l1) for (s1, l1), (s2, _) in itertools.pairwise(r)]
        assert all(g >= min_space for g in gaps)
        assert not row[-1]  # fairseq's no_overlap geometry never reaches the last frame


@pytest.mark.parametrize(
    "mask_type, other, mean, var",
    [
        ("static", 0, 10, 0),
        ("uniform", 2, 11, (19**2 - 1) / 12),
        ("normal", 2, 10, 4),
        ("poisson", 0, 10, 10),
    ],
)
def test_length_distributions(mask_type, other, mean, var):
    """With lots of room and min_space>0, every span is one run: check its law."""
    m = compute_mask_indices(
        (40, 20000),
        0.1,
        10,
        mask_type=mask_type,
        mask_other=other,
        no_overlap=True,
        min_space=1,
        require_same_masks=False,
        seed=2,
    )
    lens = np.array([ln for row in m for _, ln in runs(row)])
    assert len(lens) > 5000
    se = math.sqrt(max(var, 1) / len(lens))
    assert abs(lens.mean() - mean) < 5 * se
    if var:
        assert abs(lens.var() / var - 1) < 0.15
    if mask_type == "uniform":
        assert lens.min() == 2 and lens.max() == 20


@pytest.mark.parametrize("mask_type", MASK_TYPES)
@pytest.mark.parametrize("no_overlap", [False, True])
def test_all_paths_run_on_numpy2(mask_type, no_overlap):
    m = compute_mask_indices(
        (8, 300),
        0.65,
        10,
        mask_type=mask_type,
        mask_other=OTHER[mask_type],
        no_overlap=no_overlap,
        seed=0,
    )
    assert m.dtype == np.bool_ and m.shape == (8, 300)
    assert len(set(m.sum(axis=1).tolist())) == 1 and m.any()


# ---------------------------------------------------------- counts & options


def test_min_masks_honoured():
    m = compute_mask_indices(
        (50, 400),
        0.0,
        5,
        min_masks=3,
        no_overlap=True,
        min_space=1,
        require_same_masks=False,
        seed=0,
    )
    assert all(len(runs(row)) == 3 for row in m)
    assert (m.sum(axis=1) == 15).all()
    m = compute_mask_indices((50, 400), 0.0, 5, min_masks=3, require_same_masks=False)
    assert ((m.sum(axis=1) >= 5) & (m.sum(axis=1) <= 15)).all()
    assert compute_mask_indices((4, 400), 0.0, 5).sum() == 0


@pytest.mark.parametrize("dropout", [0.1, 0.25, 0.5, 0.9])
def test_mask_dropout_count(dropout):
    kw = {"shape": (32, 500), "mask_prob": 0.65, "mask_length": 10, "seed": 9}
    for same in (False, True):
        base = compute_mask_indices(**kw, require_same_masks=same)
        dropped = compute_mask_indices(**kw, require_same_masks=same, mask_dropout=dropout)
        n = base.sum(axis=1)
        assert (dropped.sum(axis=1) == n - np.rint(n * dropout)).all()
        assert not (dropped & ~base).any()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    B=st.integers(1, 8),
    T=st.integers(20, 300),
    data=st.data(),
    mask_prob=st.floats(0.0, 0.8),
    M=st.integers(1, 12),
    mask_type=st.sampled_from(MASK_TYPES),
    no_overlap=st.booleans(),
    min_space=st.integers(0, 3),
    min_masks=st.integers(0, 2),
    add=st.booleans(),
    seed=st.integers(0, 2**64 - 1),
)
def test_properties_with_padding(
    B, T, data, mask_prob, M, mask_type, no_overlap, min_space, min_masks, add, seed
):
    lengths = np.array(data.draw(st.lists(st.integers(T // 2, T), min_size=B, max_size=B)))
    pad = np.arange(T)[None, :] >= lengths[:, None]
    kw = {
        "mask_type": mask_type,
        "mask_other": OTHER[mask_type],
        "min_masks": min_masks,
        "no_overlap": no_overlap,
        "min_space": min_space,
        "seed": seed,
    }
    try:
        free = compute_mask_indices(
            (B, T), mask_prob, M, lengths=lengths, require_same_masks=False, **kw
        )
        same = compute_mask_indices((B, T), mask_prob, M, padding_mask=pad, add_masks=add, **kw)
    except ValueError as e:
        assert "entire sequence" in str(e) or "add_masks" in str(e)
        assume(False)
    assert not (free & pad).any() and not (same & pad).any()
    assert (free.sum(axis=1) < lengths).all()
    counts = free.sum(axis=1)
    target = counts.max() if add else counts.min()
    assert (same.sum(axis=1) == target).all()
    # equalising only removes (or only adds) frames of the unequalised mask
    assert not ((same & ~free) if not add else (free & ~same)).any()


# ------------------------------------------------------------- determinism


def test_deterministic_and_seed_sensitive():
    kw = {
        "mask_prob": 0.65,
        "mask_length": 10,
        "lengths": np.array([800, 700, 650, 800]),
        "mask_type": "uniform",
        "no_overlap": True,
    }
    a = compute_mask_indices((4, 800), seed=123, **kw)
    b = compute_mask_indices((4, 800), seed=123, **kw)
    c = compute_mask_indices((4, 800), seed=124, **kw)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[3])  # rows draw from different streams
    assert np.array_equal(
        compute_mask_indices((4, 800), 0.65, 10, seed=-1),
        compute_mask_indices((4, 800), 0.65, 10, seed=2**64 - 1),
    )


def test_rows_independent_of_batch_and_threads(monkeypatch):
    kw = {
        "mask_prob": 0.65,
        "mask_length": 10,
        "require_same_masks": False,
        "mask_dropout": 0.2,
        "seed": 7,
    }
    small = compute_mask_indices((3, 500), **kw)
    big = compute_mask_indices((601, 500), **kw)
    assert np.array_equal(small, big[:3])
    monkeypatch.setattr(masking, "_PARALLEL_MIN_CELLS", 0)  # force the prange driver
    for same in (False, True):
        par = compute_mask_indices((601, 500), **{**kw, "require_same_masks": same})
        monkeypatch.setattr(masking, "_PARALLEL_MIN_CELLS", 1 << 62)
        ser = compute_mask_indices((601, 500), **{**kw, "require_same_masks": same})
        monkeypatch.setattr(masking, "_PARALLEL_MIN_CELLS", 0)
        assert np.array_equal(par, ser)


def test_channel_mask():
    m = compute_channel_mask((16, 768), 0.5, 64, seed=1)
    assert m.shape == (16, 768) and m.dtype == np.bool_
    assert len(set(m.sum(axis=1).tolist())) == 1 and m.any()
    free = compute_channel_mask((16, 768), 0.5, 64, seed=1, require_same_masks=False)
    assert not (m & ~free).any()
    assert np.array_equal(m, compute_channel_mask((16, 768), 0.5, 64, seed=1))
    assert compute_channel_mask((4, 768), 0.0, 64).sum() == 0


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mask_type": "gamma"}, "mask_type"),
        ({"mask_length": 0}, "mask_length"),
        ({"mask_prob": 1.5}, "mask_prob"),
        ({"mask_prob": float("nan")}, "mask_prob"),
        ({"mask_dropout": -0.1}, "mask_dropout"),
        ({"min_masks": -1}, "min_masks"),
        ({"min_space": -1}, "min_space"),
        ({"mask_type": "uniform", "mask_other": 25}, "mask_other"),
        ({"mask_type": "normal", "mask_other": -1}, "mask_other"),
        ({"lengths": np.array([10, 10]), "padding_mask": np.zeros((2, 10), bool)}, "not both"),
        ({"lengths": np.array([10, 11])}, r"lengths must be in \[0, 10\]"),
        ({"lengths": np.array([10.0, 5.0])}, "integer"),
        ({"padding_mask": np.zeros((2, 9), bool)}, "shape"),
        ({"padding_mask": np.array([[0] * 10, [1] + [0] * 9], bool)}, "row 1 is not right"),
        ({"lengths": np.array([10, 0])}, r"row 1 has no unpadded frames \(sz=0\)"),
    ],
)
def test_argument_errors(kwargs, match):
    args = {"shape": (2, 10), "mask_prob": 0.5, "mask_length": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        compute_mask_indices(**args)


def test_fully_masked_row_raises():
    with pytest.raises(ValueError, match=r"entire sequence.*row 1 .*sz=10\b"):
        compute_mask_indices((2, 200), 1.0, 10, lengths=np.array([200, 10]), min_masks=5)


def test_add_masks_cannot_mask_padding():
    with pytest.raises(ValueError, match=r"add_masks.*row 1 has only sz=30"):
        compute_mask_indices(
            (2, 400), 0.65, 10, lengths=np.array([400, 30]), add_masks=True, seed=0
        )


def test_accepts_lists_and_torch_tensors():
    torch = pytest.importorskip("torch")
    lengths = [100, 80]
    pad = torch.arange(100)[None, :] >= torch.tensor(lengths)[:, None]
    a = compute_mask_indices((2, 100), 0.65, 10, padding_mask=pad, seed=3)
    b = compute_mask_indices((2, 100), 0.65, 10, lengths=lengths, seed=3)
    c = compute_mask_indices((2, 100), 0.65, 10, lengths=torch.tensor(lengths), seed=3)
    assert np.array_equal(a, b) and np.array_equal(a, c) and not a[1, 80:].any()


def test_empty_batch():
    assert compute_mask_indices((0, 100), 0.65, 10).shape == (0, 100)


def test_scratch_is_large_enough_for_extremes():
    # many tiny spans (num > T/M) and min_masks beyond the expected count
    m = compute_mask_indices(
        (4, 50),
        1.0,
        1,
        min_masks=40,
        mask_type="poisson",
        no_overlap=True,
        require_same_masks=False,
    )
    assert m.shape == (4, 50)
    assert impl.scratch_sizes(50, 1.0, 1, 40)[0] >= 3 * 51 + 2
