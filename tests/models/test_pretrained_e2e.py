"""A released HuBERT (random, saved by transformers) as a node: its layer features are clustered,
a HuBERT iteration continues from it and is fine-tuned; both export back to transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import transformers

from ssl_graph.api import Project
from ssl_graph.audio.io import read_audio
from ssl_graph.specs.base import SpecError

from ..conftest import ROOT, make_corpus

SPEC = '''
from ssl_graph import ASRScore, Corpus, KMeans, Labels, LayerFeatures, PretrainedModel
from ssl_graph.presets import finetune, hubert
from ssl_graph.specs.decoding import BeamSearch, NGramLM

corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="alignments.tsv")
released = PretrainedModel(path="released")
feats = LayerFeatures(model=released, layer=2, corpus=corpus)
km = KMeans(features=feats, k=8, fit_fraction=1.0, seed=0, max_iter=10)
labels = Labels(kmeans=km)
it2 = hubert(corpus, targets=labels, size="tiny", init=released, steps=3, batch_seconds=2.0,
             crop_seconds=1.0)
ft = finetune(it2, units="char", labeled_minutes=0.5, size="tiny", steps=3, batch_seconds=4.0)
score = ASRScore(model=ft)
score_beam = ASRScore(model=ft, decoder=BeamSearch(beam=4))
score_lm = ASRScore(model=ft, decoder=BeamSearch(beam=4, lm=NGramLM(order=2)))
ft_released = finetune(released, corpus=corpus, units="char", labeled_minutes=0.5, size="tiny",
                       steps=2, batch_seconds=4.0)
'''


def save_released(path, seed: int) -> None:
    """A random HF HuBERT with the tiny preset's geometry (so it can initialise the tiny one)."""
    torch.manual_seed(seed)
    cfg = transformers.HubertConfig(
        hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
        conv_dim=(64,) * 7, num_conv_pos_embeddings=32, num_conv_pos_embedding_groups=4,
        layerdrop=0.0)
    transformers.HubertModel(cfg).save_pretrained(path)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    d = tmp_path_factory.mktemp("released")
    make_corpus(d, 8)
    save_released(d / "released", seed=0)
    (d / "p.py").write_text(SPEC)
    project = Project(d / "p.py", str(d / "store"))
    project.run(["score", "score_beam", "score_lm", "ft_released"])
    return project


def _wave(project, utt="") -> torch.Tensor:
    wav = sorted((project.spec_path.parent / "wav").glob("*.flac"))[0]
    return torch.from_numpy(read_audio(wav, wav.stem, 16000, False))[None]


def test_released_layer_features_equal_transformers(project):
    hf = transformers.HubertModel.from_pretrained(project.spec_path.parent / "released").eval()
    wav = sorted((project.spec_path.parent / "wav").glob("*.flac"))[0]
    with torch.no_grad():
        ref = hf(_wave(project), output_hidden_states=True).hidden_states[2][0].numpy()
    ours = project["feats"].features(wav.stem)
    assert ours.shape == ref.shape
    assert abs(ours - ref).max() <= 1e-5


def test_pipeline_ran_end_to_end(project):
    assert project["released"].record["metrics"]["parameters"] > 0
    assert project["it2"].record["step"] == 3
    assert project["score"].metrics["wer"] >= 0.0
    assert project["ft_released"].record["step"] == 2


def test_continued_pretraining_starts_from_the_release(project):
    """it2's backbone moved away from the release's, but only by 3 small updates."""
    from safetensors.torch import load

    backend = project.store.backend
    start = load(backend.read_bytes(f"{project['released'].key}/model.safetensors"))
    end = load(backend.read_bytes(f"{project['it2'].key}/model.safetensors"))
    w = "context.layers.0.fc1.weight"
    assert not torch.equal(start[w], end[w])
    assert (start[w] - end[w]).abs().max() < 0.05  # fresh init would differ by ~the weights
    assert start[w].abs().max() > 0.05


def test_greedy_beam_and_lm_scores_side_by_side_in_the_report(project):
    from ssl_graph.model_io.arpa import ArpaLM
    from ssl_graph.report import build_report

    rows = {r["node"]: r for r in build_report(project).rows}
    assert rows["score"]["decoder"] == "greedy"
    assert rows["score_beam"]["decoder"] == "beam 4"
    assert rows["score_lm"]["decoder"] == "beam 4 + 2-gram LM (α=0.5, β=1)"
    for name in ("score", "score_beam", "score_lm"):
        assert rows[name]["wer"] is not None and rows[name]["wer"] >= 0.0
    rec = project["score_lm"].record
    assert rec["lm"]["sentences"] == project["ft"].record["n_labeled"]
    raw = project.store.backend.read_bytes(f"{project['score_lm'].key}/lm.arpa")
    lm = ArpaLM(raw.decode())
    assert lm.order == 2 and len(lm.probs) == rec["lm"]["ngrams"]
    split = json.loads(project.store.backend.read_bytes(f"{project['ft'].key}/split.json"))
    hyps = json.loads(project.store.backend.read_bytes(f"{project['score_lm'].key}/hypotheses.json"))
    assert sorted(hyps) == sorted(split["test"])  # test utterances decoded, never in the LM


