"""Variants across spec files: a copied spec with one changed field is explained against the
original (its nearest stored relative), in `plan` and in `explain`."""

from __future__ import annotations

from click.testing import CliRunner

from ssl_graph.api import Project
from ssl_graph.cli import main

from .conftest import SPEC_TEMPLATE


def test_copied_spec_explains_its_change_against_the_original(workdir):
    Project(workdir / "pipe.py", str(workdir / "store")).run()
    (workdir / "pipe_k30.py").write_text(SPEC_TEMPLATE.format(k=30))
    copy = Project(workdir / "pipe_k30.py", str(workdir / "store"))
    plan = copy.plan()
    stale = {n: st.reasons for n, st in plan.items() if st.stale}
    assert stale["km"] == ["new (vs pipe.py:km: k: 20 → 30)"]
    assert stale["labels"] == ["new (vs pipe.py:labels: upstream changed: km (field kmeans))"]
    assert "corpus" not in stale and "mfcc" not in stale  # shared caches: fresh
    res = CliRunner().invoke(main, ["--store", str(workdir / "store"), "explain",
                                    f"{workdir}/pipe_k30.py:km"])
    assert res.exit_code == 0, res.output
    assert "nearest stored relative pipe.py:km" in res.output and "k: 20 → 30" in res.output


def test_a_new_name_with_no_relative_is_just_new(workdir):
    plan = Project(workdir / "pipe.py", str(workdir / "store")).plan()
    assert all(st.reasons == ["new"] for st in plan.values())


def test_pipeline_built_in_python_runs_without_a_spec_file(tmp_path):
    from ssl_graph import MFCC, ClusterQuality, Corpus, KMeans, Labels

    from .conftest import make_corpus

    make_corpus(tmp_path, 4)
    corpus = Corpus(root=str(tmp_path / "wav"), alignments=str(tmp_path / "alignments.tsv"))
    km = KMeans(features=MFCC(corpus=corpus), k=8, fit_fraction=1.0)
    cell = {"corpus": corpus, "km": km, "quality": ClusterQuality(labels=Labels(kmeans=km)),
            "_private": km, "other": 3}
    project = Project.from_nodes(cell, store=str(tmp_path / "store"), name="nb")
    report = project.run()
    assert set(report.computed) == {"corpus", "km.features", "km", "quality.labels",
                                    "quality.alignments", "quality"}
    assert 0 < project["quality"].metrics["pnmi"] < 1
    assert "computed 6 of 6" in repr(report) and "<table>" in report._repr_html_()
    assert repr(project).startswith("<Project nodes from Python: 6 nodes")
    assert len(repr(project.plan()["km"])) < 80
    assert Project.from_nodes(cell, store=str(tmp_path / "store"), name="nb").run().computed == []
    assert project.store.names("nb")["km"][-1]["fingerprint"] == km.fingerprint
    # a notebook's globals(): IPython keeps every displayed value in Out (and the inputs in In)
    notebook = {**cell, "In": ["", "km"], "Out": {2: km}, "_": km, "_2": km}
    names = Project.from_nodes(notebook, store=str(tmp_path / "store"), name="nb").names
    assert "km" in names and not any(n.startswith(("Out", "In")) for n in names)


def test_reload_reads_an_edited_spec(workdir):
    p = Project(workdir / "pipe.py", str(workdir / "store"))
    assert p.pipeline.node("km").k == 20
    (workdir / "pipe.py").write_text(SPEC_TEMPLATE.format(k=31))
    assert p.pipeline.node("km").k == 20  # cached until asked
    assert p.reload().pipeline.node("km").k == 31


