// Kernel launches with optional programmatic dependent launch (PDL, sm_90+): a kernel launched so may start while the previous kernel in its stream drains, and waits in pdl_wait() for that kernel's completion and memory before touching memory.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "../../config.hpp"
#include "../../core/error.hpp"

namespace qmr::cuda {

namespace detail {
#ifdef __CUDACC__
// Waits until the grids this one depends on have completed and their writes are
// visible (a no-op for a plain launch and before sm_90). A kernel that may be
// launched with PDL calls it before touching memory that an earlier kernel may
// write: the first statement, or (the GEMVs) after issuing the loads of weights,
// which no kernel writes.
QMR_DEVICE __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
// Lets the next PDL-launched kernel start its blocks now (they wait in pdl_wait);
// called at the top of a kernel, it overlaps the next launch with this one's run.
QMR_DEVICE __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
// Reads a value that an earlier kernel wrote: a weak, coherent load (ld.global.ca,
// cached in L1). A kernel that may run under PDL reads every such buffer
// (activations, partial sums, logits) this way, never through the read-only path
// (ld.global.nc: __ldg, or what nvcc emits for a const __restrict__ pointer).
// griddepcontrol.wait (pdl_wait) makes the prerequisite grids' writes visible to
// the current grid, which covers ordinary loads; the read-only path's contract is
// "read-only while the kernel runs", and under PDL it isn't: a kernel's blocks
// start as soon as its predecessor starts, so two kernels back may still be
// reading the buffer the predecessor then overwrites, and an SM's read-only cache
// can serve those lines stale after pdl_wait(). On an H100 (stop 37,
// bench/results/cuda_pdl_reads_h100_20261205_s37.md) the PDL chain test
// (tests/cuda/test_gemv_pdl.cu) failed 6 runs of 6 with these reads on the
// read-only path, and passed 6 of 6 both so and through L2 alone (ld.global.cg,
// stop 36's choice); against L2 alone, L1 gave the tiled GEMV 11% at 16 tokens on
// 8192 x 8192 and the bf16 Qwen2.5-0.5B-shaped decode 11%. Weights, scales and
// norm weights, which no kernel writes, keep the read-only path.
template <class T>
QMR_DEVICE __forceinline__ T ld_produced(const T* p) {
  return __ldca(p);
}
#endif  // __CUDACC__
}  // namespace detail

#ifdef __CUDACC__
// The launch of grid x block threads with `smem` bytes of dynamic shared memory on
// `stream`: with the PDL attribute when `pdl`, in thread-block clusters of `cluster` blocks
// unless that is 1 x 1 x 1. `attributes` holds the attributes while the config is used (by a
// launch, or an occupancy query such as cudaOccupancyMaxActiveClusters).
inline cudaLaunchConfig_t launch_config(bool pdl, dim3 cluster, dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream,
                                        cudaLaunchAttribute (&attributes)[2]) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  unsigned n = 0;
  if (pdl) {
    attributes[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attributes[n++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (cluster.x * cluster.y * cluster.z > 1) {
    attributes[n].id = cudaLaunchAttributeClusterDimension;
    attributes[n].val.clusterDim.x = cluster.x;
    attributes[n].val.clusterDim.y = cluster.y;
    attributes[n++].val.clusterDim.z = cluster.z;
  }
  config.attrs = n > 0 ? attributes : nullptr;
  config.numAttrs = n;
  return config;
}

// kernel<<<grid, block, smem, stream>>>(args...) in thread-block clusters of `cluster`
// blocks (sm_90; none when it is 1 x 1 x 1), with the PDL attribute when `pdl` (only for
// kernels that call detail::pdl_wait() before any memory access, and only after a kernel: a
// copy or an event before it gets no overlap). Checks the launch.
template <class... Params, class... Args>
void launch_kernel_clusters(bool pdl, dim3 cluster, void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem,
                            cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attributes[2]{};
  const cudaLaunchConfig_t config = launch_config(pdl, cluster, grid, block, smem, stream, attributes);
  const bool clustered = cluster.x * cluster.y * cluster.z > 1;
  const cudaError_t e = cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
  if (e != cudaSuccess)
    throw error(std::string("kernel launch") + (pdl ? " (PDL)" : "") +
                (clustered ? " (clusters of " + std::to_string(cluster.x * cluster.y * cluster.z) + ")" : std::string()) + ": " +
                cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}
// The same without clusters.
template <class... Params, class... Args>
void launch_kernel(bool pdl, void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t smem, cudaStream_t stream, Args&&... args) {
  launch_kernel_clusters(pdl, dim3(1u, 1u, 1u), kernel, grid, block, smem, stream, std::forward<Args>(args)...);
}
#endif  // __CUDACC__

}  // namespace qmr::cuda
