"""Series across variants and seeds: which report rows are comparable points, grouped into
the plots the papers draw (PNMI / probe accuracy vs layer, PNMI vs k, error vs labeled minutes),
seeds of one variant as one point with an error bar (``report_seeds``)."""

from __future__ import annotations

from pathlib import Path

from .report_seeds import aggregate_points, draw_baselines, draw_series, mean_sd, strip_seeds


def describe_rows(project, report_rows: list[dict]) -> list[dict]:
    """``project``'s report rows with its spec file stem and the spec values the variant plots
    need (k, layer, labeled minutes, pretrained or not)."""
    rows = []
    pipeline = project.pipeline
    for r in report_rows:
        node = pipeline.spec.nodes[r["node"]]
        extra = {"spec": project.spec_path.stem}
        if node.kind == "ClusterQuality":
            km = node.labels.kmeans
            extra["k"] = km.k
            src = node.labels.source
            extra["layer"] = getattr(src, "layer", None)
            extra["features"] = src.kind
            extra["model"] = pipeline.name_of(src.model) if hasattr(src, "model") else None
            rec = project.store.record(project[r["node"]].key) or {}
            extra["phones"] = len(rec.get("phones") or []) or None
            extra["corpora"] = (pipeline.name_of(km.features.corpus),
                                pipeline.name_of(node.labels.corpus))
        if node.kind == "ASRScore":
            ft = node.model
            extra["labeled_minutes"] = ft.split.labeled_minutes
            extra["pretrained"] = ft.pretrained is not None
            extra["pretrained_from"] = strip_seeds(pipeline.name_of(ft.pretrained)) \
                if ft.pretrained is not None else None
            extra["units"] = ft.units
            extra["corpora"] = (pipeline.name_of(ft.corpus),) * 2
        if node.kind == "Probe" and node.task == "pc":
            rec = project.store.record(project[r["node"]].key) or {}
            extra["layers"] = rec.get("layers")
            extra["layer_accuracy"] = rec.get("layer_accuracy")
            extra["upstream"] = pipeline.name_of(node.upstream)
            extra["upstream_kind"] = node.upstream.kind
        rows.append({**extra, **r})
    return rows


def _scoring(r: dict) -> str:
    """What a PNMI is measured against, for a series label: phone set size, and the corpora
    when the k-means was fit on one and the labels scored on another."""
    out = f", {r['phones']} phones" if r.get("phones") else ""
    fit, scored = r.get("corpora") or (None, None)
    return out + (f", fit {fit} / scored {scored}" if fit != scored else "")


def comparable_series(series: dict[tuple[str, str], set]) -> dict[str, set]:
    """One line per comparable series: points keyed (label, variant) join across variants
    under their label, unless two variants put a point at the same x (then each variant is a
    series of its own, named with its spec): a line never zig-zags between variants."""
    by_label: dict[str, dict[str, set]] = {}
    for (label, variant), pts in series.items():
        by_label.setdefault(label, {}).setdefault(variant, set()).update(pts)
    out = {}
    for label, variants in by_label.items():
        xs = [x for pts in variants.values() for x in {x for x, _ in pts}]
        if len(xs) == len(set(xs)) and all(len({x for x, _ in p}) == len(p)
                                           for p in variants.values()):
            out[label] = set().union(*variants.values())
        else:
            for variant, pts in variants.items():
                out[f"{label} ({variant})"] = pts
    return out


def variant_plot_data(rows: list[dict]) -> dict[str, dict]:
    """What each variant plot draws, by file name: title, axis labels, ``series`` (label →
    {(x, (mean, sd, n))}: seeds of one variant averaged into one point, see
    ``report_seeds``) and ``baselines`` (single-layer sources on a per-layer plot: label →
    (mean, sd, n)). A plot appears only where some series has two x values."""
    q = [r for r in rows if r["kind"] == "ClusterQuality" and r.get("pnmi") is not None]
    by_k, by_layer, flat_pnmi = {}, {}, {}
    for r in q:
        source = strip_seeds(r["model"]) or r["features"]
        scored = _scoring(r)
        by_k.setdefault((source + (f" L{r['layer']}" if r.get("layer") is not None else "") + scored,
                         r["spec"]), []).append((r["k"], r["pnmi"], r["node"]))
        if r.get("layer") is not None:
            by_layer.setdefault((f"{source} k={r['k']}{scored}", r["spec"]), []).append(
                (r["layer"], r["pnmi"], r["node"]))
        else:
            flat_pnmi.setdefault(f"{source} k={r['k']}{scored}", []).append(r["pnmi"])
    pc, flat_pc = {}, {}
    for r in rows:
        if r["kind"] != "Probe" or not r.get("layer_accuracy"):
            continue
        label = f"{strip_seeds(r['upstream'])} ({r['upstream_kind']})"
        if len(r["layers"]) > 1:
            for layer, acc in zip(r["layers"], r["layer_accuracy"]):
                pc.setdefault((label, r["spec"]), []).append((layer, acc, r["node"]))
        else:
            flat_pc.setdefault(label, []).append(r["layer_accuracy"][0])
    plots = {
        "pnmi-vs-k.png": dict(title="PNMI vs k", xlabel="k", ylabel="PNMI", series=by_k),
        "pnmi-vs-layer.png": dict(title="PNMI vs layer", xlabel="layer (0 = context input)",
                                  ylabel="PNMI", series=by_layer, baselines=flat_pnmi),
        "pc-vs-layer.png": dict(title="frame phone accuracy vs layer (pc probes)",
                                xlabel="layer (0 = context input)", ylabel="accuracy",
                                series=pc, baselines=flat_pc),
    }
    asr = [r for r in rows if r["kind"] == "ASRScore" and r.get("labeled_minutes") is not None]
    for metric in ("cer", "per", "wer"):
        series = {}
        for r in asr:
            if r.get(metric) is not None:
                label = (f"pretrained {r['pretrained_from']}" if r["pretrained"]
                         else "from scratch") + f", {r['units']} on {r['corpora'][0]}"
                series.setdefault((label, r["spec"]), []).append(
                    (r["labeled_minutes"], r[metric], r["node"]))
        plots[f"{metric}-vs-minutes.png"] = dict(
            title=f"{metric.upper()} vs labeled minutes", xlabel="labeled minutes",
            ylabel=metric.upper(), series=series)
    out = {}
    for name, plot in plots.items():
        series = comparable_series(aggregate_points(plot["series"]))
        if any(len({x for x, _ in pts}) > 1 for pts in series.values()):
            baselines = {k: mean_sd(v) for k, v in plot.get("baselines", {}).items()}
            out[name] = {**plot, "series": series, "baselines": baselines}
    return out


def draw_variant_plots(rows: list[dict], out: Path) -> list[tuple[str, str]]:
    """PNMI vs k, PNMI and probe accuracy vs layer, error rate vs labeled minutes (pretrained
    vs scratch); seeds of a variant are one point with an error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = []
    for name, plot in variant_plot_data(rows).items():
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
        draw_series(ax, plot["series"])
        draw_baselines(ax, plot["baselines"])
        xs = sorted({x for pts in plot["series"].values() for x, _ in pts})
        if all(float(x).is_integer() for x in xs) and len(xs) <= 25:  # layers, k: no 0.25
            ax.set_xticks(xs)
        ax.set_xlabel(plot["xlabel"])
        ax.set_ylabel(plot["ylabel"])
        ax.set_title(plot["title"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        images.append((plot["title"], name))
    return images
