// Dense GEMV on CUDA for the model runtime: y[M, rows] = x[M, cols] · Wᵀ with W in f32, f16 or bf16 exactly as the checkpoint stores it, f32 activations and f32 accumulation (the CPU path's numerics, summed in another order).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "../../core/dtype.hpp"
#include "../../core/error.hpp"
#include "../../core/half.hpp"
#include "../../core/tensor.hpp"
#include "gemv.cuh"
#include "launch.cuh"

namespace qmr::cuda {

// A dense matrix on the device, row-major, in its checkpoint dtype (no conversion:
// bf16 stays bf16, so the GPU multiplies by the same numbers as the CPU).
struct dense_matrix {
  dtype type = dtype::f32;
  std::int64_t rows = 0, cols = 0;
  device_buffer data;  // [rows, cols] of `type`

  std::int64_t weight_bytes() const { return rows * cols * static_cast<std::int64_t>(dtype_size(type)); }
};

// Copies the row blocks `parts` (2-D, contiguous, one dtype, one column count) one
// under the other into a single device matrix: [sum of rows, cols]. Waits for the
// copies, so the host arrays may go at once.
inline dense_matrix upload_dense(std::span<const tensor_view> parts, cudaStream_t stream) {
  check(!parts.empty(), "upload_dense: no matrix");
  dense_matrix d;
  d.type = parts[0].type;
  d.cols = parts[0].shape.rank == 2 ? parts[0].shape[1] : 0;
  for (const tensor_view& p : parts) {
    check(p.shape.rank == 2 && p.is_contiguous(), "upload_dense: expected contiguous 2-D matrices, got " + p.shape.str());
    check(p.type == dtype::f32 || p.type == dtype::f16 || p.type == dtype::bf16,
          "upload_dense: weights must be F32, F16 or BF16, got " + std::string(dtype_name(p.type)));
    check(p.type == d.type && p.shape[1] == d.cols, "upload_dense: the row blocks differ in dtype or column count");
    d.rows += p.shape[0];
  }
  check(d.rows > 0 && d.cols > 0 && d.rows < (1ll << 31) && d.cols < (1ll << 31),
        "upload_dense: matrix [" + std::to_string(d.rows) + ", " + std::to_string(d.cols) + "] is empty or too large");
  d.data = device_buffer(static_cast<std::size_t>(d.weight_bytes()));
  std::size_t offset = 0;
  for (const tensor_view& p : parts) {
    QMR_CUDA_CHECK(cudaMemcpyAsync(d.data.as<std::byte>() + offset, p.data, p.nbytes(), cudaMemcpyHostToDevice, stream));
    offset += p.nbytes();
  }
  QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
  return d;
}

namespace detail {

#ifdef __CUDACC__
// Eight consecutive weights from 16-byte-aligned memory as they come from it
// (raw8: two float4 of f32, or one uint4 of bf16/f16), then as floats (widen).
// Streamed loads: a decode step reads each weight once. A lane holds its loads
// in flight raw, 16 bytes for 8 bf16 weights instead of 32 as floats.
template <class TW>
struct raw8 {
  uint4 v;
};
template <>
struct raw8<float> {
  float4 a, b;
};
QMR_DEVICE __forceinline__ raw8<float> load_raw8(const float* p) {
  return {__ldcs(reinterpret_cast<const float4*>(p)), __ldcs(reinterpret_cast<const float4*>(p) + 1)};
}
QMR_DEVICE __forceinline__ raw8<bf16> load_raw8(const bf16* p) { return {__ldcs(reinterpret_cast<const uint4*>(p))}; }
QMR_DEVICE __forceinline__ raw8<f16> load_raw8(const f16* p) { return {__ldcs(reinterpret_cast<const uint4*>(p))}; }
QMR_DEVICE __forceinline__ void widen(const raw8<float>& r, float (&w)[8]) {
  w[0] = r.a.x, w[1] = r.a.y, w[2] = r.a.z, w[3] = r.a.w, w[4] = r.b.x, w[5] = r.b.y, w[6] = r.b.z, w[7] = r.b.w;
}
QMR_DEVICE __forceinline__ void widen(const raw8<bf16>& r, float (&w)[8]) {
  const qstd::uint32_t u[4] = {r.v.x, r.v.y, r.v.z, r.v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {  // bf16 -> f32 is a 16-bit shift
    w[2 * i] = __uint_as_float(u[i] << 16);
    w[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
  }
}
QMR_DEVICE __forceinline__ void widen(const raw8<f16>& r, float (&w)[8]) {
  const qstd::uint32_t u[4] = {r.v.x, r.v.y, r.v.z, r.v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    w[2 * i] = __half2float(__ushort_as_half(static_cast<unsigned short>(u[i] & 0xffffu)));
    w[2 * i + 1] = __half2float(__ushort_as_half(static_cast<unsigned short>(u[i] >> 16)));
  }
}
QMR_DEVICE __forceinline__ float load1(const float* p) { return *p; }
QMR_DEVICE __forceinline__ float load1(const bf16* p) { return __uint_as_float(static_cast<qstd::uint32_t>(p->bits) << 16); }
QMR_DEVICE __forceinline__ float load1(const f16* p) { return __half2float(__ushort_as_half(p->bits)); }

// A 256-thread block owns 8 / W rows, W warps per row (W = 1, 2, 4 or 8, chosen
// by the host from the shape): the W warps of a row take interleaved 8-column
// chunks, each lane one 16-byte vector of W per chunk (a warp reads 512 contiguous
// bytes of bf16/f16 per load), reduce with shuffles and meet in shared memory.
// W > 1 is for short, wide matrices (Qwen2.5-0.5B's down_proj, 896 x 4864: 896
// warps alone leave the SMs with too few loads in flight). The activations (at
// most 8 rows of f32) come through L1 (ld_produced): a block's rows, and the blocks
// an SM holds, share them there.
// Batch rows one dense launch takes: 8 f32 accumulators per thread (the forward
// pass's prefill chunk); larger batches would need a tiled GEMM.
inline constexpr int dense_max_batch = 8;
inline constexpr int dense_block_threads = 256;
inline constexpr int dense_block_warps = dense_block_threads / 32;

// Weight loads a lane issues before it uses the first: 4 x 16 bytes, a whole
// 896-column bf16 row per warp (Qwen2.5-0.5B's output head), so that a row's DRAM
// round trip is paid once, not once per 512 bytes.
inline constexpr int dense_loads_ahead = 4;
// x is not staged in shared memory. Staged (stops 36-37, while kernel-written
// buffers were read through L2 alone, every block copying m x cols f32 once), the
// Qwen2.5-0.5B-shaped bf16 decode on an H100 ran 1049-1065 tok/s; read through L1
// instead, 1070-1098, and the output head took 105 against 107 us under ncu
// (bench/results/cuda_dense_gemv_h100_20261205_s37.md).
// vec_chunks: cols / 8 when cols % 8 == 0 (every row then starts 16-byte aligned),
// else 0 and the scalar loop does the whole row.
// At most 64 registers (4 blocks, 32 warps an SM): the output head of
// Qwen2.5-0.5B (151936 x 896 bf16) took 129 us on an H100 against 165 us at the
// 72 registers nvcc chose (3 blocks an SM); 2 loads ahead instead of 4 took 157
// (bench/results/cuda_dense_gemv_h100_20261205_s36.md).
inline constexpr int dense_min_blocks_per_sm = 4;
template <class TW>
__global__ void __launch_bounds__(dense_block_threads, dense_min_blocks_per_sm)
    dense_gemv_kernel(const TW* __restrict__ w, int rows, int cols, int vec_chunks, int warps_per_row,
                      const float* __restrict__ x, int m, float* __restrict__ y) {
  __shared__ float partial[dense_block_warps][dense_max_batch];
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int W = warps_per_row, rows_per_block = dense_block_warps / W;
  const int wk = warp % W;
  const int row = static_cast<int>(blockIdx.x) * rows_per_block + warp / W;
  const TW* wr = w + static_cast<std::int64_t>(min(row, rows - 1)) * cols;
  constexpr int U = dense_loads_ahead;
  const int first = wk * 32 + lane, step = U * 32 * W;  // the lane's first chunk; chunks per round of U loads
  // The lane's next U chunks (c0, c0 + 32 W, ...), raw, in flight before the first is used.
  raw8<TW> wv[U] = {};
  const auto issue = [&](int c0) {
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (row < rows && c0 + u * 32 * W < vec_chunks) wv[u] = load_raw8(wr + 8 * (c0 + u * 32 * W));
  };
  // The first round is issued before pdl_wait: no kernel writes the weights, so under
  // PDL their DRAM round trip overlaps the previous kernel's last blocks (measured
  // together with unstaging x in one-row blocks, before staging went altogether: the
  // Qwen2.5-0.5B-shaped bf16 decode went from 857-864 to 986-1000 tok/s on an H100,
  // the output head from 131 to 121 us under ncu:
  // bench/results/cuda_dense_gemv_h100_20261205_s37.md).
  issue(first);
  pdl_wait();
  pdl_launch_dependents();
  float acc[dense_max_batch];
#pragma unroll
  for (int i = 0; i < dense_max_batch; ++i) acc[i] = 0.0f;
  if (row < rows) {
    for (int c0 = first; c0 < vec_chunks; c0 += step) {
      if (c0 != first) issue(c0);
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int c = c0 + u * 32 * W;
        if (c >= vec_chunks) break;
        float wf[8];
        widen(wv[u], wf);
#pragma unroll
        for (int i = 0; i < dense_max_batch; ++i) {
          if (i >= m) break;
          const std::int64_t at = static_cast<std::int64_t>(i) * cols + 8 * c;
          const float4* xp = reinterpret_cast<const float4*>(x + at);
          const float4 a = ld_produced(xp), b = ld_produced(xp + 1);  // x: written by the kernel before (PDL)
          float s = acc[i];
          s = fmaf(wf[0], a.x, s), s = fmaf(wf[1], a.y, s), s = fmaf(wf[2], a.z, s), s = fmaf(wf[3], a.w, s);
          s = fmaf(wf[4], b.x, s), s = fmaf(wf[5], b.y, s), s = fmaf(wf[6], b.z, s), s = fmaf(wf[7], b.w, s);
          acc[i] = s;
        }
      }
    }
    for (int c = 8 * vec_chunks + wk * 32 + lane; c < cols; c += 32 * W) {
      const float w1 = load1(wr + c);
#pragma unroll
      for (int i = 0; i < dense_max_batch; ++i) {
        if (i >= m) break;
        acc[i] = fmaf(w1, ld_produced(x + static_cast<std::int64_t>(i) * cols + c), acc[i]);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < dense_max_batch; ++i) {
    if (i >= m) break;
    float s = acc[i];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) partial[warp][i] = s;
  }
  __syncthreads();
  if (tid < rows_per_block * m) {  // thread (r, i): row r of the block, batch row i
    const int r = tid / m, i = tid % m;
    const int out_row = static_cast<int>(blockIdx.x) * rows_per_block + r;
    if (out_row < rows) {
      float s = 0.0f;
      for (int k = 0; k < W; ++k) s += partial[r * W + k][i];
      y[static_cast<std::int64_t>(i) * rows + out_row] = s;
    }
  }
}

// Warps per row: more for few, long rows, while each warp keeps at least two
// 16-byte vectors per lane and the grid stays under ~16K warps' worth of rows.
inline int dense_warps_per_row(std::int64_t rows, std::int64_t vec_chunks) {
  int w = 1;
  while (w < dense_block_warps && rows * w < 16384 && vec_chunks >= 64 * w) w *= 2;
  return w;
}
#endif  // __CUDACC__

}  // namespace detail

#ifdef __CUDACC__
// y[M, rows] = x[M, cols] · Wᵀ on `stream` (asynchronous): x and y f32 device
// pointers, row-major, x 16-byte aligned; M is any positive batch, one launch per
// dense_max_batch rows (the kernel is a GEMV: a batch's launches each re-read W).
// `pdl`: programmatic dependent launch (launch.cuh).
inline void gemv(const dense_matrix& w, const float* x, float* y, int M, cudaStream_t stream, bool pdl = false) {
  check(M >= 1, "dense gemv: batch " + std::to_string(M) + " is not positive");
  check(x != nullptr && y != nullptr && w.data.data() != nullptr, "dense gemv: null pointer");
  check(reinterpret_cast<std::uintptr_t>(x) % 16 == 0, "dense gemv: the activations must be 16-byte aligned");
  const int rows = static_cast<int>(w.rows), cols = static_cast<int>(w.cols);
  const int vec_chunks = cols % 8 == 0 ? cols / 8 : 0;
  const int wpr = detail::dense_warps_per_row(rows, vec_chunks);
  const int rows_per_block = detail::dense_block_warps / wpr;
  const unsigned blocks = static_cast<unsigned>((rows + rows_per_block - 1) / rows_per_block);
  const auto launch = [&](const auto* weights) {
    using TW = std::remove_cv_t<std::remove_pointer_t<decltype(weights)>>;
    for (int m0 = 0; m0 < M; m0 += detail::dense_max_batch) {  // x + m0 * cols stays 16-byte aligned (m0 % 8 == 0)
      const std::int64_t xo = static_cast<std::int64_t>(m0) * cols, yo = static_cast<std::int64_t>(m0) * rows;
      const int m = std::min(detail::dense_max_batch, M - m0);
      launch_kernel(pdl, detail::dense_gemv_kernel<TW>, dim3(blocks), dim3(detail::dense_block_threads), 0, stream, weights,
                    rows, cols, vec_chunks, wpr, x + xo, m, y + yo);
    }
  };
  switch (w.type) {
    case dtype::f32: launch(w.data.as<const float>()); break;
    case dtype::f16: launch(w.data.as<const f16>()); break;
    case dtype::bf16: launch(w.data.as<const bf16>()); break;
    default: throw error("dense gemv: weights must be F32, F16 or BF16, got " + std::string(dtype_name(w.type)));
  }
  QMR_CUDA_CHECK(cudaGetLastError());
}
#endif  // __CUDACC__

}  // namespace qmr::cuda
