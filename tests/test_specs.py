"""Fingerprints, variants and spec-file loading."""

from __future__ import annotations

import pytest

from ssl_graph import MFCC, Alignments, ClusterQuality, Corpus, KMeans, Labels, SpecError
from ssl_graph.graph.pipeline import load_pipeline
from ssl_graph.specs.base import is_runtime_field
from ssl_graph.specs.nodes import ANNOTATION_FIELDS

CORPUS = Corpus(root="wav", transcripts="t.tsv", alignments="a.tsv")
MF = MFCC(corpus=CORPUS)
KM = KMeans(features=MF, k=10)
LAB = Labels(kmeans=KM)

# a different valid value for every field of every node kind
ALTERNATIVES = {
    Corpus: dict(root="other", glob="*.wav", manifest="m.tsv", transcripts="t2.tsv",
                 alignments="a2.tsv", sample_rate=8000, resample=True, identity="hash",
                 layout="kaldi", supervisions="s.jsonl", transcripts_format="kaldi_text",
                 alignments_format="ctm", speakers="spk.tsv", speakers_column=2,
                 commands="run"),
    MFCC: dict(corpus=CORPUS.with_(root="x"), deltas=1, workers=4),
    KMeans: dict(features=MF.with_(deltas=0), k=11, fit_fraction=0.5, seed=1,
                 algorithm="minibatch", max_iter=7, n_init=2, tol=0.1, batch_size=5,
                 refit_on_growth=True),
    Labels: dict(kmeans=KM.with_(k=12), features=MFCC(corpus=CORPUS.with_(root="y")),
                 batch_frames=128),
    ClusterQuality: dict(labels=LAB.with_(kmeans=KM.with_(seed=3)),
                         alignments=Alignments(corpus=CORPUS, path="a3.tsv")),
}
BASE = {Corpus: CORPUS, MFCC: MF, KMeans: KM, Labels: LAB, ClusterQuality: ClusterQuality(labels=LAB)}


@pytest.mark.parametrize("cls", list(ALTERNATIVES))
def test_every_semantic_field_changes_the_fingerprint_and_runtime_fields_do_not(cls):
    base = BASE[cls]
    assert set(ALTERNATIVES[cls]) == set(cls.model_fields), "test must cover every field"
    for name, value in ALTERNATIVES[cls].items():
        variant = base.with_(**{name: value})
        # annotation file names are versioned by their own nodes, never by the corpus's
        if is_runtime_field(cls, name) or (cls is Corpus and name in ANNOTATION_FIELDS):
            assert variant.fingerprint == base.fingerprint, name
        else:
            assert variant.fingerprint != base.fingerprint, name


def test_upstream_change_propagates_and_identical_specs_are_equal():
    km2 = KM.with_(k=50)
    assert Labels(kmeans=km2).fingerprint != LAB.fingerprint
    # a fresh, equal object has the same fingerprint: identical specs collapse
    same = Labels(kmeans=KMeans(features=MFCC(corpus=Corpus(root="wav", transcripts="t.tsv",
                                                            alignments="a.tsv")), k=10))
    assert same.fingerprint == LAB.fingerprint and same == LAB


def test_with_validates_and_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown field"):
        KM.with_(clusters=3)
    with pytest.raises(ValueError):
        KM.with_(k=1)  # k >= 2
    with pytest.raises(ValueError):
        KMeans(features=MF, k=10, bogus=1)  # extra=forbid


def test_loader_names_nodes_and_derives_names(tmp_path):
    spec = tmp_path / "p.py"
    spec.write_text(
        "from ssl_graph import *\n"
        "corpus = Corpus(root='wav')\n"
        "lab = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=5))\n"
        "again = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=5))\n"
        "sweep = [KMeans(features=MFCC(corpus=corpus), k=k) for k in (3, 4)]\n"
    )
    p = load_pipeline(spec)
    names = [p.name_of(n) for n in p.order()]
    assert set(names) == {"corpus", "lab", "lab.kmeans", "lab.kmeans.features",
                          "sweep[0]", "sweep[1]"}
    # identical specs collapse into one graph node with an alias
    assert len(p.graph) == 6
    assert p.node("again").fingerprint == p.node("lab").fingerprint
    assert p.graph.has_edge(p.node("lab.kmeans.features").fingerprint, p.node("lab").fingerprint)


@pytest.mark.parametrize("body, message", [
    ("KMeans(features=MFCC(corpus=Corpus(root='w')), k=1)", r"p\.py:2: KMeans\.k: Input should be"),
    ("KMeans(features=Corpus(root='w'), k=5)", r"p\.py:2: KMeans\.features"),
    ("Labels(kmeans=None)", r"p\.py:2: Labels\.kmeans"),
    ("undefined_name", r"p\.py:2: NameError"),
    ("MFCC(corpus=Corpus(root='w', identity='md5'))", r"p\.py:2: Corpus\.identity"),
])
def test_bad_specs_fail_with_one_line_naming_file_line_and_field(tmp_path, body, message):
    spec = tmp_path / "p.py"
    spec.write_text(f"from ssl_graph import *\nx = {body}\n")
    with pytest.raises(SpecError, match=message) as err:
        load_pipeline(spec)
    assert "\n" not in str(err.value)


def test_plan_time_checks_name_the_nodes(tmp_path):
    spec = tmp_path / "p.py"
    spec.write_text(
        "from ssl_graph import *\n"
        "corpus = Corpus(root='wav')\n"  # no alignments
        "q = ClusterQuality(labels=Labels(kmeans=KMeans(features=MFCC(corpus=corpus))))\n"
        "dims = Labels(kmeans=KMeans(features=MFCC(corpus=corpus)), "
        "features=MFCC(corpus=corpus, deltas=0))\n"
    )
    with pytest.raises(SpecError, match="q: corpus corpus has no phone alignments"):
        load_pipeline(spec)
    spec.write_text(spec.read_text().replace("q = ", "# "))
    with pytest.raises(SpecError, match="dims: features have 13 dims but k-means dims.kmeans"):
        load_pipeline(spec)


def test_syntax_error_names_the_line(tmp_path):
    spec = tmp_path / "p.py"
    spec.write_text("from ssl_graph import *\nx = Corpus(root='w'\n")
    with pytest.raises(SpecError, match=r"p\.py:\d: syntax error"):
        load_pipeline(spec)


def test_relative_paths_resolve_against_the_spec_file(tmp_path):
    (tmp_path / "sub").mkdir()
    spec = tmp_path / "sub" / "p.py"
    spec.write_text("from ssl_graph import *\ncorpus = Corpus(root='../wav')\n")
    node = load_pipeline(spec).node("corpus")
    assert node.path(node.root).resolve() == (tmp_path / "wav").resolve()
    # the fingerprint holds the path as written, so moving the checkout keeps caches valid
    assert node.semantic()["root"] == "../wav"


def test_the_readme_names_resolve_from_the_package_alone():
    """``ssl_graph.Project.from_nodes`` and ``ssl_graph.datasets.UtteranceDataset`` as the README
    writes them (no import of their modules first), without importing torch for Project."""
    import subprocess
    import sys

    code = ("import sys, ssl_graph; p = ssl_graph.Project.from_nodes; assert 'torch' not in "
            "sys.modules; d = ssl_graph.datasets.UtteranceDataset; print(p.__qualname__, "
            "d.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["Project.from_nodes", "UtteranceDataset"]
