"""SIGKILL real runs at chosen points of a pipeline of every node kind; the rerun must give the
uninterrupted run's outputs bit for bit and ``verify`` must be clean, both on what the kill left
(an uncommitted write is not damage) and after the rerun. ``benchmarks/kill_harness.py`` runs the
same harness at many random points."""

from __future__ import annotations

import pytest

from ._kill import KillPoint, describe, reference, run_point

POINTS = {
    # from outside, while the two MFCC worker processes are computing: they must die too
    "mfcc workers": (KillPoint("mfcc", workers=True), "mfcc"),
    # from inside, just after training committed its step-2 checkpoint: resume at step 3
    # (writes: record; old log dropped; heartbeat; per checkpoint model, state, log part, record)
    "pretrain checkpoint": (KillPoint("it1", write=12, phase="after"), "it1"),
    # from outside, as fine-tuning writes its first checkpoint's optimizer state
    "finetune": (KillPoint("ft", after_write=5), "ft"),
    # a part written, its index and record not: was reported as a damaged record
    "labels first part": (KillPoint("labels2", write=1, phase="after"), "labels2"),
    # the first record write of an aggregate node torn: was reported as "has no record"
    "torn first record": (KillPoint("quality.alignments", write=1, phase="torn"),
                          "quality.alignments"),
}


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    return reference(tmp_path_factory.mktemp("kill") / "work")


@pytest.mark.slow
@pytest.mark.parametrize("case", list(POINTS))
def test_killed_run_reruns_to_identical_outputs(ref, tmp_path, case):
    point, node = POINTS[case]
    res = run_point(ref, point, tmp_path / "point")
    assert res.killed and res.killed_in == node, describe(res)
    assert not res.verify_killed, describe(res)
    assert res.rerun_rc == 0 and not res.verify_rerun, describe(res)
    assert not res.orphans, describe(res)
    assert not res.diffs, describe(res)
