// Dequantizing GEMV on CUDA: y[M, rows] = x[M, cols] · Wᵀ for M = 1..8, W in any qmr packed format (2-8 bits, groups 32-256 or per-channel, symmetric or asymmetric), f16/bf16 activations, weights decoded to exact integers for mma.sync tensor-core tiles, f32 accumulation.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

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

// Shape of the GEMV kernel. It runs on the tensor cores: mma.sync m16n8k16 with
// f32 accumulation, the weights as the A operand (16 rows x 16 columns, decoded
// to exact integers code - zero in f16/bf16) and the activations as B (16
// columns x 8 batch rows; batches below 8 leave columns of the result unused),
// so M = 1..8 cost the same instructions. A warp owns a group of 32 rows (two
// 16-row A blocks sharing every B fragment, which halves the activation loads)
// and walks that group's 128-column tiles; the warps of one group split the
// tiles and meet in shared memory.
struct gemv_traits {
  static constexpr int tile_cols = 128;
  static constexpr int group_rows = 32;   // rows per warp: two 16-row mma blocks
  static constexpr int kstep_cols = 16;   // K of one mma
  static constexpr int sub_cols = 32;     // smallest quantization group: two k-steps
  static constexpr int block_threads = 256;
  static constexpr int block_warps = block_threads / 32;
  static constexpr int max_batch = 8;     // N of the mma
  static constexpr int min_threads_per_row = 8;
  static constexpr int max_threads_per_row = block_threads;
  static_assert(tile_cols % sub_cols == 0 && sub_cols % kstep_cols == 0);
  // 32-bit words a lane holds per tile: 32 x 128 codes over 32 lanes = 128 codes.
  static constexpr int lane_words(int bits) { return 4 * bits; }
  // Bytes of one 32-row x 128-column tile: Bits 16-byte vectors per lane.
  static constexpr int tile_bytes(int bits) { return group_rows * tile_cols * bits / 8; }
};
static_assert(gemv_traits::tile_bytes(3) == 32 * 16 * 3 && gemv_traits::tile_bytes(8) == 4096);

// A quantized matrix on the device. The codes are repacked at upload (the
// "GPU layout", see detail::repack_codes): for each group of 32 rows and each
// 128-column tile, lane l of a warp finds the 128 codes that its mma fragments
// need in Bits 16-byte vectors, stored vector-major ([group][tile][vector][lane])
// so that each load instruction of a warp reads 512 contiguous bytes. Rows are
// padded to a multiple of 32 and columns to a multiple of 128 with zero codes
// (the kernel feeds zero activations to padded columns and never writes padded
// rows). Scales and zeros are copied unchanged. Owns its buffers.
struct device_qtensor {
  quant::format_spec spec;
  quant::qtensor_layout layout;
  device_buffer codes;   // u32 [row_groups, tiles_per_row, Bits, 32 lanes, 4]: see detail::repack_codes
  device_buffer scales;  // f16 [rows, n_groups]
  device_buffer zeros;   // u8  [rows, zero_row_bytes]; empty when symmetric
  // 32 x the warps that share one group of 32 rows (split its tiles): a power of
  // two in [8, 256], values below 32 meaning one warp; chosen at upload from the
  // shape (callers may override it, e.g. tests).
  int threads_per_row = 256;

  std::int64_t rows() const { return layout.rows; }
  std::int64_t cols() const { return layout.cols; }
  std::int64_t tiles_per_row() const { return (layout.cols + gemv_traits::tile_cols - 1) / gemv_traits::tile_cols; }
  std::int64_t row_groups() const { return (layout.rows + gemv_traits::group_rows - 1) / gemv_traits::group_rows; }
  // Bytes a GEMV reads from W (unpadded codes, scales and zeros).
  std::int64_t weight_bytes() const { return layout.total_bytes(); }
};

// Eight warps per row group (256 threads) while the row has 8 tiles for them;
// fewer on short rows, so that no warp is idle. The SM count is unused for now:
// every shape of interest has enough row groups to fill the SMs twice or more,
// except the smallest, which are latency-bound anyway.
inline int choose_threads_per_row(std::int64_t rows, std::int64_t tiles, int sm_count) {
  static_cast<void>(rows);
  static_cast<void>(sm_count);
  int warps = gemv_traits::block_warps;
  while (warps > 1 && warps > tiles) warps /= 2;
  return 32 * warps;
}

