"""The CLI through click's runner, query round trips, and the no-torch rule for plan/query."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
from click.testing import CliRunner

from ssl_graph.audio.io import read_audio
from ssl_graph.audio.mfcc import mfcc_hubert
from ssl_graph.cli import main
from ssl_graph.kernels.assign import assign_labels

from .conftest import write_spec


def cli(workdir, *args):
    res = CliRunner().invoke(main, ["--store", str(workdir / "store"), *args])
    return res


def test_plan_run_status_explain_show_ls_gc_graph(workdir):
    spec = str(workdir / "pipe.py")
    res = cli(workdir, "plan", spec)
    assert res.exit_code == 0 and "6 of 6 nodes stale; `run` without node names computes 6" in res.output
    assert "new" in res.output
    res = cli(workdir, "run", spec, "--no-progress")
    assert res.exit_code == 0, res.output
    assert "computed 6 of 6 nodes" in res.output and "pnmi=" in res.output
    res = cli(workdir, "run", spec, "--no-progress")
    assert "computed 0 of 6 nodes" in res.output
    res = cli(workdir, "status", spec)
    assert res.exit_code == 0 and res.output.count("fresh") == 6
    assert "size" in res.output and " kB" in res.output
    write_spec(workdir, k=25)
    res = cli(workdir, "explain", f"{spec}:km")
    assert res.exit_code == 0
    assert "km (KMeans" in res.output and "k: 20 → 25" in res.output
    res = cli(workdir, "explain", f"{spec}:labels")
    assert "upstream changed: km" in res.output
    res = cli(workdir, "show", f"{spec}:quality")
    shown = json.loads(res.output)
    assert shown["spec"]["kind"] == "ClusterQuality" and shown["record"] is None
    assert shown["stored"]["metrics"]["pnmi"] > 0 and "not been computed" in shown["note"]
    res = cli(workdir, "run", spec, "km", "--no-progress", "-q")  # a target and its inputs only
    assert "computed 1 of 6 nodes" in res.output
    res = cli(workdir, "ls", "pipe")
    assert "pipe:km" in res.output and res.exit_code == 0
    res = cli(workdir, "gc", "--dry-run")
    assert "would remove nodes/kmeans-" in res.output  # the k=20 fit is no longer named
    res = cli(workdir, "graph", spec, "--out", str(workdir / "g.png"))
    assert res.exit_code == 0 and (workdir / "g.png").stat().st_size > 1000


def test_query_round_trip_matches_direct_computation(workdir, tmp_path):
    spec = str(workdir / "pipe.py")
    assert cli(workdir, "run", spec, "--no-progress").exit_code == 0
    utt = sorted(p.stem for p in (workdir / "wav").glob("*.flac"))[2]
    out = tmp_path / "x.npy"
    res = cli(workdir, "query", "features", f"{spec}:mfcc", "--utt", utt, "--out", str(out))
    assert res.exit_code == 0, res.output
    expected = mfcc_hubert(read_audio(workdir / "wav" / f"{utt}.flac", utt))
    np.testing.assert_array_equal(np.load(out), expected)
    res = cli(workdir, "query", "labels", f"{spec}:labels", "--utt", utt, "--json")
    got = json.loads(res.output)
    centroids = __import__("ssl_graph").load(spec, str(workdir / "store"))["km"].centroids
    np.testing.assert_array_equal(got["data"], assign_labels(expected, centroids)[0])
    # a KMeans node answers labels() too (the Python API's documented shortcut)
    api = __import__("ssl_graph").load(spec, str(workdir / "store"))
    np.testing.assert_array_equal(api["km"].labels(utt), got["data"])
    res = cli(workdir, "query", "utts", f"{spec}:labels", "--json")
    assert utt in json.loads(res.output)


def test_errors_are_one_line(workdir):
    spec = str(workdir / "pipe.py")
    res = cli(workdir, "query", "features", f"{spec}:mfcc", "--utt", "nope")
    assert res.exit_code == 1
    assert res.output.strip().startswith("error: node 'mfcc'") and "ssl-graph run" in res.output
    cli(workdir, "run", spec, "--no-progress")
    res = cli(workdir, "query", "features", f"{spec}:mfcc", "--utt", "nope")
    assert res.output.strip().startswith("error: 'mfcc' has no utterance 'nope'")
    res = cli(workdir, "plan", spec.replace("pipe", "nothere"))
    assert res.exit_code == 1 and "not found" in res.output
    res = cli(workdir, "explain", f"{spec}:nonode")
    assert "no node named 'nonode'" in res.output
    for r in (res,):
        assert len(r.output.strip().splitlines()) == 1


def test_plan_and_query_do_not_import_torch(workdir):
    spec = str(workdir / "pipe.py")
    assert cli(workdir, "run", spec, "--no-progress").exit_code == 0
    code = (
        "import sys, ssl_graph\n"
        f"p = ssl_graph.load({spec!r}, {str(workdir / 'store')!r})\n"
        "p.plan(); p.run()\n"
        "u = p['mfcc'].utterances()[0]\n"
        "p['mfcc'].features(u); p['labels'].labels(u); p['km'].labels(u)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"



def test_cli_in_another_process_leaves_its_collector_and_plugins_alone(workdir):
    """Only the ``ssl-graph`` program freezes what it imported and loaded and goes without
    pydantic plugins (``collector.py``, ``cli/__init__.py``); a notebook or a test calling the
    CLI in-process keeps its collector running, nothing frozen, its environment as it was."""
    spec, store = str(workdir / "pipe.py"), str(workdir / "store")
    code = (
        "import gc, os\n"
        "from click.testing import CliRunner\n"
        "from ssl_graph.cli import main\n"
        f"res = CliRunner().invoke(main, ['--store', {store!r}, 'plan', {spec!r}])\n"
        "assert res.exit_code == 0 and '6 of 6 nodes stale' in res.output, res.output\n"
        "print(gc.isenabled(), gc.get_freeze_count(), 'PYDANTIC_DISABLE_PLUGINS' in os.environ)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["True", "0", "False"], out.stdout + out.stderr

def test_store_after_the_subcommand_and_plan_like_run(workdir, monkeypatch):
    spec = str(workdir / "pipe.py")
    store = str(workdir / "store")
    res = CliRunner().invoke(main, ["run", spec, "km", "--no-progress", "--store", store])
    assert res.exit_code == 0 and "computed 3 of 6 nodes" in res.output, res.output
    assert (workdir / "store" / "nodes").is_dir()
    res = CliRunner().invoke(main, ["plan", spec, f"--store={store}"])
    assert "3 of 6 nodes stale" in res.output, res.output  # the same store, read after `plan`
    # plan takes node names as run does: just them and their inputs
    res = CliRunner().invoke(main, ["plan", spec, "quality", "--store", store])
    assert res.exit_code == 0 and "3 of 6 nodes stale; `run quality` computes 3" in res.output
    res = CliRunner().invoke(main, ["plan", spec, "km", "--store", store])
    assert "0 of 3 nodes stale" in res.output and "quality" not in res.output, res.output
    res = CliRunner().invoke(main, ["plan", spec, "nope", "--store", store])
    assert res.exit_code == 1 and "nope" in res.output and "km" in res.output
    # and --set / $SSL_GRAPH_SET like run: a semantic field is refused by both
    res = CliRunner().invoke(main, ["plan", spec, "--set", "km.k=3", "--store", store])
    assert res.exit_code == 1 and "'k' is a semantic field" in res.output, res.output
    monkeypatch.setenv("SSL_GRAPH_SET", "km.k=3")
    res = CliRunner().invoke(main, ["plan", spec, "--store", store])
    assert res.exit_code == 1 and "'k' is a semantic field" in res.output, res.output


def test_plan_prints_utterance_ids_as_they_are(tmp_path):
    """Names in the table are not read as rich emoji codes: ``spk:dog:02`` is not ``spk🐶02``."""
    from .conftest import DEMO

    wav = tmp_path / "wav"
    wav.mkdir()
    first, second = sorted((DEMO / "wav").glob("*.flac"))[:2]
    shutil.copy2(first, wav / "spk:cat:01.flac")
    (tmp_path / "colons.py").write_text(
        'from ssl_graph import MFCC, Corpus\n\ncorpus = Corpus(root="wav", glob="*.flac")\n'
        "mfcc = MFCC(corpus=corpus)\n")
    spec = str(tmp_path / "colons.py")
    assert cli(tmp_path, "run", spec, "--no-progress", "-q").exit_code == 0
    shutil.copy2(second, wav / "spk:dog:02.flac")
    res = cli(tmp_path, "plan", spec)
    assert res.exit_code == 0, res.output
    assert "+1 utterance (spk:dog:02)" in res.output and "\N{DOG FACE}" not in res.output
