"""A training's log is appended to, never rewritten: one JSON-lines part per checkpoint, read back
joined; logs of older stores (one ``log.json``) still read; heartbeats per rank."""

from __future__ import annotations

import json

import pytest

from ssl_graph.store.backend import DamagedFile, LocalBackend, write_json
from ssl_graph.store.train_log import (
    append_log,
    beat,
    heartbeats,
    read_log,
    restart_log,
)

KEY = "nodes/abc"


def _rows(a, b):
    return [{"step": s, "loss": 10.0 / s} for s in range(a, b + 1)]


def _written(backend):
    return sorted(backend.listdir(f"{KEY}/log"))


def test_each_checkpoint_adds_a_part_and_rewrites_none(tmp_path):
    backend = LocalBackend(str(tmp_path))
    assert read_log(backend, KEY) is None
    append_log(backend, KEY, _rows(1, 4))
    first = (tmp_path / KEY / "log" / "00000001-00000004.jsonl").read_bytes()
    append_log(backend, KEY, _rows(5, 8))
    append_log(backend, KEY, [])  # nothing new: no part
    assert _written(backend) == ["00000001-00000004.jsonl", "00000005-00000008.jsonl"]
    assert (tmp_path / KEY / "log" / "00000001-00000004.jsonl").read_bytes() == first
    assert read_log(backend, KEY) == _rows(1, 8)
    assert not (tmp_path / KEY / "log.json").exists()


def test_a_log_json_of_an_older_store_reads_and_continues(tmp_path):
    backend = LocalBackend(str(tmp_path))
    write_json(backend, f"{KEY}/log.json", _rows(1, 6))  # as written before append-only logs
    assert read_log(backend, KEY) == _rows(1, 6)
    # resumed at its checkpoint (step 4; the old log ran ahead to 6): new parts follow it
    assert restart_log(backend, KEY, 4) == _rows(1, 4)
    append_log(backend, KEY, _rows(5, 9))
    assert read_log(backend, KEY) == _rows(1, 9)


def test_a_killed_runs_part_past_the_checkpoint_is_replaced(tmp_path):
    backend = LocalBackend(str(tmp_path))
    append_log(backend, KEY, _rows(1, 4))
    append_log(backend, KEY, _rows(5, 8))  # written, then killed before the record said step 8
    assert restart_log(backend, KEY, 4, owner=False) == _rows(1, 4)  # other ranks only read
    assert _written(backend) == ["00000001-00000004.jsonl", "00000005-00000008.jsonl"]
    assert restart_log(backend, KEY, 4) == _rows(1, 4)
    assert _written(backend) == ["00000001-00000004.jsonl"]
    # and a reader never shows a step twice, even with the stale part still there
    (tmp_path / KEY / "log" / "00000005-00000008.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in _rows(5, 8)))
    append_log(backend, KEY, [{"step": s, "loss": 0.5} for s in range(5, 7)])
    rows = read_log(backend, KEY)
    assert [r["step"] for r in rows] == list(range(1, 9))


def test_a_training_started_over_drops_the_old_log(tmp_path):
    backend = LocalBackend(str(tmp_path))
    write_json(backend, f"{KEY}/log.json", _rows(1, 3))
    append_log(backend, KEY, _rows(4, 5))
    assert restart_log(backend, KEY, 0) == []
    assert read_log(backend, KEY) is None


def test_a_torn_part_is_named(tmp_path):
    backend = LocalBackend(str(tmp_path))
    append_log(backend, KEY, _rows(1, 2))
    part = tmp_path / KEY / "log" / "00000001-00000002.jsonl"
    part.write_bytes(part.read_bytes()[:-9])
    with pytest.raises(DamagedFile, match="00000001-00000002.jsonl"):
        read_log(backend, KEY)


def test_heartbeats_per_rank(tmp_path):
    backend = LocalBackend(str(tmp_path))
    assert heartbeats(backend, KEY) == []
    beat(backend, KEY, 0, 7, 400)
    beat(backend, KEY, 1, 6, 400)
    beat(backend, KEY, 0, 8, 400)  # rewritten in place
    got = sorted((b["step"], b["steps"]) for b in heartbeats(backend, KEY))
    assert got == [(6, 400), (8, 400)]
    assert all(b["updated"] for b in heartbeats(backend, KEY))


def test_every_reader_goes_through_train_log():
    """Only ``store/train_log.py`` names the log's files: report, ``node.log()``, verify and the
    training session all read and write through it."""
    from pathlib import Path

    import ssl_graph

    package = Path(ssl_graph.__file__).parent
    naming = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.py")
                    if "log.json" in p.read_text() or "heartbeat/" in p.read_text())
    assert naming == ["store/train_log.py"]
