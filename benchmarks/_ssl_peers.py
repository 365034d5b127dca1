"""``bench_train_step.py --model data2vec|wavlm|best_rq``: one training step (forward + backward
+ AdamW + zero_grad) of ours vs a transformers peer built on the same config and batch.

transformers has the backbones (``Data2VecAudioModel``, ``WavLMModel``) but no pre-training
objective for them, so the peer's objective is written here, as small as the papers state it:

* **data2vec**: the HF student runs on the masked batch (``mask_time_indices``); an EMA copy of
  its transformer (the teacher, eval mode, no gradient) reads the unmasked projected features;
  targets = the top-K layers' FFN outputs (hooks on ``feed_forward``), instance-normalised and
  averaged; a linear ``final_proj`` regresses them at masked frames (L2 summed over dimensions,
  × 1/√D, / masked frames); after ``AdamW.step`` the teacher moves by τ. Ours: the
  ``data2vec_model`` preset (``TeacherTargets`` + ``Regression``) with ``after_update``.
* **wavlm**: HF ``WavLMModel`` on the masked batch + HuBERT's head (linear ``final_proj``,
  cosine logits against label embeddings / 0.1, cross-entropy at masked frames) on random
  cluster labels. Ours: the ``wavlm_model`` preset (``ClusterTargets`` + ``MaskedPrediction``
  + ``FeaturePenalty``; utterance mixing is done by the data loader, so neither step has it).
* **best_rq**: no transformers peer exists (BEST-RQ lives in NeMo / SpeechBrain); ours only.

HF's initial backbone weights are copied into ours (``load_hf_state_dict``), so both start from
the same parameters. Masks: HF ``_compute_mask_indices`` in NumPy (inside the HF step, as its
scripts do per batch) with the spec's prob / length / min masks; ours draws its own. The models
alternate step by step (order flips every step), once with 1 torch thread and once with 2, and
the medians of the timed steps are reported with the paired ratio (median over steps of
HF step i / ours step i).
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ssl_graph.nn import build_model, load_hf_state_dict
from ssl_graph.specs.components import SSLModel

PEERS = {"data2vec": "Data2VecAudioModel", "wavlm": "WavLMModel", "best_rq": None}


def build_spec(model: str, size: str, corpus) -> SSLModel:
    from ssl_graph.specs import components_presets as presets

    name = f"{model}_model"
    if not hasattr(presets, name):
        raise SystemExit(f"--model {model}: this branch has no components_presets.{name} (the "
                         "component lands with its helper's branch); nothing to time")
    if model == "wavlm":
        from ssl_graph.specs.nodes import MFCC, Corpus, KMeans, Labels

        labels = Labels(kmeans=KMeans(features=MFCC(corpus=Corpus(root=str(corpus))), k=100))
        return presets.wavlm_model(size, labels=labels)
    return getattr(presets, name)(size)


# ----------------------------------------------------------------------------- HF peers


class HFData2Vec(nn.Module):
    """HF student + EMA teacher of its transformer + linear regression head."""

    def __init__(self, hf, spec: SSLModel):
        super().__init__()
        t = spec.target
        self.hf, self.k, self.t = hf, t.top_k_layers, t
        self.teacher = copy.deepcopy(hf.encoder).requires_grad_(False).eval()
        self.final_proj = nn.Linear(hf.config.hidden_size, hf.config.hidden_size)
        self.updates = 0

    def forward(self, wave, mask):
        out = self.hf(wave, mask_time_indices=mask)
        with torch.no_grad():
            x = self.hf.feature_projection.projection(out.extract_features)
            captured: list[torch.Tensor] = []
            hooks = [layer.feed_forward.register_forward_hook(lambda m, i, o: captured.append(o))
                     for layer in self.teacher.layers[-self.k:]]
            try:
                self.teacher(x)
            finally:
                for h in hooks:
                    h.remove()
            y = sum(F.instance_norm(o.float().transpose(1, 2)).transpose(1, 2)
                    for o in captured) / len(captured)
        sel = mask.bool()
        pred = self.final_proj(out.last_hidden_state[sel])
        loss = (pred.float() - y[sel]).pow(2).sum() / math.sqrt(pred.size(-1))
        return loss, int(sel.sum())

    @torch.no_grad()
    def after_update(self):
        self.updates += 1
        tau = self.t.decay_at(self.updates)
        for (name, p_t), p_s in zip(self.teacher.named_parameters(),
                                    self.hf.encoder.parameters(), strict=True):
            if self.t.ema_layers_only and name.startswith("pos_conv_embed."):
                p_t.copy_(p_s)
            else:
                p_t.mul_(tau).add_(p_s, alpha=1 - tau)


class HFHubertHead(nn.Module):
    """HF backbone + HuBERT's masked-prediction head (cosine logits / 0.1, CE at masked frames)."""

    def __init__(self, hf, spec: SSLModel, classes: int):
        super().__init__()
        self.hf, self.classes = hf, classes
        self.final_proj = nn.Linear(hf.config.hidden_size, spec.final_dim)
        self.label_embs = nn.Parameter(torch.randn(classes, spec.final_dim) * 0.02)

    def forward(self, wave, mask, labels):
        out = self.hf(wave, mask_time_indices=mask)
        sel = mask.bool()
        proj = self.final_proj(out.last_hidden_state[sel])
        logits = F.cosine_similarity(proj[:, None].float(), self.label_embs[None].float(),
                                     dim=-1) / 0.1
        return F.cross_entropy(logits, labels[sel], reduction="sum"), int(sel.sum())


