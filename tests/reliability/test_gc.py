"""gc after failed or killed runs keeps everything they finished (defect 1 of issue 8)."""

from __future__ import annotations

import contextlib
import json
import os
import signal

from .conftest import (
    assert_same,
    cli,
    cli_proc,
    n_nodes,
    node_dir,
    one_line_error,
    ran,
    snapshot,
    tree,
    wait_for,
)

SLOW_KM = ("max_iter=30)", "max_iter=300, n_init=150, tol=0.0)")


def _statuses(workdir, kind: str) -> set[str]:
    out = set()
    for rec in (workdir / "store" / "nodes").glob(f"{kind}-*/zarr.json"):
        with contextlib.suppress(ValueError, OSError, KeyError):  # mid-write
            out.add(json.loads(rec.read_text())["attributes"]["ssl_graph"].get("status"))
    return out


def _status(workdir, kind: str) -> str | None:
    (status,) = _statuses(workdir, kind) or {None}
    return status


def _kill_during_kmeans(workdir, spec: str) -> None:
    proc = cli_proc(workdir, "run", spec, "--no-progress", "-q")
    try:
        wait_for(lambda: "partial" in _statuses(workdir, "kmeans") or proc.poll() is not None,
                 what="k-means to start")
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_gc_after_a_killed_first_run_keeps_what_it_finished(workdir):
    spec = (workdir / "pipe.py").read_text().replace(*SLOW_KM)
    (workdir / "pipe.py").write_text(spec)
    _kill_during_kmeans(workdir, "pipe.py")
    assert _status(workdir, "corpus") == _status(workdir, "mfcc") == "complete"
    names = json.loads((workdir / "store" / "names" / "pipe.json").read_text())
    assert {"corpus", "mfcc"} <= set(names)  # named as each node committed
    before = {k: tree(node_dir(workdir, k)) for k in ("corpus", "mfcc")}
    res = cli(workdir, "gc")
    assert res.exit_code == 0, res.output
    assert "nodes/mfcc" not in res.output and "nodes/corpus" not in res.output
    assert {k: tree(node_dir(workdir, k)) for k in ("corpus", "mfcc")} == before
    res = cli(workdir, "run", str(workdir / "pipe.py"), "--no-progress", "-q")
    # not corpus, mfcc, nor the alignments check (cheapest, so it ran before k-means)
    assert res.exit_code == 0 and ran(res.output, n_nodes(workdir) - 3), res.output


def test_gc_after_a_killed_rerun_keeps_the_last_complete_result(computed):
    wd, snap = computed
    (wd / "pipe.py").write_text((wd / "pipe.py").read_text().replace("k=20", "k=21")
                                .replace(*SLOW_KM))
    old_km = node_dir(wd, "kmeans")
    _kill_during_kmeans(wd, "pipe.py")
    res = cli(wd, "gc")
    assert res.exit_code == 0, res.output
    assert old_km.is_dir() and f"removed nodes/{old_km.name}" not in res.output
    (wd / "pipe.py").write_text((wd / "pipe.py").read_text().replace("k=21", "k=20")
                                .replace(SLOW_KM[1], SLOW_KM[0]))
    res = cli(wd, "run", str(wd / "pipe.py"), "--no-progress", "-q")
    assert ran(res.output, 0), res.output  # switching back is still a cache hit
    assert_same(snapshot(wd), snap)


def test_gc_keep_below_one_is_refused(computed):
    wd, snap = computed
    before = tree(wd / "store")
    for keep in ("0", "-1"):
        res = cli(wd, "gc", "--keep", keep)
        assert res.exit_code != 0 and "--keep" in res.output and "Traceback" not in res.output
    assert tree(wd / "store") == before


def test_gc_dry_run_changes_nothing(computed):
    wd, snap = computed
    (wd / "pipe.py").write_text((wd / "pipe.py").read_text().replace("k=20", "k=22"))
    assert cli(wd, "run", str(wd / "pipe.py"), "--no-progress", "-q").exit_code == 0
    before = tree(wd / "store")
    res = cli(wd, "gc", "--dry-run")
    assert res.exit_code == 0 and "would remove nodes/kmeans-" in res.output
    assert tree(wd / "store") == before


def test_gc_of_a_non_store_directory_is_refused(computed):
    wd, _ = computed
    before = tree(wd / "wav")
    one_line_error(cli(wd, "gc", store=str(wd / "wav")), "is not an ssl_graph store")
    assert tree(wd / "wav") == before
