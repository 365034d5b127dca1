"""Whether a kernel module's Numba machine code is already cached on disk.

Every kernel is ``@njit(cache=True)``: the first use after an install compiles it (a minute or
two for the k-means kernels on a small CPU) and writes the result beside the module in
``__pycache__``; later processes load it in milliseconds. Ops ask before that first use so the
wait is announced instead of looking like a hang.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent


def is_cached(module: str) -> bool:
    """True when ``ssl_graph.kernels.<module>`` has cached kernels (an index file per kernel)."""
    return any((_HERE / "__pycache__").glob(f"{module}.*.nbi"))
