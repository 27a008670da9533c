#!/bin/bash
# Stop 51, call j: HEAD's kernel with the timeline probe, which now also records when each warp starts its load
# n_loads / 2 (gt_half), to see whether the blocks that finish last (slices 4-7) are slow in both halves of their
# loads or only while the first-dispatched blocks still stream beside them. Formats w4g128s and w2g64s; r4 untraced as
# the control.
# (As run, each script defined tl itself; device_lib.sh has held it, tl_ab and tl_summary since, doing the same.)
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
gpu_clocks
mkdir -p /tmp/raw/t_r4h
for f in w4g128s w2g64s; do tl r4 $f control; RAW=/tmp/raw/t_r4h tl t_r4 $f trace; done
tar czf $OUT/raw.tgz -C /tmp raw
cat $OUT/gpu.txt $L
grep -E "^== |graph|steady" $OUT/tl.txt
