"""Workers write their own parts (``exec/part_writer.py``); the coordinator checks each
descriptor and commits the index. Real runs on a process pool and a 2-worker Dask LocalCluster."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from ssl_graph.api import Project
from ssl_graph.exec.part_writer import CRASH_AFTER_PART_ENV, group_batches, prepare, write_part
from ssl_graph.ops.base import get_op
from ssl_graph.ops.mfcc import mfcc_job
from ssl_graph.store.gc import collect
from ssl_graph.store.ragged import RaggedWriter
from ssl_graph.store.verify import verify_node

from ..conftest import make_corpus, write_spec
from .test_executors import outputs

pytest.importorskip("dask.distributed")

WORKER_PART = re.compile(r"parts/j-[0-9a-f]{32}")
PER_UTT = ("mfcc", "labels")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("parts")
    make_corpus(d, 8)
    write_spec(d, k=8)
    return d


@pytest.fixture(scope="module")
def local(corpus_dir, tmp_path_factory):
    project = Project(corpus_dir / "pipe.py", str(tmp_path_factory.mktemp("local") / "store"))
    project.run()
    for name in PER_UTT:  # in-process: the coordinator's writer, numbered parts
        assert set(project.store.record(project[name].key)["parts"]) == {"parts/00001"}
    return project


@pytest.fixture(scope="module")
def reference(local):
    return outputs(local)


def layout(project: Project, name: str, part: str) -> dict:
    """A part's zarr metadata, shape aside: what a reader relies on besides the manifest."""
    import json

    meta = json.loads(project.store.backend.read_bytes(f"{project[name].key}/{part}/zarr.json"))
    meta.pop("shape")
    return meta


def disk_parts(project: Project, name: str) -> set[str]:
    key = project[name].key
    return {f"parts/{p}" for p in project.store.backend.listdir(f"{key}/parts") if p != "zarr.json"}


def assert_worker_written_and_clean(project: Project, local: Project) -> None:
    for name in PER_UTT:
        key = project[name].key
        rec = project.store.record(key)
        index = project.store.index(key, rec)
        used = {e[0] for e in index.values()}
        jobs = -(-len(index) // get_op(rec["kind"]).batch_utts)  # 8 utterances: 1 batch a task
        assert used == set(rec["parts"]) and len(used) == jobs  # one part per task
        assert all(WORKER_PART.fullmatch(p) for p in used), sorted(used)
        for part, manifest in rec["parts"].items():  # laid out as the coordinator's writer does
            assert layout(project, name, part) == layout(local, name, "parts/00001")
            assert "zarr.json" in manifest["files"] and manifest["chunk_rows"] == \
                local.store.record(local[name].key)["parts"]["parts/00001"]["chunk_rows"]
        check = verify_node(project.store, key, name)
        assert check.ok, check.problems


@pytest.mark.parametrize("executor", ["pool", "dask"])
def test_workers_write_parts_the_coordinator_commits(corpus_dir, tmp_path, local, reference,
                                                     executor):
    project = Project(corpus_dir / "pipe.py", str(tmp_path / "store"))
    project.run(executor=executor, workers=2)
    assert outputs(project) == reference
    assert_worker_written_and_clean(project, local)
    assert collect(project.store, dry_run=True).removed == []  # nothing left unreferenced


@pytest.mark.parametrize("executor", ["pool", "dask"])
def test_part_of_a_worker_killed_before_replying_is_garbage(corpus_dir, tmp_path, local,
                                                            reference, monkeypatch, executor):
    marker = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_AFTER_PART_ENV, str(marker))  # inherited by the workers
    project = Project(corpus_dir / "pipe.py", str(tmp_path / "store"))
    project.run(executor=executor, workers=2)
    assert marker.exists()  # a worker wrote a whole part, then died without replying
    assert outputs(project) == reference  # its utterances were redone under a fresh part name
    assert_worker_written_and_clean(project, local)
    orphans = {f"{project[n].key}/{p}" for n in PER_UTT
               for p in disk_parts(project, n) - set(project.store.record(project[n].key)["parts"])}
    assert orphans  # at least the dead worker's part
    report = collect(project.store)
    assert set(k for k, _ in report.removed) == orphans
    assert all("unreferenced part" in report.owners[k] for k in orphans)
    project = Project(corpus_dir / "pipe.py", str(tmp_path / "store"))
    assert outputs(project) == reference
    assert_worker_written_and_clean(project, local)


def _mfcc_job_with_an_inf(job):
    """MFCC as a worker computes it, with one Inf in utterance $INF_UTT (module level: pool
    workers start from a forkserver and import it, so a monkeypatch would not reach them)."""
    import os

    outs = mfcc_job(job)
    for (_, utt, *_), out in zip(job, outs):
        if utt == os.environ["INF_UTT"]:
            out[2, 1] = np.inf
    return outs


