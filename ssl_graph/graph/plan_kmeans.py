"""Planning of ``KMeans`` nodes: fresh while the utterances it was fit on are unchanged.

Growth alone keeps the centroids (unless ``refit_on_growth``). Deciding that needs the features'
per-utterance versions — at 50k utterances ~100k hexdigests down to the corpus — since the
features' data version moved with the growth. The plan that finds centroids kept over grown
features therefore notes the features' version they were confirmed for (``kept_for``, written
by ``run`` with the growth, ``NodeState.record_notes``): later plans of those same features
compare one digest, as a clean no-op does. Any later change of the features (a new file, an
edited one) gives another version, so the comparison utterance by utterance is made again.
"""

from __future__ import annotations

from ..specs.base import digest
from .phrases import examples, plural


def plan_kmeans(planner, st) -> None:
    feats = planner.states[st.node.features.fingerprint]
    rec = st.record
    st.input_version = digest(st.node.fingerprint, feats.data_version)
    kept = (rec or {}).get("kept_for") or {}
    if rec is None:
        st.stale, st.reasons = True, planner._new_reasons(st)
    elif rec.get("status") != "complete":
        st.stale, st.reasons = True, [planner._incomplete(st)]
    elif rec.get("input_version") == st.input_version and fit_intact(planner, st):
        pass  # the features are those it was fit on: nothing changed, nothing grew
    elif isinstance(kept, dict) and kept.get("input_version") == st.input_version \
            and fit_intact(planner, st):
        grown = int(kept.get("grown") or 0)  # the features it was kept for: as planned then
        if grown:
            st.notes.append(_kept_note(plural(grown, "utterance")))
    else:
        fit = planner.store.document(st.key, "fit_utts.json") or {}
        expected = feats.expected
        changed = [u for u, v in fit.items() if u in expected and expected[u] != v]
        gone = [u for u in fit if u not in expected]
        grown = [u for u in expected if u not in fit]
        if fit and st.key not in planner.store.damaged:
            st.record_notes = {"fit_utts_size": planner.store.backend.size(
                f"{st.key}/fit_utts.json")}
        if changed:
            st.reasons.append(
                f"fit data changed: {plural(len(changed), 'utterance')} ({examples(changed)})"
            )
        if gone:
            st.reasons.append(f"fit data changed: {plural(len(gone), 'utterance')} removed")
        if grown and st.node.refit_on_growth:
            st.reasons.append(f"corpus grew: +{plural(len(grown), 'utterance')} (refit_on_growth)")
        elif grown:
            st.notes.append(_kept_note(plural(len(grown), "utterance")))
        st.stale = bool(st.reasons)
        if not st.stale and st.record_notes:  # (only with an intact, readable fit list)
            st.record_notes["kept_for"] = {"input_version": st.input_version,
                                           "grown": len(grown)}
    st.data_version = st.input_version if st.stale else rec["data_version"]


def _kept_note(grown: str) -> str:
    return f"+{grown} since the fit; centroids kept (set refit_on_growth=True to refit)"


def fit_intact(planner, st) -> bool:
    """``fit_utts.json`` has the size its commit recorded (else it is read, and a torn one is
    named as damaged)."""
    size = (st.record or {}).get("fit_utts_size")
    try:
        return size is not None and planner.store.backend.size(f"{st.key}/fit_utts.json") == size
    except OSError:
        return False
