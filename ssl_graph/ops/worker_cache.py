"""What a worker process keeps between jobs: readers, models and annotations of stored nodes.

A job names a node by store url, key and a content version taken from the node's record
(``base.content_version``), never by value, so a model's weights or a corpus' alignments cross
the wire once per worker, not per job. The version is part of every cache key: a long-lived Dask
worker asked for a node that was recomputed under the same key (a replaced released checkpoint,
a lost record) misses the cache and reads it again instead of serving the old content. Each
entry opens its own ``Store``, whose record cache is then as old as the version it serves.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache

from .base import content_version

#: record fields that change whenever a model node's weights are rewritten: the content hash of
#: a released checkpoint (``data_version``), and for a training its timing and final metrics
WEIGHTS_FIELDS = ("weights", "data_version", "seconds", "updated", "metrics")


def model_ref(model_node, ctx) -> dict:
    """How a worker finds and builds ``model_node``'s trained network itself: its store, key and
    weights version, and its architecture (the ``SSLModel`` spec value, a few KB; a HuBERT's
    holds the label nodes that size its heads, so its semantic JSON alone would not rebuild it).
    Never weights: those are read from the store, once per worker and version."""
    from ..specs.layer_features import network_of

    st = ctx.state(model_node)
    return {"url": ctx.store.url, "key": st.key,
            "version": content_version(st.record or {}, *WEIGHTS_FIELDS),
            "config": network_of(model_node), "finetuned": model_node.kind == "FineTune"}


#: (url, key, version, device) -> (network, device); the two most recent, per process
_MODELS: OrderedDict = OrderedDict()
_MODELS_LOCK = threading.Lock()  # a Dask worker may run several tasks in threads


def model(url: str, key: str, version: str, config, device: str, finetuned: bool = False):
    """(network in eval mode with the node's stored weights, resolved device), built once per
    process and weights version; ``device`` as the node says ('auto' resolves here)."""
    from ..store.store import Store
    from ..train.session import resolve_device
    from .networks import build_network

    entry = (url, key, version, device)
    with _MODELS_LOCK:
        if entry not in _MODELS:
            dev = resolve_device(device)
            net = build_network(config, Store(url).backend, key, dev, finetuned)
            _MODELS[entry] = (net, dev)
            while len(_MODELS) > 2:
                _MODELS.popitem(last=False)
        _MODELS.move_to_end(entry)
        return _MODELS[entry]


@lru_cache(maxsize=4)
def reader(url: str, key: str, version: str):
    """A reader of a per-utterance node's stored frames, as of ``version``."""
    from ..store.ragged import RaggedReader
    from ..store.store import Store

    return RaggedReader(Store(url), key)


@lru_cache(maxsize=1)
def alignments(url: str, key: str, version: str):
    """An alignments node's phone segments per utterance (``AlignmentSet``), as of ``version``."""
    from ..audio.annotations import read_alignments
    from ..store.store import Store

    return read_alignments(Store(url), key)
