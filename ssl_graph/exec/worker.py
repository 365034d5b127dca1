"""One torchrun rank: train one node of a spec under DDP (started by ``exec/torchrun.py``).

    python -m ssl_graph.exec.agent --nproc-per-node 2 -m ssl_graph.exec.worker SPEC NODE --store S

The calling ``ssl-graph run`` has planned, computed the inputs and written the node's partial
record; every rank resumes from the checkpoint that record names.
"""

from __future__ import annotations

import argparse
import sys

from .orphans import die_with_parent

#: where rank 0 leaves the record fields for the launcher (``exec/torchrun.py``) to read back
RESULT = "launch_result.json"


def train_node(project, name: str, progress=None) -> dict:
    """Train node ``name`` on this rank (the process group is up); returns the record fields.
    ``progress``: rank 0's progress lines (``PlainProgress``), or None for none."""
    from ..graph.plan import make_plan
    from ..launcher import launching
    from ..ops.base import RunContext, get_op

    states = make_plan(project.pipeline, project.store)
    st = states[name]
    st.record = project.store.record(st.key)  # the partial record rank 0's runner wrote
    ctx = RunContext(store=project.store, states={s.node.fingerprint: s for s in states.values()},
                     progress=progress)
    with launching(None):
        return get_op(st.node.kind).compute(st, ctx)


def init_group(node, name: str) -> None:
    """Join the job's process group on this rank's own device: a GPU rank takes its GPU
    (``LOCAL_RANK``) before the first collective, so NCCL never puts two ranks on cuda:0."""
    import os
    from datetime import timedelta

    import torch.distributed as dist

    from ..train.distributed import backend_for, rank_device
    from ..train.session import resolve_device

    requested = resolve_device(getattr(node, "device", "cpu"))
    device = rank_device(requested, int(os.environ.get("LOCAL_RANK", 0)), True, name)
    if device.startswith("cuda:"):
        import torch

        torch.cuda.set_device(device)
    # ranks may wait while rank 0 computes the inputs (k-means can take hours)
    dist.init_process_group(backend_for(device), timeout=timedelta(hours=24))


def main(argv: list[str] | None = None) -> None:
    die_with_parent()  # the torchrun agent: a killed job leaves no rank training on
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("spec")
    ap.add_argument("node")
    ap.add_argument("--store", required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--quiet", action="store_true", help="no progress lines (ssl-graph run -q)")
    args = ap.parse_args(argv)

    import torch.distributed as dist

    from ..api import Project
    from ..progress import PlainProgress
    from ..store.backend import write_json
    from ..train.signals import Stopped
    from .overrides import apply_overrides

    project = Project(args.spec, args.store)
    apply_overrides(project.pipeline, args.overrides)
    init_group(project.pipeline.node(args.node), args.node)
    key = project[args.node].key
    try:
        lines = not args.quiet and dist.get_rank() == 0  # a rank's output is a log: lines
        result = train_node(project, args.node, PlainProgress() if lines else None)
        if dist.get_rank() == 0:
            write_json(project.store.backend, f"{key}/{RESULT}", result)
        dist.barrier()
    except Stopped as exc:  # checkpointed (rank 0 said where): no traceback, the signal's status
        if dist.get_rank() == 0 and exc.said:
            write_json(project.store.backend, f"{key}/{RESULT}", {"stopped": True})
        sys.exit(exc.exit_status)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
