#!/bin/bash
# Stop 37 (not run: no device time was left; for bench/proto/attention_prefetch_l1.patch): attention's K and V rows prefetched into L1 at the kernel's start (cuda_decode,
# "new") against eff9714's kernel (cuda_decode_v0): test_cuda_attention and test_cuda_forward on the new kernel,
# compute-sanitizer memcheck on the attention test, the Qwen2.5-0.5B-shaped decode in alternating rounds, and ncu of
# the attention launches of a w4g128 decode step. gpu_carry/s37g.tgz. Writes log.txt, tests.txt, san.txt, decode.txt,
# ncu.txt under $OUT.
F=${F:-/tmp/s37}
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_attention:60 test_cuda_forward:60
sanitize test_cuda_attention memcheck
decode_rounds 3 v0 new
ncu_kernels attention w4g128 100 48 v0 new
cat $L
