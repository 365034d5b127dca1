"""Checkpoints as safetensors only: weights, optimiser moments and RNG state, no pickle.

RNG state is saved per rank (``rng.rank<r>.torch``, ``rng.rank<r>.cuda``: the CPU generator and
the rank's own GPU's), and each rank of a resumed DDP run restores its own, so a resumed run
draws what the uninterrupted one would have. Checkpoints written before that hold one state
(``rng.torch``, ``rng.cuda<i>``), which every rank restores.

Optimiser state is flattened to named tensors (``opt.<param index>.<key>``) with the hyper-
parameters in the safetensors metadata, so loading a checkpoint can never execute code.
Files go through the store backend (local or fsspec). A checkpoint is written under a new key
and only then does the node record point at it: a crash mid-write leaves the previous one in
charge.
"""

from __future__ import annotations

import json

import torch
from safetensors.torch import load, save


def _opt_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors = {}
    scalars: dict[str, dict] = {}
    for pid, state in sd["state"].items():
        for k, v in state.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def rng_state(device: str) -> dict[str, torch.Tensor]:
    """This process's random streams a resumed run continues: torch's CPU generator, and on a
    GPU that device's generator."""
    state = {"torch": torch.get_rng_state()}
    if device.startswith("cuda"):
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def save_checkpoint(backend, key: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    step: int, extra: dict | None = None,
                    rng: list[dict[str, torch.Tensor]] | None = None) -> None:
    """``rng``: every rank's :func:`rng_state`, in rank order (default: this process's, on CPU)."""
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    backend.write_bytes(f"{key}/model.safetensors", save(weights))
    opt, opt_meta = _opt_tensors(optimizer)
    for rank, state in enumerate(rng or [rng_state("cpu")]):
        for name, t in state.items():
            opt[f"rng.rank{rank}.{name}"] = t.detach().cpu().contiguous()
    meta = {"step": step, "optimizer": opt_meta, **(extra or {})}
    backend.write_bytes(f"{key}/state.safetensors", save(opt, metadata={"json": json.dumps(meta)}))


def restore_rng(tensors: dict[str, torch.Tensor], rank: int, device: str) -> None:
    """Set this rank's generators from a checkpoint: its own saved state, else rank 0's (a run
    resumed on more ranks than it had), else the single state of an older checkpoint."""
    for who in (rank, 0):
        prefix = f"rng.rank{who}."
        own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if own:
            torch.set_rng_state(own["torch"])
            if "cuda" in own and device.startswith("cuda"):
                torch.cuda.set_rng_state(own["cuda"], device)
            return
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda")]
        if states:
            torch.cuda.set_rng_state_all(states)


def _metadata(raw: bytes) -> dict:
    """safetensors header: 8-byte little-endian length, then JSON with ``__metadata__``."""
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]).get("__metadata__", {})


def load_weights(backend, key: str, model: torch.nn.Module, device="cpu") -> None:
    weights = load(backend.read_bytes(f"{key}/model.safetensors"))
    model.load_state_dict({k: v.to(device) for k, v in weights.items()})


def load_checkpoint(backend, key: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    device="cpu", rank: int = 0) -> dict:
    """Restore weights, optimiser state and rank ``rank``'s RNG; returns the metadata (incl.
    ``step``)."""
    load_weights(backend, key, model, device)
    raw = backend.read_bytes(f"{key}/state.safetensors")
    meta = json.loads(_metadata(raw)["json"])
    tensors = load(raw)
    state: dict[int, dict] = {}
    for name, t in tensors.items():
        if name.startswith("opt."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = t.to(device) if key != "step" else t
    for pid, scal in meta["optimizer"]["scalars"].items():
        state.setdefault(int(pid), {}).update(scal)
    optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    restore_rng(tensors, rank, device)
    return meta
