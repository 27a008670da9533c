#!/bin/bash
# Stop 53, calls a, b and c: the row-owning GEMV with x read as mma fragments from L2/L1 (bench/proto/rowx_s53.cu) at 16
# tokens, its variants against HEAD's split kernel, cuBLAS f16 and the read ceiling in the same run, for w4g128s
# and per-channel w4gcs.
F=/tmp/s53
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
source "$(dirname "$0")/device_lib.sh"
gpu_clocks
for f in ${FORMATS:-w4g128s w4gcs}; do
  s=$SECONDS; timeout 200 $F/rowx $f > $OUT/rowx_$f.txt 2>&1; echo "rowx $f rc=$? $((SECONDS-s))s" >> $L
done
cat $OUT/gpu.txt $L $OUT/rowx_*.txt
