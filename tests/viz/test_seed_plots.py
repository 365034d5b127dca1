"""Seeds in the report: a tiny spec whose variants ran with several seeds (nodes named
``<variant>_s<seed>``) gives one series per variant with error bars — never a line through the
seeds — for PNMI vs layer (MFCC as a baseline band), frame phone accuracy vs layer, and CER vs
labeled minutes (pretrained vs scratch); the Markdown report adds a mean ± sd table."""

from __future__ import annotations

import statistics

import pytest

from ssl_graph.api import Project
from ssl_graph.report import fmt
from ssl_graph.report_seeds import (
    SEED_COLUMNS,
    aggregate_points,
    seed_table,
    split_seed,
    strip_seeds,
)
from ssl_graph.report_series import draw_variant_plots, variant_plot_data
from ssl_graph.report_tables import as_markdown, table_columns
from ssl_graph.report_variants import variant_rows

from ..conftest import make_corpus

SPEC = '''
from ssl_graph import MFCC, ASRScore, ClusterQuality, Corpus, KMeans, Labels, LayerSweep, Probe
from ssl_graph.presets import finetune, finetune_from_scratch, hubert
from ssl_graph.specs.components import wav2vec2_model

corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="alignments.tsv")
mfcc = MFCC(corpus=corpus)
labels = Labels(kmeans=KMeans(features=mfcc, k=8, fit_fraction=1.0))
FT = dict(units="char", size="tiny", steps=2, batch_seconds=4.0)
_n = {}
for s in (0, 1, 2):
    _n[f"q_mfcc_s{s}"] = ClusterQuality(labels=Labels(kmeans=KMeans(features=mfcc, k=8,
                                                                    fit_fraction=1.0, seed=s)))
    _n[f"pc_mfcc_s{s}"] = Probe(upstream=mfcc, task="pc", steps=3, seed=s)
for s in (0, 1):
    it1 = _n[f"it1_s{s}"] = hubert(corpus, targets=labels, size="tiny", steps=2,
                                   batch_seconds=2.0, crop_seconds=1.0, seed=s)
    sweep = LayerSweep(model=it1, layers=(0, 1, 2))
    for layer in (0, 1, 2):
        _n[f"q_L{layer}_s{s}"] = ClusterQuality(labels=Labels(kmeans=KMeans(
            features=sweep.layer(layer), k=8, fit_fraction=1.0, seed=s)))
    _n[f"pc_it1_s{s}"] = Probe(upstream=it1, task="pc", steps=3, seed=s)
    for m in (0.1, 0.2):
        _n[f"score_{m:g}m_s{s}"] = ASRScore(model=finetune(it1, labeled_minutes=m, seed=s, **FT))
        _n[f"scratch_{m:g}m_s{s}"] = ASRScore(model=finetune_from_scratch(
            wav2vec2_model("tiny"), corpus, labeled_minutes=m, seed=s, **FT))
globals().update(_n)
'''


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    d = tmp_path_factory.mktemp("seeds")
    make_corpus(d, 8)
    (d / "study.py").write_text(SPEC)
    project = Project(d / "study.py", str(d / "store"))
    project.run()
    return project


def test_seed_names():
    assert split_seed("q_it1_L1_s2") == ("q_it1_L1", 2)
    assert split_seed("quality") == ("quality", None)
    assert split_seed("its1") == ("its1", None)
    assert strip_seeds("it1_s0 layer 1, k=100") == "it1 layer 1, k=100"


def test_points_of_different_variants_at_one_x_are_not_averaged():
    pts = {("pretrained", "a"): [(2.0, 0.5, "x_s0"), (2.0, 0.7, "x_s1"), (2.0, 0.1, "y_s0")]}
    out = aggregate_points(pts)
    assert set(out) == {("pretrained [x]", "a"), ("pretrained [y]", "a")}
    (x, (mean, sd, n)), = out[("pretrained [x]", "a")]
    assert (x, n) == (2.0, 2) and mean == pytest.approx(0.6) and sd == pytest.approx(0.1414, 1e-3)


