"""What every training node shares, whatever it optimises: device and precision, AdamW, resume
from the record's checkpoint, the LR of each step, checkpoint + log commits, final weights.

Keeping this in one place is what makes every trainer resumable in the same way: a checkpoint is
written under a new key, then the log, then the record points at it, then the older one goes.
"""

from __future__ import annotations

import math
import time

from ..store.backend import read_json, write_json


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} requested but CUDA is not available here")
    return device


class TrainSession:
    def __init__(self, st, ctx, model, label: str):
        import torch

        from .checkpoint import load_checkpoint

        self.st, self.ctx, self.node = st, ctx, st.node
        node = self.node
        self.device = resolve_device(node.device)
        self.bf16 = node.precision == "bf16" or (
            node.precision == "auto" and self.device.startswith("cuda"))
        self.model = model.to(self.device)
        self.backend = ctx.store.backend
        self.opt = torch.optim.AdamW(
            model.parameters(), lr=node.optimizer.lr, betas=node.optimizer.betas,
            eps=node.optimizer.eps, weight_decay=node.optimizer.weight_decay)
        self.start, self.rows = 0, []
        ckpt = (st.record or {}).get("checkpoint")
        if ckpt:
            meta = load_checkpoint(self.backend, f"{st.key}/{ckpt}", model, self.opt, self.device)
            self.start = int(meta["step"])
            log = read_json(self.backend, f"{st.key}/log.json") or []
            self.rows = [r for r in log if r["step"] <= self.start]
        self.task = ctx.task(f"{st.name}: {label}", total=node.steps)
        ctx.advance(self.task, self.start)
        self.t_start = time.perf_counter()

    def steps(self) -> range:
        return range(self.start, self.node.steps)

    def autocast(self):
        import torch

        return torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16,
                              enabled=self.bf16)

    def set_lr(self, step: int) -> float:
        lr = self.node.optimizer.lr * self.node.schedule.factor(step, self.node.steps)
        for group in self.opt.param_groups:
            group["lr"] = lr
        return lr

    def update(self, loss, params=None) -> float:
        """Backward, clip (``clip_norm`` 0 = off), step; returns the gradient norm."""
        import torch

        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in (params or self.model.parameters()) if p.grad is not None]
        clip = self.node.clip_norm if self.node.clip_norm > 0 else math.inf
        gnorm = float(torch.nn.utils.clip_grad_norm_(params, clip))
        self.opt.step()
        return gnorm

    def end_step(self, step: int, row: dict, description: str) -> None:
        """Log the row (every ``log_every``), advance progress, checkpoint every N steps."""
        node = self.node
        if (step + 1) % node.log_every == 0 or step + 1 == node.steps:
            self.rows.append({"step": step + 1, **row})
        self.ctx.advance(self.task, 1, description=f"{self.st.name}: {description}")
        if (step + 1) % node.checkpoint_every == 0 and step + 1 < node.steps:
            self.checkpoint(step + 1)

    def checkpoint(self, step: int) -> None:
        from .checkpoint import save_checkpoint

        st, key = self.st, f"ckpt/step-{step:08d}"
        save_checkpoint(self.backend, f"{st.key}/{key}", self.model, self.opt, step)
        write_json(self.backend, f"{st.key}/log.json", self.rows)
        old = (st.record or {}).get("checkpoint")
        st.record = {**(st.record or {}), "checkpoint": key, "step": step, "steps": self.node.steps}
        self.ctx.store.write_record(st.key, st.record)
        if old and old != key:
            self.backend.delete(f"{st.key}/{old}")

    def finish(self, metrics: dict, **record) -> dict:
        """Write the final weights and log; the record fields for the runner's final commit."""
        from safetensors.torch import save

        weights = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        self.backend.write_bytes(f"{self.st.key}/model.safetensors", save(weights))
        write_json(self.backend, f"{self.st.key}/log.json", self.rows)
        metrics = {**metrics, "train_seconds": round(time.perf_counter() - self.t_start, 2)}
        return {"metrics": metrics, "steps": self.node.steps, "step": self.node.steps,
                "device": self.device, "checkpoint": None, "weights": "model.safetensors",
                **record}
