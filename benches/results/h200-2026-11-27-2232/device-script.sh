#!/usr/bin/env bash
# Second device call: checks on/off alternated on the named workloads (no --ceiling before
# them), f16 with quad loads against 054acf6 (f16 on the plain kernels), GPU tests.
set -u
for f in .gl/*.deb; do dpkg -x $f / >/dev/null 2>&1; done; ldconfig
R=$OUT/run; mkdir -p $R
export WGRNN_TUNING_CACHE=off
B=".gpu/wgrnn bench --adapter gpu --max-seconds 1"
say() { echo "== $* $(date -u +%T)" | tee -a $R/run.log; }
sum() { grep -E "^(W[1-5]|custom) " | sed -E 's/\[[^]]*\]//' | cut -c1-70; }
date -u +%FT%TZ | tee $R/run.log
for i in 1 2; do
  for m in on off; do
    say "named f32, shader checks $m, round $i"
    WGRNN_SHADER_CHECKS=$m timeout 60 $B --workload W1,W2,W3,W4,W5 --json $R/named-checks-$m-$i.json 2>&1 | tee -a $R/run.log | sum
  done
done
for bin in .gpu/wgrnn-054acf6 .gpu/wgrnn; do
  say "named f16, $bin"
  timeout 60 $bin bench --adapter gpu --max-seconds 1 --workload W1,W2,W3,W4,W5 --precision f16 --loss-steps 0 --json $R/named-f16-$(basename $bin).json 2>&1 | tee -a $R/run.log | sum
done
for hb in "512 4096" "1024 1024" "1024 4096"; do
  set -- $hb
  for bin in .gpu/wgrnn-054acf6 .gpu/wgrnn; do
    say "sweep H $1 B $2 f16, $bin"
    timeout 40 $bin bench --adapter gpu --max-seconds 1 --vocab 96 --embed 64 --output-size 96 --hidden $1 --batch $2 --seq-len 64 --precision f16 --loss-steps 0 2>&1 | tee -a $R/run.log | sum
  done
done
say "W1 f16 loss check (200 steps each way) and the ceiling"
timeout 60 $B --workload W1 --precision f16 --loss-steps 200 --ceiling 2>&1 | tee -a $R/run.log | grep -E "ceiling|loss" | cut -c1-200
for t in gpu_half_precision gpu_kernels; do
  timeout 60 .gpu/$t > $R/$t.log 2>&1; echo "$t: $(grep -E 'test result' $R/$t.log)"; grep -A3 panicked $R/$t.log | head -8
done
date -u +%T | tee -a $R/run.log
cd $OUT && tar czf run.tgz run && rm -rf run
