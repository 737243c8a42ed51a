#!/usr/bin/env bash
# The real-task runs made on a lent GPU (BENCHMARKS.md, "Real tasks"): bidirectional LSTM
# and GRU taggers on UD English-EWT.
#
#   benches/gpu_tasks.sh WGRNN_BINARY EWT_DIR OUT_DIR      (TIME_LIMIT seconds per run, default 95)
set -u
bin=${1:-target/release/wgrnn}
ewt=${2:-../shared/data/ud-english-ewt}
out=${3:-gpu-tasks}
limit=${TIME_LIMIT:-95}
mkdir -p "$out"
common=(--data "$ewt/en_ewt-ud-train.conllu" --val "$ewt/en_ewt-ud-dev.conllu" --adapter "${ADAPTER:-gpu}"
  --embed 100 --lr 0.003 --clip-norm 5 --epochs 12 --monitor metric --restore-best --seed 1
  --log-every 1000)
run() {
  local name=$1; shift
  echo "== $name: $* ($(date -u +%FT%TZ))" | tee -a "$out/tasks.log"
  local start=$SECONDS
  timeout "$limit" "$bin" train "${common[@]}" "$@" --checkpoint "$out/$name-ckpt" 2>&1 |
    grep -E "^(epoch|model|adapter|stopped|restored|error)" | tee -a "$out/tasks.log"
  echo "$name: $((SECONDS - start)) s wall" | tee -a "$out/tasks.log"
  if [ -f "$out/$name-ckpt/checkpoint.json" ]; then
    "$bin" eval --adapter "${ADAPTER:-gpu}" --checkpoint "$out/$name-ckpt" --best \
      --data "$ewt/en_ewt-ud-dev.conllu" 2>&1 | sed "s/^/$name eval --best: /" | tee -a "$out/tasks.log"
  fi
}
run bilstm2-h128 --cell lstm --layers 2 --bidirectional --dropout 0.5 --hidden 128
run bilstm2-h256 --cell lstm --layers 2 --bidirectional --dropout 0.5 --hidden 256
run bigru2-h128 --cell gru --layers 2 --bidirectional --dropout 0.5 --hidden 128
