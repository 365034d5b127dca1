"""Same-size damage (issue 18, defect 6): a chunk edited in place keeps its size, so the plan's
size check alone called the node fresh and ``run`` computed nothing. The plan now reads (and
checks against its CRC-32C) every committed file modified after its commit, and only those; a
file whose content still matches (touched, copied without its mtime) stays fresh and is not
read again. Damage that leaves the mtime alone (disk rot) is for reads and ``verify``."""

from __future__ import annotations

import os
import time

from .conftest import assert_same, cli, node_dir, one_line_error, ran, snapshot


def _chunk(wd, kind: str = "mfcc"):
    files = sorted(p for p in (node_dir(wd, kind) / "parts" / "00001" / "c").rglob("*")
                   if p.is_file())
    return files[0]


def _centroids_chunk(wd):
    return node_dir(wd, "kmeans") / "centroids" / "c" / "0" / "0"


def _flip(path, keep_mtime: bool = False) -> None:
    st = path.stat()
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x10  # same size
    path.write_bytes(bytes(raw))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _age_commit(wd, kind: str, chunk) -> None:
    """The node was committed a minute ago and ``chunk`` changed 30 s after that (old enough
    for the plan to remember what it checked: clocks are coarse)."""
    now = time.time_ns()
    rec = node_dir(wd, kind) / "zarr.json"
    os.utime(rec, ns=(now - 60 * 10**9, now - 60 * 10**9))
    os.utime(chunk, ns=(now - 30 * 10**9, now - 30 * 10**9))


def _plan(wd):
    res = cli(wd, "plan", str(wd / "pipe.py"))
    assert res.exit_code == 0, res.output
    return res.output


def test_chunk_edited_in_place_is_planned_stale_and_recomputed(computed):
    wd, snap = computed
    _flip(_chunk(wd))
    assert "1 of 6 nodes stale" in _plan(wd)
    res = cli(wd, "explain", f"{wd / 'pipe.py'}:mfcc")
    assert f"- {len(snap['mfcc'])} utterances with damaged part files" in res.output, res.output
    res = cli(wd, "run", str(wd / "pipe.py"), "--no-progress", "-q")
    assert res.exit_code == 0 and ran(res.output, 1), res.output
    assert_same(snapshot(wd), snap)
    assert cli(wd, "verify").exit_code == 0


def test_centroids_edited_in_place_are_planned_stale_and_refit(computed):
    wd, snap = computed
    _flip(_centroids_chunk(wd))
    res = cli(wd, "explain", f"{wd / 'pipe.py'}:km")
    assert "stale" in res.output and "centroids/c/0/0 was modified after its commit and fails " \
        "its checksum" in res.output, res.output
    res = cli(wd, "run", str(wd / "pipe.py"), "--no-progress", "-q")
    assert res.exit_code == 0 and ran(res.output, 1), res.output
    assert_same(snapshot(wd), snap)


def test_touched_chunk_stays_fresh_and_is_read_once(computed):
    wd, snap = computed
    chunk = _chunk(wd)
    _age_commit(wd, "mfcc", chunk)  # modified after the commit, content unchanged
    assert "0 of 6 nodes stale" in _plan(wd)  # read, matched its checksum, remembered
    _flip(chunk, keep_mtime=True)  # now damaged, but the stat the plan checked is unchanged
    assert "0 of 6 nodes stale" in _plan(wd)  # so it is not read again ...
    res = cli(wd, "verify")  # ... while verify reads everything
    assert res.exit_code == 1 and "checksum mismatch" in res.output, res.output
    os.utime(chunk)  # any later change of the stat is checked again
    assert "1 of 6 nodes stale" in _plan(wd)


def test_bit_rot_that_keeps_the_mtime_is_found_by_verify_not_plan(computed):
    """The documented boundary: without reading every byte, a plan cannot see it."""
    wd, snap = computed
    _flip(_chunk(wd), keep_mtime=True)
    assert "0 of 6 nodes stale" in _plan(wd)
    res = cli(wd, "verify")
    assert res.exit_code == 1 and "DAMAGED  mfcc" in res.output and "checksum mismatch" in res.output
    assert cli(wd, "verify", "--repair").exit_code == 0
    res = cli(wd, "run", str(wd / "pipe.py"), "--no-progress", "-q")
    assert res.exit_code == 0 and ran(res.output, 1), res.output
    assert_same(snapshot(wd), snap)


def test_a_run_that_reads_rotten_input_stops_in_one_line_then_repair_recovers(computed):
    """Bit rot the plan cannot see, met by a node that reads it (k-means refit on ``mfcc``):
    the run stops naming the file and ``verify --repair``; nothing else is lost."""
    wd, snap = computed
    chunk = _chunk(wd)
    _flip(chunk, keep_mtime=True)
    spec = wd / "pipe.py"
    spec.write_text(spec.read_text().replace("k=20", "k=21"))
    res = cli(wd, "run", str(spec), "--no-progress", "-q")
    line = one_line_error(res, "'mfcc'", "parts/00001/c/0/0", "checksum mismatch",
                          "verify --repair")
    assert "Traceback" not in line
    assert cli(wd, "verify", "--repair").exit_code == 0
    res = cli(wd, "run", str(spec), "--no-progress", "-q")
    assert res.exit_code == 0, res.output  # mfcc recomputed, then the new km, labels, quality
    assert cli(wd, "verify").exit_code == 0
    spec.write_text(spec.read_text().replace("k=21", "k=20"))
    res = cli(wd, "run", str(spec), "--no-progress", "-q")
    assert res.exit_code == 0 and ran(res.output, 0), res.output  # the k=20 results were kept
    assert_same(snapshot(wd), snap)
