"""Planning of ``PretrainedModel`` nodes: external checkpoints versioned by content.

Like an annotation file: fresh while the files' size and mtime are unchanged; otherwise the
files are hashed, and only a different hash changes the data version (what dependents see), so
copying or touching a checkpoint reruns the cheap conversion and nothing downstream.
"""

from __future__ import annotations

from ..audio.manifest import file_identity
from ..specs.base import digest


def plan_checkpoint(planner, st) -> None:
    from ..formats.hf_checkpoint import identity_files

    node = st.node
    root = node.directory()
    files = identity_files(root, st.name)
    st.input_version = digest(node.fingerprint, [(f.name, file_identity(f, "stat")) for f in files])
    rec = st.record
    if rec is not None and rec.get("status") == "complete" \
            and rec.get("input_version") == st.input_version:
        st.data_version = rec["data_version"]
        return
    st.data_version = digest(node.fingerprint, [(f.name, file_identity(f, "hash")) for f in files])
    st.stale = True
    if rec is None:
        st.reasons = planner._new_reasons(st)
    elif rec.get("status") != "complete":
        st.reasons = ["incomplete (interrupted or failed run)"]
    elif rec.get("data_version") != st.data_version:
        st.reasons = [f"checkpoint changed ({node.path})"]
    else:
        st.reasons = ["checkpoint files touched: content unchanged"]
