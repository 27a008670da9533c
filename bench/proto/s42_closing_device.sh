#!/bin/bash
# Stop 42's closing device call: every CUDA test binary of build-gpu at HEAD (split_takes re-drawn from
# bench/results/cuda_gemv_split_dispatch_h100_20261206_s42.md; test_cuda_gemv_split_layout checks the new choices and
# test_cuda_gemv_split that gemv() gives the named kernel's bits), then one round of the Qwen2.5-0.5B-shaped decode
# (bf16, w4g128; graph). gpu_carry/s42c.tgz holds the stripped binaries. Writes log.txt, gpu.txt, tests.txt, decode.txt.
F=/tmp/s42c; source "$(dirname "$0")/device_lib.sh"
all_cuda_tests
decode_rounds 1 new
cat $L
