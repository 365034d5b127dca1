"""Spec file → dependency DAG keyed by fingerprint, validated before anything runs.

Identical specs share a fingerprint and therefore one graph node and one cache. Structural and
semantic checks (cycles, rate/shape mismatches declared by each node's ``check``) fail here, with
messages that name the nodes, instead of hours into a run.

The DAG is exposed as a networkx ``DiGraph`` (``pipeline.graph``) for analysis and drawing, but
the hot path (plan and a no-op run) orders nodes with a small Kahn sort over plain dicts: importing
networkx alone costs ~0.2 s, and a no-op ``run`` must answer in well under half a second.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..specs.base import Node, SpecError
from ..specs.loader import SpecFile, load_spec_file, node_inputs


@dataclass
class Pipeline:
    spec: SpecFile
    #: fingerprint -> node
    nodes: dict[str, Node]
    #: fingerprint -> [(upstream fingerprint, field path)]
    edges: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def spec_name(self) -> str:
        return self.spec.spec_name

    def name_of(self, node: Node) -> str:
        return self.spec.name_of(node)

    def node(self, name: str) -> Node:
        return self.spec[name]

    @cached_property
    def _order(self) -> list[str]:
        """Topological order, ties broken by node name so plans print deterministically."""
        indeg = {fp: len(ups) for fp, ups in self.edges.items()}
        children: dict[str, list[str]] = {fp: [] for fp in self.nodes}
        for fp, ups in self.edges.items():
            for up, _ in ups:
                children[up].append(fp)
        ready = [(self.spec.names[fp], fp) for fp, d in indeg.items() if d == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            _, fp = heapq.heappop(ready)
            order.append(fp)
            for child in children[fp]:
                indeg[child] -= 1
                if indeg[child] == 0:
                    heapq.heappush(ready, (self.spec.names[child], child))
        if len(order) != len(self.nodes):
            import networkx as nx

            cycle = nx.find_cycle(self.graph)
            names = " → ".join(self.spec.names[a] for a, _ in cycle)
            raise SpecError(f"{self.spec.path}: dependency cycle: {names}")
        return order

    def order(self) -> list[Node]:
        return [self.nodes[fp] for fp in self._order]

    def inputs(self, node: Node) -> list[Node]:
        return [self.nodes[up] for up, _ in self.edges[node.fingerprint]]

    def ancestors(self, nodes: list[Node]) -> set[str]:
        """Fingerprints of ``nodes`` and everything they depend on."""
        out: set[str] = set()
        stack = [n.fingerprint for n in nodes]
        while stack:
            fp = stack.pop()
            if fp not in out:
                out.add(fp)
                stack.extend(up for up, _ in self.edges[fp])
        return out

    def restricted(self, fingerprints: set[str]) -> "Pipeline":
        """The sub-pipeline of these nodes (closed under inputs, e.g. ``ancestors``): planning
        it plans only what they depend on."""
        return Pipeline(spec=self.spec, nodes={fp: self.nodes[fp] for fp in fingerprints},
                        edges={fp: self.edges[fp] for fp in fingerprints})

    def descendants(self, node: Node) -> set[str]:
        out: set[str] = set()
        frontier = {node.fingerprint}
        while frontier:
            frontier = {fp for fp, ups in self.edges.items()
                        if fp not in out and any(u in frontier for u, _ in ups)}
            out |= frontier
        return out

    @cached_property
    def graph(self):
        """The DAG as a networkx DiGraph: node attrs ``name``, ``kind``, ``node``; edge ``field``."""
        import networkx as nx

        g = nx.DiGraph()
        for fp, node in self.nodes.items():
            g.add_node(fp, name=self.spec.names[fp], node=node, kind=node.kind)
        for fp, ups in self.edges.items():
            for up, field_path in ups:
                g.add_edge(up, fp, field=field_path)
        return g


def build_pipeline(spec: SpecFile) -> Pipeline:
    nodes = {fp: spec.nodes[name] for fp, name in spec.names.items()}
    edges: dict[str, list[tuple[str, str]]] = {}
    for fp, node in nodes.items():
        edges[fp] = []
        for field_path, up in node_inputs(node):
            if up.fingerprint not in nodes:
                raise SpecError(f"{spec.name_of(node)}: input {field_path} is not part of the graph")
            edges[fp].append((up.fingerprint, field_path))
    pipeline = Pipeline(spec=spec, nodes=nodes, edges=edges)
    pipeline.order()  # raises on cycles
    for node in nodes.values():
        node.check(spec.name_of)
    return pipeline


def load_pipeline(path: str | Path) -> Pipeline:
    return build_pipeline(load_spec_file(path))
