"""One rule for every annotation format's times (issue 18): a CTM row ``nan inf`` used to be
stored although the TSV refused such rows. Every format that carries times is written here with
one bad row, and planning must refuse it naming the file and line, with the same words.

The tables are checked against the formats the specs accept and the reader modules that make
utterance segments, so a new format cannot join without a row here."""

from __future__ import annotations

import ast
import json
import math
import pkgutil
import shutil
from pathlib import Path
from typing import get_args

import pytest

import ssl_graph.formats
from ssl_graph.api import Project
from ssl_graph.specs.annotations import AlignmentFormat, WordFormat
from ssl_graph.specs.base import SpecError

from ..formats.helpers import long_recordings, plain_corpus, timit_tree

NAN, INF = math.nan, math.inf
GOOD = (0.10, 0.20)  # the row before the bad one (seconds)

#: the bad row's (start, end) and the words of its refusal
TIME_CASES = {
    "nan": ((NAN, 0.30), "not a finite number"),
    "inf": ((0.20, INF), "not a finite number"),
    "negative": ((-0.05, 0.30), "negative or empty"),
    "reversed": ((0.30, 0.25), "negative or empty"),
}
#: rules between rows of one utterance: only alignments have an order (segments are utterances)
ORDER_CASES = {
    "unsorted": ((0.00, 0.05), "comes after one at"),
    "overlap": ((0.15, 0.30), "overlaps the previous one"),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A plain corpus, its TIMIT tree and its long recordings, shared (read only)."""
    d = tmp_path_factory.mktemp("times")
    utts = plain_corpus(d, 3)
    timit = timit_tree(d, utts[:2], words=True)
    recordings, _ = long_recordings(d, utts)
    return {"dir": d, "utts": utts, "timit": sorted(timit), "reco": recordings[0]}


def _num(x: float) -> str:
    return repr(x) if math.isfinite(x) else ("nan" if math.isnan(x) else "inf")


# ---- alignment formats: write [GOOD, bad] for one utterance; return (spec lines, file:line) ---
def _tsv(data, d, kind, bad):
    f = d / "a.tsv"
    u = data["utts"][0]
    f.write_text("utt\tstart\tend\tlabel\n" + "".join(
        f"{u}\t{_num(s)}\t{_num(e)}\tx\n" for s, e in (GOOD, bad)))
    return f"corpus = Corpus(root={str(data['dir'] / 'plain' / 'wav')!r})\n" \
           f"ali = {kind}(corpus=corpus, path='a.tsv')\n", f"{f}:3"


def _ctm(data, d, kind, bad):
    f = d / "a.ctm"
    u = data["utts"][0]
    f.write_text("".join(f"{u} 1 {_num(s)} {_num(e - s)} x\n" for s, e in (GOOD, bad)))
    return f"corpus = Corpus(root={str(data['dir'] / 'plain' / 'wav')!r})\n" \
           f"ali = {kind}(corpus=corpus, path='a.ctm', format='ctm')\n", f"{f}:2"


def _textgrid(data, d, kind, bad):
    u = data["utts"][0]
    f = d / "tg" / f"{u}.TextGrid"
    f.parent.mkdir()
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0",
             "xmax = 1", "tiers? <exists>", "size = 1", "item []:", "    item [1]:",
             '        class = "IntervalTier"', '        name = "words"', "        xmin = 0",
             "        xmax = 1", "        intervals: size = 2"]
    for i, (s, e) in enumerate((GOOD, bad), 1):
        if i == 2:
            at = len(lines) + 2  # the bad interval's xmin line
        lines += [f"        intervals [{i}]:", f"            xmin = {_num(s)}",
                  f"            xmax = {_num(e)}", '            text = "x"']
    f.write_text("\n".join(lines) + "\n")
    return f"corpus = Corpus(root={str(data['dir'] / 'plain' / 'wav')!r})\n" \
           f"ali = {kind}(corpus=corpus, path='tg', format='textgrid', tier='words')\n", f"{f}:{at}"


def _timit(suffix):
    def write(data, d, kind, bad):
        src = data["dir"] / "TIMIT"
        tree = d / "TIMIT"
        shutil.copytree(src, tree)
        f = sorted(tree.rglob(f"*.{suffix}"))[0]
        f.write_text("".join(f"{_num(s * 16000)} {_num(e * 16000)} x\n" for s, e in (GOOD, bad)))
        fmt = f"timit_{suffix.lower()}"
        return (f"corpus = Corpus.timit('TIMIT')\n"
                f"ali = {kind}(corpus=corpus, path='TIMIT', format={fmt!r})\n", f"{f}:2")
    return write


#: format → (writer, the node kinds that accept it)
ALIGNMENT_WRITERS = {
    "tsv": (_tsv, ("Alignments", "WordAlignments")),
    "ctm": (_ctm, ("Alignments", "WordAlignments")),
    "textgrid": (_textgrid, ("Alignments", "WordAlignments")),
    "timit_phn": (_timit("PHN"), ("Alignments",)),
    "timit_wrd": (_timit("WRD"), ("WordAlignments",)),
}


# ---- utterance segments: a second utterance of a long recording has the bad range ------------
def _kaldi(data, d, bad):
    (d / "data").mkdir()
    reco = data["reco"]
    (d / "data" / "wav.scp").write_text(f"{reco} {data['dir'] / 'long' / reco}.flac\n")
    (d / "data" / "segments").write_text("".join(
        f"u{i} {reco} {_num(s)} {_num(e)}\n" for i, (s, e) in enumerate((GOOD, bad))))
    return "corpus = Corpus.kaldi('data')\n", f"{d / 'data' / 'segments'}:2"


def _recording(data) -> dict:
    reco = data["reco"]
    return {"id": reco, "sources": [{"type": "file", "channels": [0],
                                      "source": f"{data['dir'] / 'long' / reco}.flac"}],
            "sampling_rate": 16000, "num_samples": 160000, "duration": 10.0, "channel_ids": [0]}


def _lines(path: Path, objs: list[dict]) -> None:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))  # NaN/Infinity as Python writes


def _supervisions(data, d, bad):
    rec = _recording(data)
    _lines(d / "recordings.jsonl", [rec])
    _lines(d / "supervisions.jsonl", [
        {"id": f"s{i}", "recording_id": rec["id"], "start": s, "duration": e - s, "channel": 0}
        for i, (s, e) in enumerate((GOOD, bad))])
    return ("corpus = Corpus.lhotse('recordings.jsonl', supervisions='supervisions.jsonl')\n",
            f"{d / 'supervisions.jsonl'}:2")


def _cuts(data, d, bad):
    rec = _recording(data)
    _lines(d / "cuts.jsonl", [
        {"id": f"c{i}", "start": s, "duration": e - s, "channel": 0, "type": "MonoCut",
         "recording": rec, "supervisions": []} for i, (s, e) in enumerate((GOOD, bad))])
    return "corpus = Corpus.lhotse('cuts.jsonl')\n", f"{d / 'cuts.jsonl'}:2"


#: reader module → its segment-making inputs
SEGMENT_WRITERS = {
    "kaldi": {"segments": _kaldi},
    "lhotse": {"supervisions": _supervisions, "cuts": _cuts},
}


def _refused(d: Path, body: str, where: str, words: str) -> None:
    (d / "p.py").write_text("from ssl_graph import *\n" + body + "mfcc = MFCC(corpus=corpus)\n")
    with pytest.raises(SpecError) as err:
        Project(d / "p.py", str(d / "store")).plan()
    msg = str(err.value)
    assert "\n" not in msg
    assert f"{where}:" in msg and words in msg, msg


ALIGNMENT_PARAMS = [
    pytest.param(fmt, kind, case, id=f"{fmt}-{kind}-{case}")
    for fmt, (_, kinds) in ALIGNMENT_WRITERS.items() for kind in kinds
    for case in [*TIME_CASES, *ORDER_CASES]
    if not (case == "overlap" and kind == "WordAlignments")  # words may overlap
]


@pytest.mark.parametrize("fmt,kind,case", ALIGNMENT_PARAMS)
def test_every_alignment_format_refuses_bad_times_naming_file_and_line(data, tmp_path, fmt, kind,
                                                                      case):
    bad, words = {**TIME_CASES, **ORDER_CASES}[case]
    body, where = ALIGNMENT_WRITERS[fmt][0](data, tmp_path, kind, bad)
    _refused(tmp_path, body, where, words)


@pytest.mark.parametrize("module,source,case", [
    pytest.param(m, s, c, id=f"{m}-{s}-{c}")
    for m, sources in SEGMENT_WRITERS.items() for s in sources for c in TIME_CASES])
def test_every_segment_source_refuses_bad_times_naming_file_and_line(data, tmp_path, module,
                                                                    source, case):
    bad, words = TIME_CASES[case]
    body, where = SEGMENT_WRITERS[module][source](data, tmp_path, bad)
    _refused(tmp_path, body, where, words)


def test_the_good_rows_alone_are_accepted(data, tmp_path):
    """The tables' files are valid but for the bad row (so the refusals are about it)."""
    for fmt, (write, kinds) in ALIGNMENT_WRITERS.items():
        d = tmp_path / fmt
        d.mkdir()
        body, _ = write(data, d, kinds[0], (0.25, 0.30))
        (d / "p.py").write_text("from ssl_graph import *\n" + body)
        assert Project(d / "p.py", str(d / "store")).plan()["ali"].status == "stale"
    for sources in SEGMENT_WRITERS.values():
        for source, write in sources.items():
            d = tmp_path / source
            d.mkdir()
            body, _ = write(data, d, (0.25, 0.30))
            (d / "p.py").write_text("from ssl_graph import *\n" + body + "mfcc = MFCC(corpus=corpus)\n")
            assert len(Project(d / "p.py", str(d / "store")).plan()["corpus"].todo) == 2


# ---- the tables cover every format (a new one cannot skip them) ---------------------------------
def test_the_table_covers_every_alignment_format_the_specs_accept():
    accepted = set(get_args(AlignmentFormat)) | set(get_args(WordFormat))
    assert accepted == set(ALIGNMENT_WRITERS), "add the new format's writer to ALIGNMENT_WRITERS"
    for fmt, (_, kinds) in ALIGNMENT_WRITERS.items():
        assert ("Alignments" in kinds) == (fmt in get_args(AlignmentFormat))
        assert ("WordAlignments" in kinds) == (fmt in get_args(WordFormat))


def _calls(tree: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Call):
            f = n.func
            out.add(f.id if isinstance(f, ast.Name) else getattr(f, "attr", ""))
    return out


def test_every_reader_module_that_makes_segments_checks_them_and_is_in_the_table():
    """Alignment rows of every format reach ``parse_alignments`` (the only caller of the
    format dispatcher); utterance segments are made by the layout readers themselves, so each
    module that builds an ``AudioSegment`` must call ``check_span`` and have a table row."""
    root = Path(ssl_graph.formats.__file__).parent
    makers = set()
    for info in pkgutil.iter_modules([str(root)]):
        calls = _calls(ast.parse((root / f"{info.name}.py").read_text()))
        if "AudioSegment" in calls:
            makers.add(info.name)
            assert "check_span" in calls, f"formats/{info.name}.py makes segments unchecked"
    assert makers == set(SEGMENT_WRITERS), "add the new module's inputs to SEGMENT_WRITERS"
    annotations = Path(ssl_graph.__file__).parent / "audio" / "annotations.py"
    assert "check_span" in _calls(ast.parse(annotations.read_text()))
    callers = [p for p in Path(ssl_graph.__file__).parent.rglob("*.py")
               if "alignment_rows" in _calls(ast.parse(p.read_text()))
               and p.parent.name != "formats"]
    assert callers == [annotations]
