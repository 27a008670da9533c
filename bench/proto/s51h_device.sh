#!/bin/bash
# Stop 51, call h: ncu's warp stall reasons (per issued instruction) of HEAD's split kernel (gpu_carry/s49b.tgz:
# cuda_gemv_land), one 8192 x 8192 w4g128s launch at 16 tokens and one at 1, and the L2 sector counts of its global
# accesses (call g reported 17% excess sectors).
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s49b
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
for m in 16 1; do
  s=$SECONDS
  timeout 150 $NCU --clock-control none --kernel-name regex:gemv_split_kernel --launch-skip 20 --launch-count 1 \
    --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,smsp__inst_executed.sum,smsp__inst_executed_op_ldsm.sum,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_sectors_srcunit_tex_op_write.sum,lts__t_sectors_srcunit_tex_op_atom.sum,lts__t_sectors_srcunit_tex_op_red.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sectors_srcunit_tex_lookup_hit.sum,lts__t_sectors_srcunit_tex_lookup_miss.sum" \
    $F/cuda_gemv_land --split-only --runs 5 --rotate-bytes 1e9 --shapes 8192x8192 --bits 4 --batches $m > $OUT/stall_m$m.txt 2>&1
  echo "ncu m$m rc=$? $((SECONDS-s))s" >> $L
done
cat $L
for m in 16 1; do echo "== M $m"; grep -E "gemv_split_kernel<4, [12], 0|stalled|inst_executed|lts__|dram__" $OUT/stall_m$m.txt | awk '$NF+0 > 0.05 || /kernel|inst|lts|dram/' | head -60; done
