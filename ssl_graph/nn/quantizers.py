"""Product quantizers: Gumbel-softmax (vq-wav2vec, wav2vec 2.0) and online k-means (vq-wav2vec).

Both map (B, T, C) → (B, T, dim) with G groups of V entries each, report codebook usage
(perplexities over the frames marked ``valid``) and return the chosen code ids, which
``CodeTargets`` turns into classification targets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..specs.components import GumbelQuantizer, KMeansQuantizer, NoQuantizer
from .common import Fp32GroupNorm, activation


@dataclass
class QuantizerOutput:
    x: Tensor  # (B, T, dim) quantized vectors (straight-through gradients)
    codes: Tensor  # (B, T, G) long ids of the vectors in x (Gumbel-sampled when training)
    best: Tensor  # (B, T, G) noise-free argmax ids: the frame's code, used as a target
    num_vars: int  # G·V for Gumbel (diversity normaliser), V for k-means (as fairseq)
    code_perplexity: Tensor  # Σ_g exp H(hard code histogram of group g)
    prob_perplexity: Tensor | None = None  # Σ_g exp H(mean softmax of group g), Gumbel only
    temperature: float | None = None
    loss: Tensor | None = None  # k-means: latent + γ·commitment
    scored: int = 0  # frames marked ``valid`` (those the statistics and the loss average over)
    prob_sum: Tensor | None = None  # (G, V) softmax summed over those frames, Gumbel only

#: Gumbel noise of a given shape (B, T, G, V): the caller decides how it is seeded
GumbelNoise = Callable[[tuple[int, ...]], Tensor]


def perplexity(probs: Tensor) -> Tensor:
    """Σ_g exp(−Σ_v p log p) for (G, V) distributions; the 1e-7 guards log 0 as fairseq."""
    return torch.exp(-(probs * torch.log(probs + 1e-7)).sum(-1)).sum()


def _valid_rows(n: int, valid: Tensor | None, device: torch.device) -> tuple[Tensor, int]:
    """(rows the statistics average over, how many of them are valid): every row when none is
    marked valid (then the count is 0, so a share of the batch's statistics is 0)."""
    if valid is None:
        return torch.ones(n, dtype=torch.bool, device=device), n
    if not bool(valid.any()):
        return torch.ones(n, dtype=torch.bool, device=device), 0
    return valid.reshape(-1), int(valid.sum())


class GumbelQuantizerModule(nn.Module):
    """Hard straight-through Gumbel-softmax product quantizer; argmax at eval.

    The temperature follows max(start·decay^step, end); the training loop sets the step with
    :meth:`set_num_updates` (it is not part of the state dict, so resumption must set it too).
    """

    def __init__(self, spec: GumbelQuantizer, in_dim: int):
        super().__init__()
        self.spec = spec
        G, V = spec.groups, spec.entries
        if spec.depth == 1:
            self.weight_proj = nn.Sequential(nn.Linear(in_dim, G * V))
            nn.init.normal_(self.weight_proj[0].weight, mean=0.0, std=1.0)
            nn.init.zeros_(self.weight_proj[0].bias)
        else:
            hidden = in_dim * spec.hidden_factor
            blocks: list[nn.Module] = []
            for i in range(spec.depth - 1):
                blocks += [
                    nn.Linear(in_dim if i == 0 else hidden, hidden),
                    activation(spec.activation),
                ]
            self.weight_proj = nn.Sequential(*blocks, nn.Linear(hidden, G * V))
        n_books = 1 if spec.combine_groups else G
        self.codebook = nn.Parameter(torch.rand(1, n_books * V, spec.dim // G))
        self.temperature = spec.temperature[0]

    def set_num_updates(self, step: int) -> None:
        self.temperature = self.spec.temperature_at(step)

    def codebook_vectors(self) -> Tensor:
        """(G, V, dim/G), the shared codebook repeated when ``combine_groups``."""
        G, V = self.spec.groups, self.spec.entries
        books = self.codebook.view(-1, V, self.codebook.size(-1))
        return books.expand(G, -1, -1) if self.spec.combine_groups else books

    def logits(self, x: Tensor) -> Tensor:
        """(..., C) → (N, G, V) assignment logits in float32."""
        G, V = self.spec.groups, self.spec.entries
        return self.weight_proj(x.reshape(-1, x.size(-1))).float().view(-1, G, V)

    def forward(
        self, x: Tensor, valid: Tensor | None = None, gumbel: GumbelNoise | None = None
    ) -> QuantizerOutput:
        """``gumbel`` draws the training noise (default: the global torch RNG)."""
        lead = x.shape[:-1]
        logits = self.logits(x)
        rows, scored = _valid_rows(logits.size(0), valid, x.device)
        with torch.no_grad():
            hard_ids = logits.argmax(-1)
            hist = F.one_hot(hard_ids[rows], self.spec.entries).float().mean(0)
            code_ppl = perplexity(hist)
        probs = torch.softmax(logits[rows], dim=-1)
        prob_ppl = perplexity(probs.mean(0))
        if self.training:
            G, V = self.spec.groups, self.spec.entries
            noise = (-torch.empty_like(logits).exponential_().log() if gumbel is None
                     else gumbel((*lead, G, V)).to(logits.device).view_as(logits))
            soft = torch.softmax((logits + noise) / self.temperature, dim=-1)
            ids = soft.argmax(-1)
            hard = F.one_hot(ids, self.spec.entries).to(soft.dtype)
            onehot = hard - soft.detach() + soft
        else:
            ids = hard_ids
            onehot = F.one_hot(ids, self.spec.entries).to(logits.dtype)
        books = self.codebook_vectors()
        out = torch.einsum("ngv,gvd->ngd", onehot.type_as(books), books)
        return QuantizerOutput(
            x=out.reshape(*lead, -1),
            codes=ids.view(*lead, -1),
            best=hard_ids.view(*lead, -1),
            num_vars=self.spec.groups * self.spec.entries,
            code_perplexity=code_ppl,
            prob_perplexity=prob_ppl,
            temperature=self.temperature,
            scored=scored,
            prob_sum=probs.sum(0) if scored else probs.sum(0) * 0.0,
        )


class KMeansQuantizerModule(nn.Module):
    """Online k-means VQ: grouped 1×1 conv + GroupNorm(G), nearest entry per group (L2).

    The forward value is the code vector; gradients pass straight through to the projection.
    The codebook learns from the latent term of :attr:`QuantizerOutput.loss`.
    """

    def __init__(self, spec: KMeansQuantizer, in_dim: int):
        super().__init__()
        self.spec = spec
        G = spec.groups
        if in_dim % G:
            raise ValueError(f"KMeansQuantizer: input width {in_dim} not divisible by {G} groups")
        self.proj = nn.Conv1d(in_dim, spec.dim, 1, groups=G, bias=False)
        self.norm = Fp32GroupNorm(G, spec.dim)
        n_books = 1 if spec.combine_groups else G
        self.codebook = nn.Parameter(0.01 * torch.randn(spec.entries, n_books, spec.dim // G))

    def set_num_updates(self, step: int) -> None:  # interface parity with Gumbel
        pass

    def codebook_vectors(self) -> Tensor:
        """(G, V, dim/G)."""
        books = self.codebook.transpose(0, 1)
        return books.expand(self.spec.groups, -1, -1) if self.spec.combine_groups else books

    def forward(
        self, x: Tensor, valid: Tensor | None = None, gumbel: GumbelNoise | None = None
    ) -> QuantizerOutput:
        """``x`` is (B, T, C): the GroupNorm normalises each utterance over its valid frames
        (``gumbel``, for interface parity, is unused: the assignment is deterministic)."""
        B, T, _ = x.shape
        G, V = self.spec.groups, self.spec.entries
        lengths = None if valid is None else valid.sum(-1)  # valid frames are a prefix
        ze = self.norm(self.proj(x.transpose(1, 2)), lengths).transpose(1, 2).reshape(B * T, G, -1)
        books = self.codebook_vectors()
        with torch.no_grad():
            dist = (
                ze.float().pow(2).sum(-1, keepdim=True)
                - 2 * torch.einsum("ngd,gvd->ngv", ze.float(), books.float())
                + books.float().pow(2).sum(-1)[None]
            )
            ids = dist.argmin(-1)  # (N, G)
        zq = books[torch.arange(G, device=x.device)[None, :], ids]  # (N, G, d)
        rows, scored = _valid_rows(B * T, valid, x.device)
        with torch.no_grad():
            code_ppl = perplexity(F.one_hot(ids[rows], V).float().mean(0))
        latent = F.mse_loss(zq[rows].float(), ze[rows].detach().float())
        commit = F.mse_loss(ze[rows].float(), zq[rows].detach().float())
        out = zq.detach() + (ze - ze.detach())
        return QuantizerOutput(
            x=out.reshape(B, T, -1),
            codes=ids.view(B, T, G),
            best=ids.view(B, T, G),
            num_vars=V,
            code_perplexity=code_ppl,
            loss=latent + self.spec.gamma * commit,
            scored=scored,
        )


def build_quantizer(
    spec: GumbelQuantizer | KMeansQuantizer | NoQuantizer, in_dim: int
) -> nn.Module | None:
    """The quantizer module of a spec, or None for ``NoQuantizer``."""
    if isinstance(spec, GumbelQuantizer):
        return GumbelQuantizerModule(spec, in_dim)
    if isinstance(spec, KMeansQuantizer):
        return KMeansQuantizerModule(spec, in_dim)
    return None
