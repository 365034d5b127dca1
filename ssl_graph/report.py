"""``ssl-graph report``: every scoring node's numbers in one table, plus the pictures.

Numbers come straight from the store records (nothing is recomputed); a node that has not run
yet shows as such, so a report is safe to make at any time.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from .store.train_log import read_log

SCORE_KINDS = ("ClusterQuality", "ASRScore", "Probe")
TRAIN_KINDS = ("Pretrain", "FineTune")


@dataclass
class Report:
    rows: list[dict] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (title, file name)


def _describe_source(pipeline, node, rec: dict | None = None) -> str:
    """What a score measures, e.g. 'MFCC k=100, 40 phones' or 'it1 layer 1, k=500, 40 phones,
    fit on train, scored on dev' (the phone count once scored; the corpora when they differ)."""
    kind = node.kind
    if kind == "ClusterQuality":
        src, km = node.labels.source, node.labels.kmeans
        if src.kind == "LayerFeatures":
            what = f"{pipeline.name_of(src.model)} layer {src.layer}, k={km.k}"
        else:
            what = f"{src.kind} k={km.k}"
        if (rec or {}).get("phones"):
            what += f", {len(rec['phones'])} phones"
        fit, scored = km.features.corpus, node.labels.corpus
        if fit.fingerprint != scored.fingerprint:
            what += f", fit on {pipeline.name_of(fit)}, scored on {pipeline.name_of(scored)}"
        return what
    if kind == "ASRScore":
        ft = node.model
        pre = getattr(ft, "pretrained", None)
        base = pipeline.name_of(pre) if pre is not None else "from scratch"
        units = getattr(ft, "units", "")
        minutes = ft.split.labeled_minutes
        budget = f", {minutes:g} min labeled" if minutes is not None else ""
        return f"{base} → {units} CTC{budget}"
    if kind == "Probe":
        layers = len(node.probed_layers)
        head = "per-layer linear" if node.task == "pc" else node.head
        return (f"{pipeline.name_of(node.upstream)} → {node.task.upper()} probe, {head}, "
                f"{layers} layer{'s' if layers > 1 else ''}")
    return kind


def _describe_training(node, rec: dict) -> str:
    """e.g. ``QuantizedLatents, 400000 steps, bf16`` (the precision it ran in, once run)."""
    ran = f", {rec['precision']}" if rec.get("precision") else ""
    if node.kind == "Pretrain":
        return f"{node.model.target_kind}, {node.steps} steps{ran}"
    pre = getattr(node, "pretrained", None)
    return f"{'pretrained' if pre is not None else 'from scratch'}, {node.steps} steps{ran}"


def build_report(project, states: dict | None = None) -> Report:
    pipeline = project.pipeline
    states = states if states is not None else project.plan()
    rep = Report()
    targets = pipeline.spec.default_targets
    wanted = pipeline.ancestors([pipeline.node(t) for t in targets]) if targets else None
    for st in states.values():
        node, rec = st.node, st.record or {}
        if node.kind not in SCORE_KINDS + TRAIN_KINDS:
            continue
        if not rec and wanted is not None and node.fingerprint not in wanted:
            continue  # e.g. paper-size models declared next to their tiny twins
        m = rec.get("metrics", {}) if rec.get("status") == "complete" else {}
        what = (_describe_source(pipeline, node, rec) if node.kind in SCORE_KINDS
                else _describe_training(node, rec))
        rep.rows.append({
            "node": st.name, "kind": node.kind, "what": what,
            "decoder": node.decoder_name if node.kind == "ASRScore" else None,
            "status": st.status if rec else "not run",
            "pnmi": m.get("pnmi"), "phone_purity": m.get("phone_purity"),
            "cluster_purity": m.get("cluster_purity"),
            "cer": m.get("cer"), "per": m.get("per"), "wer": m.get("wer"),
            "accuracy": m.get("accuracy") if node.kind == "Probe" else None,  # SID / pc
            "loss": m.get("loss"), "valid": _valid_cell(node, m, rec),
            "seconds": m.get("train_seconds", rec.get("seconds")),
        })
    return rep


