"""What a node lock costs: taking + releasing one, against the record write every node commit
makes anyway (the peer), on a local store (flock) and on a local S3 server (moto on 127.0.0.1:
create-only PUT + conditional DELETE vs one plain PUT). Interleaved in blocks so background load
hits both sides alike; medians.

    python benchmarks/bench_locks.py [--calls 200] [--no-s3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ssl_graph.store.store import Store


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(store: Store, calls: int, block: int = 20) -> dict[str, float]:
    record = {"kind": "KMeans", "status": "complete", "metrics": {"pnmi": 0.2}}

    def lock_once():
        with store.node_lock("nodes/kmeans-bench", "km"):
            pass

    def record_once():
        store.write_record("nodes/kmeans-bench", record)

    lock_once(), record_once()  # warm-up (imports, first connection)
    times: dict[str, list[float]] = {"node lock": [], "record write": []}
    for _ in range(0, calls, block):
        times["node lock"] += [_timed(lock_once) for _ in range(block)]
        times["record write"] += [_timed(record_once) for _ in range(block)]
    return {k: statistics.median(v) for k, v in times.items()}


def _report(where: str, med: dict[str, float]) -> None:
    ratio = med["node lock"] / med["record write"]
    print(f"{where:6s} node lock {med['node lock'] * 1e3:7.2f} ms   record write "
          f"{med['record write'] * 1e3:7.2f} ms   lock/record = {ratio:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--no-s3", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        _report("local", bench(Store(str(Path(tmp) / "store")), args.calls))
    if args.no_s3:
        return
    import logging
    import os

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = {"endpoint_url": f"http://{host}:{port}", "key": "k", "secret": "s"}
        os.environ["SSL_GRAPH_STORAGE_OPTIONS"] = json.dumps(options)
        import s3fs

        s3fs.S3FileSystem(**options).mkdir("bench")
        _report("s3", bench(Store("s3://bench/store"), args.calls // 4))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
