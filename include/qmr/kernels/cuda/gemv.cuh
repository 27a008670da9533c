// Dequantizing GEMV and GEMM on CUDA: y[M, rows] = x[M, cols] · Wᵀ for M = 1..16 (GEMV) and larger batches (a tiled GEMM), W in any qmr packed format (2-8 bits, groups 32-256 or per-channel, symmetric or asymmetric), f16/bf16 activations, weights decoded to exact integers for mma.sync tensor-core tiles, f32 accumulation; at M = 1 optionally the CUDA-core lane-layout kernel of gemv_lanes.cuh.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../../config.hpp"
#include "../../core/error.hpp"
#include "../../core/half.hpp"
#include "../../quant/format.hpp"
#include "../../quant/pack.hpp"
#include "../../quant/qtensor.hpp"
#include "device.cuh"
#include "gemv_lanes.cuh"
#include "gemv_split.cuh"

namespace qmr::cuda {

// Shape of the GEMV kernel. It runs on the tensor cores: mma.sync m16n8k16 with
// f32 accumulation, the weights as the A operand (16 rows x 16 columns, decoded
// to exact integers code - zero in f16/bf16) and the activations as B (16
// columns x 8 batch rows, one or two such n-blocks for M = 1..8 or 9..16;
// batches below a multiple of 8 leave result columns unused), so M = 1..8 cost
// the same instructions. A warp owns a group of 32 rows (two 16-row A blocks
// sharing every B fragment, which halves the activation loads) and walks that
// group's 128-column tiles; the warps of one group split the tiles and meet in
// shared memory. Each warp streams its tiles through a ring of shared-memory
// stages with cp.async (see gemv_stages), so the loads of the next tiles are in
// flight while it decodes the current one.
struct gemv_traits {
  static constexpr int tile_cols = 128;
  static constexpr int group_rows = 32;   // rows per warp: two 16-row mma blocks
  static constexpr int kstep_cols = 16;   // K of one mma
  static constexpr int sub_cols = 32;     // smallest quantization group: two k-steps
  static constexpr int block_threads = 256;
  static constexpr int block_warps = block_threads / 32;
  static constexpr int nblock = 8;        // N of the mma: batch rows per n-block
  static constexpr int max_batch = 16;    // two n-blocks
  static constexpr int min_threads_per_row = 8;
  static constexpr int max_threads_per_row = block_threads;
  // Shared memory a warp's ring may take: 8 warps x 11 KB = 88 KB per block, which
  // leaves 24 KB of the 112 KB that two blocks of an sm_90 SM may each take for the
  // activations (x_smem_budget; sm_80/87 fit one block).
  static constexpr int ring_bytes_per_warp = 11264;
  static constexpr int block_smem_bytes = 112 * 1024;
  static_assert(tile_cols % sub_cols == 0 && sub_cols % kstep_cols == 0);
  // 32-bit words a lane holds per tile: 32 x 128 codes over 32 lanes = 128 codes.
  static constexpr int lane_words(int bits) { return 4 * bits; }
  // Bytes of one 32-row x 128-column tile's codes: Bits 16-byte vectors per lane.
  static constexpr int tile_bytes(int bits) { return group_rows * tile_cols * bits / 8; }
};
static_assert(gemv_traits::tile_bytes(3) == 32 * 16 * 3 && gemv_traits::tile_bytes(8) == 4096);

// Quantization groups per 128-column tile: 4 (g32), 2 (g64), else 1 (a group
// spans the tile: g128, g256, per-channel).
QMR_HOST_DEVICE constexpr int groups_per_tile(int group) {
  return group == quant::per_channel || group >= gemv_traits::tile_cols ? 1 : gemv_traits::tile_cols / group;
}
// 16-byte vectors of a tile's parameters: f16 scales [GT][32 rows] (4*GT
// vectors), then for asymmetric formats u8 zero points [GT][32 rows] (2*GT).
QMR_HOST_DEVICE constexpr int meta_vectors(int gt, bool asym) { return (asym ? 6 : 4) * gt; }
// 16-byte vectors of one tile block: the codes (32 lanes x Bits) and the parameters.
QMR_HOST_DEVICE constexpr int block_vectors(int bits, int gt, bool asym) { return 32 * bits + meta_vectors(gt, asym); }
// Ring stages per warp: as many tile blocks as fit ring_bytes_per_warp (sized
// for the asymmetric block), 2..8: S - 1 tiles in flight while one is decoded.
// 8 stages already put 7 KB (w2) in flight per warp, ~110 KB per SM.
QMR_HOST_DEVICE constexpr int gemv_stages(int bits, int gt) {
  const int s = gemv_traits::ring_bytes_per_warp / (16 * block_vectors(bits, gt, true));
  return s < 2 ? 2 : s > 8 ? 8 : s;
}
static_assert(gemv_stages(8, 4) >= 2 && gemv_stages(4, 1) == 5 && gemv_stages(2, 1) == 8);
// Dynamic shared memory of one block: the warps' rings.
QMR_HOST_DEVICE constexpr int gemv_smem_bytes(int bits, int gt, bool asym) {
  return gemv_traits::block_warps * gemv_stages(bits, gt) * block_vectors(bits, gt, asym) * 16;
}
// Activations staged in shared memory once per block when M x cols f16/bf16 fit
// beside the rings (M = 1 up to 12288 columns): the per-tile activation loads then
// read shared memory, not L1/L2.
QMR_HOST_DEVICE constexpr int x_smem_budget(int bits, int gt, bool asym) {
  return gemv_traits::block_smem_bytes - gemv_smem_bytes(bits, gt, asym);
}
// The ring is reused for the final cross-warp sum: [warp][8 * n-blocks accumulators][lane] f32.
static_assert(gemv_smem_bytes(2, 1, false) >= gemv_traits::block_warps * 16 * 32 * 4);

// The tiled GEMM's shape (gemm_kernel below).
struct gemm_traits {
  static constexpr int warps_rows = 2;     // row groups (32 rows each) per k-slice
  static constexpr int warps_tokens = 2;   // token slices per k-slice
  static constexpr int warp_tokens = 32;   // tokens per warp: 4 n-blocks of mma N = 8
  static constexpr int nb = warp_tokens / gemv_traits::nblock;
  static constexpr int slice_warps = warps_rows * warps_tokens;  // the warps of one k-slice
  static constexpr int block_tokens = warps_tokens * warp_tokens;
  // Up to 4 k-slices per block (split-K inside the block: slice i takes every 4th, 2nd
  // or every tile from tile i), so that small grids still bring 16 warps to each SM:
  // 512 threads, hence at most 128 registers a thread (__launch_bounds__).
  static constexpr int max_ksplit = 4;
  static constexpr int max_threads = 32 * slice_warps * max_ksplit;
  static constexpr int target_warps_per_sm = 16;  // 16 x 32 x 128 registers = the register file
  // Activation row stride in elements: 128 + 16, so that rows sit 288 bytes apart
  // (8 banks): the 8-byte B-fragment loads of a half-warp (rows gid..gid+3, 32
  // bytes each) cover all 32 banks once. A multiple of 8 keeps cp.async's 16 bytes aligned.
  static constexpr int x_stride = gemv_traits::tile_cols + 16;
  static constexpr int x_stage_bytes = block_tokens * x_stride * 2;  // f16 or bf16
  // Shared memory an SM gives its blocks (sm_90: 228 KB, 1 KB of it reserved per block).
  static constexpr int sm_smem_bytes = 227 * 1024;
  // Batches from here on take the GEMM (see gemv()); below it, one or two launches of
  // the GEMV (16 tokens each). On an H200 two GEMV launches beat the GEMM on long rows
  // (4096 x 14336 w4g128 at 32 tokens: 72 against 78 us) and the GEMM wins from 33 tokens
  // on every shape measured (bench/results/cuda_gemm_20261204_s27.md).
  static constexpr int min_batch = 33;
  static_assert(x_stage_bytes % 16 == 0 && x_stride % 8 == 0);
};
// Bytes of one k-slice's stage: its tile's activations and the two row groups' tile blocks.
QMR_HOST_DEVICE constexpr int gemm_stage_bytes(int block_vectors) {
  return gemm_traits::x_stage_bytes + gemm_traits::warps_rows * block_vectors * 16;
}
// The largest stage (w8g32 asymmetric, 280 vectors) fits two stages of four k-slices in an SM.
static_assert(2 * gemm_traits::max_ksplit * gemm_stage_bytes(block_vectors(8, 4, true)) <= gemm_traits::sm_smem_bytes);
// The slices' final sums reuse the stages: a slice's 4 warps x 32 totals x 32 lanes of f32 fit its two stages.
static_assert(2 * gemm_traits::x_stage_bytes >= gemm_traits::slice_warps * 8 * gemm_traits::nb * 32 * 4);

// A quantized matrix on the device, repacked at upload into the "GPU layout"
// (see detail::repack): for each group of 32 rows and each 128-column tile one
// contiguous block of block_vectors() 16-byte vectors holding
//   - the codes: lane l of a warp finds the 128 codes its mma fragments need in
//     Bits vectors, stored vector-major ([vector][lane]) so that each load of a
//     warp reads 512 contiguous bytes;
//   - the tile's scales (f16 [GT][32 rows]) and, when asymmetric, zero points
//     (u8 [GT][32 rows], unpacked from their Bits-wide codes).
// So one warp streams everything a tile needs with 16-byte copies. Blocks are
// ordered [row group][tile]. Rows are padded to a multiple of 32 and columns to
// a multiple of 128 with zero codes and scales (the kernel feeds zero
// activations to padded columns and never writes padded rows). Scales of a
// group that spans several tiles (g256, per-channel) are repeated in each tile's
// block: 64 bytes per 32x128 tile, +3% of the w4 codes for per-channel.
// Owns its buffer.
struct device_qtensor {
  quant::format_spec spec;
  quant::qtensor_layout layout;
  device_buffer blocks;  // uint4 [row_groups, tiles_per_row, block_vectors]: see detail::repack
  // The lane layout (gemv_lanes.cuh) of the same weights, for the M = 1 path on CUDA
  // cores; empty when the format has none (lanes_supported) or upload was asked
  // for none. It costs one more copy of the codes and scales on the device.
  device_buffer lanes;
  lanes_layout lanes_l;
  // The split layout (gemv_split.cuh) of the same weights, for 1-16 tokens where
  // split_takes() says the split-K kernel is faster; empty unless upload was asked
  // for it and the format has one (split_supported). Another copy of the weights.
  device_split split;
  int sm_count = 0;
  // 32 x the warps that share one group of 32 rows (split its tiles): a power of
  // two in [8, 256], values below 32 meaning one warp; chosen at upload from the
  // shape (callers may override it, e.g. tests).
  int threads_per_row = 256;

