"""Bulk per-utterance versions equal ``digest`` of the same parts, so stores written by earlier
versions stay valid (a changed version would recompute every cached utterance)."""

from __future__ import annotations

from ssl_graph.graph.versions import child_versions, leaf_versions
from ssl_graph.specs.base import digest


def test_leaf_versions_equal_digest():
    idents = ["12345:1700000000123456789", "sha256:" + "ab" * 16, "9:1@0.5-1.25", ""]
    assert leaf_versions("0123456789abcdef", idents) == [digest("0123456789abcdef", i)
                                                         for i in idents]


def test_child_versions_equal_digest_with_any_inputs():
    a = [digest("a", str(i)) for i in range(50)]
    b = [digest("b", str(i)) for i in range(50)]
    for agg in ([], [digest("km")], [digest("x"), digest("y")]):
        for cols in ([a], [a, b]):
            want = [digest("fp", [c[i] for c in cols], agg) for i in range(50)]
            assert child_versions("fp", cols, agg) == want
    odd = [['quote"d', "back\\slash", "ünï"]]  # not hex: still the canonical JSON's hash
    assert child_versions("fp", odd, []) == [
        digest("fp", [v], []) for v in odd[0]]
