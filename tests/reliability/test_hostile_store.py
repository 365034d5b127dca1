"""Hostile stores: crafted records, indexes, names files and symbolic links never reach outside
the store (issue 18).

A real store (corpus, MFCC, k-means, labels, and a tiny pre-training interrupted after its
step-2 checkpoint, so a partial record points at a checkpoint) is built once. Each case copies
it, crafts one hostile entry that points at a ``victim`` folder beside the store (``..`` paths,
absolute paths, symbolic links), runs one command, and checks that no byte outside the store
changed (every file, folder and link beside it hashed before and after), and that the command
answered sensibly: an exit code, one ``error:`` line at most, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from ..conftest import make_corpus
from ..interrupts import ctrl_c_at_step
from .conftest import cli, node_dir

SPEC = '''
from ssl_graph import MFCC, Corpus, KMeans, Labels
from ssl_graph.presets import wav2vec

corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="alignments.tsv")
mfcc = MFCC(corpus=corpus)
km = KMeans(features=mfcc, k=8, fit_fraction=1.0, seed=0, max_iter=5)
labels = Labels(kmeans=km)
w2v = wav2vec(corpus, size="tiny", steps=4, batch_seconds=2.0, crop_seconds=1.0,
              checkpoint_every=1)
done = w2v.with_(steps=2, seed=1)
'''


# ---- the store, the victim beside it, and proof that the victim did not change -------------
def _pretrain(wd: Path) -> Path:
    """The interrupted training's folder (``w2v``; ``done`` finished)."""
    (d,) = [d for d in (wd / "store" / "nodes").glob("pretrain-*")
            if json.loads((d / "zarr.json").read_text())["attributes"]["ssl_graph"]["name"] == "w2v"]
    return d


def _record_path(wd: Path, kind: str) -> Path:
    return (_pretrain(wd) if kind == "pretrain" else node_dir(wd, kind)) / "zarr.json"


def _record(wd: Path, name: str) -> dict:
    return json.loads(_record_path(wd, "pretrain" if name == "w2v" else name).read_text())[
        "attributes"]["ssl_graph"]


def _edit_record(wd: Path, kind: str, edit) -> None:
    path = _record_path(wd, kind)
    meta = json.loads(path.read_text())
    edit(meta["attributes"]["ssl_graph"])
    path.write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The store computed once for the module, with the victim folder beside it."""
    from ssl_graph.api import Project
    from ssl_graph.train import data

    wd = tmp_path_factory.mktemp("hostile") / "w"
    wd.mkdir()
    make_corpus(wd, 6)
    (wd / "pipe.py").write_text(SPEC)
    Project(wd / "pipe.py", str(wd / "store")).run(["done"])  # (a record with final weights)
    with pytest.MonkeyPatch.context() as mp, ctrl_c_at_step(mp, data.CropSampler, 2):
        Project(wd / "pipe.py", str(wd / "store")).run()
    rec = _record(wd, "w2v")
    assert rec["status"] == "partial" and rec["checkpoint"] == "ckpt/step-00000002"
    # the victim: what a crafted store would aim at (a checkpoint, a segment, a part, a whole
    # node with a part its record does not reference, and an unrelated file)
    victim = wd / "victim"
    victim.mkdir()
    for f in (_pretrain(wd) / rec["checkpoint"]).iterdir():
        shutil.copy2(f, victim / f.name)
    (victim / "notes.txt").write_text("the user's own file\n")
    (seg,) = (node_dir(wd, "mfcc") / "index").glob("*.seg")
    shutil.copy2(seg, victim / "seg")
    shutil.copytree(node_dir(wd, "labels") / "parts" / "00001", victim / "part")
    shutil.copytree(node_dir(wd, "labels"), victim / "node")
    shutil.copytree(victim / "part", victim / "node" / "parts" / "00099")
    (victim / "junk").mkdir()
    (victim / "junk" / "data.bin").write_bytes(os.urandom(64))
    (victim / "junk" / "holder.json").write_text("{}")  # (what a run's lock cleanup would take)
    return wd


def outside(wd: Path) -> str:
    """A digest of everything beside the store: names, kinds, bytes and link targets."""
    h = hashlib.sha256()
    for dirpath, dirs, files in os.walk(wd):  # (never follows a link)
        dirs[:] = sorted(d for d in dirs if Path(dirpath, d) != wd / "store"
                         and Path(dirpath, d) != wd / "out")
        for name in sorted(dirs + files):
            p = Path(dirpath, name)
            h.update(str(p.relative_to(wd)).encode())
            if p.is_symlink():
                h.update(b"link:" + os.readlink(p).encode())
            elif p.is_file():
                h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


# ---- hostile entries --------------------------------------------------------------------
def _checkpoint_dotdot(wd):
    """Defect 1: a partial training record's checkpoint is ``../../../victim``."""
    _edit_record(wd, "pretrain", lambda r: r.update(checkpoint="../../../victim"))


