"""Where a training node's ``compute`` runs: in this process, or handed to a launcher.

``exec/torchrun.py`` sets a launcher around a run (:func:`launching`); the training ops ask
:func:`current_launcher` and, when one is set, hand it the node (``launcher.compute(st, ctx)``)
instead of training here. The launcher lives above ``ops``; this context is how ``ops`` reaches
it without importing it. It sits outside the ``ops`` package, whose import loads every op (and
numpy), so that ``ssl-graph run`` can set it without them when nothing is stale.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_CURRENT: ContextVar[Any] = ContextVar("ssl_graph_launcher", default=None)


def current_launcher() -> Any:
    """The launcher training nodes go through now (None: they train in this process)."""
    return _CURRENT.get()


@contextmanager
def launching(launcher: Any):
    """Training nodes computed inside the block go through ``launcher`` (None: in process)."""
    token = _CURRENT.set(launcher)
    try:
        yield
    finally:
        _CURRENT.reset(token)
