"""Decide, for every node, whether the store already holds its result, and say why not.

Two kinds of version flow down the graph at plan time, without computing anything:
* per-utterance versions (hash of the node's fingerprint and its inputs' versions for that
  utterance), so a grown or edited corpus recomputes only the affected utterances;
* a data version per node (its inputs' data versions, or its per-utterance versions), so
  aggregate nodes (k-means, scores) know when their inputs changed.

A per-utterance node also gets an *input digest*: one hash of its inputs' digests down to the
corpus scan (utterance ids + file identities). A complete record committed with the same digest
had exactly these per-utterance versions, so the node is fresh without computing or comparing
them one by one (250k utterances: ~1 s saved per node); its versions are then computed only if
something asks (``NodeState.expected`` is lazy). Any difference falls back to the per-utterance
comparison, which names exactly the stale utterances.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from ..audio.manifest import Manifest
from ..audio.scan import scan_corpus
from ..collector import paused
from ..specs.base import Node, SpecError, digest
from ..specs.nodes import Corpus, KMeans
from ..store.integrity import plan_problems
from ..store.store import Store, node_key
from .diff import why_new
from .index_memo import IndexMemo
from .phrases import examples, plural
from .pipeline import Pipeline
from .plan_kmeans import plan_kmeans
from .plan_pretrained import plan_checkpoint
from .versions import child_versions, leaf_versions


def _is_annotation(node: Node) -> bool:
    """``isinstance(node, Annotation)`` without importing annotation specs for specs that
    have none (as ``_is_pretrained``)."""
    module = sys.modules.get("ssl_graph.specs.annotations")
    return module is not None and isinstance(node, module.Annotation)


def _is_pretrained(node: Node) -> bool:
    """``isinstance(node, PretrainedModel)`` without importing it (and the model components it
    builds on) for specs that have none: an instance implies its module is loaded."""
    module = sys.modules.get("ssl_graph.specs.pretrained")
    return module is not None and isinstance(node, module.PretrainedModel)


@dataclass
class NodeState:
    name: str
    node: Node
    key: str
    record: dict | None
    stale: bool = False
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data_version: str = ""
    #: aggregate nodes: hash of their inputs' data versions
    input_version: str = ""
    #: per-utterance nodes: hash of the input versions (see the module docstring)
    input_digest: str = ""
    #: per-utterance nodes: utt -> expected version (``expected``, computed when first read);
    #: utterances to (re)compute; to drop
    expected_: dict[str, str] | None = field(default=None, repr=False)
    lazy_expected: Callable[[], dict[str, str]] | None = field(default=None, repr=False)
    todo: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: Corpus only: the scanned manifest
    manifest: Manifest | None = None
    #: annotation nodes: what the plan parsed and checked (the op commits it as it is)
    payload: object = None
    #: fields a fresh record lacks that let the next plan decide faster (written by ``run``)
    record_notes: dict = field(default_factory=dict)

    @property
    def expected(self) -> dict[str, str] | None:
        if self.expected_ is None and self.lazy_expected is not None:
            self.expected_, self.lazy_expected = self.lazy_expected(), None
        return self.expected_

    @expected.setter
    def expected(self, value: dict[str, str] | None) -> None:
        self.expected_, self.lazy_expected = value, None

    @property
    def status(self) -> str:
        return "stale" if self.stale else "fresh"

    def __repr__(self) -> str:  # the dataclass default dumps whole records and manifests
        why = f": {'; '.join(self.reasons)}" if self.reasons else ""
        return f"<{self.name} {self.node.kind} {self.status}{why}>"


def precision_notes(node: Node, record: dict) -> list[str]:
    """A training reused under another precision than it ran in says so (``precision`` is a
    runtime field: it never restales a trained model). ``auto`` depends on the device, which
    planning does not look at, so only an explicit precision is compared."""
    asked, ran = getattr(node, "precision", None), record.get("precision")
    if ran is None or asked in (None, "auto") or asked == ran:
        return []
    return [f"trained in {ran}; {asked} asked"]


def _speakers_changed(node: Node) -> str:
    why = "split by speaker" if getattr(getattr(node, "split", None), "by", "") == "speaker" \
        else "speaker identification"
    return f"speakers changed ({why})"


class Planner:
    def __init__(self, pipeline: Pipeline, store: Store):
        self.pipeline = pipeline
        self.store = store
        self.states: dict[str, NodeState] = {}
        #: what this machine already checked of the store's files (indexes, changed parts)
        self.memo = IndexMemo(store)

    def plan(self) -> dict[str, NodeState]:
        for node in self.pipeline.order():
            name = self.pipeline.name_of(node)
            key = node_key(node.kind, node.fingerprint)
            st = NodeState(name=name, node=node, key=key, record=self.store.record(key))
            if node.per_utterance:
                self._plan_per_utterance(st)
            elif isinstance(node, KMeans):
                plan_kmeans(self, st)
            elif _is_annotation(node):
                self._plan_annotation(st)
            elif _is_pretrained(node):
                plan_checkpoint(self, st)
            else:
                self._plan_aggregate(st)
            problem = self.store.damaged.get(key) or \
                self.store.damaged_arrays(key, st.record, self.memo)
            if problem:  # unreadable record, index or array files: recompute, say why
                st.stale, st.reasons = True, [f"damaged: {problem}"]
            self.states[node.fingerprint] = st
        self.memo.save()
        return {st.name: st for st in self.states.values()}

    # ---- helpers ------------------------------------------------------------------------
    def _inputs(self, node: Node) -> list[NodeState]:
        ins = [self.states[n.fingerprint] for n in self.pipeline.inputs(node)]
        return sorted(ins, key=lambda s: s.node.fingerprint)

    def _new_reasons(self, st: NodeState) -> list[str]:
        return why_new(st.name, st.node, self.store, self.pipeline)

    def _changed_inputs(self, st: NodeState) -> list[str]:
        stored = (st.record or {}).get("inputs", {})
        return [
            s.name
            for s in self._inputs(st.node)
            if stored.get(s.node.fingerprint) not in (None, s.data_version)
        ]

    # ---- per-utterance nodes ------------------------------------------------------------
    def _input_digest(self, st: NodeState) -> str:
        node = st.node
        if isinstance(node, Corpus):
            st.manifest = scan_corpus(node, st.name)
            return digest(node.fingerprint, st.manifest.scan_digest())
        ins = self._inputs(node)
        return digest(node.fingerprint, [s.input_digest for s in ins if s.node.per_utterance],
                      [s.data_version for s in ins if not s.node.per_utterance])

    def _expected_versions(self, st: NodeState) -> dict[str, str]:
        node = st.node
        if isinstance(node, Corpus):
            m = st.manifest
            return dict(zip(m.ids, leaf_versions(node.fingerprint, m.identities)))
        ins = self._inputs(node)
        per = [s.expected for s in ins if s.node.per_utterance]
        agg = [s.data_version for s in ins if not s.node.per_utterance]
        utts = list(per[0])
        for e in per[1:]:
            utts = [u for u in utts if u in e]
        columns = [[e[u] for u in utts] for e in per]
        return dict(zip(utts, child_versions(node.fingerprint, columns, agg)))

    def _fresh_by_digest(self, st: NodeState) -> bool:
        """Complete, committed with this input digest, index readable (parsed, or known intact
        by ``IndexMemo``), parts intact: fresh."""
        rec = st.record
        if not rec or rec.get("status") != "complete" or not rec.get("data_version") \
                or rec.get("input_digest") != st.input_digest:
            return False
        if not self.memo.intact(st.key, rec):  # parsed, so a torn index is named as before
            index = self.store.index(st.key, rec)
            n = rec.get("n_utts")
            if st.key in self.store.damaged or (n is not None and len(index) != n):
                return False
            self.memo.remember(st.key, rec)
        backend, parts = self.store.backend, rec.get("parts") or {}
        since = self.store.committed_ns(st.key) if parts else None
        return not any(plan_problems(backend, f"{st.key}/{part}", m, since, self.memo)
                       for part, m in parts.items())

    def _plan_per_utterance(self, st: NodeState) -> None:
        st.input_digest = self._input_digest(st)
        if self._fresh_by_digest(st):
            st.lazy_expected = lambda: self._expected_versions(st)
            st.data_version = st.record["data_version"]
            return
        st.expected = self._expected_versions(st)
        st.data_version = digest(st.node.fingerprint, sorted(st.expected.items()))
        rec = st.record
        st.record_notes = {"input_digest": st.input_digest}  # (used only if found fresh)
        if rec is None:
            st.stale, st.todo, st.reasons = True, list(st.expected), self._new_reasons(st)
            return
        index = self.store.index(st.key, rec)
        stored = {u: e[3] for u, e in index.items()}
        damaged = [u for u in self.store.damaged_utterances(st.key, rec, index, self.memo)
                   if u in st.expected]
        new = [u for u in st.expected if u not in stored]
        changed = [u for u in st.expected if u in stored and stored[u] != st.expected[u]]
        st.removed = [u for u in stored if u not in st.expected]
        damaged = [u for u in damaged if u not in changed]
        st.todo = new + changed + damaged
        if damaged:
            st.reasons.append(f"{plural(len(damaged), 'utterance')} with damaged part files "
                              f"({examples(damaged)})")
        if rec.get("status") != "complete":
            done = f" ({len(stored) - len(st.removed)}/{len(st.expected)} utterances done)"
            why = self._incomplete(st, done)
            st.reasons.append(why if why.startswith(("running", "repaired")) else
                              f"incomplete: {done[2:-1]} (interrupted run)")
        elif new:
            st.reasons.append(f"corpus grew: +{plural(len(new), 'utterance')} ({examples(new)})")
        if changed:
            moved = self._changed_inputs(st)
            if moved and len(changed) == len(stored) - len(st.removed):
                st.reasons.append(f"upstream changed: {', '.join(moved)}")
            else:
                st.reasons.append(f"{plural(len(changed), 'utterance')} changed ({examples(changed)})")
        if st.removed:
            st.reasons.append(
                f"{plural(len(st.removed), 'utterance')} removed ({examples(st.removed)})"
            )
        st.stale = bool(st.reasons)

    # ---- aggregate nodes ----------------------------------------------------------------
    def _incomplete(self, st: NodeState, at: str = "", what: str = "interrupted run") -> str:
        """``incomplete (interrupted run)``, or ``running: pid … step x/y`` when a live process
        holds this node's lock and its partial record is from that run; a training's step is
        the live one of its ranks' heartbeats (the slowest rank's), not its last checkpoint's."""
        from ..store.lock import describe_writer, live_writer
        from ..store.train_log import heartbeats

        w, rec = live_writer(self.store.backend, st.key), st.record or {}  # its node lock
        since = w.get("since") or "" if w is not None else ""
        if w is not None and rec.get("updated", "") >= since:
            live = [b for b in heartbeats(self.store.backend, st.key)
                    if b.get("updated", "") >= since]
            if live:
                at = f" at step {min(b['step'] for b in live)}/{live[0]['steps']}"
            return f"running: {describe_writer(w)}{at}"
        if rec.get("repaired"):  # (``verify --repair`` marked it; a commit clears the mark)
            redo = (plural(len(st.todo), "utterance") + f" ({examples(st.todo)})"
                    if st.node.per_utterance else "it")
            return f"repaired: will recompute {redo}; was damaged: {rec['repaired']}"
        return f"incomplete{at} ({what})"

    def _plan_aggregate(self, st: NodeState) -> None:
        ins = self._inputs(st.node)
        speakers = self._speaker_version(st.node)
        st.input_version = digest(
            st.node.fingerprint, [(s.node.fingerprint, s.data_version) for s in ins], *speakers
        )
        st.data_version = st.input_version
        rec = st.record
        if rec is None:
            st.stale, st.reasons = True, self._new_reasons(st)
        elif rec.get("status") != "complete":
            at = f" at step {rec['step']}/{rec['steps']}" if rec.get("step") and rec.get("steps") else ""
            st.stale, st.reasons = True, [self._incomplete(st, at)]
        elif rec.get("input_version") != st.input_version:
            st.stale = True
            moved = self._changed_inputs(st)
            st.reasons = [f"upstream changed: {', '.join(moved)}" if moved else
                          _speakers_changed(st.node) if speakers else
                          "upstream changed: inputs"]
        else:
            st.notes += precision_notes(st.node, rec)

    def _speaker_version(self, node: Node) -> list[str]:
        """A split by speaker reads the corpus's speaker map, which the audio versions do not
        cover: only such a node gets a version of it (every other input version is unchanged)."""
        reads = getattr(node, "reads_speakers", None)  # Probe(task='sid') reads them always
        if not reads and getattr(getattr(node, "split", None), "by", "utterance") != "speaker":
            return []
        manifest = self.states[node.corpus.fingerprint].manifest
        return [digest(sorted((u, manifest.speaker(u) or "") for u in manifest.ids))]

    def _plan_annotation(self, st: NodeState) -> None:
        """Fresh while the file and the corpus's utterances are unchanged; else parsed and checked
        now, so a bad row fails the plan. The data version is the file's content hash: touching
        the file, or a corpus change that leaves the rows valid, restales nothing downstream."""
        from ..formats.readers import annotation_identity
        from ..specs.annotations import Alignments, WordAlignments

        node = st.node
        corpus = self.states[node.corpus.fingerprint]
        path = node.file()
        what = type(node).__name__.lower()
        if not path.exists():
            raise SpecError(f"{st.name}: {what} file {node.path!r} not found (looked at {path})")

        def check() -> None:  # parse now: a bad row fails the plan, before any work
            # (the parsers hold numpy arrays: imported only when rows are read, never by a no-op)
            from ..audio.annotations import check_ends, parse_alignments, parse_transcripts

            if isinstance(node, (Alignments, WordAlignments)):
                st.payload = parse_alignments(node, corpus.expected)
                check_ends(node, st.payload, self.known_seconds(corpus))
            else:
                st.payload = parse_transcripts(node, corpus.expected)

        self.plan_external(st, [annotation_identity(node, "stat"), corpus.data_version],
                           lambda: annotation_identity(node, "hash"),
                           changed=f"{what} file changed ({node.path})",
                           unchanged="corpus changed: rows checked again", check=check)

    def plan_external(self, st: NodeState, stat_identity, content_identity, changed: str,
                      unchanged: str, check=None) -> None:
        """Inputs that live outside the store (annotation files, released checkpoints): fresh
        while their stat identity matches the record; otherwise ``check``-ed and hashed. The
        data version is the content hash, so touching or copying a file restales nothing
        downstream (``unchanged`` says so) and only new content does (``changed``)."""
        st.input_version = digest(st.node.fingerprint, stat_identity)
        rec = st.record
        if rec is not None and rec.get("status") == "complete" \
                and rec.get("input_version") == st.input_version:
            st.data_version = rec["data_version"]
            return
        if check is not None:
            check()
        st.data_version = digest(st.node.fingerprint, content_identity())
        st.stale = True
        if rec is None:
            st.reasons = self._new_reasons(st)
        elif rec.get("status") != "complete":
            st.reasons = [self._incomplete(st, what="interrupted or failed run")]
        elif rec.get("data_version") != st.data_version:
            st.reasons = [changed]
        else:
            st.reasons = [unchanged]

    def known_seconds(self, corpus: NodeState) -> dict[str, float]:
        """Durations of the corpus's utterances whose stored length is current (plan time)."""
        if corpus.record is None:
            return {}
        sr = corpus.node.sample_rate
        return {u: e[2] / sr for u, e in self.store.index(corpus.key, corpus.record).items()
                if corpus.expected.get(u) == e[3]}


def make_plan(pipeline: Pipeline, store: Store) -> dict[str, NodeState]:
    """Planning a corpus allocates a few objects per utterance (ids, paths, identities, index
    rows) and none of them form cycles, yet each 700 allocations wake the cyclic collector,
    which then walks them all: ~6 % of the CPU of a no-op ``plan`` at 50k utterances. Paused
    while planning only (a run's training afterwards collects as usual)."""
    with paused():
        return Planner(pipeline, store).plan()

