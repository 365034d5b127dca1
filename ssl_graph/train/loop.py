"""One training loop for every objective: the model spec decides the losses, not the loop.

Resumable by construction: the LR is a pure function of the step, batches and masks are seeded
by (seed, step), and checkpoints carry optimiser and RNG state, so an interrupted run that resumes
logs the same loss curve as one that never stopped (on CPU).
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..store.backend import read_json, write_json
from .data import CropSampler

LOG_KEYS_FIRST = ("step", "loss", "lr", "grad_norm")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} requested but CUDA is not available here")
    return device


def check_label_lengths(name: str, lab_name: str, table: dict, rate: float,
                        lengths: dict[str, int], sr: int) -> None:
    """fairseq warns at >0.1 s between audio and label durations; we refuse, naming the utt."""
    for utt, n in lengths.items():
        if utt not in table:
            raise ValueError(f"{name}: labels {lab_name} have no utterance {utt!r}; rerun them")
        gap = abs(n / sr - len(table[utt]) / rate)
        if gap > 0.1:
            raise ValueError(
                f"{name}: utterance {utt!r} has {n / sr:.2f} s of audio but labels {lab_name} "
                f"hold {len(table[utt])} frames = {len(table[utt]) / rate:.2f} s at {rate:g} Hz; "
                "the labels' frame rate does not match their features (check the label rate)"
            )


def _sampler(st, ctx) -> CropSampler:
    from ..specs.components_objectives import ClusterTargets

    node = st.node
    corpus_state = ctx.state(node.corpus)
    lengths = {u: e[2] for u, e in ctx.store.index(corpus_state.key).items()}
    paths = {u: corpus_state.manifest.utts[u].path for u in lengths}
    label_sets = []
    if isinstance(node.model.target, ClusterTargets):
        for lab in node.model.target.labels:
            reader = ctx.reader(lab)
            utts = reader.utterances()
            table = dict(zip(utts, reader.get_many(utts)))
            check_label_lengths(st.name, ctx.state(lab).name, table, lab.frame_rate, lengths,
                                node.corpus.sample_rate)
            label_sets.append((table, lab.frame_rate))
    return CropSampler(paths, lengths, sample_rate=node.corpus.sample_rate,
                       batch_seconds=node.batch_seconds, crop_seconds=node.crop_seconds,
                       min_seconds=node.min_seconds, seed=node.seed, label_sets=label_sets)


def train(st, ctx) -> dict:
    import torch

    from ..nn import build_model
    from .checkpoint import load_checkpoint, save_checkpoint

    node = st.node
    device = resolve_device(node.device)
    use_bf16 = node.precision == "bf16" or (node.precision == "auto" and device.startswith("cuda"))
    torch.manual_seed(node.seed)
    model = build_model(node.model).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=node.optimizer.lr, betas=node.optimizer.betas,
                            eps=node.optimizer.eps, weight_decay=node.optimizer.weight_decay)
    sampler = _sampler(st, ctx)
    backend = ctx.store.backend
    start, rows = 0, []
    ckpt = (st.record or {}).get("checkpoint")
    if ckpt:
        start = int(load_checkpoint(backend, f"{st.key}/{ckpt}", model, opt, device)["step"])
        rows = [r for r in (read_json(backend, f"{st.key}/log.json") or []) if r["step"] <= start]
    model.train()
    task = ctx.task(f"{st.name}: train", total=node.steps)
    ctx.advance(task, start)
    t_train = time.perf_counter()
    for step in range(start, node.steps):
        t0 = time.perf_counter()
        lr = node.optimizer.lr * node.schedule.factor(step, node.steps)
        for group in opt.param_groups:
            group["lr"] = lr
        model.set_num_updates(step)
        batch = sampler.batch(step)
        wave = torch.from_numpy(batch.wave).to(device)
        targets = [torch.from_numpy(t).to(device) for t in batch.labels] or None
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16,
                            enabled=use_bf16):
            out = model(wave, None, targets, mask_seed=node.seed * 1_000_003 + step)
        loss = out.loss.float() / max(1, out.sample_size)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{st.name}: loss is {float(loss)} at step {step + 1}; lower optimizer.lr or "
                "raise schedule.warmup (the last checkpoint is kept)"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip = node.clip_norm if node.clip_norm > 0 else math.inf
        gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
        opt.step()
        secs = time.perf_counter() - t0
        if (step + 1) % node.log_every == 0 or step + 1 == node.steps:
            rows.append({"step": step + 1, "loss": float(loss.detach()), "lr": lr, "grad_norm": gnorm,
                         **{k: v for k, v in out.scalars().items() if k != "loss"},
                         "audio_s_per_s": batch.wave.size / node.corpus.sample_rate / secs,
                         "batch_size": int(batch.wave.shape[0])})
        ctx.advance(task, 1, description=f"{st.name}: train loss {float(loss.detach()):.3f}")
        if (step + 1) % node.checkpoint_every == 0 and step + 1 < node.steps:
            key = f"ckpt/step-{step + 1:08d}"
            save_checkpoint(backend, f"{st.key}/{key}", model, opt, step + 1)
            write_json(backend, f"{st.key}/log.json", rows)
            old = (st.record or {}).get("checkpoint")
            st.record = {**(st.record or {}), "checkpoint": key, "step": step + 1,
                         "steps": node.steps}
            ctx.store.write_record(st.key, st.record)
            if old and old != key:
                backend.delete(f"{st.key}/{old}")
    from safetensors.torch import save

    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    backend.write_bytes(f"{st.key}/model.safetensors", save(weights))
    write_json(backend, f"{st.key}/log.json", rows)
    last = rows[-10:]
    metrics = {k: float(np.mean([r[k] for r in last if k in r]))
               for k in last[-1] if k not in ("step", "batch_size")}
    metrics["train_seconds"] = round(time.perf_counter() - t_train, 2)
    return {"metrics": metrics, "steps": node.steps, "step": node.steps, "device": device,
            "checkpoint": None, "weights": "model.safetensors"}
