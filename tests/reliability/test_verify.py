"""``ssl-graph verify [SPEC] [--repair]`` finds every injected fault, per node, and repair makes
the next run recompute just the damaged utterances (defect 4 of issue 8)."""

from __future__ import annotations

import json

import pytest

from .conftest import assert_same, cli, n_nodes, node_dir, ran, snapshot, tree


def _part_chunk(wd, kind):
    files = sorted(p for p in (node_dir(wd, kind) / "parts" / "00001" / "c").rglob("*") if p.is_file())
    return files[0]


def _truncate(p):
    p.write_bytes(p.read_bytes()[:-7])


def _flip(p):
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 1
    p.write_bytes(bytes(raw))


FAULTS = {
    "missing chunk": (lambda wd: _part_chunk(wd, "mfcc").unlink(), "mfcc", "is missing"),
    "truncated chunk": (lambda wd: _truncate(_part_chunk(wd, "labels")), "labels", "corrupt"),
    "bit flip": (lambda wd: _flip(_part_chunk(wd, "mfcc")), "mfcc", "checksum mismatch"),
    "part metadata": (lambda wd: _truncate(node_dir(wd, "labels") / "parts" / "00001" / "zarr.json"),
                      "labels", "corrupt"),
    "torn record": (lambda wd: _truncate(node_dir(wd, "kmeans") / "zarr.json"), "kmeans",
                    "not valid JSON"),
    "torn index": (lambda wd: _truncate(_segment(wd, "mfcc")), "mfcc", "corrupt"),
    "missing index segment": (lambda wd: _segment(wd, "mfcc").unlink(), "mfcc", "is missing"),
    "index offsets": (lambda wd: _shift_offsets(wd), "labels", "past"),
    "centroids": (lambda wd: (node_dir(wd, "kmeans") / "centroids" / "c" / "0" / "0").unlink(),
                  "kmeans", "is missing"),
}


def _segment(wd, kind):
    (segment,) = (node_dir(wd, kind) / "index").glob("*.seg")
    return segment


def _shift_offsets(wd):
    """An index entry past its part's end, written (checksummed) as a buggy writer would."""
    from ssl_graph.store import index as columnar
    from ssl_graph.store.store import Store

    store = Store(str(wd / "store"))
    key = f"nodes/{node_dir(wd, 'labels').name}"
    rec = store.record(key)
    (seg,) = rec["index"]["segments"]
    entries, dropped = columnar.decode((node_dir(wd, "labels") / seg["file"]).read_bytes())
    entries[sorted(entries)[-1]][2] += 1000
    rec["index"]["segments"] = [store.write_index_segment(key, rec["commit"], entries, dropped)]
    store.write_record(key, rec)


def test_verify_of_a_clean_store_passes(computed):
    wd, _ = computed
    res = cli(wd, "verify")
    n = n_nodes(wd)
    assert res.exit_code == 0 and f"{n} nodes checked, 0 damaged" in res.output
    assert res.output.count("ok ") == n


@pytest.mark.parametrize("fault", list(FAULTS))
def test_verify_finds_each_injected_fault(computed, fault):
    wd, snap = computed
    inject, kind, problem = FAULTS[fault]
    key = node_dir(wd, kind).name
    inject(wd)
    res = cli(wd, "verify")
    assert res.exit_code == 1, res.output
    (line,) = [ln for ln in res.output.splitlines() if ln.startswith("DAMAGED")]
    assert f"nodes/{key}" in line and problem in line, line
    assert "1 damaged" in res.output


def test_verify_spec_checks_only_that_spec(computed):
    wd, _ = computed
    (wd / "other.py").write_text((wd / "pipe.py").read_text().replace("k=20", "k=23"))
    assert cli(wd, "run", str(wd / "other.py"), "--no-progress", "-q").exit_code == 0
    res = cli(wd, "verify", str(wd / "pipe.py"))
    assert res.exit_code == 0 and f"{n_nodes(wd)} nodes checked" in res.output
    # km, labels, quality differ in other.py
    assert cli(wd, "verify").output.count("ok ") == n_nodes(wd) + 3


def test_verify_finds_a_damaged_checkpoint(computed):
    wd, _ = computed
    import numpy as np
    from safetensors.numpy import save

    # a checkpoint as training writes it, referenced from the k-means record for the test
    key = node_dir(wd, "kmeans")
    weights = save({"w": np.ones((4, 4), np.float32)})
    (key / "ckpt" / "step-00000010").mkdir(parents=True)
    for f in ("model.safetensors", "state.safetensors"):
        (key / "ckpt" / "step-00000010" / f).write_bytes(weights[:-5])  # truncated
    meta = json.loads((key / "zarr.json").read_text())
    meta["attributes"]["ssl_graph"]["checkpoint"] = "ckpt/step-00000010"
    (key / "zarr.json").write_text(json.dumps(meta))
    res = cli(wd, "verify")
    assert res.exit_code == 1 and "step-00000010/model.safetensors is truncated" in res.output


@pytest.mark.parametrize("fault", ["missing chunk", "truncated chunk", "bit flip", "torn record",
                                   "torn index", "missing index segment", "index offsets",
                                   "part metadata",
                                   "centroids"])
def test_repair_then_run_recomputes_just_the_damage(computed, fault):
    wd, snap = computed
    inject, kind, _ = FAULTS[fault]
    untouched = {k: tree(node_dir(wd, k)) for k in ("corpus", "clusterquality") if k != kind}
    inject(wd)
    res = cli(wd, "verify", "--repair")
    assert res.exit_code == 0 and "repaired:" in res.output, res.output
    res = cli(wd, "run", str(wd / "pipe.py"), "--no-progress", "-q")
    assert res.exit_code == 0 and ran(res.output, 1), res.output
    assert cli(wd, "verify").exit_code == 0
    assert_same(snapshot(wd), snap)
    assert {k: tree(node_dir(wd, k)) for k in untouched} == untouched
