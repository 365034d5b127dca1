"""Tests for ssl_graph.kernels.quality (HuBERT §IV-E purity and PNMI)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ssl_graph.kernels.quality import cluster_quality, joint_counts


def test_hand_worked_two_by_two():
    # counts[y, z] = [[3, 1], [0, 4]], N = 8
    # p(y,z) = [[3/8, 1/8], [0, 4/8]];  p(y) = [1/2, 1/2];  p(z) = [3/8, 5/8]
    # phone purity   = sum_z max_y p(y,z) = 3/8 + 4/8 = 7/8
    # cluster purity = sum_y max_z p(y,z) = 3/8 + 4/8 = 7/8
    # H(y) = ln 2
    # I(y;z) = 3/8 ln((3/8)/(1/2*3/8)) + 1/8 ln((1/8)/(1/2*5/8)) + 4/8 ln((4/8)/(1/2*5/8))
    #        = 3/8 ln 2 + 1/8 ln(2/5) + 1/2 ln(8/5)
    #        = (3/8 + 1/8 + 3/2) ln 2 - (1/8 + 1/2) ln 5 = 2 ln 2 - 5/8 ln 5 ≈ 0.380396
    # PNMI = I / H(y) = 2 - 5/8 log2(5) ≈ 0.548795
    q = cluster_quality(np.array([[3, 1], [0, 4]]))
    assert q["n_frames"] == 8
    assert q["phone_purity"] == pytest.approx(7 / 8)
    assert q["cluster_purity"] == pytest.approx(7 / 8)
    assert q["h_phone"] == pytest.approx(math.log(2))
    assert q["mutual_info"] == pytest.approx(2 * math.log(2) - 5 / 8 * math.log(5))
    assert q["mutual_info"] == pytest.approx(0.380396, abs=1e-6)
    assert q["pnmi"] == pytest.approx(2 - 5 / 8 * math.log2(5))
    assert q["pnmi"] == pytest.approx(0.548795, abs=1e-6)


def test_asymmetric_purities():
    # counts = [[1, 1, 2]]: one phone spread over three clusters, N = 4.
    # phone purity = 1/4 + 1/4 + 2/4 = 1 (every cluster is pure);
    # cluster purity = max_z p(y=0, z) = 2/4; H(y) = 0, so PNMI is undefined (nan).
    q = cluster_quality(np.array([[1, 1, 2]]))
    assert q["phone_purity"] == pytest.approx(1.0)
    assert q["cluster_purity"] == pytest.approx(0.5)
    assert q["h_phone"] == 0.0 and q["mutual_info"] == 0.0
    assert math.isnan(q["pnmi"])


def test_perfect_mapping_gives_pnmi_one():
    # every cluster holds a single phone (3 clusters split phone 0, 2 split phone 1)
    joint = np.array([[5, 3, 1, 0, 0, 0], [0, 0, 0, 4, 4, 0], [0, 0, 0, 0, 0, 7]])
    q = cluster_quality(joint)
    assert q["pnmi"] == pytest.approx(1.0)
    assert q["phone_purity"] == pytest.approx(1.0)
    assert q["mutual_info"] == pytest.approx(q["h_phone"])


def test_independent_labels_give_pnmi_zero():
    joint = np.outer([1, 2, 5], [3, 1, 4, 2])  # p(y,z) = p(y)p(z)
    q = cluster_quality(joint)
    assert q["pnmi"] == pytest.approx(0.0, abs=1e-12)
    assert q["mutual_info"] >= 0.0


def test_zero_rows_and_columns_are_ignored():
    base = np.array([[3, 1], [0, 4]])
    padded = np.zeros((4, 5), dtype=np.int64)
    padded[1, 2], padded[1, 4], padded[3, 4], padded[1, 2] = 1, 1, 4, 3
    q0, q1 = cluster_quality(base), cluster_quality(padded)
    for key in q0:
        assert q1[key] == pytest.approx(q0[key])
    empty = cluster_quality(np.zeros((2, 3)))
    assert empty["n_frames"] == 0 and math.isnan(empty["pnmi"])


def test_joint_counts_matches_numpy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 5000)
    z = rng.integers(0, 11, 5000)
    expected = np.zeros((7, 11), dtype=np.int64)
    np.add.at(expected, (y, z), 1)
    got = joint_counts(y.astype(np.int16), z.astype(np.int32), 7, 11)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)


def test_joint_counts_rejects_bad_labels():
    with pytest.raises(ValueError, match="outside"):
        joint_counts(np.array([0, 3]), np.array([0, 0]), 3, 2)
    with pytest.raises(ValueError, match="outside"):
        joint_counts(np.array([0, 1]), np.array([-1, 0]), 3, 2)
    with pytest.raises(ValueError, match="length"):
        joint_counts(np.array([0, 1]), np.array([0]), 3, 2)
