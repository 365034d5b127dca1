"""Dask tasks carry chunks of jobs (sized from the jobs' measured time): results still come
back one per job in job order, and a run whose jobs were chunked stores exactly what an
in-process run stores. Real 2-worker LocalClusters (loopback), stopped at the end."""

from __future__ import annotations

import numpy as np
import pytest

from ssl_graph.api import Project
from ssl_graph.exec import dask_executor
from ssl_graph.ops.mfcc import mfcc_job

from ..conftest import DEMO, make_corpus

pytest.importorskip("dask.distributed")


def test_chunks_grow_to_the_task_time_and_stay_under_a_workers_share():
    chunks = dask_executor.Chunks(total=160, parallel=2)
    assert chunks.size() == 1  # nothing measured yet
    chunks.record(4, 0.04)  # 10 ms a job: 20 jobs make TASK_SECONDS
    assert chunks.size() == 10  # capped: 160 jobs / (8 tasks x 2 workers)
    unknown = dask_executor.Chunks(total=0, parallel=2)
    unknown.record(4, 0.04)
    assert unknown.size() == round(dask_executor.TASK_SECONDS / 0.01)
    unknown.record(1, 10.0)  # slow jobs: one per task
    assert unknown.size() == 1
    tiny = dask_executor.Chunks(total=0, parallel=2)
    tiny.record(1000, 0.001)
    assert tiny.size() == dask_executor.MAX_CHUNK


def test_chunked_results_come_back_per_job_in_order(monkeypatch):
    monkeypatch.setattr(dask_executor, "IN_FLIGHT", 1)  # 2 one-job tasks, then chunks
    monkeypatch.setattr(dask_executor, "TASKS_PER_WORKER", 1)  # of up to 6 of the 12 jobs
    monkeypatch.setattr(dask_executor, "TASK_SECONDS", 1e3)  # however loaded the machine
    files = sorted((DEMO / "wav").glob("*.flac"))[:24]
    jobs = [[(f, f.stem, 16000, False, 39) for f in files[i:i + 2]] for i in range(0, 24, 2)]
    ex = dask_executor.Dask(None, 2)
    try:
        got = list(ex.imap(mfcc_job, jobs))
        assert ex.tasks_sent < ex.jobs_sent == len(jobs)  # some tasks carried several jobs
    finally:
        ex.close()
    want = [mfcc_job(job) for job in jobs]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert [a.tobytes() for a in g] == [a.tobytes() for a in w]


def store_contents(project: Project) -> dict:
    """Every stored MFCC frame (bytes, dtype, shape) and its utterance, in the index's order."""
    node = project["mfcc"]
    utts = node.utterances()
    return {u: (a.dtype.str, a.shape, a.tobytes())
            for u, a in zip(utts, map(np.asarray, node.features_many(utts)))}


def test_a_chunked_dask_run_stores_what_in_process_stores(tmp_path, monkeypatch):
    make_corpus(tmp_path, 24)
    (tmp_path / "pipe.py").write_text("from ssl_graph import MFCC, Corpus\n"
                                      "mfcc = MFCC(corpus=Corpus(root='wav'))\n")
    local = Project(tmp_path / "pipe.py", str(tmp_path / "local"))
    local.run()
    monkeypatch.setattr(dask_executor, "IN_FLIGHT", 1)  # 2 one-job tasks, then chunks
    monkeypatch.setattr(dask_executor, "TASKS_PER_WORKER", 1)  # of up to 3 of the 6 jobs
    monkeypatch.setattr(dask_executor, "TASK_SECONDS", 1e3)
    sent = []
    close = dask_executor.Dask.close

    def record(self):
        sent.append((self.tasks_sent, self.jobs_sent))
        close(self)

    monkeypatch.setattr(dask_executor.Dask, "close", record)
    dask = Project(tmp_path / "pipe.py", str(tmp_path / "dask"))
    dask.run(executor="dask", workers=2)
    assert sent and sent[0][0] < sent[0][1]  # the run's jobs went in chunks
    want = store_contents(local)
    assert len(want) == 24 and store_contents(dask) == want