  std::int64_t rows() const { return layout.rows; }
  std::int64_t cols() const { return layout.cols; }
  std::int64_t tiles_per_row() const { return (layout.cols + gemv_traits::tile_cols - 1) / gemv_traits::tile_cols; }
  std::int64_t row_groups() const { return (layout.rows + gemv_traits::group_rows - 1) / gemv_traits::group_rows; }
  int groups_per_tile() const { return cuda::groups_per_tile(spec.group); }
  int block_vectors() const { return cuda::block_vectors(spec.bits, groups_per_tile(), !spec.symmetric); }
  // Bytes a GEMV reads from W as stored on disk (unpadded codes, scales and zeros).
  std::int64_t weight_bytes() const { return layout.total_bytes(); }
  // Bytes of the device copies (padding and repeated scales included; every layout uploaded;
  // not the split layout's workspace, which tensors may share: split.workspace_bytes()).
  std::int64_t device_bytes() const {
    return static_cast<std::int64_t>(blocks.size() + lanes.size()) + (has_split() ? split.device_bytes() : 0);
  }
  bool has_lanes() const { return lanes.data() != nullptr; }
  bool has_split() const { return split.data.data() != nullptr; }
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

// Repacks `w` into the GPU layout (see device_qtensor): u32 words, block
// (group, tile) at word (group * tiles + tile) * block_vectors * 4; inside it,
// word 4*v + k of lane l's codes at ((v * 32 + l) * 4 + k), then the scales
// (f16 bits, two per word, [j][row]) and the zero points (bytes, [j][row]).
inline std::vector<qstd::uint32_t> repack(const quant::qtensor_view& w) {
  const int bits = w.spec.bits;
  const std::int64_t rows = w.rows(), cols = w.cols();
  const std::int64_t tiles = (cols + gemv_traits::tile_cols - 1) / gemv_traits::tile_cols;
  const std::int64_t groups = (rows + gemv_traits::group_rows - 1) / gemv_traits::group_rows;
  const int words = gemv_traits::lane_words(bits);
  const int w0 = plane0_bits(bits), w1 = bits - w0;
  const int gt = groups_per_tile(w.spec.group);
  const bool asym = !w.spec.symmetric;
  const std::size_t block_words = static_cast<std::size_t>(block_vectors(bits, gt, asym)) * 4;
  const int group_shift = group_shift_of(w.spec);
  std::vector<qstd::uint32_t> out(static_cast<std::size_t>(groups * tiles) * block_words, 0u);
  qstd::uint32_t lane_w[32];
  for (std::int64_t g = 0; g < groups; ++g)
    for (std::int64_t t = 0; t < tiles; ++t) {
      qstd::uint32_t* block = out.data() + static_cast<std::size_t>(g * tiles + t) * block_words;
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
        for (int i = 0; i < words; ++i) block[((i / 4) * 32 + lane) * 4 + i % 4] = lane_w[i];
      }
      qstd::uint32_t* meta = block + 32 * 4 * bits;
      for (int j = 0; j < gt; ++j) {
        const std::int64_t col0 = t * gemv_traits::tile_cols + j * (gemv_traits::tile_cols / gt);
        const std::int64_t n = std::min<std::int64_t>(col0 >> group_shift, w.layout.n_groups - 1);
        for (int r = 0; r < gemv_traits::group_rows; ++r) {
          const std::int64_t row = g * gemv_traits::group_rows + r;
          if (row >= rows) continue;  // padding: zero scale
          const int k = j * gemv_traits::group_rows + r;
          meta[k / 2] |= static_cast<qstd::uint32_t>(w.scales[row * w.layout.n_groups + n].bits) << (16 * (k % 2));
          if (asym)
            meta[16 * gt + k / 4] |= quant::get_code(w.zeros + row * w.layout.zero_row_bytes, n, bits) << (8 * (k % 4));
        }
      }
    }
  return out;
}

}  // namespace detail

// The device copies upload() makes besides the tiled one, each one more copy of
// the weights in device memory; gemv() runs whichever is fastest of those present.
struct upload_layouts {
  // The lane layout, where the format has one (2/3/4/8-bit, symmetric or not, see
  // lanes_supported): gemv() runs it at M = 1 with f16 activations. Its f16
  // partial sums are less precise than the tensor-core kernel's f32
  // (tests/cuda/test_gemv_lanes.cu; compute-sanitizer memcheck and racecheck clean:
  // bench/results/cuda_sanitizer_lanes_20261202.txt).
  bool lanes = false;
  // The split layout, where the format has one (split_supported; sides up to
  // split_max_dim): gemv() runs the split-K kernel for 1-16 tokens of f16
  // activations where split_takes() says so (M = 1 only without a lane layout).
  // Its slice sums go through a workspace: GEMVs that use one workspace on two
  // streams at once must not overlap (calls on one stream, or in one graph, are
  // ordered).
  bool split = false;
  // The workspace of the split layout's slice sums, shared with other tensors (see
  // split_workspace); null: one of the tensor's own.
  std::shared_ptr<split_workspace> split_ws = nullptr;
};

