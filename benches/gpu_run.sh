#!/usr/bin/env bash
# The GPU comparison recorded in BENCHMARKS.md: `wgrnn bench` and PyTorch (cuDNN) on the same
# card in the same run: the named workloads, then the large-batch sweep (a W3-shaped model,
# vocab 96, embedding 64, T 64, with hidden 512 and 1024 and batch 256 to 4096).
#
#   benches/gpu_run.sh [WGRNN_BINARY] [OUT_DIR]      (MAX_SECONDS per measurement, default 5;
#                                                    F16=0 skips the --precision f16 runs;
#                                                    BASELINE=another wgrnn binary, e.g. the
#                                                    previous commit's, also runs W1-W5 and the
#                                                    sweep's batch-4096 points, for a same-run
#                                                    before/after; AHEAD_AB=1 also runs W1-W5
#                                                    with WGRNN_RECORD_AHEAD=off, the host
#                                                    recording each step at its submit)
#
# Each measurement writes a JSON file into OUT_DIR and a line to OUT_DIR/run.log.
set -u
bin=${1:-target/release/wgrnn}
out=${2:-gpu-results}
secs=${MAX_SECONDS:-5}
workloads=${WORKLOADS:-W1,W2,W3,W4,W5}
mkdir -p "$out"
log="$out/run.log"
say() { echo "== $*" | tee -a "$log"; }
run() { "$@" 2>&1 | tee -a "$log"; }

say "date $(date -u +%FT%TZ)"
command -v nvidia-smi >/dev/null && run nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
run "$bin" --version
run "$bin" devices
peer=benches/peers/torch_rnn.py

say "named workloads: wgrnn"
run "$bin" bench --adapter "${ADAPTER:-gpu}" --workload "$workloads" --ceiling --kernel-times --max-seconds "$secs" --json "$out/wgrnn-named.json"
if [ "${AHEAD_AB:-0}" = 1 ]; then
  say "named workloads: wgrnn, WGRNN_RECORD_AHEAD=off (same binary), then on again"
  run env WGRNN_RECORD_AHEAD=off "$bin" bench --adapter "${ADAPTER:-gpu}" --workload "$workloads" --max-seconds "$secs" \
    --json "$out/wgrnn-named-ahead-off.json"
  run "$bin" bench --adapter "${ADAPTER:-gpu}" --workload "$workloads" --max-seconds "$secs" \
    --json "$out/wgrnn-named-ahead-on.json"
fi
if [ "${F16:-1}" = 1 ]; then
  say "named workloads: wgrnn --precision f16 (loss check on W1: 200 steps each way)"
  run "$bin" bench --adapter "${ADAPTER:-gpu}" --workload "$workloads" --precision f16 --loss-steps 0 \
    --max-seconds "$secs" --json "$out/wgrnn-named-f16.json"
  run "$bin" bench --adapter "${ADAPTER:-gpu}" --workload W1 --precision f16 --loss-steps 200 \
    --max-seconds 1 --json "$out/wgrnn-w1-f16-loss.json"
fi
if [ -n "${BASELINE:-}" ]; then
  say "baseline binary $BASELINE: named workloads"
  run "$BASELINE" bench --adapter "${ADAPTER:-gpu}" --workload "$workloads" --max-seconds "$secs" \
    --json "$out/baseline-named.json"
  base_hs=${SWEEP_HIDDEN:-512,1024}
  for h in ${base_hs//,/ }; do
    say "baseline binary: sweep H $h B 4096"
    run "$BASELINE" bench --adapter "${ADAPTER:-gpu}" --vocab 96 --embed 64 --output-size 96 --hidden "$h" \
      --batch 4096 --seq-len 64 --max-seconds "$secs" --json "$out/baseline-h$h-b4096.json"
  done
fi
say "named workloads: torch (cuDNN defaults)"
run python3 "$peer" --device cuda --workload "${TORCH_WORKLOADS:-$workloads}" --max-seconds "$secs" --json "$out/torch-named.json"
say "named workloads: torch (strict f32)"
run python3 "$peer" --device cuda --workload "${TORCH_WORKLOADS:-$workloads}" --max-seconds "$secs" --no-tf32 --json "$out/torch-named-f32.json"

hs=${SWEEP_HIDDEN:-512,1024}
bs=${SWEEP_BATCH:-256,512,1024,2048,4096}
for h in ${hs//,/ }; do
  for b in ${bs//,/ }; do
    say "sweep H $h B $b: wgrnn"
    run "$bin" bench --adapter "${ADAPTER:-gpu}" --vocab 96 --embed 64 --output-size 96 --hidden "$h" --batch "$b" \
      --seq-len 64 --max-seconds "$secs" --json "$out/wgrnn-h$h-b$b.json"
    if [ "${F16:-1}" = 1 ]; then
      say "sweep H $h B $b: wgrnn --precision f16"
      run "$bin" bench --adapter "${ADAPTER:-gpu}" --vocab 96 --embed 64 --output-size 96 --hidden "$h" --batch "$b" \
        --seq-len 64 --max-seconds "$secs" --precision f16 --loss-steps 0 --json "$out/wgrnn-h$h-b$b-f16.json"
    fi
  done
done
say "sweep: torch (cuDNN defaults)"
run python3 "$peer" --device cuda --workload W3 --hidden "$hs" --batch "$bs" --max-seconds "$secs" --json "$out/torch-sweep.json"
say "sweep: torch (strict f32)"
run python3 "$peer" --device cuda --workload W3 --hidden "$hs" --batch "$bs" --max-seconds "$secs" --no-tf32 \
  --json "$out/torch-sweep-f32.json"
say "done $(date -u +%FT%TZ)"
