#!/usr/bin/env bash
# One-shot GPU check (issue 9, deliver 8): every CUDA path in at most ~5 minutes, then a
# pass/fail table. Run from the repository root on a machine with CUDA:
#
#     bash benchmarks/gpu_check.sh            # PYTHON=... to pick the interpreter
#
# Checks: a few steps of each tiny preset in bf16 and in fp16 (GradScaler), micro-batches
# (max_batch_seconds) with 2 DataLoader workers and pinned memory, LayerFeatures, FineTune +
# ASRScore, DDP over every visible GPU (torchrun launcher), and bench_train_step.py on a
# base-size model in bf16 against HF. Each check has its own time limit; logs stay in $WORK.
set -u
PY=${PYTHON:-python}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
NGPU=$($PY -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
if [ "$NGPU" = "0" ]; then echo "gpu_check: no CUDA device visible; nothing to check"; exit 2; fi

mkdir -p "$WORK/wav"
ls "$ROOT"/data/demo/wav/*.flac | head -24 | xargs -I{} cp {} "$WORK/wav/"
cp "$ROOT"/data/demo/transcripts.tsv "$ROOT"/data/demo/alignments.tsv "$WORK/"
cat > "$WORK/spec.py" <<'PYEOF'
from ssl_graph import MFCC, Corpus, KMeans, Labels, LayerFeatures
from ssl_graph.presets import finetune, hubert, vq_wav2vec, wav2vec, wav2vec2
from ssl_graph.specs.finetune import ASRScore

corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="alignments.tsv")
labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=20, fit_fraction=0.5, max_iter=10))
short = dict(steps=10, batch_seconds=16.0, crop_seconds=2.0, checkpoint_every=5)
w2v = wav2vec(corpus, size="tiny", **short)
vq = vq_wav2vec(corpus, size="tiny", **short)
w2v2 = wav2vec2(corpus, size="tiny", **short)
hb = hubert(corpus, targets=labels, size="tiny", **short)
feats = LayerFeatures(model=hb, layer=1)
ft = finetune(w2v2, size="tiny", labeled_minutes=0.5, steps=10, freeze_steps=3)
score = ASRScore(model=ft)
PYEOF

NAMES=(); RESULTS=(); TIMES=()
check() {  # check NAME LIMIT_S CMD...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  if (cd "$WORK" && timeout "$limit" "$@") > "$WORK/$name.log" 2>&1; then r=PASS; else r="FAIL (rc $?)"; fi
  NAMES+=("$name"); RESULTS+=("$r"); TIMES+=($((SECONDS - t0)))
  echo "$name: $r ($((SECONDS - t0)) s; log $WORK/$name.log)"
}
run() { $PY -m ssl_graph --store "$1" run spec.py "${@:2}" --no-progress; }

check prepare-labels 60 run st_bf16 labels
cp -r "$WORK/st_bf16" "$WORK/st_fp16"
for p in bf16 fp16; do
  for n in w2v vq w2v2 hb; do
    check "$n-$p" 40 run "st_$p" "$n" --set "$n.device=cuda" --set "$n.precision=$p"
  done
done
check micro-batches+workers 40 run st_micro hb --set hb.device=cuda --set hb.max_batch_seconds=4 \
  --set hb.workers=2
check layer-features 30 run st_bf16 feats --set feats.device=cuda
check finetune+score 60 run st_bf16 score --set ft.device=cuda --set score.device=cuda
if $PY -m ssl_graph run --help | grep -q -- --launcher; then
  check "ddp-$NGPU-gpus" 60 $PY -m ssl_graph --store st_ddp run spec.py w2v2 --launcher torchrun \
    --nproc-per-node "$NGPU" --set w2v2.device=cuda --no-progress
else
  NAMES+=(ddp); RESULTS+=("SKIP (no --launcher in this version)"); TIMES+=(0)
fi
check bench-base-bf16 120 $PY "$ROOT/benchmarks/bench_train_step.py" --size base --device cuda \
  --bf16 --steps 5 --warmup 2

echo
printf '%-24s %-36s %s\n' check result seconds
fails=0
for i in "${!NAMES[@]}"; do
  printf '%-24s %-36s %s\n' "${NAMES[$i]}" "${RESULTS[$i]}" "${TIMES[$i]}"
  case ${RESULTS[$i]} in FAIL*) fails=$((fails + 1));; esac
done
echo "$fails failed; logs in $WORK"
exit $((fails > 0))
