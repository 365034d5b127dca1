"""Levenshtein distance for CER / WER / PER (Numba DP over integer token ids).

Unit costs for substitution, insertion and deletion, as sclite and every ASR paper count them.
Tokens (characters, words, phones) are mapped to integers first so one compiled kernel serves
all three; two rows of the DP table suffice, so memory is O(len(hyp)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit


@njit(cache=True)
def _levenshtein(ref: np.ndarray, hyp: np.ndarray) -> int:
    n, m = ref.shape[0], hyp.shape[0]
    prev = np.arange(m + 1)
    cur = np.empty(m + 1, dtype=prev.dtype)
    for i in range(1, n + 1):
        cur[0] = i
        for j in range(1, m + 1):
            sub = prev[j - 1] + (0 if ref[i - 1] == hyp[j - 1] else 1)
            cur[j] = min(sub, prev[j] + 1, cur[j - 1] + 1)
        prev, cur = cur, prev
    return int(prev[m])


def _ids(ref: Sequence, hyp: Sequence) -> tuple[np.ndarray, np.ndarray]:
    table: dict = {}
    a = np.array([table.setdefault(t, len(table)) for t in ref], dtype=np.int64)
    b = np.array([table.setdefault(t, len(table)) for t in hyp], dtype=np.int64)
    return a, b


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Minimum substitutions + insertions + deletions turning ``ref`` into ``hyp``."""
    return _levenshtein(*_ids(ref, hyp))


def error_rate(refs: Sequence[Sequence], hyps: Sequence[Sequence]) -> tuple[float, int, int]:
    """Corpus-level rate: (total edits / total reference tokens, edits, reference tokens)."""
    edits = sum(edit_distance(r, h) for r, h in zip(refs, hyps, strict=True))
    total = sum(len(r) for r in refs)
    return (edits / total if total else float("nan")), edits, total
