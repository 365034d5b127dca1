"""Mixed precision: which autocast dtype a device gets, and fp16's dynamic loss scaling.

``auto`` is bf16 on GPUs that support it (A100, H100) and fp16 with loss scaling elsewhere
(V100, T4); fp32 on CPU. fp16 scales the loss as fairseq's ``DynamicLossScaler`` does: it starts
at ``fp16_init_scale`` (fairseq 128), halves on every overflow, doubles after
``fp16_scale_window`` updates without one (fairseq's default 2**14 / (GPUs × update_freq), here
2**14 / the forwards of an update), and a scale that falls to ``min_loss_scale`` (1e-4) stops the
training: the loss is diverging. A step whose gradients overflow is no update: the optimiser,
``steps`` and the LR schedule stay where they were and, as in fairseq, the next batch tries the
update again (``TrainSession.batches``).
"""

from __future__ import annotations

import math


def autocast_dtype(precision: str, device: str):
    """torch dtype for autocast, or None for fp32."""
    import torch

    cuda = device.startswith("cuda")
    if precision == "auto":
        if not cuda:
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def precision_name(dtype) -> str:
    """What a training ran in: 'fp32', 'bf16' or 'fp16' (``auto`` resolved)."""
    import torch

    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def scale_window(node, ranks: int) -> int:
    """Updates without overflow before the loss scale doubles: the node's ``fp16_scale_window``,
    else fairseq's 2**14 / (GPUs × update_freq), the forwards of one update: this run's crop
    groups per step × micro-batches per group, at least one per rank."""
    if node.fp16_scale_window is not None:
        return node.fp16_scale_window
    from .batching import groups_per_step

    if getattr(node, "batch_seconds", None) is None:  # a probe: its batches are not in seconds
        return max(1, int(2**14 / ranks))
    groups = groups_per_step(node.batch_seconds, getattr(node, "group_seconds", None))
    mbs = node.max_batch_seconds
    per_group = 1 if mbs is None else max(1, math.ceil(node.batch_seconds / groups / mbs))
    return max(1, int(2**14 / max(ranks, groups * per_group)))


def make_scaler(dtype, device: str, init_scale: float = 128.0, window: int = 2**14):
    """A GradScaler for fp16 (None otherwise: bf16 has fp32's range)."""
    import torch

    if dtype != torch.float16:
        return None
    return torch.amp.GradScaler(device.split(":")[0], init_scale=init_scale, growth_factor=2.0,
                                backoff_factor=0.5, growth_interval=window)
