"""What every training node shares, whatever it optimises: device and precision, AdamW, resume
from the record's checkpoint, the LR of each step, gradient accumulation, checkpoint + log
commits, progress, final weights.

Keeping this in one place is what makes every trainer resumable in the same way: a checkpoint is
written under a new key, then the log, then the record points at it, then the older one goes.
An update is fairseq's: micro-batches backpropagate their *summed* losses, then the gradients
are divided once by the sample size summed over the micro-batches.
"""

from __future__ import annotations

import math
import sys
import time

from ..progress import is_plain
from ..store.paths import contained
from ..store.train_log import HEARTBEAT_SECONDS, append_log, beat, restart_log


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} requested but CUDA is not available here")
    return device


class TrainSession:
    """Use as ``with TrainSession(...) as session``: SIGINT/SIGTERM then checkpoint and stop."""

    def __init__(self, st, ctx, model, label: str):
        import torch

        from .checkpoint import load_checkpoint
        from .distributed import Ranks, unused_parameters
        from .precision import autocast_dtype, make_scaler, precision_name, scale_window

        self.st, self.ctx, self.node = st, ctx, st.node
        node = self.node
        self.ranks = Ranks()
        self.device = self.ranks.device(resolve_device(node.device), st.name)
        if self.device.startswith("cuda:"):
            torch.cuda.set_device(self.device)
        self.dtype = autocast_dtype(node.precision, self.device)
        #: what this training runs in (``auto`` resolved), recorded with its weights
        self.precision = precision_name(self.dtype)
        self.scaler = make_scaler(self.dtype, self.device, node.fp16_init_scale,
                                  scale_window(node, self.ranks.world))
        self.model = model.to(self.device)
        self.backend = ctx.store.backend
        self.opt = torch.optim.AdamW(
            model.parameters(), lr=node.optimizer.lr, betas=node.optimizer.betas,
            eps=node.optimizer.eps, weight_decay=node.optimizer.weight_decay)
        self.start, self.rows, self.skipped = 0, [], 0
        #: the best evaluation so far {step, metric, value, key} (FineTune's dev error)
        self.best: dict | None = None
        self._best_keys: list[str] = []  # best weights written, the committed one included
        ckpt = (st.record or {}).get("checkpoint")
        if ckpt:
            meta = load_checkpoint(self.backend, contained(st.key, ckpt, "checkpoint", self.backend),
                                   model, self.opt, self.device, self.ranks.rank)
            self.start = int(meta["step"])
            self.skipped = int(meta.get("skipped", 0))
            self.best = meta.get("best")
            if self.best:  # (read from the checkpoint's metadata: checked before any use)
                contained(st.key, self.best["key"], "best.key", self.backend)
            self._best_keys = [self.best["key"]] if self.best else []
            if self.scaler is not None and meta.get("scaler"):
                self.scaler.load_state_dict(meta["scaler"])
        # the log so far (a part of it past the checkpoint, from a killed run, goes)
        self.rows = restart_log(self.backend, st.key, self.start, owner=self.ranks.main)
        self._logged = len(self.rows)  # rows[:_logged] are in the store's log
        self._beat = -math.inf  # when this rank last wrote its heartbeat
        #: what the forward runs: the model, or its DDP wrapper (every rank resumed alike)
        self.ddp = self.ranks.wrap(self.model, self.device, unused_parameters(node) is not None)
        # a bar in a terminal; in a log the monitor's richer step lines replace the task's lines
        prog = ctx.progress
        self.task = (None if prog is not None and is_plain(prog)
                     else ctx.task(f"{st.name}: {label}", total=node.steps))
        ctx.advance(self.task, self.start)
        self.t_start = time.perf_counter()

    # ------------------------------------------------------------------ context
    def __enter__(self):
        from .monitor import Monitor
        from .signals import stop_on_signals

        prog = self.ctx.progress
        # lines where progress is plain (a log, --no-progress; DDP ranks: exec/worker.py), from
        # rank 0; none with --quiet
        plain = self.ranks.main and prog is not None and is_plain(prog)
        tb = None
        if getattr(self.backend, "root", None) is not None and self.ranks.main:
            tb = str(self.backend.path(f"{self.st.key}/tensorboard"))
        self.monitor = Monitor(self.st.name, self.node.steps, self.start, plain=plain,
                               every_seconds=self.node.print_seconds, tb_dir=tb)
        self._signals = stop_on_signals(self.st.name, announce=not self.ranks.on)
        self.stop = self._signals.__enter__()
        return self

    def __exit__(self, *exc):
        self.monitor.close()
        return self._signals.__exit__(*exc)

    # ------------------------------------------------------------------ data
    def batches(self, make_batch):
        """(update, batch index, tensors) from the update the run resumes at until ``steps``
        updates are made, through a DataLoader. Batch k is ``make_batch(k, rank=, world=)``
        (this rank's rows of the global batch): k is the update until an fp16 step overflows;
        that batch makes no update and, as in fairseq, the next batch tries it again, so
        k = update + skipped steps (which a checkpoint keeps)."""
        from functools import partial

        from .loader import default_workers, step_batches

        workers = self.node.workers
        if workers is None:
            workers = default_workers(self.device)
        mine = partial(make_batch, rank=self.ranks.rank, world=self.ranks.world)
        step, first = self.start, self.start + self.skipped
        while step < self.node.steps:  # a new loader only after a skipped step
            for index, batch in step_batches(mine, first, first + self.node.steps - step,
                                             workers=workers, device=self.device):
                skipped = self.skipped
                yield step, index, batch
                first = index + 1
                if self.skipped == skipped:
                    step += 1

    def shard(self, batch_rows: int) -> tuple[slice, bool]:
        """This rank's rows of the global batch (all of them in one process), and whether
        they only stand in (weight 0) because the batch has fewer rows than ranks."""
        return self.ranks.rows(batch_rows)

    def reduce(self, values: dict[str, float]) -> dict[str, float]:
        """Sums over ranks (identity in one process)."""
        return self.ranks.sum(values, self.device)

    def micro_slices(self, rows: int, width: int) -> list[slice]:
        from .micro import micro_slices

        mbs = self.node.max_batch_seconds
        sr = self.node.corpus.sample_rate
        return micro_slices(rows, width, None if mbs is None else int(mbs * sr))

    # ------------------------------------------------------------------ optimisation
    def autocast(self):
        import torch

        return torch.autocast(device_type=self.device.split(":")[0],
                              dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    def set_lr(self, step: int) -> float:
        lr = self.node.optimizer.lr * self.node.schedule.factor(step, self.node.steps)
        for group in self.opt.param_groups:
            group["lr"] = lr
        return lr

    def zero_grad(self) -> None:
        self.opt.zero_grad(set_to_none=True)

    def backward(self, loss_sum) -> None:
        """Accumulate one micro-batch's gradients of its *summed* (unnormalised) loss."""
        (loss_sum if self.scaler is None else self.scaler.scale(loss_sum)).backward()

    def update(self, sample_size: float, step: int, params=None) -> tuple[float, bool]:
        """Divide the accumulated gradients by ``sample_size`` (summed over micro-batches and
        ranks), clip (``clip_norm`` 0 = off), step; returns (gradient norm, skipped). fp16
        steps that overflow are skipped. DDP has averaged the gradients over ranks already."""
        import torch

        params = [p for p in (params or self.model.parameters()) if p.grad is not None]
        if self.scaler is not None:
            self.scaler.unscale_(self.opt)
        inv = self.ranks.world / max(float(sample_size), 1.0)
        for p in params:
            p.grad.mul_(inv)
        clip = self.node.clip_norm if self.node.clip_norm > 0 else math.inf
        gnorm = float(torch.nn.utils.clip_grad_norm_(params, clip)) if params else 0.0
        finite = math.isfinite(gnorm)
        if self.scaler is not None:
            self.scaler.step(self.opt)  # skips the step when unscale_ found inf/nan
            self.scaler.update()
        elif not finite:
            raise FloatingPointError(
                f"{self.st.name}: gradient norm is {gnorm} at step {step + 1}; lower "
                "optimizer.lr or use precision='fp32' (the last checkpoint is kept)")
        else:
            self.opt.step()
        if not finite:
            self.skipped += 1
            scale = self.scaler.get_scale()
            if scale <= self.node.min_loss_scale:
                raise FloatingPointError(
                    f"{self.st.name}: fp16 loss scale fell to {scale:g} (min_loss_scale "
                    f"{self.node.min_loss_scale:g}) at step {step + 1}: the loss is diverging; "
                    "lower optimizer.lr, raise schedule.warmup or use precision='bf16' or "
                    "'fp32' (the last checkpoint is kept)")
            if self.ranks.main:
                print(f"{self.st.name}: step {step + 1} skipped, fp16 gradients overflowed "
                      f"(loss scale now {scale:g}); the next batch tries it again",
                      file=sys.stderr, flush=True)
        return gnorm, not finite

    # ------------------------------------------------------------------ bookkeeping
    def end_step(self, step: int, row: dict, description: str) -> None:
        """Log the row (every ``log_every``), advance progress, checkpoint every N steps, and
        after a SIGINT/SIGTERM checkpoint this step and stop. A skipped (fp16 overflow) step is
        no update: nothing is logged or advanced, a signal checkpoints the updates made."""
        node = self.node
        stop = bool(self.stop)  # decided once: a signal arriving later waits for the next step
        if self.ranks.on:  # a signal on any rank stops every rank, at the same step
            stop = bool(self.reduce({"stop": float(stop)})["stop"])
            if stop and not self.stop:
                self.stop.signum = 15
        if row.get("skipped"):
            if stop:  # the updates made so far are what the checkpoint holds
                self._stop_at(step)
            return
        if self.scaler is not None:
            row = {**row, "loss_scale": self.scaler.get_scale()}
        evaluated = any(k.startswith(("valid_", "dev_")) for k in row)
        if (step + 1) % node.log_every == 0 or step + 1 == node.steps or evaluated:
            self.rows.append({"step": step + 1, **row})
        if self.ranks.main:
            self.monitor.step(step + 1, row)
        now = time.monotonic()
        if now - self._beat >= HEARTBEAT_SECONDS or step + 1 == node.steps:
            beat(self.backend, self.st.key, self.ranks.rank, step + 1, node.steps)
            self._beat = now
        self.ctx.advance(self.task, 1, description=f"{self.st.name}: {description}")
        last = step + 1 == node.steps
        if not last and stop:
            self._stop_at(step + 1)
        if not last and (step + 1) % node.checkpoint_every == 0:
            self.checkpoint(step + 1)

    def _stop_at(self, updates: int) -> None:
        """Checkpoint the ``updates`` made and stop (a signal): one line from rank 0."""
        from .signals import Stopped

        self.checkpoint(updates)
        if self.ranks.main:
            print(f"{self.st.name}: checkpoint written at step {updates}/{self.node.steps}; "
                  "rerun to resume there", file=sys.stderr, flush=True)
        raise Stopped(f"{self.st.name}: stopped at step {updates}; rerun to resume",
                      self.stop.signum, said=True)

    # ------------------------------------------------------------------ validation
    def validation_due(self, step: int, every: int) -> bool:
        """Evaluate after update ``step`` (0-based): every ``every`` updates and at the last."""
        return (step + 1) % every == 0 or step + 1 == self.node.steps

    def keep_best(self, step: int, metric: str, value: float) -> bool:
        """Keep the weights after update ``step`` when ``value`` (an error: lower is better)
        beats the best so far; they are written under a key of their own, and the checkpoint
        that follows records it, so a resumed run keeps the best-so-far of the run it resumes."""
        from safetensors.torch import save

        if self.best is not None and not value < self.best["value"]:
            return False
        key = f"ckpt/best-step-{step + 1:08d}"
        if self.ranks.main:
            weights = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
            self.backend.write_bytes(f"{self.st.key}/{key}/model.safetensors", save(weights))
        self.best = {"step": step + 1, "metric": metric, "value": float(value), "key": key}
        if key not in self._best_keys:
            self._best_keys.append(key)
        return True

    def checkpoint(self, step: int) -> None:
        from .checkpoint import rng_state, save_checkpoint

        rng = self.ranks.gather(rng_state(self.device))  # every rank's streams, to resume them
        if not self.ranks.main:  # rank 0 alone writes
            return
        st, key = self.st, f"ckpt/step-{step:08d}"
        extra = {"skipped": self.skipped}
        if self.best is not None:
            extra["best"] = self.best
        if self.scaler is not None:
            extra["scaler"] = self.scaler.state_dict()
        save_checkpoint(self.backend, f"{st.key}/{key}", self.model, self.opt, step, extra, rng)
        self._append_log()
        old = (st.record or {}).get("checkpoint")
        st.record = {**(st.record or {}), "checkpoint": key, "step": step, "steps": self.node.steps,
                     "precision": self.precision}
        if self.best is not None:
            st.record["best"] = self.best
        self.ctx.store.write_record(st.key, st.record)
        if old and old != key:
            self.backend.delete(contained(st.key, old, "checkpoint", self.backend))
        current = self.best["key"] if self.best else None
        for k in [k for k in self._best_keys if k != current]:  # superseded best weights
            self.backend.delete(contained(st.key, k, "best.key", self.backend))
        self._best_keys = [current] if current else []

    def _append_log(self) -> None:
        """The rows since the last checkpoint join the store's log (rank 0)."""
        append_log(self.backend, self.st.key, self.rows[self._logged:])
        self._logged = len(self.rows)

    def finish(self, metrics: dict, **record) -> dict:
        """Write the final weights and log; the record fields for the runner's final commit."""
        from safetensors.torch import save

        if self.ranks.main:
            if self.best is not None:  # the node's model is the best evaluated one
                best = contained(self.st.key, self.best["key"], "best.key", self.backend)
                raw = self.backend.read_bytes(f"{best}/model.safetensors")
            else:
                raw = save({k: v.detach().cpu().contiguous()
                            for k, v in self.model.state_dict().items()})
            self.backend.write_bytes(f"{self.st.key}/model.safetensors", raw)
            self._append_log()
        metrics = {**metrics, "train_seconds": round(time.perf_counter() - self.t_start, 2)}
        if self.scaler is not None:
            metrics["skipped_steps"] = self.skipped
        if self.best is not None:
            record = {"best": {k: v for k, v in self.best.items() if k != "key"}, **record}
            metrics[f"best_dev_{self.best['metric']}"] = self.best["value"]
        return {"metrics": metrics, "steps": self.node.steps, "step": self.node.steps,
                "device": self.device, "precision": self.precision, "checkpoint": None,
                "weights": "model.safetensors", **record}
