"""``--launcher torchrun``: training nodes run under DDP in ranks started by torch.distributed.run.

The seam between *what* a node computes and *where*: the runner in the calling process plans,
holds the store lock, computes every non-training node once, and writes each training node's
records as usual; only a training node's ``compute`` is handed to torchrun, whose ranks run
``ssl_graph.exec.worker``. Rank 0 writes checkpoints, logs and the weights, and leaves the
record fields for the final commit in the store, which the launcher reads back. A rerun after
any failure resumes from the last checkpoint like a single-process run.
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from ..store.backend import read_json

RESULT = "launch_result.json"
_CURRENT: ContextVar[Torchrun | None] = ContextVar("ssl_graph_launcher", default=None)


@dataclass
class Torchrun:
    spec: str
    store: str
    nproc_per_node: int
    nnodes: str = "1"
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    overrides: list[str] = field(default_factory=list)

    def command(self, name: str) -> list[str]:
        cmd = [sys.executable, "-m", "torch.distributed.run",
               f"--nproc-per-node={self.nproc_per_node}", f"--nnodes={self.nnodes}"]
        if self.rdzv_endpoint:
            cmd += [f"--node-rank={self.node_rank}", "--rdzv-backend=c10d",
                    f"--rdzv-endpoint={self.rdzv_endpoint}"]
        else:
            cmd += ["--standalone"]
        cmd += ["-m", "ssl_graph.exec.worker", self.spec, name, "--store", self.store]
        for item in self.overrides:
            cmd += ["--set", item]
        return cmd

    def compute(self, st, ctx) -> dict:
        backend = ctx.store.backend
        backend.delete(f"{st.key}/{RESULT}")
        proc = subprocess.Popen(self.command(st.name))
        try:
            rc = proc.wait()
        except KeyboardInterrupt:  # the ranks got the signal too: let them checkpoint
            proc.wait()
            raise
        result = read_json(backend, f"{st.key}/{RESULT}")
        if rc != 0 or result is None:
            raise RuntimeError(
                f"{st.name}: torchrun exited with status {rc} (the ranks' output is above); "
                "rerun to resume from the last checkpoint")
        backend.delete(f"{st.key}/{RESULT}")
        return result


def current_launcher() -> Torchrun | None:
    return _CURRENT.get()


@contextmanager
def launching(launcher: Torchrun | None):
    """Training nodes computed inside the block go through ``launcher`` (None: in process)."""
    token = _CURRENT.set(launcher)
    try:
        yield
    finally:
        _CURRENT.reset(token)
