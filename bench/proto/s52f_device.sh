#!/bin/bash
# Stop 52, call f (not yet run): s52e_device.sh's row-streaming copy probe (bench/proto/rowstream_copy_s52.cu, timing
# only) built with -DQMR_ROWSTREAM_DEEP, which adds deeper rings (6-7 stages of 512 columns, 192-224 KB) and clusters
# of 2 with 3 stages of 1024 columns; output to rowstream_f.txt.
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s52e
gpu_clocks
s=$SECONDS; timeout 150 $F/rowstream > $OUT/rowstream_f.txt 2>&1; echo "rowstream rc=$? $((SECONDS-s))s" >> $L
cat $OUT/gpu.txt $L $OUT/rowstream_f.txt
