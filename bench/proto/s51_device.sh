#!/bin/bash
# Stop 51: a timeline of the landed split kernel in a CUDA graph of 20 calls with PDL (issue 7's 16-token bar).
# gpu_carry/s51.tgz holds s51/split_timeline: bench/proto/split_timeline_s51.cu built against HEAD's gemv_split.cuh
# with bench/proto/split_timeline_s51.patch applied (global timer and SM clock per block at entry, after pdl_wait and
# with x staged; per warp at its loop's end and after split_finish), on the CPU machine:
#   nvcc -std=c++20 --expt-relaxed-constexpr -O3 -gencode=arch=compute_90,code=sm_90 -DQMR_SPLIT_TRACE
#        -I WT/include -I WT/bench bench/proto/split_timeline_s51.cu -o split_timeline
# and the untraced landed benchmark (stop 49's gpu_carry/s49b.tgz) as the control of the probe's own cost.
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
cp /tmp/s49b/* $F/
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader > $OUT/gpu.txt
for f in ${FORMATS:-w4g128s w2g64s}; do
  s=$SECONDS; timeout 90 $F/split_timeline $f $OUT > $OUT/timeline_$f.txt 2>&1; echo "timeline $f rc=$? $((SECONDS-s))s" >> $L
done
bench_split land control 8192x8192 4,2 1,8,16
split_summary
grep -E "graph|steady" $OUT/timeline_*.txt
