"""Probe: read the upstream's cached layer features and the task's references from the store,
split the utterances, and hand them to the small training loop (``train/probe.py``).

Nothing here runs the upstream: a model's layers are the stored frames of its ``LayerSweep``
(one forward for all layers, cached once), a feature node's its own stored frames.
"""

from __future__ import annotations

import numpy as np

from .base import AggregateOp, RunContext, check_finite, register
from .quality import frame_phones


def _columns(node) -> np.ndarray | None:
    """Columns of the stored frames that hold the probed layers (None = all of them)."""
    available, picked = node.available_layers, node.probed_layers
    if picked == available:
        return None
    dim = node.layer_dim
    return np.concatenate([np.arange(available.index(x) * dim, (available.index(x) + 1) * dim)
                           for x in picked])


def probe_data(st, ctx: RunContext):
    """Features, targets and the train/test split of a ``Probe`` node."""
    from ..train.finetune import ctc_frames_needed
    from ..train.probe import ProbeData
    from ..train.split import held_apart, labeled_utterances, stratified_test

    node = st.node
    feats_node = node.features
    corpus = ctx.state(node.corpus)
    speakers = {u: corpus.manifest.speaker(u) for u in corpus.manifest.ids}
    reader = ctx.reader(feats_node)
    utts = [u for u in reader.utterances() if u in speakers]
    if node.task == "sid":
        targets, classes, utts = _speaker_targets(utts, speakers)
        test = stratified_test(utts, node.split.test_fraction, node.split.seed, speakers)
        train = sorted(set(utts) - set(test))
    else:  # FineTune's rule: test by hash, dev apart, train within split.labeled_minutes
        targets, classes, utts = _phone_targets(node, ctx, utts, reader)
        test = held_apart(utts, node.split, speakers)
        rate = feats_node.frame_rate
        # CTC cannot emit more phones than frames (+ blanks between repeats)
        usable = {u: reader.length(u) / rate for u in utts if node.task != "pr"
                  or reader.length(u) >= ctc_frames_needed(targets[u])}
        train = labeled_utterances(usable, node.split, speakers)
    test_set = set(test)
    if not train or not test:
        raise ValueError(
            f"{st.name}: {len(train)} training and {len(test)} test utterance(s) of "
            f"{len(utts)} usable; a probe needs both (adjust split.test_fraction, add "
            "utterances" + (", or speakers with two or more utterances)" if node.task == "sid"
                            else ")"))
    cols = _columns(node)
    wanted = sorted(set(train) | test_set)
    frames = {}
    for u, x in zip(wanted, reader.get_many(wanted)):
        frames[u] = np.ascontiguousarray(x if cols is None else x[:, cols], dtype=np.float32)
    check_finite(st, wanted, [frames[u] for u in wanted], ctx, what="upstream features",
                 hint="the probe did not train")
    return ProbeData(frames=frames, targets=targets, classes=classes, train=sorted(train),
                     test=sorted(test), n_layers=len(node.probed_layers), dim=node.layer_dim)


def _speaker_targets(utts, speakers):
    classes = sorted({speakers[u] or u for u in utts})
    index = {s: i for i, s in enumerate(classes)}
    return {u: np.array(index[speakers[u] or u], dtype=np.int64) for u in utts}, classes, utts


def _phone_targets(node, ctx: RunContext, utts, reader):
    """pr: each utterance's phone ids (vocabulary with blank first, silences dropped);
    pc: the phone at each frame's centre (-1 unaligned; silence is a class)."""
    from ..audio.annotations import read_alignments
    from ..train.vocab import references

    aset = read_alignments(ctx.store, ctx.state(node.alignments).key)
    utts = [u for u in utts if u in aset.utts]
    if node.task == "pr":
        vocab, refs = references("phone", aset=aset, silence=frozenset(node.alignments.phones.silence))
        utts = [u for u in utts if refs[u]]
        return {u: vocab.encode(refs[u], u) for u in utts}, list(vocab.symbols), utts
    feats = node.features
    targets = {u: frame_phones(*aset.utts[u], reader.length(u), feats.frame_rate,
                               feats.frame_offset) for u in utts}
    return targets, list(aset.phones), utts


@register("Probe")
class ProbeOp(AggregateOp):
    def compute(self, st, ctx: RunContext) -> dict:
        from ..train.probe import train_probe
        from ..train.threads import fixed_threads

        data = probe_data(st, ctx)
        with fixed_threads(st.node.threads):
            return train_probe(st, ctx, data)
