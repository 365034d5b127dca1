"""Deterministic test/dev/labeled selection (``Split``): seeded hashes of utterance ids, or of
speaker ids for speaker-disjoint sets (``Split(by="speaker")``).

Hashing the id (rather than shuffling the list) makes each utterance's draw independent of
which other utterances exist: adding utterances never moves existing ones into or out of the
test or dev split, and changes the labeled subset only where a new utterance's rank falls
inside the budget walk. With ``by="speaker"`` the hash is of the speaker, so all of a speaker's
utterances land in the same set (an utterance with no known speaker is its own speaker).
"""

from __future__ import annotations

import hashlib


def unit_hash(seed: int, purpose: str, utt: str) -> float:
    """A uniform number in [0, 1) from (seed, purpose, utterance id)."""
    h = hashlib.sha256(f"{seed}\x00{purpose}\x00{utt}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def split_of(utt: str, split, speakers: dict[str, str | None] | None = None) -> str:
    """``"test"``, ``"dev"`` or ``"train"``: test is the lowest hash band, dev the next, so
    adding a dev split (or resizing it) never changes the test set."""
    key = utt
    if getattr(split, "by", "utterance") == "speaker":
        key = (speakers or {}).get(utt) or utt
    h = unit_hash(split.seed, "test", key)
    if h < split.test_fraction:
        return "test"
    return "dev" if h < split.test_fraction + getattr(split, "dev_fraction", 0.0) else "train"


def is_test(utt: str, split, speakers: dict[str, str | None] | None = None) -> bool:
    return split_of(utt, split, speakers) == "test"


def held_apart(utts, split, speakers: dict[str, str | None] | None = None) -> list[str]:
    """The test utterances among ``utts``, sorted."""
    return sorted(u for u in utts if split_of(u, split, speakers) == "test")


def dev_utterances(utts, split, speakers: dict[str, str | None] | None = None) -> list[str]:
    """The dev utterances among ``utts`` (never test, never labeled), sorted."""
    return sorted(u for u in utts if split_of(u, split, speakers) == "dev")


def labeled_utterances(durations: dict[str, float], split,
                       speakers: dict[str, str | None] | None = None) -> list[str]:
    """Training (non-test, non-dev) utterances taken in seeded order while they fit
    ``split.labeled_minutes``.

    ``durations`` maps utterance → seconds (only utterances usable for training). An utterance
    that would overflow the budget is skipped and the walk goes on, so the budget fills as far
    as the durations allow and is never exceeded. Returns ids sorted.
    """
    pool = [u for u in durations if split_of(u, split, speakers) == "train"]
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


def valid_holdout(utts, fraction: float, seed: int) -> set[str]:
    """``Pretrain(valid=fraction)``'s held-out utterances: hash(seed, id) < fraction, so an
    utterance's side never changes as the corpus grows."""
    return {u for u in utts if unit_hash(seed, "valid", u) < fraction}


def stratified_test(utts, fraction: float, seed: int,
                    speakers: dict[str, str | None]) -> list[str]:
    """Held-apart utterances *of every speaker* (speaker identification: the test speakers are
    the training speakers): each speaker's utterances in hash(seed, id) order, the first
    round(fraction · n) of them, at least one when the speaker has two or more and never all.
    Speakers with a single utterance only train. Returns ids sorted."""
    by: dict[str, list[str]] = {}
    for u in utts:
        by.setdefault(speakers.get(u) or u, []).append(u)
    out = []
    for own in by.values():
        if len(own) < 2:
            continue
        own.sort(key=lambda u: (unit_hash(seed, "test", u), u))
        out += own[:min(len(own) - 1, max(1, round(fraction * len(own))))]
    return sorted(out)
