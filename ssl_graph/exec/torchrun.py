"""``--launcher torchrun``: training nodes run under DDP in ranks started by torch.distributed.run.

The seam between *what* a node computes and *where*: the runner in the calling process plans,
holds the store lock, computes every non-training node once, and writes each training node's
records as usual; only a training node's ``compute`` is handed to torchrun (its agent,
``exec/agent.py``, in a session of its own, dying with this process), whose ranks run
``ssl_graph.exec.worker``, each on its own GPU (``train/distributed.py:rank_device``). Rank 0
writes checkpoints, logs and the weights, and leaves the record fields for the final commit in
the store, which the launcher reads back. A SIGINT/SIGTERM here is relayed to the agent once:
the ranks checkpoint and stop, and the run exits 130/143. A rerun after any failure resumes
from the last checkpoint like a single-process run.

``torchrun -m ssl_graph run SPEC`` (a cluster script starting the ranks itself) works too: rank
0 runs the runner, and names each training node to the other ranks when it reaches it
(:class:`InGroup`); they train it with rank 0 and wait for the next.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from ..launcher import launching
from ..store.backend import read_json
from .worker import RESULT

TRAINERS = ("Pretrain", "FineTune")  # the node kinds torchrun trains


@dataclass
class Torchrun:
    spec: str
    store: str
    nproc_per_node: int
    nnodes: str = "1"
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    overrides: list[str] = field(default_factory=list)

    def command(self, name: str, quiet: bool = False) -> list[str]:
        """``quiet``: the ranks print no progress lines (``run -q``)."""
        cmd = [sys.executable, "-m", "ssl_graph.exec.agent",
               f"--nproc-per-node={self.nproc_per_node}", f"--nnodes={self.nnodes}"]
        if self.rdzv_endpoint:
            cmd += [f"--node-rank={self.node_rank}", "--rdzv-backend=c10d",
                    f"--rdzv-endpoint={self.rdzv_endpoint}"]
        else:
            cmd += ["--standalone"]
        cmd += ["-m", "ssl_graph.exec.worker", self.spec, name, "--store", self.store]
        for item in self.overrides:
            cmd += ["--set", item]
        return cmd + (["--quiet"] if quiet else [])

    def rank_env(self, node) -> dict:
        """The ranks' environment: OpenMP starts at the threads each rank will fix anyway
        (``train/threads.py``), so torchrun need not guess (and print its banner about it)."""
        from ..train.threads import default_threads

        env = dict(os.environ)
        if "OMP_NUM_THREADS" not in env:
            cores = (os.cpu_count() or 1) // max(1, self.nproc_per_node)
            env["OMP_NUM_THREADS"] = str(getattr(node, "threads", None) or default_threads(cores))
        return env

    def check(self, pipeline) -> None:
        """Refuse, before any work, a training node pinned to one GPU (``cuda:N``)."""
        from ..train.distributed import rank_device

        for node in pipeline.nodes.values():
            if node.kind in TRAINERS:
                rank_device(node.device, 0, True, pipeline.name_of(node))

    def compute(self, st, ctx) -> dict:
        backend = ctx.store.backend
        backend.delete(f"{st.key}/{RESULT}")
        # its own session: a Ctrl-C reaches the agent only through relay() below, once
        proc = subprocess.Popen(self.command(st.name, quiet=ctx.progress is None),
                                env=self.rank_env(st.node),
                                start_new_session=True)
        with relay(proc) as got:
            rc = proc.wait()
        result = read_json(backend, f"{st.key}/{RESULT}")
        backend.delete(f"{st.key}/{RESULT}")
        if got:
            from ..train.signals import Stopped

            said = bool(result and result.get("stopped"))  # rank 0 said where it checkpointed
            raise Stopped(f"{st.name}: stopped by {signal.Signals(got[0]).name} before it could "
                          "checkpoint; rerun to resume from the last one", got[0], said=said)
        if rc != 0 or result is None:
            raise RuntimeError(
                f"{st.name}: torchrun exited with status {rc} (the ranks' output is above); "
                "rerun to resume from the last checkpoint")
        return result


@contextmanager
def relay(proc):
    """SIGINT/SIGTERM of this process go to ``proc`` (whose ranks checkpoint and stop) instead of
    interrupting the wait for it; yields the signals received, in order."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def handler(signum, frame):
        got.append(signum)
        with suppress(ProcessLookupError):
            proc.send_signal(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield got
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class InGroup:
    """Rank 0's launcher when torchrun already started the ranks: tell them which node."""

    def compute(self, st, ctx) -> dict:
        import torch.distributed as dist

        from ..ops.base import get_op

        dist.broadcast_object_list([st.name], src=0)
        with launching(None):
            return get_op(st.node.kind).compute(st, ctx)


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ and int(os.environ.get("WORLD_SIZE", 1)) > 1


def run_as_rank(project, run):
    """``ssl-graph run`` inside a torchrun rank: rank 0 runs ``run()`` (the runner), the other
    ranks train the nodes it names; returns rank 0's report, None elsewhere."""
    import torch.distributed as dist

    from .worker import init_group, train_node

    trainers = [n for n in project.pipeline.nodes.values() if n.kind in TRAINERS]
    first = trainers[0] if trainers else project.pipeline.order()[0]
    init_group(first, project.pipeline.name_of(first))
    try:
        if dist.get_rank() == 0:
            stopped = False
            try:
                with launching(InGroup()):
                    return run()
            except KeyboardInterrupt:  # every rank stopped at the same step: none waits
                stopped = True
                raise
            finally:
                if not stopped:
                    dist.broadcast_object_list([None], src=0)
        while True:
            name = [None]
            dist.broadcast_object_list(name, src=0)
            if name[0] is None:
                return None
            train_node(project, name[0])
    finally:
        dist.destroy_process_group()


