#!/bin/bash
# Builds, on the CPU machine, the binaries bench/proto/s56a_device.sh runs on the device machine (stop 55's probes of the
# wide split kernel's tail: pair_s55.cu and wide_s55.cu, sm_90) into /tmp/s55, and packs them as gpu_carry/s55.tgz
# (keep gpu_carry/ out of git: echo gpu_carry/ >> .git/info/exclude). Then: run bash bench/proto/s56a_device.sh with
# carry ["gpu_carry"].
set -eu
cd "$(dirname "$0")/../.."
mkdir -p /tmp/s55 gpu_carry
for p in pair wide; do
  nvcc -std=c++20 --expt-relaxed-constexpr -O3 -gencode=arch=compute_90,code=sm_90 -DQMR_HAVE_CUBLAS -I include -I bench \
    bench/proto/${p}_s55.cu -lcublas -o /tmp/s55/$p &
done
wait
tar czf gpu_carry/s55.tgz -C /tmp s55
ls -la /tmp/s55 gpu_carry/s55.tgz
