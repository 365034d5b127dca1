"""Mixed precision: which autocast dtype a device gets, and a GradScaler when it is fp16.

``auto`` is bf16 on GPUs that support it (A100, H100) and fp16 with loss scaling elsewhere
(V100, T4); fp32 on CPU. In fp16 a step whose gradients overflow is skipped by the scaler (and
logged by the session), never applied.
"""

from __future__ import annotations


def autocast_dtype(precision: str, device: str):
    """torch dtype for autocast, or None for fp32."""
    import torch

    cuda = device.startswith("cuda")
    if precision == "auto":
        if not cuda:
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def make_scaler(dtype, device: str):
    """A GradScaler for fp16 (None otherwise: bf16 has fp32's range)."""
    import torch

    if dtype != torch.float16:
        return None
    return torch.amp.GradScaler(device.split(":")[0])
