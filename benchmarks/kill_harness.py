"""Kill harness at scale: SIGKILL ``ssl-graph run`` at N seeded random points across every node
kind, rerun each to completion, and check that every node's outputs equal an uninterrupted run's
bit for bit and that ``ssl-graph verify`` is clean, on what the kill left and after the rerun.

Usage: python benchmarks/kill_harness.py [--kills 50] [--seed 0] [--workdir DIR]

Kill points cycle through the nodes in a shuffled order, so each kind gets its share however
fast it is. Half are SIGKILLs from inside at a random store write of the node (before it, after
it, or with the file half written); half from outside after a random delay within the node's
computing time, one in six of those from an empty store with the delay spread over the whole run.
The harness is ``tests/reliability/_kill.py`` (``tests/reliability/test_kill.py`` runs a few).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reliability._kill import KillPoint, describe, reference, run_point  # noqa: E402


def kill_points(ref, n: int, seed: int) -> list[KillPoint]:
    rng = random.Random(seed)
    names, order, points = [name for name, _ in ref.order], [], []
    total = max(end for _, end in ref.spans.values())
    while len(order) < n:
        order += rng.sample(names, len(names))
    for name in order[:n]:
        start, end = ref.spans[name]
        if rng.random() < 0.5 and ref.writes[name]:
            w = rng.choice(ref.writes[name])
            phase = rng.choice(["before", "after", "torn"] if w.op == "file" else ["before", "after"])
            points.append(KillPoint(name, write=w.n, phase=phase))
        elif rng.random() < 1 / 6:
            points.append(KillPoint(None, delay=round(rng.uniform(0, total), 3)))
        else:
            points.append(KillPoint(name, delay=round(rng.uniform(0, end - start), 3)))
    return points


def table(ref, results) -> str:
    rows = defaultdict(lambda: defaultdict(int))
    for r in results:
        row = rows[r.kind if r.killed else "(finished first)"]
        row["kills"] += 1
        row["inside" if r.point.write else "outside"] += 1
        row["identical" if r.identical else "differing" if r.diffs else "failed"] += 1
        row["verify_kill_ok"] += not r.verify_killed
        row["verify_rerun_ok"] += r.rerun_rc == 0 and not r.verify_rerun
    kinds = sorted({k for _, k in ref.order})
    cols = ["kills", "inside", "outside", "identical", "differing", "failed", "verify_kill_ok",
            "verify_rerun_ok"]
    head = f"{'kind computing at the kill':28}" + "".join(f"{c:>16}" for c in cols)
    lines = [head, "-" * len(head)]
    for kind in [*kinds, "(finished first)"]:
        if kind in rows:
            lines.append(f"{kind:28}" + "".join(f"{rows[kind][c]:>16}" for c in cols))
    lines.append("-" * len(head))
    lines.append(f"{'total':28}" + "".join(
        f"{sum(r[c] for r in rows.values()):>16}" for c in cols))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None, help="default: a new temp directory")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kill-harness-"))
    t0 = time.monotonic()
    ref = reference(work / "work")
    print(f"reference: {len(ref.order)} nodes of {len({k for _, k in ref.order})} kinds in "
          f"{ref.seconds:.1f}s ({work})", flush=True)
    results = []
    for i, kp in enumerate(kill_points(ref, args.kills, args.seed)):
        res = run_point(ref, kp, work / f"point-{i:03d}")
        results.append(res)
        print(f"[{i + 1:3d}/{args.kills}] {res.seconds:5.1f}s {describe(res)}"
              + (f" (kept: {work / f'point-{i:03d}'})" if not res.identical or res.verify_killed else ""),
              flush=True)
    print()
    print(table(ref, results))
    aimed = sum(r.killed_in == r.point.node for r in results if r.point.node)
    print(f"\n{len(results)} kills ({aimed} landed in the node aimed at) in "
          f"{time.monotonic() - t0:.0f}s; node kinds hit: "
          f"{len({r.kind for r in results if r.killed})} of {len({k for _, k in ref.order})}")
    bad = [r for r in results if not r.identical or r.verify_killed]
    for r in bad:
        print("  " + describe(r))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
