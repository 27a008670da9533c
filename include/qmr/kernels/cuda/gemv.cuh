// Dequantizing GEMV on CUDA: y[M, rows] = x[M, cols] · Wᵀ for M = 1..8, W in any qmr packed format (2-8 bits, groups 32-256 or per-channel, symmetric or asymmetric), f16/bf16 activations, f32 accumulation.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "../../config.hpp"
#include "../../core/error.hpp"
#include "../../core/half.hpp"
#include "../../quant/format.hpp"
#include "../../quant/pack.hpp"
#include "../../quant/qtensor.hpp"

namespace qmr::cuda {

// ---------------------------------------------------------------------------
// Errors: every CUDA call goes through QMR_CUDA_CHECK, which turns a failure into
// a qmr::error naming the call, the CUDA error and the call site.
// ---------------------------------------------------------------------------
namespace detail {
inline void check_cuda(cudaError_t err, const char* call, const char* file, int line) {
  if (err != cudaSuccess)
    throw error(std::string(call) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ") at " + file +
                ":" + std::to_string(line));
}
}  // namespace detail

#define QMR_CUDA_CHECK(call) ::qmr::cuda::detail::check_cuda((call), #call, __FILE__, __LINE__)

// One cudaMalloc'd allocation, freed by the destructor; move-only.
class device_buffer {
 public:
  device_buffer() = default;
  explicit device_buffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes != 0) QMR_CUDA_CHECK(cudaMalloc(&data_, bytes));
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  device_buffer(device_buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  device_buffer& operator=(device_buffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  ~device_buffer() { release(); }

  void* data() const { return data_; }
  std::size_t size() const { return bytes_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  void release() noexcept {
    if (data_ != nullptr) static_cast<void>(cudaFree(data_));  // a destructor cannot report; the next call will
    data_ = nullptr;
    bytes_ = 0;
  }
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// Tile shape of the GEMV kernel. Each thread decodes tiles of 128 columns: for
// every bit-width that is 16*Bits bytes, i.e. exactly Bits 128-bit loads, so one
// code path serves 2, 3, 4, 5, 6 and 8 bits. A tile is read as 4 sub-tiles of 32
// columns (Bits 32-bit words each); 32 is the smallest group size, so a sub-tile
// never straddles a group and needs one scale and one zero.
struct gemv_traits {
  static constexpr int tile_cols = 128;
  static constexpr int sub_cols = 32;
  static constexpr int block_threads = 256;  // 8 warps: enough warps per SM at ~64 registers per thread
  static constexpr int max_batch = 8;
  static constexpr int min_threads_per_row = 8;
  static constexpr int max_threads_per_row = block_threads;
  static_assert(tile_cols % sub_cols == 0 && sub_cols % 8 == 0);
  static_assert(block_threads % 32 == 0 && block_threads / 32 <= 32);
  // Tile bytes for a bit-width: a whole number of 16-byte vectors.
  static constexpr int tile_bytes(int bits) { return tile_cols * bits / 8; }
};
static_assert(gemv_traits::tile_bytes(3) == 48 && gemv_traits::tile_bytes(8) == 128);

// A quantized matrix on the device, in qmr's packed layout (format.hpp) with one
// change made at upload: each row of codes is padded with zero bytes to a whole
// number of 128-column tiles (code_stride bytes), so that every row starts on a
// 16-byte boundary and every tile is Bits aligned 128-bit loads. Scales and zeros
// are copied unchanged. Owns its buffers.
struct device_qtensor {
  quant::format_spec spec;
  quant::qtensor_layout layout;
  std::int64_t code_stride = 0;  // bytes between rows of `codes`: ceil(cols / 128) * 16 * Bits
  device_buffer codes;           // u8  [rows, code_stride]
  device_buffer scales;          // f16 [rows, n_groups]
  device_buffer zeros;           // u8  [rows, zero_row_bytes]; empty when symmetric
  // Threads that share one output row: a power of two in [8, 256], chosen at
  // upload from the shape and the SM count (callers may override it, e.g. tests).
  int threads_per_row = 32;

  std::int64_t rows() const { return layout.rows; }
  std::int64_t cols() const { return layout.cols; }
  std::int64_t tiles_per_row() const { return (layout.cols + gemv_traits::tile_cols - 1) / gemv_traits::tile_cols; }
  // Bytes a GEMV reads from W (unpadded codes, scales and zeros).
  std::int64_t weight_bytes() const { return layout.total_bytes(); }
};

// Few rows spread over more threads each, so that small matrices still put
// enough loads in flight on every SM (~1024 threads per SM); a row never gets
// more threads than it has tiles, except for the minimum of 8.
inline int choose_threads_per_row(std::int64_t rows, std::int64_t tiles, int sm_count) {
  int tpr = 32;
  while (tpr > gemv_traits::min_threads_per_row && tpr > tiles) tpr /= 2;
  const std::int64_t target = static_cast<std::int64_t>(sm_count) * 1024;
  while (tpr < gemv_traits::max_threads_per_row && rows * tpr < target && 2 * tpr <= tiles) tpr *= 2;
  return tpr;
}

// Copies a host quantized matrix to the device (padding rows of codes, see
// device_qtensor) and waits for the copies, so the host arrays may go at once.
inline device_qtensor upload(const quant::qtensor_view& w, cudaStream_t stream) {
  const quant::qtensor_layout l = quant::qtensor_layout::of(w.spec, w.rows(), w.cols());
  check(l.code_row_bytes == w.layout.code_row_bytes && l.n_groups == w.layout.n_groups &&
            l.zero_row_bytes == w.layout.zero_row_bytes,
        "upload: the layout of the " + w.spec.str() + " tensor does not match its format");
  check(w.codes != nullptr && w.scales != nullptr && (w.spec.symmetric || w.zeros != nullptr),
        "upload: the " + w.spec.str() + " tensor has a null array");
  check(l.rows <= (1ll << 30) && l.cols <= (1ll << 30), "upload: matrix too large for the GEMV kernel");
  device_qtensor d;
  d.spec = w.spec;
  d.layout = l;
  d.code_stride = d.tiles_per_row() * gemv_traits::tile_bytes(w.spec.bits);
  d.codes = device_buffer(static_cast<std::size_t>(l.rows * d.code_stride));
  d.scales = device_buffer(static_cast<std::size_t>(l.scale_count()) * sizeof(f16));
  if (!w.spec.symmetric) d.zeros = device_buffer(static_cast<std::size_t>(l.zero_bytes()));
  QMR_CUDA_CHECK(cudaMemsetAsync(d.codes.data(), 0, d.codes.size(), stream));
  QMR_CUDA_CHECK(cudaMemcpy2DAsync(d.codes.data(), static_cast<std::size_t>(d.code_stride), w.codes,
                                   static_cast<std::size_t>(l.code_row_bytes), static_cast<std::size_t>(l.code_row_bytes),
                                   static_cast<std::size_t>(l.rows), cudaMemcpyHostToDevice, stream));
  QMR_CUDA_CHECK(cudaMemcpyAsync(d.scales.data(), w.scales, d.scales.size(), cudaMemcpyHostToDevice, stream));
  if (!w.spec.symmetric)
    QMR_CUDA_CHECK(cudaMemcpyAsync(d.zeros.data(), w.zeros, d.zeros.size(), cudaMemcpyHostToDevice, stream));
  QMR_CUDA_CHECK(cudaStreamSynchronize(stream));
  int device = 0, sm_count = 0;
  QMR_CUDA_CHECK(cudaGetDevice(&device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
  d.threads_per_row = choose_threads_per_row(l.rows, d.tiles_per_row(), sm_count);
  return d;
}

// A device-side copy of an uploaded matrix (benchmarks rotate through copies so
// that the weights come from DRAM, not L2). Asynchronous on `stream`.
inline device_qtensor clone(const device_qtensor& w, cudaStream_t stream) {
  device_qtensor d;
  d.spec = w.spec;
  d.layout = w.layout;
  d.code_stride = w.code_stride;
  d.threads_per_row = w.threads_per_row;
  d.codes = device_buffer(w.codes.size());
  d.scales = device_buffer(w.scales.size());
  d.zeros = device_buffer(w.zeros.size());
  QMR_CUDA_CHECK(cudaMemcpyAsync(d.codes.data(), w.codes.data(), w.codes.size(), cudaMemcpyDeviceToDevice, stream));
  QMR_CUDA_CHECK(cudaMemcpyAsync(d.scales.data(), w.scales.data(), w.scales.size(), cudaMemcpyDeviceToDevice, stream));
  if (w.zeros.size() != 0)
    QMR_CUDA_CHECK(cudaMemcpyAsync(d.zeros.data(), w.zeros.data(), w.zeros.size(), cudaMemcpyDeviceToDevice, stream));
  return d;
}

namespace detail {

// Kernel arguments (by value).
struct gemv_args {
  const uint4* codes;             // [rows, code_vecs] 16-byte vectors
  const qstd::uint16_t* scales;   // f16 bits [rows, n_groups]
  const qstd::uint8_t* zeros;     // [rows, zero_row_bytes]; null when symmetric
  std::int64_t code_vecs;         // 16-byte vectors per row of codes
  std::int64_t zero_row_bytes;
  int rows, cols, n_groups;
  int group_shift;                // g = col >> group_shift (31 for per-channel: always group 0)
  int n_tiles;                    // 128-column tiles per row
  int threads_per_row;            // power of two, 8..256
};

// Two activations packed in a 32-bit word -> two floats.
QMR_DEVICE __forceinline__ float2 unpack2(qstd::uint32_t v, f16) {
  return make_float2(__half2float(__ushort_as_half(static_cast<unsigned short>(v & 0xffffu))),
                     __half2float(__ushort_as_half(static_cast<unsigned short>(v >> 16))));
}
QMR_DEVICE __forceinline__ float2 unpack2(qstd::uint32_t v, bf16) {
  return make_float2(__uint_as_float(v << 16), __uint_as_float(v & 0xffff0000u));
}

QMR_DEVICE __forceinline__ void store(float* y, float v) { *y = v; }
QMR_DEVICE __forceinline__ void store(f16* y, float v) { y->bits = __half_as_ushort(__float2half_rn(v)); }
QMR_DEVICE __forceinline__ void store(bf16* y, float v) { y->bits = __bfloat16_as_ushort(__float2bfloat16_rn(v)); }

// Code `i` (0..127) of a tile held in 4*Bits 32-bit words, little-endian bitstream.
// Called with constants only (inside unrolled loops): the word index and the
// shift fold away, leaving a shift-and-mask or one funnel shift.
template <int Bits>
QMR_DEVICE __forceinline__ qstd::uint32_t tile_code(const qstd::uint32_t (&w)[4 * Bits], int i) {
  constexpr qstd::uint32_t mask = (1u << Bits) - 1u;
  const int bit = i * Bits;
  const int word = bit >> 5, shift = bit & 31;
  if (shift + Bits <= 32) return (w[word] >> shift) & mask;
  return __funnelshift_r(w[word], w[word + 1], static_cast<unsigned>(shift)) & mask;
}

// One group of `threads_per_row` consecutive threads per output row; each thread
// walks the row's tiles with stride threads_per_row, decodes 128 codes per tile
// and accumulates M dot products in f32; the row's partial sums meet by warp
// shuffles (and shared memory when a row spans several warps).
//
// Dequantization: code - zero as a float is one OR and one FADD, exact for any
// code < 2^23: bits 0x4B000000 | code is the float 2^23 + code.
template <int Bits, int M, class TX, class TY>
__global__ void __launch_bounds__(gemv_traits::block_threads)
    gemv_kernel(const gemv_args a, const TX* __restrict__ x, TY* __restrict__ y) {
  constexpr int words = 4 * Bits;
  constexpr int sub_per_tile = gemv_traits::tile_cols / gemv_traits::sub_cols;
  constexpr int warps = gemv_traits::block_threads / 32;
  const int tpr = a.threads_per_row;
  const int lane_in_row = static_cast<int>(threadIdx.x) & (tpr - 1);
  const int r = static_cast<int>(blockIdx.x) * (gemv_traits::block_threads / tpr) + static_cast<int>(threadIdx.x) / tpr;
  const bool valid = r < a.rows;

  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;

  if (valid) {
    const uint4* wrow = a.codes + static_cast<std::int64_t>(r) * a.code_vecs;
    const qstd::uint16_t* srow = a.scales + static_cast<std::int64_t>(r) * a.n_groups;
    const qstd::uint8_t* zrow = a.zeros == nullptr ? nullptr : a.zeros + static_cast<std::int64_t>(r) * a.zero_row_bytes;
    for (int t = lane_in_row; t < a.n_tiles; t += tpr) {
      qstd::uint32_t w[words];
#pragma unroll
      for (int v = 0; v < Bits; ++v) {
        const uint4 q = __ldcs(wrow + static_cast<std::int64_t>(t) * Bits + v);  // streamed: read once
        w[4 * v + 0] = q.x;
        w[4 * v + 1] = q.y;
        w[4 * v + 2] = q.z;
        w[4 * v + 3] = q.w;
      }
#pragma unroll
      for (int s = 0; s < sub_per_tile; ++s) {
        const int cs = t * gemv_traits::tile_cols + s * gemv_traits::sub_cols;
        if (cs < a.cols) {
          const int g = min(cs >> a.group_shift, a.n_groups - 1);
          const float scale = __half2float(__ushort_as_half(__ldg(srow + g)));
          const qstd::uint32_t zero = zrow == nullptr ? (1u << (Bits - 1)) : quant::get_code(zrow, g, Bits);
          const float magic_zero = 8388608.0f + static_cast<float>(zero);
          float part[M];
#pragma unroll
          for (int m = 0; m < M; ++m) part[m] = 0.0f;
#pragma unroll
          for (int p = 0; p < gemv_traits::sub_cols / 8; ++p) {
            const int c = cs + 8 * p;
            if (c < a.cols) {  // cols is a multiple of 8: a piece of 8 is all in or all out
              float q[8];
#pragma unroll
              for (int j = 0; j < 8; ++j)
                q[j] = __uint_as_float(0x4B000000u | tile_code<Bits>(w, s * gemv_traits::sub_cols + 8 * p + j)) -
                       magic_zero;
#pragma unroll
              for (int m = 0; m < M; ++m) {
                const uint4 xv = __ldg(reinterpret_cast<const uint4*>(x + static_cast<std::int64_t>(m) * a.cols + c));
                const float2 x01 = unpack2(xv.x, TX{}), x23 = unpack2(xv.y, TX{});
                const float2 x45 = unpack2(xv.z, TX{}), x67 = unpack2(xv.w, TX{});
                float sum = part[m];
                sum = fmaf(q[0], x01.x, sum);
                sum = fmaf(q[1], x01.y, sum);
                sum = fmaf(q[2], x23.x, sum);
                sum = fmaf(q[3], x23.y, sum);
                sum = fmaf(q[4], x45.x, sum);
                sum = fmaf(q[5], x45.y, sum);
                sum = fmaf(q[6], x67.x, sum);
                sum = fmaf(q[7], x67.y, sum);
                part[m] = sum;
              }
            }
          }
#pragma unroll
          for (int m = 0; m < M; ++m) acc[m] = fmaf(scale, part[m], acc[m]);
        }
      }
    }
  }

  // Reduce within each row's segment of the warp (all 32 lanes take part, rows
  // past the end with zeros, so the full mask is right).
  const int seg = tpr < 32 ? tpr : 32;
#pragma unroll
  for (int m = 0; m < M; ++m)
    for (int off = seg / 2; off > 0; off /= 2) acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], off);

  if (tpr > 32) {  // a row spans tpr/32 warps: meet in shared memory (uniform branch)
    __shared__ float partial[warps][M];
    const int warp = static_cast<int>(threadIdx.x) / 32;
    if ((threadIdx.x & 31u) == 0)
#pragma unroll
      for (int m = 0; m < M; ++m) partial[warp][m] = acc[m];
    __syncthreads();
    if (lane_in_row == 0) {
#pragma unroll
      for (int m = 0; m < M; ++m) {
        float sum = 0.0f;
        for (int k = 0; k < tpr / 32; ++k) sum += partial[warp + k][m];
        acc[m] = sum;
      }
    }
  }
  if (valid && lane_in_row == 0)
#pragma unroll
    for (int m = 0; m < M; ++m) store(y + static_cast<std::int64_t>(m) * a.rows + r, acc[m]);
}

template <int Bits, int M, class TX, class TY>
void launch_batch(int batch, const gemv_args& a, const TX* x, TY* y, cudaStream_t stream) {
  if constexpr (M <= gemv_traits::max_batch) {
    if (batch != M) return launch_batch<Bits, M + 1>(batch, a, x, y, stream);
    const int rows_per_block = gemv_traits::block_threads / a.threads_per_row;
    const unsigned blocks = static_cast<unsigned>((a.rows + rows_per_block - 1) / rows_per_block);
    gemv_kernel<Bits, M, TX, TY><<<blocks, gemv_traits::block_threads, 0, stream>>>(a, x, y);
    QMR_CUDA_CHECK(cudaGetLastError());
  } else {
    throw error("gemv: batch " + std::to_string(batch) + " is outside 1.." + std::to_string(gemv_traits::max_batch));
  }
}

}  // namespace detail

// y[M, rows] = x[M, cols] · Wᵀ on `stream` (asynchronous). x and y are device
// pointers, row-major; x is f16 or bf16 and 16-byte aligned; y is the same type
// as x, or f32. M is 1..8.
template <class TX, class TY>
void gemv(const device_qtensor& w, const TX* x, TY* y, int M, cudaStream_t stream) {
  static_assert(qstd::is_same_v<TX, f16> || qstd::is_same_v<TX, bf16>, "gemv: activations are qmr::f16 or qmr::bf16");
  static_assert(qstd::is_same_v<TY, TX> || qstd::is_same_v<TY, float>, "gemv: the output is the activation type or float");
  check(M >= 1 && M <= gemv_traits::max_batch,
        "gemv: batch " + std::to_string(M) + " is outside 1.." + std::to_string(gemv_traits::max_batch));
  check(x != nullptr && y != nullptr, "gemv: null activation or output pointer");
  check(reinterpret_cast<std::uintptr_t>(x) % 16 == 0, "gemv: the activations must be 16-byte aligned");
  check(w.codes.data() != nullptr, "gemv: the weight tensor is empty (not uploaded)");
  const int tpr = w.threads_per_row;
  check(tpr >= gemv_traits::min_threads_per_row && tpr <= gemv_traits::max_threads_per_row && (tpr & (tpr - 1)) == 0,
        "gemv: threads_per_row " + std::to_string(tpr) + " is not a power of two in [8, 256]");
  detail::gemv_args a{};
  a.codes = w.codes.as<const uint4>();
  a.scales = w.scales.as<const qstd::uint16_t>();
  a.zeros = w.spec.symmetric ? nullptr : w.zeros.as<const qstd::uint8_t>();
  a.code_vecs = w.code_stride / 16;
  a.zero_row_bytes = w.layout.zero_row_bytes;
  a.rows = static_cast<int>(w.layout.rows);
  a.cols = static_cast<int>(w.layout.cols);
  a.n_groups = static_cast<int>(w.layout.n_groups);
  a.group_shift = w.spec.group == quant::per_channel ? 31 : qstd::countr_zero(static_cast<unsigned>(w.spec.group));
  a.n_tiles = static_cast<int>(w.tiles_per_row());
  a.threads_per_row = tpr;
  switch (w.spec.bits) {
    case 2: return detail::launch_batch<2, 1>(M, a, x, y, stream);
    case 3: return detail::launch_batch<3, 1>(M, a, x, y, stream);
    case 4: return detail::launch_batch<4, 1>(M, a, x, y, stream);
    case 5: return detail::launch_batch<5, 1>(M, a, x, y, stream);
    case 6: return detail::launch_batch<6, 1>(M, a, x, y, stream);
    case 8: return detail::launch_batch<8, 1>(M, a, x, y, stream);
    default: throw error("gemv: " + std::to_string(w.spec.bits) + "-bit codes are not supported");
  }
}

}  // namespace qmr::cuda
