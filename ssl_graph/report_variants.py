"""Several spec files (variants) in one report: one table with the variants as rows, the plots
researchers draw across variants, ASR examples, and how to reproduce the numbers.

Everything comes from the store records (nothing is recomputed), like ``report.py``.
"""

from __future__ import annotations

import html
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .report import COLUMNS, build_report, fmt, write_report
from .report_seeds import aggregate_points, draw_baselines, draw_series, mean_sd, strip_seeds
from .store.backend import read_json
from .store.paths import contained


def variant_rows(projects) -> list[dict]:
    """Every scoring/training row of every project, with its spec file stem and the spec
    values the variant plots need (k, layer, labeled minutes, pretrained or not)."""
    rows = []
    for project in projects:
        pipeline = project.pipeline
        for r in build_report(project).rows:
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
                label = ("pretrained" if r["pretrained"] else "from scratch") + \
                    f", {r['units']} on {r['corpora'][0]}"
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


def worst_utterances(projects, n: int = 3) -> list[dict]:
    """The n utterances with the most edits of each scored fine-tune (reference vs hypothesis)."""
    out = []
    for project in projects:
        for st in project.plan().values():
            rec = st.record or {}
            if st.node.kind != "ASRScore" or rec.get("status") != "complete":
                continue
            backend = project.store.backend
            hyps = read_json(backend, contained(st.key, rec.get("hypotheses") or "hypotheses.json",
                                                "hypotheses", backend)) or {}
            metric = st.node.metric_names[0]
            ranked = sorted(hyps.items(), key=lambda kv: (-kv[1][metric][0], kv[0]))[:n]
            for utt, h in ranked:
                out.append({"spec": project.spec_path.stem, "node": st.name, "utt": utt,
                            "metric": metric, "edits": h[metric][0], "length": h[metric][1],
                            "ref": h["ref"], "hyp": h["hyp"]})
    return out


def reproducibility(projects) -> dict:
    """Versions, commit, machine, corpus sizes and seeds: what someone needs to rerun this."""
    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    info = {"ssl_graph": version("ssl_graph"), "torch": version("torch"),
            "numpy": version("numpy"), "zarr": version("zarr"),
            "python": platform.python_version(), "machine": f"{platform.machine()}, "
            f"{platform.system()} {platform.release()}"}
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True, timeout=5, cwd=projects[0].spec_path.parent
                                        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["commit"] = None
    corpora, seeds, devices, precisions = {}, {}, set(), set()
    for project in projects:
        for st in project.plan().values():
            rec, node = st.record or {}, st.node
            if node.kind == "Corpus" and rec.get("status") == "complete":
                corpora[f"{project.spec_path.stem}:{st.name}"] = (
                    f"{rec.get('n_utts')} utterances, "
                    f"{(rec.get('n_frames') or 0) / node.sample_rate / 3600:.2f} h")
            if "seed" in type(node).model_fields:
                seeds[f"{project.spec_path.stem}:{st.name}"] = node.seed
            if rec.get("device"):
                devices.add(str(rec["device"]))
            if rec.get("precision"):
                precisions.add(str(rec["precision"]))
    info["corpora"], info["seeds"] = corpora, seeds
    info["devices"] = sorted(devices) or ["cpu"]
    info["precisions"] = sorted(precisions)
    return info


def write_variant_report(projects, out_dir: str | Path) -> list[dict]:
    """One report for several spec files: ``report.html`` + the pictures, in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = write_report(projects[0], out, variant_plots=False)  # graph, curves, heat maps
    rows = variant_rows(projects)
    images = draw_variant_plots(rows, out) + first.images
    examples = worst_utterances(projects)
    repro = reproducibility(projects)
    (out / "report.html").write_text(_html(projects, rows, images, examples, repro))
    return rows


VARIANT_COLUMNS = ("spec",) + COLUMNS


def _html(projects, rows, images, examples, repro) -> str:
    esc = html.escape
    head = "".join(f"<th>{c}</th>" for c in VARIANT_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{esc(fmt(r.get(c), c))}</td>" for c in VARIANT_COLUMNS)
                   + "</tr>" for r in rows)
    ex = "".join(f"<tr><td>{esc(e['spec'])}:{esc(e['node'])}</td><td>{esc(e['utt'])}</td>"
                 f"<td>{e['edits']}/{e['length']} {e['metric']}</td><td>{esc(e['ref'])}</td>"
                 f"<td>{esc(e['hyp'])}</td></tr>" for e in examples)
    imgs = "".join(f"<h3>{esc(t)}</h3><img src='{f}' alt='{esc(t)}' style='max-width:100%'>"
                   for t, f in images)
    rep = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in repro.items())
    title = " vs ".join(str(p.spec_path.name) for p in projects)
    return (f"<html><head><meta charset='utf-8'><title>ssl_graph report: {esc(title)}</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid "
            "#ddd;text-align:left}</style></head>"
            f"<body><h1>{esc(title)}</h1><table><tr>{head}</tr>{body}</table>"
            + (f"<h2>worst utterances</h2><table><tr><th>score</th><th>utt</th><th>errors</th>"
               f"<th>reference</th><th>hypothesis</th></tr>{ex}</table>" if examples else "")
            + f"{imgs}<h2>reproducibility</h2><table>{rep}</table></body></html>")
