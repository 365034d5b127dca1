"""Deterministic test/labeled selection (``Split``): seeded hashes of utterance ids.

Hashing the id (rather than shuffling the list) makes each utterance's draw independent of
which other utterances exist: adding utterances never moves existing ones into or out of the
test split, and changes the labeled subset only where a new utterance's rank falls inside the
budget walk.
"""

from __future__ import annotations

import hashlib


def unit_hash(seed: int, purpose: str, utt: str) -> float:
    """A uniform number in [0, 1) from (seed, purpose, utterance id)."""
    h = hashlib.sha256(f"{seed}\x00{purpose}\x00{utt}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def is_test(utt: str, split) -> bool:
    return unit_hash(split.seed, "test", utt) < split.test_fraction


def held_apart(utts, split) -> list[str]:
    """The test utterances among ``utts``, sorted."""
    return sorted(u for u in utts if is_test(u, split))


def labeled_utterances(durations: dict[str, float], split) -> list[str]:
    """Non-test utterances taken in seeded order while they fit ``split.labeled_minutes``.

    ``durations`` maps utterance → seconds (only utterances usable for training). An utterance
    that would overflow the budget is skipped and the walk goes on, so the budget fills as far
    as the durations allow and is never exceeded. Returns ids sorted.
    """
    pool = [u for u in durations if not is_test(u, split)]
    if split.labeled_minutes is None:
        return sorted(pool)
    pool.sort(key=lambda u: (unit_hash(split.seed, "labeled", u), u))
    budget = split.labeled_minutes * 60.0
    chosen, total = [], 0.0
    for u in pool:
        if total + durations[u] <= budget + 1e-9:
            chosen.append(u)
            total += durations[u]
    return sorted(chosen)
