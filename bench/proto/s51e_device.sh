#!/bin/bash
# Stop 51, call e: the split kernel's slice counter taken with a relaxed atomic, no fence (-DQMR_SPLIT_POLL=2 in
# bench/proto/split_timeline_s51.patch): slices store their sums with relaxed stores into slots that hold 0xffffffff
# until filled; the last warp of a tile (by the counter) polls each slot it reads until full, adds in slice order as
# HEAD does, and empties the slots. q4: that build; r4: HEAD's kernel; t_q4: q4 with the timeline probe. Also the split
# and PDL tests of the q4 build (meson in the patched worktree with -Dcuda_args=-DQMR_SPLIT_POLL=2).
# (As run, each script defined tl itself; device_lib.sh has held it, tl_ab and tl_summary since, doing the same.)
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
gpu_clocks
tl_ab q4
run_tests test_cuda_gemv_split_q4:120 test_cuda_gemv_pdl_q4:60
for v in r4 q4; do for f in w4g128s w2g64s w8g128s w3g128s; do tl $v $f round3; done; done
tl_summary
