"""PretrainedModel: convert a released checkpoint's weights to our names, once, into the store.

Downstream ops then read ``model.safetensors`` from this node exactly as from a ``Pretrain``
node. Tensors HF has and we lack are listed in the record; a backbone tensor we need and HF
lacks fails the run (strict loading), naming it.
"""

from __future__ import annotations

from .base import AggregateOp, RunContext, register


@register("PretrainedModel")
class PretrainedModelOp(AggregateOp):
    def compute(self, st, ctx: RunContext) -> dict:
        import torch
        from safetensors.torch import save

        from ..model_io.hf_checkpoint import read_weights
        from ..nn import build_model, load_hf_state_dict

        node = st.node
        torch.manual_seed(0)  # heads HF lacks (and an absent mask embedding) start seeded
        model = build_model(node.model)
        hf = read_weights(node.directory(), st.name)
        try:
            ignored = load_hf_state_dict(model, hf)
        except (KeyError, ValueError) as e:
            raise ValueError(f"{st.name}: {node.path} does not fit its config.json: {e}") from None
        weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        ctx.store.backend.write_bytes(f"{st.key}/model.safetensors", save(weights))
        n = sum(p.numel() for p in model.parameters())
        return {"weights": "model.safetensors", "ignored": ignored,
                "has_mask_emb": any(k.endswith("masked_spec_embed") for k in hf),
                "metrics": {"parameters": n}}
