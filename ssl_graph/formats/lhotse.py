"""Lhotse manifests: a cuts manifest, or recordings with optional supervisions (JSONL, optionally
gzipped, or a JSON list), as lhotse writes them.

Read here with the standard library rather than by importing lhotse, because ``import lhotse``
pulls in torch and takes seconds, and planning must stay cheap and torch-free; the tests write
the manifests with lhotse itself and check this reader against lhotse's own reading. Only what
defines the audio is read: single-source ``file`` recordings (commands, URLs and in-memory
audio are refused with what to do), supervision and cut time ranges, speakers and texts.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from ..specs.base import SpecError
from .sources import AudioSegment
from .spans import check_span, seconds


def read_objects(path: Path) -> Iterator[tuple[str, dict]]:
    """(file:line, object) of a ``.jsonl``/``.jsonl.gz``/``.json`` manifest."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rt", encoding="utf-8") if gz
              else open(path, encoding="utf-8")) as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the Lhotse manifest ({exc})") from None
    if text.lstrip().startswith("["):
        for i, obj in enumerate(_json(path, 1, text)):
            yield f"{path}:item {i + 1}", obj
        return
    for ln, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield f"{path}:{ln}", _json(path, ln, line)


def _json(path: Path, ln: int, text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}:{ln}: not valid JSON ({exc.msg}); is this a Lhotse manifest?") \
            from None


def recording_file(where: str, rec: dict, base: Path) -> Path:
    sources = rec.get("sources")
    if not isinstance(sources, list) or len(sources) != 1:
        raise SpecError(f"{where}: recording {rec.get('id')!r} needs exactly one audio source, "
                        f"has {len(sources) if isinstance(sources, list) else 'none'}")
    src = sources[0]
    if src.get("type") != "file":
        raise SpecError(f"{where}: recording {rec.get('id')!r} has a {src.get('type')!r} source; "
                        "ssl_graph reads audio files only: save the audio as files and rebuild "
                        "the manifest (e.g. Recording.from_file)")
    p = Path(src["source"])
    return p if p.is_absolute() else base / p


def _kind(obj: dict) -> str:
    if "type" in obj and "recording" in obj or obj.get("type", "").endswith("Cut"):
        return "cut"
    if "recording_id" in obj:
        return "supervision"
    if "sources" in obj:
        return "recording"
    return "unknown"


def list_manifests(manifest: Path, supervisions: Path | None, base: Path
                   ) -> tuple[list[tuple[str, Path | AudioSegment]], dict[str, str]]:
    """Utterances (id, audio source) and speakers: one per cut, else one per supervision, else
    one per recording (the whole file)."""
    pairs, speakers, recordings = [], {}, {}
    for where, obj in read_objects(manifest):
        kind = _kind(obj)
        if kind == "cut":
            if obj.get("type") != "MonoCut" or "recording" not in obj:
                raise SpecError(f"{where}: cut {obj.get('id')!r} is a {obj.get('type')} without "
                                "its recording; only MonoCuts with recordings are read")
            file = recording_file(where, obj["recording"], base)
            pairs.append((obj["id"], AudioSegment(file, *_span(where, obj, "cut"))))
            sups = [s.get("speaker") for s in obj.get("supervisions", []) if s.get("speaker")]
            if sups:
                speakers[obj["id"]] = sups[0]
        elif kind == "recording":
            recordings[obj["id"]] = (where, recording_file(where, obj, base))
        else:
            raise SpecError(f"{where}: expected a Lhotse recording or cut; pass supervisions "
                            "with Corpus.lhotse(recordings, supervisions=...)")
    if supervisions is None:
        return pairs + [(rid, f) for rid, (_, f) in recordings.items()], speakers
    if pairs:
        raise SpecError(f"{manifest}: a cuts manifest carries its supervisions; drop "
                        "supervisions=")
    for where, sup in read_objects(supervisions):
        if _kind(sup) != "supervision":
            raise SpecError(f"{where}: expected a Lhotse supervision segment")
        if sup["recording_id"] not in recordings:
            raise SpecError(f"{where}: supervision {sup['id']!r} names recording "
                            f"{sup['recording_id']!r}, which {manifest} does not hold")
        pairs.append((sup["id"], AudioSegment(recordings[sup["recording_id"]][1],
                                              *_span(where, sup, "supervision"))))
        if sup.get("speaker"):
            speakers[sup["id"]] = sup["speaker"]
    return pairs, speakers


def _span(where: str, obj: dict, kind: str) -> tuple[float, float]:
    """(start, end) s of a cut or supervision, checked like every annotation's times."""
    where = f"{where}: {kind} {obj.get('id')!r}"
    start = seconds(where, obj.get("start"), "start")
    end = start + seconds(where, obj.get("duration"), "duration")
    check_span(where, start, end)
    return start, end


def segment_table(path: Path) -> dict[str, list[tuple[str, float, float | None]]]:
    """recording → [(utt, start s, end s)] of a supervisions or cuts manifest, for re-basing
    recording-keyed annotations (the corpus scan has checked the manifests)."""
    out: dict[str, list[tuple[str, float, float | None]]] = {}
    for _, obj in read_objects(path):
        kind = _kind(obj)
        if kind not in ("supervision", "cut") or kind == "cut" and "recording" not in obj:
            continue
        reco = obj["recording_id"] if kind == "supervision" else obj["recording"]["id"]
        start = float(obj["start"])
        out.setdefault(reco, []).append((obj["id"], start, start + float(obj["duration"])))
    return out


def transcript_rows(path: Path) -> list[tuple[str, str, str]]:
    """(file:line, utt, text) from a supervisions manifest (utt = supervision id) or a cuts
    manifest (utt = cut id; its supervisions' texts joined)."""
    out = []
    for where, obj in read_objects(path):
        kind = _kind(obj)
        if kind == "supervision" and obj.get("text") is not None:
            out.append((where, obj["id"], obj["text"]))
        elif kind == "cut":
            texts = [s["text"] for s in obj.get("supervisions", []) if s.get("text")]
            if texts:
                out.append((where, obj["id"], " ".join(texts)))
    return out