// Copies a host quantized matrix to the device (repacking it, see
// device_qtensor) in the tiled layout and those `layouts` asks for, and waits
// for the copies, so the host arrays may go at once.
inline device_qtensor upload(const quant::qtensor_view& w, cudaStream_t stream, upload_layouts layouts) {
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
  check(w.spec.group == quant::per_channel || (w.spec.group >= gemv_traits::sub_cols && (w.spec.group & (w.spec.group - 1)) == 0),
        "upload: group size " + std::to_string(w.spec.group) + " is not supported by the GEMV kernel (32, 64, 128, 256 or per-channel)");
  device_qtensor d;
  d.spec = w.spec;
  d.layout = l;
  const std::vector<qstd::uint32_t> packed = detail::repack(w);
  d.blocks = device_buffer(packed.size() * sizeof(qstd::uint32_t));
  QMR_CUDA_CHECK(cudaMemcpyAsync(d.blocks.data(), packed.data(), d.blocks.size(), cudaMemcpyHostToDevice, stream));
  QMR_CUDA_CHECK(cudaStreamSynchronize(stream));  // `packed` dies here
  int device = 0, sm_count = 0;
  QMR_CUDA_CHECK(cudaGetDevice(&device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
  d.threads_per_row = choose_threads_per_row(l.rows, d.tiles_per_row(), sm_count);
  d.sm_count = sm_count;
  if (layouts.lanes && lanes_supported(w.spec, l.cols) && l.cols * 2 <= gemv_lanes_traits::max_x_bytes) {
    d.lanes_l = lanes_layout::of(w.spec.bits, l.rows, l.cols, l.n_groups, !w.spec.symmetric);
    const std::vector<qstd::uint32_t> lp = detail::lanes_repack(w);
    d.lanes = device_buffer(static_cast<std::size_t>(d.lanes_l.bytes));
    QMR_CUDA_CHECK(cudaMemcpyAsync(d.lanes.data(), lp.data(), d.lanes.size(), cudaMemcpyHostToDevice, stream));
    QMR_CUDA_CHECK(cudaStreamSynchronize(stream));  // `lp` dies here
  }
  if (layouts.split && split_supported(w.spec) && l.rows <= split_max_dim && l.cols <= split_max_dim)
    d.split = upload_split(w, stream, layouts.split_ws);
  return d;
}
// The tiled layout, and the lane layout too when with_lanes (upload_layouts::lanes).
inline device_qtensor upload(const quant::qtensor_view& w, cudaStream_t stream, bool with_lanes = false) {
  return upload(w, stream, upload_layouts{.lanes = with_lanes, .split = false});
}

// A device-side copy of an uploaded matrix (benchmarks rotate through copies so
// that the weights come from DRAM, not L2). Asynchronous on `stream`.
inline device_qtensor clone(const device_qtensor& w, cudaStream_t stream) {
  device_qtensor d;
  d.spec = w.spec;
  d.layout = w.layout;
  d.threads_per_row = w.threads_per_row;
  d.sm_count = w.sm_count;
  d.blocks = device_buffer(w.blocks.size());
  QMR_CUDA_CHECK(cudaMemcpyAsync(d.blocks.data(), w.blocks.data(), w.blocks.size(), cudaMemcpyDeviceToDevice, stream));
  if (w.has_lanes()) {
    d.lanes_l = w.lanes_l;
    d.lanes = device_buffer(w.lanes.size());
    QMR_CUDA_CHECK(cudaMemcpyAsync(d.lanes.data(), w.lanes.data(), w.lanes.size(), cudaMemcpyDeviceToDevice, stream));
  }
  if (w.has_split()) d.split = clone(w.split, stream);
  return d;
}

// The outputs and parameters of gemv_qkv_rope's epilogue (device pointers).
struct qkv_rope_epilogue {
  const float* q_bias = nullptr;  // [heads d], [kv_heads d] x2; null when absent
  const float* k_bias = nullptr;
  const float* v_bias = nullptr;
  const float* rope_cos = nullptr;      // [capacity, d / 2]: rope_table's cos and sin of position * inv_freq
  const float* rope_sin = nullptr;
  const qstd::int32_t* pos0 = nullptr;  // the position of token 0
  float* q_out = nullptr;    // [M, heads d]
  float* k_cache = nullptr;  // [capacity, kv_heads d]: row pos0 + t receives token t
  float* v_cache = nullptr;
  int heads = 0, kv_heads = 0, d = 0;
};

namespace detail {

// Kernel arguments (by value).
struct gemv_args {
  const uint4* blocks;            // GPU layout, see repack
  int rows, cols;
  int n_tiles;                    // 128-column tiles per row
  int row_groups;                 // groups of 32 rows
  int warps_per_group;            // power of two, 1..8
  int m;                          // batch: 1..16 for gemv_kernel, any for gemm_kernel
  int block_vectors;              // 16-byte vectors per tile block
  bool asym;                      // zero points follow the scales
  bool x_smem;                    // x (M x cols) is staged in shared memory after the rings
  int gemm_stages;                // gemm_kernel: ring stages (2 or 3); its k-slices are warps_per_group
  // The SiLU·up epilogue (gemv_silu_mul), when act is set: the rows are blocks of 8 gate
  // rows then the same 8 up rows (silu_pairs_order), and instead of y the kernel writes
  // act[n][j] = silu(gate_j) * up_j (f32) and act_half[n][j] (the activation type), j < inter.
  float* act;
  void* act_half;
  int inter;
  qkv_rope_epilogue rope;  // the bias + RoPE + KV-cache epilogue (gemv_qkv_rope), when rope.q_out is set
};

#ifdef __CUDACC__
QMR_DEVICE __forceinline__ void store(float* y, float v) { *y = v; }
QMR_DEVICE __forceinline__ void store(f16* y, float v) { y->bits = __half_as_ushort(__float2half_rn(v)); }
QMR_DEVICE __forceinline__ void store(bf16* y, float v) { y->bits = __bfloat16_as_ushort(__float2bfloat16_rn(v)); }

// RoPE's rotate-half of the pair (x1, x2) = dims (f, f + d/2): the new x1 and the new x2.
// Rounded products and sums, no FMA contraction, so that every kernel that rotates
// (qkv_rope_kernel, gemv_qkv_rope's epilogue) gives the same bits.
QMR_DEVICE __forceinline__ float rope_first(float x1, float x2, float cs, float sn) {
  return __fsub_rn(__fmul_rn(x1, cs), __fmul_rn(x2, sn));
}
QMR_DEVICE __forceinline__ float rope_second(float x1, float x2, float cs, float sn) {
  return __fadd_rn(__fmul_rn(x2, cs), __fmul_rn(x1, sn));
}

// The subtrahend of the conversion for zero point z, per activation type: the
// negated pair -(magic + z) for the f16x2/bf16x2 FMA below, or for 8-bit codes
// with bf16 (whose 8-bit mantissa cannot hold magic + 255) the float 2^23 + z.
template <int Bits>
QMR_DEVICE __forceinline__ qstd::uint32_t zero_operand(qstd::uint32_t z, f16) {
  return 0xe400e400u + z * 0x10001u;  // -(1024 + z) in each f16 half (z < 1024: no carry into the exponent)
}
template <int Bits>
QMR_DEVICE __forceinline__ qstd::uint32_t zero_operand(qstd::uint32_t z, bf16) {
  if constexpr (Bits == 8) return __float_as_uint(8388608.0f + static_cast<float>(z));
  else return 0xc300c300u + z * 0x10001u;  // -(128 + z) in each bf16 half (z < 128)
}

// A pair of codes (pair_codes) -> the A register {code_lo - z, code_hi - z}:
// OR-ing the codes into the mantissa of a magic number gives magic + code
// exactly; one f16x2/bf16x2 FMA (x 1 - (magic + z)) leaves the exact integer
// code - z (|code - z| <= 255 fits both formats).
// v * scale + zop on a pair (f16x2 or bf16x2): the one FMA of every decode below,
// v holding the codes ORed into the magic number.
QMR_DEVICE __forceinline__ qstd::uint32_t pair_fma(qstd::uint32_t v, qstd::uint32_t scale, qstd::uint32_t zop, f16) {
  qstd::uint32_t d;
  asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(v), "r"(scale), "r"(zop));
  return d;
}
QMR_DEVICE __forceinline__ qstd::uint32_t pair_fma(qstd::uint32_t v, qstd::uint32_t scale, qstd::uint32_t zop, bf16) {
  qstd::uint32_t d;
  asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(v), "r"(scale), "r"(zop));
  return d;
}
// The magic numbers (2^10 for f16, 2^7 for bf16) and 1.0, as pairs.
QMR_HOST_DEVICE constexpr qstd::uint32_t pair_magic(f16) { return 0x64006400u; }
QMR_HOST_DEVICE constexpr qstd::uint32_t pair_magic(bf16) { return 0x43004300u; }
QMR_HOST_DEVICE constexpr qstd::uint32_t pair_one(f16) { return 0x3c003c00u; }
QMR_HOST_DEVICE constexpr qstd::uint32_t pair_one(bf16) { return 0x3f803f80u; }

template <int Bits>
QMR_DEVICE __forceinline__ qstd::uint32_t dequant_pair(qstd::uint32_t codes, qstd::uint32_t zop, f16) {
  return pair_fma(codes | pair_magic(f16{}), pair_one(f16{}), zop, f16{});
}
template <int Bits>
QMR_DEVICE __forceinline__ qstd::uint32_t dequant_pair(qstd::uint32_t codes, qstd::uint32_t zop, bf16) {
  qstd::uint32_t d;
  if constexpr (Bits == 8) {  // through f32: 2^23 + code - (2^23 + z), then one exact pack to bf16x2
    const float lo = __uint_as_float(0x4B000000u | (codes & 0xffffu)) - __uint_as_float(zop);
    const float hi = __uint_as_float(0x4B000000u | (codes >> 16)) - __uint_as_float(zop);
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
  } else {
    d = pair_fma(codes | pair_magic(bf16{}), pair_one(bf16{}), zop, bf16{});
  }
  return d;
}

// Mantissa bits of the activation type: where the magic number's exact integers end.
QMR_HOST_DEVICE constexpr int mantissa_bits(f16) { return 10; }
QMR_HOST_DEVICE constexpr int mantissa_bits(bf16) { return 7; }
// Formats whose codes sit in one bit plane (2, 4, 8 bits; not 8-bit bf16, which
// goes through f32) decode with fewer shifts: a code at bit `pos` of a half (pos
// <= mantissa - Bits) ORed into the magic number gives magic + code * 2^pos
// exactly, and the FMA scales by 2^-pos while subtracting magic * 2^-pos + z,
// again exactly. So one shift serves every pair within the next mantissa - Bits
// + 1 bits of the word (4-bit f16: 1 shift per 4 pairs, not 3; 2-bit: 1 per 8).
template <int Bits, class TX>
QMR_HOST_DEVICE constexpr bool positional_decode() {
  return plane0_bits(Bits) == Bits && mantissa_bits(TX{}) - Bits >= 0 && !(Bits == 8 && qstd::is_same_v<TX, bf16>);
}

// A register {code_lo - z, code_hi - z} of pair p of the lane's words `w`.
template <int Bits, class TX>
QMR_DEVICE __forceinline__ qstd::uint32_t decode_pair(const qstd::uint32_t (&w)[4 * Bits], int p, qstd::uint32_t z) {
  if constexpr (positional_decode<Bits, TX>()) {
    constexpr int span = mantissa_bits(TX{}) - Bits + 1;  // bit offsets one shift serves
    const int off = (p % (16 / Bits)) * Bits;              // the pair's bit offset in its word
    const int shift = (off / span) * span, pos = off - shift;
    constexpr qstd::uint32_t mask = ((1u << Bits) - 1u) * 0x10001u;
    // (word >> shift) & (mask << pos) | magic in one LOP3: both constants in
    // registers, since a LOP3 takes one immediate and the compiler would emit two.
    const qstd::uint32_t m = mask << pos, magic = pair_magic(TX{});
    qstd::uint32_t v;
    asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(v) : "r"(w[p / (16 / Bits)] >> shift), "r"(m), "r"(magic));
    // scale 2^-pos; subtrahend 2^(M-pos) + z for M mantissa bits (exponent bias + M - pos,
    // mantissa z << pos), negated
    constexpr int bias = qstd::is_same_v<TX, f16> ? 15 : 127, mb = mantissa_bits(TX{});
    const qstd::uint32_t sc = static_cast<qstd::uint32_t>((bias - pos) << mb) * 0x10001u;
    // z << pos stays below 2^mb (pos <= mb - Bits): one IMAD per pair class on the
    // pair z * 0x10001, which the compiler computes once per zero point (ncu, w4g128s
    // 8192^2 on an H200: 4.8% fewer warp instructions at M = 1, 3.1% at M = 16, than
    // building each operand from z with a shift, an OR and a multiply).
    const qstd::uint32_t zo =
        ((static_cast<qstd::uint32_t>((bias + mb - pos) << mb) * 0x10001u) | 0x80008000u) + (z * 0x10001u) * (1u << pos);
    return pair_fma(v, sc, zo, TX{});
  } else if constexpr (plane0_bits(Bits) != Bits) {
    // Two planes (3, 5, 6 bits): pair_codes with each mask-and-merge as one LOP3.
    constexpr int w0 = plane0_bits(Bits), w1 = Bits - w0;
    const int sh0 = (p % (16 / w0)) * w0, sh1 = (p % (16 / w1)) * w1;
    const qstd::uint32_t m0 = ((1u << w0) - 1u) * 0x10001u, m1 = (((1u << w1) - 1u) << w0) * 0x10001u;
    const qstd::uint32_t magic = pair_magic(TX{});
    const qstd::uint32_t t = w[4 * w0 + p / (16 / w1)];
    qstd::uint32_t lo, v;
    asm("lop3.b32 %0, %1, %2, %3, 0xea;" : "=r"(lo) : "r"(w[p / (16 / w0)] >> sh0), "r"(m0), "r"(magic));
    asm("lop3.b32 %0, %1, %2, %3, 0xea;"
        : "=r"(v)
        : "r"(sh1 >= w0 ? t >> (sh1 - w0) : t << (w0 - sh1)), "r"(m1), "r"(lo));
    return pair_fma(v, pair_one(TX{}), zero_operand<Bits>(z, TX{}), TX{});
  } else {
    return dequant_pair<Bits>(pair_codes<Bits>(w, p), zero_operand<Bits>(z, TX{}), TX{});
  }
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

// 16-byte global -> shared copy that bypasses L1 (cp.async, sm_80+), with an
// L2 evict-first policy: the weights are read once per call, so they should not
// push the activations and the next layer's inputs out of L2.
QMR_DEVICE __forceinline__ void cp_async16(void* smem, const void* gmem, qstd::uint64_t policy) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;" ::"r"(s), "l"(gmem), "l"(policy)
               : "memory");
}
QMR_DEVICE __forceinline__ qstd::uint64_t evict_first_policy() {
  qstd::uint64_t p;
  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(p));
  return p;
}

