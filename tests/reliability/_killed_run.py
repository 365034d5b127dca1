"""``ssl-graph`` with eyes: the real CLI in a real process, plus a log of what it is doing.

The kill harness (``_kill.py``) starts runs through this script so that it knows which node a
SIGKILL landed in and can aim one at an exact store write. Nothing here changes what the run
computes or writes; the environment chooses what is added:

* ``KILL_EVENTS``: append ``<t> start <name> <kind>`` when a node starts computing and
  ``<t> write <name> <n> <what> <key>`` before its n-th store write (file, array or delete).
* ``KILL_SNAPSHOTS``: copy the whole store into ``<dir>/<i>`` as node i starts (the reference
  run: a kill aimed at node i can then start from the store exactly as the run left it there).
* ``KILL_NODE``/``KILL_WRITE``/``KILL_PHASE``: SIGKILL this process at node's n-th write,
  ``before`` it, ``after`` it, or ``torn`` (half of a file's bytes written, then killed).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    from ssl_graph import runner
    from ssl_graph.cli import main as cli
    from ssl_graph.store.backend import LocalBackend
    from ssl_graph.store.store import Store

    me = os.getpid()  # forked MFCC workers inherit the patches; only the run itself reports
    events = open(os.environ["KILL_EVENTS"], "a", buffering=1)  # noqa: SIM115 - lives with us
    snapshots = os.environ.get("KILL_SNAPSHOTS")
    target = os.environ.get("KILL_NODE")
    at, phase = int(os.environ.get("KILL_WRITE", "0")), os.environ.get("KILL_PHASE", "before")
    now = {"node": "-", "n": 0, "i": 0}

    def log(*fields) -> None:
        events.write(" ".join([f"{time.monotonic():.4f}", *map(str, fields)]) + "\n")

    def die() -> None:
        events.flush()
        os.kill(me, signal.SIGKILL)

    real_run_node = runner._run_node

    def run_node(st, pipeline, ctx):
        if snapshots:
            shutil.copytree(ctx.store.local_root, Path(snapshots) / f"{now['i']:02d}",
                            ignore=shutil.ignore_patterns(".lock", ".lock.clear"))
        now.update(node=st.name, n=0, i=now["i"] + 1)
        log("start", st.name, st.node.kind)
        return real_run_node(st, pipeline, ctx)

    def counted(what: str, real, tear=None):
        def write(self, key, *args, **kw):
            if os.getpid() != me:
                return real(self, key, *args, **kw)
            now["n"] += 1
            log("write", now["node"], now["n"], what, key)
            hit = now["node"] == target and now["n"] == at
            if hit and (phase == "before" or (phase == "torn" and tear is None)):
                die()
            if hit and phase == "torn":
                tear(self, key, *args)
                die()
            out = real(self, key, *args, **kw)
            if hit:
                die()
            return out

        return write

    def tear(backend, key, data) -> None:
        """What ``LocalBackend.write_bytes`` leaves when killed inside its ``write``."""
        path = backend._p(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, _ = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        os.write(fd, data[: len(data) // 2])

    runner._run_node = run_node
    LocalBackend.write_bytes = counted("file", LocalBackend.write_bytes, tear)
    LocalBackend.delete = counted("delete", LocalBackend.delete)
    Store.write_array = counted("array", Store.write_array)
    Store.write_rows = counted("array", Store.write_rows)  # the blocks of a streamed part
    sys.argv[0] = "ssl-graph"
    cli()


if __name__ == "__main__":
    main()
