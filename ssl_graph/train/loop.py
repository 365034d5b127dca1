"""One training loop for every objective: the model spec decides the losses, not the loop.

Resumable by construction: the LR is a pure function of the step, batches and masks are seeded
by (seed, step), and checkpoints carry optimiser and RNG state, so an interrupted run that resumes
logs the same loss curve as one that never stopped (on CPU).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .data import CropSampler, fixed_crops


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


def _audio(ctx, corpus) -> tuple[dict[str, int], dict[str, object]]:
    """(utterance → samples, utterance → path) of a corpus node."""
    state = ctx.state(corpus)
    lengths = {u: e[2] for u, e in ctx.store.index(state.key).items()}
    return lengths, {u: state.manifest.utts[u].path for u in lengths}


def _sampler(st, ctx) -> tuple[CropSampler, list]:
    """The training crops (held-out utterances left out) and the fixed validation batches."""
    from ..specs.components_objectives import ClusterTargets
    from .split import valid_holdout

    node = st.node
    lengths, paths = _audio(ctx, node.corpus)
    label_sets = []
    clusters = node.model.target_of(ClusterTargets)
    if clusters is not None:
        for lab in clusters.labels:
            reader = ctx.reader(lab)
            utts = reader.utterances()
            table = dict(zip(utts, reader.get_many(utts)))
            check_label_lengths(st.name, ctx.state(lab).name, table, lab.frame_rate, lengths,
                                node.corpus.sample_rate)
            label_sets.append((table, lab.frame_rate))
    held, vlengths, vpaths = set(), {}, {}
    if isinstance(node.valid, float):
        held = valid_holdout(lengths, node.valid, node.valid_seed)
        vlengths, vpaths = {u: lengths[u] for u in held}, paths
    elif node.valid is not None:
        vlengths, vpaths = _audio(ctx, node.valid)
    train_lengths = {u: n for u, n in lengths.items() if u not in held}
    if not any(n >= node.min_seconds * node.corpus.sample_rate for n in train_lengths.values()):
        if held:
            raise ValueError(
                f"{st.name}: valid={node.valid:g} holds out {len(held)} of {len(lengths)} "
                f"utterances and leaves none of at least min_seconds={node.min_seconds:g} to "
                "train on; lower valid")
        raise ValueError(f"{st.name}: no utterance of the corpus is at least min_seconds="
                         f"{node.min_seconds:g} long; lower min_seconds")
    sampler = CropSampler(paths, train_lengths, sample_rate=node.corpus.sample_rate,
                          batch_seconds=node.batch_seconds, crop_seconds=node.crop_seconds,
                          min_seconds=node.min_seconds, seed=node.seed,
                          group_seconds=node.group_seconds, label_sets=label_sets,
                          mixing=node.model.augmentation)
    valid = []
    if node.valid is not None:
        from ..audio.io import read_audio

        sr = node.corpus.sample_rate
        resample = (node.corpus if isinstance(node.valid, float) else node.valid).resample
        valid = fixed_crops(lambda u: read_audio(vpaths[u], u, sr, resample), vlengths,
                            sample_rate=sr,
                            batch_seconds=node.batch_seconds, crop_seconds=node.crop_seconds,
                            min_seconds=node.min_seconds, label_sets=label_sets)
        if not valid:
            if isinstance(node.valid, float):
                what = (f"valid={node.valid:g} holds out {len(held)} of {len(lengths)} "
                        "utterances")
                fix = "raise valid"
            else:
                what, fix = f"valid corpus has {len(vlengths)} utterances", "use a longer one"
            raise ValueError(
                f"{st.name}: {what}, none at least min_seconds={node.min_seconds:g} long; "
                f"{fix} (or lower min_seconds)")
    return sampler, valid


def _forward_backward(session, model, batch, mask_seed: int):
    """Forward + backward of this rank's rows of the step (its pieces of the step's crop groups),
    in micro-batches; (summed loss, size, logs) summed over ranks.

    Neither micro-batches nor ranks change the update (``micro.SplitBatch``)."""
    from .micro import SplitBatch

    device, ranks = session.device, session.ranks
    split = SplitBatch(session, model, batch["groups"], mask_seed, batch["stand_in"])
    weight = split.weight
    loss_sum, size, logs = 0.0, 0, {}
    for i, part in enumerate(split.parts):
        w = part.wave.to(device, non_blocking=True)
        t = [x.to(device, non_blocking=True) for x in part.targets] or None
        with ranks.no_sync(session.ddp, last=i == len(split.parts) - 1):
            with session.autocast():
                out = session.ddp(w, None, t, **part.kwargs)
            loss = out.loss.float() * weight
            session.backward(loss)
        loss_sum += float(loss.detach())
        size += out.sample_size * int(weight)
        for k, v in out.logs.items():  # per-prediction averages, weighted back to sums
            logs[k] = logs.get(k, 0.0) + float(v) * max(out.sample_size, 1) * weight
    total = session.reduce({**logs, "__loss": loss_sum, "__size": float(size)})
    size = int(total.pop("__size"))
    return total.pop("__loss"), size, total


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
    sampler, valid = _sampler(st, ctx)
    with TrainSession(st, ctx, model, "train") as session:
        if session.ranks.on and node.model.cross_sample:
            raise ValueError(
                f"{st.name}: cross_sample_negatives draw distractors from the frames of one "
                "forward, so ranks would change the update; train it in one process")
        model = session.model
        model.train()
        t0 = time.perf_counter()
        for step, index, batch in session.batches(sampler.batch):
            lr = session.set_lr(step)
            model.set_num_updates(step)
            session.zero_grad()
            loss_sum, size, logs = _forward_backward(session, model, batch,
                                                     node.seed * 1_000_003 + index)
            value = loss_sum / max(1, size)
            if not math.isfinite(value) and session.scaler is None:
                raise FloatingPointError(
                    f"{st.name}: loss is {value} at step {step + 1}; lower optimizer.lr or "
                    "raise schedule.warmup (the last checkpoint is kept)"
                )
            gnorm, skipped = session.update(size, step)
            if not skipped:  # once per update, identically on every rank (an EMA teacher)
                model.after_update(step + 1)
            secs = time.perf_counter() - t0
            t0 = time.perf_counter()
            denom = max(size, 1)
            scalars = {k: v / denom for k, v in logs.items() if k not in ("loss", "sample_size")}
            if valid and not skipped and session.validation_due(step, node.valid_every):
                from .validation import pretrain_valid

                scalars.update(pretrain_valid(session, valid, node.valid_seed))
            session.end_step(step, {
                "loss": value, "lr": lr, "grad_norm": gnorm, **scalars,
                "sample_size": float(size),
                "audio_s_per_s": batch["samples"] / node.corpus.sample_rate / secs,
                "batch_size": int(batch["batch_rows"]),
                **({"skipped": True} if skipped else {})},
                f"train loss {value:.3f}")
        train_rows = [r for r in session.rows if "loss" in r]
        last = train_rows[-10:]
        metrics = {k: float(np.mean([r[k] for r in last if k in r]))
                   for k in last[-1] if k not in ("step", "batch_size", "skipped")
                   and not k.startswith("valid_")}
        evals = [r for r in session.rows if "valid_loss" in r]
        if evals:  # the last evaluation (always the last step's)
            metrics.update({k: v for k, v in evals[-1].items() if k.startswith("valid_")})
        return session.finish(metrics, **({"valid_utterances": sum(len(b.utts) for b in valid)}
                                          if valid else {}))
