"""S3 atomicity is probed, not assumed (issue 18, defect 8): before the first lock on an object
store, two create-only PUTs of one key (the second must be refused) and a PUT naming a wrong
ETag; the outcome is kept in the store marker per endpoint. A store whose server ignores the
headers is refused to runs (one line; ``--single-writer`` accepts single-writer use, and then a
second run is refused while the first lives). Against the local moto server and a stand-in on
127.0.0.1 that drops ``If-None-Match``/``If-Match`` before moto sees them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ssl_graph.cli import main
from ssl_graph.store.backend import FsspecBackend, read_json
from ssl_graph.store.lease import Lease
from ssl_graph.store.lock import StoreLocked
from ssl_graph.store.store import MARKER, Store, StoreError

from ..conftest import make_corpus
from .s3 import BUCKET, s3, s3_ignoring_conditions  # noqa: F401  (fixtures)

URL = f"s3://{BUCKET}/store"
SPEC = '''
from ssl_graph import MFCC, Corpus

corpus = Corpus(root="wav")
mfcc = MFCC(corpus=corpus)
'''


def _probe_note(options=None) -> dict:
    return read_json(FsspecBackend(URL, options), MARKER)["conditional_writes"]


def _probes_left(fs) -> list[str]:
    return [k for k in fs.find(f"{BUCKET}/store/locks") if "/probe-" in k]


def test_moto_passes_the_probe_once_per_store(s3):  # noqa: F811
    with Store(URL).lock(shared=True), Store(URL).lock(shared=True):  # two runs at once
        pass
    note = _probe_note()
    assert note["ok"] is True and note["endpoint"] == s3["url"] and note["reason"] is None
    assert not _probes_left(s3["fs"])
    with Store(URL).lock(shared=True):  # remembered: not probed again
        pass
    assert _probe_note() == note


def test_the_stand_in_really_ignores_conditional_writes(s3_ignoring_conditions):  # noqa: F811
    """Without the probe, both of two runs would take one node's lease there."""
    backend = FsspecBackend(URL)
    assert backend.atomic  # (an S3 client: conditional writes were assumed)
    first, second = Lease(backend, "locks/n.lock"), Lease(backend, "locks/n.lock")
    assert first.try_take() is None and second.try_take() is None  # both "got" it


def test_run_is_refused_on_a_server_that_ignores_them(s3_ignoring_conditions, tmp_path):  # noqa: F811
    make_corpus(tmp_path, 2)
    (tmp_path / "pipe.py").write_text(SPEC)
    res = CliRunner().invoke(main, ["--store", URL, "run", str(tmp_path / "pipe.py"), "-q",
                                    "--no-progress"])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    (line,) = [ln for ln in res.output.splitlines() if ln.startswith("error")]
    assert URL in line and "ignores If-None-Match" in line and "--single-writer" in line, line
    note = _probe_note()
    assert note["ok"] is False and note["endpoint"] == s3_ignoring_conditions["url"]
    assert "ignores If-None-Match" in note["reason"]
    assert not FsspecBackend(URL).exists("nodes")  # nothing was computed


def test_single_writer_runs_alone(s3_ignoring_conditions, tmp_path, monkeypatch):  # noqa: F811
    make_corpus(tmp_path, 2)
    (tmp_path / "pipe.py").write_text(SPEC)
    res = CliRunner().invoke(main, ["--store", URL, "run", str(tmp_path / "pipe.py"), "-q",
                                    "--no-progress", "--single-writer"])
    assert res.exit_code == 0 and "computed 2 of 2 nodes" in res.output, res.output
    with Store(URL, single_writer=True).lock(shared=True):
        for other in (Store(URL, single_writer=True), Store(URL)):  # another run, or gc
            with pytest.raises(StoreLocked, match="being written by pid"), other.lock():
                pass
        with pytest.raises(StoreLocked, match="being written by pid"), \
                Store(URL, single_writer=True).lock(shared=True):
            pass
    monkeypatch.setenv("SSL_GRAPH_SINGLE_WRITER", "1")
    with Store(URL).lock(shared=True):  # the environment gives the same consent
        pass


def test_the_probe_is_remembered_per_endpoint(s3, s3_ignoring_conditions):  # noqa: F811
    with pytest.raises(StoreError, match="ignores If-None-Match"), Store(URL).lock(shared=True):
        pass
    with Store(URL, storage_options=s3["options"]).lock(shared=True):  # the honest server
        pass
    assert _probe_note(s3["options"])["ok"] is True


def test_filesystems_without_conditional_writes_need_single_writer():
    pytest.importorskip("fsspec")
    url = "memory://ssl-graph-conditional"
    with pytest.raises(StoreError, match="no conditional writes.*--single-writer"), \
            Store(url).lock(shared=True):
        pass
    with (Store(url, single_writer=True).lock(shared=True), pytest.raises(StoreLocked),
          Store(url, single_writer=True).lock(shared=True)):
        pass
    with Store(url).lock():  # gc / verify --repair take the store alone anyway
        pass
    assert "conditional_writes" not in json.loads(Store(url).backend.read_bytes(MARKER))
