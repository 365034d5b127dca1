"""The demo spec itself, shortened (SSL_GRAPH_DEMO_QUICK=1) on a slice of the bundled corpus."""

from __future__ import annotations

from pathlib import Path

from ssl_graph.api import Project

from .conftest import ROOT, make_corpus

DEMO = ROOT / "specs" / "demo.py"


def test_demo_loop_runs_reports_and_reruns_only_what_changed(tmp_path, monkeypatch):
    make_corpus(tmp_path / "data", 16)
    monkeypatch.setenv("SSL_GRAPH_DEMO_QUICK", "1")
    monkeypatch.setenv("SSL_GRAPH_DEMO_DATA", str(tmp_path / "data"))
    store = str(tmp_path / "store")
    report = Project(DEMO, store).run()
    names = {n.name for n in report.nodes if n.status == "computed"}
    assert {"quality", "it1", "quality2", "it2", "ft", "score", "scratch", "scratch_score"} <= names
    assert {f"{t}_{u}" for t in ("pr", "sid") for u in ("mfcc", "it1", "it2")} <= names
    started = {n.name: n.started for n in report.nodes}
    assert started["quality"] < started["it1"]  # the cheap diagnostic does not wait for training
    p = Project(DEMO, store)
    for q in ("quality", "quality2"):
        assert 0 < p[q].metrics["pnmi"] < 1
    for s in ("score", "scratch_score"):
        # 6 training steps: the rate only has to be a real, finite number here
        assert 0 <= p[s].metrics["cer"] < 10 and "wer" in p[s].metrics
    assert not any(st.stale for st in p.plan().values())
    # 16 short utterances cannot fill the 2-minute budget: trained on all, and the record says so
    (warning,) = p["ft"].record["warnings"]
    assert warning.startswith("split.labeled_minutes=2 but only ") and "trained on all" in warning
    assert next(n for n in report.nodes if n.name == "ft").warnings == [warning]
    rows = p["it1"].log()
    assert len(rows) == 6 and rows[-1]["step"] == 6 and "loss" in rows[0]
    hyps = p["score"].hypotheses()
    assert len(hyps) == p["score"].record["n_test_utts"] > 0
    assert all(set(h) >= {"ref", "hyp", "cer", "wer"} for h in hyps.values())

    from ssl_graph.report import build_report

    rows = {r["node"]: r for r in build_report(p).rows}
    from ssl_graph.report_variants import worst_utterances

    worst = [w for w in worst_utterances([p]) if w["node"] == "score"]
    assert len(worst) == 3 and worst[0]["edits"] >= worst[-1]["edits"] and worst[0]["ref"]
    n_phones = len(p["quality"].record["phones"])
    assert n_phones > 10 and n_phones == len(p["quality2"].record["phones"])
    assert rows["quality"]["what"] == f"MFCC k=100, {n_phones} phones"
    assert rows["quality2"]["what"] == f"it1 layer 1, k=100, {n_phones} phones"
    assert rows["score"]["what"] == "it2 → char CTC, 2 min labeled"
    assert rows["scratch_score"]["what"] == "from scratch → char CTC, 2 min labeled"
    # probes: PER and speaker accuracy of each frozen upstream; a model's layers are swept once
    for u in ("mfcc", "it1", "it2"):
        assert 0 <= p[f"pr_{u}"].metrics["per"] < 10 and 0 <= p[f"sid_{u}"].metrics["accuracy"] <= 1
    assert rows["pr_it2"]["what"] == "it2 → PR probe, linear, 3 layers"
    assert p["pr_it1"].node.features == p["sid_it1"].node.features

    # change iteration 2's k: only what depends on it reruns
    text = DEMO.read_text().replace("km2 = KMeans(features=feats2, k=100", "km2 = KMeans(features=feats2, k=50")
    spec = Path(tmp_path / "specs" / "demo.py")
    spec.parent.mkdir()
    spec.write_text(text)
    stale = {n for n, st in Project(spec, store).plan().items() if st.stale}
    assert stale == {"km2", "labels2", "quality2", "it2", "ft", "score", "pr_it2.features",
                     "pr_it2", "sid_it2"}

    # edit one transcript: only the fine-tunings and their scores read transcripts
    tsv = tmp_path / "data" / "transcripts.tsv"
    lines = tsv.read_text().splitlines()
    utt, text = lines[1].split("\t", 1)
    lines[1] = f"{utt}\t{text} again"
    tsv.write_text("\n".join(lines) + "\n")
    plan = Project(DEMO, store).plan()
    stale = {n for n, st in plan.items() if st.stale}
    assert stale == {"ft.transcripts", "ft", "score", "scratch", "scratch_score"}
    assert plan["ft.transcripts"].reasons == [f"transcripts file changed ({tsv})"]
    # and editing alignments restales exactly the two cluster-quality scores and the PR probes
    tsv.write_text("\n".join([lines[0], lines[1].removesuffix(" again")] + lines[2:]) + "\n")
    ali = tmp_path / "data" / "alignments.tsv"
    rows = ali.read_text().splitlines()
    ali.write_text("\n".join(r for r in rows if not r.endswith("\tsil")) + "\n")
    stale = {n for n, st in Project(DEMO, store).plan().items() if st.stale}
    assert stale == {"quality.alignments", "quality", "quality2", "ft.transcripts", "pr_mfcc",
                     "pr_it1", "pr_it2"}
