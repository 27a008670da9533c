#!/bin/bash
# Stop 57's device call a, in order of need:
#   1. the timeline probe (bench/proto/timeline_s57.cu): the SM -> GPC map, one traced graph replay of the wide kernel
#      with its tail, without it, and with a 12-slot burst ring (CSV per block and call to $OUT/tl/), then the
#      variants' graph times (rings 4/8/12/16 with 3 in flight after the wait; tail / no tail; traced / untraced);
#   2. the GPU tests of HEAD (4c5e230), which stop 56 adjusted after its last device call and never ran: the split
#      layout test, the split test (full), its full-size pair check alone (QMR_GEMV_TEST_PAIR_ONLY=1), the PDL test;
#   3. compute-sanitizer memcheck and racecheck over the quick split test and the pair check alone.
# Binaries in /tmp/s58, built on the CPU machine (meson GPU build of HEAD, sm_90, and nvcc for the probe), packed as
# gpu_carry/s58.tgz.
F=/tmp/s58
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
source "$(dirname "$0")/device_lib.sh"
gpu_clocks
timeline_s57
run_tests test_cuda_gemv_split_layout:30 test_cuda_gemv_split:150
s=$SECONDS; echo "=== pair only" >> $OUT/tests.txt
QMR_GEMV_TEST_PAIR_ONLY=1 timeout 90 $F/test_cuda_gemv_split >> $OUT/tests.txt 2>&1; echo "pair-only rc=$? $((SECONDS-s))s" >> $L
run_tests test_cuda_gemv_pdl:90
sanitize_quick test_cuda_gemv_split memcheck racecheck
sanitize_pair_only memcheck racecheck
cat $OUT/gpu.txt $L
grep -E '^=== |FAIL|ok  |passed|failed|ok: |split_pair|pair' $OUT/tests.txt | head -70
grep -E 'SUMMARY' $OUT/san.txt
cat $OUT/timeline.txt
