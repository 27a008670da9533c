#!/bin/bash
# Stop 57's device call c: the timeline probe with rings deeper during the loop (call b: bursts; call a: HEAD's GPU tests; a's probe binary was missing from
# the carry). See bench/proto/s58a_device.sh and bench/proto/timeline_s57.cu.
F=/tmp/s58
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
source "$(dirname "$0")/device_lib.sh"
gpu_clocks
mkdir -p $OUT/tl
s=$SECONDS; timeout 300 $F/timeline w4g128s $OUT/tl > $OUT/timeline.txt 2>&1; echo "timeline rc=$? $((SECONDS-s))s" >> $L
cat $OUT/gpu.txt $L $OUT/timeline.txt
