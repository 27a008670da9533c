#!/bin/bash
# Stop 51, call j: HEAD's kernel with the timeline probe, which now also records when each warp starts its load
# n_loads / 2 (gt_half), to see whether the blocks that finish last (slices 4-7) are slow in both halves of their
# loads or only while the first-dispatched blocks still stream beside them. Formats w4g128s and w2g64s; r4 untraced as
# the control.
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader > $OUT/gpu.txt
tl() {  # tl V FORMAT TAG
  local s=$SECONDS; echo "== $1 $2 $3" >> $OUT/tl.txt
  timeout 60 $F/tl_$1 $2 ${RAW:-} >> $OUT/tl.txt 2>&1; echo "tl $1 $2 $3 rc=$? $((SECONDS-s))s" >> $L
}
mkdir -p /tmp/raw/t_r4h
for f in w4g128s w2g64s; do tl r4 $f control; RAW=/tmp/raw/t_r4h tl t_r4 $f trace; done
tar czf $OUT/raw.tgz -C /tmp raw
cat $OUT/gpu.txt $L
grep -E "^== |graph|steady" $OUT/tl.txt