namespace detail {

// ---------------------------------------------------------------------------
// GPU layout of the codes. Lane l = 4*gid + t4 of a warp needs, for k-step s
// (0..7, 16 columns each) of a tile and row block rb (0..1), the A fragment of
// mma m16n8k16: registers reg = 0..3, each a pair of codes (h = 0, 1) at
//   row = 16*rb + 8*(reg & 1) + gid,
//   col = 16*s + 4*t4 + 2*(reg >> 1) + h        (physical column in the tile).
// The mma's K order is a permutation of the physical columns (fragment k =
// 2*t4 + 8*(reg >> 1) + h holds physical column 4*t4 + 2*(reg >> 1) + h), the
// same for A and B, which leaves the dot product unchanged and lets a lane load
// its 4 activations of a k-step as one 8-byte vector. A k-step stays inside one
// 32-column sub-tile, hence inside one quantization group.
//
// Pair p = 4*(2*s + rb) + reg (0..63) of a lane is stored in bit planes whose
// widths divide 16 (2 = 2, 3 = 2+1, 4 = 4, 5 = 4+1, 6 = 4+2, 8 = 8): in a plane
// of width w, pair p sits in word p / (16/w) at bit (p % (16/w))*w, its low
// code in the low 16-bit half and its high code at the same offset in the high
// half, so one shift and one mask give both codes at the bottom of each half,
// ready for the magic-number conversion. Plane 0 (the low w0 bits of each code)
// takes words 0..4*w0-1, plane 1 (the high bits) the rest of the 4*Bits words.
// ---------------------------------------------------------------------------
QMR_HOST_DEVICE constexpr int plane0_bits(int bits) { return bits == 3 ? 2 : (bits >= 4 && bits <= 6) ? 4 : bits; }
QMR_HOST_DEVICE constexpr int frag_row(int lane, int p) { return 16 * ((p >> 2) & 1) + 8 * (p & 1) + (lane >> 2); }
QMR_HOST_DEVICE constexpr int frag_col(int lane, int p, int h) {
  return 16 * (p >> 3) + 4 * (lane & 3) + 2 * ((p >> 1) & 1) + h;
}

// The two codes of pair p, at bits 0.. and 16.. of the result (nothing else set).
// Called with constant p (unrolled loops): word indices and shifts fold away.
template <int Bits>
QMR_HOST_DEVICE constexpr qstd::uint32_t pair_codes(const qstd::uint32_t (&w)[4 * Bits], int p) {
  constexpr int w0 = plane0_bits(Bits), w1 = Bits - w0;
  constexpr qstd::uint32_t m0 = ((1u << w0) - 1u) * 0x10001u;
  const int sh0 = (p % (16 / w0)) * w0;
  qstd::uint32_t v = (w[p / (16 / w0)] >> sh0) & m0;
  if constexpr (w1 > 0) {
    constexpr qstd::uint32_t m1 = (((1u << w1) - 1u) << w0) * 0x10001u;
    const int sh1 = (p % (16 / w1)) * w1;
    const qstd::uint32_t t = w[4 * w0 + p / (16 / w1)];
    v |= (sh1 >= w0 ? t >> (sh1 - w0) : t << (w0 - sh1)) & m1;
  }
  return v;
}

// Repacks the codes of `w` into the GPU layout: u32 words indexed
// [((group * tiles + tile) * Bits + v) * 32 + lane] * 4 + k for word 4*v + k of a lane.
inline std::vector<qstd::uint32_t> repack_codes(const quant::qtensor_view& w) {
  const int bits = w.spec.bits;
  const std::int64_t rows = w.rows(), cols = w.cols();
  const std::int64_t tiles = (cols + gemv_traits::tile_cols - 1) / gemv_traits::tile_cols;
  const std::int64_t groups = (rows + gemv_traits::group_rows - 1) / gemv_traits::group_rows;
  const int words = gemv_traits::lane_words(bits);
  const int w0 = plane0_bits(bits), w1 = bits - w0;
  std::vector<qstd::uint32_t> out(static_cast<std::size_t>(groups * tiles * 32 * words), 0u);
  qstd::uint32_t lane_w[32];
  for (std::int64_t g = 0; g < groups; ++g)
    for (std::int64_t t = 0; t < tiles; ++t)
      for (int lane = 0; lane < 32; ++lane) {
        for (int i = 0; i < words; ++i) lane_w[i] = 0u;
        for (int p = 0; p < 64; ++p)
          for (int h = 0; h < 2; ++h) {
            const std::int64_t row = g * gemv_traits::group_rows + frag_row(lane, p);
            const std::int64_t col = t * gemv_traits::tile_cols + frag_col(lane, p, h);
            if (row >= rows || col >= cols) continue;  // padding: zero codes
            const qstd::uint32_t code = quant::get_code(w.codes + row * w.layout.code_row_bytes, col, bits);
            lane_w[p / (16 / w0)] |= (code & ((1u << w0) - 1u)) << ((p % (16 / w0)) * w0 + 16 * h);
            if (w1 > 0) lane_w[4 * w0 + p / (16 / w1)] |= (code >> w0) << ((p % (16 / w1)) * w1 + 16 * h);
          }
        const std::size_t base = static_cast<std::size_t>((g * tiles + t) * bits) * 32 * 4;
        for (int i = 0; i < words; ++i)
          out[base + static_cast<std::size_t>(((i / 4) * 32 + lane) * 4 + i % 4)] = lane_w[i];
      }
  return out;
}

}  // namespace detail

