#!/bin/bash
# Stop 37, device call 2 (H100), on the final headers: every GPU test; the split kernel at M = 1 and 16 on the issue's
# three large shapes beside the read ceiling timed both ways (graph and per call) and cuBLAS f16; and `qmr bench
# --device cuda` (the CLI's JSON with read_ceiling_call_seconds). gpu_carry/s37b.tgz. Writes log.txt, tests.txt,
# split.txt, cli.txt, cli.jsonl, cli_lanes.jsonl under $OUT.
F=/tmp/s37
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_gemv_pdl:40 test_cuda_dense_gemv:30 test_cuda_gemv:40 test_cuda_gemv_split:60 test_cuda_forward:60 test_cuda_attention:30 test_cuda_gemm:60 test_cuda_half_dequant:30 test_cuda_gemv_lanes:60
s=$SECONDS
timeout 200 $F/cuda_gemv --split-only --shapes 8192x8192,4096x14336,14336x4096 --bits 2,4,8 --batches 1,16 --runs 30 --rotate-bytes 1e9 > $OUT/split.txt 2>&1
echo "split rc=$? $((SECONDS-s))s" >> $L
s=$SECONDS
timeout 120 $F/qmr bench --device cuda --kernel gemv --quant w4g128,w2g64 --shape 8192x8192 --batch 1,16 --json $OUT/cli.jsonl > $OUT/cli.txt 2>&1
echo "cli gemv rc=$? $((SECONDS-s))s" >> $L
s=$SECONDS
timeout 60 $F/qmr bench --device cuda --kernel gemv --lanes --quant w4g128 --shape 8192x8192 --batch 1 --json $OUT/cli_lanes.jsonl >> $OUT/cli.txt 2>&1
echo "cli lanes rc=$? $((SECONDS-s))s" >> $L
cat $L
