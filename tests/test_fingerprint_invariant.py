"""The fingerprint invariant, for every spec class the package defines (issue 18, defect 11).

For every node kind and every component class, found by walking the package (not listed here,
so a new class cannot be forgotten): every semantic field, changed to another valid value,
changes the fingerprint (a component's: the digest of what it inlines into its holder), and
every runtime field does not. Which fields are runtime is pinned in ``RUNTIME`` below: marking
a field runtime removes it from the fingerprint, so one word (``SpanMask.prob = runtime(...)``)
would serve one cache for two different models while every behavioural check still passed; the
table makes that word a reviewed change.

Instances come from real specs (the presets, annotations, scores, a released checkpoint's
directory) and every Spec value nested in them. A class with no instance, or a field for which
no other valid value is found, fails the test by name: add an example or an alternative.
"""

from __future__ import annotations

import importlib
import itertools
import json
import pkgutil
import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

import ssl_graph
from ssl_graph.specs.base import Node, Spec, SpecError, digest, is_later_field, is_runtime_field

#: runtime fields, by the class that declares them (a class has those of its bases too)
RUNTIME: dict[str, set[str]] = {
    "MFCC": {"workers"},
    "KMeans": {"refit_on_growth"},  # keeps or refits centroids when the corpus grows
    "Labels": {"batch_frames"},
    # (not chunk_seconds: the model sees each chunk alone, so it shapes the frames)
    "_ModelFeatures": {"device", "workers", "threads"},
    "LayerSweep": {"batch_seconds"},
    # device and precision change numerics, not what is computed (README: Training at scale)
    # fp16's loss scaling, like precision, changes numerics (which steps overflow), not what is
    # computed
    "TrainingNode": {"device", "precision", "checkpoint_every", "log_every", "max_batch_seconds",
                     "threads", "workers", "print_seconds", "fp16_init_scale",
                     "fp16_scale_window", "min_loss_scale"},
    "Pretrain": {"valid_every"},  # evaluation changes no weight
    "ASRScore": {"batch_seconds", "device", "threads"},
}
#: semantic fields added after results were cached, left out of the fingerprint at their
#: default (``later()``): that default must compute exactly what was computed before the field
#: existed, or an upgrade serves old results for a new computation; this table reviews it
LATER: dict[str, set[str]] = {
    "Corpus": {"layout", "supervisions", "commands"},
    "Alignments": {"tier"},
    "Transcripts": {"format"},
    "_ModelFeatures": {"chunk_seconds"},
    "LayerFeatures": {"sweep"},
    "Pretrain": {"init", "valid"},
    "Split": {"dev_fraction", "by"},
    "ASRScore": {"decoder"},
    "Probe": {"alignments"},
    # data2vec / WavLM / BEST-RQ (issue 20): each default is wav2vec 2.0 / HuBERT as before
    "SSLModel": {"augmentation"},
    "Transformer": {"pos_conv_layers", "relative_position"},
    "SpanMask": {"replace", "noise_std"},
    "MaskedPrediction": {"logits"},
}
#: bases never used as such (each concrete subclass is checked with all its fields)
ABSTRACT = {"Spec", "Component", "Node", "Features", "Annotation", "TrainingNode",
            "_ModelFeatures", "_ConvStack"}
#: fields a validator always fills (from the checkpoint's config.json): no other value holds
DERIVED = {("PretrainedModel", "model"), ("PretrainedModel", "model_type")}
#: fields that are not part of their holder's result (they define other nodes)
ELSEWHERE = {
    # the corpus's annotation files become Alignments/Transcripts nodes with their own version
    ("Corpus", "transcripts"), ("Corpus", "alignments"), ("Corpus", "transcripts_format"),
    ("Corpus", "alignments_format"),
    # the speaker map is read at plan time and versioned only into what splits by speaker
    ("Corpus", "speakers"), ("Corpus", "speakers_column"),
}
#: fields with a single valid value today (kept for formats that are not supported yet)
ONE_VALUE = {("PretrainedModel", "format"),  # fairseq checkpoints are refused
             ("Contrastive", "similarity")}  # Literal["cosine"]


def spec_classes() -> list[type[Spec]]:
    """Every Spec subclass defined in the package, after importing all of its modules."""
    for mod in pkgutil.walk_packages(ssl_graph.__path__, "ssl_graph."):
        if mod.name.endswith(".__main__"):
            continue
        try:
            importlib.import_module(mod.name)
        except ImportError as exc:  # an optional extra (dask, tensorboard...) that is absent
            if "ssl_graph" in str(getattr(exc, "name", "") or ""):
                raise
    out, todo = [], [Spec]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("ssl_graph.") and sub not in out:
                out.append(sub)
                todo.append(sub)
    return sorted(out, key=lambda c: c.__name__)


