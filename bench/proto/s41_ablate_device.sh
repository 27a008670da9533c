#!/bin/bash
# Stop 41's device call: where the split GEMV's time at 16 tokens goes. Four builds of bench/cuda_gemv that differ only
# in ablation macros of gemv_split.cuh (bench-only, results wrong on purpose): BASE (HEAD), X1 (x staged for token 0
# only: the other rows zero-filled without reading), NOTAIL (the band's last block does not add the slices), NOWS (no
# workspace writes either). 8192 x 8192 w4g128s/w4g128 at M = 1, 8, 16, per call and in a graph; builds alternate, two
# rounds. gpu_carry/s41a.tgz holds the binaries. Writes log.txt and abl.txt under $OUT.
set -u
cd "$(dirname "$0")/../.." && tar xzf gpu_carry/s41a.tgz -C /tmp
L=$OUT/log.txt
nvidia-smi --query-gpu=name,memory.total --format=csv > $OUT/gpu.txt 2>&1
for round in 1 2; do for v in BASE X1 NOTAIL NOWS; do
  s=$SECONDS; echo "== $v round $round" >> $OUT/abl.txt
  timeout 90 /tmp/s41a/cuda_gemv_$v --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192 --bits 4 --batches 1,8,16 >> $OUT/abl.txt 2>&1
  echo "bench $v $round rc=$? $((SECONDS-s))s" >> $L
done; done
cat $L
