"""One GPU per rank, decided in one place; each rank's random streams in the checkpoint.

No GPU here: the device rule is a pure function, tested for every case, and a scan of the
package shows it is the only road to ``set_device`` and ``init_process_group``; the checkpoint
layout is tested with the CPU generator standing in for each rank's GPU one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from ssl_graph.train.checkpoint import load_checkpoint, rng_state, save_checkpoint
from ssl_graph.train.distributed import backend_for, rank_device, unused_parameters

PACKAGE = Path(__file__).resolve().parents[2] / "ssl_graph"


@pytest.mark.parametrize(("requested", "local_rank", "torchrun", "device"), [
    ("cuda", 3, True, "cuda:3"),  # each rank its own GPU
    ("cuda", 0, True, "cuda:0"),
    ("cpu", 1, True, "cpu"),
    ("cuda", 3, False, "cuda"),  # one process: as asked
    ("cuda:1", 0, False, "cuda:1"),
    ("cpu", 0, False, "cpu"),
])
def test_rank_device(requested, local_rank, torchrun, device):
    assert rank_device(requested, local_rank, torchrun) == device


def test_a_pinned_gpu_is_refused_under_torchrun_in_one_line():
    with pytest.raises(ValueError) as err:
        rank_device("cuda:1", 0, True, "hb")
    msg = str(err.value)
    assert msg.startswith("hb: device='cuda:1' would put every torchrun rank on one GPU")
    assert "device='cuda'" in msg and "\n" not in msg


def test_backend_nccl_on_gpus_gloo_on_cpus():
    assert [backend_for(d) for d in ("cuda:0", "cuda:7", "cpu")] == ["nccl", "nccl", "gloo"]


def test_only_the_device_rule_sets_devices_and_starts_groups():
    """Whoever picks a rank's device or starts a process group goes through ``rank_device``:
    every file calling ``set_device``/``init_process_group`` also calls it."""
    callers = {}
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if re.search(r"\b(set_device|init_process_group)\(", text):
            # train/session.py through Ranks.device, which is rank_device
            callers[path.relative_to(PACKAGE).as_posix()] = bool(
                re.search(r"rank_device\(|ranks\.device\(", text))
    assert callers == {"exec/worker.py": True, "train/session.py": True}, callers


def test_unused_parameters_only_where_a_step_can_leave_some_out():
    from ssl_graph import Corpus
    from ssl_graph.presets import finetune, wav2vec2

    corpus = Corpus(root="wav")
    plain = wav2vec2(corpus, size="tiny", steps=2)
    ctx = plain.model.context.with_(layerdrop=0.0)
    plain = plain.with_(model=plain.model.with_(context=ctx, feature_grad_mult=0.1))
    assert unused_parameters(plain) is None
    dropping = plain.with_(model=plain.model.with_(context=ctx.with_(layerdrop=0.1)))
    assert unused_parameters(dropping) == "layerdrop=0.1"
    frozen = plain.with_(model=plain.model.with_(feature_grad_mult=0.0))
    assert unused_parameters(frozen) == "feature_grad_mult=0"
    assert unused_parameters(finetune(plain, size="tiny", labeled_minutes=0.5, steps=2))


class _Dict:
    """A store backend's byte interface, in memory."""

    def __init__(self):
        self.files = {}

    def write_bytes(self, key, data):
        self.files[key] = data

    def read_bytes(self, key):
        return self.files.get(key)


def _draws(state, n=4):
    torch.set_rng_state(state["torch"])
    return torch.rand(n)


def test_every_rank_resumes_its_own_random_stream():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    states = []
    for rank in range(2):  # two ranks whose streams have drifted apart
        torch.manual_seed(0)
        torch.rand(rank + 1)
        states.append(rng_state("cpu"))
    backend = _Dict()
    save_checkpoint(backend, "ck", model, opt, 7, rng=states)
    from safetensors.torch import load

    keys = {k for k in load(backend.files["ck/state.safetensors"]) if k.startswith("rng.")}
    assert keys == {"rng.rank0.torch", "rng.rank1.torch"}
    expected = [_draws(s) for s in states]
    for rank in (0, 1, 2):  # rank 2: a run resumed on more ranks takes rank 0's stream
        torch.manual_seed(123)
        assert load_checkpoint(backend, "ck", model, opt, rank=rank)["step"] == 7
        assert torch.equal(torch.rand(4), expected[rank if rank < 2 else 0])


def test_a_checkpoint_with_one_rng_state_still_loads():
    """Checkpoints written before per-rank states hold ``rng.torch``: every rank restores it."""
    from safetensors.torch import load, save

    from ssl_graph.train.checkpoint import _metadata

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    backend = _Dict()
    torch.manual_seed(5)
    save_checkpoint(backend, "ck", model, opt, 3)
    tensors = load(backend.files["ck/state.safetensors"])

    meta = _metadata(backend.files["ck/state.safetensors"])
    old = {("rng.torch" if k == "rng.rank0.torch" else k): v for k, v in tensors.items()}
    backend.files["ck/state.safetensors"] = save(old, metadata=meta)
    expected = torch.rand(4)
    torch.manual_seed(99)
    assert load_checkpoint(backend, "ck", model, opt, rank=1)["step"] == 3
    assert torch.equal(torch.rand(4), expected)


def test_the_launcher_refuses_a_pinned_gpu_before_any_work(tmp_path):
    from click.testing import CliRunner

    from ssl_graph.api import Project
    from ssl_graph.cli import main

    from .test_runtime import _spec

    spec = _spec(tmp_path)
    store = str(tmp_path / "store")
    res = CliRunner().invoke(main, ["--store", store, "run", str(spec), "--launcher", "torchrun",
                                    "--nproc-per-node", "2", "--set", "hb.device=cuda:1", "-q"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        "error: hb: device='cuda:1' would put every torchrun rank on one GPU; set device='cuda' "
        "(each rank takes the GPU of its LOCAL_RANK; pick GPUs with CUDA_VISIBLE_DEVICES)"]
    assert all(st.record is None for st in Project(spec, store).plan().values())  # nothing ran
