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


def rank_device(requested: str, local_rank: int, under_torchrun: bool, name: str = "") -> str:
    """The device a rank trains on: under torchrun ``cuda`` is the rank's own GPU,
    ``cuda:<LOCAL_RANK>``; a pinned ``cuda:N`` would put every rank on one GPU and is refused.
    ``requested`` is already resolved (``auto`` -> ``cuda``/``cpu``); outside torchrun it is kept.
    The one rule the launcher (before starting ranks), the ranks (before the process group) and
    the training session all apply."""
    if not under_torchrun:
        return requested
    if requested.startswith("cuda:"):
        who = f"{name}: " if name else ""
        raise ValueError(
            f"{who}device={requested!r} would put every torchrun rank on one GPU; set "
            "device='cuda' (each rank takes the GPU of its LOCAL_RANK; pick GPUs with "
            "CUDA_VISIBLE_DEVICES)")
    if requested == "cuda":
        return f"cuda:{local_rank}"
    return requested


def backend_for(device: str) -> str:
    """The process group's backend: NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if device.startswith("cuda") else "gloo"


def unused_parameters(node) -> str | None:
    """Why a step may leave some parameters without a gradient, so DDP must look for them
    (``find_unused_parameters``, a cost every step); None when every parameter gets one.
    Pretrain needs it only for layerdrop or a frozen conv encoder (``feature_grad_mult`` 0);
    FineTune always (its frozen backbone for ``freeze_steps``, layerdrop, a frozen encoder, a
    pretrained mask embedding unused when masking is off)."""
    if node.kind == "Pretrain":
        spec = node.model
        if spec.feature_grad_mult == 0:
            return "feature_grad_mult=0"
        layerdrop = getattr(spec.context, "layerdrop", 0)
        return f"layerdrop={layerdrop}" if layerdrop > 0 else None
    return f"{node.kind} (frozen or masked parts)"


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

    def device(self, device: str, name: str = "") -> str:
        """Each rank on its own GPU (:func:`rank_device`)."""
        return rank_device(device, self.local_rank, self.on, name)

    def gather(self, value) -> list:
        """``value`` of every rank, in rank order (``[value]`` in one process)."""
        if not self.on:
            return [value]
        import torch.distributed as dist

        out = [None] * self.world
        dist.all_gather_object(out, value)
        return out

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
