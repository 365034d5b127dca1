"""FineTune / ASRScore specs: resolved defaults, refusals, fingerprints and preset recipes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ssl_graph import Corpus
from ssl_graph.presets import finetune, finetune_from_scratch, wav2vec2
from ssl_graph.specs.components import wav2vec2_model
from ssl_graph.specs.finetune import FT_MASK, FineTune, finetune_mask

CORPUS = Corpus(root="wav", transcripts="t.tsv")


def test_pretrained_defaults_and_width_scaled_mask():
    pre = wav2vec2(CORPUS, size="tiny")
    ft = FineTune(pretrained=pre, corpus=CORPUS)
    assert ft.model is None and ft.architecture == pre.model
    assert (ft.freeze_steps, ft.feature_grad_mult, ft.optimizer.eps) == (10_000, 0.0, 1e-8)
    assert ft.mask == FT_MASK.with_(channel_length=11)  # 64 of 768 → 11 of 128
    assert finetune_mask(wav2vec2_model("base")) == FT_MASK


def test_from_scratch_needs_a_model_and_trains_everything():
    with pytest.raises(ValidationError, match="pretrained=None trains from scratch and needs model"):
        FineTune(corpus=CORPUS)
    ft = FineTune(model=wav2vec2_model("tiny"), corpus=CORPUS)
    assert ft.freeze_steps == 0 and ft.feature_grad_mult == 0.1
    assert [n for _, n in ft.iter_nodes()] == [CORPUS, ft.transcripts]


def test_model_must_match_the_pretrained_one():
    pre = wav2vec2(CORPUS, size="tiny")
    with pytest.raises(ValidationError, match="FineTune.model differs from pretrained.model"):
        FineTune(pretrained=pre, model=wav2vec2_model("base"), corpus=CORPUS)


def test_runtime_fields_leave_the_fingerprint_alone():
    ft = finetune(wav2vec2(CORPUS, size="tiny"), size="tiny")
    assert ft.with_(device="cpu", checkpoint_every=7, log_every=3).fingerprint == ft.fingerprint
    assert ft.with_(seed=1).fingerprint != ft.fingerprint
    assert ft.with_(split=ft.split.with_(labeled_minutes=10.0)).fingerprint != ft.fingerprint


@pytest.mark.parametrize("minutes, steps, lr, freeze, channel", [
    (10, 13_000, 5e-5, 10_000, 0.25),  # 10 min
    (60, 13_000, 5e-5, 10_000, 0.25),  # 1 h
    (600, 20_000, 5e-5, 10_000, 0.5),  # 10 h
    (6000, 80_000, 3e-5, 0, 0.5),  # 100 h
    (None, 320_000, 1e-4, 0, 0.1),  # everything (960 h row)
])
def test_base_recipe_follows_the_reference_rows(minutes, steps, lr, freeze, channel):
    ft = finetune(wav2vec2(CORPUS), labeled_minutes=minutes)
    assert (ft.steps, ft.optimizer.lr, ft.freeze_steps) == (steps, lr, freeze)
    assert ft.mask.channel_prob == channel and ft.mask.channel_length == 64
    assert ft.batch_seconds == 1600.0 and ft.schedule.curve == "tri_stage"
    assert ft.split.labeled_minutes == minutes


def test_scratch_preset_differs_only_in_initialisation():
    pre = wav2vec2(CORPUS, size="tiny")
    a = finetune(pre, size="tiny", labeled_minutes=2.0)
    b = finetune_from_scratch(pre.model, CORPUS, size="tiny", labeled_minutes=2.0)
    assert (b.pretrained, b.model, b.freeze_steps, b.feature_grad_mult) == (None, pre.model, 0, 0.1)
    same = ("steps", "optimizer", "schedule", "mask", "split", "batch_seconds", "layerdrop")
    assert all(getattr(a, f) == getattr(b, f) for f in same)


@pytest.mark.parametrize("preset", ["finetune", "finetune_from_scratch"])
def test_labeled_minutes_and_split_combine_or_refuse(preset):
    from ssl_graph.specs.base import SpecError
    from ssl_graph.specs.finetune import Split

    pre = wav2vec2(Corpus(root="wav"), size="tiny")

    def make(**kw):
        if preset == "finetune":
            return finetune(pre, size="base", **kw)
        return finetune_from_scratch(pre.model, pre.corpus, size="base", **kw)

    assert make().split.labeled_minutes == 1.0
    # the budget named in one place reaches the split, whichever place it is
    both = make(labeled_minutes=60.0, split=Split(by="speaker"))
    assert (both.split.by, both.split.labeled_minutes) == ("speaker", 60.0)
    inside = make(split=Split(by="speaker", labeled_minutes=60.0))
    assert inside.split.labeled_minutes == 60.0
    assert inside.optimizer == both.optimizer and inside.steps == both.steps  # the 1 h row
    assert inside.fingerprint == both.fingerprint
    with pytest.raises(SpecError, match="labeled_minutes=2.0 but split=Split"):
        make(labeled_minutes=2.0, split=Split(labeled_minutes=3.0))
