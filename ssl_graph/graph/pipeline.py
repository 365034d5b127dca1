"""Spec file → networkx DAG keyed by fingerprint, validated before anything runs.

Identical specs share a fingerprint and therefore one graph node and one cache. Structural and
semantic checks (cycles, rate/shape mismatches declared by each node's ``check``) fail here, with
messages that name the nodes, instead of hours into a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from ..specs.base import Node, SpecError
from ..specs.loader import SpecFile, load_spec_file, node_inputs


@dataclass
class Pipeline:
    spec: SpecFile
    graph: nx.DiGraph

    @property
    def spec_name(self) -> str:
        return self.spec.spec_name

    def name_of(self, node: Node) -> str:
        return self.spec.name_of(node)

    def node(self, name: str) -> Node:
        return self.spec[name]

    def order(self) -> list[Node]:
        """Nodes in a deterministic topological order (ties broken by name)."""
        g = self.graph
        fps = nx.lexicographical_topological_sort(g, key=lambda fp: g.nodes[fp]["name"])
        return [g.nodes[fp]["node"] for fp in fps]

    def inputs(self, node: Node) -> list[Node]:
        return [self.graph.nodes[fp]["node"] for fp in self.graph.predecessors(node.fingerprint)]

    def ancestors(self, nodes: list[Node]) -> set[str]:
        out = set()
        for n in nodes:
            out.add(n.fingerprint)
            out |= nx.ancestors(self.graph, n.fingerprint)
        return out

    def descendants(self, node: Node) -> set[str]:
        return nx.descendants(self.graph, node.fingerprint)


def build_pipeline(spec: SpecFile) -> Pipeline:
    g = nx.DiGraph()
    for fp, name in spec.names.items():
        g.add_node(fp, name=name, node=spec.nodes[name], kind=spec.nodes[name].kind)
    for fp in list(g.nodes):
        node = g.nodes[fp]["node"]
        for field_path, up in node_inputs(node):
            if up.fingerprint not in g:
                raise SpecError(f"{spec.name_of(node)}: input {field_path} is not part of the graph")
            g.add_edge(up.fingerprint, fp, field=field_path)
    if not nx.is_directed_acyclic_graph(g):
        cycle = nx.find_cycle(g)
        names = " → ".join(g.nodes[a]["name"] for a, _ in cycle)
        raise SpecError(f"{spec.path}: dependency cycle: {names}")
    for fp in g.nodes:
        g.nodes[fp]["node"].check(spec.name_of)
    return Pipeline(spec=spec, graph=g)


def load_pipeline(path: str | Path) -> Pipeline:
    return build_pipeline(load_spec_file(path))
