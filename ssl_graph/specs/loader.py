"""Import a spec file and name its nodes, the way pytest collects tests.

Module-level variables holding nodes (or lists/dicts of nodes) are the user's names. Nodes reached
only through another node's fields get derived names from the field path (``lab.kmeans``), so every
node in a plan, error message and store index has a readable name.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from .base import Node, SpecError
from .nodes import SPEC_DIR


@dataclass
class SpecFile:
    path: Path
    #: name -> node, user-named first (definition order), then derived names
    nodes: dict[str, Node] = field(default_factory=dict)
    #: fingerprint -> canonical name (the first name a node got)
    names: dict[str, str] = field(default_factory=dict)
    #: fingerprint -> other names the same node got (identical specs collapse)
    aliases: dict[str, list[str]] = field(default_factory=dict)
    #: ``__targets__`` of the file: what ``run`` builds when no node is named (None = all)
    default_targets: list[str] | None = None

    @property
    def spec_name(self) -> str:
        return self.path.stem

    def name_of(self, node: Node) -> str:
        return self.names.get(node.fingerprint, f"{node.kind}<{node.fingerprint[:8]}>")

    def __getitem__(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise SpecError(
                f"{self.path}: no node named {name!r}; nodes: {', '.join(self.nodes)}"
            ) from None


def _where(exc: BaseException, path: Path) -> str:
    """file:line of the deepest frame inside the spec file, for error messages."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path:
            line = frame.lineno
    return f"{path}:{line}" if line else str(path)


def _spec_class(name: str):
    from .base import Spec

    stack = [Spec]
    while stack:
        cls = stack.pop()
        if cls.__name__ == name:
            return cls
        stack.extend(cls.__subclasses__())
    return None


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "(spec)"
        msg = err["msg"]
        cls = _spec_class(exc.title) if err["type"] == "extra_forbidden" else None
        if cls is not None and len(err["loc"]) == 1:
            msg += f" (no such field; {exc.title} has: {', '.join(cls.model_fields)})"
        parts.append(f"{exc.title}.{loc}: {msg}")
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "; ".join(parts) + more


class SpecInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a ``KeyboardInterrupt`` the spec raised) while a spec file was imported:
    nothing has been planned or run yet, so nothing was committed either."""


class _ExitCalled(BaseException):
    """``os._exit`` called by a spec file while it was imported (see ``_exit_refused``)."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


@contextlib.contextmanager
def _exit_refused():
    """While a spec file is imported, ``os._exit`` raises instead of ending the process, so
    the loader can name the spec file. A forked child (the spec's own multiprocessing) and
    other threads still exit for real. Code that bypasses ``os`` (``posix._exit``, a signal) cannot be stopped;
    specs are imported before any store lock is taken, so such an exit leaves none held."""
    real, pid, thread = os._exit, os.getpid(), threading.get_ident()

    def refuse(code):
        if os.getpid() != pid or threading.get_ident() != thread:  # not the spec's own call
            real(code)
        raise _ExitCalled(code)

    os._exit = refuse
    try:
        yield
    finally:
        os._exit = real


def _exit_message(path: Path, exc: BaseException, call: str, code) -> str:
    return (f"{_where(exc, path)}: the spec file called {call}({code!r}) while it was imported, "
            "so nothing was planned or run; a spec file only declares nodes: remove the call "
            "(or guard it with `if __name__ == \"__main__\":`)")


def import_spec_module(path: Path):
    """Execute the spec file fresh each time (no bytecode cache: edits within the same second
    with the same size, like ``k=20`` → ``k=30``, must never load a stale .pyc).

    A spec that exits (``sys.exit``, ``exit()``, ``os._exit``) is refused naming the file and
    line; a ``KeyboardInterrupt`` becomes :class:`SpecInterrupted`, which says so."""
    module = types.ModuleType(f"ssl_graph_spec_{path.stem}")
    module.__file__ = str(path)
    token = SPEC_DIR.set(str(path.parent))
    sys.path.insert(0, str(path.parent))
    before = set(sys.modules)
    try:
        code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
        with _exit_refused():
            exec(code, module.__dict__)
    except SystemExit as exc:
        raise SpecError(_exit_message(path, exc, "sys.exit", exc.code)) from None
    except _ExitCalled as exc:
        raise SpecError(_exit_message(path, exc, "os._exit", exc.code)) from None
    except KeyboardInterrupt as exc:
        raise SpecInterrupted(f"spec file {_where(exc, path)} was being imported; nothing "
                              "was planned or run") from None
    except SyntaxError as exc:
        raise SpecError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{path}: not UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save the spec file as UTF-8"
        ) from None
    except ValidationError as exc:
        raise SpecError(f"{_where(exc, path)}: {_validation_message(exc)}") from None
    except SpecError as exc:
        raise SpecError(f"{_where(exc, path)}: {exc}") from None
    except Exception as exc:
        raise SpecError(f"{_where(exc, path)}: {type(exc).__name__}: {exc}") from None
    finally:
        SPEC_DIR.reset(token)
        sys.path.remove(str(path.parent))
        # helpers imported from the spec's folder (``from _corpus import corpus``) must be
        # re-executed for the next spec file, which may sit in another folder
        for name in set(sys.modules) - before:
            f = getattr(sys.modules[name], "__file__", None) or ""
            if f and Path(f).resolve().parent == path.parent:
                del sys.modules[name]
    return module


