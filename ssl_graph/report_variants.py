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
from .report_series import describe_rows, draw_variant_plots
from .store.backend import read_json
from .store.paths import contained


def variant_rows(projects) -> list[dict]:
    """Every scoring/training row of every project, described for the variant plots."""
    return [row for project in projects for row in describe_rows(project, build_report(project).rows)]


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
