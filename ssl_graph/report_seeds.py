"""Seeds of one variant as one number: nodes named ``<variant>_s<seed>`` (``q_it1_L1_s0``,
``q_it1_L1_s1``, ...) are runs of the same variant, so the report gives their mean ± sd
(sample standard deviation, n − 1) in one row, and the plots draw one point with an error bar
per variant and x, never a line zig-zagging through the seeds.

The rule is the name alone (``specs/study.py`` shows the convention); rows without the suffix
are variants of their own with n = 1.
"""

from __future__ import annotations

import re
import statistics

#: ``<variant>_s<seed>``: the seed suffix of a node (or model) name
SEED_SUFFIX = re.compile(r"_s(\d+)$")
#: the same suffix inside a description ("it1_s0 layer 1, k=100")
_SEED_IN_TEXT = re.compile(r"(?<=\w)_s\d+\b")

#: the metrics a seed table summarises, in the report's column order
SEED_METRICS = ("pnmi", "phone_purity", "cluster_purity", "cer", "per", "wer", "accuracy")


def split_seed(name: str | None) -> tuple[str | None, int | None]:
    """``"q_it1_L1_s2"`` → ``("q_it1_L1", 2)``; a name without the suffix → ``(name, None)``."""
    if not name:
        return name, None
    m = SEED_SUFFIX.search(name)
    return (name[:m.start()], int(m.group(1))) if m else (name, None)


def strip_seeds(text: str | None) -> str | None:
    """A description with every ``_s<seed>`` name suffix dropped (``it1_s0 layer 1`` → ``it1
    layer 1``), so the seeds of one variant describe alike."""
    return _SEED_IN_TEXT.sub("", text) if text else text


def mean_sd(values: list[float]) -> tuple[float, float, int]:
    """(mean, sample sd — 0 for one value —, n)."""
    values = [float(v) for v in values]
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), sd, len(values)


def seed_table(rows: list[dict]) -> list[dict]:
    """One row per variant that ran with two or more seeds: the variant's name, what it is,
    the seeds, and ``mean ± sd`` of each metric (values rounded as the report prints them)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        variant, seed = split_seed(r["node"])
        if seed is None or r.get("status") == "not run":
            continue
        groups.setdefault((r.get("spec"), variant), []).append({**r, "seed": seed})
    out = []
    for (spec, variant), runs in groups.items():
        if len(runs) < 2:
            continue
        row = {"node": variant, "kind": runs[0].get("kind"), "what": strip_seeds(runs[0]["what"]),
               "seeds": ",".join(str(r["seed"]) for r in sorted(runs, key=lambda r: r["seed"]))}
        if spec is not None:
            row["spec"] = spec
        for metric in SEED_METRICS:
            vals = [r[metric] for r in runs if r.get(metric) is not None]
            if len(vals) == len(runs):
                mean, sd, _ = mean_sd(vals)
                row[metric] = f"{mean:.3f} ± {sd:.3f}"
        if any(m in row for m in SEED_METRICS):  # training rows: no score to average
            out.append(row)
    return out


SEED_COLUMNS = ("spec", "node", "what", "seeds") + SEED_METRICS


def aggregate_points(series: dict[tuple[str, str], list[tuple[float, float, str]]]
                     ) -> dict[tuple[str, str], set]:
    """Points ``(x, y, node name)`` of each (label, spec) series → ``(x, (mean, sd, n))``: the
    seeds of one variant at one x become one point. Where two *different* variants (names
    that differ beyond the seed) put a point at the same x, they are not averaged: each
    variant becomes a series of its own (its label gains the variant's name). Two variants
    with the same values at one x are one measurement reached by two names (a spec that scores
    a layer both from a sweep and directly): it is drawn once, under the first name."""
    out: dict[tuple[str, str], set] = {}
    for (label, spec), pts in series.items():
        by_x: dict[float, dict[str, list[float]]] = {}
        for x, y, name in sorted(pts, key=lambda p: (p[0], p[2])):
            by_x.setdefault(x, {}).setdefault(split_seed(name)[0], []).append(y)
        for variants in by_x.values():
            seen: set[tuple[float, ...]] = set()
            for variant in list(variants):
                values = tuple(sorted(variants[variant]))
                if values in seen:
                    del variants[variant]
                seen.add(values)
        clash = any(len(variants) > 1 for variants in by_x.values())
        for x, variants in by_x.items():
            for variant, ys in variants.items():
                key = (f"{label} [{variant}]" if clash else label, spec)
                out.setdefault(key, set()).add((x, mean_sd(ys)))
    return out


def draw_series(ax, series: dict[str, set]) -> None:
    """One line per series through its means, an error bar (± sd) where seeds were averaged;
    a series with one x is a point, never a line."""
    for label, pts in sorted(series.items()):
        pts = sorted(pts)
        xs = [x for x, _ in pts]
        ys = [y[0] for _, y in pts]
        err = [y[1] for _, y in pts]
        n = max(y[2] for _, y in pts)
        line = "-" if len(set(xs)) > 1 and len(set(xs)) == len(xs) else "none"
        ax.errorbar(xs, ys, yerr=err if n > 1 else None, marker="o", linestyle=line, capsize=3,
                    label=label + (f" (mean ± sd, {n} seeds)" if n > 1 else ""))


def draw_baselines(ax, baselines: dict[str, tuple[float, float, int]]) -> None:
    """Single-layer sources (MFCC) on a per-layer plot: a horizontal line at the mean, a band
    of ± sd over seeds."""
    for i, (label, (mean, sd, n)) in enumerate(sorted(baselines.items())):
        color = ("0.25", "0.55", "0.75")[i % 3]  # greys: never a series' colour
        ax.axhline(mean, color=color, linestyle="--", linewidth=1.0,
                   label=label + (f" (mean ± sd, {n} seeds)" if n > 1 else ""))
        if n > 1:
            ax.axhspan(mean - sd, mean + sd, color=color, alpha=0.15)
