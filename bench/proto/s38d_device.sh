#!/bin/bash
# Stop 38, device call 4 (H100): stop 37's bench/proto/s37g_device.sh (test_cuda_attention and test_cuda_forward on the
# attention L1-prefetch patch, memcheck, alternating decode rounds against HEAD's kernel as cuda_decode_v0, ncu of the
# attention launches) on this stop's builds: gpu_carry/s38d.tgz unpacks to /tmp/s38 (cuda_decode and the two tests with
# bench/proto/attention_prefetch_l1.patch applied, cuda_decode_v0 built at e1bef27). Writes log.txt, tests.txt, san.txt,
# decode.txt, ncu.txt under $OUT.
F=/tmp/s38 exec bash "$(dirname "$0")/s37g_device.sh"
