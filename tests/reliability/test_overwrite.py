"""``query --out`` and ``graph --out`` never replace an existing file silently (defect 11)."""

from __future__ import annotations

import numpy as np

from .conftest import cli, one_line_error


def test_query_out_refuses_an_existing_file_unless_forced(computed):
    wd, snap = computed
    utt = sorted(snap["mfcc"])[0]
    out = wd / "keep.npy"
    out.write_bytes(b"precious")
    args = ("query", "features", f"{wd / 'pipe.py'}:mfcc", "--utt", utt, "--out", str(out))
    one_line_error(cli(wd, *args), str(out), "already exists", "--force")
    assert out.read_bytes() == b"precious"
    res = cli(wd, *args, "--force")
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(np.load(out), snap["mfcc"][utt])


def test_graph_out_refuses_an_existing_file_unless_forced(computed):
    wd, _ = computed
    out = wd / "g.png"
    out.write_bytes(b"precious")
    one_line_error(cli(wd, "graph", str(wd / "pipe.py"), "--out", str(out)), str(out), "--force")
    assert out.read_bytes() == b"precious"
    res = cli(wd, "graph", str(wd / "pipe.py"), "--out", str(out), "--force")
    assert res.exit_code == 0 and out.read_bytes()[:4] == b"\x89PNG"
