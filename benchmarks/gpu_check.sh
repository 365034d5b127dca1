#!/usr/bin/env bash
# One-shot GPU check: every CUDA path in a few minutes, then a pass/fail table. From the
# repository root, on a machine with CUDA:
#
#     bash benchmarks/gpu_check.sh            # PYTHON=... to pick the interpreter
#     bash benchmarks/gpu_check.sh --cpu      # the same checks with CPU stand-ins (CI runs this)
#
# Checks: a few steps of each tiny preset in bf16 and in fp16 (GradScaler), micro-batches
# (max_batch_seconds) with 2 DataLoader workers, LayerFeatures, FineTune + ASRScore, DDP over
# every visible GPU (--launcher torchrun, NCCL), and bench_train_step.py on a base-size model in
# bf16 against HF. --cpu: device=cpu everywhere (bf16/fp16 autocast on the CPU), DDP over 2 CPU
# processes (gloo), the tiny model in the benchmark, longer time limits; no GPU is used even if
# one is visible. Each check has its own time limit; logs stay in $WORK. Exits 0 only if every
# check passes.
set -u
CPU=0
case ${1:-} in
  --cpu) CPU=1 ;;
  "") ;;
  *) echo "usage: $0 [--cpu]" >&2; exit 2 ;;
esac
PY=${PYTHON:-python}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$(mktemp -d /tmp/gpu_check.XXXXXX)}
export PY PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [ "$CPU" = 1 ]; then
  export CUDA_VISIBLE_DEVICES=""
  DEV=cpu; NPROC=2; GROUP=gloo; SLOW=3
  STEPS=4; MICRO=1; SHORT="steps=4, batch_seconds=4.0, crop_seconds=1.0, checkpoint_every=2"
  BENCH=(--size tiny --batch 1 --seconds 1 --steps 1 --warmup 0)
else
  NPROC=$("$PY" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
  if [ "$NPROC" = "0" ]; then
    echo "gpu_check: no CUDA device visible; nothing to check (--cpu checks the CPU stand-ins)"
    exit 2
  fi
  DEV=cuda; GROUP=nccl; SLOW=1
  STEPS=10; MICRO=4; SHORT="steps=10, batch_seconds=16.0, crop_seconds=2.0, checkpoint_every=5"
  BENCH=(--size base --steps 5 --warmup 2)
fi

mkdir -p "$WORK/wav"
ls "$ROOT"/data/demo/wav/*.flac | head -24 | xargs -I{} cp {} "$WORK/wav/"
for f in transcripts alignments; do  # the header and the rows of the copied utterances
  ls "$WORK/wav" | sed 's/\.flac$//' |
    awk -F'\t' 'NR == FNR { keep[$1] = 1; next } FNR == 1 || ($1 in keep)' - \
      "$ROOT/data/demo/$f.tsv" > "$WORK/$f.tsv"
done
cat > "$WORK/spec.py" <<PYEOF
from ssl_graph import MFCC, Corpus, KMeans, Labels, LayerFeatures
from ssl_graph.presets import finetune, hubert, vq_wav2vec, wav2vec, wav2vec2
from ssl_graph.specs.finetune import ASRScore

corpus = Corpus(root="wav", transcripts="transcripts.tsv", alignments="alignments.tsv")
labels = Labels(kmeans=KMeans(features=MFCC(corpus=corpus), k=20, fit_fraction=0.5, max_iter=10))
short = dict($SHORT)
w2v = wav2vec(corpus, size="tiny", **short)
vq = vq_wav2vec(corpus, size="tiny", **short)
w2v2 = wav2vec2(corpus, size="tiny", **short)
hb = hubert(corpus, targets=labels, size="tiny", **short)
feats = LayerFeatures(model=hb, layer=1)
ft = finetune(w2v2, size="tiny", labeled_minutes=0.5, steps=$STEPS, freeze_steps=$((STEPS / 3)))
score = ASRScore(model=ft)
PYEOF

NAMES=(); RESULTS=(); TIMES=()
check() {  # check NAME LIMIT_S CMD... (CMD may be a function: it runs in a child bash)
  local name=$1 limit=$(($2 * SLOW)); shift 2
  local t0=$SECONDS r
  if (cd "$WORK" && timeout "$limit" bash -c '"$@"' check "$@") > "$WORK/$name.log" 2>&1; then
    r=PASS
  else
    r="FAIL (rc $?)"
  fi
  NAMES+=("$name"); RESULTS+=("$r"); TIMES+=($((SECONDS - t0)))
  echo "$name: $r ($((SECONDS - t0)) s; log $WORK/$name.log)"
}
run() { "$PY" -m ssl_graph --store "$1" run spec.py "${@:2}" --no-progress; }
export -f run

check prepare-labels 60 run st_bf16 labels
cp -r "$WORK/st_bf16" "$WORK/st_fp16"
for p in bf16 fp16; do
  for n in w2v vq w2v2 hb; do
    check "$n-$p" 40 run "st_$p" "$n" --set "$n.device=$DEV" --set "$n.precision=$p"
  done
done
check micro-batches+workers 40 run st_micro hb --set "hb.device=$DEV" \
  --set "hb.max_batch_seconds=$MICRO" --set hb.workers=2
check layer-features 30 run st_bf16 feats --set "feats.device=$DEV"
check finetune+score 60 run st_bf16 score --set "ft.device=$DEV" --set "score.device=$DEV"
check "ddp-$NPROC-$GROUP" 60 run st_ddp w2v2 --launcher torchrun --nproc-per-node "$NPROC" \
  --set "w2v2.device=$DEV"
check "bench-${BENCH[1]}-bf16" 120 "$PY" "$ROOT/benchmarks/bench_train_step.py" "${BENCH[@]}" \
  --device "$DEV" --bf16 --no-scaling

echo
printf '%-24s %-36s %s\n' check result seconds
fails=0
for i in "${!NAMES[@]}"; do
  printf '%-24s %-36s %s\n' "${NAMES[$i]}" "${RESULTS[$i]}" "${TIMES[$i]}"
  case ${RESULTS[$i]} in FAIL*) fails=$((fails + 1));; esac
done
echo "$fails of ${#NAMES[@]} failed; logs in $WORK"
exit $((fails > 0))
