#!/bin/bash
# Stop 47 (run once on an H100; results: bench/results/cuda_gemv_split_m16_ablation_h100_20261206_s47.md):
# 1. tt, the two-row-tiles-per-warp prototype (bench/proto/split_two_tiles_s47.patch): its split test, then tt against
#    a0 (HEAD) on 8192 x 8192 at 2, 3, 4 and 8 bits, 1, 8 and 16 tokens, and again at 2 and 4 bits, 16 tokens.
# 2. Where the split GEMV's time at 16 tokens goes: builds with bench/proto/split_ablate_mma_decode_s46.patch and
#    -DQMR_SPLIT_ABLATE=N, a1 (the second mma of each k-step dropped), a2 (no decode: the raw codes go to the mma),
#    a4 (x's ldmatrix only at a load's first k-step); wrong sums, timing only. 8192 x 8192, 2 and 4 bits, 1 and 16.
# 3. The GPU forward pass test (greedy generation against the CPU path) with the shared decode loop (generate.hpp).
# Binaries, built on the CPU machine: gpu_carry/s46.tgz (cuda_gemv_a0-a3, test_cuda_forward) and gpu_carry/s47.tgz
# (cuda_gemv_a4, _a7, _tt, test_cuda_gemv_split_tt, test_cuda_gemv_pdl_tt), copied into one folder below. Ablation builds:
#   meson setup build-aN -Dgpu_arch=90 -Dgpu_bench=true -Dtests=disabled -Dtools=disabled -Dexamples=false \
#     -Dcuda_args=-DQMR_SPLIT_ABLATE=N && ninja -C build-aN bench/cuda_gemv
# tt: the same setup with tests enabled and no define, then ninja bench/cuda_gemv tests/test_cuda_gemv_split.
source "$(dirname "$0")/device_lib.sh"
cp /tmp/s47/* /tmp/s46/ 2>/dev/null; F=/tmp/s46
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/gpu.txt
run_tests test_cuda_gemv_split_tt:60
for round in 1 2; do for v in a0 tt; do
  s=$SECONDS; echo "== $v full round $round" >> $OUT/bench.txt
  if [ $round = 1 ]; then set -- --bits 2,3,4,8 --batches 1,8,16; else set -- --bits 4,2 --batches 16; fi
  timeout 100 $F/cuda_gemv_$v --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192 "$@" >> $OUT/bench.txt 2>&1
  echo "bench $v full $round rc=$? $((SECONDS-s))s" >> $L
done; done
for v in a1 a2 a4; do
  s=$SECONDS; echo "== $v round 1" >> $OUT/bench.txt
  timeout 100 $F/cuda_gemv_$v --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192 --bits 4,2 --batches 1,16 >> $OUT/bench.txt 2>&1
  echo "bench $v 1 rc=$? $((SECONDS-s))s" >> $L
done
run_tests test_cuda_forward:60
cat $OUT/gpu.txt $L; grep -E "^== |^\| 8192 x" $OUT/bench.txt | awk -F'|' '/^==/{print; next} {print $2,$3,$4,"split",$5,"graph",$7,"cublasg",$12}'
grep -E '^=== |passed|failed|All tests' $OUT/tests.txt
