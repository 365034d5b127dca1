"""``query --all``: every utterance of a node to ``DIR/<utt>.npy``, through the bulk reader."""

from __future__ import annotations

from pathlib import Path

from .specs.base import SpecError


def dump_all(handle, what: str, out: str | Path) -> int:
    """Write one ``.npy`` per utterance; refuses to overwrite files already there."""
    import numpy as np

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SpecError(f"{out} is a file; --all writes one .npy per utterance into a directory")
    out.mkdir(parents=True, exist_ok=True)
    utts = handle.utterances()
    clash = [u for u in utts if (out / f"{u}.npy").exists()]
    if clash:
        raise SpecError(f"{out / (clash[0] + '.npy')} exists ({len(clash)} of {len(utts)} would "
                        "be overwritten); dump into an empty directory")
    if what == "labels":
        handle.labels_many(utts[:1])  # refuses non-Labels nodes with the usual message
    else:
        handle._check_features()
    root = out.resolve()
    for utt, arr in handle:
        target = (out / f"{utt}.npy").resolve()
        if root not in target.parents:
            raise SpecError(f"utterance id {utt!r} would write outside {out}; rename it")
        target.parent.mkdir(parents=True, exist_ok=True)  # ids like speaker/chapter/utt
        np.save(target, arr)
    return len(utts)
