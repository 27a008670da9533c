#!/bin/bash
# Stop 51, calls c and d: the split kernel with no slice counter (-DQMR_SPLIT_POLL=1 in bench/proto/split_timeline_s51.patch):
# each workspace slot holds 0xffffffff until its slice stores a sum with a relaxed store; the tile's warp of the last
# slice polls for the other slices' sums, adds them in slice order after its own (kept in its ring), and empties the
# slots (call c polled one slice at a time; call d, as the patch is now, polls 8 slices at a time). Against r4 (HEAD's
# kernel) in the timeline harness (gpu_carry/s51.tgz: s51/tl_V, s51/tl_t_V traced), and the split and PDL tests of the
# poll build (meson in the patched worktree with -Dcuda_args=-DQMR_SPLIT_POLL=1).
# (As run, each script defined tl itself; device_lib.sh has held it, tl_ab and tl_summary since, doing the same.)
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
gpu_clocks
tl_ab p4
run_tests test_cuda_gemv_split_p4:120 test_cuda_gemv_pdl_p4:60
for v in r4 p4; do for f in w4g128s w2g64s; do tl $v $f round3; done; done
tl_summary
