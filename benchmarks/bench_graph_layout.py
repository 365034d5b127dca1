"""Pipeline picture: the layered layout vs the drawing it replaced, on the demo graphs and the
synthetic DAGs of tests/viz, interleaved in one run (so load on the machine hits both alike).

Prints, per graph: edge crossings and edges passing behind a box (new / old), and seconds to lay
out and render a PNG (median of the repeats, new / old).

    python benchmarks/bench_graph_layout.py [repeats]
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ssl_graph.graph.pipeline import load_pipeline  # noqa: E402
from ssl_graph.viz.graph_plot import plot_dag  # noqa: E402
from tests.viz.geometry import crossings, line_hits_rect  # noqa: E402
from tests.viz.legacy_layout import legacy_geometry  # noqa: E402
from tests.viz.test_graph_layout import SYNTHETIC, synthetic_dag  # noqa: E402


def _new(g):
    plot = plot_dag(g, {n: f"{g.nodes[n]['name']}\n{g.nodes[n]['kind']}" for n in g},
                    {n: "#8fd18f" for n in g}, "bench")
    plot.figure.savefig(io.BytesIO(), format="png", dpi=150)
    lines = {e: r.points(24) for e, r in plot.layout.routes.items()}
    boxes = {n: b.rect for n, b in plot.layout.boxes.items()}
    return lines, boxes


def _behind(lines, boxes) -> int:
    return sum(any(line_hits_rect(ln, r) for n, r in boxes.items() if n not in e)
               for e, ln in lines.items())


def main(repeats: int = 3) -> None:
    graphs = {s: load_pipeline(ROOT / "specs" / f"{s}.py").graph for s in ("demo", "demo_k50")}
    graphs.update({name: synthetic_dag(*args) for name, args in SYNTHETIC.items()})
    print(f"{'graph':<12} {'nodes':>5} {'edges':>5}  crossings new/old  behind a box new/old"
          f"  seconds new/old")
    for name, g in graphs.items():
        t_new, t_old = [], []
        for _ in range(repeats):  # interleaved
            t = time.perf_counter()
            new = _new(g)
            t_new.append(time.perf_counter() - t)
            t = time.perf_counter()
            old = legacy_geometry(g)
            t_old.append(time.perf_counter() - t)
        print(f"{name:<12} {len(g):>5} {g.number_of_edges():>5}  {crossings(new[0]):>9} / "
              f"{crossings(old[0]):<5} {_behind(*new):>11} / {_behind(*old):<8}"
              f" {statistics.median(t_new):>7.2f} / {statistics.median(t_old):.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
