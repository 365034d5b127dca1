"""The cyclic garbage collector, paused while the ``ssl-graph`` program builds what it keeps.

Importing modules, building a spec's pydantic models and planning a corpus allocate tens of
thousands of objects that live as long as the process, none of them garbage, yet every 700
allocations wake the collector, which walks the young ones again and again, and the collection
at exit walks them all once more. Paused while they are built; with ``freeze`` (in the program
only, see :func:`program`) what exists then is moved out of the collector's sight for good.
On a small ``ssl-graph plan`` that is ~4 % of the instructions and more of the CPU-s (the walks
miss the caches): most of the 17 % the first round of these changes saved. Training and
computing afterwards collect as usual.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from pathlib import Path


def program() -> bool:
    """Whether this process is the ``ssl-graph`` program (or ``python -m ssl_graph``), where what
    the command group imports and loads lives until the process ends; a process that imports
    ssl_graph (a notebook, the tests) keeps its collector as it is."""
    argv0 = Path(sys.argv[0] if sys.argv else "")
    return argv0.name == "ssl-graph" or argv0.parts[-2:] == ("ssl_graph", "__main__.py")


@contextlib.contextmanager
def paused(freeze: bool = False):
    """The collector off inside (unless it was off already: then nothing changes); ``freeze``:
    what exists when the block ends is never walked again (``gc.freeze``)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        gc.enable()
