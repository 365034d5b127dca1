"""Planning of ``PretrainedModel`` nodes: external checkpoints versioned by content.

Like an annotation file: fresh while the files' size and mtime are unchanged; otherwise the
files are hashed, and only a different hash changes the data version (what dependents see), so
copying or touching a checkpoint reruns the cheap conversion and nothing downstream.
"""

from __future__ import annotations

from ..formats.sources import file_identity


def plan_checkpoint(planner, st) -> None:
    from ..model_io.hf_checkpoint import identity_files

    node = st.node
    root = node.directory()
    files = identity_files(root, st.name)
    planner.plan_external(
        st, [(f.name, file_identity(f, "stat")) for f in files],
        lambda: [(f.name, file_identity(f, "hash")) for f in files],
        changed=f"checkpoint changed ({node.path})",
        unchanged="checkpoint files touched: content unchanged")
