#!/bin/bash
# Stop 51, call e: the split kernel's slice counter taken with a relaxed atomic, no fence (-DQMR_SPLIT_POLL=2 in
# bench/proto/split_timeline_s51.patch): slices store their sums with relaxed stores into slots that hold 0xffffffff
# until filled; the last warp of a tile (by the counter) polls each slot it reads until full, adds in slice order as
# HEAD does, and empties the slots. q4: that build; r4: HEAD's kernel; t_q4: q4 with the timeline probe. Also the split
# and PDL tests of the q4 build (meson in the patched worktree with -Dcuda_args=-DQMR_SPLIT_POLL=2).
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader > $OUT/gpu.txt
tl() {  # tl V FORMAT TAG
  local s=$SECONDS; echo "== $1 $2 $3" >> $OUT/tl.txt
  timeout 60 $F/tl_$1 $2 ${RAW:-} >> $OUT/tl.txt 2>&1; echo "tl $1 $2 $3 rc=$? $((SECONDS-s))s" >> $L
}
s=$SECONDS; QMR_GEMV_TEST_QUICK=1 timeout 60 $F/test_cuda_gemv_split_q4 > $OUT/quick.txt 2>&1; echo "quick q4 rc=$? $((SECONDS-s))s" >> $L
for v in r4 q4; do for f in w4g128s w2g64s; do tl $v $f round1; done; done
for v in q4 r4; do for f in w4g128s w2g64s; do tl $v $f round2; done; done
mkdir -p /tmp/raw/t_q4; RAW=/tmp/raw/t_q4 tl t_q4 w4g128s trace
tar czf $OUT/raw.tgz -C /tmp raw
run_tests test_cuda_gemv_split_q4:120 test_cuda_gemv_pdl_q4:60
for v in r4 q4; do for f in w4g128s w2g64s w8g128s w3g128s; do tl $v $f round3; done; done
cat $OUT/gpu.txt $L
grep -E "^== |graph|steady" $OUT/tl.txt
grep -E '^=== |passed|failed|ok: |All tests' $OUT/tests.txt $OUT/quick.txt | tail -8
