"""Training step time: our wav2vec 2.0 vs ``transformers.Wav2Vec2ForPreTraining``.

Both models are built from one spec (``components_presets.wav2vec2_model(size)``): the HF
``Wav2Vec2Config`` is derived from it field by field (conv dims/kernels/strides, feature norm,
widths, depth, heads, FFN, positional conv, codebook G×V and code width, final_dim, 100
negatives, mask p=0.65 / length 10 / min 2 spans, diversity weight, temperature, every dropout)
and checked back with ``ssl_graph.specs.hf_config.hf_backbone``. HF's initial weights are then
copied into ours with ``load_hf_state_dict``, so both start from the same parameters (which
also checks that every tensor has the same shape); the parameter counts are printed.

One step, on the same (B, S) batch tensor (crops of ``data/demo/wav/*.flac``, or noise):

* ours: ``set_num_updates(step)``; ``out = model(wave, None, mask_seed=step)`` (time mask,
  Gumbel noise and distractors are drawn inside the forward); ``(out.loss / out.sample_size)
  .backward()``; ``AdamW.step()``; ``zero_grad(set_to_none=True)``.
* HF, as ``examples/pytorch/speech-pretraining/run_wav2vec2_pretraining_no_trainer.py``:
  ``_compute_mask_indices`` + ``_sample_negative_indices`` in NumPy on the CPU, tensors moved to
  the device (the *sampling* part; their data collator does it per batch), then
  ``set_gumbel_temperature``, ``model(wave, mask_time_indices=..., sampled_negative_indices=...)``,
  ``(loss / n_masked).backward()`` (the script scales the gradients by 1/n_masked instead),
  ``AdamW.step()``, ``zero_grad(set_to_none=True)``. ``HF model`` is the step without the
  sampling part, ``HF total`` with it.

The two models run alternately (the order flips every step) so background load hits both
alike; warm-up steps are excluded (they include Numba's compile / cache load) and the median
of the timed steps is reported. On CUDA the device is synchronised at both ends of a timed
region; ``--bf16`` runs the forward under bf16 autocast for both models.

FLOPs and MFU: one extra, untimed step of each model runs under
``torch.utils.flop_counter.FlopCounterMode`` (forward + backward: the matmuls, convolutions
and attention it counts; element-wise ops, norms and the optimizer count zero; with layerdrop the
count is brought to the expected number of layers). Achieved FLOP/s = that count / the median
step time. The machine's dense-op rates are measured in the same run, between the timed steps
(same background load), same threads and dtype: ``torch.matmul`` in the transformer's shapes
(B·T, D)×(D, FFN), (B·T, FFN)×(FFN, D), (B·T, D)×(D, D), and ``conv1d`` of the encoder's first
512 -> 512 kernel-3 layer on the step's batch. MFU = achieved / the best matmul rate (the GEMM
rate); "of bound" = (conv FLOPs / conv1d rate + other FLOPs / GEMM rate) / step time, i.e. how
close the step is to running every counted FLOP at the machine's rate for its kind. Each side
uses its own count (HF scores all B·T frames, ours only the masked ones). One torch thread by
default on the CPU (``--threads``). "paired" is the median over steps of HF step i / ours step i (run back
to back), less sensitive to load changes than the ratio of the medians.

The same run then prints the 1 -> 2 process scaling of a training node under torchrun
(``bench_ddp_scaling.py``: same spec and global batch; ``--no-scaling`` skips it).

What the HF model cannot express (printed as well):

* the feature penalty (``FeaturePenalty(weight=10)``: mean(z²) of the encoder output) and
  ``feature_grad_mult=0.1`` (encoder gradient scaled by 0.1); ``--match-hf`` removes both
  from our spec so the two objectives are the same;
* the masks come from different algorithms with the same parameters (ours: fairseq
  ``compute_mask_indices`` semantics, ``require_same_masks``; HF: its own); the mean masked
  fraction of each is printed, as it sets the size of the contrastive problem;
* implementation, not configuration: HF scores cosine logits for all B·T frames and ignores
  unmasked ones in the cross-entropy, ours only scores masked frames; HF's feature encoder sets
  ``requires_grad`` on the input wave in training, so its backward also computes the gradient
  of the wave; ours also computes the code perplexity and accuracy for logging.

The Gumbel temperature is the same on both sides: ours follows max(start·decay^step, end) and
HF is given that value each step with ``set_gumbel_temperature``, as its script does.

``--model data2vec|wavlm|best_rq`` times those models instead, against a transformers peer
where one exists (``Data2VecAudioModel`` / ``WavLMModel`` + the objective, see
``benchmarks/_ssl_peers.py``; BEST-RQ has none), with 1 and with 2 torch threads.

    python benchmarks/bench_train_step.py                       # tiny, CPU
    python benchmarks/bench_train_step.py --model wavlm --steps 10
    python benchmarks/bench_train_step.py --batch 8 --seconds 4 --steps 30
    python benchmarks/bench_train_step.py --size base --batch 2 --seconds 3 --steps 3 --warmup 1
    python benchmarks/bench_train_step.py --size base --device cuda --bf16 --batch 8 --seconds 15
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from ssl_graph.nn import build_model
from ssl_graph.nn.hf_mapping import hf_name, load_hf_state_dict
from ssl_graph.specs.components import (
    Contrastive,
    Diversity,
    FeaturePenalty,
    GumbelQuantizer,
    SSLModel,
    Transformer,
)
from ssl_graph.specs.components_presets import wav2vec2_model
from ssl_graph.specs.hf_config import hf_backbone

SAMPLE_RATE = 16000
CORPUS = ROOT / "data" / "demo" / "wav"


# ----------------------------------------------------------------------------- configs


def _loss(spec: SSLModel, kind: type):
    return next((loss for loss in spec.losses if isinstance(loss, kind)), None)


def hf_config(spec: SSLModel, attn: str):
    """A ``Wav2Vec2Config`` with the same architecture, objective and dropouts as ``spec``."""
    from ssl_graph.model_io.hf_export import hf_config

    ctx, q, m = spec.context, spec.quantizer, spec.mask
    contrastive, diversity = _loss(spec, Contrastive), _loss(spec, Diversity)
    if not isinstance(ctx, Transformer) or not isinstance(q, GumbelQuantizer) or m is None:
        raise SystemExit("the spec is not a wav2vec 2.0 model (Transformer + Gumbel + mask)")
    if contrastive is None or contrastive.cross_sample_negatives:
        raise SystemExit("HF samples same-utterance distractors only")
    if q.combine_groups or q.depth != 1:
        raise SystemExit("HF's quantizer has one linear layer and one codebook per group")
    if spec.feature_layer_norm is False or spec.quantize_input:
        raise SystemExit("HF layer-norms the features and quantizes the targets only")
    # the backbone and quantizer fields are the exporter's; the pre-training ones are added here
    cfg = hf_config(
        spec, "wav2vec2",
        feat_quantizer_dropout=spec.dropout_features,
        apply_spec_augment=True,
        mask_time_prob=m.prob,
        mask_time_length=m.length,
        mask_time_min_masks=m.min_masks,
        mask_feature_prob=m.channel_prob,
        mask_feature_length=m.channel_length,
        num_negatives=contrastive.negatives,
        contrastive_logits_temperature=contrastive.temperature,
        diversity_loss_weight=diversity.weight if diversity else 0.0,
    )
    cfg._attn_implementation = attn
    return cfg


def config_differences(spec: SSLModel, cfg, match_hf: bool) -> list[str]:
    """What differs between the two objectives/architectures after the mapping."""
    diffs: list[str] = []
    back = hf_backbone(cfg)  # HF config → our fields: must give back our spec's pieces
    enc = spec.encoder
    if enc.normalize_wave:  # HF leaves it to its feature extractor; our batch is normalised
        enc = enc.with_(normalize_wave=False)
        diffs.append(
            "ours layer-norms each wave in the model (normalize_wave); HF does it in its "
            "feature extractor (the benchmark batch is normalised already)"
        )
    for name, ours in (("encoder", enc), ("context", spec.context)):
        theirs = back[name].model_dump()
        for field, value in ours.model_dump().items():
            if theirs.get(field) != value:
                diffs.append(f"{name}.{field}: ours {value!r}, HF {theirs.get(field)!r}")
    for name in ("dropout_input", "feature_layer_norm"):
        if back[name] != getattr(spec, name):
            diffs.append(f"{name}: ours {getattr(spec, name)!r}, HF {back[name]!r}")
    if spec.dropout_context:
        diffs.append(
            f"dropout_context={spec.dropout_context}: HF has no dropout after the transformer"
        )
    if spec.mask.channel_prob and spec.mask.channel_type != "static":
        diffs.append("channel mask type: HF only has static spans")
    if spec.encoder.dropout:
        diffs.append("encoder.dropout: HF has no dropout in the conv encoder")
    if not match_hf:
        pen = _loss(spec, FeaturePenalty)
        if pen is not None:
            diffs.append(
                f"FeaturePenalty(weight={pen.weight}) (mean z² of the encoder output): "
                "no HF equivalent (--match-hf drops it)"
            )
        if spec.feature_grad_mult != 1.0:
            diffs.append(
                f"feature_grad_mult={spec.feature_grad_mult} (encoder gradient scale): "
                "no HF equivalent, HF scales by 1 (--match-hf sets 1.0)"
            )
    diffs.append(
        f"span-mask algorithm: ours fairseq compute_mask_indices (mask_type="
        f"{spec.mask.mask_type}, require_same_masks={spec.mask.require_same_masks}), "
        "HF _compute_mask_indices; same prob/length/min_masks, see masked fractions"
    )
    return diffs


# ----------------------------------------------------------------------------- data


def make_batch(batch: int, seconds: float, source: str, seed: int) -> tuple[np.ndarray, str]:
    """(B, S) float32 crops, each normalised to zero mean / unit variance."""
    n = round(seconds * SAMPLE_RATE)
    rng = np.random.default_rng(seed)
    files = sorted(CORPUS.glob("*.flac")) if source == "demo" and CORPUS.is_dir() else []
    audio, what = None, "white noise"
    if files:
        try:
            import soundfile as sf
        except ImportError:
            files = []
        else:
            chunks, total = [], 0
            for path in files:
                data, sr = sf.read(str(path), dtype="float32", always_2d=True)
                chunks.append(data.mean(1))
                total += len(chunks[-1])
                if total >= 4 * batch * n:
                    break
            audio = np.concatenate(chunks)
            what = f"crops of {len(chunks)} files in data/demo/wav ({sr} Hz)"
    if audio is None:
        audio = rng.standard_normal(batch * n + 1).astype(np.float32)
    if len(audio) < n + 1:
        audio = np.tile(audio, n // len(audio) + 2)
    starts = rng.integers(0, len(audio) - n, size=batch)
    wave = np.stack([audio[s : s + n] for s in starts]).astype(np.float32)
    wave = (wave - wave.mean(1, keepdims=True)) / (wave.std(1, keepdims=True) + 1e-5)
    return wave, what


# ----------------------------------------------------------------------------- steps


class Timer:
    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __call__(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


def ours_step(model, opt, wave: torch.Tensor, autocast: Callable, clock: Timer):
    def run(step: int) -> dict[str, float]:
        t0 = clock()
        model.set_num_updates(step)
        with autocast():
            out = model(wave, None, mask_seed=step)
        loss = out.loss.float() / max(1, out.sample_size)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t1 = clock()
        return {
            "total": t1 - t0,
            "loss": float(loss.detach()),
            "masked": float(out.mask.float().mean()),
        }

    return run


def hf_step(model, opt, wave: torch.Tensor, spec: SSLModel, autocast: Callable, clock: Timer):
    from transformers.models.wav2vec2.modeling_wav2vec2 import (
        _compute_mask_indices,
        _sample_negative_indices,
    )

    cfg, device = model.config, wave.device
    B = wave.size(0)
    T = int(model._get_feat_extract_output_lengths(torch.tensor(wave.size(1))))

    def run(step: int) -> dict[str, float]:
        t0 = clock()
        mask_np = _compute_mask_indices(
            (B, T), cfg.mask_time_prob, cfg.mask_time_length, min_masks=cfg.mask_time_min_masks
        )
        neg_np = _sample_negative_indices((B, T), cfg.num_negatives, mask_np)
        n_masked = int(mask_np.sum())
        mask = torch.tensor(mask_np, dtype=torch.long, device=device)
        negs = torch.tensor(neg_np, dtype=torch.long, device=device)
        t1 = clock()
        model.set_gumbel_temperature(spec.quantizer.temperature_at(step))
        with autocast():
            out = model(wave, mask_time_indices=mask, sampled_negative_indices=negs)
        loss = out.loss.float() / max(1, n_masked)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t2 = clock()
        return {
            "total": t2 - t0,
            "model": t2 - t1,
            "sampling": t1 - t0,
            "loss": float(loss.detach()),
            "masked": float(mask_np.mean()),
        }

    return run


# ----------------------------------------------------------------------------- FLOPs


def count_flops(run: Callable[[int], dict], step: int, layers: str, n_layers: int,
                layerdrop: float) -> tuple[float, int]:
    """(all, convolution) FLOPs of one training step (forward + backward), ``FlopCounterMode``.

    With layerdrop the counted step ran a random number of transformer layers (the modules
    named ``layers`` + index); the total is brought to the expectation, ``n_layers`` ×
    (1 - layerdrop) layers at the counted step's mean cost per layer.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run(step)
    counts = counter.get_flop_counts()
    conv = sum(n for op, n in counts.get("Global", {}).items() if "convolution" in str(op))
    total = float(counter.get_total_flops())
    ran = [sum(ops.values()) for key, ops in counts.items()
           if re.fullmatch(re.escape(layers) + r"\d+", key)]
    if layerdrop and ran:
        total += (n_layers * (1 - layerdrop) - len(ran)) * sum(ran) / len(ran)
    return total, conv