def test_one_measurement_under_two_names_is_one_point():
    """A layer scored from a sweep (``q_L1``) and directly (``quality2``) by the same k-means
    recipe gives the same numbers: one point, and the series stays a line over the layers."""
    pts = {("it1 k=100", "a"): [(0, 0.46, "q_L0_s0"), (0, 0.47, "q_L0_s1"),
                                (1, 0.45, "q_L1_s0"), (1, 0.44, "q_L1_s1"),
                                (1, 0.45, "quality2_s0"), (1, 0.44, "quality2_s1")]}
    out = aggregate_points(pts)
    assert set(out) == {("it1 k=100", "a")}
    assert sorted(x for x, _ in out[("it1 k=100", "a")]) == [0, 1]
    differs = {("it1 k=100", "a"): pts[("it1 k=100", "a")][:4] + [(1, 0.40, "quality2_s0")]}
    assert len(aggregate_points(differs)) == 3  # a different value at one x: variants apart


def test_one_series_per_variant_with_error_bars(seeded):
    rows = variant_rows([seeded])
    plots = variant_plot_data(rows)
    assert {"pnmi-vs-layer.png", "pc-vs-layer.png", "cer-vs-minutes.png"} <= set(plots)

    layer = plots["pnmi-vs-layer.png"]
    (label, pts), = layer["series"].items()  # both seeds of it1: one series, not two
    assert label.startswith("it1 k=8")
    assert sorted(x for x, _ in pts) == [0, 1, 2]  # one point per layer
    for x, (mean, sd, n) in pts:
        runs = [seeded[f"q_L{x}_s{s}"].metrics["pnmi"] for s in (0, 1)]
        assert n == 2 and mean == pytest.approx(statistics.fmean(runs))
        assert sd == pytest.approx(statistics.stdev(runs))
    (base, (mean, sd, n)), = layer["baselines"].items()  # MFCC: a band over its 3 seeds
    assert base.startswith("MFCC k=8") and n == 3
    assert mean == pytest.approx(statistics.fmean(
        seeded[f"q_mfcc_s{s}"].metrics["pnmi"] for s in (0, 1, 2)))

    pc = plots["pc-vs-layer.png"]
    assert list(pc["series"]) == ["it1 (Pretrain)"] and list(pc["baselines"]) == ["mfcc (MFCC)"]
    assert all(n == 2 for _, (_, _, n) in pc["series"]["it1 (Pretrain)"])

    cer = plots["cer-vs-minutes.png"]["series"]
    assert sorted(cer) == ["from scratch, char on corpus", "pretrained it1, char on corpus"]
    for label, pts in cer.items():
        assert sorted(x for x, _ in pts) == [0.1, 0.2]
        node = "scratch" if label.startswith("from") else "score"
        for x, (mean, sd, n) in pts:
            runs = [seeded[f"{node}_{x:g}m_s{s}"].metrics["cer"] for s in (0, 1)]
            assert n == 2 and mean == pytest.approx(statistics.fmean(runs))
            assert sd == pytest.approx(statistics.stdev(runs))

    table = {r["node"]: r for r in seed_table(rows)}
    assert table["q_mfcc"]["seeds"] == "0,1,2" and " ± " in table["q_mfcc"]["pnmi"]
    assert table["score_0.1m"]["what"] == "it1 → char CTC, 0.1 min labeled"
    assert "it1" not in table  # training rows have no score to average


def test_the_plots_are_drawn_and_the_seed_table_is_markdown(seeded, tmp_path):
    rows = variant_rows([seeded])
    images = dict((f, t) for t, f in draw_variant_plots(rows, tmp_path))
    for png in ("pnmi-vs-layer.png", "pc-vs-layer.png", "cer-vs-minutes.png"):
        assert png in images and (tmp_path / png).stat().st_size > 0
    seeds = seed_table(rows)  # what `report --format md` appends under the node table
    md = as_markdown(seeds, table_columns(seeds, SEED_COLUMNS), fmt)
    assert "| q_mfcc | " in md and "| 0,1,2 |" in md and " ± " in md
