"""A model node's network with its stored weights, for the ops that run it (layer features).

``model_network`` takes the node; ``build_network`` what a worker job carries (see
``worker_cache.model_ref``).

``Pretrain`` and ``PretrainedModel`` store the ``SSLNet`` itself; a ``FineTune`` stores its CTC
model, whose backbone is the ``SSLNet`` under ``net.`` without the pretraining heads (and the
quantizer when only the targets used it): those stay freshly built and are never run here.
"""

from __future__ import annotations

#: parameters a fine-tune's stored backbone lacks (see ``nn/ctc.py``)
_NOT_IN_FINETUNE = ("heads.", "quantizer.", "target_sources.")


def build_network(config, backend, key: str, device: str, finetuned: bool = False):
    """The ``SSLModel`` ``config`` built with the weights stored under ``key`` (a fine-tune's
    backbone when ``finetuned``), on ``device``, in eval mode."""
    from safetensors.torch import load

    from ..nn import build_model

    net = build_model(config)
    weights = load(backend.read_bytes(f"{key}/model.safetensors"))
    if not finetuned:
        net.load_state_dict({k: v.to(device) for k, v in weights.items()})
        return net.to(device).eval()
    backbone = {k[4:]: v.to(device) for k, v in weights.items() if k.startswith("net.")}
    missing, unexpected = net.load_state_dict(backbone, strict=False)
    missing = [k for k in missing if not k.startswith(_NOT_IN_FINETUNE)]
    if missing or unexpected:
        raise ValueError(f"{key}: the fine-tune's weights do not fit its backbone (missing "
                         f"{missing[:3]}, unexpected {unexpected[:3]}); rerun the FineTune node")
    return net.to(device).eval()


def model_network(model_node, backend, key: str, device: str):
    """``build_network`` for a ``Pretrain``, ``PretrainedModel`` or ``FineTune`` node."""
    from ..specs.layer_features import network_of

    return build_network(network_of(model_node), backend, key, device,
                         finetuned=model_node.kind == "FineTune")
