#!/usr/bin/env bash
# First device call (22:17 UTC): kernels with and without wgpu's runtime checks, same binary
# (1a74048's parent, 054acf6). .gpu/ held the stripped release binaries (wgrnn, the kernels
# bench, the GPU test binaries) and checked.sh (`WGRNN_SHADER_CHECKS=on exec .gpu/wgrnn "$@"`).
set -u
for f in .gl/*.deb; do dpkg -x $f / >/dev/null 2>&1; done; ldconfig
R=$OUT/run; mkdir -p $R
export WGRNN_TUNING_CACHE=off
date -u +%FT%TZ | tee $R/times.log
for m in on off on; do
  echo "== kernels checks $m $(date -u +%T)" >> $R/kernels.log
  WGRNN_SHADER_CHECKS=$m timeout 80 .gpu/kernels gemm >> $R/kernels.log 2>&1
done
date -u +%T | tee -a $R/times.log
MAX_SECONDS=1 F16=0 BASELINE=.gpu/checked.sh timeout 260 bash benches/gpu_run.sh .gpu/wgrnn $R/bench > /dev/null 2>&1
grep -E "median|^== " $R/bench/run.log | sed -E "s/\[[^]]*\]//" | cut -c1-110 | head -70
date -u +%T | tee -a $R/times.log
for t in gpu_shader_checks gpu_training_step gpu_kernels; do
  timeout 60 .gpu/$t > $R/$t.log 2>&1; echo "$t: $(grep -E 'test result' $R/$t.log)"; grep -A3 panicked $R/$t.log | head -8
done
date -u +%T | tee -a $R/times.log
cd $OUT && tar czf run.tgz run && rm -rf run
