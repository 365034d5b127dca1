"""``benchmarks/gpu_check.sh --cpu``: every check of the GPU check, with CPU stand-ins (gloo for
NCCL, bf16/fp16 autocast on the CPU, tiny models), passes — so the script itself cannot rot
unnoticed between the rare runs on a GPU machine. It exits 0 only if every row passes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from ..conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
ROWS = ["prepare-labels", *[f"{n}-{p}" for p in ("bf16", "fp16") for n in ("w2v", "vq", "w2v2", "hb")],
        "micro-batches+workers", "layer-features", "finetune+score", "ddp-2-gloo",
        "bench-tiny-bf16"]


def _gpu_check(tmp_path, python: str) -> tuple[int, dict[str, str], str]:
    env = {**os.environ, "PYTHON": python, "WORK": str(tmp_path / "work")}
    res = subprocess.run(["bash", str(SCRIPT), "--cpu"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=1500)
    table = res.stdout.split("\ncheck ", 1)[-1]
    rows = dict(re.findall(r"^(\S+) +(PASS|FAIL \(rc \d+\))", table, re.M))
    return res.returncode, rows, res.stdout + res.stderr


@pytest.mark.slow
def test_gpu_check_cpu_mode_passes_every_row(tmp_path):
    rc, rows, out = _gpu_check(tmp_path, sys.executable)
    assert list(rows) == ROWS, out
    assert rc == 0 and set(rows.values()) == {"PASS"}, out
    assert "0 of 14 failed" in out


def test_gpu_check_fails_when_a_row_fails(tmp_path):
    """An interpreter that fails everything: every row FAILs and the script exits 1."""
    rc, rows, out = _gpu_check(tmp_path, "false")
    assert list(rows) == ROWS, out
    assert rc == 1 and all(v.startswith("FAIL") for v in rows.values()), out
