"""The corpus scan cache (directory mtimes) and the node-level input digest must never make a
changed corpus look fresh: each kind of change restales exactly its utterances."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import soundfile as sf

from ssl_graph.api import Project
from ssl_graph.audio.scan_cache import GlobScan

from .conftest import DEMO, age_directories, clip

PER_UTT = ("corpus", "mfcc", "labels")


def project(wd) -> Project:
    return Project(wd / "pipe.py", str(wd / "store"))


def stale(wd) -> dict[str, tuple[list[str], list[str]]]:
    """node -> (utterances to compute, utterances to drop), for the stale per-utterance nodes."""
    states = project(wd).plan()
    return {n: (sorted(states[n].todo), sorted(states[n].removed)) for n in PER_UTT
            if states[n].stale}


def utterances(wd) -> list[str]:
    root = wd / "wav"
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.wav"))


def refit(wd, utt: str, removed: list[str] = ()) -> dict:
    """An edit of a fit utterance: its audio nodes redo it; k-means refits, so labels redo all."""
    audio = {n: ([utt] if not removed else [], list(removed)) for n in ("corpus", "mfcc")}
    return {**audio, "labels": (utterances(wd), list(removed))}


def scan(wd) -> GlobScan:
    s = GlobScan(str(wd / "wav"), "**/*.wav")
    s.files()
    return s


def computed(report) -> dict[str, int | None]:
    return {n.name: n.utterances for n in report.nodes if n.status == "computed"}


def ready(wd) -> None:
    """Computed once, then planned once more so the cache is saved (directories aged)."""
    assert computed(project(wd).run())["corpus"] == 10
    age_directories(wd / "wav")
    assert stale(wd) == {}
    assert scan(wd).hit


def test_no_op_plan_uses_the_cache_and_the_digest(nested):
    ready(nested)
    states = project(nested).plan()
    for name in PER_UTT:  # fresh by digest: versions not computed until asked for
        assert states[name].lazy_expected is not None, name
    store = project(nested).store
    for name in PER_UTT:
        st = states[name]
        stored = {u: e[3] for u, e in store.index(st.key, st.record).items()}
        assert st.expected == stored  # the lazy versions are the ones the store holds
    assert computed(project(nested).run()) == {}


def test_adding_a_file_in_a_subdirectory_restales_just_it(nested):
    ready(nested)
    new = sorted((DEMO / "extra").glob("*.flac"))[0]
    clip(new, nested / "wav" / "b" / "deep" / f"{new.stem}.wav")
    utt = f"b/deep/{new.stem}"
    assert not scan(nested).hit  # the directory's mtime moved
    assert stale(nested) == {n: ([utt], []) for n in PER_UTT}
    assert computed(project(nested).run()) == {"corpus": 1, "mfcc": 1, "labels": 1}
    assert stale(nested) == {}


def test_removing_a_file_drops_just_it(nested):
    ready(nested)
    victim = sorted((nested / "wav" / "a").glob("*.wav"))[2]
    victim.unlink()
    utt = f"a/{victim.stem}"
    assert stale(nested) == refit(nested, utt, removed=[utt])
    project(nested).run()
    assert utt not in project(nested)["mfcc"].utterances()
    assert stale(nested) == {}


def test_editing_content_at_the_same_size_restales_just_it(nested):
    ready(nested)
    victim = sorted((nested / "wav" / "b" / "deep").glob("*.wav"))[1]
    size = victim.stat().st_size
    audio, sr = sf.read(victim, dtype="int16")
    time.sleep(0.01)  # a new mtime even on coarse clocks
    sf.write(victim, audio[::-1], sr, subtype="PCM_16")  # new samples, same length and size
    assert victim.stat().st_size == size
    assert scan(nested).hit  # directory unchanged: the file list comes from the cache ...
    utt = f"b/deep/{victim.stem}"
    assert stale(nested) == refit(nested, utt)  # ... and the stat sees the edit
    p = project(nested)
    before = p["mfcc"].features(utt)
    assert computed(p.run()) == {"corpus": 1, "mfcc": 1, "km": None, "labels": 10}
    assert not np.array_equal(project(nested)["mfcc"].features(utt), before)
    assert stale(nested) == {}


def test_touching_a_file_in_a_subdirectory_restales_just_it(nested):
    ready(nested)
    victim = sorted((nested / "wav" / "b" / "deep").glob("*.wav"))[4]
    st = victim.stat()
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert scan(nested).hit
    assert stale(nested) == refit(nested, f"b/deep/{victim.stem}")


def test_a_new_subdirectory_is_seen(nested):
    ready(nested)
    new = sorted((DEMO / "extra").glob("*.flac"))[1]
    clip(new, nested / "wav" / "c" / f"{new.stem}.wav")
    assert stale(nested) == {n: ([f"c/{new.stem}"], []) for n in PER_UTT}


def _cache_files(cache_dir):
    return sorted((cache_dir / "scans").glob("*.json"))


def test_garbage_cache_is_ignored_and_rebuilt(nested, scan_cache_dir):
    ready(nested)
    (path,) = _cache_files(scan_cache_dir)
    for garbage in ("not json{", "[]", '{"version": 1}', json.dumps({"files": 3})):
        path.write_text(garbage)
        assert stale(nested) == {}
        assert not scan(nested).hit or json.loads(path.read_text()).get("files")
    # rebuilt: the next scan trusts it again
    assert scan(nested).hit


def test_a_cache_lying_about_the_files_is_not_trusted(nested, scan_cache_dir):
    """A cache whose directory mtimes still match but whose list was edited (or torn) fails
    its checksum; one whose mtimes do not match is stale: neither is believed."""
    ready(nested)
    (path,) = _cache_files(scan_cache_dir)
    doc = json.loads(path.read_text())
    names, utts = doc["files"].split("\n"), doc["utts"].split("\n")
    doc["files"], doc["utts"] = "\n".join(names[1:]), "\n".join(utts[1:])
    path.write_text(json.dumps(doc))
    assert not scan(nested).hit
    assert stale(nested) == {}  # the glob found every file: nothing is stale or lost
    doc = json.loads(path.read_text())
    doc["dirs"] = [[rel, m + 1, c, ino] for rel, m, c, ino in doc["dirs"]]
    path.write_text(json.dumps(doc))
    assert not scan(nested).hit


def test_a_tree_restored_with_old_mtimes_is_not_trusted(nested):
    """``tar -x``/``rsync -a`` put back directory mtimes; the ctime still moves."""
    ready(nested)
    d = nested / "wav" / "a"
    st = d.stat()
    new = sorted((DEMO / "extra").glob("*.flac"))[2]
    clip(new, d / f"{new.stem}.wav")
    os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))  # the old mtime, as an extractor would
    assert d.stat().st_mtime_ns == st.st_mtime_ns
    assert not scan(nested).hit
    assert stale(nested)["corpus"] == ([f"a/{new.stem}"], [])


def test_a_directory_changed_just_now_is_not_cached(nested, scan_cache_dir):
    ready(nested)
    for f in _cache_files(scan_cache_dir):
        f.unlink()
    (nested / "wav" / "a" / "notes.txt").write_text("not audio")  # a's mtime is now
    assert stale(nested) == {}
    assert _cache_files(scan_cache_dir) == []  # too fresh to trust: no cache written
    age_directories(nested / "wav")
    assert stale(nested) == {} and len(_cache_files(scan_cache_dir)) == 1


def test_a_record_without_input_digest_is_planned_utterance_by_utterance(nested):
    """Stores written before the digest existed: compared one by one, still fresh; the next
    no-op run notes the digests (and k-means' fit-list size) so later plans take the fast path."""
    ready(nested)
    p = project(nested)
    states = p.plan()
    for name, field in [(n, "input_digest") for n in PER_UTT] + [("km", "fit_utts_size")]:
        rec = dict(states[name].record)
        rec.pop(field)
        p.store.write_record(states[name].key, rec)
    states = project(nested).plan()
    assert not any(states[n].stale for n in PER_UTT)
    assert all(states[n].lazy_expected is None and states[n].expected for n in PER_UTT)
    assert computed(project(nested).run()) == {}  # a no-op run notes the digests, once
    states = project(nested).plan()
    assert all(states[n].lazy_expected is not None for n in PER_UTT)
    assert states["km"].record["fit_utts_size"] > 0


def test_the_no_op_after_growth_reads_one_digest_and_still_sees_later_edits(nested):
    """Growth keeps the centroids; the run that computes the new utterances notes for which
    features they were kept, so the next no-op plan computes no per-utterance version (as a
    clean no-op) — and an edit after the growth is still caught, a fit utterance refitting."""
    ready(nested)
    new = sorted((DEMO / "extra").glob("*.flac"))[0]
    clip(new, nested / "wav" / "b" / "deep" / f"{new.stem}.wav")
    grown = f"b/deep/{new.stem}"
    states = project(nested).plan()
    assert not states["km"].stale and "centroids kept" in states["km"].notes[0]
    assert computed(project(nested).run()) == {"corpus": 1, "mfcc": 1, "labels": 1}
    states = project(nested).plan()
    assert not any(st.stale for st in states.values())
    for name in PER_UTT:  # k-means compared one digest: no utterance's version was computed
        assert states[name].lazy_expected is not None, name
    assert states["km"].notes == ["+1 utterance since the fit; centroids kept "
                                  "(set refit_on_growth=True to refit)"]
    assert states["km"].record["kept_for"]["input_version"] == states["km"].input_version
    # the grown utterance edited: not in the fit list, so only it is redone, centroids kept
    age_directories(nested / "wav")
    wav = nested / "wav" / "b" / "deep" / f"{new.stem}.wav"
    audio, sr = sf.read(wav, dtype="int16")
    time.sleep(0.01)
    sf.write(wav, audio[::-1], sr, subtype="PCM_16")
    assert stale(nested) == {n: ([grown], []) for n in PER_UTT}
    assert computed(project(nested).run()) == {"corpus": 1, "mfcc": 1, "labels": 1}
    assert stale(nested) == {}
    # a fit utterance edited after the growth: k-means refits, labels redo every utterance
    victim = sorted((nested / "wav" / "a").glob("*.wav"))[2]
    audio, sr = sf.read(victim, dtype="int16")
    time.sleep(0.01)
    sf.write(victim, audio[::-1], sr, subtype="PCM_16")
    utt = f"a/{victim.stem}"
    assert stale(nested) == refit(nested, utt)
    assert computed(project(nested).run()) == {"corpus": 1, "mfcc": 1, "km": None, "labels": 11}
    states = project(nested).plan()
    assert not any(st.stale for st in states.values()) and "kept_for" not in states["km"].record
