"""Batch composition: discarded audio, padding and crop length of our batching vs fairseq's rule.

For each corpus × recipe it prints, over one epoch:

* ``ours``: ``ssl_graph.train.batching`` (``CropPlan`` for pre-training, ``PaddedPlan`` for
  fine-tuning), the global batch of ``batch_seconds``;
* ``fairseq``: fairseq's rule applied to the same lengths, written here from its description in
  reference/ssl_models.md §7: utterances sorted by ``min(length, max_sample_size)``, cut into
  per-GPU batches with ``rows × longest ≤ max_tokens`` rounded to ``required_batch_size_multiple``
  (8), every pre-training batch cropped to its shortest; GPUs × ``max_tokens`` = our global batch
  (HuBERT BASE: 32 × 1.4M samples = 2800 s; wav2vec 2.0 base_100h fine-tuning: 8 × 3.2M = 1600 s;
  tiny recipes: one GPU);
* ``before``: the rule this replaced (one random draw fills the global batch, every row cropped to
  the shortest drawn; fine-tuning: random utterances padded), over 200 steps.

``discarded`` is the audio lost to cropping rows to their batch's (group's) shortest, as a share of
the audio the ``crop_seconds`` (``max_sample_size``) cap leaves; ``capped`` is what that cap
removes, as a share of all the audio of the usable (≥ ``min_seconds``) utterances; ``padding`` is
the share of padded samples in fine-tuning batches (pre-training crops pad nothing); ``mean row s``
is the mean crop (pre-training) or utterance (fine-tuning) length.

Corpora: the bundled demo (155 utterances, 2-6 s) and a synthetic stand-in for LibriSpeech 960 h.
**The LibriSpeech lengths are not the real per-utterance durations** (not available offline): they
are a 3-part parametric fit to the statistics in reference/ssl_models.md §7 (281,241 utterances,
mean ≈ 12.3 s, most between 10 and 17 s, a tail down to ~1 s and up to ~35 s): 68 % normal
(13.75 s, sd 1.6 s) clipped to [10, 17] s, 27 % a ramp rising from 1 s to 10 s (1 + 9·Beta(2, 1)), 5 %
a tail falling from 17 s to 35 s (17 + 18·Beta(1, 3)); seed 0. The script prints the stand-in's
own mean, share in [10, 17] s and range so the match can be checked.

    python benchmarks/bench_batching.py

The last line is ``discarded=<pct> padding=<pct> mean_crop_s=<s>`` for HuBERT BASE on the
LibriSpeech-like lengths (padding: BASE fine-tuning, 1600 s batches).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ssl_graph.train.batching import LengthPlan, groups_per_step

SR = 16000
ROOT = Path(__file__).resolve().parents[1]
#: (name, batch_seconds, group_seconds, crop_seconds, min_seconds, fairseq GPUs), as the presets
PRETRAIN = [("tiny", 12.0, None, 2.0, 1.0, 1),
            ("HuBERT BASE", 2800.0, 87.5, 250_000 / SR, 2.0, 32)]
#: (name, batch_seconds, group_seconds, fairseq GPUs)
FINETUNE = [("tiny", 16.0, None, 1), ("BASE 100h", 1600.0, 200.0, 8)]


def librispeech_like(n: int = 281_241, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    part = rng.choice(3, size=n, p=[0.68, 0.27, 0.05])
    body = np.clip(rng.normal(13.75, 1.6, n), 10.0, 17.0)
    short = 1.0 + 9.0 * rng.beta(2.0, 1.0, n)
    long = 17.0 + 18.0 * rng.beta(1.0, 3.0, n)
    secs = np.where(part == 0, body, np.where(part == 1, short, long))
    return np.round(secs * SR).astype(np.int64)


def demo_lengths() -> np.ndarray:
    import soundfile as sf

    return np.array([sf.info(str(f)).frames for f in sorted((ROOT / "data/demo/wav").glob("*.flac"))])


# ------------------------------------------------------------------ metrics
def crop_stats(rows: list[tuple[np.ndarray, int]], lengths: np.ndarray, cap: int) -> dict:
    """rows: (lengths of a group's rows, crop width) per group, covering ``lengths`` once."""
    capped = np.minimum(lengths, cap)
    kept = sum(len(g) * w for g, w in rows)
    n = sum(len(g) for g, _ in rows)
    return {"discarded": 100 * (1 - kept / capped.sum()),
            "capped": 100 * (1 - capped.sum() / lengths.sum()),
            "padding": 0.0, "mean_crop_s": kept / n / SR}


def pad_stats(batches: list[np.ndarray]) -> dict:
    total = sum(len(b) * b.max() for b in batches)
    audio = sum(b.sum() for b in batches)
    return {"discarded": 0.0, "capped": 0.0, "padding": 100 * (1 - audio / total),
            "mean_crop_s": audio / sum(len(b) for b in batches) / SR}


# ------------------------------------------------------------------ the three rules
def _plan(lengths, bs, gs, **crop) -> tuple[LengthPlan, np.ndarray]:
    plan = LengthPlan({f"u{i:07d}": int(n) for i, n in enumerate(lengths)},
                      group_budget=int((gs or bs) * SR), groups_per_step=groups_per_step(bs, gs),
                      seed=0, **crop)
    return plan, np.sort(plan.sizes)[::-1]  # one epoch: every epoch has these groups


def ours_crop(lengths, bs, gs, cap, min_len):
    plan, srt = _plan(lengths, bs, gs, max_samples=cap, min_samples=min_len)
    return crop_stats([(srt[lo:hi], int(srt[hi - 1])) for lo, hi in plan.cuts],
                      lengths[lengths >= min_len], cap)


def ours_pad(lengths, bs, gs):
    plan, srt = _plan(lengths, bs, gs)
    return pad_stats([srt[lo:hi] for lo, hi in plan.cuts])


def fairseq_batches(sizes_desc: np.ndarray, max_tokens: int, multiple: int = 8) -> list[tuple]:
    """fairseq's batch_by_size over sizes sorted longest first: add items while
    (rows + 1) × longest ≤ max_tokens; on overflow keep a multiple of ``multiple`` rows (or all,
    when fewer) and carry the rest into the next batch."""
    out, batch, longest = [], [], 0
    for i, s in enumerate(sizes_desc):
        longest_new = max(longest, int(s))
        if batch and (len(batch) + 1) * longest_new > max_tokens:
            keep = max(multiple * (len(batch) // multiple), len(batch) % multiple)
            out.append((batch[0], batch[0] + keep))
            batch = batch[keep:]
            longest = int(sizes_desc[batch[0]]) if batch else 0
            longest_new = max(longest, int(s))
        batch.append(i)
        longest = longest_new
    if batch:
        out.append((batch[0], batch[-1] + 1))
    return out


def fairseq_crop(lengths, budget, cap, min_len, gpus):
    usable = lengths[lengths >= min_len]
    capped = np.sort(np.minimum(usable, cap))[::-1]
    rows = [(capped[lo:hi], int(capped[hi - 1]))
            for lo, hi in fairseq_batches(capped, budget // gpus)]
    return crop_stats(rows, usable, cap)


def fairseq_pad(lengths, budget, gpus):
    srt = np.sort(lengths)[::-1]
    return pad_stats([srt[lo:hi] for lo, hi in fairseq_batches(srt, budget // gpus)])


def before_crop(lengths, budget, cap, min_len, steps=200):
    usable = lengths[lengths >= min_len]
    rows = []
    for step in range(steps):
        rng = np.random.default_rng([0, step])
        chosen, size = [], cap
        for i in rng.permutation(len(usable))[:10_000]:
            new = min(size, int(usable[i]))
            if chosen and (len(chosen) + 1) * new > budget:
                break
            chosen.append(int(usable[i]))
            size = new
        rows.append((np.array(chosen), size))
    drawn = np.concatenate([g for g, _ in rows])
    capped = np.minimum(drawn, cap)
    kept = sum(len(g) * w for g, w in rows)
    return {"discarded": 100 * (1 - kept / capped.sum()),
            "capped": 100 * (1 - capped.sum() / drawn.sum()), "padding": 0.0,
            "mean_crop_s": kept / len(drawn) / SR}


def before_pad(lengths, budget, steps=200):
    batches = []
    for step in range(steps):
        rng = np.random.default_rng([0, step])
        chosen, longest = [], 0
        for i in rng.permutation(len(lengths))[:10_000]:
            new = max(longest, int(lengths[i]))
            if chosen and (len(chosen) + 1) * new > budget:
                break
            chosen.append(int(lengths[i]))
            longest = new
        batches.append(np.array(chosen))
    return pad_stats(batches)


# ------------------------------------------------------------------ table
def main() -> None:
    ls = librispeech_like()
    s = ls / SR
    print(f"LibriSpeech-like stand-in: {len(ls):,} utterances, {s.sum() / 3600:.0f} h, mean "
          f"{s.mean():.2f} s, {100 * np.mean((s >= 10) & (s <= 17)):.0f} % in [10, 17] s, "
          f"range {s.min():.1f}-{s.max():.1f} s, {100 * np.mean(s > 250_000 / SR):.0f} % over "
          "15.6 s")
    corpora = [("demo", demo_lengths()), ("LS-like", ls)]
    head = (f"{'corpus':<8} {'recipe':<12} {'rule':<8} {'discarded %':>11} {'capped %':>9} "
            f"{'padding %':>9} {'mean row s':>11}")
    print("\npre-training (crops)\n" + head)
    goal = {}
    worse = []
    for cname, lengths in corpora:
        for rname, bs, gs, cs, ms, gpus in PRETRAIN:
            budget, cap, mn = int(bs * SR), int(cs * SR), int(ms * SR)
            res = {"ours": ours_crop(lengths, bs, gs, cap, mn),
                   "fairseq": fairseq_crop(lengths, budget, cap, mn, gpus),
                   "before": before_crop(lengths, budget, cap, mn)}
            for rule, r in res.items():
                print(f"{cname:<8} {rname:<12} {rule:<8} {r['discarded']:>11.3f} "
                      f"{r['capped']:>9.1f} {r['padding']:>9.3f} {r['mean_crop_s']:>11.2f}")
            o, f = res["ours"], res["fairseq"]
            if o["discarded"] > f["discarded"] + 0.005 or o["mean_crop_s"] < f["mean_crop_s"] - 0.005:
                worse.append(f"{cname} {rname} pre-training")
            if cname == "LS-like" and rname == "HuBERT BASE":
                goal.update(discarded=o["discarded"], mean_crop_s=o["mean_crop_s"])
    print("\nfine-tuning (whole utterances, padded)\n" + head)
    for cname, lengths in corpora:
        for rname, bs, gs, gpus in FINETUNE:
            budget = int(bs * SR)
            res = {"ours": ours_pad(lengths, bs, gs), "fairseq": fairseq_pad(lengths, budget, gpus),
                   "before": before_pad(lengths, budget)}
            for rule, r in res.items():
                print(f"{cname:<8} {rname:<12} {rule:<8} {r['discarded']:>11.3f} "
                      f"{r['capped']:>9.1f} {r['padding']:>9.3f} {r['mean_crop_s']:>11.2f}")
            if res["ours"]["padding"] > res["fairseq"]["padding"] + 0.005:
                worse.append(f"{cname} {rname} fine-tuning")
            if cname == "LS-like" and rname.startswith("BASE"):
                goal["padding"] = res["ours"]["padding"]
    print(f"\nworse than fairseq's rule on: {', '.join(worse) or 'no row'}")
    print("goal (HuBERT BASE pre-training and BASE fine-tuning, LS-like): discarded <= 5 %, "
          "mean crop >= 10 s, padding <= 2 %")
    print(f"discarded={goal['discarded']:.3f} padding={goal['padding']:.3f} "
          f"mean_crop_s={goal['mean_crop_s']:.2f}")


if __name__ == "__main__":
    main()
