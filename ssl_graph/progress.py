"""Progress for runs: rich bars in a terminal, plain periodic lines anywhere else.

A rich bar shows nothing useful in a log file (nohup, Slurm, ``| tee``) and needs ipywidgets in
Jupyter; there every task prints one line when it starts, every ``every_seconds`` while it runs,
and when it ends: ``mfcc: 1200/281000 (0.4 %), 35 s, ETA 2:16:03``. The interface is the part of
``rich.progress.Progress`` the runner uses, so ops never know which one they talk to.
"""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class PlainProgress:
    def __init__(self, stream=None, every_seconds: float = 30.0):
        self.stream = stream or sys.stdout
        self.every = every_seconds
        self._tasks: dict[int, dict] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for task in list(self._tasks):
            self._emit(task, final=True)
        return False

    def add_task(self, description: str, total: float | None = None) -> int:
        task = len(self._tasks)
        now = time.perf_counter()
        self._tasks[task] = {"name": description, "total": total, "done": 0.0, "t0": now,
                             "last": now, "ended": False}
        self._emit(task)
        return task

    def update(self, task: int, advance: float = 0, total: float | None = None,
               completed: float | None = None, **_) -> None:
        t = self._tasks[task]
        if total is not None:
            t["total"] = total
        t["done"] = completed if completed is not None else t["done"] + advance
        finished = t["total"] is not None and t["done"] >= t["total"]
        if finished or time.perf_counter() - t["last"] >= self.every:
            self._emit(task, final=finished)

    def _emit(self, task: int, final: bool = False) -> None:
        t = self._tasks[task]
        if t["ended"]:
            return
        now = time.perf_counter()
        elapsed = now - t["t0"]
        done, total = t["done"], t["total"]
        line = f"{t['name']}: {done:g}" + (f"/{total:g}" if total else "")
        if total:
            line += f" ({100 * done / total:.1f} %)"
        line += f", {elapsed:.0f} s"
        if total and 0 < done < total:
            line += f", ETA {_clock(elapsed / done * (total - done))}"
        if final:
            line += ", done" if total is None or done >= total else ", stopped"
            t["ended"] = True
        print(line, file=self.stream, flush=True)
        t["last"] = now


def is_plain(progress) -> bool:
    """Whether ``progress`` writes to a file or notebook (plain lines) rather than a terminal."""
    return isinstance(progress, PlainProgress) or not progress.console.is_terminal


def make_progress(console=None):
    """Rich bars when the console is an interactive terminal; plain lines otherwise."""
    from rich.console import Console

    console = console or Console()
    if console.is_terminal and not console.is_jupyter:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=False)
    return PlainProgress(stream=console.file)
