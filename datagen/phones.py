"""Map espeak-ng English phoneme mnemonics onto a small ARPAbet-style phone set.

Why: espeak's mnemonics encode accent- and rule-internal distinctions (``@``,
``@2``, ``a#`` are all schwa-like; ``I``/``I2``/``I#`` are all KIT; ``r-`` is a
linking r; ``;`` is a glide marker after "the"), and would give ~70 labels for a
few hundred words, many of them rare.  Phone purity / PNMI style metrics want a
compact, phonemic label set, so we collapse to lower-case ARPAbet (the TIMIT /
CMUdict 39-phone convention, with schwa ``ax`` and flap ``dx`` kept apart) plus
``sil``.  Stress is not part of espeak's phoneme mnemonics (it is a separate
attribute), so there is nothing to strip there.

The mapping is voice-independent on purpose: an accent's realisation of a
lexical set (e.g. BATH as [æ] vs [ɑː]) is *not* re-labelled per voice.  This is
a phonemic transcription of what espeak intended, not a narrow phonetic one.
"""

from __future__ import annotations

import itertools

SIL = "sil"
EXTEND = None  # label meaning "belongs to the previous segment"

# value: a phone, a tuple of phones (segment split evenly), or EXTEND
ESPEAK_TO_PHONE: dict[str, str | tuple[str, ...] | None] = {
    # stops, affricates, flap
    "p": "p",
    "b": "b",
    "t": "t",
    "t2": "t",
    "t[": "t",
    "d": "d",
    "d#": "d",
    "d[": "d",
    "k": "k",
    "g": "g",
    "tS": "ch",
    "dZ": "jh",
    "t#": "dx",
    "?": "t",
    # fricatives
    "f": "f",
    "v": "v",
    "T": "th",
    "D": "dh",
    "s": "s",
    "z": "z",
    "z#": "z",
    "S": "sh",
    "Z": "zh",
    "h": "hh",
    "h#": "hh",
    "x": "hh",
    "C": "hh",
    # nasals, liquids, glides
    "m": "m",
    "m-": "m",
    "n": "n",
    "n-": "n",
    "N": "ng",
    "l": "l",
    "l/": "l",
    "l#": "l",
    "r": "r",
    "r-": "r",
    "r/": "r",
    "w": "w",
    "w#": "w",
    "W": "w",
    "j": "y",
    ";": EXTEND,
    # front / central vowels
    "i": "iy",
    "i:": "iy",
    "I": "ih",
    "I2": "ih",
    "I#": "ih",
    "i@": "ih",
    "i@3": "ih",
    "e": "eh",
    "E": "eh",
    "E2": "eh",
    "E3": "eh",
    "e@": "eh",
    "eI": "ey",
    "a": "ae",
    "aa": "ae",
    "a#": "ax",
    "@": "ax",
    "@2": "ax",
    "@5": "ax",
    "@-": "ax",
    "@L": ("ax", "l"),
    "3": "er",
    "3:": "er",
    "VR": "er",
    "IR": "er",
    "V": "ah",
    # back vowels and diphthongs
    "A:": "aa",
    "A@": "aa",
    "0": "aa",
    "O:": "ao",
    "O@": "ao",
    "o@": "ao",
    "O2": "ao",
    "u:": "uw",
    "u": "uw",
    "U": "uh",
    "U@": "uh",
    "oU": "ow",
    "OI": "oy",
    "aI": "ay",
    "aI2": "ay",
    "aI@": ("ay", "ax"),
    "aI3": ("ay", "er"),
    "aU": "aw",
    "aU@": ("aw", "ax"),
}

PHONE_SET = sorted(
    {SIL}
    | {v for v in ESPEAK_TO_PHONE.values() if isinstance(v, str)}
    | {p for v in ESPEAK_TO_PHONE.values() if isinstance(v, tuple) for p in v}
)


def map_phoneme(mnemonic: str) -> str | tuple[str, ...] | None:
    """Phone label(s) for one espeak mnemonic; pauses (``_``, ``_:``, ``_!``...) are ``sil``.

    Unknown mnemonics raise, so a new voice or espeak version that introduces
    a symbol we never looked at fails loudly instead of leaking into the labels.
    """
    if mnemonic.startswith("_"):
        return SIL
    try:
        return ESPEAK_TO_PHONE[mnemonic]
    except KeyError:
        raise KeyError(
            f"unmapped espeak phoneme mnemonic {mnemonic!r}; add it to ESPEAK_TO_PHONE"
        ) from None


def segments_from_events(
    events: list[tuple[int, str]], n_samples: int, lead_samples: int = 0
) -> list[tuple[int, int, str]]:
    """Turn (start sample, mnemonic) events into contiguous labelled segments.

    ``lead_samples`` of silence prepended to the audio become a leading ``sil``
    segment.  Zero-length events are dropped (espeak emits some at word
    boundaries), ``EXTEND`` symbols lengthen the previous segment, multi-phone
    mappings are split evenly, and adjacent ``sil`` segments are merged.  The
    result covers ``[0, n_samples)`` exactly, in samples of the input rate.
    """
    bounds = [(0, SIL)] if lead_samples > 0 else []
    for start, mnem in events:
        if start + lead_samples < n_samples:  # events past a trimmed end are dropped
            bounds.append((start + lead_samples, mnem))
    if not bounds or bounds[0][0] > 0:
        bounds.insert(0, (0, "_"))
    if any(b[0] < a[0] for a, b in itertools.pairwise(bounds)):
        raise ValueError("espeak phoneme events are not in time order")
    raw: list[tuple[int, int, str | tuple[str, ...] | None]] = []
    for i, (start, mnem) in enumerate(bounds):
        end = min(bounds[i + 1][0], n_samples) if i + 1 < len(bounds) else n_samples
        if end <= start:
            continue
        raw.append((start, end, SIL if mnem == SIL else map_phoneme(mnem)))
    out: list[tuple[int, int, str]] = []
    for start, end, label in raw:
        if label is EXTEND:
            if out:
                s0, _, lab0 = out[-1]
                out[-1] = (s0, end, lab0)
            else:
                out.append((start, end, SIL))
            continue
        parts = (label,) if isinstance(label, str) else label
        edges = [start + (end - start) * k // len(parts) for k in range(len(parts) + 1)]
        for p, a, b in zip(parts, edges, edges[1:]):
            if out and p == SIL and out[-1][2] == SIL:
                out[-1] = (out[-1][0], b, SIL)
            else:
                out.append((a, b, p))
    return out
