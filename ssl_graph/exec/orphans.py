"""No orphans: a process started for a run dies when the process that started it dies.

A killed run must leave nothing computing on: an orphan pool worker or torchrun rank would keep
writing parts or committing checkpoints beside the rerun that resumes the same node.
"""

from __future__ import annotations

import os
import sys


def die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``); elsewhere a
    no-op. Exits at once if the parent died before the setting took effect."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def exit_with(pid: int) -> None:
    """Exit this process as soon as process ``pid`` (not our parent) has: a pool worker forked
    by a forkserver watches its coordinator, since neither its parent nor its job queue (whose
    write end every worker holds too) would ever tell it that the coordinator was killed."""
    import threading

    def watch(wait) -> None:
        wait()
        os._exit(1)

    try:
        fd = os.pidfd_open(pid)  # Linux ≥ 5.3: readable once the process has exited
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # elsewhere: look twice a second
        import time

        def wait() -> None:
            while _alive(pid):
                time.sleep(0.5)
    else:
        import select

        def wait() -> None:
            select.select([fd], [], [])

    threading.Thread(target=watch, args=(wait,), name="exit-with-coordinator", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # PermissionError: alive, someone else's
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