// The lane's 4 Bits code words of a tile block in shared memory (Bits 16-byte vectors, [vector][lane]).
template <int Bits>
QMR_DEVICE __forceinline__ void load_lane_words(const uint4* block, int lane, qstd::uint32_t (&w)[4 * Bits]) {
#pragma unroll
  for (int v = 0; v < Bits; ++v) {
    const uint4 q = block[v * 32 + lane];
    w[4 * v + 0] = q.x;
    w[4 * v + 1] = q.y;
    w[4 * v + 2] = q.z;
    w[4 * v + 3] = q.w;
  }
}
// Scale and zero point of the lane's rows gid and gid + 8 of 16-row block rb, for
// quantization group j of a tile block (the block's parameters follow its Bits x 32 code vectors).
template <int Bits, int GT>
QMR_DEVICE __forceinline__ void lane_group_params(const uint4* block, bool asym, int j, int rb, int gid, float (&sc)[2],
                                                  qstd::uint32_t (&zc)[2]) {
  const qstd::uint16_t* msc = reinterpret_cast<const qstd::uint16_t*>(block + 32 * Bits);
  const qstd::uint8_t* mz = reinterpret_cast<const qstd::uint8_t*>(block + 32 * Bits + 4 * GT);
#pragma unroll
  for (int hi = 0; hi < 2; ++hi) {
    const int r = j * gemv_traits::group_rows + 16 * rb + 8 * hi + gid;
    sc[hi] = __half2float(__ushort_as_half(msc[r]));
    zc[hi] = asym ? static_cast<qstd::uint32_t>(mz[r]) : (1u << (Bits - 1));
  }
}
// acc += scale x a group's partial sums d (mma accumulator order: 0, 1 row gid; 2, 3 row gid + 8).
QMR_DEVICE __forceinline__ void scale_into(float (&acc)[4], const float (&d)[4], const float (&sc)[2]) {
  acc[0] = fmaf(sc[0], d[0], acc[0]);
  acc[1] = fmaf(sc[0], d[1], acc[1]);
  acc[2] = fmaf(sc[1], d[2], acc[2]);
  acc[3] = fmaf(sc[1], d[3], acc[3]);
}

// Warps that summed different tiles of the same rows meet in shared memory: each writes its
// totals to slot `slot` of partial ([slot][8 NB totals][lane] f32, conflict-free), and after a
// barrier the lead warp adds slots first + k * stride, k = 1 .. count - 1, in that order.
template <int NB>
QMR_DEVICE __forceinline__ void store_partial(float* partial, int slot, int lane, const float (&acc)[2][NB][4]) {
#pragma unroll
  for (int rb = 0; rb < 2; ++rb)
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int i = 0; i < 4; ++i) partial[(slot * 8 * NB + 4 * (NB * rb + nb) + i) * 32 + lane] = acc[rb][nb][i];
}
template <int NB>
QMR_DEVICE __forceinline__ void add_partials(const float* partial, int first, int stride, int count, int lane,
                                             float (&acc)[2][NB][4]) {
#pragma unroll
  for (int rb = 0; rb < 2; ++rb)
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int i = 0; i < 4; ++i)
        for (int k = 1; k < count; ++k)
          acc[rb][nb][i] += partial[((first + k * stride) * 8 * NB + 4 * (NB * rb + nb) + i) * 32 + lane];
}

// Warp (group, wk) of a block handles row group `group` and tiles wk, wk + wpg,
// ...: its i-th tile block is copied (cp.async, Bits vectors per lane plus the
// parameters by the first lanes) into ring slot i % S, S - 1 tiles ahead of
// the one being decoded. For each tile: 8 8-byte loads of activations per
// n-block (batch row min(gid + 8 nb, M-1): lanes past M duplicate the last row
// and their result columns are dropped); then per quantization group in the
// tile (GT = 1, 2 or 4 of them) and row block, 8/GT mma per n-block whose f32
// sum is scaled into the accumulators. Scales multiply partial sums, never
// weights, so the weights fed to the tensor cores are exact.
template <int Bits, int GT, int NB, class TX, class TY>
__global__ void __launch_bounds__(gemv_traits::block_threads, 2)
    gemv_kernel(const gemv_args a, const TX* __restrict__ x, TY* __restrict__ y) {
  constexpr int S = gemv_stages(Bits, GT);
  constexpr int ksteps = gemv_traits::tile_cols / gemv_traits::kstep_cols;  // 8
  constexpr int steps_per_group = ksteps / GT;
  extern __shared__ uint4 gemv_smem[];  // the rings (named apart from other kernels' dynamic shared arrays)
  const int lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) >> 5;
  const int wpg = a.warps_per_group;
  const int wk = warp & (wpg - 1);
  const int group = static_cast<int>(blockIdx.x) * (gemv_traits::block_warps / wpg) + warp / wpg;
  const int gid = lane >> 2, t4 = lane & 3;
  const bool valid = group < a.row_groups;
  const int bv = a.block_vectors;
  const int mv = bv - 32 * Bits;  // parameter vectors of a block

  float acc[2][NB][4] = {};  // the lane's totals

  pdl_launch_dependents();
  const TX* xsm = reinterpret_cast<const TX*>(gemv_smem + gemv_traits::block_warps * S * bv);
  {
    const TX* xrow[NB];
    int xoff[NB];  // element offset of the lane's batch rows in the staged copy
#pragma unroll
    for (int nb = 0; nb < NB; ++nb) {
      xoff[nb] = min(gid + 8 * nb, a.m - 1) * a.cols;
      xrow[nb] = x + xoff[nb];
    }
    const int n_i = valid && wk < a.n_tiles ? (a.n_tiles - wk + wpg - 1) / wpg : 0;  // this warp's tiles
    uint4* ring = gemv_smem + warp * S * bv;
    const uint4* src0 = a.blocks + static_cast<std::int64_t>(min(group, a.row_groups - 1)) * a.n_tiles * bv;
    const qstd::uint64_t policy = evict_first_policy();
    // The next tile block to copy (the warp's tiles are wpg blocks apart) and the
    // ring slots to fill and to read, advanced by one each step: no divisions in the loop.
    const uint4* src = src0 + static_cast<std::int64_t>(wk) * bv;
    const std::int64_t src_step = static_cast<std::int64_t>(wpg) * bv;
    int fill = 0, read = 0, to_issue = n_i;
    const auto issue = [&]() {
      if (to_issue > 0) {
        uint4* dst = ring + fill * bv;
#pragma unroll
        for (int v = 0; v < Bits; ++v) cp_async16(dst + v * 32 + lane, src + v * 32 + lane, policy);
        if (lane < mv) cp_async16(dst + 32 * Bits + lane, src + 32 * Bits + lane, policy);
        src += src_step;
        fill = fill + 1 == S ? 0 : fill + 1;
        --to_issue;
      }
      cp_async_commit();  // an empty group past the end keeps the wait counts uniform
    };
#pragma unroll
    for (int i = 0; i < S - 1; ++i) issue();
    // Launched with PDL, those first S - 1 tiles stream in while the previous kernel
    // (which may write x, or read the y written below) drains; the weights are
    // written by no kernel, and nothing else is touched before this wait.
    pdl_wait();
    // Block-wide: the activations into shared memory (one cp.async group, the newest).
    if (a.x_smem) {
      const int nvec = a.m * a.cols / 8;  // cols % 8 == 0: whole 16-byte vectors
      const uint4* xv = reinterpret_cast<const uint4*>(x);
      uint4* xd = gemv_smem + gemv_traits::block_warps * S * bv;
      for (int v = static_cast<int>(threadIdx.x); v < nvec; v += gemv_traits::block_threads)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(static_cast<unsigned>(__cvta_generic_to_shared(xd + v))),
                     "l"(xv + v)
                     : "memory");
    }
    cp_async_commit();
    // The activations and the first S - 1 tiles have landed for every thread (tile
    // i >= S - 1 is issued after the activations, so the loop's wait on all but the
    // S - 2 newest groups still covers it). Every thread of the block reaches this barrier.
    cp_async_wait<0>();
    __syncthreads();

    for (int i = 0; i < n_i; ++i) {
      cp_async_wait<S - 2>();  // tile i has landed (this lane's copies)...
      __syncwarp();            // ...and every lane's, so the parameters other lanes copied are visible;
                               // every lane has also finished reading slot (i - 1) % S, which issue() refills
      issue();
      const uint4* slot = ring + read * bv;
      read = read + 1 == S ? 0 : read + 1;
      const int t = wk + i * wpg;
      qstd::uint32_t w[4 * Bits];
      load_lane_words<Bits>(slot, lane, w);
      uint2 xs[NB][ksteps];  // activations: L1/L2 hits
      const bool full_tile = (t + 1) * gemv_traits::tile_cols <= a.cols;  // all but a ragged last tile
#pragma unroll
      for (int nb = 0; nb < NB; ++nb)
#pragma unroll
        for (int s = 0; s < ksteps; ++s) {
          const int c = t * gemv_traits::tile_cols + gemv_traits::kstep_cols * s + 4 * t4;
          // cols is a multiple of 8: the 4 columns from c are all in or all out
          if (!full_tile && c >= a.cols) xs[nb][s] = make_uint2(0u, 0u);
          else if (a.x_smem) xs[nb][s] = *reinterpret_cast<const uint2*>(xsm + xoff[nb] + c);
          else xs[nb][s] = ld_produced(reinterpret_cast<const uint2*>(xrow[nb] + c));  // coherent, not read-only: see ld_produced
        }
#pragma unroll
      for (int j = 0; j < GT; ++j) {
#pragma unroll
        for (int rb = 0; rb < 2; ++rb) {
          float sc[2];
          qstd::uint32_t zc[2];  // zero points of the lane's two rows
          lane_group_params<Bits, GT>(slot, a.asym, j, rb, gid, sc, zc);
          // Two accumulator chains (even and odd k-steps) halve the dependent mma
          // sequence a warp waits on; one when a group has only two k-steps.
          constexpr int C = steps_per_group >= 4 ? 2 : 1;
          float d[C][NB][4];
#pragma unroll
          for (int c = 0; c < C; ++c)
#pragma unroll
            for (int nb = 0; nb < NB; ++nb)
#pragma unroll
              for (int i2 = 0; i2 < 4; ++i2) d[c][nb][i2] = 0.0f;
#pragma unroll
          for (int s = j * steps_per_group; s < (j + 1) * steps_per_group; ++s) {
            qstd::uint32_t af[4];
#pragma unroll
            for (int reg = 0; reg < 4; ++reg)
              af[reg] = decode_pair<Bits, TX>(w, 4 * (2 * s + rb) + reg, zc[reg & 1]);
#pragma unroll
            for (int nb = 0; nb < NB; ++nb) mma(d[s % C][nb], af, xs[nb][s], TX{});
          }
#pragma unroll
          for (int nb = 0; nb < NB; ++nb) {
            if constexpr (C == 2)
#pragma unroll
              for (int i2 = 0; i2 < 4; ++i2) d[0][nb][i2] += d[1][nb][i2];
            scale_into(acc[rb][nb], d[0][nb], sc);
          }
        }
      }
    }
    cp_async_wait<0>();  // nothing may land in the ring once it is reused below
  }

  if (wpg > 1) {  // the group's warps meet in shared memory (uniform branch); the ring is free now
    float* partial = reinterpret_cast<float*>(gemv_smem);
    __syncthreads();
    store_partial(partial, warp, lane, acc);
    __syncthreads();
    if (wk == 0) add_partials(partial, warp, 1, wpg, lane, acc);
  }
  // Accumulator i of (rb, nb): row 16*rb + 8*(i >> 1) + gid, batch row 8*nb + 2*t4 + (i & 1).
  // The epilogues take them in pairs: f(b, n, lo, hi) with lo, hi the sums of rows 16 b + gid
  // and 16 b + gid + 8 (b = 2 group + rb, a 16-row block) for batch row n.
  const auto for_each_pair = [&](auto&& f) {
#pragma unroll
    for (int rb = 0; rb < 2; ++rb)
#pragma unroll
      for (int nb = 0; nb < NB; ++nb)
#pragma unroll
        for (int i = 0; i < 2; ++i) f(2 * group + rb, 8 * nb + 2 * t4 + i, acc[rb][nb][i], acc[rb][nb][i + 2]);
  };
  if (valid && wk == 0 && a.act != nullptr) {
    // SiLU·up: the lane's rows gid and gid + 8 of each 16 are gate_j and up_j, j = 8 b + gid;
    // the same formula and rounding as silu_mul (layer_ops.cuh).
    for_each_pair([&](int b, int n, float g, float u) {
      const int j = 8 * b + gid;
      if (j < a.inter && n < a.m) {
        const float v = g / (1.0f + expf(-g)) * u;
        const std::int64_t o = static_cast<std::int64_t>(n) * a.inter + j;
        a.act[o] = v;
        store(static_cast<TX*>(a.act_half) + o, v);
      }
    });
  } else if (valid && wk == 0 && a.rope.q_out != nullptr) {
    // Bias, RoPE and the KV cache: the lane's rows r = 16 b + gid and r + 8 are, in
    // qkv_pairs_order, dims f and f + d/2 of a q or k head (rotated together) or two dims
    // of v; the same formulas as qkv_rope_kernel (layer_ops.cuh).
    const auto& e = a.rope;
    const int half = e.d / 2, bq = e.heads * half / 8, bk = e.kv_heads * half / 8, kv_dim = e.kv_heads * e.d;
    const int pos0 = *e.pos0;
    for_each_pair([&](int b, int n, float x1, float x2) {
      if (16 * b >= a.rows || n >= a.m) return;
      const int pos = pos0 + n;
      if (b >= bq + bk) {  // v: dims 16 (b - bq - bk) + gid and + 8 of the kv heads' rows
        const int v = 16 * (b - bq - bk) + gid;
        float* dst = e.v_cache + static_cast<std::int64_t>(pos) * kv_dim;
        dst[v] = x1 + (e.v_bias != nullptr ? e.v_bias[v] : 0.0f);
        dst[v + 8] = x2 + (e.v_bias != nullptr ? e.v_bias[v + 8] : 0.0f);
        return;
      }
      const bool is_q = b < bq;
      const int bb = is_q ? b : b - bq, h = bb / (half / 8), f = 8 * (bb % (half / 8)) + gid;
      const float* bias = is_q ? e.q_bias : e.k_bias;
      const float v1 = x1 + (bias != nullptr ? bias[h * e.d + f] : 0.0f);
      const float v2 = x2 + (bias != nullptr ? bias[h * e.d + f + half] : 0.0f);
      // from the table, not sin/cos here: f64 sin/cos would put their slow path (and a
      // stack frame) into every GEMV instance this kernel template generates
      const float cs = e.rope_cos[static_cast<std::int64_t>(pos) * half + f];
      const float sn = e.rope_sin[static_cast<std::int64_t>(pos) * half + f];
      float* dst = is_q ? e.q_out + static_cast<std::int64_t>(n) * e.heads * e.d + h * e.d
                        : e.k_cache + static_cast<std::int64_t>(pos) * kv_dim + h * e.d;
      dst[f] = rope_first(v1, v2, cs, sn);
      dst[f + half] = rope_second(v1, v2, cs, sn);
    });
  } else if (valid && wk == 0)
