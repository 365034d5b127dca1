"""SIGINT/SIGTERM during a training: finish the current step, checkpoint, then stop.

The first signal only raises a flag the loop checks after each step, so Ctrl-C (or a cluster's
SIGTERM before preemption) loses no step; a second one stops at once, as Ctrl-C normally does
(the same signal again within a second is the same request: a cluster signals every process of a
job and torchrun relays it to its ranks too). The stop then ends the run with :class:`Stopped`,
whose status the CLI exits with (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager


class Stopped(KeyboardInterrupt):
    """A run stopped by ``signum``; ``said``: the line telling the user is printed already."""

    def __init__(self, message: str, signum: int = signal.SIGINT, said: bool = False):
        super().__init__(message)
        self.signum, self.said = int(signum), said

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class StopFlag:
    def __init__(self):
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None


@contextmanager
def stop_on_signals(name: str, announce: bool = True):
    """``announce``: say at once that the signal was received (DDP ranks keep quiet: the job
    ends with one line, rank 0's)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signal handlers can only be set from the main thread
        return

    first = [0.0]

    def handler(signum, frame):
        if flag:
            if time.monotonic() - first[0] > 1.0:
                raise Stopped(f"{name}: second signal, stopping without a checkpoint", signum)
            return
        flag.signum, first[0] = signum, time.monotonic()
        if announce:
            print(f"{name}: {signal.Signals(signum).name} received, checkpointing after this "
                  "step (send it again to stop at once)", file=sys.stderr, flush=True)

    # a signal this process inherited ignored stays ignored (a script's background job starts
    # with SIGINT ignored, POSIX): training honours it as the rest of a run does
    sigs = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not signal.SIG_IGN]
    old = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)
