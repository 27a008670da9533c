#!/bin/bash
# Stop 36: the dense GEMV (bf16/f16/f32 weights: Qwen's output head, every linear of a bf16 model) with x staged in
# shared memory and 4 weight loads per lane in flight, against HEAD's (aedc5d2, cuda_decode_base): tests, decode tok/s
# of the Qwen2.5-0.5B-shaped model in alternating rounds, ncu durations of the output head's launch.
# gpu_carry/s36d.tgz. Writes log.txt, tests.txt, decode.txt, ncu.txt under $OUT.
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_dense_gemv:30 test_cuda_forward:60 test_cuda_gemv_split:60
decode_rounds 2 base new
ncu_head base new
cat $L
