"""The weights of a local transformers Wav2Vec2 / HuBERT / Data2VecAudio / WavLM checkpoint
(its architecture is read by ``ssl_graph/specs/hf_config.py``).

Weights are read only from safetensors: ``pytorch_model.bin`` is a pickle, and loading one can
run arbitrary code, so it is refused with the one-line conversion that makes it safe.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..specs.base import SpecError


def weight_files(path: Path, what: str) -> list[Path]:
    """The safetensors files of a checkpoint (one, or the shards an index lists)."""
    files = sorted(path.glob("*.safetensors"))
    if files:
        for f in files:
            check_safetensors(f, what)
        return files
    pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
    if pickled:
        raise SpecError(
            f"{what}: {path} holds only pickled weights ({pickled[0]}); pickles can run code "
            "when loaded, so they are refused. Convert once where you trust the file: "
            "AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)")
    raise SpecError(f"{what}: {path} has no model.safetensors")


#: a safetensors header larger than this is not one (the format's own limit is 100 MB)
_MAX_HEADER = 100_000_000


def check_safetensors(file: Path, what: str) -> None:
    """The file is whole: its header parses and its tensors end exactly where the file does
    (a truncated download otherwise fails deep in the loader, "Error while deserializing
    header", naming no file). Reads the header only."""
    import struct

    size = file.stat().st_size
    fix = "re-download it or save it again (save_pretrained(dir, safe_serialization=True))"
    with open(file, "rb") as fh:
        head = fh.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else None
        problem = None
        if n is None or n > _MAX_HEADER or 8 + n > size:
            problem = f"{size} bytes, too short for its header"
        else:
            try:
                header = json.loads(fh.read(n))
                ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                header, problem = None, "its header is not valid safetensors JSON"
            if header is not None and 8 + n + max(ends, default=0) != size:
                problem = (f"{size} bytes but its tensors need {8 + n + max(ends, default=0)}: "
                           "truncated or appended to")
    if problem:
        raise SpecError(f"{what}: {file} is damaged ({problem}); {fix}")


def identity_files(path: Path, what: str) -> list[Path]:
    """Every file that defines the model: config, preprocessor config, weights."""
    extra = [path / "preprocessor_config.json"]
    return [path / "config.json", *[p for p in extra if p.is_file()], *weight_files(path, what)]


def read_weights(path: Path, what: str) -> dict:
    """HF state dict (torch tensors) from the safetensors files."""
    from safetensors.torch import load_file

    state = {}
    for file in weight_files(path, what):
        try:
            state.update(load_file(str(file)))
        except Exception as exc:  # safetensors' errors name no file
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SpecError(f"{what}: cannot read {file} ({reason}); re-download it or save it "
                            "again (save_pretrained(dir, safe_serialization=True))") from None
    return state
