"""Training curves of every training node: loss per node kind (pre-training losses and CTC
losses live on different scales), then accuracy, perplexity and learning rate."""

from __future__ import annotations

METRICS = ("accuracy", "prob_perplexity", "lr", "dev_cer", "dev_per")


def draw_curves(logs: dict[str, list[dict]], out: str, kinds: dict[str, str] | None = None) -> None:
    """``logs``: node name -> rows of {step, loss, ...} as a training node's log holds them
    (``store/train_log.py``); ``kinds``: node name -> node kind, to give each kind its own loss panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = kinds or {}
    groups = sorted({kinds.get(n, "") for n in logs})
    panels = [("loss", g) for g in groups]
    panels += [(m, None) for m in METRICS if any(m in r for rows in logs.values() for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (metric, group) in zip(axes[0], panels):
        for name, rows in logs.items():
            if group is not None and kinds.get(name, "") != group:
                continue
            pts = [(r["step"], r[metric]) for r in rows if metric in r]
            if pts:
                ax.plot(*zip(*pts), label=name, linewidth=1.0)
        ax.set_title(f"{metric} ({group})" if group else metric)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
