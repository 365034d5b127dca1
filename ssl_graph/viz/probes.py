"""What probes learned per layer: the softmax layer weights of PR/SID probes (SUPERB's
weighted-sum plot), and the frame phone-classification accuracy of each layer (drawn next to
PNMI-vs-layer curves)."""

from __future__ import annotations


def draw_per_layer(series: dict[str, tuple[list[int], list[float]]], out: str, ylabel: str,
                   title: str) -> None:
    """``series``: probe name -> (layer numbers, one value per layer); one line each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for name, (layers, values) in series.items():
        ax.plot(layers, values, marker="o", linewidth=1.2, label=name)
    every = sorted({x for layers, _ in series.values() for x in layers})
    ax.set_xticks(every)
    ax.set_xlabel("layer (0 = context input)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
