#!/bin/bash
# Stop 51, call i: skewed slices (-DQMR_SPLIT_SKEW=1 in bench/proto/split_timeline_s51.patch): when the slices are
# even in number and tile the columns exactly, the first half (the blocks dispatched first, which the timeline shows
# entering 3-7 us before the others and finishing their loops ~4 us earlier) take one 256-column quantum more and the
# second half one less (8192 columns: 5,5,5,5,3,3,3,3 quanta instead of 4 each). s1: that build; r4: HEAD's kernel;
# t_s1: s1 with the timeline probe. Then the split, PDL and forward tests of the skew build (meson in the patched
# worktree with -Dcuda_args=-DQMR_SPLIT_SKEW=1) and memcheck of the quick split test.
# (As run, each script defined tl itself; device_lib.sh has held it, tl_ab and tl_summary since, doing the same.)
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
gpu_clocks
tl_ab s1
run_tests test_cuda_gemv_split_s1:120 test_cuda_gemv_pdl_s1:60 test_cuda_forward_s1:90
sanitize_quick test_cuda_gemv_split_s1 memcheck
for v in r4 s1; do for f in w4g128s w2g64s w3g128s w8g128s w4g128; do tl $v $f round3; done; done
tl_summary; grep -E "ERROR SUMMARY" $OUT/san.txt
