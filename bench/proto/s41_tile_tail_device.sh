#!/bin/bash
# Stop 41's third device call: the split GEMV adding a row tile's slices in the last warp of that tile to finish (a
# counter per 16-row tile), instead of the last block of each 256-row band. gpu_carry/s41c.tgz: build-gpu's
# bench/cuda_gemv and CUDA tests with the change, and cuda_gemv_BASE (HEAD 95357e7's bench). Tests, the split test's
# quick subset under compute-sanitizer, then 8192 x 8192, 14336 x 4096 and 4096 x 14336 at 1, 8 and 16 tokens, the two
# builds alternating (two rounds). Writes log.txt, tests.txt, san.txt, bench.txt under $OUT.
F=/tmp/s41c; source "$(dirname "$0")/device_lib.sh"
nvidia-smi --query-gpu=name,memory.total --format=csv > $OUT/gpu.txt 2>&1
split_tests
split_ab 8192x8192,14336x4096,4096x14336 2,3,4,8 1,8,16
cat $L
