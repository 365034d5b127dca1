"""Cluster quality of k-means targets against phone labels (HuBERT paper §IV-E).

From frame counts we form the joint p(y, z) of phone y and cluster z, and report

* phone purity   = E_{p(z)} [max_y p(y | z)]  (how phone-pure a cluster is),
* cluster purity = E_{p(y)} [max_z p(z | y)]  (how concentrated a phone is),
* PNMI           = I(y; z) / H(y)             (phone uncertainty removed by z).

Empty rows/columns (phones or clusters with no frames) contribute nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _count(phones, clusters, out):
    n_p, n_c = out.shape
    for i in range(phones.shape[0]):
        y, z = phones[i], clusters[i]
        if y < 0 or y >= n_p or z < 0 or z >= n_c:
            return i
        out[y, z] += 1
    return -1


def joint_counts(
    phones: np.ndarray, clusters: np.ndarray, n_phones: int, n_clusters: int
) -> np.ndarray:
    """(n_phones, n_clusters) int64 co-occurrence counts of per-frame labels."""
    phones = np.ascontiguousarray(phones, dtype=np.int64).reshape(-1)
    clusters = np.ascontiguousarray(clusters, dtype=np.int64).reshape(-1)
    if phones.shape != clusters.shape:
        raise ValueError(f"length mismatch: {phones.shape[0]} phones, {clusters.shape[0]} clusters")
    out = np.zeros((n_phones, n_clusters), dtype=np.int64)
    bad = _count(phones, clusters, out)
    if bad >= 0:
        raise ValueError(
            f"frame {bad}: label ({phones[bad]}, {clusters[bad]}) outside "
            f"[0, {n_phones}) x [0, {n_clusters})"
        )
    return out


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def cluster_quality(joint: np.ndarray) -> dict:
    """Purities, PNMI and entropies (nats) from a (phones, clusters) count matrix."""
    counts = np.asarray(joint, dtype=np.float64)
    if counts.ndim != 2 or (counts < 0).any():
        raise ValueError("joint must be a 2-D array of non-negative counts")
    n = float(counts.sum())
    if n == 0:
        nan = float("nan")
        return {
            "phone_purity": nan,
            "cluster_purity": nan,
            "pnmi": nan,
            "h_phone": 0.0,
            "mutual_info": 0.0,
            "n_frames": 0,
        }
    pyz = counts / n
    py, pz = pyz.sum(axis=1), pyz.sum(axis=0)
    # E_{p(z)}[max_y p(y|z)] = Σ_z max_y p(y,z); likewise for clusters.
    phone_purity = float(pyz.max(axis=0).sum())
    cluster_purity = float(pyz.max(axis=1).sum())
    nz = pyz > 0
    outer = np.outer(py, pz)
    mi = float((pyz[nz] * np.log(pyz[nz] / outer[nz])).sum())
    h_y = _entropy(py)
    mi = max(mi, 0.0)  # round-off can give -1e-17 for independent labels
    return {
        "phone_purity": phone_purity,
        "cluster_purity": cluster_purity,
        "pnmi": mi / h_y if h_y > 0 else float("nan"),
        "h_phone": h_y,
        "mutual_info": mi,
        "n_frames": round(n),
    }