def _export(project, node, out, *extra):
    return subprocess.run(
        [sys.executable, "-m", "ssl_graph", "--store", str(project.store.url), "export", *extra,
         f"{project.spec_path}:{node}", str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_export_it2_and_ft_load_in_transformers(project, tmp_path):
    from ssl_graph.nn import build_model
    from ssl_graph.nn.ctc import build_ctc_model
    from ssl_graph.train.checkpoint import load_weights

    r = _export(project, "it2", tmp_path / "it2")  # the short form: export SPEC:NODE DIR
    assert r.returncode == 0, r.stderr
    r = _export(project, "ft", tmp_path / "ft", "model", "--format", "hf")
    assert r.returncode == 0, r.stderr
    wave = _wave(project)
    backend = project.store.backend
    it2 = project["it2"].node
    ours = build_model(it2.model).eval()
    load_weights(backend, project["it2"].key, ours)
    hf = transformers.AutoModel.from_pretrained(tmp_path / "it2").eval()
    assert type(hf).__name__ == "HubertModel"
    ft = project["ft"].node
    ctc = build_ctc_model(ft, len(project["ft"].record["vocab"])).eval()
    load_weights(backend, project["ft"].key, ctc)
    hf_ctc = transformers.AutoModelForCTC.from_pretrained(tmp_path / "ft").eval()
    assert hf_ctc.config.mask_time_prob == ft.mask.prob  # the fine-tune's SpecAugment
    assert hf_ctc.config.final_dropout == ft.final_dropout
    vocab = json.loads((tmp_path / "ft" / "vocab.json").read_text())
    assert sorted(vocab, key=vocab.get) == project["ft"].record["vocab"]
    with torch.no_grad():
        mine, _ = ours.extract_features(wave)
        assert (mine - hf(wave).last_hidden_state).abs().max() <= 1e-5
        logits, _ = ctc(wave)
        assert (logits - hf_ctc(wave).logits).abs().max() <= 1e-5


def test_export_refuses_stale_and_non_model_nodes(project, tmp_path):
    r = _export(project, "km", tmp_path / "x", "model")
    assert r.returncode == 1 and "export model takes a Pretrain or FineTune" in r.stderr
    edited = project.spec_path.parent / "edited.py"  # it2 edited: one more step
    edited.write_text(SPEC.replace("steps=3, batch_seconds=2.0", "steps=4, batch_seconds=2.0"))
    with pytest.raises(SpecError, match="it2 is stale"):
        Project(edited, project.store)["it2"].export(tmp_path / "y")
    assert not (tmp_path / "y").exists()


def test_planning_a_released_checkpoint_does_not_import_torch(project):
    code = ("import sys; from ssl_graph.api import Project; "
            f"p = Project({str(project.spec_path)!r}, {str(project.store.url)!r}); "
            "assert not any(st.stale for st in p.plan().values()); "
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_changed_checkpoint_reruns_dependents_touched_does_not(project):
    released = project.spec_path.parent / "released"
    weights = released / "model.safetensors"
    os.utime(weights, (1, 1))  # touched: same content
    plan = Project(project.spec_path, project.store).plan()
    assert plan["released"].stale and "content unchanged" in plan["released"].reasons[0]
    assert not plan["feats"].stale and not plan["it2"].stale
    save_released(released, seed=1)  # a different checkpoint at the same path
    plan = Project(project.spec_path, project.store).plan()
    assert plan["released"].reasons == ["checkpoint changed (released)"]
    assert plan["feats"].stale and plan["it2"].stale and plan["ft_released"].stale


def test_pickled_and_fairseq_checkpoints_refused(tmp_path):
    from ssl_graph import PretrainedModel

    save_released(tmp_path / "m", seed=0)
    (tmp_path / "m" / "model.safetensors").rename(tmp_path / "m" / "pytorch_model.bin")
    from ssl_graph.model_io.hf_checkpoint import weight_files

    with pytest.raises(SpecError, match="pickled weights"):
        weight_files(tmp_path / "m", "released")
    with pytest.raises(ValueError, match="fairseq checkpoints are pickled"):
        PretrainedModel(path=str(tmp_path / "m"), format="fairseq")
    with pytest.raises(ValueError, match="not a directory"):
        PretrainedModel(path=str(tmp_path / "nowhere"))
