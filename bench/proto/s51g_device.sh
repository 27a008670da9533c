#!/bin/bash
# Stop 51, call g: ncu of HEAD's split kernel (stop 49's landed build, gpu_carry/s49b.tgz: cuda_gemv_land), one
# 8192 x 8192 w4g128s launch at 16 tokens and one at 1 token (ncu runs launches one at a time: no PDL overlap), with
# the throughput, memory, scheduler, warp-state and per-instruction stall sections, and the SASS of the 16-token
# kernel. Asks what sets a warp's pace in the loop (timeline: a block streams 12-14 GB/s alone or beside another).
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s49b
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
OBJ=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
for m in 16 1; do
  s=$SECONDS
  timeout 150 $NCU --clock-control none --kernel-name regex:gemv_split_kernel --launch-skip 20 --launch-count 1 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section SchedulerStats --section WarpStateStats \
    --section Occupancy --section SourceCounters --section InstructionStats \
    $F/cuda_gemv_land --split-only --runs 5 --rotate-bytes 1e9 --shapes 8192x8192 --bits 4 --batches $m > $OUT/ncu_m$m.txt 2>&1
  echo "ncu m$m rc=$? $((SECONDS-s))s" >> $L
done
$OBJ -sass $F/cuda_gemv_land 2>/dev/null | awk '/Function : .*gemv_split_kernelILi4ELi2ELb0E.*NS_3f16/{p=1} p&&/Function : /&&!/gemv_split_kernelILi4ELi2ELb0E.*NS_3f16/{p=0} p' > $OUT/sass_m16.txt
echo "sass lines $(wc -l < $OUT/sass_m16.txt)" >> $L
cat $L
for m in 16 1; do grep -E "Duration|Memory Throughput|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|Compute \(SM\)|Issue Slots Busy|No Eligible|Active Warps Per Scheduler|Eligible Warps|Warp Cycles Per Issued|Stall|Executed Ipc" $OUT/ncu_m$m.txt | head -40; echo ----; done
