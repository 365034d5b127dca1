"""Data parallelism inside a training: which rank this is, its rows of the global batch, DDP.

torchrun (``ssl_graph/exec/torchrun.py``) starts the ranks; here a training only asks whether a
process group is up. Every rank plans the whole global batch (cheap: lengths only), decodes only
its contiguous block of rows, and slices its rows out of each crop group's masks (drawn from
shapes, as in one process); DDP averages the gradients, the step's batch statistics
(``micro.SplitBatch``) and the sample size and logged sums are summed over ranks, so the update
equals the single-process one.
"""

from __future__ import annotations

import os
from contextlib import nullcontext


class Ranks:
    def __init__(self):
        import torch.distributed as dist

        self.on = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        self.world = dist.get_world_size() if self.on else 1
        self.rank = dist.get_rank() if self.on else 0
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0)) if self.on else 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, device: str) -> str:
        """Each rank on its own GPU: ``cuda`` becomes ``cuda:<local rank>``."""
        if self.on and device == "cuda":
            return f"cuda:{self.local_rank}"
        return device

    def rows(self, batch_rows: int) -> tuple[slice, bool]:
        """This rank's contiguous block of rows, and whether it is a stand-in
        (``batching.rank_rows``: the rule the loader also splits decoding by)."""
        from .batching import rank_rows

        lo, hi, stand_in = rank_rows(batch_rows, self.rank, self.world)
        return slice(lo, hi), stand_in

    def wrap(self, model, device: str, find_unused: bool):
        """DDP around ``model``; ``find_unused`` when a step may leave parameters unused."""
        if not self.on:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [int(device.split(":")[1])] if device.startswith("cuda:") else None
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)

    def no_sync(self, ddp, last: bool):
        """Accumulate micro-batches locally; synchronise on the last one only."""
        return ddp.no_sync() if self.on and not last else nullcontext()

    def sum(self, values: dict[str, float], device: str) -> dict[str, float]:
        """Sum each value over ranks (every rank must pass the same keys)."""
        if not self.on:
            return values
        import torch
        import torch.distributed as dist

        keys = sorted(values)
        dev = device if device.startswith("cuda") else "cpu"
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=dev)
        dist.all_reduce(t)
        return dict(zip(keys, t.tolist()))

    def sum_tensor(self, t, device: str):
        """``t`` summed over ranks (a CPU copy; ``t`` itself in one process)."""
        if not self.on:
            return t
        import torch.distributed as dist

        dev = device if device.startswith("cuda") else "cpu"
        out = t.to(dev).clone()
        dist.all_reduce(out)
        return out.cpu()
