"""The fine-tuning loop (``FineTune`` nodes), on the pattern of ``train/loop.py``.

Resumable the same way: the LR is a pure function of the step, batches (length-sorted,
``batching.LengthPlan``) and masks are seeded by (seed, step), checkpoints carry optimiser and
RNG state and the node record points at the last one, so an interrupted run resumes where it
stopped. Which utterances train and test is written to ``split.json`` so ``ASRScore`` scores
exactly the utterances this run held apart.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..store.backend import write_json
from .split import dev_utterances, held_apart, labeled_utterances
from .utterances import UtteranceBatcher
from .vocab import Vocab, stored_references

#: padded audio seconds per dev batch: ASRScore's default, so dev and test are decoded alike
DEV_BATCH_SECONDS = 60.0


@dataclass
class LabeledData:
    vocab: Vocab
    refs: dict[str, list[str]]  # utt → reference tokens (every annotated utterance)
    lengths: dict[str, int]  # utt → samples (every corpus utterance)
    paths: dict[str, object]
    labeled: list[str]
    test: list[str]
    #: annotated dev utterances: the best checkpoint is chosen by their error
    dev: list[str] = field(default_factory=list)
    #: annotated non-test utterances too short for CTC to emit their tokens
    too_short: list[str] = field(default_factory=list)
    #: seconds of audio the labeled budget could draw from (all usable training utterances)
    available_seconds: float = 0.0

    def seconds(self, utts, sr: int) -> float:
        return sum(self.lengths[u] for u in utts) / sr


def ctc_frames_needed(ids: np.ndarray) -> int:
    """Frames CTC needs for a label sequence: one per token plus a blank between repeats."""
    return int(len(ids) + np.count_nonzero(ids[1:] == ids[:-1])) if len(ids) else 0


def prepare(st, ctx) -> LabeledData:
    """Read the corpus, its references, and pick the test and labeled utterances."""
    node = st.node
    corpus_state = ctx.state(node.corpus)
    lengths = {u: e[2] for u, e in ctx.store.index(corpus_state.key).items()}
    paths = {u: corpus_state.manifest.utts[u].path for u in lengths}
    vocab, refs = stored_references(node, ctx)
    sr, enc = node.corpus.sample_rate, node.architecture.encoder
    speakers = {u: corpus_state.manifest.utts[u].speaker for u in lengths}
    test = [u for u in held_apart(lengths, node.split, speakers) if u in refs]
    dev = set(dev_utterances(lengths, node.split, speakers))
    dev_annotated = sorted(u for u in dev if refs.get(u))
    if node.split.dev_fraction > 0 and not dev_annotated:
        raise ValueError(
            f"{st.name}: split.dev_fraction={node.split.dev_fraction:g} holds apart no annotated "
            f"utterance of {len(lengths)}; raise dev_fraction (or set it to 0 for no dev split)")
    usable, too_short = {}, []
    for u, n in lengths.items():
        if u not in refs or u in test or u in dev:
            continue
        if not refs[u] or enc.output_length(n) < ctc_frames_needed(vocab.encode(refs[u], u)):
            too_short.append(u)
        else:
            usable[u] = n / sr
    labeled = labeled_utterances(usable, node.split, speakers)
    if not labeled:
        shortest = f"; the shortest usable utterance is {min(usable.values()):.1f} s" if usable else ""
        raise ValueError(
            f"{st.name}: no labeled utterance fits split.labeled_minutes="
            f"{node.split.labeled_minutes}{shortest}; raise labeled_minutes or lower test_fraction"
        )
    return LabeledData(vocab, refs, lengths, paths, labeled, test, dev_annotated,
                       sorted(too_short), sum(usable.values()))


def _forward_backward(session, batch, targets, frozen: bool, mask_seed: int):
    """CTC forward + backward of this rank's rows of the global batch (the loader decoded only
    those, each padded to its group's longest), per group in micro-batches; returns (summed
    loss, utterances). Each micro-batch draws its own fine-tuning masks."""
    from ..nn.ctc import ctc_loss
    from .micro import group_seed, micro_seed

    device, ranks = session.device, session.ranks
    stand_in = batch["stand_in"]
    pieces = [(g, session.micro_slices(*g["wave"].shape)) for g in batch["groups"]]
    n_forwards = sum(len(slices) for _, slices in pieces)
    loss_sum, done, n_utts = 0.0, 0, 0
    for g, slices in pieces:
        wave, pad, all_utts = g["wave"], g["padding_mask"], g["utts"]
        seed = group_seed(mask_seed, g["group"])
        n_utts += len(all_utts)
        for i, rows in enumerate(slices):
            utts = all_utts[rows]
            p = None if pad is None else pad[rows]
            p = None if p is None or not bool(p.any()) else p.to(device, non_blocking=True)
            done += 1
            with ranks.no_sync(session.ddp, last=done == n_forwards):
                with session.autocast():
                    logits, frames = session.ddp(wave[rows].to(device, non_blocking=True), p,
                                                 mask_seed=micro_seed(seed, ranks.rank, i),
                                                 frozen=frozen)
                # ctc_loss averages over utterances; the sum is normalised over the global batch
                weight = 0 if stand_in else len(utts)
                loss = ctc_loss(logits, frames, [targets[u] for u in utts]) * weight
                session.backward(loss)
            loss_sum += float(loss.detach())
    total = session.reduce({"loss": loss_sum, "utts": 0.0 if stand_in else float(n_utts)})
    return total["loss"], int(total["utts"])


def train_finetune(st, ctx) -> dict:
    import torch
    from safetensors.torch import load

    from ..nn.ctc import build_ctc_model
    from .session import TrainSession

    node = st.node
    data = prepare(st, ctx)
    sr = node.corpus.sample_rate
    torch.manual_seed(node.seed)
    model = build_ctc_model(node, len(data.vocab))
    backend = ctx.store.backend
    if node.pretrained is not None:
        pre = ctx.state(node.pretrained)
        raw = backend.read_bytes(f"{pre.key}/model.safetensors")
        if raw is None:
            raise FileNotFoundError(f"{st.name}: {pre.name} has no model.safetensors; rerun it")
        model.load_pretrained(load(raw), pre.name)
    targets = {u: torch.from_numpy(data.vocab.encode(data.refs[u], u)) for u in data.labeled}
    batcher = UtteranceBatcher(data.paths, {u: data.lengths[u] for u in data.labeled},
                               sample_rate=sr, batch_seconds=node.batch_seconds, seed=node.seed,
                               group_seconds=node.group_seconds)
    # fixed dev batches of ASRScore's default size: a runtime field never moves the dev error
    dev = list(UtteranceBatcher(data.paths, {u: data.lengths[u] for u in data.dev},
                                sample_rate=sr, batch_seconds=DEV_BATCH_SECONDS,
                                seed=0).in_order()) if data.dev else []
    with TrainSession(st, ctx, model, "fine-tune") as session:
        model.train()
        t0 = time.perf_counter()
        for step, index, batch in session.batches(batcher.batch):
            lr = session.set_lr(step)
            frozen = step < node.freeze_steps
            session.zero_grad()
            loss_sum, n_utts = _forward_backward(session, batch, targets, frozen,
                                                 node.seed * 1_000_003 + index)
            value = loss_sum / n_utts
            if not math.isfinite(value) and session.scaler is None:
                raise FloatingPointError(
                    f"{st.name}: CTC loss is {value} at step {step + 1}; lower optimizer.lr "
                    "(the last checkpoint is kept)"
                )
            gnorm, skipped = session.update(n_utts, step)
            secs = time.perf_counter() - t0
            evals = {}
            if dev and not skipped and session.validation_due(step, node.dev_every):
                from .validation import dev_error

                evals = dev_error(session, dev, data.refs, data.vocab, node.dev_metric)
                session.keep_best(step, node.dev_metric, evals[f"dev_{node.dev_metric}"])
            t0 = time.perf_counter()
            session.end_step(step, {
                "loss": value, "lr": lr, "grad_norm": gnorm, "frozen": frozen,
                "batch_size": n_utts,
                "audio_s_per_s": round(batch["samples"] / sr / secs, 2),
                **({"skipped": True} if skipped else {}), **evals}, f"CTC loss {value:.3f}")
    rows = session.rows
    write_json(backend, f"{st.key}/split.json",
               {"labeled": data.labeled, "test": data.test, "dev": data.dev,
                "too_short": data.too_short})
    last = rows[-10:]
    budget = node.split.labeled_minutes
    return session.finish(
        {"loss": float(np.mean([r["loss"] for r in last])),
         "first_loss": rows[0]["loss"] if rows and rows[0]["step"] == 1 else None},
        units=node.units, vocab=list(data.vocab.symbols), n_labeled=len(data.labeled),
        labeled_seconds=round(data.seconds(data.labeled, sr), 3),
        labeled_budget_seconds=None if budget is None else budget * 60.0,
        n_test=len(data.test), n_dev=len(data.dev), n_too_short=len(data.too_short),
        warnings=_budget_warning(budget, data.available_seconds),
    )


def _budget_warning(budget_minutes: float | None, available: float) -> list[str]:
    """A budget larger than the corpus trains on everything there is, and says so (a run
    would otherwise silently report a '10 min' model trained on 3)."""
    if budget_minutes is None or available >= budget_minutes * 60.0:
        return []
    return [f"split.labeled_minutes={budget_minutes:g} but only {available / 60:.2f} min of "
            "usable labeled audio lies outside the held-apart splits; trained on all of it"]