# ----------------------------------------------------------------------------- steps


def ours_step(model, opt, wave, targets, autocast, clock) -> Callable[[int], dict]:
    def run(step: int) -> dict:
        t0 = clock()
        model.set_num_updates(step)
        with autocast():
            out = model(wave, None, targets, mask_seed=step)
        (out.loss.float() / max(1, out.sample_size)).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if hasattr(model, "after_update"):
            model.after_update(step + 1)
        return {"total": clock() - t0, "masked": float(out.mask.float().mean())}

    return run


def hf_step(peer, opt, wave, spec, labels, autocast, clock) -> Callable[[int], dict]:
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices

    m, hf = spec.mask, peer.hf
    B = wave.size(0)
    T = int(hf._get_feat_extract_output_lengths(torch.tensor(wave.size(1))))

    def run(step: int) -> dict:
        t0 = clock()
        mask_np = _compute_mask_indices((B, T), m.prob, m.length, min_masks=m.min_masks)
        mask = torch.tensor(mask_np, device=wave.device)
        with autocast():
            loss, n = peer(wave, mask) if labels is None else peer(wave, mask, labels[:, :T])
        (loss.float() / max(1, n)).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if hasattr(peer, "after_update"):
            peer.after_update()
        return {"total": clock() - t0, "masked": float(mask_np.mean())}

    return run


# ----------------------------------------------------------------------------- main


