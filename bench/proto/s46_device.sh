#!/bin/bash
# Stop 46: where the split GEMV's time at 16 tokens goes. Builds of bench/cuda_gemv with QMR_SPLIT_ABLATE
# (bench/proto/split_ablate_mma_decode_s46.patch): a0 = HEAD, a1 = the second mma of each k-step dropped (half the
# tensor-core work at 9-16 tokens), a2 = the decode dropped (raw codes fed to the mma), a3 = both; wrong sums,
# timing only. Two rounds, alternating, on 8192 x 8192 (2- and 4-bit) at 1 and 16 tokens. Then the GPU forward
# pass test (greedy generation against the CPU path) after the shared generate loop (generate.hpp).
# Build (CPU machine, after `git apply bench/proto/split_ablate_mma_decode_s46.patch`), for N in 0 1 2 3:
#   meson setup build-aN -Dgpu_arch=90 -Dgpu_bench=true -Dtests=disabled -Dtools=disabled -Dexamples=false \
#     -Dcuda_args=-DQMR_SPLIT_ABLATE=N && ninja -C build-aN bench/cuda_gemv   (about 1.5 min each on 2 cores)
# then copy each to /tmp/s46/cuda_gemv_aN, with build/tests/test_cuda_forward, strip, tar czf gpu_carry/s46.tgz s46.
# Not run in stop 46: no device started. gpu_carry/s46.tgz holds the binaries. Writes log.txt, bench.txt, tests.txt.
F=/tmp/s46; source "$(dirname "$0")/device_lib.sh"
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/gpu.txt
for round in 1 2; do for v in a0 a1 a2 a3; do
  s=$SECONDS; echo "== $v round $round" >> $OUT/bench.txt
  timeout 100 $F/cuda_gemv_$v --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192 --bits 4,2 --batches 1,16 >> $OUT/bench.txt 2>&1
  echo "bench $v $round rc=$? $((SECONDS-s))s" >> $L
done; done
run_tests test_cuda_forward:120
cat $L; grep -E "^== |^\| 8192 x" $OUT/bench.txt | awk -F'|' '/^==/{print; next} {print $2,$3,$4,"split",$5,"graph",$7,"cublasg",$12}'
tail -4 $OUT/tests.txt