#pragma unroll
    for (int rb = 0; rb < 2; ++rb)
#pragma unroll
      for (int nb = 0; nb < NB; ++nb)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int r = group * gemv_traits::group_rows + 16 * rb + 8 * (i >> 1) + gid;
          const int n = 8 * nb + 2 * t4 + (i & 1);
          if (r < a.rows && n < a.m) store(y + static_cast<std::int64_t>(n) * a.rows + r, acc[rb][nb][i]);
        }
}

template <int Bits, int GT, int NB, class TX, class TY>
void launch_one(gemv_args a, const TX* x, TY* y, cudaStream_t stream, bool pdl) {
  const int groups_per_block = gemv_traits::block_warps / a.warps_per_group;
  const unsigned blocks = static_cast<unsigned>((a.row_groups + groups_per_block - 1) / groups_per_block);
  const std::int64_t x_bytes = static_cast<std::int64_t>(a.m) * a.cols * static_cast<std::int64_t>(sizeof(TX));
  a.x_smem = x_bytes <= x_smem_budget(Bits, GT, a.asym);
  const int smem = gemv_smem_bytes(Bits, GT, a.asym) + (a.x_smem ? static_cast<int>(x_bytes) : 0);
  const auto kernel = gemv_kernel<Bits, GT, NB, TX, TY>;
  // Past the 48 KB default: an attribute of the function, cheap to set again. The
  // carveout asks for all of L1 as shared memory, so that two blocks' rings fit an SM.
  QMR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  QMR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared));
  launch_kernel(pdl, kernel, dim3(blocks), dim3(gemv_traits::block_threads), static_cast<std::size_t>(smem), stream, a, x, y);
}

template <int Bits, class TX, class TY>
void launch(int gt, const gemv_args& a, const TX* x, TY* y, cudaStream_t stream, bool pdl) {
  const bool two = a.m > gemv_traits::nblock;
  switch (gt) {
    case 1: return two ? launch_one<Bits, 1, 2>(a, x, y, stream, pdl) : launch_one<Bits, 1, 1>(a, x, y, stream, pdl);
    case 2: return two ? launch_one<Bits, 2, 2>(a, x, y, stream, pdl) : launch_one<Bits, 2, 1>(a, x, y, stream, pdl);
    case 4: return two ? launch_one<Bits, 4, 2>(a, x, y, stream, pdl) : launch_one<Bits, 4, 1>(a, x, y, stream, pdl);
    default: throw error("gemv: " + std::to_string(gt) + " groups per tile is not supported");
  }
}

// ---------------------------------------------------------------------------
// The tiled GEMM for batches from gemm_traits::min_batch (prefill, batched
// scoring, benchmarks at M = 64 and 256): the same GPU layout, decode and
// numerics as gemv_kernel (exact integer weights into mma.sync, f32 partial sums
// per quantization group scaled into f32 totals), but each decoded weight
// fragment serves 32 tokens and each staged activation tile 64 tokens, so the
// weights are read once per 64 tokens (not once per 16) and the activations come
// from shared memory, each load feeding two warps.
//
// A k-slice of 4 warps owns 2 row groups (64 rows) x 64 tokens: warp (wr, wn) the
// rows of group 2 blockIdx.y + wr and tokens 64 blockIdx.x + 32 wn .. + 31, as
// two 16-row A blocks x four 8-token n-blocks (32 f32 totals per lane). A block
// holds KS = 1, 2 or 4 k-slices (a.warps_per_group; split-K inside the block, for
// grids too small to fill the GPU): slice ks takes tiles ks, ks + KS, ... The
// block walks its tile rounds through a ring of a.gemm_stages (2 or 3) shared-memory
// stages, each holding per slice the tile's activations [64 tokens][x_stride]
// (zero-filled past M and past the last column) and the two row groups' tile
// blocks, filled by cp.async one or two rounds ahead; one barrier per round. The
// slices' totals meet in shared memory at the end. Blocks are ordered
// token-block-fastest, so that the blocks reading one row band's weights run
// together and share them in L2.
// ---------------------------------------------------------------------------

// cp.async of 16 bytes, or of `bytes` (0 or 16) with the rest zero-filled: past M and
// past the last column the activation stage reads zeros, not memory.
QMR_DEVICE __forceinline__ void cp_async16_zfill(void* smem, const void* gmem, int bytes) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(s), "l"(gmem), "r"(bytes) : "memory");
}

