#!/bin/bash
# Stop 39's device call: every CUDA test binary of build-gpu at this stop's HEAD (aligned_buffer now asks for huge
# pages and the loader can read checkpoints into memory: host code the GPU tests and decode share), then one round of
# the Qwen2.5-0.5B-shaped decode (bf16, w4g128; graph) to compare with stop 38's 1109-1111 and 1232-1246 tok/s on an H100.
# gpu_carry/s39.tgz holds the stripped binaries. Writes log.txt, tests.txt, decode.txt under $OUT.
F=/tmp/s39; source "$(dirname "$0")/device_lib.sh"
all_cuda_tests
decode_rounds 1 new
cat $L
