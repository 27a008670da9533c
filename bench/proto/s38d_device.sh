#!/bin/bash
# Stop 38, device call 4 (H100): bench/proto/attention_prefetch_l1.patch (attention prefetches its run's K and V rows
# into L1 right after pdl_wait; cuda_decode, "new") against HEAD's kernel (cuda_decode_v0, built at e1bef27):
# test_cuda_attention and test_cuda_forward on the patched kernel, memcheck on the attention test, the
# Qwen2.5-0.5B-shaped decode in alternating rounds, and ncu of the attention launches of a w4g128 decode step.
# gpu_carry/s38d.tgz. Writes log.txt, tests.txt, san.txt, decode.txt, ncu.txt under $OUT.
F=/tmp/s38
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_attention:60 test_cuda_forward:60
sanitize test_cuda_attention memcheck
decode_rounds 3 v0 new
ncu_kernels attention w4g128 100 48 v0 new
cat $L