def _released(tmp: Any) -> str:
    """A released checkpoint's directory (its config.json is all a spec reads)."""
    transformers = pytest.importorskip("transformers")
    transformers.HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, conv_dim=(32,) * 7).save_pretrained(tmp)
    return str(tmp)


def example_roots(tmp_path) -> list[Spec]:
    from ssl_graph import (
        MFCC,
        ASRScore,
        ClusterQuality,
        Corpus,
        KMeans,
        Labels,
        LayerFeatures,
        LayerSweep,
    )
    from ssl_graph.presets import (
        best_rq,
        data2vec,
        finetune,
        hubert,
        vq_wav2vec,
        wav2vec,
        wav2vec2,
        wavlm,
    )
    from ssl_graph.specs.annotations import Alignments, PhoneMap, Transcripts, WordAlignments
    from ssl_graph.specs.components_networks import GatedRelativePositionBias, Transformer
    from ssl_graph.specs.components_objectives import CodeTargets
    from ssl_graph.specs.decoding import BeamSearch, NGramLM
    from ssl_graph.specs.finetune import Split
    from ssl_graph.specs.pretrained import PretrainedModel
    from ssl_graph.specs.probe import Probe

    corpus = Corpus(root="wav", transcripts="t.tsv", alignments="a.tsv")
    mfcc = MFCC(corpus=corpus)
    km = KMeans(features=mfcc, k=10)
    labels = Labels(kmeans=km)
    it1 = hubert(corpus, targets=labels, size="tiny", steps=3)
    released = PretrainedModel(path=_released(tmp_path / "released"))
    sweep = LayerSweep(model=it1, layers=[1, 2])
    ft = finetune(it1, units="char", labeled_minutes=0.5, size="tiny", steps=3)
    ft_dev = ft.with_(split=Split(dev_fraction=0.1, test_fraction=0.2))  # dev_every counts
    return [
        ClusterQuality(labels=labels),
        Alignments(corpus=corpus, path="a.tsv", phones=PhoneMap.timit_39()),
        WordAlignments(corpus=corpus, path="w.tsv"),
        Transcripts(corpus=corpus, path="t.tsv"),
        it1, hubert(corpus, targets=labels, size="tiny", valid=0.1),  # valid_seed counts
        hubert(corpus, targets=labels, size="tiny", init=released),
        wav2vec2(corpus, size="tiny"), wav2vec(corpus, size="tiny"),
        best_rq(corpus, size="tiny", steps=3),  # log-mel front end, random-projection targets
        vq_wav2vec(corpus, "tiny", quantizer="gumbel"), vq_wav2vec(corpus, "tiny", quantizer="kmeans"),
        LayerFeatures(model=it1, layer=1), sweep, sweep.layer(2),
        ft, ft_dev, ASRScore(model=ft),
        ASRScore(model=ft, decoder=BeamSearch(beam=4, lm=NGramLM(order=2))),
        finetune(released, corpus=corpus, units="char", labeled_minutes=0.5, size="tiny"),
        CodeTargets(),  # (no fields; no preset uses it)
        data2vec(corpus, size="tiny"), wavlm(corpus, targets=labels, size="tiny"),
        # data2vec's positional conv stack and WavLM's relative position bias
        Transformer(pos_conv_layers=5, pos_conv_kernel=19,
                    relative_position=GatedRelativePositionBias()),
        PretrainedModel(path=_released(tmp_path / "released2")),  # (another valid path)
        Probe(upstream=mfcc, task="pr"), Probe(upstream=it1, task="sid"),
        Probe(upstream=it1, task="pc", layers=(1, 2)),
        Probe(upstream=mfcc, task="sid", head="mlp"),  # (hidden counts with an MLP head only)
    ]


