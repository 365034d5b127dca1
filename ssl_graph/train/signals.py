"""SIGINT/SIGTERM during a training: finish the current step, checkpoint, then stop.

The first signal only raises a flag the loop checks after each step, so Ctrl-C (or a cluster's
SIGTERM before preemption) loses no step; a second one stops at once, as Ctrl-C normally does.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager


class StopFlag:
    def __init__(self):
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None


@contextmanager
def stop_on_signals(name: str):
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signal handlers can only be set from the main thread
        return

    def handler(signum, frame):
        if flag:
            raise KeyboardInterrupt(f"{name}: second signal, stopping without a checkpoint")
        flag.signum = signum
        print(f"{name}: {signal.Signals(signum).name} received, checkpointing after this step "
              "(send it again to stop at once)", file=sys.stderr, flush=True)

    sigs = [signal.SIGINT, signal.SIGTERM]
    old = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)
