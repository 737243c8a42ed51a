#!/bin/bash
# usage: coldrun.sh BINARY  -> wall seconds of `wgrnn train` with empty Mesa and tuning caches
d=$(mktemp -d /tmp/coldXXXX)
s=$(date +%s.%N)
env MESA_SHADER_CACHE_DIR=$d/mesa $EXTRA WGRNN_TUNING_CACHE=$d/tuning.json "$1" train > $d/log 2>&1
e=$(date +%s.%N)
printf "%s %.1f s  %s\n" "$1" "$(echo "$e - $s" | bc)" "$(grep -o 'accuracy on.*' $d/log)"
rm -rf $d