def _children(value: Any) -> Iterator[Spec]:
    if isinstance(value, Spec):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _children(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _children(v)


def harvest(roots: list[Spec]) -> dict[type, list[Spec]]:
    """Every Spec instance reachable from ``roots``, by class (distinct ones, in order)."""
    out: dict[type, list[Spec]] = {}
    todo = list(roots)
    while todo:
        spec = todo.pop(0)
        seen = out.setdefault(type(spec), [])
        if any(fp(s) == fp(spec) for s in seen):
            continue
        seen.append(spec)
        for name in type(spec).model_fields:
            todo.extend(_children(getattr(spec, name)))
    return out


def fp(spec: Spec) -> str:
    """A node's fingerprint; for a component, the digest of what it inlines into its holder."""
    return spec.fingerprint if isinstance(spec, Node) else digest(spec.semantic())


# ---- other valid values of a field -----------------------------------------------------------
def _types(annotation: Any) -> list[Any]:
    """The alternatives of a (possibly Optional/Union/Annotated) annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(annotation) for t in _types(a)]
    return [annotation]


def _near(value: Any) -> list[Any]:
    """Values near the current one (most fields bound it: the caller validates)."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, value * 2, 1, 0, 2]
    if isinstance(value, float):
        return [value * 2, value / 2, value + 0.5, value - 0.05, 0.5, 0.1, 1.0, 0.0]
    if isinstance(value, str):
        return [value + "x"]
    return []


def _of_type(t: Any, pool: dict[type, list[Spec]]) -> Iterator[Any]:
    """Some values of annotation ``t`` (no None: a field is changed *to* something)."""
    origin = typing.get_origin(t)
    if origin is typing.Literal:
        yield from typing.get_args(t)
    elif t is bool:
        yield from (True, False)
    elif t in (int, float):
        yield from (t(1), t(2), t(3))
    elif t is str:
        yield "x"
    elif isinstance(t, type) and issubclass(t, Spec):
        yield from (s for c, specs in pool.items() if issubclass(c, t) for s in specs)
    elif origin in (tuple, list):
        elem = next((a for a in typing.get_args(t) if a is not Ellipsis), None)
        for e in _types(elem):
            yield from (origin([v]) for v in itertools.islice(_of_type(e, pool), 4))
    elif origin is dict:
        yield {"a": "b"}


def alternatives(spec: Spec, name: str, pool: dict[type, list[Spec]],
                 depth: int = 2) -> Iterator[Any]:
    """Candidate values for ``spec.name``, most likely first (the caller validates them)."""
    value, annotation = getattr(spec, name), type(spec).model_fields[name].annotation
    yield from _near(value)
    yield from (getattr(other, name) for other in pool.get(type(spec), []))  # other examples'
    if isinstance(value, Spec) and depth:
        yield from mutations(value, pool, depth - 1)
    if isinstance(value, (list, tuple)) and value:
        first = _near(value[0]) + (list(itertools.islice(mutations(value[0], pool, depth - 1), 3))
                                   if isinstance(value[0], Spec) and depth else [])
        yield from (type(value)([f, *value[1:]]) for f in first)
        yield type(value)(value[:-1]) if len(value) > 1 else type(value)([*value, *value])
    if isinstance(value, dict):
        yield {**value, "zz": "z"}
    for t in _types(annotation):
        yield from _of_type(t, pool)


def mutations(spec: Spec, pool: dict[type, list[Spec]], depth: int = 1) -> Iterator[Spec]:
    """Other valid specs like ``spec``: other examples of its class, then one semantic field
    changed (for fields holding a spec)."""
    yield from (s for s in pool.get(type(spec), []) if fp(s) != fp(spec))
    for name in type(spec).model_fields:
        if is_runtime_field(type(spec), name):
            continue
        for candidate in alternatives(spec, name, pool, depth):
            changed = _valid(spec, name, candidate)
            if changed is not None and fp(changed) != fp(spec):
                yield changed
                break


def _valid(spec: Spec, name: str, value: Any) -> Spec | None:
    try:
        changed = spec.with_(**{name: value})
    except (ValidationError, SpecError, ValueError, TypeError):
        return None
    return None if getattr(changed, name) == getattr(spec, name) else changed


def _changed(spec: Spec, name: str, pool) -> Spec | None:
    """``spec`` with ``name`` set to another valid value, or None if none was found."""
    for candidate in alternatives(spec, name, pool):
        changed = _valid(spec, name, candidate)
        if changed is not None:
            return changed
    return None


# ---- the invariant ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> dict[type, list[Spec]]:
    return harvest(example_roots(tmp_path_factory.mktemp("fingerprints")))


def test_every_spec_class_has_an_example(pool):
    classes = spec_classes()
    assert {c.__name__ for c in classes} >= {"Corpus", "MFCC", "SpanMask", "Pretrain", "FineTune"}
    missing = [c.__name__ for c in classes if c.__name__ not in ABSTRACT and c not in pool]
    assert not missing, f"spec classes with no example: {missing}; add one to example_roots()"
    stale = ABSTRACT - {c.__name__ for c in classes} - {"Spec"}
    assert not stale, f"ABSTRACT names classes that no longer exist: {stale}"
    fields = {(c.__name__, n) for c in classes for n in c.model_fields}
    stale = (DERIVED | ELSEWHERE | ONE_VALUE) - fields
    assert not stale, f"exemptions name fields that no longer exist: {sorted(stale)}"


def _against_table(table: dict[str, set[str]], marked) -> tuple[list[str], list[str]]:
    """(fields ``marked`` but not in ``table``, fields in ``table`` not ``marked``), over every
    spec class; a class has the table entries of its bases too."""
    unexpected, missing = [], []
    for cls in spec_classes():
        want = set().union(*(table.get(b.__name__, set()) for b in cls.__mro__))
        have = {n for n in cls.model_fields if marked(cls, n)}
        unexpected += [f"{cls.__name__}.{n}" for n in sorted(have - want)]
        missing += [f"{cls.__name__}.{n}" for n in sorted(want - have)]
    return unexpected, missing


def test_runtime_fields_are_exactly_the_reviewed_ones():
    unexpected, missing = _against_table(RUNTIME, is_runtime_field)
    assert not unexpected, (f"fields marked runtime (left out of fingerprints) without review: "
                            f"{unexpected}; if changing one can never change a result, add it "
                            "to RUNTIME, else drop runtime()")
    assert not missing, f"RUNTIME lists fields that are not runtime (any more): {missing}"


def test_later_fields_are_exactly_the_reviewed_ones():
    unexpected, missing = _against_table(LATER, is_later_field)
    assert not unexpected, (f"fields marked later() (left out of fingerprints at their default) "
                            f"without review: {unexpected}; add them to LATER if the default "
                            "computes what was computed before the field existed")
    assert not missing, f"LATER lists fields that are not later() fields: {missing}"


def test_a_later_field_is_out_of_the_fingerprint_only_at_its_default(pool):
    seen = 0
    for cls, specs in pool.items():
        for name in cls.model_fields:
            if not is_later_field(cls, name):
                continue
            default = cls.model_fields[name].default
            for spec in specs:
                at = spec.semantic()
                if getattr(spec, name) == default:
                    assert name not in at, f"{cls.__name__}.{name} at its default is fingerprinted"
                else:
                    assert name in at, f"{cls.__name__}.{name}={getattr(spec, name)!r} is not"
                seen += 1
    assert seen >= 20, seen  # (the examples hold later fields at both kinds of value)


def _classes_and_fields() -> list[tuple[str, str]]:
    return [(c.__name__, n) for c in spec_classes() if c.__name__ not in ABSTRACT
            for n in c.model_fields]


@pytest.mark.parametrize("cls_name,name", _classes_and_fields())
def test_field_changes_the_fingerprint_iff_it_is_semantic(pool, cls_name, name):
    (cls,) = [c for c in pool if c.__name__ == cls_name] or [None]
    assert cls is not None, f"{cls_name}: no example (see test_every_spec_class_has_an_example)"
    results = []  # (instance, changed) pairs where another valid value was found
    for spec in pool[cls]:
        changed = _changed(spec, name, pool)
        if changed is not None:
            results.append((spec, changed))
    if (cls_name, name) in DERIVED | ONE_VALUE:
        assert not results, f"{cls_name}.{name} takes another value now: remove it from " \
            "DERIVED / ONE_VALUE"
        return
    assert results, (f"{cls_name}.{name}: no other valid value found for any example; add one "
                     "to alternatives() or an example to example_roots()")
    moved = [fp(a) != fp(b) for a, b in results]
    if is_runtime_field(cls, name):
        assert not any(moved), f"runtime field {cls_name}.{name} changed a fingerprint"
    elif (cls_name, name) in ELSEWHERE:
        assert not any(moved), f"{cls_name}.{name} is in ELSEWHERE yet changes the fingerprint"
    else:
        assert any(moved), (f"semantic field {cls_name}.{name} changed "
                            f"({getattr(results[0][0], name)!r} -> "
                            f"{getattr(results[0][1], name)!r}) and no fingerprint did")


def test_component_fields_reach_the_node_that_holds_them(pool):
    """A component's digest is what its holder inlines: a SpanMask change moves the Pretrain."""
    pretrain = next(s for c, specs in pool.items() if c.__name__ == "Pretrain" for s in specs)
    model = pretrain.model
    mask = model.mask
    moved = pretrain.with_(model=model.with_(mask=mask.with_(prob=mask.prob / 2)))
    assert moved.fingerprint != pretrain.fingerprint
    json.dumps(moved.fingerprint_payload())  # (and stays plain JSON)


def test_chunk_seconds_shapes_layer_features():
    """Why ``chunk_seconds`` is semantic (it was a runtime field, so two chunkings shared one
    cache): the model sees each chunk alone, so the frames of longer audio differ."""
    torch = pytest.importorskip("torch")
    import numpy as np

    from ssl_graph.nn.model import build_model
    from ssl_graph.ops.layer_features import extract
    from ssl_graph.specs.components_presets import wav2vec2_model

    torch.manual_seed(0)
    model = build_model(wav2vec2_model("tiny")).eval()
    wave = np.random.default_rng(0).standard_normal(32000).astype(np.float32)
    whole = extract(model, "cpu", wave, 1, len(wave), 400)
    halves = extract(model, "cpu", wave, 1, len(wave) // 2, 400)
    # two chunks: the conv encoder loses frames at each chunk's edges (and no frame attends
    # across the cut), so the stored result itself differs
    assert len(halves) < len(whole)
