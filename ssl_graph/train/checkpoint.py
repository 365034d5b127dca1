"""Checkpoints as safetensors only: weights, optimiser moments and RNG state, no pickle.

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


def save_checkpoint(backend, key: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    step: int, extra: dict | None = None) -> None:
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    backend.write_bytes(f"{key}/model.safetensors", save(weights))
    opt, opt_meta = _opt_tensors(optimizer)
    opt["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            opt[f"rng.cuda{i}"] = s
    meta = {"step": step, "optimizer": opt_meta, **(extra or {})}
    backend.write_bytes(f"{key}/state.safetensors", save(opt, metadata={"json": json.dumps(meta)}))


def _metadata(raw: bytes) -> dict:
    """safetensors header: 8-byte little-endian length, then JSON with ``__metadata__``."""
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]).get("__metadata__", {})


def load_weights(backend, key: str, model: torch.nn.Module, device="cpu") -> None:
    weights = load(backend.read_bytes(f"{key}/model.safetensors"))
    model.load_state_dict({k: v.to(device) for k, v in weights.items()})


def load_checkpoint(backend, key: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    device="cpu") -> dict:
    """Restore weights, optimiser state and RNG; returns the metadata (incl. ``step``)."""
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
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda")]
        if states:
            torch.cuda.set_rng_state_all(states)
    return meta