template <int Bits, int GT, class TX, class TY>
__global__ void __launch_bounds__(gemm_traits::max_threads, 1)
    gemm_kernel(const gemv_args a, const TX* __restrict__ x, TY* __restrict__ y) {
  using T = gemm_traits;
  constexpr int NB = T::nb;
  constexpr int ksteps = gemv_traits::tile_cols / gemv_traits::kstep_cols;  // 8
  constexpr int steps_per_group = ksteps / GT;
  constexpr int x_vectors = T::x_stage_bytes / 16;         // 16-byte vectors of a slice's activations
  constexpr int row_vectors = gemv_traits::tile_cols / 8;  // 16-byte vectors of one token's tile columns
  extern __shared__ uint4 gemm_smem[];  // [stages][KS] of {x [block_tokens][x_stride], blocks [warps_rows][bv]}
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int KS = a.warps_per_group, S = a.gemm_stages;
  const int ks = warp / T::slice_warps, wr = warp % T::warps_rows, wn = (warp / T::warps_rows) % T::warps_tokens;
  const int gid = lane >> 2, t4 = lane & 3;
  const int group0 = static_cast<int>(blockIdx.y) * T::warps_rows;
  const int group = group0 + wr;
  const int m0 = static_cast<int>(blockIdx.x) * T::block_tokens;
  const int bv = a.block_vectors;
  const int slice_vectors = x_vectors + T::warps_rows * bv;
  const int rounds = (a.n_tiles + KS - 1) / KS;

  pdl_launch_dependents();
  pdl_wait();  // x is the previous kernel's output; a GEMM's prologue is small beside its loop

  // Round r into stage st: each slice's 128 threads copy their own tile (tile r KS + ks):
  // thread lt its column vector xc of tokens xn0, xn0 + 8, ... (zero past M and past cols:
  // cols % 8 == 0, so a 16-byte vector is all in or all out), then its share of the two
  // row groups' blocks (the last row band's missing group reads the last group again; its
  // results are not stored). The addresses are fixed per thread but for the tile's offset.
  const int lt = tid % (32 * T::slice_warps), xc = lt % row_vectors, xn0 = lt / row_vectors;
  constexpr int x_copies = T::block_tokens * row_vectors / (32 * T::slice_warps);  // 8 per thread
  constexpr int x_token_step = 32 * T::slice_warps / row_vectors;                  // 8 tokens apart
  static_assert(T::warps_rows == 2, "gemm_kernel: the loader picks between two row groups' blocks");
  const uint4* wsrc0 = a.blocks + static_cast<std::int64_t>(min(group0, a.row_groups - 1)) * a.n_tiles * bv;
  const uint4* wsrc1 = a.blocks + static_cast<std::int64_t>(min(group0 + 1, a.row_groups - 1)) * a.n_tiles * bv;
  const auto load = [&](int r, int st) {
    const int t = r * KS + ks;
    if (t >= a.n_tiles) return;
    uint4* base = gemm_smem + (st * KS + ks) * slice_vectors;
    const int col = t * gemv_traits::tile_cols + 8 * xc;
#pragma unroll
    for (int i = 0; i < x_copies; ++i) {
      const int n = xn0 + x_token_step * i;
      const bool in = col < a.cols && m0 + n < a.m;
      const TX* src = in ? x + (static_cast<std::int64_t>(m0 + n) * a.cols + col) : x;
      cp_async16_zfill(base + n * (T::x_stride / 8) + xc, src, in ? 16 : 0);
    }
    uint4* wd = base + x_vectors;  // [warps_rows][bv]
    for (int v = lt; v < T::warps_rows * bv; v += 32 * T::slice_warps) {
      const bool second = v >= bv;
      cp_async16_zfill(wd + v, (second ? wsrc1 : wsrc0) + static_cast<std::int64_t>(t) * bv + (second ? v - bv : v), 16);
    }
  };

  float acc[2][NB][4] = {};  // the lane's totals

  for (int i = 0; i < S - 1; ++i) {
    if (i < rounds) load(i, i);
    cp_async_commit();  // empty groups past the end keep the wait counts uniform
  }
  // The lane's B-fragment row in a slice's activations: token 32 wn + 8 nb + gid, columns from 4 t4.
  const int x_lane = (T::warp_tokens * wn + gid) * T::x_stride + 4 * t4;
  // Tokens of the warp's slice below M: n-blocks past them skip their loads and mma (a
  // batch of 17 runs 3 of a block's 8 n-blocks, not 8), a warp with none skips its tiles.
  const int n_valid = a.m - m0 - T::warp_tokens * wn;
  int st = 0;  // the stage of round r
  for (int r = 0; r < rounds; ++r) {
    // Round r has landed (this thread's copies; S - 2 newer groups may be in flight)...
    if (S == 3) cp_async_wait<1>();
    else cp_async_wait<0>();
    __syncthreads();  // ...and every thread's; every warp is also done with round r - 1's stage, refilled here
    if (r + S - 1 < rounds) load(r + S - 1, st == 0 ? S - 1 : st - 1);
    cp_async_commit();
    const int t = r * KS + ks;
    if (t < a.n_tiles && n_valid > 0) {
      const uint4* slice = gemm_smem + (st * KS + ks) * slice_vectors;
      const TX* xs = reinterpret_cast<const TX*>(slice) + x_lane;
      const uint4* wb = slice + x_vectors + wr * bv;
      qstd::uint32_t w[4 * Bits];
      load_lane_words<Bits>(wb, lane, w);
#pragma unroll
      for (int j = 0; j < GT; ++j) {
        float sc[2][2];
        qstd::uint32_t zc[2][2];  // [row block][lane row gid, gid + 8]
#pragma unroll
        for (int rb = 0; rb < 2; ++rb) lane_group_params<Bits, GT>(wb, a.asym, j, rb, gid, sc[rb], zc[rb]);
        float d[2][NB][4] = {};  // the group's partial sums
#pragma unroll
        for (int s = j * steps_per_group; s < (j + 1) * steps_per_group; ++s) {
          uint2 b[NB];
#pragma unroll
          for (int nb = 0; nb < NB; ++nb)
            if (8 * nb < n_valid) b[nb] = *reinterpret_cast<const uint2*>(xs + 8 * nb * T::x_stride + gemv_traits::kstep_cols * s);
#pragma unroll
          for (int rb = 0; rb < 2; ++rb) {
            qstd::uint32_t af[4];
#pragma unroll
            for (int reg = 0; reg < 4; ++reg) af[reg] = decode_pair<Bits, TX>(w, 4 * (2 * s + rb) + reg, zc[rb][reg & 1]);
#pragma unroll
            for (int nb = 0; nb < NB; ++nb)
              if (8 * nb < n_valid) mma(d[rb][nb], af, b[nb], TX{});
          }
        }
#pragma unroll
        for (int rb = 0; rb < 2; ++rb)
#pragma unroll
          for (int nb = 0; nb < NB; ++nb) scale_into(acc[rb][nb], d[rb][nb], sc[rb]);
      }
    }
    st = st + 1 == S ? 0 : st + 1;
  }
  cp_async_wait<0>();  // nothing may land in the stages once they are reused below

  if (KS > 1) {  // the slices meet in shared memory (uniform branch; the stages are free now): slot = warp
    float* partial = reinterpret_cast<float*>(gemm_smem);
    __syncthreads();
    if (ks > 0) store_partial(partial, warp, lane, acc);
    __syncthreads();
    if (ks == 0) add_partials(partial, warp, T::slice_warps, KS, lane, acc);
  }
  if (ks != 0 || group >= a.row_groups) return;
  // Accumulator i of (rb, nb): row 16 rb + 8 (i >> 1) + gid of the group, token 8 nb + 2 t4 + (i & 1) of the warp's.
#pragma unroll
  for (int rb = 0; rb < 2; ++rb)
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int r = group * gemv_traits::group_rows + 16 * rb + 8 * (i >> 1) + gid;
        const int n = m0 + T::warp_tokens * wn + 8 * nb + 2 * t4 + (i & 1);
        if (r < a.rows && n < a.m) store(y + static_cast<std::int64_t>(n) * a.rows + r, acc[rb][nb][i]);
      }
}

// The block's k-slices and stages for a grid of `blocks` blocks: split-K (2 or 4 slices)
// while the grid brings fewer than target_warps_per_sm warps to each SM and each slice
// keeps two tiles or more; three stages where the SM's shared memory still holds as many
// blocks as its registers do, else two.
struct gemm_plan {
  int ksplit = 1, stages = 2;
};
inline gemm_plan plan_gemm(std::int64_t blocks, int n_tiles, int block_vectors, int sm_count) {
  using T = gemm_traits;
  gemm_plan p;
  const std::int64_t want = static_cast<std::int64_t>(T::target_warps_per_sm) * std::max(sm_count, 1);
  while (p.ksplit < T::max_ksplit && blocks * T::slice_warps * 2 * p.ksplit <= want && 2 * p.ksplit * 2 <= n_tiles) p.ksplit *= 2;
  const int per_sm = T::target_warps_per_sm / (T::slice_warps * p.ksplit);  // blocks the registers allow
  const int stage = p.ksplit * gemm_stage_bytes(block_vectors);
  p.stages = per_sm * (3 * stage + 1024) <= T::sm_smem_bytes ? 3 : 2;
  return p;
}

template <int Bits, int GT, class TX, class TY>
void gemm_launch_one(gemv_args a, const TX* x, TY* y, cudaStream_t stream, bool pdl) {
  using T = gemm_traits;
  const unsigned token_blocks = static_cast<unsigned>((a.m + T::block_tokens - 1) / T::block_tokens);
  const unsigned row_blocks = static_cast<unsigned>((a.row_groups + T::warps_rows - 1) / T::warps_rows);
  check(row_blocks <= 65535u, "gemm: " + std::to_string(a.rows) + " rows exceed the grid's 65535 row blocks");
  const auto kernel = gemm_kernel<Bits, GT, TX, TY>;
  const int smem = a.gemm_stages * a.warps_per_group * gemm_stage_bytes(a.block_vectors);
  QMR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  QMR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared));
  launch_kernel(pdl, kernel, dim3(token_blocks, row_blocks), dim3(32 * T::slice_warps * a.warps_per_group),
                static_cast<std::size_t>(smem), stream, a, x, y);
}

template <int Bits, class TX, class TY>
void gemm_launch(int gt, const gemv_args& a, const TX* x, TY* y, cudaStream_t stream, bool pdl) {
  switch (gt) {
    case 1: return gemm_launch_one<Bits, 1>(a, x, y, stream, pdl);
    case 2: return gemm_launch_one<Bits, 2>(a, x, y, stream, pdl);
    case 4: return gemm_launch_one<Bits, 4>(a, x, y, stream, pdl);
    default: throw error("gemm: " + std::to_string(gt) + " groups per tile is not supported");
  }
}

// Every launch_one that gemv() can call: M(Bits, GT, NB, TX, TY) for each bit width,
// groups per tile and n-block count, at one (activation, output) type pair.
#define QMR_CUDA_GEMV_NB(M, B, GT, TX, TY) M(B, GT, 1, TX, TY) M(B, GT, 2, TX, TY)
#define QMR_CUDA_GEMV_GT(M, B, TX, TY) \
  QMR_CUDA_GEMV_NB(M, B, 1, TX, TY) QMR_CUDA_GEMV_NB(M, B, 2, TX, TY) QMR_CUDA_GEMV_NB(M, B, 4, TX, TY)
#define QMR_CUDA_GEMV_INSTANCES(M, TX, TY)                                                    \
  QMR_CUDA_GEMV_GT(M, 2, TX, TY) QMR_CUDA_GEMV_GT(M, 3, TX, TY) QMR_CUDA_GEMV_GT(M, 4, TX, TY) \
  QMR_CUDA_GEMV_GT(M, 5, TX, TY) QMR_CUDA_GEMV_GT(M, 6, TX, TY) QMR_CUDA_GEMV_GT(M, 8, TX, TY)
