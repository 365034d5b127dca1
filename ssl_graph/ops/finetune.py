"""FineTune and ASRScore as node ops (torch is imported only when they run)."""

from __future__ import annotations

from .base import AggregateOp, RunContext, register


@register("FineTune")
class FineTuneOp(AggregateOp):
    def compute(self, st, ctx: RunContext) -> dict:
        from ..launcher import current_launcher
        from ..train.finetune import train_finetune
        from ..train.threads import fixed_threads

        launcher = current_launcher()  # --launcher torchrun: the ranks train, this process waits
        if launcher is not None:
            return launcher.compute(st, ctx)
        with fixed_threads(st.node.threads):
            return train_finetune(st, ctx)


@register("ASRScore")
class ASRScoreOp(AggregateOp):
    def compute(self, st, ctx: RunContext) -> dict:
        from ..train.score import score
        from ..train.threads import fixed_threads

        with fixed_threads(st.node.threads):
            return score(st, ctx)
