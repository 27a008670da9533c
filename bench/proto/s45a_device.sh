#!/bin/bash
# Stop 45, first call: the split GEMV with the rest of each warp's loads prefetched into L2 before pdl_wait
# (QMR_SPLIT_PREFETCH: 0 = HEAD, 1 = prefetch.global.L2 per 128-byte line, 2 = one cp.async.bulk.prefetch.L2 a warp),
# three builds alternating, two rounds, on 8192 x 8192 (2- and 4-bit) at 1, 8 and 16 tokens.
# gpu_carry/s45a.tgz holds the stripped binaries. Writes log.txt, bench.txt.
F=/tmp/s45a; source "$(dirname "$0")/device_lib.sh"
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/gpu.txt
for round in 1 2; do for v in p0 p1 p2; do
  s=$SECONDS; echo "== $v round $round" >> $OUT/bench.txt
  timeout 100 $F/cuda_gemv_$v --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192,14336x4096 --bits 4,2 --batches 1,8,16 >> $OUT/bench.txt 2>&1
  echo "bench $v $round rc=$? $((SECONDS-s))s" >> $L
done; done
s=$SECONDS; QMR_GEMV_TEST_QUICK=1 timeout 90 $F/test_cuda_gemv_split > $OUT/tests.txt 2>&1; echo "split quick (prefetch 2) rc=$? $((SECONDS-s))s" >> $L
s=$SECONDS; timeout 60 $F/test_cuda_gemv_pdl >> $OUT/tests.txt 2>&1; echo "pdl (prefetch 2) rc=$? $((SECONDS-s))s" >> $L
cat $L; grep -E "^== |^\| (8192|14336) x" $OUT/bench.txt | awk -F'|' '/^==/{print; next} {print $2,$3,$4,"split",$5,"graph",$7,"cublasg",$12}'
