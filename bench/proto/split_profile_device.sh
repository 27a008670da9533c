#!/bin/bash
# Where the split kernel's time goes at M = 16 (issue 7's 3x-cuBLAS target), before and after stop 35's rework: ncu of
# one 8192 x 8192 w4g128s launch of each (base: gpu_carry/x1.tgz's cuda_gemv_base at ab5db13; v2: gpu_carry/v2.tgz),
# with warp-state and per-instruction stall sections, and each kernel's SASS. Also reruns the reworked kernel's test.
# Writes log.txt, ncu_base.txt, ncu_v2.txt, sass_base.txt, sass_v2.txt, tests.txt under $OUT.
set -u
cd "$(dirname "$0")/../.." && for t in gpu_carry/*.tgz; do tar xzf "$t" -C /tmp; done
L=$OUT/log.txt
export QMR_TEST_DATA=$PWD/tests/data QMR_MODELS_DIR=$PWD/models
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
OBJ=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
timeout 120 /tmp/v2/test_cuda_gemv_split > $OUT/tests.txt 2>&1; echo "split test rc=$?" >> $L
for v in base v2; do
  b=/tmp/x1/cuda_gemv_base; [ $v = v2 ] && b=/tmp/v2/cuda_gemv
  timeout 150 $NCU --clock-control none --kernel-name regex:gemv_split_kernel --launch-skip 20 --launch-count 1 \
    --section SpeedOfLight --section Occupancy --section SchedulerStats --section WarpStateStats --section LaunchStats \
    --section InstructionStats --section SourceCounters --section MemoryWorkloadAnalysis \
    $b --split-only --runs 5 --rotate-bytes 1e9 --shapes 8192x8192 --bits 4 --batches 16 > $OUT/ncu_$v.txt 2>&1
  echo "ncu $v rc=$?" >> $L
  $OBJ -sass $b 2>/dev/null | awk '/Function : .*gemv_split_kernelILi4ELi2ELb0E.*NS_3f16/{p=1} p&&/Function : /&&!/gemv_split_kernelILi4ELi2ELb0E.*NS_3f16/{p=0} p' > $OUT/sass_$v.txt
  echo "sass $v lines $(wc -l < $OUT/sass_$v.txt)" >> $L
done
cat $L
