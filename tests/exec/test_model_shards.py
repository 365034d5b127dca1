"""LayerFeatures, LayerSweep and ClusterQuality counting on executors: a real process pool and a real
2-worker Dask LocalCluster give the bytes of an in-process run, also when a worker dies, and a
long-lived worker never serves a model whose weights were replaced under the same key."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest

from ssl_graph.api import Project
from ssl_graph.exec.executors import Lazy
from ssl_graph.exec.jobs import CRASH_ENV
from ssl_graph.store.verify import verify_node

from ..conftest import make_corpus

pytest.importorskip("dask.distributed")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

N_UTTS = 20  # LayerFeatures runs 16 utterances a batch: two batches, one per worker
WORKER_PART = re.compile(r"parts/j-[0-9a-f]{32}")
SPEC = '''
from ssl_graph import (ClusterQuality, Corpus, KMeans, LayerFeatures, LayerSweep, Labels,
                       PretrainedModel)

corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="alignments.tsv")
released = PretrainedModel(path="released")
feats = LayerFeatures(model=released, layer=2, corpus=corpus, chunk_seconds=1.5)
sweep = LayerSweep(model=released, layers=(1, 2), corpus=corpus)
sliced = sweep.layer(1)
km = KMeans(features=feats, k=6, fit_fraction=1.0, seed=0, max_iter=10)
labels = Labels(kmeans=km)
quality = ClusterQuality(labels=labels)
'''
IN_WORKERS = ("feats", "sweep", "sliced", "labels")  # per-utterance nodes run by workers


def save_released(directory, seed: int) -> None:
    """A tiny HuBERT (group-norm encoder) as transformers writes it."""
    torch.manual_seed(seed)
    cfg = transformers.HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    transformers.HubertModel(cfg).save_pretrained(directory)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    make_corpus(d, N_UTTS)
    save_released(d / "released", seed=0)
    (d / "pipe.py").write_text(SPEC)
    return d


def _bytes(a) -> bytes:
    a = np.asarray(a)
    return f"{a.dtype}{a.shape}".encode() + a.tobytes()


def outputs(project: Project) -> dict[str, bytes]:
    out = {}
    for name in ("feats", "sliced", "sweep"):
        utts = project[name].utterances()
        assert len(utts) == N_UTTS
        out.update({f"{name}/{u}": _bytes(x)
                    for u, x in zip(utts, project[name].features_many(utts))})
    out.update({f"labels/{u}": _bytes(project["labels"].labels(u))
                for u in project["labels"].utterances()})
    rec = project["sweep"].record  # counted by whoever ran the batches, summed here
    out["sweep:counts"] = repr((rec["forward_passes"], rec["utterances"])).encode()
    out["joint"] = _bytes(project["quality"].array("joint"))
    out["metrics"] = repr(sorted(project["quality"].metrics.items())).encode()
    return out


def run(corpus_dir, tmp_path, **kw) -> Project:
    project = Project(corpus_dir / "pipe.py", str(tmp_path / "store"))
    project.run(progress=False, **kw)
    return project


@pytest.fixture(scope="module")
def reference(corpus_dir, tmp_path_factory):
    project = run(corpus_dir, tmp_path_factory.mktemp("local"))
    for name in IN_WORKERS:  # in-process: the coordinator's own numbered parts
        assert set(project.store.record(project[name].key)["parts"]) == {"parts/00001"}
    return outputs(project)


def worker_parts(project: Project, name: str) -> tuple[set[str], set[str]]:
    """(parts the record commits, parts on disk) of a node."""
    key = project[name].key
    committed = set(project.store.record(key)["parts"])
    on_disk = {f"parts/{p}" for p in project.store.backend.listdir(f"{key}/parts")
               if p != "zarr.json"}
    assert committed and all(WORKER_PART.fullmatch(p) for p in committed), sorted(committed)
    check = verify_node(project.store, key, name)
    assert check.ok, check.problems
    return committed, on_disk


def test_pool_is_bit_identical(corpus_dir, tmp_path, reference):
    project = run(corpus_dir, tmp_path, executor="pool", workers=2)
    assert outputs(project) == reference
    committed, _ = worker_parts(project, "feats")
    assert len(committed) == 2  # two tasks, each written by the worker that ran it
    worker_parts(project, "sliced")


def test_dask_is_bit_identical_and_the_coordinator_builds_no_model(corpus_dir, tmp_path,
                                                                   reference, monkeypatch):
    import ssl_graph.nn

    run(corpus_dir, tmp_path, targets=["released"])  # converting the checkpoint builds one

    def refused(spec):
        raise AssertionError("the coordinator built a model")

    monkeypatch.setattr(ssl_graph.nn, "build_model", refused)  # this process only: spawned
    project = run(corpus_dir, tmp_path, executor="dask", workers=2)  # workers are unpatched
    assert outputs(project) == reference
    for name in IN_WORKERS:
        worker_parts(project, name)


def test_short_audio_is_refused_before_any_worker_starts(corpus_dir, tmp_path):
    import soundfile as sf

    work = tmp_path / "w"
    shutil.copytree(corpus_dir, work)
    sf.write(work / "wav" / "tiny-0000-0000.flac", np.zeros(200, np.float32), 16000)
    from ssl_graph.audio.io import AudioError
    from ssl_graph.runner import run_plan

    project = Project(work / "pipe.py", str(work / "store"))
    executor = Lazy("dask", 2)
    with pytest.raises(AudioError, match=r"^feats: 1 utterance\(s\) shorter than 400 samples"):
        run_plan(project.pipeline, project.store, ["feats"], progress=False, executor=executor)
    assert executor._ex is None  # refused in the coordinator: no cluster was started


@pytest.mark.parametrize("executor", ["pool", "dask"])
def test_a_feature_worker_dying_redoes_only_its_job(corpus_dir, tmp_path, reference,
                                                    monkeypatch, executor):
    marker = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_ENV, str(marker))  # inherited by the workers started below
    project = run(corpus_dir, tmp_path, executor=executor, workers=2)
    assert marker.exists()  # a worker really died, in its first job (a feature node's)
    assert outputs(project) == reference
    for name in IN_WORKERS:
        committed, on_disk = worker_parts(project, name)
        if executor == "dask":  # the dead worker's job wrote nothing; no finished job reran
            assert on_disk == committed


@pytest.mark.parametrize("executor", ["pool", "dask"])
def test_quality_shards_on_workers_count_what_the_coordinator_counts(
        corpus_dir, tmp_path, reference, monkeypatch, executor):
    run(corpus_dir, tmp_path, targets=["labels", "sliced"])  # in-process but the counting
    marker = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_ENV, str(marker))
    report = run(corpus_dir, tmp_path, executor=executor, workers=2).run(progress=False)
    assert report.computed == []
    project = Project(corpus_dir / "pipe.py", str(tmp_path / "store"))
    assert project["quality"].record["n_utts"] == N_UTTS
    assert marker.exists()  # the only work on workers was counting: a shard's worker died
    got = outputs(project)
    assert got["joint"] == reference["joint"] and got["metrics"] == reference["metrics"]


def _logged(job):
    """A shard that notes each time it runs (O_APPEND: whole lines from any process)."""
    log, i = job
    with open(log, "a") as fh:
        fh.write(f"{i} {os.getpid()}\n")
    return i * i


@pytest.mark.parametrize("executor", ["pool", "dask"])
def test_map_returns_in_job_order_and_reruns_only_the_dead_workers_job(tmp_path, monkeypatch,
                                                                       executor):
    from ssl_graph.ops.base import RunContext

    marker, log = tmp_path / "crashed", tmp_path / "log"
    monkeypatch.setenv(CRASH_ENV, str(marker))
    local = RunContext(store=None, states={}, executor=Lazy("local"))
    assert not local.in_workers and local.parallel == 1
    assert list(local.map(_logged, [(str(log), i) for i in range(3)])) == [0, 1, 4]
    assert not marker.exists()  # in-process: never injected
    log.unlink()
    lazy = Lazy(executor, 2)
    try:
        ctx = RunContext(store=None, states={}, executor=lazy)
        assert ctx.in_workers and ctx.parallel == 2
        got = list(ctx.map(_logged, [(str(log), i) for i in range(24)]))
    finally:
        lazy.close()
    assert got == [i * i for i in range(24)] and marker.exists()
    runs = sorted(int(line.split()[0]) for line in log.read_text().splitlines())
    assert set(runs) == set(range(24))
    if executor == "dask":  # the job that killed its worker never started; nothing ran twice
        assert runs == list(range(24))


def test_a_long_lived_dask_worker_serves_the_new_weights(corpus_dir, tmp_path):
    """A released checkpoint replaced in place keeps its node's key but not its content
    version: workers of a cluster that outlives the run build the new model."""
    from dask.distributed import LocalCluster

    work = tmp_path / "w"
    shutil.copytree(corpus_dir, work)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        first = run(work, work, targets=["feats"], executor="dask",
                    scheduler=cluster.scheduler_address)
        key, old = first["feats"].key, first["feats"].features_many(first["feats"].utterances())
        shutil.rmtree(work / "released")
        save_released(work / "released", seed=1)
        second = run(work, work, targets=["feats"], executor="dask",
                     scheduler=cluster.scheduler_address)
    assert second["feats"].key == key and second["released"].key == first["released"].key
    new = second["feats"].features_many(second["feats"].utterances())
    fresh = run(work, tmp_path / "fresh", targets=["feats"])  # in-process, the new weights
    want = fresh["feats"].features_many(fresh["feats"].utterances())
    assert all(np.array_equal(a, b) for a, b in zip(new, want))
    assert not any(np.array_equal(a, b) for a, b in zip(new, old))


def test_a_hubert_whose_heads_need_its_label_nodes_is_built_in_the_worker(corpus_dir, tmp_path):
    """A HuBERT's spec holds the Labels nodes that size its heads: the worker gets the spec
    value (not its fingerprint-only JSON) and the weights from the store, and extracts what the
    coordinator would."""
    from safetensors.torch import save

    from ssl_graph import MFCC, Corpus, KMeans, Labels
    from ssl_graph.audio.io import read_audio
    from ssl_graph.exec.executors import ProcessPool
    from ssl_graph.nn import build_model
    from ssl_graph.ops.layer_features import extract, layer_features_job
    from ssl_graph.specs.components_presets import hubert_model
    from ssl_graph.store.store import Store
    from ssl_graph.train.threads import fixed_threads

    labels = Labels(kmeans=KMeans(features=MFCC(corpus=Corpus(root=str(corpus_dir / "wav"))),
                                  k=7))
    spec = hubert_model("tiny", labels)
    torch.manual_seed(0)
    net = build_model(spec).eval()
    store, key = Store(str(tmp_path / "store")), "nodes/Pretrain-hubert"
    store.backend.write_bytes(f"{key}/model.safetensors",
                              save({k: v.contiguous() for k, v in net.state_dict().items()}))
    wavs = sorted((corpus_dir / "wav").glob("*.flac"))[:4]
    ref = {"url": store.url, "key": key, "version": "v1", "config": spec}
    jobs = [{"sweep": None, "model": ref, "device": "cpu", "threads": 1, "layer": 1,
             "chunk": 24000.0, "min_samples": 400, "sample_rate": 16000, "resample": False,
             "audio": [(p.stem, p)]} for p in wavs]
    pool = ProcessPool(2)
    try:
        got = [out for outs in pool.imap(layer_features_job, jobs) for out in outs]
    finally:
        pool.close()
    with fixed_threads(1):
        want = [extract(net, "cpu", read_audio(p, p.stem, 16000), 1, 24000.0, 400) for p in wavs]
    assert len(got) == 4 and all(a.shape == b.shape and a.tobytes() == b.tobytes()
                                 for a, b in zip(got, want))
