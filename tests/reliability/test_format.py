"""What a store is: a format marker written at creation, foreign directories refused, newer
formats refused, old stores adopted, read-only and full stores failing cleanly (defect 6)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid

import pytest

from ssl_graph.store.store import FORMAT_VERSION, MARKER

from .conftest import assert_same, cli, node_dir, one_line_error, ran, snapshot, tree


def test_new_store_gets_a_format_marker(computed):
    wd, _ = computed
    marker = json.loads((wd / "store" / MARKER).read_text())
    assert marker["format"] == FORMAT_VERSION and marker["created"]


def test_non_store_directory_is_refused_and_left_untouched(computed):
    wd, _ = computed
    before = tree(wd / "wav")
    res = cli(wd, "run", str(wd / "pipe.py"), "--no-progress", store=str(wd / "wav"))
    one_line_error(res, str(wd / "wav"), "is not an ssl_graph store", ".flac")
    assert sorted(p.name for p in (wd / "wav").iterdir()) == sorted(before)  # no .lock/nodes/names
    assert tree(wd / "wav") == before


def test_newer_store_format_is_refused(computed):
    wd, snap = computed
    (wd / "store" / MARKER).write_text(json.dumps({"format": FORMAT_VERSION + 1}))
    before = tree(wd / "store")
    for args in (("run", str(wd / "pipe.py"), "--no-progress"), ("plan", str(wd / "pipe.py")),
                 ("gc",), ("verify",)):
        res = cli(wd, *args)
        one_line_error(res, str(wd / "store"), "written by a newer ssl_graph")
    assert tree(wd / "store") == before


def test_record_of_a_newer_format_is_refused(computed):
    wd, _ = computed
    rec = node_dir(wd, "mfcc") / "zarr.json"
    meta = json.loads(rec.read_text())
    meta["attributes"]["ssl_graph"]["format"] = FORMAT_VERSION + 1
    rec.write_text(json.dumps(meta))
    res = cli(wd, "run", str(wd / "pipe.py"), "--no-progress")
    one_line_error(res, f"{rec.parent.name}/zarr.json", "written by a newer ssl_graph")
    assert json.loads(rec.read_text()) == meta  # not recomputed over


def test_store_from_before_markers_is_adopted(computed):
    wd, snap = computed
    (wd / "store" / MARKER).unlink()
    res = cli(wd, "run", str(wd / "pipe.py"), "--no-progress", "-q")
    assert res.exit_code == 0 and ran(res.output, 0), res.output
    assert json.loads((wd / "store" / MARKER).read_text())["format"] == FORMAT_VERSION
    assert_same(snapshot(wd), snap)


def _mount(args: list[str], target) -> bool:
    if shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", *args, str(target)], capture_output=True).returncode == 0


def _umount(target) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


def test_read_only_store_reads_and_refuses_writes_cleanly(computed, tmp_path):
    wd, snap = computed
    ro = tmp_path / "ro"
    ro.mkdir()
    if not _mount(["--bind", str(wd / "store")], ro):
        pytest.skip("cannot bind-mount here (needs mount privileges) for a read-only store")
    try:
        if not _mount(["-o", "remount,bind,ro"], ro):
            pytest.skip("cannot remount read-only here")
        spec = str(wd / "pipe.py")
        res = cli(wd, "plan", spec, store=str(ro))
        assert res.exit_code == 0 and re.search(r"\b0 of \d+ nodes stale", res.output), res.output
        utt = sorted(snap["mfcc"])[0]
        out = tmp_path / "x.npy"
        res = cli(wd, "query", "features", f"{spec}:mfcc", "--utt", utt, "--out", str(out), store=str(ro))
        assert res.exit_code == 0, res.output
        res = cli(wd, "run", spec, "--no-progress", store=str(ro))
        one_line_error(res, str(ro), "read-only")
        res = cli(wd, "gc", store=str(ro))
        one_line_error(res, "read-only")
    finally:
        _umount(ro)
    assert_same(snapshot(wd), snap)


def test_full_disk_during_a_write_fails_cleanly_and_resumes(computed, tmp_path):
    wd, snap = computed
    mnt = tmp_path / "small"
    mnt.mkdir()
    if not _mount(["-t", "tmpfs", "-o", "size=64k", f"ssl-graph-{uuid.uuid4().hex[:6]}"], mnt):
        pytest.skip("cannot mount a small tmpfs here (needs mount privileges) to fill a disk")
    try:
        spec = str(wd / "pipe.py")
        res = cli(wd, "run", spec, "--no-progress", store=str(mnt / "store"))
        # names the node being written when space ran out (which one depends on the schedule)
        line = one_line_error(res, str(mnt / "store"), "is full", "while writing node '")
        assert re.search(r"while writing node '[\w.]+'", line), line
        assert _mount(["-o", "remount,size=16m"], mnt)
        res = cli(wd, "run", spec, "--no-progress", "-q", store=str(mnt / "store"))
        assert res.exit_code == 0, res.output
        shutil.rmtree(wd / "store")
        shutil.copytree(mnt / "store", wd / "store")
    finally:
        _umount(mnt)
    assert_same(snapshot(wd), snap)  # the resumed run equals an uninterrupted one
    assert cli(wd, "verify").exit_code == 0


def test_a_folder_holding_only_a_placeholder_is_an_empty_store(tmp_path):
    """The repository's own ``store/`` holds a ``.gitignore``: ``make demo`` must use it."""
    from ssl_graph.store.store import Store

    (tmp_path / "store").mkdir()
    (tmp_path / "store" / ".gitignore").write_text("*\n!.gitignore\n")
    store = Store(str(tmp_path / "store"))
    with store.lock():
        store.write_record("nodes/x-1", {"status": "complete"})
    assert (tmp_path / "store" / MARKER).exists()
    assert (tmp_path / "store" / ".gitignore").read_text() == "*\n!.gitignore\n"
