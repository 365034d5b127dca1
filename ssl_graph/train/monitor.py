"""Watching a training: plain progress lines when output is a file, TensorBoard when installed.

A rich bar shows nothing in a log file (nohup, Slurm, ``| tee``), so there the session prints one
line every ``print_seconds`` (and at the first and last step): node, step/total, loss, accuracy,
lr, audio-s/s, ETA. TensorBoard event files go next to the node's artifacts in a local store.
"""

from __future__ import annotations

import sys
import time


def _fmt_eta(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def progress_line(name: str, step: int, total: int, row: dict, eta: float | None) -> str:
    parts = [f"{name}: step {step}/{total}", f"loss {row['loss']:.4f}"]
    if "accuracy" in row:
        parts.append(f"acc {row['accuracy']:.3f}")
    parts.append(f"lr {row['lr']:.3g}")
    if "audio_s_per_s" in row:
        parts.append(f"audio-s/s {row['audio_s_per_s']:.1f}")
    if row.get("skipped"):
        parts.append("SKIPPED (fp16 overflow)")
    if eta is not None:
        parts.append(f"ETA {_fmt_eta(eta)}")
    return " | ".join(parts)


def valid_line(name: str, step: int, total: int, evals: dict) -> str:
    """e.g. ``hb: step 50/400 | valid loss 4.1230 | valid acc 0.112`` or ``dev cer 0.4120``."""
    parts = [f"{name}: step {step}/{total}"]
    for k, v in evals.items():
        split, metric = k.split("_", 1)
        metric = {"accuracy": "acc"}.get(metric, metric)
        parts.append(f"{split} {metric} {v:.4f}" if isinstance(v, float) else f"{split} {metric} {v}")
    return " | ".join(parts)


class Monitor:
    def __init__(self, name: str, total: int, start: int, *, plain: bool, every_seconds: float,
                 tb_dir: str | None = None, stream=None):
        self.name, self.total, self.start = name, total, start
        self.plain, self.every = plain, every_seconds
        self.stream = stream or sys.stdout
        self.t0 = self.last = time.perf_counter()
        self.writer = None
        if tb_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is an optional extra
                pass
            else:
                self.writer = SummaryWriter(tb_dir, purge_step=start + 1)

    def step(self, step: int, row: dict) -> None:
        """``step`` is the number of updates done (1-based). Validation numbers (``valid_*``,
        ``dev_*``) go to TensorBoard's ``valid/`` and get a line of their own, always."""
        evals = {k: v for k, v in row.items() if k.startswith(("valid_", "dev_"))}
        if self.writer is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    tag = f"valid/{k.split('_', 1)[1]}" if k in evals else f"train/{k}"
                    self.writer.add_scalar(tag, v, step)
        if self.plain and evals:
            print(valid_line(self.name, step, self.total, evals), file=self.stream, flush=True)
        now = time.perf_counter()
        due = now - self.last >= self.every or step in (self.start + 1, self.total)
        if self.plain and due:
            done = step - self.start
            eta = (now - self.t0) / done * (self.total - step) if done else None
            print(progress_line(self.name, step, self.total, row, eta), file=self.stream,
                  flush=True)
            self.last = now

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
