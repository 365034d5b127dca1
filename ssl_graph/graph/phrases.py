"""How plan reasons name counts and utterances ("3 utterances (a, b, c, …)")."""

from __future__ import annotations


def examples(utts: list[str], n: int = 3) -> str:
    """The first ``n`` ids, with an ellipsis when there are more."""
    shown = ", ".join(utts[:n])
    return shown + (", …" if len(utts) > n else "")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