def test_compare_two_spec_files_prints_changes_and_both_metrics(workdir):
    store = str(workdir / "store")
    Project(workdir / "pipe.py", store).run()
    (workdir / "pipe_k30.py").write_text(SPEC_TEMPLATE.format(k=30))
    Project(workdir / "pipe_k30.py", store).run()
    res = CliRunner().invoke(main, ["--store", store, "compare", f"{workdir}/pipe.py",
                                    f"{workdir}/pipe_k30.py"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "k: 20 → 30" in res.output and "2 more node(s) are identical" in res.output
    from ssl_graph.compare import compare

    rows = {r.name: r for r in compare(Project(workdir / "pipe.py", store),
                                       Project(workdir / "pipe_k30.py", store))}
    assert rows["corpus"].status == "shared" and rows["km"].status == "differs"
    q = rows["quality"]
    assert 0 < q.a["pnmi"] < 1 and 0 < q.b["pnmi"] < 1 and q.a["pnmi"] != q.b["pnmi"]
    assert f"{q.a['pnmi']:.3f}" in res.output and f"{q.b['pnmi']:.3f}" in res.output
    res = CliRunner().invoke(main, ["--store", store, "compare", f"{workdir}/pipe.py:km",
                                    f"{workdir}/pipe_k30.py:km"], terminal_width=200)
    assert res.exit_code == 0 and "k: 20 → 30" in res.output, res.output


def test_a_rerun_prints_previous_and_new_metrics(workdir):
    from .conftest import write_spec

    store = str(workdir / "store")
    first = Project(workdir / "pipe.py", store).run()
    q1 = next(n for n in first.nodes if n.name == "quality")
    assert q1.previous == {}  # nothing before it
    write_spec(workdir, k=25)
    res = CliRunner().invoke(main, ["--store", store, "run", f"{workdir}/pipe.py", "--no-progress"],
                             terminal_width=250)
    assert res.exit_code == 0, res.output
    new = Project(workdir / "pipe.py", store)["quality"].metrics["pnmi"]
    assert f"pnmi={q1.metrics['pnmi']:.3f} → {new:.3f}" in res.output


def test_previous_numbers_come_only_from_comparable_results(workdir):
    """previous → new: after an annotation edit, the result it replaced; never another name's
    numbers; never an inertia fit on another sample or on features of another kind."""
    store = str(workdir / "store")
    spec = workdir / "pipe.py"
    spec.write_text(SPEC_TEMPLATE.format(k=20) + "km_b = km.with_(k=24)\n"
                    "quality_b = ClusterQuality(labels=Labels(kmeans=km_b))\n")
    first = {n.name: n for n in Project(spec, store).run().nodes}
    before = first["quality"].metrics["pnmi"]
    # an alignments edit: same fingerprint, recomputed; its "before" is what it replaced
    lines = (workdir / "alignments.tsv").read_text().splitlines()
    edited = [ln.replace("\tsil", "\tsp") if i % 3 == 0 else ln for i, ln in enumerate(lines)]
    (workdir / "alignments.tsv").write_text("\n".join(edited) + "\n")
    again = {n.name: n for n in Project(spec, store).run().nodes}
    assert again["quality"].previous["pnmi"] == before != again["quality"].metrics["pnmi"]

    # a new name (q_seed1) never takes another name's numbers, however close its spec
    spec.write_text(SPEC_TEMPLATE.format(k=20) + "km_b = km.with_(k=24)\n"
                    "q_seed1 = ClusterQuality(labels=Labels(kmeans=km.with_(seed=1)))\n")
    runs = {n.name: n for n in Project(spec, store).run().nodes}
    assert runs["q_seed1"].previous == {}

    # the same name on another fit fraction: inertia (on each fit's sample) is left out
    spec.write_text(SPEC_TEMPLATE.format(k=20).replace("fit_fraction=1.0", "fit_fraction=0.5"))
    runs = {n.name: n for n in Project(spec, store).run().nodes}
    assert "inertia" not in runs["km"].previous and "n_iter" in runs["km"].previous


def test_inputs_of_other_roles_are_not_comparable(tmp_path):
    """An MFCC k-means is no earlier version of a layer-feature one; quality against another
    phone set (other alignments) is no earlier version of this one."""
    from ssl_graph import Alignments, ClusterQuality, Corpus, KMeans, Labels, LayerFeatures
    from ssl_graph.graph.diff import same_roles
    from ssl_graph.presets import hubert
    from ssl_graph.specs.nodes import MFCC
    from ssl_graph.store.store import Store

    store = Store(str(tmp_path / "store"))
    corpus = Corpus(root="wav", alignments="a.tsv")
    km = KMeans(features=MFCC(corpus=corpus), k=20)
    it1 = hubert(corpus, targets=Labels(kmeans=km), size="tiny")
    km_layer = km.with_(features=LayerFeatures(model=it1, layer=1))
    assert same_roles(km.semantic(), km.with_(k=30).semantic(), store)
    assert not same_roles(km.semantic(), km_layer.semantic(), store)
    q = ClusterQuality(labels=Labels(kmeans=km))
    other_phones = q.with_(alignments=Alignments(corpus=corpus, path="a39.tsv"))
    assert same_roles(q.semantic(), q.with_(labels=Labels(kmeans=km.with_(k=30))).semantic(),
                      store)
    assert not same_roles(q.semantic(), other_phones.semantic(), store)


SPLIT_SPEC = SPEC_TEMPLATE + '''
from ssl_graph import Alignments
broken = ClusterQuality(labels=labels, alignments=Alignments(corpus=corpus, path="bad.tsv"))
'''


def test_cheap_scores_run_first_and_keep_going_finishes_independent_branches(workdir):
    from ssl_graph.runner import RunFailed

    (workdir / "pipe.py").write_text(SPLIT_SPEC.format(k=20))
    good = (workdir / "alignments.tsv").read_text().splitlines()
    (workdir / "bad.tsv").write_text("\n".join(good[:2]) + "\n")  # valid at plan time
    p = Project(workdir / "pipe.py", str(workdir / "store"))
    # make it fail at run time: the segment overruns the audio once its length is known
    cols = good[1].split("\t")
    (workdir / "bad.tsv").write_text(f"{good[0]}\n{cols[0]}\t0.0\t999.0\tsil\n")
    try:
        p.run(keep_going=True)
        raise AssertionError("expected RunFailed")
    except RunFailed as exc:
        report = exc.report
        assert "broken.alignments" in str(exc) and "segment ends at 999.000 s" in str(exc)
    status = {n.name: n.status for n in report.nodes}
    assert status["broken.alignments"] == "failed" and status["broken"] == "skipped"
    assert status["quality"] == "computed" and status["labels"] == "computed"
    res = CliRunner().invoke(main, ["--store", str(workdir / "store2"), "run",
                                    f"{workdir}/pipe.py", "--keep-going", "--no-progress"])
    assert res.exit_code == 1 and "error: 1 node(s) failed" in res.output
    assert "computed 6 of 8 nodes" in res.output


def test_schedule_runs_cheapest_ready_node_first(workdir):
    from ssl_graph.graph.plan import make_plan
    from ssl_graph.runner import schedule

    p = Project(workdir / "pipe.py", str(workdir / "store"))
    states = make_plan(p.pipeline, p.store)
    order = [st.name for st in schedule(p.pipeline, states, {id(s) for s in states.values()})]
    # the alignments check (cost 0) runs right after the corpus, before any feature work
    assert order[:2] == ["corpus", "quality.alignments"] and order[-1] == "quality"
    assert order.index("mfcc") < order.index("km") < order.index("labels")


def test_gc_after_a_comparison_keeps_both_variants_and_says_what_it_removes(workdir):
    from .conftest import write_spec

    store = str(workdir / "store")
    Project(workdir / "pipe.py", store).run()
    (workdir / "pipe_k30.py").write_text(SPEC_TEMPLATE.format(k=30))
    Project(workdir / "pipe_k30.py", store).run()
    runner = CliRunner()
    res = runner.invoke(main, ["--store", store, "gc"])
    assert res.exit_code == 0 and "freed 0.00 MB in 0 items" in res.output, res.output
    for spec in ("pipe.py", "pipe_k30.py"):  # both variants still fresh
        assert not any(st.stale for st in Project(workdir / spec, store).plan().values())
    write_spec(workdir, k=21)  # supersede pipe.py's km (and what follows)
    Project(workdir / "pipe.py", store).run()
    res = runner.invoke(main, ["--store", store, "gc", "--dry-run"], terminal_width=250)
    assert res.exit_code == 0
    assert "pipe.py:km (no name or plan points to it any more)" in res.output, res.output
    assert "pipe_k30.py" not in res.output


def test_progress_in_a_log_file_is_plain_lines(workdir):
    import subprocess
    import sys

    log = workdir / "run.log"
    with open(log, "w") as fh:  # stdout is a file, as under nohup or Slurm
        res = subprocess.run([sys.executable, "-m", "ssl_graph", "--store", str(workdir / "store"),
                              "run", str(workdir / "pipe.py")], stdout=fh, stderr=subprocess.STDOUT,
                             cwd=workdir)
    text = log.read_text()
    assert res.returncode == 0, text
    assert "mfcc: 0/12 (0.0 %), 0 s" in text and "mfcc: 12/12 (100.0 %)" in text, text
    assert "\x1b[" not in text.split("run:")[0]  # no terminal control codes before the table


def test_report_over_variants_has_one_row_per_variant_and_the_pnmi_vs_k_plot(workdir):
    store = str(workdir / "store")
    specs = []
    for k in (20, 30, 40):
        spec = workdir / f"pipe_k{k}.py"
        spec.write_text(SPEC_TEMPLATE.format(k=k))
        Project(spec, store).run()
        specs.append(str(spec))
    out = workdir / "report"
    res = CliRunner().invoke(main, ["--store", store, "report", *specs, "--out", str(out)],
                             terminal_width=250)
    assert res.exit_code == 0, res.output
    page = (out / "report.html").read_text()
    assert page.count("<td>ClusterQuality</td>") == 3 and "pipe_k40" in page
    assert (out / "pnmi-vs-k.png").stat().st_size > 1000 and "PNMI vs k" in page
    assert "reproducibility" in page and "ssl_graph" in page and "utterances" in page
    from ssl_graph.report_variants import variant_rows

    rows = [r for r in variant_rows([Project(s, store) for s in specs])
            if r["kind"] == "ClusterQuality"]
    assert [r["k"] for r in rows] == [20, 30, 40] and len({r["pnmi"] for r in rows}) == 3
    # the same table as Markdown and CSV, printed and written beside the page
    res = CliRunner().invoke(main, ["--store", store, "report", *specs, "--out", str(out),
                                    "--format", "md"])
    assert res.exit_code == 0 and res.output == (out / "report.md").read_text(), res.output
    header, rule, *body = res.output.splitlines()
    assert header.startswith("| ") and "pnmi" in header and rule.startswith("|---")
    assert sum(f"{r['pnmi']:.3f}" in res.output for r in rows) == 3
    res = CliRunner().invoke(main, ["--store", store, "report", *specs, "--out", str(out),
                                    "--format", "csv"])
    import csv
    import io

    table = list(csv.DictReader(io.StringIO((out / "report.csv").read_text())))
    assert res.exit_code == 0 and res.output == (out / "report.csv").read_text()
    pnmi = sorted(float(r["pnmi"]) for r in table if r["pnmi"])
    assert pnmi == sorted(r["pnmi"] for r in rows)  # full precision in CSV


def test_a_first_run_shows_no_deltas_against_its_own_siblings(workdir):
    """quality2 is not an earlier version of quality: a fresh store's first run has no deltas."""
    spec = SPEC_TEMPLATE.format(k=20) + "quality2 = ClusterQuality(labels=Labels(kmeans=km.with_(k=9)))\n"
    (workdir / "pipe.py").write_text(spec)
    report = Project(workdir / "pipe.py", str(workdir / "store")).run()
    assert all(n.previous == {} for n in report.nodes)
    (workdir / "pipe.py").write_text(spec + "quality3 = ClusterQuality(labels=Labels(kmeans=km.with_(k=7)))\n")
    plan = Project(workdir / "pipe.py", str(workdir / "store")).plan()
    assert plan["quality3"].reasons == ["new"]  # not "vs pipe.py:quality": that is a sibling


def test_variant_plots_join_only_comparable_points():
    """Series by label; variants join a line unless two put a point at one x (then each is
    its own series, named with its spec), so no line zig-zags between variants."""
    from ssl_graph.report_series import comparable_series

    joined = comparable_series({("MFCC, 40 phones", "pipe_k20"): {(20, 0.5)},
                                ("MFCC, 40 phones", "pipe_k30"): {(30, 0.6)},
                                ("MFCC, 39 phones", "pipe_k30"): {(30, 0.7)}})
    assert joined == {"MFCC, 40 phones": {(20, 0.5), (30, 0.6)},
                      "MFCC, 39 phones": {(30, 0.7)}}
    split = comparable_series({("pretrained", "a"): {(2.0, 0.6)},
                               ("pretrained", "b"): {(2.0, 0.5)}})
    assert split == {"pretrained (a)": {(2.0, 0.6)}, "pretrained (b)": {(2.0, 0.5)}}