// Copies a host quantized matrix to the device (repacking the codes, see
// device_qtensor) and waits for the copies, so the host arrays may go at once.
inline device_qtensor upload(const quant::qtensor_view& w, cudaStream_t stream) {
  const quant::qtensor_layout l = quant::qtensor_layout::of(w.spec, w.rows(), w.cols());
  check(l.code_row_bytes == w.layout.code_row_bytes && l.n_groups == w.layout.n_groups &&
            l.zero_row_bytes == w.layout.zero_row_bytes,
        "upload: the layout of the " + w.spec.str() + " tensor does not match its format");
  check(w.codes != nullptr && w.scales != nullptr && (w.spec.symmetric || w.zeros != nullptr),
        "upload: the " + w.spec.str() + " tensor has a null array");
  check(l.rows <= (1ll << 30) && l.cols <= (1ll << 30), "upload: matrix too large for the GEMV kernel");
  check(w.spec.bits >= 2 && w.spec.bits <= 8 && w.spec.bits != 7,
        "upload: " + std::to_string(w.spec.bits) + "-bit codes are not supported by the GEMV kernel");
  check(l.cols % 8 == 0, "upload: the GEMV kernel needs a multiple of 8 columns");
  device_qtensor d;
  d.spec = w.spec;
  d.layout = l;
  const std::vector<qstd::uint32_t> packed = detail::repack_codes(w);
  d.codes = device_buffer(packed.size() * sizeof(qstd::uint32_t));
  d.scales = device_buffer(static_cast<std::size_t>(l.scale_count()) * sizeof(f16));
  if (!w.spec.symmetric) d.zeros = device_buffer(static_cast<std::size_t>(l.zero_bytes()));
  QMR_CUDA_CHECK(cudaMemcpyAsync(d.codes.data(), packed.data(), d.codes.size(), cudaMemcpyHostToDevice, stream));
  QMR_CUDA_CHECK(cudaMemcpyAsync(d.scales.data(), w.scales, d.scales.size(), cudaMemcpyHostToDevice, stream));
  if (!w.spec.symmetric)
    QMR_CUDA_CHECK(cudaMemcpyAsync(d.zeros.data(), w.zeros, d.zeros.size(), cudaMemcpyHostToDevice, stream));
  QMR_CUDA_CHECK(cudaStreamSynchronize(stream));  // `packed` dies here
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
  const uint4* codes;             // GPU layout, see repack_codes
  const qstd::uint16_t* scales;   // f16 bits [rows, n_groups]
  const qstd::uint8_t* zeros;     // [rows, zero_row_bytes]; null when symmetric
  std::int64_t zero_row_bytes;
  int rows, cols, n_groups;
  int group_shift;                // g = col >> group_shift (31 for per-channel: always group 0)
  int n_tiles;                    // 128-column tiles per row
  int row_groups;                 // groups of 32 rows
  int warps_per_group;            // power of two, 1..8
  int m;                          // batch, 1..8
};

#ifdef __CUDACC__
QMR_DEVICE __forceinline__ void store(float* y, float v) { *y = v; }
QMR_DEVICE __forceinline__ void store(f16* y, float v) { y->bits = __half_as_ushort(__float2half_rn(v)); }
QMR_DEVICE __forceinline__ void store(bf16* y, float v) { y->bits = __bfloat16_as_ushort(__float2bfloat16_rn(v)); }

