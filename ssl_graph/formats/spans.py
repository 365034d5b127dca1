"""The one rule every time range read from an annotation or segment file obeys.

Alignment rows (TSV, TextGrid, CTM, TIMIT ``.PHN``/``.WRD``) and utterance segments (Kaldi
``segments``, Lhotse supervisions and cuts) all pass through :func:`check_span`, so a NaN, an
infinity, a negative time or an empty or reversed range is refused the same way whatever the
format, naming ``file:line`` (``tests/reliability/test_annotation_times.py`` enumerates them).
"""

from __future__ import annotations

import math

from ..specs.base import SpecError


def check_span(where: str, start: float, end: float | None, what: str = "segment",
               open_end: str = "") -> None:
    """Refuse a time range (seconds) that is not finite, starts before 0 or does not end
    after it starts; ``end=None`` is an open end (to the end of the recording), allowed only
    where ``open_end`` says how it was written. ``where`` is ``file:line`` (and utterance)."""
    shown = f"{start}–{'end' if end is None else end} s"
    if not math.isfinite(start) or (end is not None and not math.isfinite(end)):
        raise SpecError(f"{where}: {what} {shown} has a time that is not a finite number "
                        "(NaN or infinity); write both times as seconds")
    if start < 0 or (end is not None and end <= start):
        also = f" (or {open_end})" if open_end else ""
        raise SpecError(f"{where}: {what} {shown} is negative or empty; start must be ≥ 0 "
                        f"and end > start{also}")


def seconds(where: str, value, field: str) -> float:
    """A time field parsed as seconds (a JSON number or numeric string), or a ``file:line``
    error naming the field."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{where}: {field} must be a number of seconds, got {value!r}") from None
