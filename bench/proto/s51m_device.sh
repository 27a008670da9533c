#!/bin/bash
# Stop 51, call m: timing only. The slices' partial sums stored in f16 (-DQMR_SPLIT_F16WS=1 in
# bench/proto/split_timeline_s51.patch: half the workspace bytes; no overflow or precision handling, so not a candidate
# as it stands) and read back by the tile's last warp as 16-byte runs of 8 rows: one load a slice a lane at 16 tokens
# instead of two. Asks how much of the 16-token tail (call k: 2.2 us reading the sums) the bytes account for. h2: that
# build; r4: HEAD's kernel; t_h2: traced. The quick split test shows the precision cost (f32 outputs are expected to
# fail their bound).
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
gpu_clocks
tl_ab h2
for v in r4 h2; do for f in w4g128s w2g64s w8g128s; do tl $v $f round3; done; done
tl_summary
grep -E "fail|FAIL|worst|bound" $OUT/quick.txt | head -20
