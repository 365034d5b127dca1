"""The torchrun agent of ``--launcher torchrun``: ``torch.distributed.run``, tied to its run.

    python -m ssl_graph.exec.agent --nproc-per-node 2 --standalone -m ssl_graph.exec.worker ...

The agent dies with the ``ssl-graph run`` that started it (``PR_SET_PDEATHSIG``), and its ranks
die with it (``exec/worker.py``): a SIGKILLed run leaves no rank training on. A SIGINT/SIGTERM
the run relays to it goes on to the ranks (torch.distributed.run does that), which checkpoint and
stop; the agent then exits 128 + the signal, without torchrun's traceback and log lines.
"""

from __future__ import annotations

import os
import sys

from .orphans import die_with_parent


def main(argv: list[str] | None = None) -> None:
    die_with_parent()
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.run import main as torchrun

    # torchrun's warnings about a signal it received and relayed say nothing a user needs
    # (each of its modules sets its logger's level itself, from $LOGLEVEL)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed.elastic") and "LOGLEVEL" not in os.environ:
            logging.getLogger(name).setLevel(logging.ERROR)

    try:
        torchrun(argv)
    except SignalException as exc:
        sys.exit(128 + int(exc.sigval))


if __name__ == "__main__":
    main()
