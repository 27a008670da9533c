#!/bin/bash
# Stop 36's second device call: gemv() takes the split kernel where split_takes() says so (upload_layouts::split), with
# device.cuh split out of gemv.cuh. The GPU tests (test_cuda_gemv_split now checks gemv()'s choice bit for bit); the split
# table at M = 1, 2, 4, 8, 12, 16 on the shapes call 1 did not bring back (8192 x 8192, 896 x 4864) and on more row
# lengths (4096, 2048, 8960, 1536 columns) for split_min_cols; and the decode bench on the H100 (issue 7's decode
# figure had only been measured on an H200). gpu_carry/s36b.tgz. Writes log.txt, tests.txt, split.txt, decode.txt
# and decode.json under $OUT (few files: a reply brings back at most 8).
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_gemv_split:60 test_cuda_gemv_pdl:40 test_cuda_gemv:40 test_cuda_forward:60 test_cuda_gemm:60
for S in 8192x8192 896x4864 4096x4096 2048x2048 1536x8960 8960x1536; do
  s=$SECONDS; echo "== $S" >> $OUT/split.txt
  timeout 50 $F/cuda_gemv --split-only --runs 30 --rotate-bytes 1e9 --shapes $S --bits 2,3,4,8 --batches 1,2,4,8,12,16 \
    >> $OUT/split.txt 2>&1; echo "split $S rc=$? $((SECONDS-s))s" >> $L; done
s=$SECONDS
timeout 120 $F/cuda_decode --json $OUT/decode.json --formats bf16,w4g128,w2g64 --modes graph,graph-nopdl,eager --work /tmp/dec \
  > $OUT/decode.txt 2>&1; echo "decode rc=$? $((SECONDS-s))s" >> $L
cat $L
