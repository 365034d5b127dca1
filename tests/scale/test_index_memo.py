"""A fresh-by-digest node skips parsing an index already parsed intact, but never misses a
torn or replaced one: any rewrite changes the file's stat identity and it is parsed again."""

from __future__ import annotations

import json
import os
import time

from .test_scan_cache import computed, project, ready


def _age(path, seconds: float = 60.0) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def _index(wd, node: str):
    (d,) = (wd / "store" / "nodes").glob(f"{node}-*")
    (index,) = d.glob("index/*.seg")  # one commit: one columnar segment (store/index.py)
    return index


def _memo(cache_dir) -> dict:
    (path,) = (cache_dir / "indexes").glob("*.json")
    return json.loads(path.read_text())["entries"]


def test_memo_remembers_intact_indexes_and_a_torn_one_is_still_found(nested, scan_cache_dir):
    ready(nested)
    for node in ("corpus", "mfcc", "labels"):
        _age(_index(nested, node))
    states = project(nested).plan()
    assert not any(st.stale for st in states.values())
    assert {k.split("/")[1].split("-")[0] for k in _memo(scan_cache_dir)} == {
        "corpus", "mfcc", "labels"}
    index = _index(nested, "labels")
    index.write_bytes(index.read_bytes()[:-7])  # torn after it was remembered
    states = project(nested).plan()
    assert states["labels"].stale and index.name in states["labels"].reasons[0]
    assert not states["mfcc"].stale and not states["corpus"].stale
    assert computed(project(nested).run()) == {"labels": 10}
    assert not any(st.stale for st in project(nested).plan().values())


def test_a_garbage_memo_is_ignored(nested, scan_cache_dir):
    ready(nested)
    _age(_index(nested, "mfcc"))
    project(nested).plan()
    (path,) = (scan_cache_dir / "indexes").glob("*.json")
    path.write_text("][ garbage")
    _index(nested, "mfcc").write_bytes(b"")  # and the index emptied meanwhile
    states = project(nested).plan()
    assert states["mfcc"].stale and sorted(states["mfcc"].todo) == sorted(
        states["corpus"].expected)
