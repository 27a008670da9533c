#!/bin/bash
# Stop 51, calls c and d: the split kernel with no slice counter (-DQMR_SPLIT_POLL=1 in bench/proto/split_timeline_s51.patch):
# each workspace slot holds 0xffffffff until its slice stores a sum with a relaxed store; the tile's warp of the last
# slice polls for the other slices' sums, adds them in slice order after its own (kept in its ring), and empties the
# slots (call c polled one slice at a time; call d, as the patch is now, polls 8 slices at a time). Against r4 (HEAD's kernel) in the timeline harness (gpu_carry/s51.tgz: s51/tl_V, s51/tl_t_V traced), and the
# split and PDL tests of the poll build (meson in the patched worktree with -Dcuda_args=-DQMR_SPLIT_POLL=1).
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader > $OUT/gpu.txt
tl() {  # tl V FORMAT TAG
  local s=$SECONDS; echo "== $1 $2 $3" >> $OUT/tl.txt
  timeout 60 $F/tl_$1 $2 ${RAW:-} >> $OUT/tl.txt 2>&1; echo "tl $1 $2 $3 rc=$? $((SECONDS-s))s" >> $L
}
s=$SECONDS; QMR_GEMV_TEST_QUICK=1 timeout 60 $F/test_cuda_gemv_split_p4 > $OUT/quick.txt 2>&1; echo "quick p4 rc=$? $((SECONDS-s))s" >> $L
for v in r4 p4; do for f in w4g128s w2g64s; do tl $v $f round1; done; done
for v in p4 r4; do for f in w4g128s w2g64s; do tl $v $f round2; done; done
mkdir -p /tmp/raw/t_p4; RAW=/tmp/raw/t_p4 tl t_p4 w4g128s trace
tar czf $OUT/raw.tgz -C /tmp raw
run_tests test_cuda_gemv_split_p4:120 test_cuda_gemv_pdl_p4:60
for v in r4 p4; do for f in w4g128s w2g64s; do tl $v $f round3; done; done
cat $OUT/gpu.txt $L
grep -E "^== |graph|steady" $OUT/tl.txt
grep -E '^=== |passed|failed|ok: |All tests' $OUT/tests.txt $OUT/quick.txt | tail -8
