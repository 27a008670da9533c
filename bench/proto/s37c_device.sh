#!/bin/bash
# Stop 37, device call 3 (H100): may buffers written by the previous kernel be read through L1 (ld.global.ca, a weak
# coherent load) after griddepcontrol.wait, instead of through L2 only (ld.global.cg, HEAD)? PTX says the wait makes
# the prerequisite grids' writes visible to the current grid; the read-only path (ld.global.nc, __ldg) is outside that
# contract and was seen stale in stop 35. Builds: HEAD b8e7421 (cg: $F/*), ca ($F/ca/*), nc ($F/nc/test_cuda_gemv_pdl,
# the control that should fail). The PDL chain test 6 times per build; test_cuda_forward on ca; the tiled GEMV
# (cuda_gemv's main table, with cuBLAS) and the Qwen2.5-0.5B-shaped decode, cg against ca. gpu_carry/s37c.tgz.
# Writes log.txt, tests.txt, gemv.txt, decode.txt under $OUT.
F=/tmp/s37
source "$(dirname "$0")/device_lib.sh"
for v in nc ca cg; do for i in 1 2 3 4 5 6; do
  b=$F/test_cuda_gemv_pdl; [ $v = cg ] || b=$F/$v/test_cuda_gemv_pdl
  s=$SECONDS; echo "=== $v pdl $i" >> $OUT/tests.txt
  timeout 40 $b > /tmp/pdl.txt 2>&1; rc=$?; grep -cE ": ok " /tmp/pdl.txt > /tmp/n_ok; grep -vE ": ok " /tmp/pdl.txt | head -20 >> $OUT/tests.txt
  echo "pdl $v $i rc=$rc ok_lines=$(cat /tmp/n_ok) $((SECONDS-s))s" >> $L
done; done
s=$SECONDS; echo "=== ca forward" >> $OUT/tests.txt; timeout 60 $F/ca/test_cuda_forward >> $OUT/tests.txt 2>&1; echo "forward ca rc=$? $((SECONDS-s))s" >> $L
for round in 1 2; do for v in cg ca; do
  b=$F/cuda_gemv; [ $v = cg ] || b=$F/$v/cuda_gemv
  s=$SECONDS; echo "== $v round $round" >> $OUT/gemv.txt
  timeout 80 $b --shapes 8192x8192,4096x14336,896x4864 --bits 4 --batches 1,4,16 --runs 30 --rotate-bytes 1e9 >> $OUT/gemv.txt 2>&1
  echo "gemv $v $round rc=$? $((SECONDS-s))s" >> $L
done; done
for round in 1 2; do for v in cg ca; do
  b=$F/cuda_decode; [ $v = cg ] || b=$F/$v/cuda_decode
  s=$SECONDS; echo "== $v round $round" >> $OUT/decode.txt
  timeout 60 $b --models qwen2.5-0.5b --formats bf16,w4g128 --modes graph --work /tmp/dec >> $OUT/decode.txt 2>&1
  echo "decode $v $round rc=$? $((SECONDS-s))s" >> $L
done; done
cat $L
