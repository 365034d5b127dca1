"""Fingerprints do not move under an unchanged spec: an upgrade must not recompute caches.

Every node of every example spec in ``specs/`` is resolved and its fingerprint compared with
``tests/golden/fingerprints.json``. A code change that moves one (a new field that enters the
fingerprint at its default, a changed inlining of components, a renamed kind) would make every
user's cached node stale after upgrading: every model retrained. That is right only when the
computation really changed, and then the node's ``op_version`` says so.

When this fails: a new field whose default computes what was computed before is declared with
``later()`` (``ssl_graph/specs/base.py``); a real change of computation bumps ``op_version``; an
edit of an example spec is expected. Then regenerate (and review the diff):

    python tests/test_fingerprint_golden.py --update
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "fingerprints.json"
#: the example specs read these; the golden file holds the full (non-quick) recipes
ENV = ("SSL_GRAPH_DEMO_QUICK", "SSL_GRAPH_DEMO_DATA", "SSL_GRAPH_STUDY_SEEDS",
       "SSL_GRAPH_STUDY_VARIANT_SEEDS")


def fingerprints() -> dict[str, dict[str, str]]:
    from ssl_graph.specs.loader import load_spec_file

    saved = {k: os.environ.pop(k) for k in ENV if k in os.environ}
    try:
        return {f.name: {name: node.fingerprint
                         for name, node in sorted(load_spec_file(f).nodes.items())}
                for f in sorted((ROOT / "specs").glob("[!_]*.py"))}
    finally:
        os.environ.update(saved)


def test_example_specs_keep_their_fingerprints():
    golden = json.loads(GOLDEN.read_text())
    now = fingerprints()
    moved = [f"{spec}:{name} {fp} → {now[spec][name]}"
             for spec, nodes in golden.items() if spec in now
             for name, fp in nodes.items() if name in now[spec] and now[spec][name] != fp]
    compared = sum(name in now.get(spec, {}) for spec, nodes in golden.items() for name in nodes)
    assert compared >= 0.8 * sum(map(len, golden.values())), \
        "most golden nodes are gone: regenerate tests/golden/fingerprints.json (see docstring)"
    assert not moved, (f"{len(moved)} fingerprints moved under unchanged specs (every cached "
                       "result of such a node would be recomputed after an upgrade): "
                       f"{moved[:5]}; see this test's docstring")


def test_a_model_cached_before_data2vec_wavlm_and_best_rq_keeps_its_fingerprint():
    """The demo's iteration-1 HuBERT as stores written before issue 20's fields hold it."""
    from ssl_graph import MFCC, Corpus, KMeans, Labels
    from ssl_graph.presets import hubert
    from ssl_graph.specs.training import Adam

    corpus = Corpus(root="../data/demo/wav")
    labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=100, fit_fraction=0.5))
    it1 = hubert(corpus, targets=labels, size="tiny", steps=1500, optimizer=Adam(lr=2e-3))
    semantic = json.dumps(it1.semantic())
    for name in ("augmentation", "pos_conv_layers", "relative_position", "noise_std", "logits"):
        assert f'"{name}"' not in semantic, name
    assert it1.with_(model=it1.model.with_(
        mask=it1.model.mask.with_(replace="noise"))).fingerprint != it1.fingerprint


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/test_fingerprint_golden.py --update")
    sys.path.insert(0, str(ROOT))
    GOLDEN.write_text(json.dumps(fingerprints(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
