"""Containment (``store/paths.py``): one function decides whether a stored path stays inside its
folder, and every way into the store's files goes through it (issue 18).

The hostile stores themselves (every command against crafted records, indexes, names files and
links) are in ``tests/reliability/test_hostile_store.py``; here are the rule and its callers.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from ssl_graph.store.backend import FsspecBackend, LocalBackend
from ssl_graph.store.paths import Uncontained, contained, guard

PACKAGE = Path(__file__).resolve().parents[2] / "ssl_graph"

ESCAPES = ["..", "../victim", "ckpt/../../victim", "parts/00001/../../..", "/etc/passwd",
           "~/victim", "s3://bucket/key", "C:/victim", "parts//00001", "./parts", "parts\\..\\x",
           "a\x00b", 5, ["parts"], None]


@pytest.mark.parametrize("value", ESCAPES, ids=repr)
def test_paths_leading_out_or_not_paths_are_refused(value):
    with pytest.raises(Uncontained) as err:
        contained("nodes/kmeans-0123", value, "checkpoint")
    msg = str(err.value)
    assert msg.startswith("nodes/kmeans-0123: checkpoint ") and repr(value) in msg
    assert "leads outside nodes/kmeans-0123" in msg and "\n" not in msg


@pytest.mark.parametrize("value", ["ckpt/step-00000020", "parts/00001/c/0/0", "index/00003.seg",
                                   "model.safetensors", "x..y", ""])
def test_paths_inside_are_keys(value):
    assert contained("nodes/kmeans-0123", value, "part") == f"nodes/kmeans-0123/{value}".rstrip("/")


@pytest.fixture
def local(tmp_path):
    """A local store folder with one node, and a victim folder beside it."""
    (tmp_path / "store" / "nodes" / "n-1" / "ckpt" / "a").mkdir(parents=True)
    (tmp_path / "store" / "nodes" / "n-1" / "ckpt" / "a" / "model.safetensors").write_bytes(b"m")
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "notes.txt").write_bytes(b"mine")
    return LocalBackend(str(tmp_path / "store")), tmp_path


def test_links_inside_their_folder_are_followed_links_out_are_refused(local):
    backend, tmp = local
    node = tmp / "store" / "nodes" / "n-1"
    (node / "ckpt" / "b").symlink_to(node / "ckpt" / "a")  # stays inside the node
    assert backend.read_bytes("nodes/n-1/ckpt/b/model.safetensors") == b"m"
    (node / "ckpt" / "out").symlink_to(tmp / "victim")
    with pytest.raises(Uncontained, match="symbolic link on the way resolves to .*victim"):
        backend.read_bytes("nodes/n-1/ckpt/out/notes.txt")
    (tmp / "store" / "nodes" / "n-2").symlink_to(node)  # another node's folder is outside too
    with pytest.raises(Uncontained, match="leads outside nodes/n-2"):
        backend.listdir("nodes/n-2")


def _hostile_calls(backend, key: str):
    """Every public method of a backend that takes a store key, called with ``key``."""
    values = {"data": b"x", "tag": "t"}
    for name, fn in inspect.getmembers(type(backend), inspect.isfunction):
        params = list(inspect.signature(fn).parameters)
        if name.startswith("_") or "key" not in params:
            continue
        args = {p: key if p == "key" else values[p] for p in params[1:]}
        yield name, lambda fn=fn, args=args: fn(backend, **args)


@pytest.mark.parametrize("make", ["local", "memory"])
def test_every_backend_method_refuses_keys_leading_out(local, make):
    """Enumerates the backends' methods itself: a new one that skips the check fails here."""
    backend = local[0] if make == "local" else FsspecBackend("memory://contain-test/store")
    calls = dict(_hostile_calls(backend, "nodes/n-1/../../../victim/notes.txt"))
    assert {"read_bytes", "write_bytes", "delete", "listdir", "size", "exists"} <= set(calls)
    for name, call in calls.items():
        with pytest.raises(Uncontained):
            call()
            pytest.fail(f"{type(backend).__name__}.{name} took a key leading out of the store")
    assert (local[1] / "victim" / "notes.txt").read_bytes() == b"mine"


def test_every_backend_method_refuses_a_link_out(local):
    backend, tmp = local
    (tmp / "store" / "nodes" / "n-1" / "parts").symlink_to(tmp / "victim")
    for name, call in _hostile_calls(backend, "nodes/n-1/parts/notes.txt"):
        if name == "exists":  # an entry is there: reading it is what is refused
            assert call() is True
            continue
        with pytest.raises(Uncontained):
            call()
            pytest.fail(f"LocalBackend.{name} went through a link out of the store")
    assert sorted(p.name for p in (tmp / "victim").iterdir()) == ["notes.txt"]
    assert (tmp / "victim" / "notes.txt").read_bytes() == b"mine"


