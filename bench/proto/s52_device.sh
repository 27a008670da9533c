#!/bin/bash
# Stop 52, call a: the slices' sums added by vector reductions into one f32 accumulator (-DQMR_SPLIT_RED=1 on
# bench/proto/split_timeline_s52.patch): red, its untraced harness; t_red, traced; r4, HEAD's kernel (stop 51's build).
# The split test's quick subset and the PDL test of the red build first (the PDL test asks plain and PDL chains to be
# bit-identical, which reductions in a varying order need not be), then two A/B rounds and one traced run.
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s52
cp /tmp/s51/tl_r4 /tmp/s51/tl_t_r4 $F/
gpu_clocks
s=$SECONDS; timeout 60 $F/test_cuda_gemv_pdl_red > $OUT/pdl.txt 2>&1; echo "pdl red rc=$? $((SECONDS-s))s" >> $L
tl_ab red
tl_summary
tail -5 $OUT/pdl.txt
