#!/bin/bash
# Stop 51, call j: HEAD's kernel with the timeline probe, which now also records when each warp starts its load
# n_loads / 2 (gt_half), to see whether the blocks that finish last (slices 4-7) are slow in both halves of their
# loads or only while the first-dispatched blocks still stream beside them. Formats w4g128s and w2g64s; r4 untraced as
# the control.
# (As run, this script defined tl itself and wrote out the steps of tl_trace_r4; device_lib.sh has held both since.)
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
gpu_clocks
tl_trace_r4 t_r4h
