#!/bin/bash
# Stop 51, call k: HEAD's kernel with the timeline probe, which now also stamps each warp's split_finish: after its
# workspace stores, after the counter (fence and atomic), and for a tile's last warp after the slices' sums are read,
# added and stored. Formats w4g128s and w2g64s; r4 untraced as the control.
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
gpu_clocks
mkdir -p /tmp/raw/t_r4k
for f in w4g128s w2g64s; do tl r4 $f control; RAW=/tmp/raw/t_r4k tl t_r4 $f trace; done
tar czf $OUT/raw.tgz -C /tmp raw
tl_summary
