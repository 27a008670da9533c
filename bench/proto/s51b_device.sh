#!/bin/bash
# Stop 51, call b: the split kernel's ring depth and launch order in a CUDA graph of 20 calls with PDL, from
# bench/proto/split_timeline_s51.cu built against HEAD's gemv_split.cuh with bench/proto/split_timeline_s51.patch
# (gpu_carry/s51.tgz: s51/tl_V, nvcc as in that file's header):
#   r4: HEAD's kernel (ring of 4); r6, r8: rings of 6 and 8 (-DQMR_SPLIT_RING); b4, b8: rings of 4 and 8 with the
#   blocks launched slice-fastest (-DQMR_SPLIT_BAND_MAJOR=1), so that the blocks dispatched first hold every slice
#   of half the bands instead of half the slices of every band; t_V: V with the timeline probe (-DQMR_SPLIT_TRACE).
# Two rounds of the untraced builds (order reversed), then the traced ones (raw records in raw.tgz).
# (As run, each script defined tl itself; device_lib.sh has held it, tl_ab and tl_summary since, doing the same.)
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
gpu_clocks
V="r4 r6 r8 b4 b8"
for v in $V; do for f in w4g128s w2g64s; do tl $v $f round1; done; done
for v in $(echo $V | tr ' ' '\n' | tac); do for f in w4g128s w2g64s; do tl $v $f round2; done; done
mkdir -p /tmp/raw
for v in t_r4 t_b4 t_r8; do mkdir -p /tmp/raw/$v; RAW=/tmp/raw/$v tl $v w4g128s trace; done
tar czf $OUT/raw.tgz -C /tmp raw
cat $OUT/gpu.txt $L
grep -E "^== |graph|steady" $OUT/tl.txt