// The subtrahend of the conversion for zero point z, per activation type: the
// negated pair -(magic + z) for the f16x2/bf16x2 FMA below, or for 8-bit codes
// with bf16 (whose 8-bit mantissa cannot hold magic + 255) the float 2^23 + z.
template <int Bits>
QMR_DEVICE __forceinline__ qstd::uint32_t zero_operand(qstd::uint32_t z, f16) {
  return ((0x6400u | z) * 0x10001u) | 0x80008000u;  // f16 0x6400 | z = 1024 + z
}
template <int Bits>
QMR_DEVICE __forceinline__ qstd::uint32_t zero_operand(qstd::uint32_t z, bf16) {
  if constexpr (Bits == 8) return __float_as_uint(8388608.0f + static_cast<float>(z));
  else return ((0x4300u | z) * 0x10001u) | 0x80008000u;  // bf16 0x4300 | z = 128 + z (z < 128)
}

// A pair of codes (pair_codes) -> the A register {code_lo - z, code_hi - z}:
// OR-ing the codes into the mantissa of a magic number gives magic + code
// exactly; one f16x2/bf16x2 FMA (x 1 - (magic + z)) leaves the exact integer
// code - z (|code - z| <= 255 fits both formats).
template <int Bits>
QMR_DEVICE __forceinline__ qstd::uint32_t dequant_pair(qstd::uint32_t codes, qstd::uint32_t zop, f16) {
  qstd::uint32_t d;
  asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(codes | 0x64006400u), "r"(0x3c003c00u), "r"(zop));
  return d;
}
template <int Bits>
QMR_DEVICE __forceinline__ qstd::uint32_t dequant_pair(qstd::uint32_t codes, qstd::uint32_t zop, bf16) {
  qstd::uint32_t d;
  if constexpr (Bits == 8) {  // through f32: 2^23 + code - (2^23 + z), then one exact pack to bf16x2
    const float lo = __uint_as_float(0x4B000000u | (codes & 0xffffu)) - __uint_as_float(zop);
    const float hi = __uint_as_float(0x4B000000u | (codes >> 16)) - __uint_as_float(zop);
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
  } else {
    asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(codes | 0x43004300u), "r"(0x3f803f80u), "r"(zop));
  }
  return d;
}

// d += A · B for one m16n8k16 tile (f32 accumulators).
QMR_DEVICE __forceinline__ void mma(float (&d)[4], const qstd::uint32_t (&a)[4], uint2 b, f16) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b.x), "r"(b.y));
}
QMR_DEVICE __forceinline__ void mma(float (&d)[4], const qstd::uint32_t (&a)[4], uint2 b, bf16) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b.x), "r"(b.y));
}

// Scales (as f32) and zero operands of group g for the lane's 4 rows [rb][hi].
template <int Bits, class TX>
QMR_DEVICE __forceinline__ void group_params(const gemv_args& a, const std::int64_t (&row)[2][2], int g, float (&sc)[2][2],
                                             qstd::uint32_t (&zop)[2][2], TX) {
#pragma unroll
  for (int rb = 0; rb < 2; ++rb)
#pragma unroll
    for (int hi = 0; hi < 2; ++hi) {
      sc[rb][hi] = __half2float(__ushort_as_half(__ldg(a.scales + row[rb][hi] * a.n_groups + g)));
      const qstd::uint32_t z =
          a.zeros == nullptr ? (1u << (Bits - 1)) : quant::get_code(a.zeros + row[rb][hi] * a.zero_row_bytes, g, Bits);
      zop[rb][hi] = zero_operand<Bits>(z, TX{});
    }
}

// Tiles a warp loads before decoding any of them: enough bytes in flight per SM
// at two blocks per SM (2-4 KB per warp), within the 128 registers that
// __launch_bounds__(256, 2) allows (ptxas for sm_90: 93-128, no spills).
template <int Bits>
inline constexpr int gemv_unroll = Bits <= 4 ? 2 : 1;

