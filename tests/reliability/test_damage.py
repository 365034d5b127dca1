"""Damaged store files: missing / truncated / bit-flipped parts, torn records and indexes,
mistyped names files. Each is named (node, utterance, file) when read, planned as stale, and
recomputed by the next run without touching anything else (defects 3 and 7 of issue 8)."""

from __future__ import annotations

import json

from .conftest import assert_same, cli, node_dir, one_line_error, ran, snapshot


def _first_utt(snap) -> str:
    return sorted(snap["mfcc"])[0]


def _mfcc_chunk(workdir):
    return node_dir(workdir, "mfcc") / "parts" / "00001" / "c" / "0" / "0"


def _recovers(workdir, snap, n: int) -> None:
    """The next run recomputes just the damaged node and every value equals the cached one."""
    res = cli(workdir, "run", str(workdir / "pipe.py"), "--no-progress", "-q")
    assert res.exit_code == 0, res.output
    assert ran(res.output, n), res.output
    assert_same(snapshot(workdir), snap)
    assert cli(workdir, "verify").exit_code == 0


def test_missing_chunk_is_named_on_read_not_read_as_zeros(computed):
    wd, snap = computed
    _mfcc_chunk(wd).unlink()
    res = cli(wd, "query", "features", f"{wd / 'pipe.py'}:mfcc", "--utt", _first_utt(snap))
    one_line_error(res, "'mfcc'", _first_utt(snap), "parts/00001/c/0/0", "missing")


def test_missing_chunk_makes_plan_stale_and_run_recomputes_only_it(computed):
    wd, snap = computed
    _mfcc_chunk(wd).unlink()
    res = cli(wd, "plan", str(wd / "pipe.py"))
    assert res.exit_code == 0 and "1 of " in res.output and " nodes stale" in res.output
    res = cli(wd, "explain", f"{wd / 'pipe.py'}:mfcc")
    assert f"- {len(snap['mfcc'])} utterances with damaged part files" in res.output, res.output
    _recovers(wd, snap, 1)


def test_truncated_chunk_is_named(computed):
    wd, snap = computed
    chunk = _mfcc_chunk(wd)
    chunk.write_bytes(chunk.read_bytes()[:100])
    res = cli(wd, "query", "features", f"{wd / 'pipe.py'}:mfcc", "--utt", _first_utt(snap))
    line = one_line_error(res, "'mfcc'", _first_utt(snap), "parts/00001/c/0/0", "corrupt")
    assert "Zstd" not in line
    _recovers(wd, snap, 1)


def test_bitflipped_chunk_is_named_on_read(computed):
    wd, snap = computed
    chunk = _mfcc_chunk(wd)
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0x10  # same size: the plan's size check cannot see it, reads must
    chunk.write_bytes(bytes(raw))
    res = cli(wd, "query", "features", f"{wd / 'pipe.py'}:mfcc", "--utt", _first_utt(snap))
    one_line_error(res, "'mfcc'", _first_utt(snap), "parts/00001/c/0/0", "checksum mismatch")
    res = cli(wd, "verify")
    assert res.exit_code == 1 and "DAMAGED  mfcc" in res.output


def test_torn_record_is_named_and_recomputed(computed):
    wd, snap = computed
    rec = node_dir(wd, "mfcc") / "zarr.json"
    rec.write_bytes(rec.read_bytes()[:300])  # a torn write
    res = cli(wd, "query", "features", f"{wd / 'pipe.py'}:mfcc", "--utt", _first_utt(snap))
    one_line_error(res, "'mfcc'", f"{rec.parent.name}/zarr.json", "not valid JSON")
    res = cli(wd, "explain", f"{wd / 'pipe.py'}:mfcc")
    assert res.exit_code == 0 and "stale" in res.output, res.output
    assert f"- damaged: {rec}: not valid JSON" in res.output
    assert "damaged" in cli(wd, "ls").output
    for other in (("ls",), ("status", str(wd / "pipe.py")), ("gc", "--dry-run")):
        res = cli(wd, *other)
        assert res.exit_code == 0, (other, res.output)
    assert "would remove nodes/" not in cli(wd, "gc", "--dry-run").output
    _recovers(wd, snap, 1)


def test_torn_index_is_named_and_recomputed(computed):
    wd, snap = computed
    (index,) = (node_dir(wd, "labels") / "index").glob("*.seg")
    index.write_bytes(index.read_bytes()[:40])
    res = cli(wd, "query", "labels", f"{wd / 'pipe.py'}:labels", "--utt", _first_utt(snap))
    one_line_error(res, f"index/{index.name}", "corrupt")
    assert cli(wd, "gc").exit_code == 0  # keeps every part of a node whose index is unreadable
    assert (node_dir(wd, "labels") / "parts" / "00001").is_dir()
    _recovers(wd, snap, 1)


def test_names_file_of_wrong_type_is_named_and_rebuilt(computed):
    wd, snap = computed
    names = wd / "store" / "names" / "pipe.json"
    names.write_text(json.dumps([1, 2, 3]))
    (wd / "store" / "names" / "x.json").write_text("[1, 2, 3]")
    for args in (("ls",), ("plan", str(wd / "pipe.py")), ("gc",)):
        res = cli(wd, *args)
        assert res.exit_code == 0 and "Traceback" not in res.output, (args, res.output)
    res = cli(wd, "verify")
    assert res.exit_code == 1 and "names/pipe.json: " in res.output and "expected a JSON dict" in res.output
    assert_same(snapshot(wd), snap)  # gc removed nothing the unreadable names pointed at
    res = cli(wd, "verify", "--repair")
    assert res.exit_code == 0 and "rebuilt from the node records" in res.output, res.output
    assert isinstance(json.loads(names.read_text()), dict)
    res = cli(wd, "run", str(wd / "pipe.py"), "--no-progress", "-q")
    assert ran(res.output, 0)
    assert {"corpus", "mfcc", "km", "labels", "quality"} <= set(json.loads(names.read_text()))


def test_missing_centroids_chunk_is_named_and_refit(computed):
    wd, snap = computed
    chunk = node_dir(wd, "kmeans") / "centroids" / "c" / "0" / "0"
    chunk.unlink()
    import pytest

    import ssl_graph
    from ssl_graph.store.integrity import DamagedData

    with pytest.raises(DamagedData, match="centroids/c/0/0 is missing"):
        ssl_graph.load(wd / "pipe.py", str(wd / "store"))["km"].centroids  # noqa: B018
    res = cli(wd, "explain", f"{wd / 'pipe.py'}:km")
    assert "stale" in res.output and "damaged:" in res.output and "centroids/c/0/0" in res.output
    _recovers(wd, snap, 1)


def test_torn_fit_record_of_kmeans_is_named_and_refit(computed):
    wd, snap = computed
    fit = node_dir(wd, "kmeans") / "fit_utts.json"
    fit.write_text(fit.read_text()[:40])
    res = cli(wd, "explain", f"{wd / 'pipe.py'}:km")
    assert res.exit_code == 0 and f"- damaged: {fit}: not valid JSON" in res.output, res.output
    _recovers(wd, snap, 1)
