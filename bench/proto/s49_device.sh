#!/bin/bash
# Stop 49: stop 48's two split-kernel changes (p1, p3: bench/proto/split_counter_chains_s48.patch) and a limited L2
# prefetch (f4, f8: bench/proto/split_l2_prefetch_next_s49.patch, -Dcuda_args=-DQMR_SPLIT_PREFETCH=4|8: one bulk
# prefetch a warp, before pdl_wait, of the 4 or 8 loads after the ring's; stop 45 prefetched all of them and was
# 12-19% slower), and c34 (p3 and f4 together: -DQMR_SPLIT_PROTO=3 -DQMR_SPLIT_PREFETCH=4), against HEAD's kernel
# (a0). Binaries built on the CPU machine, in gpu_carry/s48.tgz and s49.tgz.
# Order: two A/B rounds (order reversed), c34's quick split test, its tests and sanitizer runs, a third round, then
# the 8/16-token runs on three shapes (last: cut first when device time runs out).
# (Its steps were rewritten over device_lib.sh's helpers, same commands, after it ran.)
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s48
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/gpu.txt
cp /tmp/s49/* $F/
AB="8192x8192 4,2 1,16"  # shapes, bits, batches of the A/B rounds
for v in a0 p1 p3 f4 f8 c34; do bench_split $v round1 $AB; done
for v in c34 f8 f4 p3 p1 a0; do bench_split $v round2 $AB; done
s=$SECONDS; QMR_GEMV_TEST_QUICK=1 timeout 60 $F/test_cuda_gemv_split_c34 > $OUT/quick.txt 2>&1; echo "quick c34 rc=$? $((SECONDS-s))s" >> $L
run_tests test_cuda_gemv_split_c34:120 test_cuda_gemv_pdl_c34:60
sanitize_quick test_cuda_gemv_split_c34 memcheck racecheck
for v in p3 a0 c34 f4 p1 f8; do bench_split $v round3 $AB; done
for v in a0 c34; do bench_split $v full 8192x8192,4096x14336,14336x4096 2,3,4,8 8,16; done
split_summary
