"""A job run in a worker process writes its own frames as a part; only a descriptor comes back.

Sending every frame back to the coordinator made it the bottleneck of a pool or a cluster (it
received, copied and wrote all the data). Instead the worker writes a part exactly as the
coordinator's ``RaggedWriter`` would (same zarr layout, same checksum manifest), so readers,
``verify`` and ``gc`` cannot tell who wrote it, and returns its name, per-utterance row ranges
and manifest. The coordinator checks that descriptor and remains the only writer of records and
index (``RaggedWriter.adopt``). Part names are random (``parts/j-<uuid>``): a job retried after
its worker died never collides with the part the dead worker may have left, which no index
references and ``gc`` removes. A batch holding NaN/Inf is not written: its values go back and
the coordinator refuses it naming the utterance, as it does for in-process work. Counts an op
keeps about its batches (``Tallied.tally``, e.g. LayerSweep's forward passes) ride along summed.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from functools import lru_cache, partial

import numpy as np

from .jobs import crash_once

#: fault injection for tests (like ``jobs.CRASH_ENV``): a marker path; the first worker to
#: finish writing a part while the marker is absent creates it and dies before replying
CRASH_AFTER_PART_ENV = "SSL_GRAPH_CRASH_WORKER_AFTER_PART_ONCE"
PART_PREFIX = "parts/j-"
#: utterances per worker-written part, at most (``group_batches``)
PART_UTTS = 64
#: tasks per worker (about) where the run is small enough (``group_batches``)
TASKS_PER_WORKER = 16


@lru_cache(maxsize=4)
def _store(url: str):
    from ..store.store import Store

    return Store(url)


def prepare(store, key: str) -> None:
    """Create the node's ``parts`` group from the coordinator before any worker writes, so no
    worker ever creates the node's own ``zarr.json`` (where its record lives) concurrently."""
    import zarr

    from ..store.paths import guard

    zarr.open_group(store=store.url, path=guard(store.backend, f"{key}/parts"), mode="a",
                    zarr_format=3)


def worker_writes(work: Callable, store, key: str) -> Callable:
    """The function an executor runs per ``(utts, jobs)``: ``work`` plus writing its part."""
    return partial(write_part, work, store.url, key)


def group_batches(batches: list[list[str]], batch_utts: int, parallel: int) -> list[list[list[str]]]:
    """Batches run together as one task writing one part: parts of a few utterances each would
    mean a file (and a manifest in every record rewrite) per few seconds of audio at scale, so a
    task takes up to ``PART_UTTS`` utterances. A small run still gives every worker about
    ``TASKS_PER_WORKER`` tasks: with a few big ones, one worker computes the last task while
    the others idle (5 tasks a worker: up to a fifth of the run on one core). Each batch is
    still computed alone, so values never depend on the grouping."""
    per = max(1, min(PART_UTTS // max(1, batch_utts),
                     -(-len(batches) // (TASKS_PER_WORKER * max(1, parallel)))))
    return [batches[i:i + per] for i in range(0, len(batches), per)]


def _finite(outs) -> bool:
    return all(not (isinstance(a, np.ndarray) and a.dtype.kind in "fc")
               or bool(np.isfinite(a).all()) for a in outs)


def write_part(work: Callable, url: str, key: str, task) -> dict | list:
    """Run ``work`` on each job of ``task = (utts, jobs)`` and write their frames as a new part
    of node ``key``; returns the descriptor, or the raw outputs when some are not finite (the
    coordinator names them)."""
    from ..store.ragged import PartWriter

    utts, jobs = task
    results = [work(job) for job in jobs]
    outs = [out for res in results for out in res]
    if not _finite(outs):
        return outs
    store = _store(url)
    name = f"{PART_PREFIX}{uuid.uuid4().hex}"
    writer, rows = None, []
    try:
        for utt, out in zip(utts, outs):
            if isinstance(out, int):  # a node that stores lengths only
                rows.append([None, int(out)])
                continue
            out = np.asarray(out)
            if writer is None:
                writer = PartWriter(store, f"{key}/{name}", out)
            start = writer.end
            writer.add(utt, out)
            rows.append([start, start + len(out)])
        manifest = writer.close() if writer is not None else None
    except BaseException:
        with contextlib.suppress(OSError):  # never referenced; gc would find it otherwise
            store.delete(f"{key}/{name}")
        raise
    crash_once(CRASH_AFTER_PART_ENV)
    out = {"utts": list(utts), "part": name if writer is not None else None,
           "rows": rows, "manifest": manifest}
    tally = add_tallies(getattr(res, "tally", None) for res in results)
    return {**out, "tally": tally} if tally else out


def add_tallies(tallies) -> dict:
    """Counts an op keeps about its batches (``ops.base.Tallied``), summed over a task's."""
    total: dict = {}
    for t in tallies:
        for k, v in (t or {}).items():
            total[k] = total.get(k, 0) + v
    return total
