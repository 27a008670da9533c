#!/bin/bash
# Stop 52, call b: one workspace and counter array shared by all 20 matrices of the graph (-DQMR_SPLIT_SHARED_WS=1 on
# bench/proto/split_timeline_s52.patch; the harness sets it), so that the 4.2 MB of slice sums at 16 tokens are
# rewritten in L2 every call instead of each matrix's own lines going back to HBM. sw: that build (timing only, no
# test binary); r4: HEAD's kernel; t_sw: traced. Two rounds, the order reversed in the second.
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s52
cp /tmp/s51/tl_r4 /tmp/s51/tl_t_r4 $F/
gpu_clocks
tl_ab sw
tl_summary
