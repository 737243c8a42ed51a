#!/usr/bin/env bash
# Third device call (22:34 UTC, same warm machine as the second): a49aa4b's wgrnn twice, then
# PyTorch/cuDNN (TF32 default, then strict f32) on the same card, the named workloads.
R=$OUT/run; mkdir -p $R; export WGRNN_TUNING_CACHE=off; date -u +%FT%TZ | tee $R/run.log
for i in 1 2; do
  echo "== wgrnn named f32 round $i $(date -u +%T)" | tee -a $R/run.log
  timeout 40 .gpu/wgrnn bench --adapter gpu --max-seconds 1 --workload W1,W2,W3,W4,W5 --json $R/wgrnn-named-$i.json 2>&1 | tee -a $R/run.log | grep -E "^W" | cut -c1-60
done
for f in "" "--no-tf32"; do
  echo "== torch named $f $(date -u +%T)" | tee -a $R/run.log
  timeout 60 python3 benches/peers/torch_rnn.py --device cuda --workload W1,W2,W3,W4,W5 --max-seconds 1 $f --json $R/torch-named$f.json 2>&1 | tee -a $R/run.log | grep -E "^W" | cut -c1-60
done
date -u +%T | tee -a $R/run.log; cd $OUT && tar czf run.tgz run && rm -rf run
