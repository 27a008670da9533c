#!/bin/bash
# Stop 36's closing device call, on the final headers: every GPU test, compute-sanitizer memcheck and racecheck of the
# dense GEMV test (x now staged in shared memory), and the decode bench (both models, bf16/w4g128/w2g64, graph).
# gpu_carry/s36g.tgz. Writes log.txt, tests.txt, san.txt, decode.txt under $OUT.
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_gemv_pdl:40 test_cuda_dense_gemv:30 test_cuda_gemv:40 test_cuda_gemv_split:60 test_cuda_forward:60 test_cuda_attention:30 test_cuda_gemm:60 test_cuda_half_dequant:30 test_cuda_gemv_lanes:60
for tool in memcheck racecheck; do
  s=$SECONDS; echo "=== $tool" >> $OUT/san.txt
  timeout 60 compute-sanitizer --tool $tool $F/test_cuda_dense_gemv >> $OUT/san.txt 2>&1; echo "san $tool rc=$? $((SECONDS-s))s $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/san.txt | tail -1)" >> $L; done
s=$SECONDS
timeout 90 $F/cuda_decode --formats bf16,w4g128,w2g64 --modes graph --work /tmp/dec > $OUT/decode.txt 2>&1; echo "decode rc=$? $((SECONDS-s))s" >> $L
cat $L
