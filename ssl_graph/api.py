"""Python API: the same reach as the CLI (plan, run, query) without importing torch.

    >>> import ssl_graph
    >>> project = ssl_graph.load("specs/demo.py")
    >>> project.run()
    >>> project["km"].labels("usf3-0009")          # frame labels, int array
    >>> project["mfcc"].features("usf3-0009")      # (frames, 39) float32
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from .specs.base import Node, SpecError
from .specs.nodes import Corpus, KMeans, Labels
from .store.store import Store, node_key

if TYPE_CHECKING:  # numpy and zarr are imported when data is read, not when planning
    import numpy as np

    from .store.ragged import RaggedReader


class NotComputed(LookupError):
    pass


class StaleResult(NotComputed):
    """A stored result that ``run`` would recompute now (its input changed since)."""


#: node kinds whose result is time-aligned segments (``NodeHandle.segments``)
SEGMENT_KINDS = ("Alignments", "WordAlignments")


def _ipython_history(var: str, value) -> bool:
    """IPython's output history (``Out``: cell number -> value; ``In``: the inputs): a node shown
    in a cell's output is there too, and must not be named ``Out[2]`` beside its own name.
    (``_``, ``_2``, ``_i2`` start with an underscore, which names no node anyway.)"""
    return (var == "Out" and isinstance(value, dict) and all(isinstance(k, int) for k in value)) \
        or (var == "In" and isinstance(value, list))


class Project:
    """A spec file (or nodes built in Python) bound to a store."""

    def __init__(self, spec_path: str | Path, store: str | Store | None = None):
        self.spec_path = Path(spec_path)
        self.store = store if isinstance(store, Store) else Store(store)
        self._namespace: dict | None = None

    @classmethod
    def from_nodes(cls, nodes: dict, store: str | Store | None = None,
                   name: str = "notebook") -> "Project":
        """A project from nodes built in Python (a notebook cell's ``globals()`` or a dict):
        variables name nodes as in a spec file; ``name`` stands for the spec file's stem in
        the store's names index (history, explain, gc)."""
        project = cls(Path.cwd() / f"{name}.py", store)
        project._namespace = {var: value for var, value in nodes.items()
                              if not _ipython_history(var, value)}
        return project

    @cached_property
    def pipeline(self):
        from .graph.pipeline import build_pipeline, load_pipeline
        from .specs.loader import spec_from_namespace

        if self._namespace is not None:
            return build_pipeline(spec_from_namespace(self._namespace, self.spec_path))
        return load_pipeline(self.spec_path)

    def reload(self) -> "Project":
        """Read the spec file again (after editing it); a ``from_nodes`` project keeps its nodes."""
        self.__dict__.pop("pipeline", None)
        return self

    def __repr__(self) -> str:
        source = "nodes from Python" if self._namespace is not None else str(self.spec_path)
        try:
            n = f"{len(self.pipeline.nodes)} nodes"
        except Exception as exc:  # a broken spec file still gets a readable repr
            n = f"not loadable: {str(exc).splitlines()[0][:80]}"
        return f"<Project {source}: {n}; store {self.store.url}>"

    @property
    def names(self) -> list[str]:
        return list(self.pipeline.spec.nodes)

    def __getitem__(self, name: str) -> "NodeHandle":
        return NodeHandle(self, name, self.pipeline.node(name))

    def plan(self):
        from .graph.plan import make_plan

        return make_plan(self.pipeline, self.store)

    def run(self, targets: list[str] | None = None, progress: bool | str = False, console=None,
            keep_going: bool = False, executor: str = "local", workers: int | None = None,
            scheduler: str | None = None):
        """Compute what is stale. ``keep_going``: a failing node stops only what needs it; the
        rest finishes, then ``RunFailed`` (holding the report) is raised. ``executor``: where
        per-utterance work runs (``local``, ``pool`` of ``workers``, ``dask`` on ``scheduler``
        or a local cluster); results are identical whichever. ``progress``: True for bars in a
        terminal and plain lines elsewhere, ``"lines"`` for plain lines, False for none."""
        from .exec.executors import Lazy
        from .runner import run_plan

        ex = Lazy(executor, workers, scheduler)
        try:
            return run_plan(self.pipeline, self.store, targets=targets, progress=progress,
                            console=console, keep_going=keep_going, executor=ex)
        finally:
            ex.close()


class NodeHandle:
    """Read access to one node's stored result, by name."""

    def __init__(self, project: Project, name: str, node: Node):
        self.project, self.name, self.node = project, name, node

    def __repr__(self) -> str:
        return f"<{self.node.kind} {self.name!r} {self.node.fingerprint}>"

    def log(self, as_frame: bool = False):
        """A training node's logged rows (step, loss, accuracy, lr, ...): a list of dicts, or a
        pandas DataFrame with ``as_frame=True``. Partial while the node is still training."""
        from .store.train_log import read_log

        if self.project.store.record(self.key) is None:
            self.record  # noqa: B018 - raises NotComputed with the command to run
        rows = read_log(self.project.store.backend, self.key)
        if rows is None:
            raise SpecError(f"{self.name!r} is a {self.node.kind} node; it keeps no training log")
        if as_frame:
            try:
                import pandas as pd
            except ImportError:
                raise SpecError("log(as_frame=True) needs pandas: pip install 'ssl_graph[pandas]' "
                                "(or call log() for a list of dicts)") from None
            return pd.DataFrame(rows)
        return rows

    def hypotheses(self) -> dict[str, dict]:
        """An ASRScore's per-utterance reference, hypothesis and (edits, length) per metric."""
        from .store.backend import read_json
        from .store.paths import contained

        name = self.record.get("hypotheses")
        if not name:
            raise SpecError(f"{self.name!r} is a {self.node.kind} node; only ASRScore nodes "
                            "store hypotheses")
        backend = self.project.store.backend
        return read_json(backend, contained(self.key, name, "hypotheses", backend)) or {}

    def segments(self, utt: str | None = None):
        """Time-aligned (start s, end s, label) rows of an ``Alignments``/``WordAlignments``
        node: one utterance's list, or utt → list for all of them when ``utt`` is None."""
        from .audio.annotations import read_alignments

        if self.node.kind not in SEGMENT_KINDS:
            raise SpecError(f"{self.name!r} is a {self.node.kind} node; segments come from "
                            f"{' or '.join(SEGMENT_KINDS)} nodes")
        self.record  # noqa: B018 - raises NotComputed with the command to run
        aset = read_alignments(self.project.store, self.key)
        if utt is None:
            return {u: aset.segments(u) for u in sorted(aset.utts)}
        if utt not in aset.utts:
            raise KeyError(f"{self.name!r} has no segments for utterance {utt!r} "
                           f"({len(aset.utts)} utterances have some)")
        return aset.segments(utt)

    @property
    def key(self) -> str:
        return node_key(self.node.kind, self.node.fingerprint)

    def require_current(self, utts: list[str] | None = None) -> None:
        """Refuse to serve stored values that ``run`` would recompute now: an utterance whose
        audio changed (edited, replaced, no longer decodable), an annotation whose file
        changed, a result whose upstream result changed. The node's inputs are planned as
        ``plan`` plans them; ``utts`` None = every stored utterance. The reading methods
        themselves serve what is stored (the CLI's ``query`` calls this first)."""
        from .graph.plan import make_plan

        node = self.node.features if isinstance(self.node, KMeans) else self.node  # labels
        pipeline = self.project.pipeline                  # of a KMeans come from its features
        states = make_plan(pipeline.restricted(pipeline.ancestors([node])), self.project.store)
        st = states[pipeline.name_of(node)]
        run = f"run `ssl-graph run {self.project.spec_path}` to recompute it"
        if not node.per_utterance:
            if st.stale and st.record is not None and st.record.get("status") == "complete":
                raise StaleResult(f"{self.name!r} is stale ({'; '.join(st.reasons)}): the stored "
                                  f"result is of inputs that changed since; {run}")
            return
        if not (st.todo or st.removed) or st.record is None:
            return
        index, expected = self.project.store.index(st.key, st.record), st.expected
        # changed or removed inputs; damaged part files are the reader's to name
        stale = [u for u in (index if utts is None else utts)
                 if u in index and expected.get(u, "") != index[u][3]]
        if stale:
            corpus = getattr(node, "corpus", None)
            scan = next((s.manifest for s in states.values() if corpus is not None
                         and s.node.fingerprint == corpus.fingerprint), None)
            path = scan.utts[stale[0]].path if scan is not None and stale[0] in scan.ids \
                else None
            audio = f"; its audio: {path}" if path is not None else ""
            more = f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""
            raise StaleResult(
                f"{self.name!r}: utterance {stale[0]!r}{more} is stale ({'; '.join(st.reasons)}"
                f"{audio}): the stored value is of inputs that changed since; {run}")

    @cached_property
    def record(self) -> dict:
        rec = self.project.store.record(self.key)
        if rec is None or rec.get("status") != "complete":
            state = "is incomplete" if rec else "has not been computed"
            if self.key in self.project.store.damaged:  # torn record: say which file
                state = f"is unreadable ({self.project.store.damaged[self.key]})"
            raise NotComputed(
                f"node {self.name!r} ({self.node.kind} {self.node.fingerprint[:8]}) {state} in "
                f"{self.project.store.url}; run `ssl-graph run {self.project.spec_path}` first"
            )
        return rec

    @property
    def metrics(self) -> dict:
        return dict(self.record.get("metrics", {}))

    @cached_property
    def _reader(self) -> "RaggedReader":
        from .store.ragged import RaggedReader

        if not self.node.per_utterance:
            raise SpecError(f"{self.name!r} is a {self.node.kind} node; it has no per-utterance data")
        self.record  # noqa: B018 - raises NotComputed with a helpful message
        return RaggedReader(self.project.store, self.key)

    def utterances(self) -> list[str]:
        return self._reader.utterances()

    def lengths(self) -> dict[str, int]:
        """Frames (rows) stored per utterance, from the index alone."""
        return {u: self._reader.length(u) for u in self._reader.utterances()}

    def _get(self, utt: str) -> "np.ndarray":
        import numpy as np

        if utt not in self._reader:
            known = self._reader.utterances()
            hint = ", ".join(known[:3]) + (", …" if len(known) > 3 else "")
            raise KeyError(f"{self.name!r} has no utterance {utt!r} ({len(known)} stored: {hint})")
        return np.asarray(self._reader.get(utt))

    def features(self, utt: str) -> "np.ndarray":
        self._check_features()
        return self._get(utt)

    def _check_features(self) -> None:
        if isinstance(self.node, (Labels, KMeans, Corpus)):
            raise SpecError(f"{self.name!r} is a {self.node.kind} node, not a feature node")

    # ---- bulk reads: storage order, large blocks (``store/bulk.py``) ---------------------
    def features_many(self, utts: list[str]) -> "list[np.ndarray]":
        """Features of many utterances at once, in the order asked (far faster than a loop)."""
        self._check_features()
        return self._many(utts)

    def labels_many(self, utts: list[str]) -> "list[np.ndarray]":
        if not isinstance(self.node, Labels):
            raise SpecError(f"{self.name!r} is a {self.node.kind} node; bulk labels need a Labels node")
        return self._many(utts)

    def _many(self, utts: list[str]) -> "list[np.ndarray]":
        from .store.bulk import read_many

        try:
            return read_many(self._reader, list(utts))
        except KeyError as exc:
            raise KeyError(f"{self.name!r}: {exc.args[0]}") from None

    def __iter__(self):
        """(utt, array) for every stored utterance, in storage order (bounded memory)."""
        from .store.bulk import iter_ragged

        return iter_ragged(self._reader)

    def to_numpy(self, out: "np.ndarray | None" = None) -> "tuple[np.ndarray, np.ndarray, list[str]]":
        """(all frames concatenated, offsets with n+1 entries, utterance ids): utterance i is
        ``values[offsets[i]:offsets[i + 1]]``, the layout of fairseq's ``.npy`` + ``.len``.
        ``out``: an array to read into (the shape and dtype the error names), reused across
        passes so that no pass pays for fresh memory."""
        from .store.bulk import to_numpy

        return to_numpy(self._reader, out)

    @cached_property
    def centroids(self) -> "np.ndarray":
        import numpy as np

        km = self.node if isinstance(self.node, KMeans) else getattr(self.node, "kmeans", None)
        if km is None:
            raise SpecError(f"{self.name!r} is a {self.node.kind} node; it has no centroids")
        handle = self if km is self.node else NodeHandle(self.project, self.name, km)
        return np.asarray(self.project.store.read_array(f"{handle.key}/centroids")[...])

    def labels(self, utt: str) -> "np.ndarray":
        """Frame labels; for a KMeans node, from a stored Labels node or assigned on the fly."""
        if isinstance(self.node, Labels):
            return self._get(utt)
        if not isinstance(self.node, KMeans):
            raise SpecError(f"{self.name!r} is a {self.node.kind} node; labels come from KMeans/Labels")
        for fp in sorted(self.project.pipeline.descendants(self.node)):
            other = self.project.pipeline.nodes[fp]
            if isinstance(other, Labels) and other.kmeans == self.node and other.features is None:
                try:
                    return self.project[self.project.pipeline.name_of(other)].labels(utt)
                except (NotComputed, KeyError):
                    break
        import numpy as np

        from .kernels.assign import assign_labels

        feats = NodeHandle(self.project, self.name, self.node.features)
        self.record  # noqa: B018
        x = np.ascontiguousarray(feats.features(utt), dtype=np.float32)
        return assign_labels(x, self.centroids.astype(np.float32))[0]

    def export(self, out: str | Path, format: str = "hf", force: bool = False, **kw) -> list[Path]:
        """Write this node for other tools: a Pretrain / FineTune node as a transformers
        directory (``format="hf"``), labels or features in fairseq's layout (``"fairseq"``)."""
        from .export import export_fairseq, export_model

        if format == "fairseq":
            return export_fairseq(self.project, self.name, out, force=force, **kw)
        return export_model(self.project, self.name, out, fmt=format, force=force)

    def array(self, name: str) -> "np.ndarray":
        import numpy as np

        self.record  # noqa: B018
        return np.asarray(self.project.store.read_array(f"{self.key}/{name}")[...])


def load(spec_path: str | Path, store: str | None = None) -> Project:
    return Project(spec_path, store)