def run(args, make_batch, Timer, corpus) -> None:
    import transformers

    from ssl_graph.model_io.hf_export import hf_config, hf_family

    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)  # HF's mask sampling draws from NumPy's global RNG
    spec = build_spec(args.model, args.size, corpus)
    ours = build_model(spec)
    peer_name = PEERS[args.model]
    peer = None
    ignored: list[str] = []
    attn = "-"
    if peer_name is not None:
        family = hf_family(spec, args.model)
        cfg = hf_config(spec, family)
        cfg._attn_implementation = args.hf_attn
        try:
            hf = getattr(transformers, peer_name)(cfg)
        except ValueError:  # WavLM's attention has one implementation (its gated bias)
            cfg._attn_implementation = "eager"
            hf = getattr(transformers, peer_name)(cfg)
        attn = hf.config._attn_implementation
        ignored = load_hf_state_dict(ours, hf.state_dict())  # same initial backbone
        if hasattr(ours, "reset_targets"):
            ours.reset_targets()  # the EMA teacher starts from the loaded student
        peer = (HFData2Vec(hf, spec) if args.model == "data2vec"
                else HFHubertHead(hf, spec, spec.num_classes()[0]))
        peer = peer.to(device).train()
    ours = ours.to(device).train()

    wave_np, source = make_batch(args.batch, args.seconds, args.audio, args.seed)
    wave = torch.from_numpy(wave_np).to(device)
    frames = spec.encoder.output_length(wave.size(1))
    targets = labels = None
    if args.model == "wavlm":  # random cluster ids at the labels' rate (MFCC: 100 Hz)
        k = spec.num_classes()[0]
        lab = torch.randint(0, k, (args.batch, wave.size(1) // 160),
                            generator=torch.Generator().manual_seed(args.seed)).to(device)
        targets, labels = [lab], lab[:, ::2]  # HF's frames are every second label
    clock = Timer(device)

    def autocast():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=args.bf16)

    print(f"{args.model} training step: ssl_graph vs "
          f"{'transformers.' + peer_name + ' + the objective above' if peer_name else 'nothing'}")
    print(f"  size={args.size}  device={device}  bf16={args.bf16}  torch {torch.__version__}"
          f"  transformers {transformers.__version__}  HF attention={attn}")
    print(f"  batch {args.batch} x {args.seconds:g} s = {wave.size(1)} samples -> {frames} frames;"
          f" audio: {source}; {args.steps} timed steps per model (median), {args.warmup} warm-up,"
          " alternating order")
    if peer_name is None:
        print("  no transformers peer exists for BEST-RQ (NeMo / SpeechBrain have it): ours only")
    p_ours = sum(p.numel() for p in ours.parameters() if p.requires_grad)
    print(f"  trainable parameters: ours {p_ours:,}"
          + (f"  HF peer {sum(p.numel() for p in peer.parameters() if p.requires_grad):,};"
             f" HF keys not copied: {ignored or 'none'}" if peer is not None else ""))
    print(f"  {'threads':>7s} {'ours ms':>9s} {'HF ms':>9s} {'HF/ours':>8s} {'paired':>7s}"
          f" {'masked ours/HF':>15s}")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        opt_ours = torch.optim.AdamW([p for p in ours.parameters() if p.requires_grad], lr=args.lr)
        runs = {"ours": ours_step(ours, opt_ours, wave, targets, autocast, clock)}
        if peer is not None:
            opt_hf = torch.optim.AdamW([p for p in peer.parameters() if p.requires_grad],
                                       lr=args.lr)
            runs["hf"] = hf_step(peer, opt_hf, wave, spec, labels, autocast, clock)
        samples: dict[str, list[dict]] = {k: [] for k in runs}
        for i in range(args.warmup + args.steps):
            for name in (list(runs) if i % 2 == 0 else list(runs)[::-1]):
                res = runs[name](i)
                if i >= args.warmup:
                    samples[name].append(res)

        def med(name: str, key: str = "total", samples=samples) -> float:
            return statistics.median(s[key] for s in samples[name])

        if peer is None:
            print(f"  {threads:7d} {1e3 * med('ours'):9.1f} {'-':>9s} {'-':>8s} {'-':>7s}"
                  f" {med('ours', 'masked'):7.2f}/-")
            continue
        paired = statistics.median(h["total"] / o["total"]
                                   for h, o in zip(samples["hf"], samples["ours"]))
        print(f"  {threads:7d} {1e3 * med('ours'):9.1f} {1e3 * med('hf'):9.1f}"
              f" {med('hf') / med('ours'):8.2f} {paired:7.2f}"
              f" {med('ours', 'masked'):7.2f}/{med('hf', 'masked'):.2f}")
    if peer is not None:
        print("  (HF/ours: ratio of the medians; paired: median of HF step i / ours step i, run"
              " back to back; > 1 means ours is faster)")
