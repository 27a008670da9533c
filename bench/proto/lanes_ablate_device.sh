#!/bin/bash
# Device-side script of the lane-GEMV ablation (bench/proto/lanes_ablate.cu), run as `bash gpu_carry/run3.sh` through
# the device tool with carry ["gpu_carry"]: gpu_carry/abl.tgz holds abl/lanes_ablate_{0..7} (built per the harness's
# header: 0-4 = QMR_LANES_ABLATE, 5-7 = QMR_R/QMR_T/QMR_BPS 4/512/1, 4/256/3, 4/384/2) and abl/test_cuda_gemv_split,
# abl/test_cuda_attention (stripped). Writes log.txt, ncu.txt, san_*.txt, sass_w2.txt under $OUT (8 files at most come back).
set -u
cd "$(dirname "$0")/.." && tar xzf gpu_carry/abl.tgz -C /tmp
L=$OUT/log.txt
for r in 1; do for v in 0 1 2 3 4 5 6 7; do timeout 60 /tmp/abl/lanes_ablate_$v >> $L 2>&1; done; done
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
echo "ncu: $NCU" >> $L
timeout 150 $NCU --clock-control none --kernel-name regex:gemv_lanes_kernel --launch-skip 200 --launch-count 1 \
  --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section SchedulerStats --section WarpStateStats \
  --section LaunchStats --section InstructionStats /tmp/abl/lanes_ablate_0 > $OUT/ncu.txt 2>&1
echo "ncu rc=$?" >> $L
tail -5 $L
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
san() { local tool=$1 t=$2 envv=$3; local t0=$(date +%s); env $envv timeout 100 $SAN --tool $tool --error-exitcode 3 /tmp/abl/test_$t > $OUT/san_${tool}_$t.txt 2>&1; echo "san $tool $t rc=$? $(( $(date +%s) - t0 ))s: $(tail -1 $OUT/san_${tool}_$t.txt)" >> $L; }
san memcheck cuda_gemv_split QMR_GEMV_TEST_QUICK=1
san racecheck cuda_gemv_split QMR_GEMV_TEST_QUICK=1
san synccheck cuda_gemv_split QMR_GEMV_TEST_QUICK=1
san synccheck cuda_attention QMR_ATTENTION_TEST_QUICK=1
tail -8 $L
OBJ=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
$OBJ -sass /tmp/abl/lanes_ablate_0 2>/dev/null | awk '/Function : .*gemv_lanes_kernelILi2ELi1ELb0EN3qmr3f16E/{p=1} /Function : /{if(p&&!/gemv_lanes_kernelILi2ELi1ELb0EN3qmr3f16E/)p=0} p' > $OUT/sass_w2.txt
wc -l $OUT/sass_w2.txt >> $L
