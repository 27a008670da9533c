#!/bin/bash
# Stop 41's second device call: the split GEMV summing a band's slices in a thread-block cluster (DSMEM) from 9 tokens
# (split_sum::automatic), against HEAD's workspace sums. gpu_carry/s41b.tgz: build-gpu's bench/cuda_gemv and CUDA tests
# with bench/proto/split_cluster_sums_s41.patch applied to 95357e7 (it adds cuda_gemv --split-sum), and cuda_gemv_BASE
# (95357e7's bench). Tests, the split test's quick subset under compute-sanitizer, then 8192 x 8192 and 14336 x 4096 at
# 1, 8, 12, 16 tokens, the two builds alternating (two rounds), and either sum forced at 1, 4, 8 and 16 tokens. Writes
# log.txt, tests.txt, san.txt, bench.txt under $OUT.
F=/tmp/s41b; source "$(dirname "$0")/device_lib.sh"
nvidia-smi --query-gpu=name,memory.total --format=csv > $OUT/gpu.txt 2>&1
split_tests
split_ab 8192x8192,14336x4096 2,3,4,8 1,8,12,16
for sum in cluster workspace; do
  s=$SECONDS; echo "== new --split-sum $sum" >> $OUT/bench.txt
  timeout 60 $F/cuda_gemv --split-only --split-sum $sum --runs 30 --rotate-bytes 1e9 --shapes 8192x8192 --bits 4 --batches 1,4,8,16 >> $OUT/bench.txt 2>&1
  echo "bench $sum rc=$? $((SECONDS-s))s" >> $L
done
cat $L