def test_delete_removes_a_link_never_what_it_leads_to(local):
    backend, tmp = local
    (tmp / "store" / "nodes" / "n-3").symlink_to(tmp / "victim")
    assert backend.link_target("nodes/n-3") == str(tmp / "victim")
    assert backend.size("nodes/n-3") == 0
    backend.delete("nodes/n-3")
    assert not (tmp / "store" / "nodes" / "n-3").exists()
    assert (tmp / "victim" / "notes.txt").read_bytes() == b"mine"


def test_guard_puts_keys_in_their_node_folder():
    assert guard(None, "nodes/n-1/parts/00001") == "nodes/n-1/parts/00001"
    with pytest.raises(Uncontained, match="leads outside nodes/n-1"):
        guard(None, "nodes/n-1/../n-2/zarr.json")


# ---- the callers, enumerated from the source ------------------------------------------------
def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def _called(tree: ast.AST) -> set[str]:
    return {(n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", ""))
            for n in ast.walk(tree) if isinstance(n, ast.Call)}


#: zarr entry points that open files under a store URL themselves (not through a backend)
ZARR_OPENERS = {"create_array", "open_array", "open_group", "open", "create_group", "create",
                "open_consolidated", "array", "group"}


def test_every_zarr_access_to_store_files_is_guarded_first():
    """zarr reads and writes files itself: each function handing it a store URL checks the key
    through ``guard``/``contained`` (a link in the store would lead zarr out otherwise)."""
    sites, unguarded = [], []
    for path, tree in _modules():
        for fn in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef,
                                                                ast.AsyncFunctionDef))]:
            for call in [n for n in ast.walk(fn) if isinstance(n, ast.Call)]:
                f = call.func
                if not (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                        and f.value.id == "zarr" and f.attr in ZARR_OPENERS):
                    continue
                store = next((k.value for k in call.keywords if k.arg == "store"), None)
                if store is None or "url" not in ast.unparse(store):
                    continue  # (an in-memory store)
                where = f"{path.relative_to(PACKAGE.parent)}:{fn.name}"
                sites.append(where)
                if not _called(fn) & {"guard", "contained"}:
                    unguarded.append(where)
    assert len(sites) >= 4, sites  # the scan sees them (write_array, read_array, parts...)
    assert not unguarded, f"zarr opens store files without the containment check: {unguarded}"


#: fields that hold one stored path (record, index segment, best weights of a checkpoint)
PATH_VALUED = {"checkpoint", "weights", "hypotheses", "file", "best"}
#: modules that read such a field without building a path from it, and why
READS_ONLY = {
    "ssl_graph/store/gc.py": "compares checkpoint and segment names with what it lists",
    "ssl_graph/report.py": "reads the metrics of a finished training's best evaluation",
}


def _reads_path_field(tree: ast.AST) -> bool:
    for n in ast.walk(tree):
        if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) \
                and n.slice.value in PATH_VALUED:
            return True
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "get" \
                and n.args and isinstance(n.args[0], ast.Constant) \
                and n.args[0].value in PATH_VALUED:
            return True
    return False


def test_every_module_reading_a_stored_path_resolves_it_through_contained():
    readers, missing = [], []
    for path, tree in _modules():
        rel = str(path.relative_to(PACKAGE.parent))
        if rel.startswith("ssl_graph/specs/") or not _reads_path_field(tree):
            continue  # (spec fields of the same names are the user's, not stored paths)
        readers.append(rel)
        if rel not in READS_ONLY and "contained" not in _called(tree) | {
                a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}:
            missing.append(rel)
    assert {"ssl_graph/train/session.py", "ssl_graph/store/verify.py",
            "ssl_graph/store/store.py"} <= set(readers), readers
    assert not missing, f"these read a stored path without `contained`: {missing}"
    assert set(READS_ONLY) <= set(readers), "an allowance for a module that no longer reads one"


def test_arrays_zarr_reads_alone_are_checked_for_links_first(tmp_path):
    """An array without a checksum manifest (older stores) is read by zarr itself: a link in it
    that leads out of the node is refused before zarr opens it."""
    import numpy as np
    import zarr

    from ssl_graph.store.store import Store

    store = Store(str(tmp_path / "store"))
    zarr.create_array(store=store.url, name="nodes/n-1/arr", data=np.arange(6.0), chunks=(3,),
                      zarr_format=3)
    assert store.read_array("nodes/n-1/arr")[...].tolist() == list(np.arange(6.0))
    (tmp_path / "victim").mkdir()
    (tmp_path / "store" / "nodes" / "n-1" / "other").mkdir()
    zarr.create_array(store=store.url, name="nodes/n-1/other", data=np.arange(6.0), chunks=(3,),
                      zarr_format=3)
    chunks = tmp_path / "store" / "nodes" / "n-1" / "other" / "c"
    chunks.rename(tmp_path / "victim" / "c")
    chunks.symlink_to(tmp_path / "victim" / "c")
    with pytest.raises(Uncontained, match="leads outside nodes/n-1"):
        store.read_array("nodes/n-1/other")