class DenseRates:
    """The machine's dense-op rate in the step's own shapes, sampled between the timed steps.

    ``torch.matmul`` for the transformer's (M, K, N) GEMMs and ``conv1d`` for the encoder's
    first 512 -> 512, kernel 3, stride 2 layer on the step's batch (oneDNN: on this AMD CPU
    faster than MKL's GEMM), each
    timed ``reps`` times per call; ``rate(key)`` is the median over all calls, so the bound sees
    the same background load as the steps it is compared with.
    """

    def __init__(self, shapes, conv, dtype, device, clock: Timer, reps: int = 3):
        self.clock, self.reps = clock, reps
        self.ops: dict[str, tuple[Callable[[], object], float]] = {}
        for m, k, n in shapes:
            a = torch.randn(m, k, device=device, dtype=dtype)
            b = torch.randn(k, n, device=device, dtype=dtype)
            self.ops[f"matmul {m}x{k}x{n}"] = (lambda a=a, b=b: torch.matmul(a, b), 2 * m * k * n)
        if conv is not None:
            batch, c_in, c_out, kernel, stride, length = conv
            x = torch.randn(batch, c_in, length, device=device, dtype=dtype)
            w = torch.randn(c_out, c_in, kernel, device=device, dtype=dtype)
            out = (length - kernel) // stride + 1
            self.ops[f"conv1d {batch}x{c_in}->{c_out} k{kernel} s{stride} x{out}"] = (
                lambda x=x, w=w: torch.nn.functional.conv1d(x, w, stride=stride),
                2 * batch * c_in * c_out * kernel * out,
            )
        self.samples: dict[str, list[float]] = {key: [] for key in self.ops}
        for fn, _ in self.ops.values():  # warm-up (oneDNN primitive creation)
            fn()

    def sample(self) -> None:
        for key, (fn, flops) in self.ops.items():
            for _ in range(self.reps):
                t0 = self.clock()
                fn()
                self.samples[key].append(flops / (self.clock() - t0))

    def rate(self, key: str) -> float:
        return statistics.median(self.samples[key])

    def best(self) -> float:
        return max(self.rate(key) for key in self.ops)


