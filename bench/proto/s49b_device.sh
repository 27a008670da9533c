#!/bin/bash
# Stop 49, second call: the landed counter change (stop 48's p1 as gemv_split.cuh now has it, built from the working
# tree as /tmp/s49b/*_land) — its split, PDL and forward tests, compute-sanitizer memcheck and racecheck, and two A/B
# rounds against HEAD's kernel before it (a0, gpu_carry/s48.tgz).
# Not run as such: at stop 49 the session's device time was spent before this call could start. At stop 50,
# bench/proto/s50_device.sh (call b) ran the same binaries' split, PDL and forward tests and memcheck (0 failures,
# 0 errors) and measured them as `land`; the A/B against a0 was not repeated.
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s49b
cp /tmp/s48/cuda_gemv_a0 $F/
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/gpu.txt
run_tests test_cuda_gemv_split_land:120 test_cuda_gemv_pdl_land:60
sanitize_quick test_cuda_gemv_split_land memcheck racecheck
for v in land a0 a0 land; do bench_split $v ab 8192x8192 4,2 1,16; done
run_tests test_cuda_forward_land:90
split_summary
