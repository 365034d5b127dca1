"""Cached features (and labels) as a map-style dataset for a torch ``DataLoader``.

No torch import: a ``DataLoader`` accepts any object with ``__len__``/``__getitem__``, and its
default collation turns the numpy arrays into tensors; ``pad_collate`` pads utterances of
different lengths (importing torch only when called).
"""

from __future__ import annotations

import numpy as np


class UtteranceDataset:
    """Item i = {"utt", "features" (frames, dim), "labels" (frames,) when given}.

    ``features``/``labels`` are node handles (``project["mfcc"]``, ``project["labels"]``);
    ``utts`` defaults to every utterance both hold. Labels at half the feature rate (HuBERT's
    50 Hz labels of 100 Hz features) are returned as stored; no resampling is implied.
    """

    def __init__(self, features, labels=None, utts: list[str] | None = None):
        self.features, self.labels = features, labels
        if utts is None:
            utts = features.utterances()
            if labels is not None:
                have = set(labels.utterances())
                utts = [u for u in utts if u in have]
        self.utts = list(utts)

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> dict:
        utt = self.utts[i]
        item = {"utt": utt, "features": np.asarray(self.features.features(utt))}
        if self.labels is not None:
            item["labels"] = np.asarray(self.labels.labels(utt)).astype(np.int64)
        return item

    def batches(self, size: int):
        """Batches of items read with the bulk reader (storage order within a batch)."""
        for i in range(0, len(self.utts), size):
            utts = self.utts[i:i + size]
            feats = self.features.features_many(utts)
            labs = self.labels.labels_many(utts) if self.labels is not None else [None] * len(utts)
            yield [{"utt": u, "features": f, **({"labels": lab.astype(np.int64)} if lab is not None else {})}
                   for u, f, lab in zip(utts, feats, labs)]


def pad_collate(items: list[dict], label_pad: int = -100) -> dict:
    """Pad to the longest item: features with 0, labels with ``label_pad``; adds ``lengths``."""
    import torch

    n = max(len(it["features"]) for it in items)
    dim = items[0]["features"].shape[1:]
    feats = torch.zeros((len(items), n, *dim), dtype=torch.float32)
    lengths = torch.tensor([len(it["features"]) for it in items])
    for i, it in enumerate(items):
        feats[i, :len(it["features"])] = torch.from_numpy(np.ascontiguousarray(it["features"]))
    out = {"utts": [it["utt"] for it in items], "features": feats, "lengths": lengths}
    if "labels" in items[0]:
        m = max(len(it["labels"]) for it in items)
        labels = torch.full((len(items), m), label_pad, dtype=torch.long)
        for i, it in enumerate(items):
            labels[i, :len(it["labels"])] = torch.from_numpy(it["labels"])
        out["labels"] = labels
    return out
