#!/bin/bash
# Stop 36: the dense GEMV, second version (the first batch of weight loads issued before pdl_wait and the staging of
# x) as `cuda_decode`, the same capped at 64 registers for 4 blocks an SM (cuda_decode_v3), and HEAD aedc5d2
# (cuda_decode_base): tests, decode tok/s of the Qwen2.5-0.5B-shaped model in alternating rounds, ncu durations of
# the output head's launch. gpu_carry/s36e.tgz. Writes log.txt, tests.txt, decode.txt, ncu.txt under $OUT.
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_dense_gemv:30 test_cuda_forward:60
decode_rounds 2 base new v3
ncu_head new v3
cat $L
