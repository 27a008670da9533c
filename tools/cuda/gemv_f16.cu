// The GPU GEMV's kernels with f16 activations (f32 or f16 outputs; tensor-core tiles and lane layout), compiled once for every program that defines QMR_CUDA_GEMV_EXTERN (see kernels/cuda/gemv.cuh).
#include "qmr/kernels/cuda/gemv.cuh"

namespace qmr::cuda::detail {

#define QMR_CUDA_GEMV_DEFINE(B, GT, NB, TX, TY) \
  template void launch_one<B, GT, NB, TX, TY>(gemv_args, const TX*, TY*, cudaStream_t, bool);
QMR_CUDA_GEMV_INSTANCES(QMR_CUDA_GEMV_DEFINE, f16, f16)
QMR_CUDA_GEMV_INSTANCES(QMR_CUDA_GEMV_DEFINE, f16, float)
#undef QMR_CUDA_GEMV_DEFINE

// The tiled GEMM's kernels (gemm_kernel, batches from gemm_traits::min_batch).
#define QMR_CUDA_GEMM_DEFINE(B, GT, TX, TY) \
  template void gemm_launch_one<B, GT, TX, TY>(gemv_args, const TX*, TY*, cudaStream_t, bool);
QMR_CUDA_GEMM_INSTANCES(QMR_CUDA_GEMM_DEFINE, f16, f16)
QMR_CUDA_GEMM_INSTANCES(QMR_CUDA_GEMM_DEFINE, f16, float)
#undef QMR_CUDA_GEMM_DEFINE

// The lane-layout kernels (gemv_lanes.cuh): f16 activations only.
#define QMR_CUDA_GEMV_LANES_DEFINE(B, MB, AS, TY) \
  template void lanes_launch<B, MB, AS, TY>(const lanes_args&, const __half*, TY*, int, cudaStream_t, bool);
QMR_CUDA_GEMV_LANES_INSTANCES(QMR_CUDA_GEMV_LANES_DEFINE, f16)
QMR_CUDA_GEMV_LANES_INSTANCES(QMR_CUDA_GEMV_LANES_DEFINE, float)
#undef QMR_CUDA_GEMV_LANES_DEFINE

}  // namespace qmr::cuda::detail
