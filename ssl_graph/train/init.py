"""``Pretrain(init=...)``: copy another model's backbone into a fresh model before step 0.

The backbone (conv encoder, feature norm/projection, context network, mask embedding) carries
over; quantizer and prediction heads start fresh, because the new run's targets (e.g. HuBERT
labels of another k) need heads of their own. A resumed run loads its checkpoint afterwards,
so this only decides where step 0 starts.
"""

from __future__ import annotations

BACKBONE = ("encoder.", "feature_norm.", "feature_proj.", "context.", "mask_emb")


def load_init(model, st, ctx) -> None:
    from safetensors.torch import load

    init = ctx.state(st.node.init)
    raw = ctx.store.backend.read_bytes(f"{init.key}/model.safetensors")
    if raw is None:
        raise FileNotFoundError(f"{st.name}: init model {init.name} has no weights; rerun it")
    state = {k: v for k, v in load(raw).items() if k.startswith(BACKBONE)}
    ours = model.state_dict()
    wanted = [k for k in ours if k.startswith(BACKBONE)]
    missing = [k for k in wanted if k not in state and k != "mask_emb"]
    bad = [k for k in wanted if k in state and state[k].shape != ours[k].shape]
    if missing or bad:
        raise ValueError(f"{st.name}: init model {init.name} does not fit the backbone (missing "
                         f"{missing[:3]}, shape mismatch {bad[:3]})")
    model.load_state_dict({k: state[k] for k in wanted if k in state}, strict=False)
    model.reset_targets()  # e.g. an EMA teacher starts from the loaded student