def test_non_finite_values_from_a_worker_are_refused_by_name(corpus_dir, tmp_path, monkeypatch):
    from ssl_graph.ops.mfcc import MFCCOp

    victim = sorted(p.stem for p in (corpus_dir / "wav").glob("*.flac"))[5]
    monkeypatch.setenv("INF_UTT", victim)  # workers take the environment of the run's start
    monkeypatch.setattr(MFCCOp, "work", staticmethod(_mfcc_job_with_an_inf))
    project = Project(corpus_dir / "pipe.py", str(tmp_path / "store"))
    with pytest.raises(ValueError, match=rf"^mfcc: utterance '{victim}': output has 1 non-finite"):
        project.run(executor="pool", workers=2)
    project = Project(corpus_dir / "pipe.py", str(tmp_path / "store"))
    rec = project.store.record(project["mfcc"].key)
    done = set(project.store.index(project["mfcc"].key, rec)) if rec else set()
    assert victim not in done  # (the batches before it are kept: the next run resumes)
    assert all(WORKER_PART.fullmatch(p) for p in (rec or {}).get("parts", {}))


def test_tasks_group_batches_into_parts_of_up_to_64_utterances():
    batches = [[f"u{i}-{j}" for j in range(4)] for i in range(1000)]  # MFCC: 4 a batch
    assert group_batches(batches[:2], 4, 2) == [[b] for b in batches[:2]]  # both workers busy
    groups = group_batches(batches, 4, 2)
    assert [b for g in groups for b in g] == batches  # in order, each batch once
    assert {len(g) for g in groups[:-1]} == {16} and len(groups[-1]) == 1000 % 16  # 64 a part
    assert group_batches(batches[:40], 256, 2) == [[b] for b in batches[:40]]  # Labels: 256
    small = group_batches(batches[:155], 4, 2)  # 620 utterances: no worker idles at the end
    assert len(small) >= 2 * 15 and [b for g in small for b in g] == batches[:155]


def _descriptor(tmp_path):
    """A real part written by ``write_part`` (in this process) for three demo utterances."""
    from ssl_graph.store.store import Store

    work = tmp_path / "c"
    utts = make_corpus(work, 3)
    store = Store(str(tmp_path / "store"))
    key = "nodes/mfcc-test"
    prepare(store, key)
    job = [(str(work / "wav" / f"{u}.flac"), u, 16000, False, 39) for u in utts]
    return store, key, utts, write_part(mfcc_job, store.url, key, (utts, [job])), mfcc_job(job)


def test_coordinator_checks_the_descriptor_before_committing(tmp_path):
    store, key, utts, desc, values = _descriptor(tmp_path)
    assert WORKER_PART.fullmatch(desc["part"])
    bad = [({**desc, "utts": utts[::-1]}, "other utterances"),
           ({**desc, "rows": desc["rows"][:2]}, "one row range per utterance"),
           ({**desc, "part": "../elsewhere"}, "bad part name"),
           ({**desc, "rows": [[0, 1], *desc["rows"][1:]]}, "do not tile")]
    for wrong, why in bad:
        writer = RaggedWriter(store, key, {"name": "mfcc"}, {})
        with pytest.raises(ValueError, match=f"^{key}: the part a worker wrote .*{why}"):
            writer.adopt(utts, wrong, ["v"] * 3)
        assert not writer.pending
    chunk = next(f for f in desc["manifest"]["files"] if f.startswith("c/"))
    path = store.local_root / key / desc["part"] / chunk
    saved = path.read_bytes()
    path.write_bytes(saved[:-8])  # torn: the worker's file is not what its manifest says
    with pytest.raises(ValueError, match="missing or of the wrong size"):
        RaggedWriter(store, key, {"name": "mfcc"}, {}).adopt(utts, desc, ["v"] * 3)
    assert store.record(key) is None  # nothing committed
    path.write_bytes(saved)
    writer = RaggedWriter(store, key, {"name": "mfcc"}, {})
    writer.adopt(utts, desc, ["v"] * 3)
    with pytest.raises(ValueError, match="already used"):  # the same part twice
        writer.adopt(utts, desc, ["v"] * 3)
    writer.commit(final=True)
    from ssl_graph.store.ragged import RaggedReader

    reader = RaggedReader(store, key)
    for u, v in zip(utts, values):
        assert reader.get(u).tobytes() == v.tobytes()
    assert verify_node(store, key).ok


def test_non_finite_job_writes_no_part(tmp_path):
    store, key, utts, _, values = _descriptor(tmp_path)
    shutil.rmtree(store.local_root / key / "parts")
    prepare(store, key)
    got = write_part(_inf_job, store.url, key, (utts, [values]))
    assert isinstance(got, list) and not np.isfinite(got[1]).all()  # values go back, unwritten
    assert store.backend.listdir(f"{key}/parts") == ["zarr.json"]


def _inf_job(values):
    out = [v.copy() for v in values]
    out[1][0, 0] = np.inf
    return out


def test_a_failed_worker_write_leaves_no_part(tmp_path):
    store, key, utts, _, values = _descriptor(tmp_path)
    shutil.rmtree(store.local_root / key / "parts")
    prepare(store, key)
    mixed = [values[0], values[1][:, :13], values[2]]  # an op giving utterances other shapes
    with pytest.raises(ValueError, match=rf"utterance '{utts[1]}' has frames of float32 \(13,\)"):
        write_part(_same, store.url, key, (utts, [mixed]))
    assert store.backend.listdir(f"{key}/parts") == ["zarr.json"]


def _same(values):
    return values
