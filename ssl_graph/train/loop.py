"""One training loop for every objective: the model spec decides the losses, not the loop.

Resumable by construction: the LR is a pure function of the step, batches and masks are seeded
by (seed, step), and checkpoints carry optimiser and RNG state, so an interrupted run that resumes
logs the same loss curve as one that never stopped (on CPU).
"""

from __future__ import annotations

import time

import numpy as np

from .data import CropSampler


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
    from .session import TrainSession

    node = st.node
    torch.manual_seed(node.seed)
    model = build_model(node.model)
    if node.init is not None:  # continued pre-training; a resumed run's checkpoint wins below
        from .init import load_init

        load_init(model, st, ctx)
    session = TrainSession(st, ctx, model, "train")
    model, device = session.model, session.device
    sampler = _sampler(st, ctx)
    model.train()
    for step in session.steps():
        t0 = time.perf_counter()
        lr = session.set_lr(step)
        model.set_num_updates(step)
        batch = sampler.batch(step)
        wave = torch.from_numpy(batch.wave).to(device)
        targets = [torch.from_numpy(t).to(device) for t in batch.labels] or None
        with session.autocast():
            out = model(wave, None, targets, mask_seed=node.seed * 1_000_003 + step)
        loss = out.loss.float() / max(1, out.sample_size)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{st.name}: loss is {float(loss)} at step {step + 1}; lower optimizer.lr or "
                "raise schedule.warmup (the last checkpoint is kept)"
            )
        gnorm = session.update(loss)
        secs = time.perf_counter() - t0
        value = float(loss.detach())
        session.end_step(step, {
            "loss": value, "lr": lr, "grad_norm": gnorm,
            **{k: v for k, v in out.scalars().items() if k != "loss"},
            "audio_s_per_s": batch.wave.size / node.corpus.sample_rate / secs,
            "batch_size": int(batch.wave.shape[0])}, f"train loss {value:.3f}")
    last = session.rows[-10:]
    metrics = {k: float(np.mean([r[k] for r in last if k in r]))
               for k in last[-1] if k not in ("step", "batch_size")}
    return session.finish(metrics)
