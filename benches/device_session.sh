#!/usr/bin/env bash
# One call of the lent GPU machine, after benches/device_prepare.sh (carry .gpu and .gl):
#   run(command="bash benches/device_session.sh", carry=[".gpu", ".gl"], timeout_s=540)
# It unpacks the Vulkan loader, then, each step under its own time limit so that the whole
# fits one call: the named workloads with the step's commands recorded ahead and at the
# submit (WGRNN_RECORD_AHEAD, same binary), each compared with the last H200 run's report,
# and against .gpu/wgrnn-base if present; PyTorch
# (cuDNN) on the same card; the large-batch sweep's batch 4096 points; the GEMM and optimizer
# kernel benches; the GPU tests. Everything lands in $OUT/run.tgz (one file comes back).
# ADAPTER (default gpu) and WORKLOADS (default W1-W5) change what runs, for a dry run here.
set -u
for f in .gl/*.deb; do dpkg -x "$f" / >/dev/null 2>&1; done
ldconfig
R=${OUT:-/tmp/device-out}/run
mkdir -p "$R"
export WGRNN_TUNING_CACHE=off
A=${ADAPTER:-gpu}
W=${WORKLOADS:-W1,W2,W3,W4,W5}
B=".gpu/wgrnn bench --adapter $A --max-seconds 1"
say() { echo "== $* $(date -u +%T)" | tee -a "$R/run.log"; }
sum() { grep -E "^(W[1-5]|custom) |GPU phases|^   back to back|^   readback|^ceiling|^   W|^   against" | sed -E 's/\[[^]]*\]//; s/ \(as a training[^)]*\)//' | cut -c1-200; }
# Each named run is compared with the last H200 run's report (2026-11-27 22:34 UTC).
EARLIER=benches/results/h200-2026-11-27-2234/wgrnn-named-1.json
date -u +%FT%TZ | tee "$R/run.log"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv >> "$R/run.log" 2>&1
for i in 1 2; do
  for ahead in on off; do
    say "named W1-W5, WGRNN_RECORD_AHEAD=$ahead, round $i"
    WGRNN_RECORD_AHEAD=$ahead timeout 90 $B --workload $W --compare $EARLIER \
      --json "$R/named-ahead-$ahead-$i.json" 2>&1 |
      tee -a "$R/run.log" | sum
  done
done
if [ -x .gpu/wgrnn-base ]; then
  say "named W1-W5, base binary"
  timeout 90 .gpu/wgrnn-base bench --adapter $A --max-seconds 1 --workload $W \
    --json "$R/named-base.json" 2>&1 | tee -a "$R/run.log" | sum
fi
say "named W1-W5 with --kernel-times and --ceiling (the ceiling after the workloads)"
timeout 90 $B --workload $W --kernel-times --ceiling --json "$R/named-kernels.json" 2>&1 |
  tee -a "$R/run.log" | grep -E "GPU time by kernel|^ceiling|^   W" | cut -c1-400
for peer in "" "--no-tf32"; do
  say "PyTorch named $peer"
  timeout 90 python3 benches/peers/torch_rnn.py --device cuda --workload $W --max-seconds 1 $peer \
    --against "$R/named-ahead-on-1.json" --json "$R/torch-named$peer.json" 2>&1 | tee -a "$R/run.log" |
    grep -E "^W|^against|^workload" | cut -c1-160
done
for h in 512 1024; do
  say "sweep H $h B 4096"
  timeout 60 $B --vocab 96 --embed 64 --output-size 96 --hidden $h --batch 4096 --seq-len 64 \
    --json "$R/sweep-h$h-b4096.json" 2>&1 | tee -a "$R/run.log" | sum
done
say "PyTorch sweep B 4096 (strict f32)"
timeout 90 python3 benches/peers/torch_rnn.py --device cuda --workload W3 --hidden 512,1024 --batch 4096 \
  --max-seconds 1 --no-tf32 --json "$R/torch-sweep-f32.json" 2>&1 | tee -a "$R/run.log" | grep -E "^W" | cut -c1-160
say "kernel bench: gemm, optimizer"
timeout 120 .gpu/kernels gemm > "$R/kernels.log" 2>&1
timeout 30 .gpu/kernels optimizer >> "$R/kernels.log" 2>&1
for t in gpu_shader_checks gpu_training_step gpu_kernels gpu_half_precision; do
  [ -x ".gpu/$t" ] || continue
  timeout 90 ".gpu/$t" > "$R/$t.log" 2>&1
  echo "$t: $(grep -E 'test result' "$R/$t.log")" | tee -a "$R/run.log"
done
say "done"
cd "$R/.." && tar czf run.tgz run && rm -rf run
