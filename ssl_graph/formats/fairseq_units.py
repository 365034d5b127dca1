"""Units and features out, as fairseq's (and torchaudio's) HuBERT recipes read them.

* ``{split}.tsv``: the audio root on the first line, then ``relative/path<TAB>num_samples``;
* ``{split}.km``: one line per ``.tsv`` row, the frame labels separated by spaces;
* ``dict.km.txt``: ``label count`` per cluster id (fairseq's ``Dictionary`` file; the recipes
  write a count of 1, we write the real frame counts, which the loader ignores);
* features: ``{split}_0_1.npy`` (all frames concatenated) and ``{split}_0_1.len`` (frames per
  utterance, one per line), the layout of the recipes' feature dump (rank 0 of 1 shard).

Rows keep one order across the files of a split: the correspondence is positional.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np


def audio_root(paths: Iterable[Path]) -> Path:
    paths = [Path(p).resolve() for p in paths]
    return Path(os.path.commonpath([str(p.parent) for p in paths])) if paths else Path(".")


def write_tsv(out: Path, split: str, utts: list[str], paths: dict[str, Path],
              samples: dict[str, int]) -> Path:
    root = audio_root(paths[u] for u in utts)
    lines = [str(root)] + [f"{os.path.relpath(Path(paths[u]).resolve(), root)}\t{samples[u]}"
                           for u in utts]
    target = out / f"{split}.tsv"
    target.write_text("\n".join(lines) + "\n")
    return target


def write_km(out: Path, split: str, labels: Iterable[np.ndarray]) -> Path:
    target = out / f"{split}.km"
    with open(target, "w") as fh:
        for lab in labels:
            fh.write(" ".join(map(str, np.asarray(lab).tolist())) + "\n")
    return target


def write_dict(out: Path, counts: np.ndarray) -> Path:
    target = out / "dict.km.txt"
    target.write_text("".join(f"{i} {int(c)}\n" for i, c in enumerate(counts)))
    return target


def write_features(out: Path, split: str, lengths: list[int], dim: tuple[int, ...], dtype,
                   arrays: Iterable[np.ndarray]) -> tuple[Path, Path]:
    """Stream utterance arrays (in row order, ``lengths`` known up front) into one ``.npy``
    through a memory map, so memory stays bounded whatever the corpus size."""
    npy, lens = out / f"{split}_0_1.npy", out / f"{split}_0_1.len"
    mm = np.lib.format.open_memmap(npy, mode="w+", dtype=dtype, shape=(sum(lengths), *dim))
    pos = 0
    for n, a in zip(lengths, arrays):
        if len(a) != n:
            raise ValueError(f"{npy}: an utterance has {len(a)} frames, the index says {n}")
        mm[pos:pos + n] = a
        pos += n
    mm.flush()
    del mm
    lens.write_text("".join(f"{n}\n" for n in lengths))
    return npy, lens
