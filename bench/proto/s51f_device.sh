#!/bin/bash
# Stop 51, call f: the PDL trigger moved after each block's weight loop (-DQMR_SPLIT_LATE_TRIGGER=1 in
# bench/proto/split_timeline_s51.patch; HEAD triggers at the kernel's start), so that the next call's blocks start,
# and prefetch their ring, only once every block of this call has streamed its weights: l4, l6, l8 with rings of 4, 6,
# 8 (-DQMR_SPLIT_RING); r4: HEAD's kernel; t_V: with the timeline probe. Timeline harness builds in gpu_carry/s51.tgz.
# (As run, each script defined tl itself; device_lib.sh has held it, tl_ab and tl_summary since, doing the same.)
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
gpu_clocks
for v in r4 l4 l6 l8; do for f in w4g128s w2g64s; do tl $v $f round1; done; done
for v in l8 l6 l4 r4; do for f in w4g128s w2g64s; do tl $v $f round2; done; done
for v in t_l4 t_l8; do mkdir -p /tmp/raw/$v; RAW=/tmp/raw/$v tl $v w4g128s trace; done
tar czf $OUT/raw.tgz -C /tmp raw
cat $OUT/gpu.txt $L
grep -E "^== |graph|steady" $OUT/tl.txt