def _checkpoint_absolute(wd):
    _edit_record(wd, "pretrain", lambda r: r.update(checkpoint=str(wd / "victim")))


def _segment_dotdot(wd):
    """Defect 2: an index segment read from outside (same size and checksum: reads 'clean')."""
    def edit(rec):
        rec["index"]["segments"][0]["file"] = "../../../victim/seg"
    _edit_record(wd, "mfcc", edit)


def _part_dotdot(wd):
    """Defect 2: index and record name a part outside (a faithful copy: reads 'clean')."""
    from ssl_graph.store import index as columnar
    from ssl_graph.store.store import Store

    store = Store(str(wd / "store"))
    key = f"nodes/{node_dir(wd, 'labels').name}"
    rec = store.record(key)
    (seg,) = rec["index"]["segments"]
    entries, dropped = columnar.decode((node_dir(wd, "labels") / seg["file"]).read_bytes())
    for e in entries.values():
        e[0] = "../../../victim/part"
    rec["parts"] = {"../../../victim/part": rec["parts"]["parts/00001"]}
    rec["index"]["segments"] = [store.write_index_segment(key, rec["commit"], entries, dropped)]
    store.write_record(key, rec)


def _names_dotdot(wd):
    """A names file whose history leads to a folder outside (``nodes/x-y/../../../victim``)."""
    path = wd / "store" / "names" / "pipe.json"
    names = json.loads(path.read_text())
    names["ghost"] = [{"fingerprint": "y/../../../victim/node", "kind": "x", "time": "t"}]
    path.write_text(json.dumps(names))


def _plans_dotdot(wd):
    path = wd / "store" / "plans" / "pipe.json"
    plan = json.loads(path.read_text())
    plan["keys"].append("nodes/../../victim/node")
    path.write_text(json.dumps(plan))


def _link(at: Path, target: Path) -> None:
    if at.is_dir():
        shutil.rmtree(at)
    at.symlink_to(target, target_is_directory=True)


def _live_node_link(wd):
    """Defect 3: a live node's folder is a link (its target holds an unreferenced part)."""
    _link(node_dir(wd, "labels"), wd / "victim" / "node")


def _garbage_node_link(wd):
    """Defect 3: a node folder no name points to is a link."""
    (wd / "store" / "nodes" / "mfcc-0000000000000000").symlink_to(wd / "victim" / "junk")


def _part_links(wd):
    """Defect 3: a referenced part and an unreferenced one are links."""
    parts = node_dir(wd, "labels") / "parts"
    _link(parts / "00001", wd / "victim" / "part")
    (parts / "00002").symlink_to(wd / "victim" / "junk")


def _checkpoint_link(wd):
    """The current checkpoint folder is a link to one outside."""
    _link(_pretrain(wd) / "ckpt" / "step-00000002", wd / "victim")


def _lock_links(wd):
    """The store lock and the locks folder are links (runs register and clean up there)."""
    store = wd / "store"
    (store / ".lock").unlink()
    (store / ".lock").symlink_to(wd / "victim" / "notes.txt")
    _link(store / "locks", wd / "victim" / "junk")


HOSTILE = {
    "checkpoint-dotdot": (_checkpoint_dotdot, "pretrain"),
    "checkpoint-absolute": (_checkpoint_absolute, "pretrain"),
    "segment-dotdot": (_segment_dotdot, "mfcc"),
    "part-dotdot": (_part_dotdot, "labels"),
    "names-dotdot": (_names_dotdot, "names/pipe.json"),
    "plans-dotdot": (_plans_dotdot, "plans/pipe.json"),
    "live-node-link": (_live_node_link, "labels"),
    "garbage-node-link": (_garbage_node_link, "mfcc-0000000000000000"),
    "part-links": (_part_links, "labels"),
    "checkpoint-link": (_checkpoint_link, "pretrain"),
    "lock-links": (_lock_links, None),
}


@pytest.fixture
def hostile(base, tmp_path, request):
    """(workdir, the node the damage is in) of a private copy of the store, made hostile."""
    wd = tmp_path / "w"
    shutil.copytree(base, wd, symlinks=True)
    craft, where = HOSTILE[request.param]
    craft(wd)
    return wd, where


def _utt(wd: Path) -> str:
    return sorted(p.stem for p in (wd / "wav").glob("*.flac"))[0]


