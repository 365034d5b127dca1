"""The paper systems as ``Pretrain`` presets: a model from the component space plus the
paper's training recipe (reference/ssl_models.md §1), or a ``tiny`` recipe that trains on a
laptop CPU in minutes.

    it1 = hubert(corpus, targets=Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=100)))
    w2v2 = wav2vec2(corpus, size="tiny").with_(steps=500)

Keyword overrides are applied to the ``Pretrain`` node (``steps=``, ``seed=``, ...); change the
model with ``model=preset.model.with_(...)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from .specs.base import SpecError
from .specs.components import SSLModel
from .specs.components_presets import (
    best_rq_model,
    data2vec_model,
    hubert_model,
    vq_wav2vec_model,
    wav2vec2_model,
    wav2vec_model,
    wavlm_model,
)
from .specs.finetune import FT_MASK, ASRScore, FineTune, Split, finetune_mask
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
                     batch_seconds=16 * 1.5e6 / 16000, group_seconds=1.5e6 / 16000,
                     crop_seconds=150_000 / 16000),
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
                     batch_seconds=8 * 10 * 150_000 / 16000, group_seconds=10 * 150_000 / 16000,
                     crop_seconds=150_000 / 16000),
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
                     batch_seconds=64 * 1.4e6 / 16000, group_seconds=1.4e6 / 16000,
                     crop_seconds=250_000 / 16000),
        "large": dict(steps=600_000, optimizer=Adam(lr=3e-4), schedule=Schedule(warmup=0.08),
                      batch_seconds=128 * 1.2e6 / 16000, group_seconds=1.2e6 / 16000,
                      crop_seconds=320_000 / 16000),
    }
    return _pretrain(corpus, wav2vec2_model(size), recipe[size], overrides)


#: HuBERT's recipes; WavLM trains "following HuBERT"
_HUBERT_RECIPE = {
    "tiny": {**TINY, "optimizer": Adam(lr=1e-3)},
    "base": dict(steps=400_000, optimizer=Adam(lr=5e-4), schedule=Schedule(warmup=0.08),
                 clip_norm=10.0, batch_seconds=32 * 87.5, group_seconds=87.5,
                 crop_seconds=250_000 / 16000),
    "large": dict(steps=400_000, optimizer=Adam(lr=1.5e-3), schedule=Schedule(warmup=0.08),
                  clip_norm=1.0, batch_seconds=128 * 56.25, group_seconds=56.25,
                  crop_seconds=250_000 / 16000),
}


def hubert(corpus: Corpus, targets: Labels | Sequence[Labels], size: Size = "base",
           **overrides) -> Pretrain:
    """HuBERT BASE: lr 5e-4, warmup 32k then linear, clip 10, 32 GPUs × 87.5 s, crops 250k.

    ``targets``: one ``Labels`` node, or several (a cluster ensemble). Iteration 1 trains 250k
    steps on MFCC k=100 labels, iteration 2 400k on layer-6 k=500 labels: pass ``steps=``.
    LARGE: lr 1.5e-3, clip 1.0, 128 GPUs × 56.25 s.
    """
    return _pretrain(corpus, hubert_model(size, labels=targets), _HUBERT_RECIPE[size],
                     overrides)


def best_rq(corpus: Corpus, size: Size = "base", **overrides) -> Pretrain:
    """BEST-RQ (Chiu et al. 2022): random-projection targets of log-mel frames, see
    :func:`~ssl_graph.specs.components_presets.best_rq_model` for the model and how our
    Transformer stands in for the paper's Conformer.

    ``base`` (= ``large``): Adam, peak lr 4e-3 after 25k warm-up updates, batches of 2048
    utterances, as we read the paper's LibriSpeech recipe. The paper decays the learning rate
    with the Transformer's inverse square root; we have no such curve and decay linearly to 0
    (Schedule(curve="linear")). 2048 utterances are taken as 2048 × 12.3 s (LibriSpeech's mean
    utterance) in crops of at most 15.6 s, and the update count (not stated with the batch) is
    400k like the other base recipes: change ``steps=`` to match a run you compare against.
    ``tiny``: the shared tiny recipe at lr 1e-3.
    """
    base = dict(steps=400_000, optimizer=Adam(lr=4e-3),
                schedule=Schedule(curve="linear", warmup=25_000 / 400_000),
                batch_seconds=2048 * 12.3, group_seconds=87.5, crop_seconds=250_000 / 16000)
    recipe = {"tiny": {**TINY, "optimizer": Adam(lr=1e-3)}, "base": base, "large": base}
    return _pretrain(corpus, best_rq_model(size), recipe[size], overrides)


def data2vec(corpus: Corpus, size: Size = "base", **overrides) -> Pretrain:
    """data2vec audio BASE (fairseq ``base_librispeech.yaml``; the paper agrees): 400k updates,
    Adam lr 5e-4 (0.9, 0.98), eps 1e-6, weight decay 0.01, tri-stage LR (3 % warmup, 90 % hold,
    7 % decay, from / to 1 % of the peak), no gradient clipping, 16 GPUs × 3.8M samples
    (≈ 63 min a batch, as the paper says), crops 2–20 s. LARGE: the same recipe (fairseq ships
    no large audio config). TINY: the tiny recipe of the other presets.
    """
    base = dict(steps=400_000, optimizer=Adam(lr=5e-4, betas=(0.9, 0.98), eps=1e-6,
                                              weight_decay=0.01),
                schedule=Schedule(curve="tri_stage", warmup=0.03, hold=0.9, init_lr_scale=0.01,
                                  final_lr_scale=0.01),
                clip_norm=0.0, batch_seconds=16 * 3.8e6 / 16000, group_seconds=3.8e6 / 16000,
                crop_seconds=320_000 / 16000, min_seconds=32_000 / 16000)
    recipe = {"tiny": {**TINY, "optimizer": Adam(lr=1e-3)}, "base": base, "large": base}
    return _pretrain(corpus, data2vec_model(size), recipe[size], overrides)


def wavlm(corpus: Corpus, targets: Labels | Sequence[Labels], size: Size = "base",
          **overrides) -> Pretrain:
    """WavLM BASE: HuBERT BASE's recipe (400k updates, lr 5e-4, warmup 8 %, 32 GPUs × 87.5 s;
    the paper trains Base "following HuBERT") on ``targets`` (the paper: HuBERT iteration-2
    style labels, k=500 clusters of a HuBERT layer). LARGE: HuBERT LARGE's recipe.
    """
    return _pretrain(corpus, wavlm_model(size, labels=targets), _HUBERT_RECIPE[size],
                     overrides)


__all__ = ["wav2vec", "vq_wav2vec", "wav2vec2", "hubert", "data2vec", "wavlm", "best_rq",
           "Pretrain", "Adam", "Schedule"]


# ----------------------------------------------------------------------------- fine-tuning
# Imported here, not at the top, so the pretraining presets above stay untouched.

FTSize = Literal["tiny", "base"]

#: fairseq base fine-tuning rows by labeled minutes (reference §4): up to 10m/1h, 10h, 100h, 960h
_FT_BASE_ROWS = (
    (60, dict(lr=5e-5, steps=13_000, layerdrop=0.1, freeze=10_000, time=0.65, channel=0.25)),
    (600, dict(lr=5e-5, steps=20_000, layerdrop=0.05, freeze=10_000, time=0.65, channel=0.5)),
    (6000, dict(lr=3e-5, steps=80_000, layerdrop=0.1, freeze=0, time=0.65, channel=0.5)),
    (math.inf, dict(lr=1e-4, steps=320_000, layerdrop=0.1, freeze=0, time=0.5, channel=0.1)),
)

#: tiny: a few hundred updates of ~16 s on 2 CPU cores; the head alone trains for the first 20 %
_FT_TINY = dict(lr=1e-3, steps=300, layerdrop=0.0, freeze=60, time=0.5, channel=0.25,
                batch_seconds=16.0, checkpoint_every=100)


#: ``finetune(labeled_minutes=...)`` when neither it nor a ``split=`` names a budget
DEFAULT_LABELED_MINUTES = 1.0


def _labeled_split(labeled_minutes, split: Split | None) -> Split:
    """One labeled budget from ``labeled_minutes=`` and ``split=``: either may name it (the other
    takes it); two different budgets are refused rather than one silently dropped."""
    split_names = split is not None and "labeled_minutes" in split.model_fields_set
    if labeled_minutes is ...:
        minutes = split.labeled_minutes if split_names else DEFAULT_LABELED_MINUTES
    else:
        if split_names and split.labeled_minutes != labeled_minutes:
            raise SpecError(
                f"finetune: labeled_minutes={labeled_minutes} but split=Split(labeled_minutes="
                f"{split.labeled_minutes}); give the budget once (either argument)")
        minutes = labeled_minutes
    return (split or Split()).with_(labeled_minutes=minutes)


def _ft_recipe(model: SSLModel, size: str, labeled_minutes, split: Split | None = None) -> dict:
    split = _labeled_split(labeled_minutes, split)
    labeled_minutes = split.labeled_minutes
    if size == "tiny":
        row = _FT_TINY
    elif size == "base":
        minutes = math.inf if labeled_minutes is None else labeled_minutes
        row = next(r for limit, r in _FT_BASE_ROWS if minutes <= limit)
    else:
        raise ValueError(f"fine-tuning size must be 'tiny' or 'base'; got {size!r}")
    mask = finetune_mask(model, FT_MASK.with_(prob=row["time"], channel_prob=row["channel"]))
    return dict(split=split,
                steps=row["steps"], optimizer=Adam(lr=row["lr"], eps=1e-8, weight_decay=0.0),
                layerdrop=row["layerdrop"], freeze_steps=row["freeze"], mask=mask,
                batch_seconds=row.get("batch_seconds", 1600.0),
                group_seconds=row.get("group_seconds", 200.0 if size == "base" else None),
                checkpoint_every=row.get("checkpoint_every", 500))


def finetune(pretrained: Pretrain, corpus: Corpus | None = None,
             units: Literal["char", "phone"] = "char", labeled_minutes: float | None = ...,
             size: FTSize = "base", **overrides) -> FineTune:
    """CTC fine-tuning of a ``Pretrain`` node on ``labeled_minutes`` of its (or another) corpus.

    ``labeled_minutes`` (default 1.0; None = every non-test utterance) and a ``split=Split(...)``
    combine: the budget may be named in either, and naming two different ones is an error.

    ``base``: fairseq's row for the budget (10m/1h: lr 5e-5, 13k updates, 10k frozen,
    layerdrop 0.1, masks 0.65 / channel 0.25; then 10h, 100h, 960h), tri-stage LR, 1,600 s
    batches. ``tiny``: 300 updates at lr 1e-3, 60 frozen. Overrides apply to the node.
    """
    recipe = _ft_recipe(pretrained.model, size, labeled_minutes, overrides.pop("split", None))
    return FineTune(pretrained=pretrained, corpus=corpus or pretrained.corpus, units=units,
                    **{**recipe, **overrides})


def finetune_from_scratch(model: SSLModel, corpus: Corpus, units: Literal["char", "phone"] = "char",
                          labeled_minutes: float | None = ..., size: FTSize = "base",
                          **overrides) -> FineTune:
    """The no-pretraining baseline: the same recipe on a randomly initialised ``model``.

    Nothing is frozen (``freeze_steps=0``) and the conv encoder trains with the architecture's
    own ``feature_grad_mult``; everything else matches :func:`finetune`, so the two differ only
    in the initial weights.
    """
    recipe = _ft_recipe(model, size, labeled_minutes, overrides.pop("split", None))
    recipe.update(freeze_steps=0, feature_grad_mult=model.feature_grad_mult or 1.0)
    return FineTune(pretrained=None, model=model, corpus=corpus, units=units,
                    **{**recipe, **overrides})


__all__ += ["ASRScore", "FineTune", "Split", "finetune", "finetune_from_scratch"]
