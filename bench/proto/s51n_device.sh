#!/bin/bash
# Stop 51, call n: timing only, an upper bound on what sharing x's staging between two blocks (cluster multicast) could
# save. The blocks stage only the first half of x's token rows from L2 and zero the rest (-DQMR_SPLIT_XHALF=1 in
# bench/proto/split_timeline_s51.patch): half the 8.4 MB of staging reads at 16 tokens, wrong outputs. xh: that build;
# r4: HEAD's kernel; t_xh: traced. Two rounds, the order reversed in the second.
# (As run, tl_ab's rounds were written out here, without the quick test (xh has none) and without raw.tgz.)
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
gpu_clocks
tl_ab xh
tl_summary
