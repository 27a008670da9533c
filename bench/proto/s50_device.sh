#!/bin/bash
# Stop 50: does the split kernel's workspace cost HBM write-back? Variants of gemv_split.cuh
# (bench/proto/split_l2_s50.patch, switches set by -Dcuda_args), against the landed kernel (land: stop 49's
# gpu_carry/s49b.tgz, built from 92ffe4a's gemv_split.cuh, which HEAD still has):
#   t:  the workspace tile-major, [slice][tile][16 tokens][16 rows] (-DQMR_SPLIT_WS_TILE=1), so that a tile's
#       partial sums of a slice are 8 whole 128-byte lines;
#   d:  t, and the tile's last warp drops those lines from L2 with discard.global.L2 after adding them
#       (-DQMR_SPLIT_DISCARD=1): the 4.2 MB of partial sums at 16 tokens are never written back to HBM;
#   e:  the weights' cp.async with an L2 evict-first policy (-DQMR_SPLIT_EVICT=1), as the tiled kernel has;
#   de: d and e.
# Built on the CPU machine in a worktree with the patch applied, one build directory a variant:
#   meson setup B -Dgpu_arch=90 -Dgpu_bench=true -Dtests=enabled -Dtools=disabled -Dexamples=false "-Dcuda_args=SWITCHES"
#   ninja -C B bench/cuda_gemv tests/test_cuda_gemv_split [tests/test_cuda_gemv_pdl tests/test_cuda_forward]
# and carried as gpu_carry/s50.tgz (s50/cuda_gemv_V, s50/test_cuda_*_V).
# Two calls, so that a machine taken back loses less: `s50_device.sh a` runs de's quick split test and two A/B
# rounds (order reversed); `b` the landed build's tests (stop 49's s49b, never run) and the variants', sanitizers, a
# third round, a wider run of land and d (last: cut first). As run: e and de stopped at their first launch with an
# illegal instruction in call a, so call b's third round, sanitizers and wider run name land, t and d only (b still
# runs e's and de's tests, which fail at once).
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s50
cp /tmp/s49b/* $F/
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/gpu.txt
AB="8192x8192 4,2 1,8,16"  # shapes, bits, batches of the A/B rounds
if [ "${1:-a}" = a ]; then
s=$SECONDS; QMR_GEMV_TEST_QUICK=1 timeout 60 $F/test_cuda_gemv_split_de > $OUT/quick.txt 2>&1; echo "quick de rc=$? $((SECONDS-s))s" >> $L
for v in land t d e de; do bench_split $v round1 $AB; done
for v in de e d t land; do bench_split $v round2 $AB; done
else
run_tests test_cuda_gemv_split_land:120 test_cuda_gemv_pdl_land:60 test_cuda_gemv_split_de:120 test_cuda_gemv_pdl_de:60 \
  test_cuda_gemv_split_d:120 test_cuda_gemv_split_e:120
sanitize_quick test_cuda_gemv_split_d memcheck racecheck
sanitize_quick test_cuda_gemv_split_land memcheck
for v in land t d; do bench_split $v round3 $AB; done
run_tests test_cuda_forward_land:90 test_cuda_forward_de:90
for v in land d; do bench_split $v full 8192x8192,4096x14336,14336x4096 2,3,4,8 8,16; done
fi
split_summary
