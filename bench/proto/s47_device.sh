#!/bin/bash
# Stop 47: where the split GEMV's time at 16 tokens goes (stop 46's diagnostic, never run then, plus one more
# build). Builds of bench/cuda_gemv with QMR_SPLIT_ABLATE (bench/proto/split_ablate_mma_decode_s46.patch, with
# bit 2 added in stop 47): a0 = HEAD, a1 = the second mma of each k-step dropped (half the tensor-core work at
# 9-16 tokens), a2 = the decode dropped (raw codes fed to the mma), a3 = both, a4 = x's ldmatrix only at each
# load's first k-step (an eighth of the shared-memory reads of x at 4 bits), a7 = all three. Wrong sums, timing
# only. One round, on 8192 x 8192 (2- and 4-bit) at 1 and 16 tokens. Then the GPU forward pass test
# (greedy generation against the CPU path) after the shared generate loop (generate.hpp).
# Then stop 47's prototype, two row tiles per warp (bench/proto/split_two_tiles_s47.patch: 8 warps a block, each
# decoding two tiles' weights against one ldmatrix of x, half the shared-memory reads of x), as tt: its split tests,
# then tt against a0 on 8192 x 8192 at 2, 3, 4 and 8 bits, 1, 8 and 16 tokens, and again at 2 and 4 bits, 16 tokens.
# Binaries: gpu_carry/s46.tgz (a0-a3, test_cuda_forward) and gpu_carry/s47.tgz (a4, a7), built on the CPU machine:
#   meson setup build-aN -Dgpu_arch=90 -Dgpu_bench=true -Dtests=disabled -Dtools=disabled -Dexamples=false \
#     -Dcuda_args=-DQMR_SPLIT_ABLATE=N && ninja -C build-aN bench/cuda_gemv
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
