"""After ``verify --repair`` (issue 18, defect 7): ``verify`` calls the store clean, ``plan`` says
``repaired: will recompute …`` (not "incomplete (interrupted run)"), and the next run recomputes
just the repaired node, after which its record no longer says it was repaired."""

from __future__ import annotations

import json

import pytest

from .conftest import assert_same, cli, node_dir, ran, snapshot


def _flip(path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1
    path.write_bytes(bytes(raw))


def _part_chunk(wd, kind):
    return sorted(p for p in (node_dir(wd, kind) / "parts" / "00001" / "c").rglob("*")
                  if p.is_file())[0]


#: fault, node kind, its name in pipe.py, what plan must say after the repair
CASES = {
    "missing centroids": (lambda wd: (node_dir(wd, "kmeans") / "centroids" / "c" / "0" / "0")
                          .unlink(), "kmeans", "km",
                          "repaired: will recompute it; was damaged: centroids/c/0/0 is missing"),
    "flipped part chunk": (lambda wd: _flip(_part_chunk(wd, "mfcc")), "mfcc", "mfcc",
                           "repaired: will recompute 12 utterances"),
    "torn index": (lambda wd: next((node_dir(wd, "labels") / "index").glob("*.seg"))
                   .write_bytes(b"torn"), "labels", "labels",
                   "repaired: will recompute 12 utterances"),
}


def _repair_then_clean(wd, kind: str, name: str, says: str) -> None:
    res = cli(wd, "verify", "--repair")
    assert res.exit_code == 0 and "repaired:" in res.output, res.output
    res = cli(wd, "verify")
    assert res.exit_code == 0 and "0 damaged" in res.output, res.output
    (line,) = [ln for ln in res.output.splitlines() if node_dir(wd, kind).name in ln]
    assert line.startswith("ok ") and "repaired (" in line, line
    res = cli(wd, "explain", f"{wd / 'pipe.py'}:{name}")
    assert f"- {says}" in res.output and "interrupted" not in res.output, res.output


@pytest.mark.parametrize("case", list(CASES))
def test_repaired_store_verifies_clean_and_plans_as_repaired(computed, case):
    wd, snap = computed
    inject, kind, name, says = CASES[case]
    inject(wd)
    _repair_then_clean(wd, kind, name, says)
    res = cli(wd, "run", str(wd / "pipe.py"), "--no-progress", "-q")
    assert res.exit_code == 0 and ran(res.output, 1), res.output
    assert_same(snapshot(wd), snap)
    res = cli(wd, "verify")
    assert res.exit_code == 0 and "repaired" not in res.output, res.output
    record = json.loads((node_dir(wd, kind) / "zarr.json").read_text())["attributes"]["ssl_graph"]
    assert record["status"] == "complete" and "repaired" not in record


TRAIN = '''
from ssl_graph.presets import hubert
it1 = hubert(corpus, targets=labels, size="tiny", steps=1, batch_seconds=2.0, crop_seconds=1.0)
'''


def test_missing_final_weights_repaired_then_retrained(computed):
    wd, _ = computed
    with open(wd / "pipe.py", "a") as fh:
        fh.write(TRAIN)
    res = cli(wd, "run", str(wd / "pipe.py"), "it1", "--no-progress", "-q")
    assert res.exit_code == 0 and ran(res.output, 1), res.output
    weights = node_dir(wd, "pretrain") / "model.safetensors"
    weights.unlink()
    assert cli(wd, "verify").exit_code == 1
    _repair_then_clean(wd, "pretrain", "it1",
                       "repaired: will recompute it; was damaged: model.safetensors is missing")
    res = cli(wd, "run", str(wd / "pipe.py"), "it1", "--no-progress", "-q")
    assert res.exit_code == 0 and ran(res.output, 1), res.output
    assert weights.is_file() and cli(wd, "verify").exit_code == 0
