"""Praat TextGrids (long and short text formats) as phone alignments, one file per utterance.

Praat's own reader skips everything but numbers, quoted strings and ``<flags>``; reading the
same tokens in order reads both formats with one tokenizer. Bracketed item indices
(``intervals [3]:``) and ``!`` comments are skipped. The utterance id is the file's stem.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from ..specs.base import SpecError

_TOKEN = re.compile(
    r'"(?P<str>(?:[^"]|"")*)"'          # quoted string, "" = a quote
    r"|!(?P<comment>[^\n]*)"             # comment to the end of the line
    r"|\[[^\]\n]*\]"                     # item index: [1], []
    r"|<(?P<flag>\w+)>"                  # <exists>
    r"|(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
    r"|(?<!\w)(?i:[-+]?(?:nan|inf(?:inity)?)\b))"  # as scripts write them: refused as times, by name
)


def files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() == ".textgrid")
    return [path]


def decode(path: Path) -> str:
    raw = path.read_bytes()
    for bom, enc in ((codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
                     (codecs.BOM_UTF8, "utf-8-sig")):
        if raw.startswith(bom):
            return raw.decode(enc)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(f"{path}:{line}: TextGrid is neither UTF-8 nor UTF-16 with a BOM; "
                        "save it from Praat as UTF-8") from None


class _Tokens:
    def __init__(self, path: Path, text: str):
        self.path, self.text = path, text
        self.items = [m for m in _TOKEN.finditer(text)
                      if m.lastgroup in ("str", "flag", "num")]
        self.i = 0

    def line(self) -> int:
        at = self.items[min(self.i, len(self.items) - 1)].start() if self.items else 0
        return self.text.count("\n", 0, at) + 1

    def next(self, kind: str):
        if self.i >= len(self.items):
            raise SpecError(f"{self.path}:{self.line()}: TextGrid ends early (expected a {kind})")
        m = self.items[self.i]
        self.i += 1
        if kind == "num" and m.lastgroup != "num":
            raise SpecError(f"{self.path}:{self.line()}: TextGrid: expected a number, got "
                            f"{m.group(0)!r}")
        if kind == "num":
            return float(m.group("num"))
        if m.lastgroup == "str":
            return m.group("str").replace('""', '"')
        return m.group(0)


def read_tiers(path: Path) -> dict[str, list[tuple[int, float, float, str]]]:
    """Interval tiers by name: [(line, start, end, text)]; point tiers are skipped."""
    tok = _Tokens(path, decode(path))
    if not tok.next("str").startswith("ooTextFile") or tok.next("str") != "TextGrid":
        raise SpecError(f"{path}:1: not a Praat TextGrid (expected File type = \"ooTextFile\", "
                        "Object class = \"TextGrid\")")
    tok.next("num"), tok.next("num")
    if tok.next("flag") != "<exists>":
        return {}
    tiers: dict[str, list[tuple[int, float, float, str]]] = {}
    for _ in range(int(tok.next("num"))):
        cls, name = tok.next("str"), tok.next("str")
        tok.next("num"), tok.next("num")
        rows = []
        for _ in range(int(tok.next("num"))):
            if cls == "IntervalTier":
                line = tok.line()
                start, end, text = tok.next("num"), tok.next("num"), tok.next("str")
                rows.append((line, start, end, text.strip()))
            else:
                tok.next("num"), tok.next("str")
        if cls == "IntervalTier":
            tiers[name] = rows
    return tiers


def pick_tier(path: Path, tiers: dict, tier: str | None) -> list:
    if tier is not None and tier in tiers:
        return tiers[tier]
    if tier is None and len(tiers) == 1:
        return next(iter(tiers.values()))
    if tier is None and "phones" in tiers:
        return tiers["phones"]
    want = f"no interval tier named {tier!r}" if tier else "several interval tiers"
    raise SpecError(f"{path}: {want}; its interval tiers are {sorted(tiers)}: pick one with "
                    "tier=... (Alignments or WordAlignments)")


def alignment_rows(path: Path, tier: str | None) -> list[tuple[str, str, float, float, str]]:
    """(file:line, utt, start, end, label) of one tier of every TextGrid under ``path``."""
    out = []
    for f in files(path):
        utt = f.name[: -len(f.suffix)]
        for line, start, end, text in pick_tier(f, read_tiers(f), tier):
            out.append((f"{f}:{line}", utt, start, end, text))
    return out
