"""The probe's small training loop (``Probe`` nodes): a softmax-weighted sum of frozen layers
and a head per task, trained on features already in memory.

Resumable like every training node (``TrainSession``): the batch of a step is a pure function
of (seed, step), checkpoints carry the optimiser and RNG state, and the record points at the
last one. Evaluation runs one utterance at a time, so no number depends on padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..store.backend import write_json


@dataclass
class ProbeData:
    frames: dict[str, np.ndarray]  # utt → (frames, n_layers · dim) float32
    #: utt → phone ids (pr), frame phone ids with -1 unaligned (pc), speaker id (sid, 0-d)
    targets: dict[str, np.ndarray]
    classes: list[str]  # pr: CTC vocabulary (blank first); pc: phones; sid: speakers
    train: list[str]
    test: list[str]
    n_layers: int
    dim: int


class ProbeBatcher:
    """The training utterances of each step: ``batch_utts`` of them drawn by (seed, step)."""

    def __init__(self, utts: list[str], batch_utts: int, seed: int):
        self.utts, self.n, self.seed = sorted(utts), min(batch_utts, len(utts)), seed

    def batch(self, step: int) -> list[str]:
        rng = np.random.default_rng([self.seed, step])
        return [self.utts[i] for i in sorted(rng.permutation(len(self.utts))[:self.n])]


def standardiser(data: ProbeData) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std over the training frames (float64 sums, fixed order)."""
    x = np.concatenate([data.frames[u] for u in data.train]).astype(np.float64)
    mean, std = x.mean(0), x.std(0)
    return mean.astype(np.float32), np.maximum(std, 1e-5).astype(np.float32)


def build_net(node, data: ProbeData):
    from .probe_net import ProbeNet

    return ProbeNet(node.task, data.n_layers, data.dim, len(data.classes), *standardiser(data),
                    head=node.head, hidden=node.hidden)


def _loss(net, node, data: ProbeData, utts: list[str], device: str):
    """Summed loss of a batch and its sample size (utterances; frames for pc)."""
    import torch
    import torch.nn.functional as F

    xs = [torch.from_numpy(data.frames[u]).to(device) for u in utts]
    if node.task == "sid":
        logits = torch.stack([net.utterance(x) for x in xs])
        y = torch.stack([torch.from_numpy(data.targets[u]) for u in utts]).to(device)
        return F.cross_entropy(logits, y, reduction="sum"), len(utts)
    if node.task == "pc":
        x = torch.cat(xs)
        y = torch.from_numpy(np.concatenate([data.targets[u] for u in utts])).to(device)
        keep = y >= 0
        logits = net(x[keep])  # (N, L, C)
        n, L, C = logits.shape
        loss = F.cross_entropy(logits.reshape(n * L, C), y[keep].repeat_interleave(L),
                               reduction="sum")
        return loss, max(1, n)
    from ..nn.ctc import ctc_loss

    padded = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True)
    lengths = torch.tensor([len(x) for x in xs])
    targets = [torch.from_numpy(data.targets[u]) for u in utts]
    return ctc_loss(net(padded), lengths, targets) * len(utts), len(utts)


def train_probe(st, ctx, data: ProbeData) -> dict:
    import torch

    from .session import TrainSession

    node = st.node
    torch.manual_seed(node.seed)
    net = build_net(node, data)
    batcher = ProbeBatcher(data.train, node.batch_utts, node.seed)
    with TrainSession(st, ctx, net, f"probe {node.task}") as session:
        net.train()
        for step in range(session.start, node.steps):
            utts = batcher.batch(step)
            lr = session.set_lr(step)
            session.zero_grad()
            loss, n = _loss(net, node, data, utts, session.device)
            session.backward(loss)
            value = float(loss.detach()) / n
            if not math.isfinite(value):
                raise FloatingPointError(f"{st.name}: probe loss is {value} at step {step + 1}; "
                                         "lower optimizer.lr (the last checkpoint is kept)")
            gnorm, _ = session.update(n, step)
            session.end_step(step, {"loss": value, "lr": lr, "grad_norm": gnorm},
                             f"loss {value:.3f}")
    net.eval()
    metrics, record, outputs = evaluate(net, node, data, session.device)
    write_json(ctx.store.backend, f"{st.key}/test_outputs.json", outputs)
    last = [r["loss"] for r in session.rows[-10:]]
    metrics["loss"] = float(np.mean(last)) if last else None
    return session.finish(metrics, task=node.task, layers=list(node.probed_layers),
                          classes=data.classes, n_train=len(data.train), n_test=len(data.test),
                          test_outputs="test_outputs.json", **record)


def evaluate(net, node, data: ProbeData, device: str) -> tuple[dict, dict, dict]:
    """(metrics, record fields, per-test-utterance outputs), one utterance at a time."""
    import torch

    from ..kernels.edit_distance import edit_distance
    from ..nn.ctc import greedy_decode

    record: dict = {}
    outputs: dict = {}
    with torch.inference_mode():
        if node.task != "pc":
            record["layer_weights"] = [float(w) for w in net.weights().cpu()]
        if node.task == "pr":
            edits = total = 0
            for u in data.test:
                logits = net(torch.from_numpy(data.frames[u]).to(device))
                hyp = [data.classes[i] for i in greedy_decode(logits[None])[0]]
                ref = [data.classes[int(i)] for i in data.targets[u]]
                e = edit_distance(ref, hyp)
                edits, total = edits + e, total + len(ref)
                outputs[u] = {"ref": " ".join(ref), "hyp": " ".join(hyp), "per": [e, len(ref)]}
            return {"per": edits / total}, record, outputs
        if node.task == "sid":
            right = 0
            for u in data.test:
                guess = int(net.utterance(torch.from_numpy(data.frames[u]).to(device)).argmax())
                ref = int(data.targets[u])
                right += guess == ref
                outputs[u] = {"ref": data.classes[ref], "hyp": data.classes[guess]}
            return {"accuracy": right / len(data.test)}, record, outputs
        right = np.zeros(data.n_layers, dtype=np.int64)
        frames = 0
        for u in data.test:
            y = torch.from_numpy(data.targets[u]).to(device)
            keep = y >= 0
            guess = net(torch.from_numpy(data.frames[u]).to(device)[keep]).argmax(-1)  # (n, L)
            hits = (guess == y[keep][:, None]).sum(0).cpu().numpy()
            right += hits
            frames += int(keep.sum())
            outputs[u] = {"frames": int(keep.sum()), "correct": [int(h) for h in hits]}
    acc = right / max(frames, 1)
    best = int(np.argmax(acc))
    record["layer_accuracy"] = [float(a) for a in acc]
    return ({"accuracy": float(acc[best]), "best_layer": node.probed_layers[best]}, record,
            outputs)
