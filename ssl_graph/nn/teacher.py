"""data2vec's target source: an EMA teacher of the student's context network.

The teacher is a frozen copy of ``SSLNet.context`` held as this module's (non-trainable)
parameters, so the model's state dict — every checkpoint and the final weights — carries it and a
resumed run continues from the same teacher. Like fairseq's data2vec audio
(``ema_transformer_only``) it copies the transformer only: it reads the student's own context
input (conv encoder → LayerNorm → projection), taken before input dropout and masking, with no
gradient and in eval mode (no dropout, no layerdrop).

Targets (per row, so a split batch gets the same ones): the top ``top_k_layers`` blocks'
outputs — the FFN output before the block's last residual and LayerNorm (``layer_output="ffn"``,
read with a forward hook on each layer's ``fc2``; in eval mode it equals fairseq's
``layer_result``) or the block output — each instance-normalised over time, averaged, optionally
instance-normalised again. Instance norm runs over the utterance's *valid* frames (fairseq's
``F.instance_norm`` also counts padded frames; crops have none, so the two agree there).

The teacher moves once per optimiser update (:meth:`EmaTeacher.after_update`, called by the
training loop after ``optimizer.step()``; never per micro-batch), with τ(n) from
``TeacherTargets.decay_at``: a deterministic function of the student's weights and the update
count, so every DDP rank computes the same teacher without communicating.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..specs.components import TeacherTargets
from .target_sources import ForwardState, Targets, TargetSource, no_grad_copy


def instance_norm(y: Tensor, valid: Tensor, eps: float = 1e-5) -> Tensor:
    """(B, T, C) normalised per row and channel over the row's valid frames (biased variance,
    as ``F.instance_norm``), in float32."""
    y = y.float()
    w = valid.unsqueeze(-1).to(y.dtype)
    n = w.sum(1, keepdim=True).clamp(min=1.0)
    mean = (y * w).sum(1, keepdim=True) / n
    var = ((y - mean) * w).pow(2).sum(1, keepdim=True) / n
    return (y - mean) / torch.sqrt(var + eps)


class EmaTeacher(TargetSource):
    """``TeacherTargets``: averaged, instance-normalised top-layer outputs of an EMA teacher."""

    def __init__(self, spec: TeacherTargets, student: nn.Module):
        super().__init__()
        self.spec = spec
        self.teacher = no_grad_copy(student.context)
        self._updates = 0  # for the logged τ only (set_num_updates)

    # ---------------------------------------------------------------- state
    def set_num_updates(self, updates: int) -> None:
        self._updates = updates

    @torch.no_grad()
    def after_update(self, student: nn.Module, updates: int) -> None:
        """θ_teacher ← τ θ_teacher + (1 − τ) θ_student after update ``updates`` (1-based); with
        ``ema_layers_only`` the positional conv is copied. τ = 1 leaves the teacher as is."""
        decay = self.spec.decay_at(updates)
        if decay >= 1.0:
            return
        ours = dict(self.teacher.named_parameters())
        for name, p in student.context.named_parameters():
            t = ours[name]
            if self.spec.ema_layers_only and name.startswith("pos_conv."):
                t.copy_(p)
            else:
                t.mul_(decay).add_(p.detach().to(t.dtype), alpha=1.0 - decay)
        ours_b = dict(self.teacher.named_buffers())
        for name, b in student.context.named_buffers():
            ours_b[name].copy_(b)

    @torch.no_grad()
    def reset(self, student: nn.Module) -> None:
        """Start again from the student (its weights were replaced)."""
        self.teacher.load_state_dict(student.context.state_dict())

    # ---------------------------------------------------------------- targets
    def _layer_outputs(self, x: Tensor, pad: Tensor | None) -> list[Tensor]:
        """The top K layers' outputs of the teacher on ``x``, as the spec names them."""
        k = self.spec.top_k_layers
        if self.spec.layer_output == "block":
            _, hidden = self.teacher(x, pad, return_all=True)
            return hidden[-k:]
        layers = list(self.teacher.layers)[-k:]
        captured: list[Tensor] = []
        handles = [layer.fc2.register_forward_hook(lambda m, i, o: captured.append(o))
                   for layer in layers]
        try:
            self.teacher(x, pad)
        finally:
            for h in handles:
                h.remove()
        return captured

    def forward(self, state: ForwardState) -> Targets:
        spec = self.spec
        was_training = self.teacher.training
        self.teacher.eval()
        try:
            with torch.no_grad():
                outs = self._layer_outputs(state.x.detach(), state.pad)
        finally:
            self.teacher.train(was_training)
        if spec.instance_norm_target_layer:
            outs = [instance_norm(o, state.valid) for o in outs]
        else:
            outs = [o.float() for o in outs]
        y = sum(outs) / len(outs)
        if spec.instance_norm_targets:
            y = instance_norm(y, state.valid)
        decay = torch.tensor(spec.decay_at(self._updates))
        return Targets(features=y, logs={"ema_decay": decay})
