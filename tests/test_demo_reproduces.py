"""The demo reproduces: two runs of the (quick) demo spec in fresh processes, each on its own
store, store the same bytes in every array, checkpoint and result file, and the same metrics."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from .conftest import ROOT, make_corpus

#: files that record when and how fast, not what: node records (compared by their metrics
#: below), training logs (wall-clock columns), TensorBoard events, liveness heartbeats
TIMED = re.compile(r"^[^/]+/zarr\.json$|(^|/)log(/|[^/]*$)|events\.out\.tfevents|heartbeat")


def _run_demo(tmp_path, data, name: str) -> dict[str, bytes]:
    store = tmp_path / name
    env = {**os.environ, "SSL_GRAPH_DEMO_QUICK": "1", "SSL_GRAPH_DEMO_DATA": str(data),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-m", "ssl_graph", "--store", str(store), "run",
                    str(ROOT / "specs" / "demo.py"), "--quiet", "--no-progress"],
                   env=env, check=True, capture_output=True, cwd=tmp_path)
    nodes = store / "nodes"
    return {p.relative_to(nodes).as_posix(): p.read_bytes()
            for p in sorted(nodes.rglob("*")) if p.is_file()}


def _metrics(files: dict[str, bytes]) -> dict[str, dict]:
    out = {}
    for rel, data in files.items():
        if rel.count("/") == 1 and rel.endswith("/zarr.json"):
            rec = json.loads(data).get("attributes", json.loads(data))
            rec = rec.get("ssl_graph", rec) if isinstance(rec, dict) else rec
            metrics = rec.get("metrics") if isinstance(rec, dict) else None
            if metrics:
                out[rel.split("/")[0]] = {k: v for k, v in metrics.items()
                                          if "seconds" not in k and k != "audio_s_per_s"}
    return out


def test_the_quick_demo_twice_in_fresh_processes_stores_the_same_bytes(tmp_path):
    make_corpus(tmp_path / "data", 12)
    a = _run_demo(tmp_path, tmp_path / "data", "a")
    b = _run_demo(tmp_path, tmp_path / "data", "b")
    kept = [rel for rel in a if not TIMED.search(rel)]
    assert kept == [rel for rel in b if not TIMED.search(rel)]
    assert any(rel.endswith(".safetensors") for rel in kept)  # weights are compared too
    assert sum("/c/" in rel for rel in kept) >= 10  # and the array chunks
    differ = [rel for rel in kept if a[rel] != b[rel]]
    assert not differ, differ[:10]
    ma, mb = _metrics(a), _metrics(b)
    assert len(ma) >= 8 and ma == mb
