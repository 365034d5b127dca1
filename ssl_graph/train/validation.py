"""Validation inside a training: held-out loss/accuracy (``Pretrain(valid=...)``) and dev error
by greedy CTC decoding (``FineTune`` with ``split.dev_fraction``).

An evaluation must not change the training it watches, or ``valid_every`` would change the
model: it runs in eval mode (no dropout or layerdrop) under a forked torch RNG (the dropout
stream of the next step is untouched), on fixed batches whose masks are seeded by the batch
index alone, so two evaluations differ only by the weights. Under DDP each rank evaluates every
``world``-th batch and one all-reduce sums the totals: every rank gets the same numbers (and
takes the same best-checkpoint decision), and the ranks meet at one collective, never waiting
on a rank that evaluates alone.
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


def _my_batches(session, n: int) -> range:
    return range(session.ranks.rank, n, session.ranks.world)


def pretrain_valid(session, batches, seed: int) -> dict[str, float]:
    """``valid_loss`` (per prediction, as the training loss) and ``valid_accuracy`` (when the
    objective logs one) over the fixed ``batches`` (``data.fixed_crops``)."""
    import torch

    from .micro import batch_time_mask

    device = session.device
    tot = {"loss": 0.0, "size": 0.0, "acc": 0.0, "acc_n": 0.0}
    with evaluating(session) as model:
        for i in _my_batches(session, len(batches)):
            b = batches[i]
            wave = torch.from_numpy(b.wave)
            targets = [torch.from_numpy(t) for t in b.labels]
            mseed = valid_mask_seed(seed, i)
            # the mask of the whole batch, sliced by micro-batch: max_batch_seconds (runtime)
            # never changes which frames are scored
            mask = batch_time_mask(model, wave, targets, mseed)
            for rows in session.micro_slices(*wave.shape):
                t = [x[rows].to(device) for x in targets] or None
                with session.autocast():
                    out = model(wave[rows].to(device), None, t, mask_seed=mseed,
                                mask=None if mask is None else mask[rows])
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
        for i in _my_batches(session, len(batches)):
            b = batches[i]
            pad = None if b.padding_mask is None else torch.from_numpy(b.padding_mask)
            with session.autocast():
                logits, frames = model(torch.from_numpy(b.wave).to(session.device),
                                       None if pad is None else pad.to(session.device))
            for u, ids in zip(b.utts, greedy_decode(logits.float(), frames)):
                ref, hyp = units_for(metric, refs[u]), units_for(metric, vocab.decode(ids))
                edits += edit_distance(ref, hyp)
                length += len(ref)
    tot = session.reduce({"edits": float(edits), "length": float(length)})
    return {f"dev_{metric}": tot["edits"] / max(tot["length"], 1.0)}
