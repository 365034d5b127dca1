"""A local S3 server (moto in server mode, on 127.0.0.1) for the object-store tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

BUCKET = "ssl-graph-test"


@pytest.fixture
def s3(monkeypatch):
    """``{"url": endpoint, "options": storage options}`` of a fresh moto server with one bucket;
    ``$SSL_GRAPH_STORAGE_OPTIONS`` points at it (for this process and the ones it starts)."""
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    import logging

    import fsspec.config

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        from urllib.request import Request, urlopen

        urlopen(Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()
        options = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
        monkeypatch.setenv("SSL_GRAPH_STORAGE_OPTIONS", json.dumps(options))
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem(**options)
        fs.mkdir(BUCKET)
        yield {"url": endpoint, "options": options, "fs": fs}
    finally:
        fsspec.config.conf.pop("s3", None)
        server.stop()


def upload(fs, files: list[Path], prefix: str) -> None:
    for f in files:
        fs.put_file(str(f), f"{BUCKET}/{prefix}/{f.name}")


def copy_annotations(src: Path, dst: Path) -> None:
    for name in ("transcripts.tsv", "alignments.tsv"):
        shutil.copy2(src / name, dst / name)


@pytest.fixture
def s3_ignoring_conditions(s3, monkeypatch):  # noqa: F811
    """A stand-in for an S3-compatible server that ignores conditional writes: the same moto
    state, served by a second server on 127.0.0.1 that drops ``If-None-Match`` and ``If-Match``
    from every request before moto sees it. ``$SSL_GRAPH_STORAGE_OPTIONS`` points at it;
    ``s3["options"]`` still reaches the honest server. Stopped when the test ends."""
    import threading

    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)

    def ignoring(environ, start_response):
        environ.pop("HTTP_IF_NONE_MATCH", None)
        environ.pop("HTTP_IF_MATCH", None)
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, ignoring, threaded=True,
                         request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        options = {**s3["options"], "endpoint_url": f"http://{host}:{port}"}
        monkeypatch.setenv("SSL_GRAPH_STORAGE_OPTIONS", json.dumps(options))
        yield {"url": options["endpoint_url"], "options": options}
    finally:
        server.shutdown()
        thread.join()
