#!/bin/bash
# Stop 48: two changes to the split GEMV's warps, not yet run (no device machine started at stop 48; the ledger,
# bench/results/cuda_gemv_m16_ledger.md, says so),
# built on the CPU machine with -Dcuda_args=-DQMR_SPLIT_PROTO=N (bench/proto/split_counter_chains_s48.patch):
#   p1: the slice counter taken with one atom.acq_rel.gpu by lane 0 after __syncwarp, in place of two
#       __threadfence() (fence.sc.gpu) by every lane around a relaxed atomicAdd;
#   p3: p1, and the odd k-steps' mma into a second set of partial sums (two dependent chains, not one).
# a0 is HEAD's kernel (gpu_carry/s46.tgz's cuda_gemv_a0, copied into s48.tgz). Order: the quick split test of p3,
# the A/B rounds (a0, p1, p3 alternating), the full split and PDL tests of p3, its sanitizer runs,
# then a0 and p3 on three shapes at 8 and 16 tokens (last: cut first when device time runs out).
# (Its steps were rewritten over device_lib.sh's helpers, same commands, at stop 49, which ran these binaries through
# s49_device.sh instead.)
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s48
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/gpu.txt
s=$SECONDS; QMR_GEMV_TEST_QUICK=1 timeout 60 $F/test_cuda_gemv_split_p3 > $OUT/quick.txt 2>&1; echo "quick p3 rc=$? $((SECONDS-s))s" >> $L
for round in 1 2; do for v in a0 p1 p3; do bench_split $v "round $round" 8192x8192 4,2 1,16; done; done
run_tests test_cuda_gemv_split_p3:120 test_cuda_gemv_pdl_p3:60
sanitize_quick test_cuda_gemv_split_p3 memcheck racecheck
for v in a0 p3; do bench_split $v full 8192x8192,4096x14336,14336x4096 2,3,4,8 8,16; done
split_summary