// Every gemm_launch_one: M(Bits, GT, TX, TY) for each bit width and groups per tile.
#define QMR_CUDA_GEMM_GT(M, B, TX, TY) M(B, 1, TX, TY) M(B, 2, TX, TY) M(B, 4, TX, TY)
#define QMR_CUDA_GEMM_INSTANCES(M, TX, TY)                                                    \
  QMR_CUDA_GEMM_GT(M, 2, TX, TY) QMR_CUDA_GEMM_GT(M, 3, TX, TY) QMR_CUDA_GEMM_GT(M, 4, TX, TY) \
  QMR_CUDA_GEMM_GT(M, 5, TX, TY) QMR_CUDA_GEMM_GT(M, 6, TX, TY) QMR_CUDA_GEMM_GT(M, 8, TX, TY)

// A program whose files all use the GEMV can compile its 144 kernels once (two
// architectures each, minutes of nvcc): one file instantiates them with
// QMR_CUDA_GEMV_INSTANCES (tools/cuda/gemv_*.cu do, for the qmr tool, the GPU
// tests and benchmarks) and the others define QMR_CUDA_GEMV_EXTERN, which declares
// them here instead of instantiating them again. Header-only users define nothing.
#ifdef QMR_CUDA_GEMV_EXTERN
#define QMR_CUDA_GEMV_DECLARE(B, GT, NB, TX, TY) \
  extern template void launch_one<B, GT, NB, TX, TY>(gemv_args, const TX*, TY*, cudaStream_t, bool);
QMR_CUDA_GEMV_INSTANCES(QMR_CUDA_GEMV_DECLARE, f16, f16)
QMR_CUDA_GEMV_INSTANCES(QMR_CUDA_GEMV_DECLARE, f16, float)
QMR_CUDA_GEMV_INSTANCES(QMR_CUDA_GEMV_DECLARE, bf16, bf16)
QMR_CUDA_GEMV_INSTANCES(QMR_CUDA_GEMV_DECLARE, bf16, float)
#undef QMR_CUDA_GEMV_DECLARE
#define QMR_CUDA_GEMM_DECLARE(B, GT, TX, TY) \
  extern template void gemm_launch_one<B, GT, TX, TY>(gemv_args, const TX*, TY*, cudaStream_t, bool);
QMR_CUDA_GEMM_INSTANCES(QMR_CUDA_GEMM_DECLARE, f16, f16)
QMR_CUDA_GEMM_INSTANCES(QMR_CUDA_GEMM_DECLARE, f16, float)
QMR_CUDA_GEMM_INSTANCES(QMR_CUDA_GEMM_DECLARE, bf16, bf16)
QMR_CUDA_GEMM_INSTANCES(QMR_CUDA_GEMM_DECLARE, bf16, float)
#undef QMR_CUDA_GEMM_DECLARE
#endif
#endif  // __CUDACC__

}  // namespace detail

#ifdef __CUDACC__
// The lane-layout path alone (gemv_lanes.cuh): y[M, rows] = x[M, cols] · Wᵀ for
// M = 1..8 with f16 activations, f16 or f32 outputs, on CUDA cores with f16x2
// partial sums of code * x over each lane's unit (8-32 products per f16 half; the
// f16 rounding of those sums, relative to Σ|code * x|, is the error to expect, not
// f32's). x is rescaled per unit by a power of two, so any finite f16 activations
// work. gemv() calls it for M = 1; M > 1 is here for tests and benchmarks
// (the tensor-core kernel is faster at M = 4 and 8 on an H200).
template <class TY>
void gemv_lanes(const device_qtensor& w, const f16* x, TY* y, int M, cudaStream_t stream, bool pdl = false) {
  static_assert(qstd::is_same_v<TY, f16> || qstd::is_same_v<TY, float>, "gemv_lanes: the output is f16 or float");
  check(w.has_lanes(), "gemv_lanes: the " + w.spec.str() + " tensor has no lane layout");
  check(M >= 1 && M <= gemv_lanes_traits::max_batch, "gemv_lanes: batch " + std::to_string(M) + " is not in 1..8");
  check(x != nullptr && y != nullptr, "gemv_lanes: null activation or output pointer");
  check(reinterpret_cast<std::uintptr_t>(x) % 16 == 0, "gemv_lanes: the activations must be 16-byte aligned");
  const int mb = M <= 1 ? 1 : M <= 2 ? 2 : M <= 4 ? 4 : 8;  // the kernel's batch rows (detail::lanes_dispatch_mb)
  check(lanes_smem_bytes(mb, w.cols(), w.lanes_l.units) <= 220 * 1024,  // lanes_launch's shared memory
        "gemv_lanes: " + std::to_string(M) + " x " + std::to_string(w.cols()) + " activations do not fit shared memory");
  detail::lanes_args a{};
  const auto* base = static_cast<const unsigned char*>(w.lanes.data());
  a.q = reinterpret_cast<const uint4*>(base);
  a.hq = reinterpret_cast<const uint2*>(base + w.lanes_l.hi_offset);
  a.scales = reinterpret_cast<const __half*>(base + w.lanes_l.scale_offset);
  a.zeros = w.spec.symmetric ? nullptr : reinterpret_cast<const qstd::uint8_t*>(base + w.lanes_l.zero_offset);
  a.rows = static_cast<int>(w.layout.rows);
  a.cols = static_cast<int>(w.layout.cols);
  a.units = static_cast<int>(w.lanes_l.units);
  a.n_groups = static_cast<int>(w.layout.n_groups);
  a.group_shift = group_shift_of(w.spec);
  a.m = M;
  const auto* xh = reinterpret_cast<const __half*>(x);
  switch (w.spec.bits) {
    case 2: return detail::lanes_dispatch<2>(a, xh, y, w.sm_count, stream, pdl);
    case 3: return detail::lanes_dispatch<3>(a, xh, y, w.sm_count, stream, pdl);
    case 4: return detail::lanes_dispatch<4>(a, xh, y, w.sm_count, stream, pdl);
    case 8: return detail::lanes_dispatch<8>(a, xh, y, w.sm_count, stream, pdl);
    default: throw error("gemv_lanes: " + std::to_string(w.spec.bits) + "-bit codes have no lane layout");
  }
}

namespace detail {
// The launch arguments every GEMV over w shares (the batch and an epilogue's fields are the
// caller's), after checking the upload; `who` names the caller in errors.
inline gemv_args args_of(const device_qtensor& w, const char* who) {
  check(w.blocks.data() != nullptr, std::string(who) + ": the weight tensor is empty (not uploaded)");
  const int tpr = w.threads_per_row;
  check(tpr >= gemv_traits::min_threads_per_row && tpr <= gemv_traits::max_threads_per_row && (tpr & (tpr - 1)) == 0,
        std::string(who) + ": threads_per_row " + std::to_string(tpr) + " is not a power of two in [8, 256]");
  gemv_args a{};
  a.blocks = w.blocks.as<const uint4>();
  a.rows = static_cast<int>(w.layout.rows);
  a.cols = static_cast<int>(w.layout.cols);
  a.n_tiles = static_cast<int>(w.tiles_per_row());
  a.row_groups = static_cast<int>(w.row_groups());
  a.warps_per_group = tpr < 32 ? 1 : tpr / 32;
  a.block_vectors = w.block_vectors();
  a.asym = !w.spec.symmetric;
  return a;
}
// One launch for w's bit width: the run-time bits become the kernel's template argument here.
template <class TX, class TY>
void launch_bits(const device_qtensor& w, const gemv_args& a, const TX* x, TY* y, cudaStream_t stream, bool pdl,
                 const char* who) {
  const int gt = w.groups_per_tile();
  switch (w.spec.bits) {
    case 2: return launch<2>(gt, a, x, y, stream, pdl);
    case 3: return launch<3>(gt, a, x, y, stream, pdl);
    case 4: return launch<4>(gt, a, x, y, stream, pdl);
    case 5: return launch<5>(gt, a, x, y, stream, pdl);
    case 6: return launch<6>(gt, a, x, y, stream, pdl);
    case 8: return launch<8>(gt, a, x, y, stream, pdl);
    default: throw error(std::string(who) + ": " + std::to_string(w.spec.bits) + "-bit codes are not supported");
  }
}
// The same for the GEMM (a.m the whole batch).
template <class TX, class TY>
void gemm_bits(const device_qtensor& w, gemv_args a, const TX* x, TY* y, cudaStream_t stream, bool pdl) {
  const int gt = w.groups_per_tile();
  const std::int64_t blocks = ((a.m + gemm_traits::block_tokens - 1) / gemm_traits::block_tokens) *
                              ((a.row_groups + gemm_traits::warps_rows - 1) / gemm_traits::warps_rows);
  const gemm_plan p = plan_gemm(blocks, a.n_tiles, a.block_vectors, w.sm_count);
  a.warps_per_group = p.ksplit;
  a.gemm_stages = p.stages;
  switch (w.spec.bits) {
    case 2: return gemm_launch<2>(gt, a, x, y, stream, pdl);
    case 3: return gemm_launch<3>(gt, a, x, y, stream, pdl);
    case 4: return gemm_launch<4>(gt, a, x, y, stream, pdl);
    case 5: return gemm_launch<5>(gt, a, x, y, stream, pdl);
    case 6: return gemm_launch<6>(gt, a, x, y, stream, pdl);
    case 8: return gemm_launch<8>(gt, a, x, y, stream, pdl);
    default: throw error("gemm: " + std::to_string(w.spec.bits) + "-bit codes are not supported");
  }
}
}  // namespace detail

