#!/bin/bash
# Stop 36: the dense GEMV as a one-wave grid whose blocks stage x once and walk their row groups (`cuda_decode`, P),
# the same with fewer warps per row on wide rows (P2: at least 8 chunks a lane), the committed staged kernel (A,
# 6ee4031) and the session's start (a0515ef: x through the read-only cache): tests of P and P2, decode tok/s in
# alternating rounds, ncu of the output head. gpu_carry/s36i.tgz. Writes log.txt, tests.txt, decode.txt, ncu.txt.
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_dense_gemv:30 test_cuda_dense_gemv_P2:30 test_cuda_forward:60
decode_rounds 2 a0515ef A new P2
ncu_head a0515ef new P2
cat $L
