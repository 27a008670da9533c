#!/bin/bash
# Stop 45, second call: the split GEMV with one 16-warp block per SM (stop 42's grid: half the slices) but compiled for
# two blocks per SM (at most 64 registers; 106 KB of shared memory at 16 tokens), so that the PDL-launched next kernel's
# block can sit beside it from the start (bench/proto/split_one_block_coresident_s45.patch; bps2 = HEAD, bps1 = this).
# Builds alternate, two rounds. gpu_carry/s45b.tgz holds the stripped binaries. Writes log.txt, bench.txt, gpu.txt.
F=/tmp/s45b; source "$(dirname "$0")/device_lib.sh"
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/gpu.txt
for round in 1 2; do for v in bps2 bps1; do
  s=$SECONDS; echo "== $v round $round" >> $OUT/bench.txt
  timeout 100 $F/cuda_gemv_$v --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192,14336x4096 --bits 4,2 --batches 1,8,16 >> $OUT/bench.txt 2>&1
  echo "bench $v $round rc=$? $((SECONDS-s))s" >> $L
done; done
cat $L; grep -E "^== |^\| (8192|14336) x" $OUT/bench.txt | awk -F'|' '/^==/{print; next} {print $2,$3,$4,"split",$5,"graph",$7,"cublasg",$12}'
