#!/bin/bash
# Stop 51, call k: HEAD's kernel with the timeline probe, which now also stamps each warp's split_finish: after its
# workspace stores, after the counter (fence and atomic), and for a tile's last warp after the slices' sums are read,
# added and stored. Formats w4g128s and w2g64s; r4 untraced as the control.
# (As run, the steps of tl_trace_r4 were written out here; device_lib.sh has held them since.)
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
gpu_clocks
tl_trace_r4 t_r4k
