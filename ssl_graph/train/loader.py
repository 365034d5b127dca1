"""Training batches through a torch ``DataLoader``: decoding and cropping off the main thread.

The dataset is indexed by *step*: batch k is ``make_batch(k)``, a pure function of (seed, k), so
the batches are the same whatever the number of workers (each worker computes whole steps, and
the loader hands them back in step order) and a resumed run starts at its checkpoint's step.
Under DDP ``make_batch`` is bound to the rank: each rank's loader decodes only its rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np


def _as_tensors(batch) -> dict:
    """A rank's batch as tensors: its pieces of the step's groups (``data.StepBatch``), with the
    global batch's row and sample counts; or one padded batch."""
    if hasattr(batch, "groups"):
        return {"groups": [_group_tensors(g) for g in batch.groups],
                "batch_rows": batch.batch_rows, "samples": batch.samples,
                "stand_in": batch.stand_in, "utts": batch.utts}
    return _group_tensors(batch)


def _group_tensors(g) -> dict:
    import torch

    pad = getattr(g, "padding_mask", None)
    return {"wave": torch.from_numpy(g.wave),
            "padding_mask": None if pad is None else torch.from_numpy(pad),
            "labels": [torch.from_numpy(np.ascontiguousarray(t)) for t in getattr(g, "labels", [])],
            "utts": list(g.utts), "rows": _global_rows(g), "group": getattr(g, "group", 0),
            "group_rows": getattr(g, "group_rows", 0) or len(g.utts),
            "offset": getattr(g, "offset", 0)}


def _global_rows(g):
    """Global row indices of these rows in their step's batch (0.. when not given)."""
    import torch

    rows = getattr(g, "rows", None)
    if rows is None or len(rows) != len(g.utts):
        rows = np.arange(len(g.utts), dtype=np.int64)
    return torch.from_numpy(np.asarray(rows, dtype=np.int64))


class StepBatches:
    """Map-style dataset: item i is the batch of step ``start + i`` as tensors."""

    def __init__(self, make_batch: Callable[[int], object], start: int, stop: int):
        self.make_batch, self.start, self.stop = make_batch, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> tuple[int, dict]:
        step = self.start + i
        return step, _as_tensors(self.make_batch(step))


def _identity(item):
    return item


def _worker_init(_worker_id: int) -> None:
    """Workers leave SIGINT/SIGTERM to the main process, which checkpoints before it stops
    them: a worker killed by a cluster's SIGTERM to the job would abort the step in flight."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def default_workers(device: str) -> int:
    """CPU training: the model needs the cores, and decoding a few crops is cheap; CUDA: 2."""
    return 2 if device.startswith("cuda") else 0


def step_batches(make_batch: Callable[[int], object], start: int, stop: int, *,
                 workers: int, device: str) -> Iterator[tuple[int, dict]]:
    """(step, batch) for steps [start, stop), prefetched by ``workers`` processes."""
    import torch
    from torch.utils.data import DataLoader

    if start >= stop:
        return iter(())
    # a loader's iterator draws a base seed: from the global RNG it would shift the model's
    # dropout stream between a resumed and an uninterrupted run, so it gets its own generator
    loader = DataLoader(
        StepBatches(make_batch, start, stop), batch_size=None, shuffle=False,
        num_workers=workers, collate_fn=_identity, pin_memory=device.startswith("cuda"),
        prefetch_factor=2 if workers else None, persistent_workers=False,
        worker_init_fn=_worker_init if workers else None,
        generator=torch.Generator().manual_seed(start),
    )
    return iter(loader)
