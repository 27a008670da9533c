#!/bin/bash
# Stop 41's fourth device call: the split GEMV staging x in two parts for symmetric formats (the second while the warps
# stream the first half of their loads, counted by an mbarrier), on top of the per-tile slice sums. gpu_carry/s41d.tgz:
# build-gpu's bench/cuda_gemv and CUDA tests with the change, and cuda_gemv_BASE (the per-tile build of call 3, d432368).
# Tests, the split test's quick subset under compute-sanitizer, then 8192 x 8192, 14336 x 4096 and 4096 x 14336 at 1, 8
# and 16 tokens, the two builds alternating (two rounds). Writes log.txt, tests.txt, san.txt, bench.txt under $OUT.
F=/tmp/s41d; source "$(dirname "$0")/device_lib.sh"
nvidia-smi --query-gpu=name,memory.total --format=csv > $OUT/gpu.txt 2>&1
split_tests
split_ab 8192x8192,14336x4096,4096x14336 2,3,4,8 1,8,16
cat $L
