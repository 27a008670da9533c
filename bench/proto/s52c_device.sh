#!/bin/bash
# Stop 52, call c: the landed shared split workspace (split_workspace; clones share it, the PDL test's layers share
# one). The split, PDL, tiled-GEMV and forward tests, compute-sanitizer memcheck and racecheck on the split test's quick
# subset, then `cuda_gemv --split-only` of this build against HEAD's before it (stop 49's landed build,
# cuda_gemv_BASE), two rounds alternating.
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s52c
gpu_clocks
run_tests test_cuda_gemv_split:200 test_cuda_gemv_pdl:60 test_cuda_gemv:120 test_cuda_forward:120
sanitize_quick test_cuda_gemv_split memcheck racecheck
split_ab 8192x8192 4,2 1,8,16
split_summary
grep -E "shared split workspace|FAIL|error" $OUT/tests.txt | head -20
