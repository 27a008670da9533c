#!/bin/bash
# Builds, on the CPU machine, what bench/proto/lanes_x1_device.sh runs on a GPU machine: the landed lane kernel's
# bench (base) and the register-x kernel (the patch, as of 815be5d: the kernel has landed since, in 30e16f6) in a
# worktree of ab5db13, the revision the patch was made for; its tests and
# bench at units_per_step 2 and 4, stripped into gpu_carry/x1.tgz (gpu_carry/ must be in .git/info/exclude).
#   bash bench/proto/lanes_x1_build.sh        (from the repository root; ~10 min on 2 cores)
# Then: run(command="bash bench/proto/lanes_x1_device.sh", carry=["gpu_carry"], kind="nvidia-h100-x1").
set -euo pipefail
repo=$(pwd)
export PATH=/usr/local/cuda/bin:$PATH
wt=/tmp/qmr_x1_wt
rm -rf "$wt" /tmp/x1 && git worktree prune && git worktree add -q --detach "$wt" ab5db13
mkdir -p /tmp/x1 "$repo/gpu_carry"
cfg="--buildtype=release --wrap-mode=nodownload -Dcuda=enabled -Dgpu_arch=90 -Dsimd=disabled -Dtests=auto -Dbench=auto -Dgpu_bench=true -Dtools=disabled -Dexamples=false"
# shellcheck disable=SC2086
(cd "$wt" && meson setup build-base $cfg >/dev/null && ninja -C build-base bench/cuda_gemv >/dev/null)
cp "$wt/build-base/bench/cuda_gemv" /tmp/x1/cuda_gemv_base
git -C "$repo" show 815be5d:bench/proto/lanes_x1_register_x.patch | (cd "$wt" && git apply)
# shellcheck disable=SC2086
(cd "$wt" && meson setup build-x1 $cfg >/dev/null && ninja -C build-x1 bench/cuda_gemv tests/test_cuda_gemv_lanes tests/test_cuda_gemv_pdl tests/test_cuda_forward tests/test_cuda_gemv >/dev/null)
for b in bench/cuda_gemv tests/test_cuda_gemv_lanes tests/test_cuda_gemv_pdl tests/test_cuda_forward tests/test_cuda_gemv; do cp "$wt/build-x1/$b" /tmp/x1/; done
# units_per_step 4: only the kernels' library object differs (the bench's own object takes them extern)
(cd "$wt/build-x1" && nvcc -DNDEBUG -DQMR_LANES_X1_UNITS_PER_STEP=4 -O1 -Xcompiler=-fPIC -I../include -gencode=arch=compute_90,code=sm_90 \
   -std=c++20 --expt-relaxed-constexpr -I../tools/cuda -o /tmp/x1/f16_u4.o -c ../tools/cuda/gemv_f16.cu &&
 nvcc -o /tmp/x1/cuda_gemv_u4 bench/cuda_gemv.p/cuda_gemv.cu.o /tmp/x1/f16_u4.o tools/cuda/libqmr_cuda_gemv.a.p/gemv_bf16.cu.o \
   -Xcompiler=-pthread -lcudart -lcublas)
rm -f /tmp/x1/f16_u4.o && strip /tmp/x1/*
tar czf "$repo/gpu_carry/x1.tgz" -C /tmp x1
git worktree remove --force "$wt"
ls -la "$repo/gpu_carry/x1.tgz"
