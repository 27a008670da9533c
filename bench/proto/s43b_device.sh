#!/bin/bash
# Stop 43, second call: why the row-streaming GEMV takes ~1.5 us a chunk whatever its bytes (s43a: w2 and w4 alike).
# Builds: the base (512-column chunks), 1024-column chunks, and consumers that skip the decode and mma (wrong results
# on purpose). Then ncu on one base launch at 16 tokens. Writes log.txt, bench.txt, ncu.txt.
F=/tmp/s43a; source "$(dirname "$0")/device_lib.sh"
for v in "" _c1024 _nocomp; do
  s=$SECONDS; echo "=== cuda_gemv$v" >> $OUT/bench.txt
  timeout 60 $F/cuda_gemv$v --split-only --stream 1 --runs 20 --rotate-bytes 1e9 --shapes 8192x8192 --bits 4,2 --batches 1,16 \
    2>&1 | grep "stream" >> $OUT/bench.txt; echo "bench$v rc=$? $((SECONDS-s))s" >> $L
done
s=$SECONDS
timeout 120 ncu --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis \
  --section LaunchStats --section Occupancy --kernel-name regex:gemv_stream --launch-skip 3 --launch-count 1 \
  $F/cuda_gemv --split-only --stream 1 --runs 3 --rotate-bytes 2e8 --shapes 8192x8192 --bits 4 --batches 16 > $OUT/ncu.txt 2>&1
echo "ncu rc=$? $((SECONDS-s))s" >> $L
cat $L $OUT/bench.txt; grep -v "^    ---\|^ *$" $OUT/ncu.txt | grep -A200 "gemv_stream" | head -120