// Warp (group, wk) of a block handles row group `group` and tiles wk, wk + wpg, ...
// For each tile: Bits streamed 16-byte loads of codes and 8 8-byte loads of
// activations (batch row min(gid, M-1): lanes past M duplicate the last row and
// their result columns are dropped); then per quantization group in the tile
// (GT = 1, 2 or 4 of them) and row block, 8/GT mma whose f32 sum is scaled into
// the accumulators. Scales multiply partial sums, never weights, so the
// weights fed to the tensor cores are exact.
template <int Bits, int GT, class TX, class TY>
__global__ void __launch_bounds__(gemv_traits::block_threads, 2)
    gemv_kernel(const gemv_args a, const TX* __restrict__ x, TY* __restrict__ y) {
  constexpr int U = gemv_unroll<Bits>;
  constexpr int ksteps = gemv_traits::tile_cols / gemv_traits::kstep_cols;  // 8
  constexpr int steps_per_group = ksteps / GT;
  const int lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) >> 5;
  const int wpg = a.warps_per_group;
  const int wk = warp & (wpg - 1);
  const int group = static_cast<int>(blockIdx.x) * (gemv_traits::block_warps / wpg) + warp / wpg;
  const int gid = lane >> 2, t4 = lane & 3;
  const bool valid = group < a.row_groups;

  float acc[2][4];
#pragma unroll
  for (int rb = 0; rb < 2; ++rb)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[rb][i] = 0.0f;

  if (valid) {
    const TX* xrow = x + static_cast<std::int64_t>(min(gid, a.m - 1)) * a.cols;
    // The lane's 4 rows (rb, hi) = 32*group + 16*rb + 8*hi + gid, clamped for scale/zero reads.
    std::int64_t row[2][2];
#pragma unroll
    for (int rb = 0; rb < 2; ++rb)
#pragma unroll
      for (int hi = 0; hi < 2; ++hi)
        row[rb][hi] = min(group * gemv_traits::group_rows + 16 * rb + 8 * hi + gid, a.rows - 1);
    const uint4* gcodes = a.codes + static_cast<std::int64_t>(group) * a.n_tiles * Bits * 32 + lane;

    for (int t0 = wk; t0 < a.n_tiles; t0 += U * wpg) {
      qstd::uint32_t w[U][4 * Bits];
      float sc1[U][2][2];             // GT == 1: the tile's scales and zeros, loaded with its codes
      qstd::uint32_t zop1[U][2][2];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int t = t0 + u * wpg;
        if (t < a.n_tiles) {
#pragma unroll
          for (int v = 0; v < Bits; ++v) {
            const uint4 q = __ldcs(gcodes + (static_cast<std::int64_t>(t) * Bits + v) * 32);  // streamed: read once
            w[u][4 * v + 0] = q.x;
            w[u][4 * v + 1] = q.y;
            w[u][4 * v + 2] = q.z;
            w[u][4 * v + 3] = q.w;
          }
          if constexpr (GT == 1)
            group_params<Bits>(a, row, min((t * gemv_traits::tile_cols) >> a.group_shift, a.n_groups - 1), sc1[u],
                               zop1[u], TX{});
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int t = t0 + u * wpg;
        if (t >= a.n_tiles) continue;
        uint2 xs[ksteps];  // activations: L1/L2 hits, loaded after the codes are in flight
#pragma unroll
        for (int s = 0; s < ksteps; ++s) {
          const int c = t * gemv_traits::tile_cols + gemv_traits::kstep_cols * s + 4 * t4;
          // cols is a multiple of 8: the 4 columns from c are all in or all out
          xs[s] = c < a.cols ? __ldg(reinterpret_cast<const uint2*>(xrow + c)) : make_uint2(0u, 0u);
        }
#pragma unroll
        for (int j = 0; j < GT; ++j) {
          const int col0 = t * gemv_traits::tile_cols + j * (gemv_traits::tile_cols / GT);
          float sc[2][2];
          qstd::uint32_t zop[2][2];
          if constexpr (GT == 1) {
#pragma unroll
            for (int rb = 0; rb < 2; ++rb)
#pragma unroll
              for (int hi = 0; hi < 2; ++hi) {
                sc[rb][hi] = sc1[u][rb][hi];
                zop[rb][hi] = zop1[u][rb][hi];
              }
          } else {
            group_params<Bits>(a, row, min(col0 >> a.group_shift, a.n_groups - 1), sc, zop, TX{});
          }
#pragma unroll
          for (int rb = 0; rb < 2; ++rb) {
            float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
            for (int s = j * steps_per_group; s < (j + 1) * steps_per_group; ++s) {
              qstd::uint32_t af[4];
#pragma unroll
              for (int reg = 0; reg < 4; ++reg)
                af[reg] = dequant_pair<Bits>(pair_codes<Bits>(w[u], 4 * (2 * s + rb) + reg), zop[rb][reg & 1], TX{});
              mma(d, af, xs[s], TX{});
            }
            acc[rb][0] = fmaf(sc[rb][0], d[0], acc[rb][0]);
            acc[rb][1] = fmaf(sc[rb][0], d[1], acc[rb][1]);
            acc[rb][2] = fmaf(sc[rb][1], d[2], acc[rb][2]);
            acc[rb][3] = fmaf(sc[rb][1], d[3], acc[rb][3]);
          }
        }
      }
    }
  }

  if (wpg > 1) {  // the group's warps meet in shared memory (uniform branch)
    __shared__ float partial[gemv_traits::block_warps][8][32];  // [warp][accumulator][lane]: conflict-free
#pragma unroll
    for (int rb = 0; rb < 2; ++rb)
#pragma unroll
      for (int i = 0; i < 4; ++i) partial[warp][4 * rb + i][lane] = acc[rb][i];
    __syncthreads();
    if (wk == 0)
#pragma unroll
      for (int rb = 0; rb < 2; ++rb)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          float sum = acc[rb][i];
          for (int k = 1; k < wpg; ++k) sum += partial[warp + k][4 * rb + i][lane];
          acc[rb][i] = sum;
        }
  }
  // Accumulator i of row block rb: row 16*rb + 8*(i >> 1) + gid, batch row 2*t4 + (i & 1).
  if (valid && wk == 0)
