#!/bin/bash
# Stop 51, call i: skewed slices (-DQMR_SPLIT_SKEW=1 in bench/proto/split_timeline_s51.patch): when the slices are
# even in number and tile the columns exactly, the first half (the blocks dispatched first, which the timeline shows
# entering 3-7 us before the others and finishing their loops ~4 us earlier) take one 256-column quantum more and the
# second half one less (8192 columns: 5,5,5,5,3,3,3,3 quanta instead of 4 each). s1: that build; r4: HEAD's kernel;
# t_s1: s1 with the timeline probe. Then the split, PDL and forward tests of the skew build (meson in the patched
# worktree with -Dcuda_args=-DQMR_SPLIT_SKEW=1) and memcheck of the quick split test.
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader > $OUT/gpu.txt
tl() {  # tl V FORMAT TAG
  local s=$SECONDS; echo "== $1 $2 $3" >> $OUT/tl.txt
  timeout 60 $F/tl_$1 $2 ${RAW:-} >> $OUT/tl.txt 2>&1; echo "tl $1 $2 $3 rc=$? $((SECONDS-s))s" >> $L
}
s=$SECONDS; QMR_GEMV_TEST_QUICK=1 timeout 60 $F/test_cuda_gemv_split_s1 > $OUT/quick.txt 2>&1; echo "quick s1 rc=$? $((SECONDS-s))s" >> $L
for v in r4 s1; do for f in w4g128s w2g64s; do tl $v $f round1; done; done
for v in s1 r4; do for f in w4g128s w2g64s; do tl $v $f round2; done; done
mkdir -p /tmp/raw/t_s1; RAW=/tmp/raw/t_s1 tl t_s1 w4g128s trace
tar czf $OUT/raw.tgz -C /tmp raw
run_tests test_cuda_gemv_split_s1:120 test_cuda_gemv_pdl_s1:60 test_cuda_forward_s1:90
sanitize_quick test_cuda_gemv_split_s1 memcheck
for v in r4 s1; do for f in w4g128s w2g64s w3g128s w8g128s w4g128; do tl $v $f round3; done; done
cat $OUT/gpu.txt $L
grep -E "^== |graph|steady" $OUT/tl.txt
grep -E '^=== |passed|failed|ok: |All tests' $OUT/tests.txt $OUT/quick.txt | tail -8; grep -E "ERROR SUMMARY" $OUT/san.txt
