"""The four paper systems as ``Pretrain`` presets: a model from the component space plus the
paper's training recipe (reference/ssl_models.md §1), or a ``tiny`` recipe that trains on a
laptop CPU in minutes.

    it1 = hubert(corpus, targets=Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=100)))
    w2v2 = wav2vec2(corpus, size="tiny").with_(steps=500)

Keyword overrides are applied to the ``Pretrain`` node (``steps=``, ``seed=``, ...); change the
model with ``model=preset.model.with_(...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from .specs.components_presets import hubert_model, vq_wav2vec_model, wav2vec2_model, wav2vec_model
from .specs.nodes import Corpus, Labels
from .specs.training import Adam, Pretrain, Schedule

Size = Literal["tiny", "base", "large"]

#: tiny: ~12 s of audio per update in 2 s crops, a few hundred steps on 2 CPU cores
TINY = dict(steps=300, batch_seconds=12.0, crop_seconds=2.0, min_seconds=1.0,
            schedule=Schedule(curve="linear", warmup=0.1), checkpoint_every=100)


def _pretrain(corpus: Corpus, model, recipe: dict, overrides: dict) -> Pretrain:
    return Pretrain(corpus=corpus, model=model, **{**recipe, **overrides})


def wav2vec(corpus: Corpus, size: Size = "base", **overrides) -> Pretrain:
    """wav2vec (2019): 400k updates, Adam lr 5e-3 cosine, warmup 500 from 1e-7, crops 150k."""
    recipe = {
        "tiny": {**TINY, "optimizer": Adam(lr=2e-3, weight_decay=0.0),
                 "schedule": Schedule(curve="cosine", warmup=0.05)},
        "base": dict(steps=400_000, optimizer=Adam(lr=5e-3, betas=(0.9, 0.999), eps=1e-8,
                                                   weight_decay=0.0),
                     schedule=Schedule(curve="cosine", warmup=500 / 400_000, init_lr_scale=2e-5),
                     batch_seconds=16 * 1.5e6 / 16000, crop_seconds=150_000 / 16000),
    }
    recipe["large"] = recipe["base"]
    return _pretrain(corpus, wav2vec_model(size), recipe[size], overrides)


def vq_wav2vec(corpus: Corpus, size: Size = "base", quantizer: Literal["gumbel", "kmeans"] = "gumbel",
               **overrides) -> Pretrain:
    """vq-wav2vec: 400k updates, lr 1e-7 → 5e-3 then cosine, 8 GPUs × 10 crops of 150k."""
    recipe = {
        "tiny": {**TINY, "optimizer": Adam(lr=2e-3, weight_decay=0.0),
                 "schedule": Schedule(curve="cosine", warmup=0.05)},
        "base": dict(steps=400_000, optimizer=Adam(lr=5e-3, betas=(0.9, 0.999), eps=1e-8,
                                                   weight_decay=0.0),
                     schedule=Schedule(curve="cosine", warmup=500 / 400_000, init_lr_scale=2e-5,
                                       final_lr_scale=2e-4),
                     batch_seconds=8 * 10 * 150_000 / 16000, crop_seconds=150_000 / 16000),
    }
    recipe["large"] = recipe["base"]
    return _pretrain(corpus, vq_wav2vec_model(size, quantizer=quantizer), recipe[size], overrides)


def wav2vec2(corpus: Corpus, size: Size = "base", **overrides) -> Pretrain:
    """wav2vec 2.0 BASE: 400k updates, lr 5e-4, warmup 8 %, linear decay, 64 GPUs × 1.4M samples.

    LARGE follows the paper (lr 3e-4, 600k updates, 128 GPUs × 1.2M samples, crops 320k).
    """
    recipe = {
        "tiny": {**TINY, "optimizer": Adam(lr=1e-3)},
        "base": dict(steps=400_000, optimizer=Adam(lr=5e-4), schedule=Schedule(warmup=0.08),
                     batch_seconds=64 * 1.4e6 / 16000, crop_seconds=250_000 / 16000),
        "large": dict(steps=600_000, optimizer=Adam(lr=3e-4), schedule=Schedule(warmup=0.08),
                      batch_seconds=128 * 1.2e6 / 16000, crop_seconds=320_000 / 16000),
    }
    return _pretrain(corpus, wav2vec2_model(size), recipe[size], overrides)


def hubert(corpus: Corpus, targets: Labels | Sequence[Labels], size: Size = "base",
           **overrides) -> Pretrain:
    """HuBERT BASE: lr 5e-4, warmup 32k then linear, clip 10, 32 GPUs × 87.5 s, crops 250k.

    ``targets``: one ``Labels`` node, or several (a cluster ensemble). Iteration 1 trains 250k
    steps on MFCC k=100 labels, iteration 2 400k on layer-6 k=500 labels: pass ``steps=``.
    LARGE: lr 1.5e-3, clip 1.0, 128 GPUs × 56.25 s.
    """
    recipe = {
        "tiny": {**TINY, "optimizer": Adam(lr=1e-3)},
        "base": dict(steps=400_000, optimizer=Adam(lr=5e-4), schedule=Schedule(warmup=0.08),
                     clip_norm=10.0, batch_seconds=32 * 87.5, crop_seconds=250_000 / 16000),
        "large": dict(steps=400_000, optimizer=Adam(lr=1.5e-3), schedule=Schedule(warmup=0.08),
                      clip_norm=1.0, batch_seconds=128 * 56.25, crop_seconds=250_000 / 16000),
    }
    return _pretrain(corpus, hubert_model(size, labels=targets), recipe[size], overrides)


__all__ = ["wav2vec", "vq_wav2vec", "wav2vec2", "hubert", "Pretrain", "Adam", "Schedule"]