#pragma unroll
    for (int rb = 0; rb < 2; ++rb)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int r = group * gemv_traits::group_rows + 16 * rb + 8 * (i >> 1) + gid;
        const int n = 2 * t4 + (i & 1);
        if (r < a.rows && n < a.m) store(y + static_cast<std::int64_t>(n) * a.rows + r, acc[rb][i]);
      }
}

template <int Bits, class TX, class TY>
void launch(int groups_per_tile, const gemv_args& a, const TX* x, TY* y, cudaStream_t stream) {
  const int groups_per_block = gemv_traits::block_warps / a.warps_per_group;
  const unsigned blocks = static_cast<unsigned>((a.row_groups + groups_per_block - 1) / groups_per_block);
  switch (groups_per_tile) {
    case 1: gemv_kernel<Bits, 1, TX, TY><<<blocks, gemv_traits::block_threads, 0, stream>>>(a, x, y); break;
    case 2: gemv_kernel<Bits, 2, TX, TY><<<blocks, gemv_traits::block_threads, 0, stream>>>(a, x, y); break;
    case 4: gemv_kernel<Bits, 4, TX, TY><<<blocks, gemv_traits::block_threads, 0, stream>>>(a, x, y); break;
    default: throw error("gemv: " + std::to_string(groups_per_tile) + " groups per tile is not supported");
  }
  QMR_CUDA_CHECK(cudaGetLastError());
}
#endif  // __CUDACC__

}  // namespace detail

#ifdef __CUDACC__
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
  a.zero_row_bytes = w.layout.zero_row_bytes;
  a.rows = static_cast<int>(w.layout.rows);
  a.cols = static_cast<int>(w.layout.cols);
  a.n_groups = static_cast<int>(w.layout.n_groups);
  a.group_shift = w.spec.group == quant::per_channel ? 31 : qstd::countr_zero(static_cast<unsigned>(w.spec.group));
  a.n_tiles = static_cast<int>(w.tiles_per_row());
  a.row_groups = static_cast<int>(w.row_groups());
  a.warps_per_group = tpr < 32 ? 1 : tpr / 32;
  a.m = M;
  // Quantization groups per 128-column tile: 4 (g32), 2 (g64), else 1 (a group spans the tile).
  const int gt = w.spec.group == quant::per_channel || w.spec.group >= gemv_traits::tile_cols
                     ? 1
                     : gemv_traits::tile_cols / w.spec.group;
  switch (w.spec.bits) {
    case 2: return detail::launch<2>(gt, a, x, y, stream);
    case 3: return detail::launch<3>(gt, a, x, y, stream);
    case 4: return detail::launch<4>(gt, a, x, y, stream);
    case 5: return detail::launch<5>(gt, a, x, y, stream);
    case 6: return detail::launch<6>(gt, a, x, y, stream);
    case 8: return detail::launch<8>(gt, a, x, y, stream);
    default: throw error("gemv: " + std::to_string(w.spec.bits) + "-bit codes are not supported");
  }
}
#endif  // __CUDACC__

}  // namespace qmr::cuda
