#!/bin/bash
# Stop 52, call d: how much of the 16-token time the groups' scales cost. HEAD's kernel before the shared workspace
# (stop 51's untraced build r4, its own workspace per matrix) on 8192 x 8192 at 1, 8 and 16 tokens: w4g128s against
# per-channel w4gcs (no group ends in the loop, 16 KB of scales instead of 1 MB) and w4g256s, two rounds.
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s51
gpu_clocks
for round in 1 2; do for f in w4g128s w4gcs w4g256s; do tl r4 $f round$round; done; done
tl_summary
