#!/bin/bash
# Stop 36: the Qwen2.5-0.5B-shaped decode and the output head's launch at the session's start (a0515ef: x read through
# the read-only cache, one load a lane in flight; cuda_decode_a0515ef) against the final headers (cuda_decode), on the
# H100. gpu_carry/s36h.tgz. Writes log.txt, decode.txt, ncu.txt under $OUT.
source "$(dirname "$0")/device_lib.sh"
decode_rounds 2 a0515ef new
ncu_head a0515ef new
cat $L
