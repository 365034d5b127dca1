"""HuBERT label alignment: ratios, trimming, crops and the plan-time rate check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssl_graph.nn.targets import align_targets, crop_labels
from ssl_graph.specs.base import SpecError
from ssl_graph.specs.components import check_label_alignment, hubert_model
from ssl_graph.specs.nodes import MFCC, Corpus, KMeans, Labels


def _labels(k: int = 100) -> Labels:
    return Labels(kmeans=KMeans(features=MFCC(corpus=Corpus(root="audio")), k=k))


def test_ratio_two_takes_every_second_label():
    lab = np.arange(98)  # 1 s of 100 Hz MFCC labels; 49 model frames at 50 Hz
    out, kept = align_targets(lab, 49, 2.0)
    assert kept == 49 and out.tolist() == list(range(0, 98, 2))


def test_ratio_two_trims_frames_without_labels():
    out, kept = align_targets(np.arange(97), 49, 2.0)  # 2·49 > 97 → int(97 / 2) = 48 frames
    assert kept == 48 and out.tolist() == list(range(0, 96, 2))


def test_ratio_one_and_half():
    out, kept = align_targets(np.arange(10), 12, 1.0)
    assert kept == 10 and out.tolist() == list(range(10))
    out, kept = align_targets(np.arange(5), 10, 0.5)  # 25 Hz labels on 50 Hz frames
    assert kept == 10 and out.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    out, kept = align_targets(np.arange(5), 11, 0.5)  # 0.5·11 > 5 → int(5 / 0.5) = 10
    assert kept == 10


def test_torch_batch_alignment():
    lab = torch.arange(20).view(2, 10)
    out, kept = align_targets(lab, 5, 2.0)
    assert kept == 5 and out.tolist() == [[0, 2, 4, 6, 8], [10, 12, 14, 16, 18]]


def test_crop_labels_like_fairseq():
    lab = np.arange(300)  # 3 s at 100 Hz
    crop = crop_labels(lab, start=8000, n_samples=16000, label_rate=100)
    assert crop.tolist() == list(range(50, 150))


def test_plan_time_label_check():
    model = hubert_model("tiny", _labels())
    assert check_label_alignment(model, 100.0) == 2.0
    assert check_label_alignment(model, 50.0) == 1.0
    assert check_label_alignment(model, 25.0) == 0.5
    model.check_labels("hubert_it1")
    odd = model.with_(
        encoder=model.encoder.with_(conv_layers=((64, 10, 4),) + ((64, 3, 2),) * 6)
    )  # stride 256: 62.5 Hz frames
    with pytest.raises(SpecError, match="ratio 1.6 is not an integer or 1/integer"):
        odd.check_labels("hubert_odd")
    with pytest.raises(SpecError, match="hubert_odd"):
        check_label_alignment(odd, 100.0, name="hubert_odd")
