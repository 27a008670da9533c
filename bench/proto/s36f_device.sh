#!/bin/bash
# Stop 36: dense GEMV variants on the H100, decode tok/s of the Qwen2.5-0.5B-shaped model (bf16, w4g128) in alternating
# rounds and ncu durations of the output head: `cuda_decode` = x staged + 4 loads a lane in flight (the first version,
# 72 registers), v3 = loads issued before pdl_wait + 64-register cap, v4 = the first version + 64-register cap (4 blocks
# an SM), v5 = v4 with 2 loads a lane. gpu_carry/s36f.tgz. Writes log.txt, tests.txt, decode.txt, ncu.txt under $OUT.
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_dense_gemv:30 test_cuda_forward:60
decode_rounds 2 v1 v3 v4 v5
ncu_head v1 v4 v5
cat $L
