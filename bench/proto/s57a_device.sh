#!/bin/bash
# Stop 56's device call (run once, call a: bench/results/cuda_gemv_split_pair_h100_20261207_s56.md), in order of need:
#   1. stop 55's pair probe (bench/proto/pair_s55.cu; read its "clusters resident" first: 64 clusters of 2 must fit);
#   2. the pair patch's tests (bench/proto/split_pair_s56.patch: the split kernel's 16-token calls in clusters of 1 or
#      2 blocks holding two slices each, for symmetric codes with 2 or 4 wide slices);
#   3. `cuda_gemv --split-only` at 16 tokens, HEAD (old) against the patch (new), alternating, two rounds, six shapes x
#      w2g64s, w4g128s, w8g128s, w4g128, w8g128 (30 rows a build; the two asymmetric formats keep the wide kernel, a
#      control for the run's noise);
#   4. compute-sanitizer memcheck and racecheck over the quick split test (small pair shapes in clusters of 1 and 2);
#      the PDL test (now with 16-token chains: 4096 wide, 7168 pair) and the gemv test;
#   5. the wide probe (wide_s55.cu: 18- and 20-warp cluster-4 tails) and the pair probe's second round;
#   6. for split_takes (its rule predates split_wide): HEAD's split kernel against the tiled one at 9, 12 and 16 tokens
#      on Qwen2.5-0.5B's and small square shapes, w4g128s (`cuda_gemv --split`, both tables), to rule.txt;
#   7. memcheck and racecheck over the full-size pair check alone (QMR_GEMV_TEST_PAIR_ONLY=1: 8192 x 8192 and
#      6912 x 4096; last, as it may be slow: the call's 600 s limit keeps what came before).
# Binaries in /tmp/s57, built on the CPU machine and packed as gpu_carry/s57.tgz by bench/proto/s57_build.sh at
# 767627e (removed when split_pair landed; it built the probes, HEAD's cuda_gemv and the patched tests and cuda_gemv).
F=/tmp/s57
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
source "$(dirname "$0")/device_lib.sh"
gpu_clocks
probe() { local s=$SECONDS; echo "== $1 round $2" >> $OUT/probe.txt; timeout 150 $F/$1 w4g128s >> $OUT/probe.txt 2>&1; echo "$1 $2 rc=$? $((SECONDS-s))s" >> $L; }
probe pair 1
run_tests test_cuda_gemv_split_layout:30 test_cuda_gemv_split:150
shapes=8192x8192,4096x14336,14336x4096,4096x4096,1536x8960,8960x1536
for round in 1 2; do for v in old new; do bench_split $v "round $round" $shapes 4,2,8 16; done; done
sanitize_quick test_cuda_gemv_split memcheck racecheck
run_tests test_cuda_gemv_pdl:90 test_cuda_gemv:90
probe wide 1
probe pair 2
s=$SECONDS; timeout 120 $F/cuda_gemv_old --split --runs 20 --batches 9,12,16 --bits 4 \
  --shapes 896x896,128x896,4864x896,896x4864,2048x2048,4096x4096 > $OUT/rule.txt 2>&1; echo "rule rc=$? $((SECONDS-s))s" >> $L
sanitize_pair_only memcheck racecheck
cat $OUT/gpu.txt $L
grep -E '^=== |FAIL|ok  |passed|failed|ok: |split_pair|7168' $OUT/tests.txt | head -70
grep -E 'SUMMARY' $OUT/san.txt
grep -E "^== |^\| 8192 x" $OUT/bench.txt
cat $OUT/probe.txt
