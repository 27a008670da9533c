#!/bin/bash
# Stop 57's device call b: the timeline probe alone (call a ran HEAD's GPU tests; its probe binary was missing from
# the carry). See bench/proto/s58a_device.sh and bench/proto/timeline_s57.cu.
F=/tmp/s58
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
source "$(dirname "$0")/device_lib.sh"
gpu_clocks
timeline_s57
cat $OUT/gpu.txt $L $OUT/timeline.txt
