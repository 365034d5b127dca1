"""Cluster-vs-phone heat map: p(phone | cluster), clusters ordered by their dominant phone.

Ordering clusters by argmax phone turns a good clustering into a visible diagonal band, which
is what a person checks first (HuBERT paper Fig. 3 style).
"""

from __future__ import annotations

import numpy as np


def draw_joint(joint: np.ndarray, phones: list[str], title: str, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    joint = np.asarray(joint, dtype=np.float64)
    used = joint.sum(0) > 0
    j = joint[:, used]
    p_y_given_z = j / np.maximum(j.sum(0, keepdims=True), 1)
    order = np.lexsort((-p_y_given_z.max(0), p_y_given_z.argmax(0)))
    fig, ax = plt.subplots(figsize=(min(14, 4.5 + j.shape[1] * 0.03), 6))
    im = ax.imshow(p_y_given_z[:, order], aspect="auto", cmap="magma", interpolation="nearest")
    ax.set_yticks(range(len(phones)))
    ax.set_yticklabels(phones, fontsize=6)
    ax.set_xlabel(f"cluster (by dominant phone)\n{j.shape[1]} of {joint.shape[1]} used")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="p(phone | cluster)")
    fig.tight_layout()
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