def _collect(name: str, value, out: list[tuple[str, Node]]) -> None:
    if isinstance(value, Node):
        out.append((name, value))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _collect(f"{name}[{i}]", v, out)
    elif isinstance(value, dict):
        for k, v in value.items():
            _collect(f"{name}[{k}]", v, out)


def load_spec_file(path: str | Path) -> SpecFile:
    path = Path(path).resolve()
    if not path.is_file():
        raise SpecError(f"spec file {path} not found")
    module = import_spec_module(path)
    return spec_from_namespace(vars(module), path)


def spec_from_namespace(namespace: dict, path: Path) -> SpecFile:
    """Name the nodes of a namespace (a spec module's variables, or a notebook's dict): public
    variables holding nodes are user names, upstream nodes get field-path names."""
    named: list[tuple[str, Node]] = []
    for var, value in namespace.items():
        if not var.startswith("_"):
            _collect(var, value, named)
    if not named:
        raise SpecError(f"{path}: declares no nodes (assign nodes to module-level variables)")
    sf = SpecFile(path=path)
    try:
        for name, node in named:
            _add(sf, name, node)
    except RecursionError:  # fingerprints recurse through the inputs: a cycle never ends
        raise SpecError(f"{path}: {_cycle_message(named)}") from None
    targets = namespace.get("__targets__")
    if targets is not None:
        if isinstance(targets, str) or not all(isinstance(t, str) for t in targets):
            raise SpecError(f"{path}: __targets__ must be a list of node names, got {targets!r}")
        unknown = [t for t in targets if t not in sf.nodes]
        if unknown:
            raise SpecError(
                f"{path}: __targets__ names unknown node(s) {unknown}; nodes: {', '.join(sf.nodes)}"
            )
        sf.default_targets = list(targets)
    # derived names, breadth first so the shortest field path wins
    queue = [(name, node) for name, node in named]
    while queue:
        parent, node = queue.pop(0)
        for field_path, up in node_inputs(node):
            if up.fingerprint not in sf.names:
                _add(sf, f"{sf.names[node.fingerprint]}.{field_path}", up)
            queue.append((sf.names[up.fingerprint], up))
    return sf


def _cycle_message(named: list[tuple[str, Node]]) -> str:
    """Name the nodes of a dependency cycle (only reachable by mutating frozen nodes)."""
    names: dict[int, str] = {}
    for name, node in named:
        names.setdefault(id(node), name)
    done: set[int] = set()
    stack: list[tuple[int, str]] = []

    def visit(label: str, node: Node) -> list[str] | None:
        ids = [i for i, _ in stack]
        if id(node) in ids:
            return [lab for _, lab in stack[ids.index(id(node)):]] + [label]
        if id(node) in done:
            return None
        stack.append((id(node), label))
        for fld, up in [*node.iter_nodes(), *node.extra_inputs()]:
            found = visit(names.get(id(up), f"{label}.{fld}"), up)
            if found:
                return found
        stack.pop()
        done.add(id(node))
        return None

    for name, node in named:
        cycle = visit(name, node)
        if cycle:
            return (f"dependency cycle: {' → '.join(cycle)}; a node can only use nodes built "
                    "before it (do not modify nodes after creating them)")
    return "the node graph is nested too deeply to fingerprint"


def _add(sf: SpecFile, name: str, node: Node) -> None:
    fp = node.fingerprint
    if fp in sf.names:
        if sf.names[fp] != name:
            sf.aliases.setdefault(fp, []).append(name)
            sf.nodes[name] = node
        return
    sf.names[fp] = name
    sf.nodes[name] = node


def node_inputs(node: Node) -> list[tuple[str, Node]]:
    """Every node this node reads, with the field path that reaches it."""
    seen: dict[str, tuple[str, Node]] = {}
    for path, up in node.iter_nodes():
        seen.setdefault(up.fingerprint, (path, up))
    for path, up in node.extra_inputs():
        seen.setdefault(up.fingerprint, (path, up))
    return list(seen.values())