def blas_info() -> str:
    """The BLAS / OpenMP pools and their thread counts (threadpoolctl), or torch's own view."""
    info = torch.__config__.parallel_info().splitlines()
    keep = [x.strip() for x in info if "backend" in x or "get_num_threads" in x]
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pools = []
    else:
        pools = [
            f"{p.get('internal_api')} {p.get('version') or ''} ({p.get('num_threads')} threads)"
            for p in threadpool_info()
        ]
    mkl = "MKL" if torch.backends.mkl.is_available() else "no MKL"
    return "; ".join(keep + [mkl, f"mkldnn={torch.backends.mkldnn.is_available()}"] + pools)


# ----------------------------------------------------------------------------- main


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> bool:
    """Run the comparison; True where the DDP scaling run should follow (wav2vec 2.0)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("wav2vec2", "data2vec", "wavlm", "best_rq"),
                    default="wav2vec2", help="which model's step to time (see _ssl_peers.py)")
    ap.add_argument("--size", choices=("tiny", "base", "large"), default="tiny")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast for both forwards")
    ap.add_argument("--batch", type=int, default=8, help="utterances per batch")
    ap.add_argument("--seconds", type=float, default=4.0, help="seconds per utterance")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per model (median)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per model")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: 1 on the CPU, as is on a GPU)")
    ap.add_argument("--audio", choices=("demo", "random"), default="demo")
    ap.add_argument("--hf-attn", default="sdpa", help="HF attention: sdpa, eager, ...")
    ap.add_argument(
        "--match-hf",
        action="store_true",
        help="drop our FeaturePenalty and set feature_grad_mult=1 (HF's objective)",
    )
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-scaling", action="store_true",
                    help="skip the 1 -> 2 process DDP scaling run (bench_ddp_scaling.py)")
    args = ap.parse_args()
    if args.model != "wav2vec2":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import _ssl_peers

        _ssl_peers.run(args, make_batch, Timer, CORPUS)
        return False

    import transformers
    from transformers import Wav2Vec2ForPreTraining

    device = torch.device(args.device)
    threads = args.threads or (1 if device.type == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)  # HF's mask and negative sampling draw from NumPy's global RNG

    spec = wav2vec2_model(args.size)
    if args.match_hf:
        spec = spec.with_(
            losses=tuple(x for x in spec.losses if not isinstance(x, FeaturePenalty)),
            feature_grad_mult=1.0,
        )
    cfg = hf_config(spec, args.hf_attn)
    diffs = config_differences(spec, cfg, args.match_hf)

    hf = Wav2Vec2ForPreTraining(cfg)
    ours = build_model(spec)
    ignored = load_hf_state_dict(ours, hf.state_dict())  # same initial weights
    mapped = {hf_name(k) for k in hf.state_dict()}
    not_from_hf = [k for k in ours.state_dict() if k not in mapped]
    hf, ours = hf.to(device).train(), ours.to(device).train()
    opt_hf = torch.optim.AdamW(hf.parameters(), lr=args.lr)
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=args.lr)

    wave_np, source = make_batch(args.batch, args.seconds, args.audio, args.seed)
    wave = torch.from_numpy(wave_np).to(device)
    frames = spec.encoder.output_length(wave.size(1))
    clock = Timer(device)

    def autocast():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=args.bf16)

    runs = {
        "ours": ours_step(ours, opt_ours, wave, autocast, clock),
        "hf": hf_step(hf, opt_hf, wave, spec, autocast, clock),
    }
    d_model, ffn = spec.context.dim, spec.context.ffn_dim
    bt = args.batch * frames
    conv, length, c_in = None, wave.size(1), 1  # the first c -> c, kernel 3 layer, as in the step
    for c_out, k, st in spec.encoder.conv_layers:
        if conv is None and k == 3 and c_in > 1:
            conv = (args.batch, c_in, c_out, k, st, length)
        length, c_in = (length - k) // st + 1, c_out
    rates = DenseRates(
        [(bt, d_model, ffn), (bt, ffn, d_model), (bt, d_model, d_model)],
        conv, torch.bfloat16 if args.bf16 else torch.float32, device, clock,
    )
    samples: dict[str, list[dict[str, float]]] = {k: [] for k in runs}
    peak: dict[str, int] = {k: 0 for k in runs}
    t_start = time.perf_counter()
    for i in range(args.warmup + args.steps):
        order = ("ours", "hf") if i % 2 == 0 else ("hf", "ours")
        for name in order:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
            res = runs[name](i)
            if device.type == "cuda":
                peak[name] = max(peak[name], torch.cuda.max_memory_allocated(device) - base)
            if i >= args.warmup:
                samples[name].append(res)
        if i >= args.warmup:
            rates.sample()
    wall = time.perf_counter() - t_start
    step = args.warmup + args.steps
    n_layers, layerdrop = spec.context.layers, spec.context.layerdrop
    flops = {
        "ours": count_flops(runs["ours"], step, "SSLNet.context.layers.", n_layers, layerdrop),
        "hf": count_flops(runs["hf"], step, "Wav2Vec2ForPreTraining.wav2vec2.encoder.layers.",
                          n_layers, cfg.layerdrop),
    }
    conv_keys = [key for key in rates.ops if key.startswith("conv")]
    gemm_rate = max(rates.rate(key) for key in rates.ops if key.startswith("matmul"))
    conv_rate = rates.rate(conv_keys[0]) if conv_keys else gemm_rate

    def med(name: str, key: str) -> float:
        return statistics.median(s[key] for s in samples[name])

    def spread(name: str, key: str) -> str:
        xs = sorted(s[key] for s in samples[name])
        q1, q3 = xs[len(xs) // 4], xs[(3 * len(xs)) // 4]
        return f"[{1e3 * q1:8.1f}, {1e3 * q3:8.1f}]"

    ours_ms = med("ours", "total")
    rows = [
        ("ours (mask + distractors in forward)", med("ours", "total"), spread("ours", "total")),
        ("HF total (NumPy sampling + model)", med("hf", "total"), spread("hf", "total")),
        ("HF model only (no sampling)", med("hf", "model"), spread("hf", "model")),
        ("HF sampling only", med("hf", "sampling"), spread("hf", "sampling")),
    ]
    print("wav2vec 2.0 training step: ssl_graph vs transformers.Wav2Vec2ForPreTraining")
    print(
        f"  size={args.size}{' (--match-hf)' if args.match_hf else ''}  device={device}"
        f"{' ' + torch.cuda.get_device_name(device) if device.type == 'cuda' else ''}"
        f"  bf16={args.bf16}  torch threads={torch.get_num_threads()}"
        f"  HF attention={hf.config._attn_implementation}"
    )
    print(
        f"  torch {torch.__version__}  transformers {transformers.__version__}"
        f"  numpy {np.__version__}"
    )
    print(
        f"  batch {args.batch} x {args.seconds:g} s = {wave.size(1)} samples -> {frames} frames;"
        f" audio: {source}"
    )
    print(
        f"  {args.steps} timed steps per model (median, IQR), {args.warmup} warm-up, "
        f"alternating order; total wall {wall:.1f} s"
    )
    print()
    def paired(key: str) -> float:  # the two runs of one step are adjacent in time
        return statistics.median(
            h[key] / o["total"] for h, o in zip(samples["hf"], samples["ours"])
        )

    print(f"  {'':40s} {'ms/step':>9s} {'IQR ms':>21s} {'HF/ours':>8s} {'paired':>7s}")
    for (label, ms, iqr), key in zip(rows, (None, "total", "model", None)):
        ratio = "" if label.startswith("ours") else f"{ms / ours_ms:8.2f}"
        pair = f"{paired(key):7.2f}" if key else ""
        print(f"  {label:40s} {1e3 * ms:9.1f} {iqr} {ratio} {pair}")
    print(
        "  (HF/ours: ratio of the medians; paired: median over steps of HF step i / ours step i,"
        " which ran back to back)"
    )
    print()
    print(f"  threads/BLAS: {blas_info()}")
    dtype = "bf16" if args.bf16 else "fp32"
    print(f"  machine's dense-op rate ({dtype}, GFLOP/s, median of {args.steps} x {rates.reps},"
          " sampled between the timed steps):")
    print("    " + "  ".join(f"{key}: {rates.rate(key) / 1e9:.1f}" for key in rates.ops))
    print(
        f"  {'':26s} {'GFLOP/step':>10s} {'(conv)':>7s} {'GFLOP/s':>8s} {'MFU':>6s}"
        f" {'bound ms':>9s} {'of bound':>8s}"
    )
    for name, label, ms in (
        ("ours", "ours", med("ours", "total")),
        ("hf", "HF model only", med("hf", "model")),
        ("hf", "HF total", med("hf", "total")),
    ):
        total, conv_flops = flops[name]
        achieved = total / ms
        bound = conv_flops / conv_rate + (total - conv_flops) / gemm_rate
        print(
            f"  {label:26s} {total / 1e9:10.1f} {conv_flops / 1e9:7.1f} {achieved / 1e9:8.1f}"
            f" {100 * achieved / gemm_rate:5.1f}% {1e3 * bound:9.1f} {100 * bound / ms:7.1f}%"
        )
    print(
        f"  FLOPs: FlopCounterMode on one extra step, fwd+bwd (matmul/conv/attention; element-wise,"
        f" norms, optimizer count 0). MFU = achieved / GEMM rate ({gemm_rate / 1e9:.1f} GFLOP/s,"
        f" best matmul above). bound = conv FLOPs / conv1d rate + other FLOPs / GEMM rate;"
        f" of bound = bound / step time."
    )
    print()
    p_ours, p_hf = n_params(ours), n_params(hf)
    print(
        f"  parameters: ours {p_ours:,}  HF {p_hf:,}  (diff {p_ours - p_hf:+,});"
        f" initial weights copied HF -> ours, ignored HF keys: {ignored or 'none'},"
        f" ours not set from HF: {not_from_hf or 'none'}"
    )
    print(
        f"  masked fraction (mean): ours {statistics.mean(s['masked'] for s in samples['ours']):.3f}"
        f"  HF {statistics.mean(s['masked'] for s in samples['hf']):.3f}"
    )
    print(
        f"  loss per prediction, last step: ours {samples['ours'][-1]['loss']:.3f}"
        f"  HF {samples['hf'][-1]['loss']:.3f}"
    )
    if device.type == "cuda":
        print(
            f"  peak step memory above resident: ours {peak['ours'] / 2**20:.0f} MiB"
            f"  HF {peak['hf'] / 2**20:.0f} MiB"
        )
    print("  differences the HF config cannot remove:")
    for d in diffs:
        print(f"    - {d}")
    print(
        "    - implementation, not config: HF scores cosine logits for all B·T frames "
        "(unmasked ones ignored by the CE), ours only masked frames; HF sets requires_grad on "
        "the input wave in training (one extra input-gradient conv); ours also computes code "
        "perplexity and accuracy for logging"
    )
    return True


def scaling() -> None:
    """The same run's 1 -> 2 process scaling of a training node (torchrun, gloo on CPU)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_ddp_scaling

    print("\n1 -> 2 process DDP scaling (bench_ddp_scaling.py):")
    bench_ddp_scaling.report_rounds(bench_ddp_scaling.measure_rounds(), 30, 16.0)


if __name__ == "__main__":
    if main() and "--no-scaling" not in sys.argv:
        scaling()
