#!/bin/bash
# Stop 41's closing device call: every CUDA test binary of build-gpu at HEAD (the split GEMV adding slices per row tile),
# then one round of the Qwen2.5-0.5B-shaped decode (bf16, w4g128; graph). gpu_carry/s41e.tgz holds the stripped
# binaries. Writes log.txt, tests.txt, decode.txt under $OUT.
F=/tmp/s41e; source "$(dirname "$0")/device_lib.sh"
all_cuda_tests
decode_rounds 1 new
cat $L
