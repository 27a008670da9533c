#!/bin/bash
# Stop 37, device call 6 (H100): now that ld_produced reads through L1, does the dense GEMV still gain from staging x
# in shared memory? cuda_decode (final headers: x staged in blocks of 2+ rows) against cuda_decode_ns (never staged),
# alternating decode rounds and ncu of every dense launch of a bf16 decode step. gpu_carry/s37e.tgz.
# Writes log.txt, decode.txt, ncu.txt under $OUT.
F=/tmp/s37
source "$(dirname "$0")/device_lib.sh"
decode_rounds 3 new ns
ncu_dense_step new ns
cat $L
