"""Training curves (loss, accuracy, perplexity) of every training node, one panel per metric."""

from __future__ import annotations

PANELS = ("loss", "accuracy", "prob_perplexity", "lr")


def draw_curves(logs: dict[str, list[dict]], out: str) -> None:
    """``logs``: node name -> rows of {step, loss, ...} as stored in ``log.json``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in PANELS if any(p in r for rows in logs.values() for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], panels):
        for name, rows in logs.items():
            pts = [(r["step"], r[metric]) for r in rows if metric in r]
            if pts:
                ax.plot(*zip(*pts), label=name, linewidth=1.2)
        ax.set_title(metric)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
