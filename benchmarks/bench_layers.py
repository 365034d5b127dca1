"""Layer features for a layer sweep: one ``LayerSweep`` pass vs one ``LayerFeatures`` per layer.

A random transformers HuBERT at the tiny preset's width (conv 64 ch, transformer 128 wide, FFN
256, 4 heads) but 6 layers is saved to a temp dir and read as a ``PretrainedModel``; every run
goes through ``Project.run`` on a fresh store over the first ``--seconds`` of the demo corpus,
so times include reading audio and writing the store (what a user waits for). Reported: wall
seconds and × real time (audio seconds / wall seconds) for

* 1 layer:  ``LayerFeatures(layer=6)``            vs ``LayerSweep(layers=(6,)).layer(6)``
* 6 layers: six ``LayerFeatures`` (six forwards)  vs ``LayerSweep(layers=(1..6))`` + 6 slices

    python benchmarks/bench_layers.py [--seconds 120] [--batch-seconds 60]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import soundfile as sf

from ssl_graph.api import Project

SPEC = '''
from ssl_graph import Corpus, LayerFeatures, LayerSweep, PretrainedModel
corpus = Corpus(root="wav")
released = PretrainedModel(path="released")
direct = [LayerFeatures(model=released, layer=i, corpus=corpus) for i in range(1, 7)]
sweep6 = LayerSweep(model=released, layers=(1, 2, 3, 4, 5, 6), corpus=corpus, batch_seconds={b})
sweep1 = LayerSweep(model=released, layers=(6,), corpus=corpus, batch_seconds={b})
{names}
'''


def _setup(d: Path, seconds: float, batch: float) -> float:
    import torch
    import transformers

    (d / "wav").mkdir(parents=True)
    total = 0.0
    for f in sorted((ROOT / "data" / "demo" / "wav").glob("*.flac")):
        if total >= seconds:
            break
        shutil.copy2(f, d / "wav" / f.name)
        total += sf.info(f).duration
    torch.manual_seed(0)
    cfg = transformers.HubertConfig(
        hidden_size=128, num_hidden_layers=6, num_attention_heads=4, intermediate_size=256,
        conv_dim=(64,) * 7, num_conv_pos_embeddings=32, num_conv_pos_embedding_groups=4)
    transformers.HubertModel(cfg).save_pretrained(d / "released")
    names = "\n".join([f"d{i} = direct[{i - 1}]" for i in range(1, 7)]
                      + [f"s{i} = sweep6.layer({i})" for i in range(1, 7)] + ["t6 = sweep1.layer(6)"])
    (d / "p.py").write_text(SPEC.format(b=batch, names=names))
    Project(d / "p.py", str(d / "warm")).run(["released"])  # conversion, imports: not timed
    return total


def _time(d: Path, targets: list[str], tag: str = "") -> float:
    store = d / f"store{tag}-{'-'.join(targets)}"
    Project(d / "p.py", str(store)).run(["released"])
    t0 = time.perf_counter()
    Project(d / "p.py", str(store)).run(targets)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="audio to process")
    ap.add_argument("--batch-seconds", type=float, default=60.0, help="LayerSweep batch size")
    args = ap.parse_args()
    import torch

    d = Path(tempfile.mkdtemp(prefix="bench_layers_"))
    try:
        audio = _setup(d, args.seconds, args.batch_seconds)
        _time(d, ["t6"], "-warm")  # warm-up (torch first calls), own store
        _time(d, ["d6"], "-warm")
        rows = [("1 layer", "LayerFeatures", ["d6"]), ("1 layer", "LayerSweep", ["t6"]),
                ("6 layers", "6 × LayerFeatures", [f"d{i}" for i in range(1, 7)]),
                ("6 layers", "LayerSweep", [f"s{i}" for i in range(1, 7)])]
        print(f"{audio:.0f} s of demo audio, {torch.get_num_threads()} threads, "
              f"tiny-width HuBERT with 6 layers")
        print(f"{'layers':<9} {'how':<18} {'seconds':>8} {'x real time':>12}")
        times = {}
        for layers, how, targets in rows:
            secs = _time(d, targets)
            times[(layers, how)] = secs
            print(f"{layers:<9} {how:<18} {secs:8.2f} {audio / secs:12.1f}")
        ratio = times[("6 layers", "6 × LayerFeatures")] / times[("6 layers", "LayerSweep")]
        print(f"6-layer sweep: LayerSweep is {ratio:.1f}x faster than one node per layer; "
              f"6 layers cost {times[('6 layers', 'LayerSweep')] / times[('1 layer', 'LayerSweep')]:.2f}"
              "x one layer")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