def write_report(project, out_dir: str | Path, variant_plots: bool = True) -> Report:
    """The report of one spec in ``out_dir``; ``variant_plots``: also the across-variant plots
    of its own nodes (seeds as error bars, PNMI / probe accuracy vs layer, error vs labeled
    minutes) where the spec declares such families (``specs/study.py``)."""
    from .viz.curves import draw_curves
    from .viz.graph_plot import draw_plan
    from .viz.heatmap import draw_joint

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    states = project.plan()
    rep = build_report(project, states)
    draw_plan(project.pipeline, states, str(out / "graph.png"))
    rep.images.append(("pipeline (green = fresh, orange = stale)", "graph.png"))
    logs, kinds = {}, {}
    for st in states.values():
        rec = st.record or {}
        if st.node.kind in TRAIN_KINDS and rec:  # partial trainings too: the curve so far
            rows = read_log(project.store.backend, st.key)
            if rows:
                label = st.name if rec.get("status") == "complete" else \
                    f"{st.name} (step {rows[-1]['step']}, training)"
                logs[label], kinds[label] = rows, st.node.kind
                held = valid_series(rows)
                if held:  # drawn beside the training curve, in the same panels
                    logs[f"{label} (valid)"], kinds[f"{label} (valid)"] = held, st.node.kind
        if st.node.kind == "ClusterQuality" and rec.get("status") == "complete":
            joint = project[st.name].array("joint")
            fname = f"heatmap-{st.name.replace('/', '_')}.png"
            title = f"{st.name}: {_describe_source(project.pipeline, st.node)}, " \
                    f"PNMI {rec['metrics']['pnmi']:.3f}"
            draw_joint(joint, rec["phones"], title, str(out / fname))
            rep.images.append((title, fname))
    if logs:
        draw_curves(logs, str(out / "curves.png"), kinds)
        rep.images.insert(1, ("training curves", "curves.png"))
    rep.images += _probe_images(states, out)
    if variant_plots:
        from .report_series import describe_rows, draw_variant_plots

        rep.images += draw_variant_plots(describe_rows(project, rep.rows), out)
    (out / "report.html").write_text(_html(project, rep))
    return rep


def _probe_images(states: dict, out: Path) -> list[tuple[str, str]]:
    """The learned layer weights of PR/SID probes and the per-layer accuracy of frame
    phone-classification probes, one figure each (probes over one layer have no curve)."""
    from .viz.probes import draw_per_layer

    weights, accuracy = {}, {}
    for st in states.values():
        rec = st.record or {}
        if st.node.kind != "Probe" or rec.get("status") != "complete" or len(rec["layers"]) < 2:
            continue
        if "layer_weights" in rec:
            weights[st.name] = (rec["layers"], rec["layer_weights"])
        if "layer_accuracy" in rec:
            accuracy[st.name] = (rec["layers"], rec["layer_accuracy"])
    images = []
    for series, fname, ylabel, title in (
            (weights, "probe-weights.png", "softmax weight", "probes: learned layer weights"),
            (accuracy, "probe-layers.png", "frame accuracy", "probes: phone accuracy per layer")):
        if series:
            draw_per_layer(series, str(out / fname), ylabel, title)
            images.append((title, fname))
    return images


def valid_series(rows: list[dict]) -> list[dict]:
    """The held-out evaluations of a training log as rows of their own: ``valid_loss`` /
    ``valid_accuracy`` become ``loss`` / ``accuracy`` (same panels as the training curve);
    dev error rates (``dev_cer``, ``dev_per``) keep their names (panels of their own)."""
    out = []
    for r in rows:
        ev = {k.removeprefix("valid_"): v for k, v in r.items() if k.startswith("valid_")}
        ev.update({k: v for k, v in r.items() if k.startswith("dev_")})
        if ev:
            out.append({"step": r["step"], **ev})
    return out


def _valid_cell(node, m: dict, rec: dict):
    """Pretrain: the last valid loss; FineTune: the best dev error and its step."""
    if "valid_loss" in m:
        return m["valid_loss"]
    best = rec.get("best") if rec.get("status") == "complete" else None
    if best:
        return f"{best['metric']} {best['value']:.3f} @ {best['step']}"
    return None


COLUMNS = ("node", "kind", "what", "decoder", "status", "pnmi", "phone_purity", "cluster_purity", "cer",
           "per", "wer", "accuracy", "loss", "valid", "seconds")


def fmt(v, column: str = "") -> str:
    if v is None:
        return ""
    if column == "seconds":
        return f"{v:.0f} s"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _html(project, rep: Report) -> str:
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(r[c], c))}</td>" for c in COLUMNS) + "</tr>"
        for r in rep.rows
    )
    imgs = "".join(f"<h3>{html.escape(t)}</h3><img src='{f}' style='max-width:100%'>"
                   for t, f in rep.images)
    return (f"<html><head><meta charset='utf-8'><title>ssl_graph report</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
            "</style></head>"
            f"<body><h1>{html.escape(str(project.spec_path))}</h1><table><tr>{head}</tr>{body}"
            f"</table>{imgs}</body></html>")
