#!/bin/bash
# Builds, on the CPU machine, everything bench/proto/s57a_device.sh runs on the device machine (sm_90), into /tmp/s57,
# packed as gpu_carry/s57.tgz (keep gpu_carry/ out of git: echo gpu_carry/ >> .git/info/exclude):
#   pair, wide        stop 55's probes of the wide kernel's tail (bench/proto/pair_s55.cu, wide_s55.cu), from this tree;
#   cuda_gemv_old     this tree's bench/cuda_gemv (HEAD's split kernel);
#   the pair patch (bench/proto/split_pair_s56.patch: split_pair, two slices a block, a band's blocks one cluster,
#   the slice sums through DSMEM) applied to this tree in the worktree /tmp/wt57: cuda_gemv (`new`) and the split
#   GEMV's CUDA tests test_cuda_gemv_split, _split_layout, _pdl, test_cuda_gemv.
# Then: run bash bench/proto/s57a_device.sh with carry ["gpu_carry"]. About 15 minutes on 2 cores.
set -eu
cd "$(dirname "$0")/../.."
root=$PWD F=/tmp/s57
rm -rf $F && mkdir -p $F gpu_carry
git worktree remove -f /tmp/wt57 2>/dev/null || rm -rf /tmp/wt57
git worktree add -f --detach /tmp/wt57 HEAD >/dev/null
git -C /tmp/wt57 apply "$root/bench/proto/split_pair_s56.patch"
for p in pair wide; do
  nvcc -std=c++20 --expt-relaxed-constexpr -O3 -gencode=arch=compute_90,code=sm_90 -DQMR_HAVE_CUBLAS -I include -I bench \
    bench/proto/${p}_s55.cu -lcublas -o $F/$p
done
opts="-Dgpu_arch=90 -Dgpu_bench=true -Dtests=enabled -Dtools=disabled -Dexamples=false"
[ -d /tmp/b57_old ] || meson setup /tmp/b57_old $opts >/dev/null
[ -d /tmp/b57_new ] || (cd /tmp/wt57 && meson setup /tmp/b57_new $opts >/dev/null)
ninja -C /tmp/b57_old bench/cuda_gemv
ninja -C /tmp/b57_new bench/cuda_gemv tests/test_cuda_gemv_split tests/test_cuda_gemv_split_layout tests/test_cuda_gemv_pdl tests/test_cuda_gemv
cp /tmp/b57_old/bench/cuda_gemv $F/cuda_gemv_old
cp /tmp/b57_new/bench/cuda_gemv $F/cuda_gemv
for t in test_cuda_gemv_split test_cuda_gemv_split_layout test_cuda_gemv_pdl test_cuda_gemv; do cp /tmp/b57_new/tests/$t $F/; done
rm -f gpu_carry/*.tgz
tar czf gpu_carry/s57.tgz -C /tmp s57
ls -la $F gpu_carry/s57.tgz
