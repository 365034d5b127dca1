"""Pretrain: the training loop as a node op (torch is imported only when it runs)."""

from __future__ import annotations

from .base import AggregateOp, RunContext, register


@register("Pretrain")
class PretrainOp(AggregateOp):
    def compute(self, st, ctx: RunContext) -> dict:
        from ..launcher import current_launcher
        from ..train.loop import train
        from ..train.threads import fixed_threads

        launcher = current_launcher()  # --launcher torchrun: the ranks train, this process waits
        if launcher is not None:
            return launcher.compute(st, ctx)
        with fixed_threads(st.node.threads):
            return train(st, ctx)