COMMANDS = {
    "run": lambda wd: [("run", str(wd / "pipe.py"), "--no-progress", "-q")],
    "plan": lambda wd: [("plan", str(wd / "pipe.py"))],
    "query": lambda wd: [("query", "features", f"{wd / 'pipe.py'}:mfcc", "--utt", _utt(wd)),
                         ("query", "labels", f"{wd / 'pipe.py'}:labels", "--utt", _utt(wd))],
    "verify": lambda wd: [("verify",)],
    "verify-repair": lambda wd: [("verify", "--repair")],
    "gc": lambda wd: [("gc",)],
    "export": lambda wd: [("export", "features", f"{wd / 'pipe.py'}:mfcc", str(wd / "out" / "f")),
                          ("export", "labels", f"{wd / 'pipe.py'}:labels", str(wd / "out" / "l")),
                          ("export", "model", f"{wd / 'pipe.py'}:w2v", str(wd / "out" / "m"))],
}


def sensible(res) -> None:
    """An exit code, no traceback, and a failure says so in one ``error:`` line."""
    assert "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    if res.exit_code not in (0, 1):
        raise AssertionError(f"exit {res.exit_code}: {res.output}")
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) <= 1, res.output


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("hostile", list(HOSTILE), indirect=True)
def test_nothing_outside_the_store_changes(hostile, command):
    wd, _ = hostile
    before = outside(wd)
    for args in COMMANDS[command](wd):
        sensible(cli(wd, *args))
        assert outside(wd) == before, f"`ssl-graph {' '.join(args)}` changed files outside the store"


@pytest.mark.parametrize("hostile", [h for h, (_, where) in HOSTILE.items() if where],
                         indirect=True)
def test_verify_reports_the_entry_as_damaged(hostile):
    wd, where = hostile
    res = cli(wd, "verify")
    sensible(res)
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("DAMAGED") and where in ln]
    assert lines, res.output
    assert "leads outside" in lines[0] or "malformed" in lines[0], lines[0]


@pytest.mark.parametrize("hostile", ["garbage-node-link", "part-links", "live-node-link"],
                         indirect=True)
def test_gc_removes_links_never_their_targets_and_goes_on(hostile):
    wd, _ = hostile
    links = [p for p in (wd / "store").rglob("*") if p.is_symlink()]
    (wd / "store" / "nodes" / "pretrain-0000000000000000").mkdir()  # garbage after the link
    res = cli(wd, "gc")
    sensible(res)
    assert res.exit_code == 0, res.output
    assert "symbolic link" in res.output, res.output
    assert not (wd / "store" / "nodes" / "pretrain-0000000000000000").exists(), res.output
    referenced = [p for p in links if p.name == "00001"]  # (verify --repair drops it first)
    assert [p for p in links if p.is_symlink()] == referenced, res.output
    assert (wd / "victim" / "junk" / "data.bin").is_file()
    assert (wd / "victim" / "node" / "parts" / "00099").is_dir()


@pytest.mark.parametrize("hostile", ["checkpoint-dotdot", "part-dotdot", "live-node-link", "part-links",
                                     "checkpoint-link"], indirect=True)
def test_repair_gc_and_run_make_the_store_whole(hostile):
    """verify --repair, gc, run: the store is whole again and the victim untouched."""
    wd, _ = hostile
    before = outside(wd)
    for args in (("verify", "--repair"), ("gc",), ("run", str(wd / "pipe.py"), "--no-progress",
                                                    "-q")):
        res = cli(wd, *args)
        sensible(res)
        assert res.exit_code == 0, (args, res.output)
    res = cli(wd, "verify")
    assert res.exit_code == 0 and "DAMAGED" not in res.output, res.output
    assert not [p for p in (wd / "store").rglob("*") if p.is_symlink()]
    assert outside(wd) == before


def _strings(value):
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_every_path_a_record_names_is_checked(base):
    """``paths.record_paths`` enumerates every record field that names a file or folder of its
    node: any string in a real record (parts, arrays, index segments, a checkpoint, final
    weights...) that names something in the node's folder is among what it yields, so a new
    path field cannot skip the containment check."""
    from ssl_graph.store.paths import record_paths

    checked = 0
    for folder in sorted((base / "store" / "nodes").iterdir()):
        if not (folder / "zarr.json").is_file() or folder.name == "zarr.json":
            continue
        rec = json.loads((folder / "zarr.json").read_text())["attributes"].get("ssl_graph")
        if rec is None:
            continue
        named = {rel for _, rel in record_paths(rec)}
        for s in {s for value in rec.values() for s in _strings(value)}:  # (not field names)
            if s not in ("", ".", "..", "zarr.json") and not s.startswith("/") \
                    and (folder / s).exists():  # (zarr.json: the record itself)
                assert s in named, f"{folder.name}: {s!r} names a file but is not checked"
                checked += 1
    assert checked >= 8  # (parts, arrays, segments, the checkpoint, the weights)