// y[M, rows] = x[M, cols] · Wᵀ on `stream` (asynchronous). x and y are device
// pointers, row-major; x is f16 or bf16 and 16-byte aligned; y is the same type
// as x, or f32. M is any positive batch: 1..8 in one launch, 9..16 in one launch
// with a second n-block of mma per weight fragment, from gemm_traits::min_batch on
// the tiled GEMM (gemm_kernel, one launch, 64 tokens per block). With f16
// activations, M = 1 and a lane layout uploaded (upload_layouts::lanes), the
// lane-layout kernel runs instead (gemv_lanes); 1-16 tokens with a split layout
// uploaded (upload_layouts::split) run the split-K kernel where split_takes()
// says it is faster (gemv_split). `pdl` (sm_90+; ignored before):
// programmatic dependent launch, so that the kernel's blocks start, and issue their
// first weight loads, while the previous kernel in the stream drains; they wait for
// its completion before reading x or writing y. W must not be written by the kernel
// just before (an upload's copies are not kernels: they always complete first).
template <class TX, class TY>
void gemv(const device_qtensor& w, const TX* x, TY* y, int M, cudaStream_t stream, bool pdl = false) {
  static_assert(qstd::is_same_v<TX, f16> || qstd::is_same_v<TX, bf16>, "gemv: activations are qmr::f16 or qmr::bf16");
  static_assert(qstd::is_same_v<TY, TX> || qstd::is_same_v<TY, float>, "gemv: the output is the activation type or float");
  check(M >= 1, "gemv: batch " + std::to_string(M) + " is not positive");
  check(x != nullptr && y != nullptr, "gemv: null activation or output pointer");
  check(reinterpret_cast<std::uintptr_t>(x) % 16 == 0, "gemv: the activations must be 16-byte aligned");
  detail::gemv_args a = detail::args_of(w, "gemv");
  // f16 activations: at M = 1 the lane-layout kernel (CUDA cores), where uploaded;
  // up to 16 tokens the split-K kernel, where uploaded and faster (split_takes).
  if constexpr (qstd::is_same_v<TX, f16>) {
    if (M == 1 && w.has_lanes()) return gemv_lanes(w, x, y, 1, stream, pdl);
    if (M <= gemv_split_traits::max_batch && w.has_split() && split_takes(w.spec.bits, w.layout.rows, w.layout.cols, M))
      return gemv_split(w.split, x, y, M, stream, pdl);
  }
  // From gemm_traits::min_batch tokens on: the tiled GEMM, one launch.
  if (M >= gemm_traits::min_batch) {
    a.m = M;
    return detail::gemm_bits(w, a, x, y, stream, pdl);
  }
  // 9..16 tokens: one launch with two n-blocks; 17..min_batch - 1 two launches.
  for (int m0 = 0; m0 < M; m0 += gemv_traits::max_batch) {
    a.m = std::min(gemv_traits::max_batch, M - m0);
    const TX* xc = x + static_cast<std::int64_t>(m0) * a.cols;  // cols % 8 == 0: stays 16-byte aligned
    TY* yc = y + static_cast<std::int64_t>(m0) * a.rows;
    detail::launch_bits(w, a, xc, yc, stream, pdl, "gemv");
  }
}

// The gate/up GEMV of an MLP with SiLU·up in its epilogue: w holds gate [inter, cols] and
// up [inter, cols] as one matrix of 2 inter rows in silu_pairs_order (blocks of 8 gate rows,
// then the same 8 up rows), uploaded like any other; act[M, inter] = silu(x · gateᵀ) *
// (x · upᵀ) in f32 and act_half[M, inter] the same in the activation type: what gemv()
// into [gate | up] followed by qmr::cuda::silu_mul writes, bit for bit (each row's sum is
// computed as gemv() computes it), in one launch per 16 tokens instead of two. Always the
// tensor-core kernel (also at M = 1).
template <class TX>
void gemv_silu_mul(const device_qtensor& w, const TX* x, int inter, float* act, TX* act_half, int M, cudaStream_t stream,
                   bool pdl = false) {
  static_assert(qstd::is_same_v<TX, f16> || qstd::is_same_v<TX, bf16>, "gemv_silu_mul: activations are qmr::f16 or qmr::bf16");
  check(M >= 1, "gemv_silu_mul: batch " + std::to_string(M) + " is not positive");
  check(x != nullptr && act != nullptr && act_half != nullptr, "gemv_silu_mul: null activation or output pointer");
  check(reinterpret_cast<std::uintptr_t>(x) % 16 == 0, "gemv_silu_mul: the activations must be 16-byte aligned");
  detail::gemv_args a = detail::args_of(w, "gemv_silu_mul");
  check(inter > 0 && inter % 8 == 0 && w.layout.rows == 2 * static_cast<std::int64_t>(inter),
        "gemv_silu_mul: " + std::to_string(w.layout.rows) + " rows are not gate and up of " + std::to_string(inter) +
            " rows each (a multiple of 8)");
  a.inter = inter;
  for (int m0 = 0; m0 < M; m0 += gemv_traits::max_batch) {
    a.m = std::min(gemv_traits::max_batch, M - m0);
    const TX* xc = x + static_cast<std::int64_t>(m0) * a.cols;
    a.act = act + static_cast<std::int64_t>(m0) * inter;
    a.act_half = act_half + static_cast<std::int64_t>(m0) * inter;
    float* unused = a.act;  // the kernel's y: not written with the epilogue
    detail::launch_bits(w, a, xc, unused, stream, pdl, "gemv_silu_mul");
  }
}

// q, k and v of an attention layer as one GEMV with the bias, RoPE (cos and sin from
// qmr::cuda::rope_table, the values qkv_rope computes) and the KV-cache write in its
// epilogue; positions must lie inside the table and the caches. w holds
// the q, k and v rows (heads d + 2 kv_heads d) in qkv_pairs_order, uploaded like any other
// matrix; for token t at position *pos0 + t the kernel writes q to q_out[t] and k, v to row
// *pos0 + t of the caches, as gemv() into [q | k | v] followed by qkv_rope_kernel without
// q/k norms would (layer_ops.cuh), in one launch per 16 tokens instead of two. d a
// multiple of 16. Always the tensor-core kernel.
template <class TX>
void gemv_qkv_rope(const device_qtensor& w, const TX* x, const qkv_rope_epilogue& e, int M,
                   cudaStream_t stream, bool pdl = false) {
  static_assert(qstd::is_same_v<TX, f16> || qstd::is_same_v<TX, bf16>, "gemv_qkv_rope: activations are qmr::f16 or qmr::bf16");
  check(M >= 1 && M <= gemv_traits::max_batch, "gemv_qkv_rope: batch " + std::to_string(M) + " is not in 1..16");
  check(x != nullptr && e.q_out != nullptr && e.k_cache != nullptr && e.v_cache != nullptr && e.rope_cos != nullptr &&
            e.rope_sin != nullptr && e.pos0 != nullptr,
        "gemv_qkv_rope: null activation, output, cache, RoPE table or position pointer");
  check(reinterpret_cast<std::uintptr_t>(x) % 16 == 0, "gemv_qkv_rope: the activations must be 16-byte aligned");
  check(e.d > 0 && e.d % 16 == 0 && e.heads > 0 && e.kv_heads > 0 &&
            w.layout.rows == static_cast<std::int64_t>(e.heads + 2 * e.kv_heads) * e.d,
        "gemv_qkv_rope: " + std::to_string(w.layout.rows) + " rows are not q, k and v of " + std::to_string(e.heads) + " + 2 x " +
            std::to_string(e.kv_heads) + " heads of " + std::to_string(e.d) + " (a multiple of 16)");
  detail::gemv_args a = detail::args_of(w, "gemv_qkv_rope");
  a.m = M;
  a.rope = e;
  float* unused = e.q_out;  // the kernel's y: not written with the epilogue
  detail::launch_bits(w, a, x, unused, stream, pdl, "gemv_qkv_rope");
}
#endif  // __CUDACC__

// Row i of gemv_qkv_rope's matrix as a row of [q | k | v] (heads d + 2 kv_heads d rows,
// d a multiple of 16): blocks of 16 rows; a q or k block holds dims f .. f + 7 of a head
// and then dims f + d/2 .. f + d/2 + 7 (the pairs RoPE rotates together), q heads first,
// then k; then v in its own order.
QMR_HOST_DEVICE constexpr std::int64_t qkv_pairs_order(std::int64_t i, int heads, int kv_heads, int d) {
  const std::int64_t half = d / 2, b = i / 16, w = i % 16;
  const std::int64_t bq = heads * half / 8, bk = kv_heads * half / 8;
  if (b >= bq + bk) return static_cast<std::int64_t>(heads + kv_heads) * d + 16 * (b - bq - bk) + w;
  const std::int64_t bb = b < bq ? b : b - bq, base = b < bq ? 0 : static_cast<std::int64_t>(heads) * d;
  const std::int64_t h = bb / (half / 8), f = 8 * (bb % (half / 8)) + w % 8;
  return base + h * d + f + (w >= 8 ? half : 0);
}
static_assert(qkv_pairs_order(0, 2, 1, 16) == 0 && qkv_pairs_order(8, 2, 1, 16) == 8 && qkv_pairs_order(16, 2, 1, 16) == 16 &&
              qkv_pairs_order(32, 2, 1, 16) == 32 && qkv_pairs_order(48, 2, 1, 16) == 48 &&
              qkv_pairs_order(9, 2, 32, 32) == 17 && qkv_pairs_order(16, 2, 1, 32) == 8 && qkv_pairs_order(24, 2, 1, 32) == 24);

// The inverse: the row of gemv_qkv_rope's matrix that holds row c of [q | k | v].
QMR_HOST_DEVICE constexpr std::int64_t qkv_pairs_index(std::int64_t c, int heads, int kv_heads, int d) {
  const std::int64_t half = d / 2, qk = static_cast<std::int64_t>(heads + kv_heads) * d;
  if (c >= qk) return c;  // v keeps its order, after the q and k blocks
  const bool is_k = c >= static_cast<std::int64_t>(heads) * d;
  const std::int64_t r = is_k ? c - static_cast<std::int64_t>(heads) * d : c;
  const std::int64_t h = r / d, j = r % d, f = j < half ? j : j - half;
  const std::int64_t block = (is_k ? heads * half / 8 : 0) + h * (half / 8) + f / 8;
  return 16 * block + f % 8 + (j < half ? 0 : 8);
}
// qkv_pairs_index undoes qkv_pairs_order for every row of a small GQA shape (2 q heads, 1 kv head, d 32).
constexpr bool qkv_pairs_round_trip(int heads, int kv_heads, int d) {
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(heads + 2 * kv_heads) * d; ++i)
    if (qkv_pairs_index(qkv_pairs_order(i, heads, kv_heads, d), heads, kv_heads, d) != i) return false;
  return true;
}
static_assert(qkv_pairs_round_trip(2, 1, 32) && qkv_pairs_round_trip(3, 3, 16) && qkv_pairs_round_trip(14, 2, 64));

// Row i of the interleaved gate/up matrix of gemv_silu_mul: gate row or up row (inter rows each).
struct silu_pair_row {
  bool up;
  std::int64_t row;
};
QMR_HOST_DEVICE constexpr silu_pair_row silu_pairs_order(std::int64_t i) {
  return {(i / 8) % 2 == 1, (i / 16) * 8 + i % 8};
}
static_assert(silu_pairs_order(0).row == 0 && !silu_pairs_order(7).up && silu_pairs_order(8).up && silu_pairs_order(8).row == 0 &&
              silu_pairs_order(17).row == 9 && !silu_pairs_order(17).up && silu_pairs_order(31).row == 15 && silu_pairs_order(31).up);

}  // namespace qmr::cuda
