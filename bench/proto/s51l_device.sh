#!/bin/bash
# Stop 51, call l: a tile's last warp at 9-16 tokens issues all 16 of its workspace loads at once, 12 into registers
# and 4 by cp.async into its free ring (-DQMR_SPLIT_TAIL2=1 in bench/proto/split_timeline_s51.patch), instead of two
# batches of 8 (call k: reading, adding and storing the sums took 2.2 us of the 16-token tail against 0.6 at one
# token). t2: that build; r4: HEAD's kernel; t_t2: traced. Then the split, PDL and forward tests of the build (meson
# in the patched worktree with -Dcuda_args=-DQMR_SPLIT_TAIL2=1) and memcheck and racecheck of the quick split test.
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
gpu_clocks
tl_ab t2
run_tests test_cuda_gemv_split_t2:120 test_cuda_gemv_pdl_t2:60 test_cuda_forward_t2:90
sanitize_quick test_cuda_gemv_split_t2 memcheck racecheck
for v in r4 t2; do for f in w4g128s w2g64s w3g128s w8g128s w4g128; do tl $v $f round3; done; done
tl_summary; grep -E "ERROR SUMMARY|RACECHECK SUMMARY" $OUT/san.txt
