"""Validation inside a training: held-out loss/accuracy (``Pretrain(valid=...)``) and dev error
by greedy CTC decoding (``FineTune`` with ``split.dev_fraction``).

An evaluation must not change the training it watches, or ``valid_every`` would change the
model: it runs in eval mode (no dropout or layerdrop) under a forked torch RNG (the dropout
stream of the next step is untouched), on fixed batches whose masks are seeded by the batch
index alone, so two evaluations differ only by the weights. Under DDP each rank evaluates its
rows of every batch (as training shards a batch; the batch's time mask is sliced, not redrawn)
and one all-reduce sums the totals: every rank gets the same numbers and takes the same
best-checkpoint decision, and the ranks meet at that one collective, never waiting on a rank
that evaluates alone.
"""

from __future__ import annotations

from contextlib import contextmanager

#: mask seeds of validation batches live far from the training's (seed * 1_000_003 + step)
_VALID_STREAM = 1 << 52


def valid_mask_seed(seed: int, index: int) -> int:
    return _VALID_STREAM + seed * 1_000_003 + index


@contextmanager
def evaluating(session):
    """Eval mode, no autograd, the torch RNG forked (CPU and the session's GPU), then back."""
    import torch

    model = session.model
    was_training = model.training
    devices = [session.device] if session.device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices), torch.inference_mode():
        model.eval()
        try:
            yield model
        finally:
            model.train(was_training)


def pretrain_valid(session, batches, seed: int) -> dict[str, float]:
    """``valid_loss`` (per prediction, as the training loss) and ``valid_accuracy`` (when the
    objective logs one) over the fixed ``batches`` (``data.fixed_crops``)."""
    import torch

    from .micro import SplitBatch

    device = session.device
    tot = {"loss": 0.0, "size": 0.0, "acc": 0.0, "acc_n": 0.0}
    with evaluating(session) as model:
        for i, b in enumerate(batches):
            # the batch's masks, per-row distractors and statistics, as in training: neither
            # ranks nor max_batch_seconds (runtime) change what is scored
            split = SplitBatch.whole(session, model, torch.from_numpy(b.wave),
                                     [torch.from_numpy(t) for t in b.labels],
                                     valid_mask_seed(seed, i))
            if not split.weight:  # fewer rows than ranks: nothing to score here
                continue
            for part in split.parts:
                t = [x.to(device) for x in part.targets] or None
                with session.autocast():
                    out = model(part.wave.to(device), None, t, **part.kwargs)
                tot["loss"] += float(out.loss.float())
                tot["size"] += out.sample_size
                if "accuracy" in out.logs:
                    tot["acc"] += float(out.logs["accuracy"]) * out.sample_size
                    tot["acc_n"] += out.sample_size
    tot = session.reduce(tot)
    result = {"valid_loss": tot["loss"] / max(tot["size"], 1.0)}
    if tot["acc_n"]:
        result["valid_accuracy"] = tot["acc"] / tot["acc_n"]
    return result


def dev_error(session, batches, refs: dict[str, list[str]], vocab, metric: str) -> dict[str, float]:
    """``dev_<metric>``: corpus-level greedy-decoding error rate (edits / reference length)
    over the fixed padded ``batches`` of dev utterances, as ``ASRScore`` counts it."""
    import torch

    from ..kernels.edit_distance import edit_distance
    from ..nn.ctc import greedy_decode
    from .score import units_for

    edits = length = 0
    with evaluating(session) as model:
        for b in batches:
            mine, stand_in = session.shard(len(b.utts))
            if stand_in:
                continue
            # rows keep the batch's width (its padding), so a row decodes as in one process
            pad = None if b.padding_mask is None else torch.from_numpy(b.padding_mask[mine])
            if pad is not None and not bool(pad.any()):
                pad = None
            with session.autocast():
                logits, frames = model(torch.from_numpy(b.wave[mine]).to(session.device),
                                       None if pad is None else pad.to(session.device))
            for u, ids in zip(b.utts[mine], greedy_decode(logits.float(), frames)):
                ref, hyp = units_for(metric, refs[u]), units_for(metric, vocab.decode(ids))
                edits += edit_distance(ref, hyp)
                length += len(ref)
    tot = session.reduce({"edits": float(edits), "length": float(length)})
    return {f"dev_{metric}": tot["edits"] / max(tot["length"], 1.0)}
