#!/bin/bash
# (call f: the same binary built with -DQMR_ROWSTREAM_DEEP, which adds 6-7 stages of 512 columns and clusters of 2 with 3 stages of 1024.)
# Stop 52, call f: the copy floor of a row-streaming GEMV (bench/proto/rowstream_copy_s52.cu, timing only): bulk copies
# of each block's 4 row tiles and of x's token rows through a ring of stages, x multicast in clusters of 1, 2 and 4,
# against a plain read of the same bytes, all as graphs of 20 calls with PDL.
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s52e
gpu_clocks
s=$SECONDS; timeout 150 $F/rowstream > $OUT/rowstream_f.txt 2>&1; echo "rowstream rc=$? $((SECONDS-s))s" >> $L
cat $OUT/gpu.txt $L $OUT/rowstream_f.txt
