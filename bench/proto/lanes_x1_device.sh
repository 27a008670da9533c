#!/bin/bash
# Device side of the register-x lane kernel's first run (bench/proto/lanes_x1_register_x.patch), with gpu_carry/x1.tgz
# from bench/proto/lanes_x1_build.sh: the GPU tests, the sanitizers on the quick lane test, then the M = 1 bench of the
# landed kernel (base), the patch (units_per_step 2) and units_per_step 4, alternating, twice; and, on the same card,
# the split kernel's M = 1, 4, 16 table against cuBLAS (the issue's 3x target at M = 16). Writes log.txt, bench.txt,
# split.txt, tests.txt, san_*.txt and ncu_split16.txt (ncu of the split kernel at M = 16) under $OUT (8 files at most come back).
set -u
cd "$(dirname "$0")/../.." && tar xzf gpu_carry/x1.tgz -C /tmp
F=/tmp/x1; L=$OUT/log.txt
export QMR_TEST_DATA=$PWD/tests/data QMR_MODELS_DIR=$PWD/models
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem,memory.total --format=csv >> $L
for t in test_cuda_gemv_lanes test_cuda_gemv_pdl test_cuda_gemv test_cuda_forward; do
  echo "=== $t" >> $OUT/tests.txt; timeout 150 $F/$t >> $OUT/tests.txt 2>&1; echo "$t rc=$?" >> $L; done
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
for tool in memcheck racecheck synccheck; do
  env QMR_GEMV_TEST_QUICK=1 timeout 90 $SAN --tool $tool --error-exitcode 3 $F/test_cuda_gemv_lanes > $OUT/san_$tool.txt 2>&1
  echo "san $tool rc=$? $(tail -1 $OUT/san_$tool.txt)" >> $L; done
S=8192x8192,14336x4096,4096x14336,896x4864,4864x896
for r in 1 2; do for v in base x1 u4; do b=$F/cuda_gemv_$v; [ $v = x1 ] && b=$F/cuda_gemv
  echo "== $v round $r" >> $OUT/bench.txt
  timeout 90 $b --lanes-only --runs 30 --rotate-bytes 1e9 --shapes $S --batches 1 >> $OUT/bench.txt 2>&1; echo "$v r$r rc=$?" >> $L; done; done
timeout 200 $F/cuda_gemv --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192,14336x4096,4096x14336 --bits 2,3,4,8 \
  --batches 1,4,16 > $OUT/split.txt 2>&1; echo "split rc=$?" >> $L
# Where the split kernel's M = 16 time goes (issue 7's 3x-cuBLAS target): one launch of 8192 x 8192 4-bit under ncu.
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
timeout 150 $NCU --clock-control none --kernel-name regex:gemv_split_kernel --launch-skip 20 --launch-count 1 \
  --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section SchedulerStats --section WarpStateStats \
  --section LaunchStats --section InstructionStats \
  $F/cuda_gemv --split-only --runs 5 --rotate-bytes 1e9 --shapes 8192x8192 --bits 4 --batches 16 > $OUT/ncu_split16.txt 2>&1
echo "ncu split M=16 rc=$?" >> $L
cat $L
