// Split-K tensor-core GEMV for batches of 1-16 tokens: y[M, rows] = x[M, cols] · Wᵀ with f16 activations and 2/3/4/8-bit weights (symmetric or with zero points), register-fed mma.sync over a repacked layout in which each lane's 16-byte load is its own A fragments, the activations of a column slice staged once per block, slices summed by the last warp of each row tile.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../../config.hpp"
#include "../../core/error.hpp"
#include "../../core/half.hpp"
#include "../../quant/format.hpp"
#include "../../quant/pack.hpp"
#include "../../quant/qtensor.hpp"
#include "device.cuh"
#include "gemv_lanes.cuh"
#include "launch.cuh"

namespace qmr::cuda {

// ---------------------------------------------------------------------------
// The "split layout". The rows are cut into tiles of 16 (the mma's M) and each
// tile's columns into loads of 16 * KT columns, KT = lanes_unit_cols(Bits) / 8
// k-steps of 16 (8 for 2- and 3-bit codes, 4 for 4-bit, 2 for 8-bit): one load
// is one 16-byte vector per lane, 512 contiguous bytes per warp ([tile][load][lane]),
// and a lane's vector holds exactly its A fragments of mma m16n8k16 for the KT
// k-steps. Lane l = 4g + t owns, in k-step s, registers f = 0..3 = the column pairs
//   row 16*tile + g + 8*(f & 1),  columns 16*s + 2t + 8*(f >> 1) + {0, 1},
// stored as pair p = 4s + f of a lane-layout unit (lanes_place), so the lane kernel's
// decode (one LOP3 + one HFMA2 per pair: exact (code - 2^(Bits-1)) / 2^(Bits-1) in
// f16) gives the A registers directly. 3-bit codes add the 8-byte high-bit plane
// ([tile][load][lane] uint2). Rows are padded to whole tiles and columns to whole
// 128-column quanta with code 0 (their scales are 0, their activations 0). Scales
// are stored per tile as the lanes read them: u32 [row_tiles][n_groups][8], word g =
// f16x2 {scale of row 16 tile + g, of row 16 tile + g + 8} (lane 4g + t's two rows),
// so that a warp stages its tile's groups of a slice with contiguous 16-byte loads
// and reads one word per group end. With zero points, the same array of f16x2 zero
// factors (z0 - z) / z0 (z0 = 2^(Bits-1): exact in f16 for every z of Bits <= 8 bits).
//
// The kernel. A block of 16 warps owns a band of 256 rows (a tile per warp) and one
// slice of the columns (slice_cols, a multiple of 256 so that every group of up to
// 256 columns starts inside it; the last slice may be shorter); the grid is
// bands x slices, sized to fill the GPU once. The block stages its slice of x (8 or
// 16 token rows, zero past M, rows padded by 16 bytes so that ldmatrix is
// conflict-free) and, for zero points, each token's sum of x per group; each warp
// stages its tile's scales (and zero factors) of the slice's groups. A warp streams
// its tile's loads through a ring of shared-memory slots by cp.async (each lane its
// own 16 bytes, ring - 1 loads ahead); per k-step it decodes 4 pairs, takes its B
// fragments with one ldmatrix and issues one mma per 8 tokens (f32 accumulators); at each group's end
// the group's sums are scaled into the totals (and the zero point's share, s * (z0 -
// z) / z0 * Σx, added). With one slice per row the warp stores y; otherwise each
// warp writes its tile's partial sums to a workspace and the last warp of the tile's
// slices to arrive (a counter per row tile, reset by that warp) adds the slices in
// slice order and stores y. (Summing a band's 2-8 slices in a thread-block cluster
// through distributed shared memory instead was measured on an H100 twice: stop 35,
// no faster at 16 tokens and 15% slower at 1; stop 41, 1.3-1.5x slower at 8192 x 8192,
// where a band's 8 slices make clusters of 8: bench/results/cuda_gemv_split_tail_h100_20261206_s41.md.)
//
// Per-block work is small (8192 x 8192 at M = 16: 16 loads a warp), so the chains of
// memory round trips around the stream count: x and the scales arrive by cp.async
// (no register round trip, no warp stalled on them), and a tile's last warp adds the
// slices as float4 runs with every slice's load in flight.
// ---------------------------------------------------------------------------
struct gemv_split_traits {
  // 16 warps share one staging of x (half the L2 traffic and shared memory of 8).
  static constexpr int block_warps = 16;
  static constexpr int block_threads = 32 * block_warps;
  static constexpr int band_rows = 16 * block_warps;
  // 64 registers a thread: two 512-thread blocks fill an SM's 64K registers.
  static constexpr int blocks_per_sm = 2;
  // Slices are multiples of 256 columns (every group up to 256 then starts in its
  // slice) and at most 2048 (16 tokens x 2048 f16 = 64 KB of staged x per block).
  static constexpr int slice_quantum = 256;
  static constexpr int max_slice_cols = 2048;
  // Columns are padded to whole loads of the widest unit (2/3-bit: 128 columns).
  static constexpr int col_quantum = 128;
  static constexpr int max_batch = 16;
  // Each lane's loads go through a ring of `ring` 16-byte slots in shared memory by cp.async,
  // ring - 1 loads ahead of the one decoded (1.5 KB a warp, 48 KB an SM in flight), costing
  // no registers (3-bit codes no longer spill). Rings of 4, 6 and 8 and register double
  // buffers measured within a few % of each other on an H100 at 8192 x 8192 (8 the slowest,
  // 4 the fastest at M = 16), so the memory system, not the loads in flight, sets the pace:
  // bench/results/cuda_gemv_split_h100_20261205_s35.md.
  static constexpr int ring = 4;
};

// Groups a slice of slice_cols columns can touch (slices start on group boundaries): 1 per channel.
inline constexpr int split_slice_groups(int group_shift, int slice_cols) {
  return group_shift >= 30 ? 1 : std::max(1, slice_cols >> group_shift);
}
QMR_HOST_DEVICE constexpr int split_ksteps(int bits) { return lanes_unit_cols(bits) / 8; }
QMR_HOST_DEVICE constexpr int split_load_cols(int bits) { return 16 * split_ksteps(bits); }
static_assert(split_load_cols(2) == 128 && split_load_cols(3) == 128 && split_load_cols(4) == 64 && split_load_cols(8) == 32);

// gemv()'s thresholds for the split kernel (see split_takes), from H100 measurements:
// 2^23 weights (between 2048 x 2048, where the tiled kernel wins at every M, and
// 1536 x 8960, where the split one wins from 2 tokens), rows of 4096 columns (896 x 4864
// wins at 9+ tokens, 2048 x 2048 and 4864 x 896 lose at every M), a side of 1536
// (thin matrices).
inline constexpr std::int64_t split_min_elements = std::int64_t{1} << 23;
inline constexpr std::int64_t split_min_cols = 4096;
inline constexpr std::int64_t split_thin_rows = 1536;
// The largest side the split layout takes: its kernel's row and column offsets are 32-bit.
inline constexpr std::int64_t split_max_dim = std::int64_t{1} << 28;

inline bool split_supported(const quant::format_spec& spec) {
  if (!spec.is_quantized()) return false;
  if (spec.bits != 2 && spec.bits != 3 && spec.bits != 4 && spec.bits != 8) return false;
  return spec.group == quant::per_channel || (spec.group >= 16 && spec.group <= 256 && (spec.group & (spec.group - 1)) == 0);
}

// Whether gemv() runs the split kernel rather than the tiled one for M tokens (f16)
// over a rows x cols matrix of `bits`-bit codes that has a split copy (at M = 1 the
// lane kernel runs first where uploaded): where the split kernel measured faster on an
// H100, per call in a CUDA graph with PDL, on 9 shapes from 896 x 4864 to 14336 x 4096,
// 6 formats, M = 2-16 (bench/results/cuda_gemv_split_dispatch_h100_20261206_s42.md;
// over those 270 cases the rule's choices take 0.07% more time than the faster
// kernel's, the tiled kernel alone 27% more; stop 36's rule, drawn before the slices
// were summed per row tile, took 1.2% more, up to 30% in a case):
//  - matrices of split_min_elements or more: every M for 2-4-bit codes (4096 x 4096
//    w2g64s at 2-4 tokens loses 6%). 8-bit codes (twice the bytes per mma) from 8
//    tokens, and at every M for thin matrices (a side of split_thin_rows or less:
//    1536 x 8960, 8960 x 1536) and rows at least twice as long as the matrix is tall
//    (4096 x 14336: 8-13% faster at 2-4 tokens), where the tiled kernel under-fills
//    the GPU; below 8 tokens the tiled kernel wins by 0-5% on 8192 x 8192, 14336 x 4096
//    and 4096 x 4096;
//  - smaller matrices (Qwen2.5-0.5B's): rows of split_min_cols or more from 9 tokens,
//    where split_wide runs (896 x 4864 w4g128s: 8.2-9.2 against 11.5-11.7 us at M = 9-16,
//    stop 56, bench/results/cuda_gemv_split_pair_h100_20261207_s56.md; 9.8 against 11.5 at
//    M = 12 before split_wide), and from 2 tokens for 3-bit codes (7-16% faster on 896 x
//    4864 at 2-8 tokens); the tiled kernel below that (4864 x 896 at every M; 2048 x 2048
//    too, though the split kernel was 3-10% faster there at 9-16 tokens in stop 56).
// Measured on one card: other GPUs (sm_87 Jetson) may draw the line elsewhere.
inline bool split_takes(int bits, std::int64_t rows, std::int64_t cols, int M) {
  if (M < 1 || M > gemv_split_traits::max_batch) return false;
  const std::int64_t elements = rows * cols;
  if (elements < split_min_elements) return cols >= split_min_cols && (M >= 9 || (bits == 3 && M >= 2));
  if (bits < 8) return true;
  return std::min(rows, cols) <= split_thin_rows || M >= 8 || cols >= 2 * rows;
}

// cols_pad columns cut into about `want` slices, clamped so that none is longer than
// max_slice_cols or shorter than a quantum, each but the last a whole number of quanta
// (rounding may leave fewer than `want`): the layout's slicing, and split_wide_of's.
struct split_slicing {
  int slices = 1, slice_cols = 0;
  static split_slicing of(std::int64_t cols_pad, std::int64_t want) {
    using T = gemv_split_traits;
    const std::int64_t quanta = (cols_pad + T::slice_quantum - 1) / T::slice_quantum;
    const std::int64_t fewest = (cols_pad + T::max_slice_cols - 1) / T::max_slice_cols;
    const std::int64_t slices = std::min(std::max(want, fewest), quanta);
    const std::int64_t per = (quanta + slices - 1) / slices;  // quanta per slice
    split_slicing c;
    c.slice_cols = static_cast<int>(std::min<std::int64_t>(per * T::slice_quantum, cols_pad));
    c.slices = static_cast<int>((cols_pad + c.slice_cols - 1) / c.slice_cols);
    return c;
  }
};

// Sizes and byte offsets of one split-layout buffer, and the slicing of its columns.
struct split_layout {
  std::int64_t rows = 0, cols = 0, rows_pad = 0, cols_pad = 0, row_tiles = 0, loads = 0, n_groups = 0;
  std::int64_t hi_offset = 0, scale_offset = 0, zero_offset = 0, bytes = 0;
  int bands = 0, slices = 1, slice_cols = 0;
  static split_layout of(int bits, std::int64_t rows, std::int64_t cols, std::int64_t n_groups, bool asym, int sm_count) {
    using T = gemv_split_traits;
    split_layout l;
    l.rows = rows;
    l.cols = cols;
    l.n_groups = n_groups;
    l.row_tiles = (rows + 15) / 16;
    l.rows_pad = l.row_tiles * 16;
    l.cols_pad = (cols + T::col_quantum - 1) / T::col_quantum * T::col_quantum;
    l.loads = l.cols_pad / split_load_cols(bits);
    l.hi_offset = l.row_tiles * l.loads * 512;
    l.scale_offset = l.hi_offset + (bits == 3 ? l.row_tiles * l.loads * 256 : 0);
    l.zero_offset = l.scale_offset + l.row_tiles * n_groups * 32;  // u32 [row_tiles][n_groups][8]
    l.bytes = l.zero_offset + (asym ? l.row_tiles * n_groups * 32 : 0);
    l.bands = static_cast<int>((rows + T::band_rows - 1) / T::band_rows);
    // Slices: enough blocks to fill the GPU once (blocks_per_sm per SM).
    const std::int64_t want = std::max<std::int64_t>(1, (static_cast<std::int64_t>(T::blocks_per_sm) * std::max(sm_count, 1) + l.bands - 1) / l.bands);
    const split_slicing cut = split_slicing::of(l.cols_pad, want);
    l.slices = cut.slices;
    l.slice_cols = cut.slice_cols;
    return l;
  }
};

namespace detail {

// Repacks a qtensor into the split layout (32-bit words, offsets as split_layout).
inline std::vector<qstd::uint32_t> split_repack(const quant::qtensor_view& w, const split_layout& l) {
  const int bits = w.spec.bits, uc = lanes_unit_cols(bits), lc = split_load_cols(bits);
  std::vector<qstd::uint32_t> out(static_cast<std::size_t>(l.bytes + 3) / 4, 0u);
  qstd::uint32_t* hi = out.data() + l.hi_offset / 4;
  for (std::int64_t tile = 0; tile < l.row_tiles; ++tile)
    for (std::int64_t ld = 0; ld < l.loads; ++ld)
      for (int lane = 0; lane < 32; ++lane) {
        const std::int64_t v = (tile * l.loads + ld) * 32 + lane;  // the lane's vector
        const int g = lane >> 2, t = lane & 3;
        for (int c = 0; c < uc; ++c) {
          const int p = c / 2, h = c % 2, s = p / 4, f = p % 4;
          const std::int64_t row = tile * 16 + g + 8 * (f & 1);
          const std::int64_t col = ld * lc + 16 * s + 2 * t + 8 * (f >> 1) + h;
          if (row >= l.rows || col >= l.cols) continue;  // padding: code 0
          lanes_place(out.data() + v * 4, hi + v * 2, c, quant::get_code(w.codes + row * w.layout.code_row_bytes, col, bits), bits);
        }
      }
  // Scale pairs and zero-factor pairs: word (tile, group, g) = {row 16 tile + g, row 16 tile + g + 8};
  // padded rows keep 0 in both halves.
  qstd::uint32_t* sp = out.data() + l.scale_offset / 4;
  qstd::uint32_t* zp = out.data() + l.zero_offset / 4;
  const float z0 = static_cast<float>(1 << (bits - 1));
  for (std::int64_t tile = 0; tile < l.row_tiles; ++tile)
    for (std::int64_t gi = 0; gi < l.n_groups; ++gi)
      for (int g = 0; g < 8; ++g) {
        qstd::uint32_t s2 = 0, z2 = 0;
        for (int h = 0; h < 2; ++h) {
          const std::int64_t row = tile * 16 + g + 8 * h;
          if (row >= l.rows) continue;
          s2 |= static_cast<qstd::uint32_t>(w.scales[row * l.n_groups + gi].bits) << (16 * h);
          if (!w.spec.symmetric) {
            const auto z = static_cast<float>(quant::get_code(w.zeros + row * w.layout.zero_row_bytes, gi, bits));
            z2 |= static_cast<qstd::uint32_t>(to_f16((z0 - z) / z0).bits) << (16 * h);  // exact: an integer of <= 8 bits / 2^(bits-1)
          }
        }
        const std::int64_t word = (tile * l.n_groups + gi) * 8 + g;
        sp[word] = s2;
        if (!w.spec.symmetric) zp[word] = z2;
      }
  return out;
}

}  // namespace detail

// The slice sums of split GEMVs: f32 [slices][16][rows_pad] (a matrix's slices, 16 token
// rows, its padded rows) and a u32 counter per row tile, zero between calls (each call's
// last warps reset theirs). One workspace serves every matrix whose calls are ordered: on
// one stream, a call's blocks touch it only after PDL's wait for the previous call. Calls
// that may overlap (two streams) need one each. It grows, until its first GEMV, to the
// largest matrix uploaded onto it; the first GEMV fixes its buffers (a captured CUDA graph
// keeps their addresses), after which a matrix that needs more is an error. One device's
// matrices only (it is allocated on the current device at its first growth); not thread-safe.
//
// Sharing one (upload_split's `shared`, upload_layouts::split_ws) keeps the workspace memory
// at the largest matrix's instead of the sum over matrices (an 8192 x 8192 matrix's is 4.2
// MB), and its lines in L2 between calls instead of written back dirty: on an H100, 8192 x
// 8192 w4g128s GEMVs rotating through 1 GB of copies that share one ran 1.9% faster at 1
// token, 3.0% at 8 and 0.5% at 16 than with one each (`cuda_gemv --split-only`, CUDA graph
// with PDL); bench/results/cuda_gemv_split_red_shared_ws_h100_20261207_s52.md.
class split_workspace {
 public:
  // Makes room for `floats` sums and `tiles` counters, zeroing new counters on `stream`;
  // `who` names the caller in the error when the buffers are fixed and too small.
  void reserve(std::int64_t floats, std::int64_t tiles, cudaStream_t stream, const char* who) {
    if (floats <= sum_count() && tiles <= counter_count()) return;
    check(!fixed_, std::string(who) + ": the shared split workspace holds " + std::to_string(sum_count()) + " sums and " +
                       std::to_string(counter_count()) + " counters and a GEMV has used it (a captured graph may hold its addresses); "
                       "this matrix needs " + std::to_string(floats) + " and " + std::to_string(tiles) +
                       ": upload every matrix onto it before the first GEMV");
    if (floats > sum_count()) sums_ = device_buffer(static_cast<std::size_t>(floats) * sizeof(float));
    if (tiles > counter_count()) {
      counters_ = device_buffer(static_cast<std::size_t>(tiles) * sizeof(unsigned));
      QMR_CUDA_CHECK(cudaMemsetAsync(counters_.data(), 0, counters_.size(), stream));
    }
  }
  // Called by each GEMV before its launch: the buffers no longer move.
  void fix() { fixed_ = true; }
  float* sums() const { return sums_.as<float>(); }
  unsigned* counters() const { return counters_.as<unsigned>(); }
  std::int64_t sum_count() const { return static_cast<std::int64_t>(sums_.size() / sizeof(float)); }
  std::int64_t counter_count() const { return static_cast<std::int64_t>(counters_.size() / sizeof(unsigned)); }
  std::int64_t bytes() const { return static_cast<std::int64_t>(sums_.size() + counters_.size()); }

 private:
  device_buffer sums_;      // f32 [sum_count]
  device_buffer counters_;  // u32 [counter_count], zero between calls
  bool fixed_ = false;
};

namespace detail {
// The 9-16-token configurations (split_wide_of and split_pair_of say what they are).
struct split_wide_config {
  int slices = 0, slice_cols = 0, smem = 0;
};
struct split_pair_config {
  int bands = 0, clusters = 0, smem = 0;
};
}  // namespace detail

// A quantized matrix in the split layout on the device, with the workspace of its slice
// sums when it has more than one slice (its own, or one shared with other matrices: see
// split_workspace). One GEMV at a time per workspace: calls on one stream are ordered.
struct device_split {
  quant::format_spec spec;
  quant::qtensor_layout layout;
  split_layout l;
  device_buffer data;
  std::shared_ptr<split_workspace> ws;  // slices > 1 only
  int sm_count = 0;
  // Its 9-16-token configurations on the device it was uploaded to, found once at upload
  // (device attributes and, for clusters, an occupancy query: not repeated per GEMV, nor run
  // inside a graph capture).
  detail::split_wide_config wide;
  detail::split_pair_config pair;
  std::int64_t rows() const { return layout.rows; }
  std::int64_t cols() const { return layout.cols; }
  std::int64_t weight_bytes() const { return layout.total_bytes(); }
  // The weights' device copy (the workspace, perhaps shared, is workspace_bytes()).
  std::int64_t device_bytes() const { return static_cast<std::int64_t>(data.size()); }
  std::int64_t workspace_bytes() const { return ws ? ws->bytes() : 0; }
  // The sums and counters its GEMVs use: slices x 16 x rows_pad and row_tiles.
  std::int64_t workspace_sums() const { return l.slices > 1 ? static_cast<std::int64_t>(l.slices) * gemv_split_traits::max_batch * l.rows_pad : 0; }
  std::int64_t workspace_counters() const { return l.slices > 1 ? l.row_tiles : 0; }
};

#ifdef __CUDACC__
namespace detail {
inline split_wide_config split_wide(const device_split& w);
inline split_pair_config split_pair(const device_split& w, const split_wide_config& wide);
}  // namespace detail
#endif

// Copies a host quantized matrix to the device in the split layout and waits for the copy.
// With `shared`, its slice sums go to that workspace (grown if needed, unless a GEMV has
// used it: see split_workspace); else to a workspace of its own.
inline device_split upload_split(const quant::qtensor_view& w, cudaStream_t stream, std::shared_ptr<split_workspace> shared = nullptr) {
  check(split_supported(w.spec), "upload_split: " + w.spec.str() + " has no split layout (2, 3, 4 or 8 bits; groups 16-256 or per-channel)");
  const quant::qtensor_layout ql = quant::qtensor_layout::of(w.spec, w.rows(), w.cols());
  check(ql.code_row_bytes == w.layout.code_row_bytes && ql.n_groups == w.layout.n_groups && ql.zero_row_bytes == w.layout.zero_row_bytes,
        "upload_split: the layout of the " + w.spec.str() + " tensor does not match its format");
  check(w.codes != nullptr && w.scales != nullptr && (w.spec.symmetric || w.zeros != nullptr),
        "upload_split: the " + w.spec.str() + " tensor has a null array");
  check(ql.cols % 8 == 0, "upload_split: " + std::to_string(ql.cols) + " columns: the split GEMV needs a multiple of 8");
  check(ql.rows <= split_max_dim && ql.cols <= split_max_dim, "upload_split: matrix too large (a side over 2^28)");
  int device = 0, sm_count = 0;
  QMR_CUDA_CHECK(cudaGetDevice(&device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
  device_split d;
  d.spec = w.spec;
  d.layout = ql;
  d.sm_count = sm_count;
  d.l = split_layout::of(w.spec.bits, ql.rows, ql.cols, ql.n_groups, !w.spec.symmetric, sm_count);
#ifdef __CUDACC__
  d.wide = detail::split_wide(d);
  d.pair = detail::split_pair(d, d.wide);
#endif
  const std::vector<qstd::uint32_t> packed = detail::split_repack(w, d.l);
  d.data = device_buffer(static_cast<std::size_t>(d.l.bytes));
  QMR_CUDA_CHECK(cudaMemcpyAsync(d.data.data(), packed.data(), d.data.size(), cudaMemcpyHostToDevice, stream));
  if (d.l.slices > 1) {
    d.ws = shared ? std::move(shared) : std::make_shared<split_workspace>();
    d.ws->reserve(d.workspace_sums(), d.workspace_counters(), stream, "upload_split");
  }
  QMR_CUDA_CHECK(cudaStreamSynchronize(stream));  // `packed` dies here
  return d;
}

// A device-side copy of an uploaded split-layout matrix that shares its workspace, so its
// calls must be ordered with the original's (benchmarks rotate through copies on one
// stream, as for gemv.cuh's clone). Asynchronous on `stream`.
inline device_split clone(const device_split& w, cudaStream_t stream) {
  device_split d;
  d.spec = w.spec;
  d.layout = w.layout;
  d.l = w.l;
  d.sm_count = w.sm_count;
  d.data = device_buffer(w.data.size());
  QMR_CUDA_CHECK(cudaMemcpyAsync(d.data.data(), w.data.data(), w.data.size(), cudaMemcpyDeviceToDevice, stream));
  d.ws = w.ws;
  d.wide = w.wide;
  d.pair = w.pair;
  return d;
}

namespace detail {

struct split_args {
  const uint4* q;               // [row_tiles][loads][32]
  const uint2* hq;              // [row_tiles][loads][32], 3-bit only
  const uint4* scales;          // scale pairs u32 [row_tiles][n_groups][8], as uint4 [row_tiles][n_groups][2]
  const uint4* zeros;           // zero-factor pairs, the same shape; asymmetric only (else null)
  float* work;                  // [slices][16][rows_pad]
  unsigned* counters;           // [row_tiles]
  int rows, rows_pad, cols, loads, n_groups;
  int group_shift;              // log2(group); 31 per-channel
  int slice_cols, slices, slice_groups;  // slice_groups: groups a slice can touch (slice_cols >> shift, at least 1)
  int m;
};

#ifdef __CUDACC__
QMR_DEVICE __forceinline__ void split_mma(float (&d)[4], const qstd::uint32_t (&a)[4], qstd::uint32_t b0, qstd::uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
QMR_DEVICE __forceinline__ unsigned split_smem_u32(const void* p) { return static_cast<unsigned>(__cvta_generic_to_shared(p)); }
// 16 bytes global -> shared without a register round trip (sm_80+); src_bytes 0 writes zeros.
QMR_DEVICE __forceinline__ void split_cp_async16(unsigned dst, const void* src, unsigned src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
QMR_DEVICE __forceinline__ void split_cp_async8(unsigned dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" ::"r"(dst), "l"(src) : "memory");
}
QMR_DEVICE __forceinline__ float2 split_half2_float2(qstd::uint32_t v) {
  return __half22float2(*reinterpret_cast<const __half2*>(&v));
}
#endif  // __CUDACC__

// Shared memory of a block, byte offsets: x f16 [8 NT][slice_cols + 8] at 0, then the load
// ring uint4 [warps][ring][32 lanes] (3-bit: then the high planes uint2 [warps][ring][32]),
// then per warp its tile's scale pairs u32 [warps][slice_groups][8], then (asymmetric) the
// zero-factor pairs, the same shape, and Σx f32 [8 NT][slice_groups]; with `parts` 2 (the
// pair kernel: a block holds two slices, x staged for both), x is [8 NT][2 slice_cols + 8]
// and the warps' sums f32 [warps][32 lanes][8] follow; `bytes` in all. The launch sizes it
// and the kernel lays it out so.
QMR_HOST_DEVICE constexpr int split_x_stride(int slice_cols) { return slice_cols + 8; }
struct split_smem {
  int ring = 0, ring_hi = 0, scale = 0, zero = 0, xsum = 0, sums = 0, bytes = 0;
  QMR_HOST_DEVICE static constexpr split_smem of(int bits, int nt, int slice_cols, int slice_groups, bool asym, int parts = 1) {
    constexpr int W = gemv_split_traits::block_warps, R = gemv_split_traits::ring;
    split_smem m;
    m.ring = 8 * nt * split_x_stride(parts * slice_cols) * 2;
    m.ring_hi = m.ring + W * R * 512;
    m.scale = m.ring_hi + (bits == 3 ? W * R * 256 : 0);
    m.zero = m.scale + W * slice_groups * 32;
    m.xsum = m.zero + (asym ? W * slice_groups * 32 : 0);
    m.sums = m.xsum + (asym ? 8 * nt * slice_groups * 4 : 0);
    m.bytes = m.sums + (parts == 2 ? W * 32 * 8 * 4 : 0);
    return m;
  }
};

#ifdef __CUDACC__

// Lane l's ldmatrix row address in x staged at xs_base (shared-memory address, rows of
// xstride f16): lane l supplies row (l & 7) of matrix l >> 3. NT = 2: matrices (tokens 0-7 |
// 8-15) x (columns k..k+7 | k+8..k+15) of one k-step; NT = 1: tokens 0-7 x columns k, k+8,
// k+16, k+24, the B fragments of two k-steps.
template <int NT>
QMR_DEVICE __forceinline__ unsigned split_xs_lane(unsigned xs_base, int xstride, int lane) {
  const int mi = lane >> 3;
  return xs_base + static_cast<unsigned>(NT == 2 ? ((lane & 7) + 8 * (mi >> 1)) * xstride * 2 + 16 * (mi & 1)
                                                 : (lane & 7) * xstride * 2 + 16 * mi);
}

// Where a group's sums are scaled in: after k-step s of a load when bit s of the returned
// mask is set. Groups of at most one load (k_per_group <= KT) end at the same k-steps of
// every load; a longer group ends at the last k-step of some loads (flush_mask: the column
// bits a group's end clears); the slice's end always flushes (split_load_mma).
template <int Bits>
QMR_DEVICE __forceinline__ unsigned split_flush_in_load(int group_shift, int& flush_mask) {
  constexpr int KT = split_ksteps(Bits);
  flush_mask = group_shift >= 30 ? 0x7fffffff : (1 << group_shift) - 1;
  const int k_per_group = group_shift >= 30 ? (1 << 30) : (1 << group_shift) / 16;
  unsigned flush = 0u;
#pragma unroll
  for (int s = 0; s < KT; ++s)
    if (k_per_group <= KT && (s + 1) % k_per_group == 0) flush |= 1u << s;
  return flush;
}

// Stages one warp's tile's scale pairs (and zero-factor pairs) of a slice's groups into sp
// (zp), u32 [slice_groups][8] in shared memory, by cp.async (the caller commits and waits):
// contiguous 16-byte copies, two a group, so no warp stalls on the scales' DRAM latency
// before it stages x. The groups past the matrix's last (padding columns of the last slice)
// get 0, which their zero sums never see as NaN. Only the warp reads them.
template <bool Asym>
QMR_DEVICE __forceinline__ void split_stage_tile_scales(const split_args& a, int tile, int c0, qstd::uint32_t* sp,
                                                        qstd::uint32_t* zp, int lane) {
  const int g0 = c0 >> a.group_shift;  // 0 per channel (shift 31)
  const int n_vec = 2 * a.slice_groups, n_in = 2 * min(a.slice_groups, a.n_groups - g0);
  const uint4* src = a.scales + (static_cast<std::size_t>(tile) * a.n_groups + g0) * 2;
  const uint4* zsrc = Asym ? a.zeros + (static_cast<std::size_t>(tile) * a.n_groups + g0) * 2 : nullptr;
  const unsigned sd = split_smem_u32(sp), zd = split_smem_u32(zp);
  for (int v = lane; v < n_vec; v += 32) {
    const bool in = v < n_in;
    split_cp_async16(sd + 16u * static_cast<unsigned>(v), in ? src + v : a.scales, in ? 16u : 0u);
    if constexpr (Asym) split_cp_async16(zd + 16u * static_cast<unsigned>(v), in ? zsrc + v : a.zeros, in ? 16u : 0u);
  }
}

// Σx per token row and group of a staged slice (asymmetric formats), for the token rows
// n0, n0 + step, ... below TOK: one warp per row, so each sum has one writer and a fixed
// order (16-byte vectors, lanes of a group reduced by shuffles). xsum f32 [TOK][slice_groups].
template <int TOK>
QMR_DEVICE __forceinline__ void split_sum_x(const split_args& a, const __half* xs, int xstride, int vec_per_row, float* xsum,
                                            int n0, int step, int lane) {
  // lanes (vectors of 8 columns) per group, at most 32: group 16 -> 2, ..., >= 256 and per channel -> 32
  const int lpg = a.group_shift >= 8 ? 32 : 1 << (a.group_shift - 3);
  for (int n = n0; n < TOK; n += step) {
    float* xr = xsum + n * a.slice_groups;
    for (int j = lane; j < a.slice_groups; j += 32) xr[j] = 0.0f;
    __syncwarp();
    for (int v0 = 0; v0 < vec_per_row; v0 += 32) {  // the same trip count for the whole warp: every lane shuffles
      const int v = v0 + lane;
      float sum = 0.0f;
      if (v < vec_per_row) {
        const uint4 w = *reinterpret_cast<const uint4*>(xs + n * xstride + 8 * v);
        const qstd::uint32_t w4[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 f = split_half2_float2(w4[e]);
          sum += f.x + f.y;
        }
      }
      for (int o = 1; o < lpg; o <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      // A group of < 32 vectors lies in one pass and is written once; a longer one gets one
      // sum a pass from lane 0, always the same thread.
      if (v < vec_per_row && (lane & (lpg - 1)) == 0) xr[(8 * v) >> min(a.group_shift, 30)] += sum;
    }
  }
}

// One load of a warp's tile: its KT k-steps decoded from the lane's 16 bytes (q, and hw for
// 3-bit codes), each multiplied with the B fragments of x (ldmatrix at xs_load + 32 s:
// xs_load is the lane's address of the load's first column) into part, and at each group's
// end (or the slice's, slen) the group's sums scaled into acc with the warp's staged scale
// pairs sp (zero-factor pairs zp) of the slice's groups. cb: the load's first column,
// slice-relative.
template <int Bits, int NT, bool Asym>
QMR_DEVICE __forceinline__ void split_load_mma(const qstd::uint32_t (&q)[4], const qstd::uint32_t (&hw)[2], int cb, int slen,
                                               unsigned flush_in_load, int flush_mask, unsigned xs_load, const qstd::uint32_t* sp,
                                               const qstd::uint32_t* zp, const float* xsum, int group_shift, int slice_groups,
                                               int g, int t, float (&part)[NT][4], float (&acc)[NT][4]) {
  constexpr int KT = split_ksteps(Bits), LC = split_load_cols(Bits);
  const bool load_ends_group = ((cb + LC) & flush_mask) == 0 || cb + LC == slen;
  const unsigned flush = flush_in_load | (load_ends_group ? 1u << (KT - 1) : 0u);
  qstd::uint32_t b[4];  // B fragments: of this k-step (NT = 2), or of this one and the next (NT = 1)
#pragma unroll
  for (int s = 0; s < KT; ++s) {
    qstd::uint32_t af[4];
#pragma unroll
    for (int f = 0; f < 4; ++f) af[f] = lanes_decode<Bits>(q, hw, 4 * s + f);
    if (NT == 2 || s % 2 == 0) {
      asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                   : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3])
                   : "r"(xs_load + 32u * static_cast<unsigned>(s)));
    }
    if constexpr (NT == 2) {
      split_mma(part[0], af, b[0], b[1]);
      split_mma(part[1], af, b[2], b[3]);
    } else {
      split_mma(part[0], af, b[2 * (s % 2)], b[2 * (s % 2) + 1]);
    }
    if (flush & (1u << s)) {  // a group ends here, or the slice does: scale the group's sums in
      const int j = (cb + 16 * s) >> min(group_shift, 30);
      const float2 sc = split_half2_float2(sp[8 * j + g]);  // rows g and g + 8 of the tile
      float2 zf = make_float2(0.0f, 0.0f);                    // (z0 - z) / z0: the decode's units
      if constexpr (Asym) zf = split_half2_float2(zp[8 * j + g]);
#pragma unroll
      for (int n = 0; n < NT; ++n) {
        float x0 = 0.0f, x1 = 0.0f;
        if constexpr (Asym) {
          x0 = xsum[(8 * n + 2 * t) * slice_groups + j];
          x1 = xsum[(8 * n + 2 * t + 1) * slice_groups + j];
        }
        acc[n][0] = fmaf(sc.x, Asym ? fmaf(zf.x, x0, part[n][0]) : part[n][0], acc[n][0]);
        acc[n][1] = fmaf(sc.x, Asym ? fmaf(zf.x, x1, part[n][1]) : part[n][1], acc[n][1]);
        acc[n][2] = fmaf(sc.y, Asym ? fmaf(zf.y, x0, part[n][2]) : part[n][2], acc[n][2]);
        acc[n][3] = fmaf(sc.y, Asym ? fmaf(zf.y, x1, part[n][3]) : part[n][3], acc[n][3]);
#pragma unroll
        for (int k = 0; k < 4; ++k) part[n][k] = 0.0f;
      }
    }
  }
}

// Row tile `tile`'s outputs, the sum of its a.slices slices' partial sums in the workspace
// (in slice order), times `unscale`, stored to y by one warp: float4 runs of 4 rows (rows_pad
// is whole tiles), 4 a token, each lane's runs with SB slices' loads in flight at once.
template <class TY>
QMR_DEVICE __forceinline__ void split_add_tile(const split_args& a, int tile, int lane, float unscale, TY* y) {
  constexpr int SB = 8;  // workspace loads in flight a lane
  const std::size_t step = static_cast<std::size_t>(gemv_split_traits::max_batch) * a.rows_pad / 4;  // one slice, in float4
  const float4* work4 = reinterpret_cast<const float4*>(a.work);
  const int r_tile = 16 * tile;
  for (int i = lane; i < 4 * a.m; i += 32) {
    const int tok = i >> 2, row = r_tile + 4 * (i & 3);
    const float4* src = work4 + (static_cast<std::size_t>(tok) * a.rows_pad + row) / 4;
    float4 s = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int sl0 = 0; sl0 < a.slices; sl0 += SB) {  // SB loads in flight, then their sum (in slice order)
      float4 v[SB];
#pragma unroll
      for (int k = 0; k < SB; ++k) v[k] = sl0 + k < a.slices ? __ldcg(src + (sl0 + k) * step) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
      for (int k = 0; k < SB; ++k) {
        s.x += v[k].x;
        s.y += v[k].y;
        s.z += v[k].z;
        s.w += v[k].w;
      }
    }
    TY* out = y + static_cast<std::size_t>(tok) * a.rows + row;
    const float o[4] = {s.x, s.y, s.z, s.w};
#pragma unroll
    for (int k = 0; k < 4; ++k)
      if (row + k < a.rows) lanes_store(out + k, o[k] * unscale);
  }
}

// The warp's sums to y: stored directly with one slice; otherwise each warp writes its
// tile's partial sums to the workspace and the last warp of the tile's slices to arrive
// (a counter per row tile, reset by that warp) adds the slices in slice order and stores
// the tile's outputs. Accumulator k of n-tile n is row 16 tile + g + 8 (k >> 1), token
// 8n + 2t + (k & 1). Called last, by every thread; no block barrier follows.
template <int NT, class TY>
QMR_DEVICE __forceinline__ void split_finish(const split_args& a, const float (&acc)[NT][4], int tile, int g, int t, int lane,
                                             bool active, int slice, float unscale, TY* y) {
  if (!active) return;
  const int row0 = 16 * tile + g;
  const auto each_sum = [&](auto&& f) {
#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
      for (int k = 0; k < 4; ++k) f(row0 + 8 * (k >> 1), 8 * n + 2 * t + (k & 1), acc[n][k]);
  };
  if (a.slices == 1) {
    each_sum([&](int row, int tok, float v) {
      if (row < a.rows && tok < a.m) lanes_store(y + static_cast<std::size_t>(tok) * a.rows + row, v * unscale);
    });
    return;
  }
  float* wk = a.work + static_cast<std::size_t>(slice) * gemv_split_traits::max_batch * a.rows_pad;
  each_sum([&](int row, int tok, float v) {
    if (tok < a.m) __stcg(wk + static_cast<std::size_t>(tok) * a.rows_pad + row, v);
  });
  // Per warp, not per block: a tile's sums are final as soon as its warps in every slice are
  // done, so the adding is spread over the last warps of 16 rows each and no warp waits on
  // its block. Per band (the last block of 8 adding 256 rows' slices, 131 KB read by one SM
  // at 16 tokens) it was up to 12% slower at 1 and 8 tokens and 1-9% for 4- and 8-bit codes
  // at 16 on an H100 (graph), and 1-4% faster for 2- and 3-bit codes at 16 tokens (their
  // warps stream 8 loads: the adding weighs more);
  // bench/results/cuda_gemv_split_tail_h100_20261206_s41.md.
  //
  // The count: lane 0 adds the warp to the tile's counter with one acquire-release atomic
  // at GPU scope, after __syncwarp. The barrier orders the other lanes' workspace stores
  // before lane 0's release (release is cumulative), and the second barrier orders lane
  // 0's acquire before every lane's loads below: the pattern of a grid-wide barrier, with
  // the fence folded into the atomic. Every lane running __threadfence() (fence.sc.gpu)
  // before a relaxed atomicAdd and again after it was 0.35-0.5 us slower on an H100 in a
  // graph, at 1 and 16 tokens (8192 x 8192 w4g128s at 16 tokens: 19.30 -> 18.84-18.91 us;
  // bench/results/cuda_gemv_split_counter_h100_20261207_s49.md).
  __syncwarp();
  unsigned last = 0;
  if (lane == 0) {
    unsigned before;
    asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(before) : "l"(a.counters + tile) : "memory");
    last = before == static_cast<unsigned>(a.slices - 1);
  }
  if (__shfl_sync(0xffffffffu, last, 0) == 0u) return;
  __syncwarp();
  split_add_tile(a, tile, lane, unscale, y);
  if (lane == 0) a.counters[tile] = 0u;  // ready for the next call (ordered after it by the stream)
}

// Thread-block clusters (sm_90; a grid launched without them is one of 1-block clusters, so
// these work there too): a barrier over every thread of the cluster that releases each
// thread's earlier memory operations and acquires the others'; the block's rank along y;
// two floats at a shared-memory address of the cluster's block of rank `rank`. Before sm_90
// only 1-block clusters exist: a block barrier, rank 0 and the block's own shared memory.
QMR_DEVICE __forceinline__ void split_cluster_sync() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
#else
  __syncthreads();
#endif
}
QMR_DEVICE __forceinline__ unsigned split_cluster_rank_y() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctaid.y;" : "=r"(r));
  return r;
#else
  return 0u;
#endif
}
QMR_DEVICE __forceinline__ float2 split_ld_cluster_f2(unsigned addr, unsigned rank) {
  float2 v;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  unsigned remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(addr), "r"(rank));
  asm volatile("ld.shared::cluster.v2.f32 {%0, %1}, [%2];" : "=f"(v.x), "=f"(v.y) : "r"(remote) : "memory");
#else
  if (rank != 0u) __trap();  // a cluster of 2 in code built for an older GPU (split_pair launches none there): fail, not sum wrong
  asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];" : "=f"(v.x), "=f"(v.y) : "r"(addr) : "memory");
#endif
  return v;
}

// The pair kernel's tail (Parts 2: a block's warps hold two slices of 8 row tiles; a band's
// a.slices slices are the a.slices / 2 blocks of a cluster along y): every warp puts its
// sums in shared memory (`sums`, f32 [warps][32 lanes][8], acc[n][k] at 4 n + k of the
// lane's 8); after a cluster barrier, the cluster's block of rank r adds the row tiles
// r tiles .. of the band (tiles = 8 / blocks), two floats a thread at a time, over the
// slices in slice order (block s / 2, part s % 2: the order of split_add_tile), reading its
// peer's sums through DSMEM, and stores y; a second barrier keeps each block's shared memory
// until its peer has read it. No workspace, counter or fence.
template <class TY>
QMR_DEVICE __forceinline__ void split_pair_finish(const split_args& a, const float (&acc)[2][4], int band, int warp, int lane, int tid,
                                                  float unscale, float* sums, TY* y) {
  constexpr int W = gemv_split_traits::block_warps, TPB = W / 2;  // row tiles a block
  float* mine = sums + (warp * 32 + lane) * 8;
  *reinterpret_cast<float4*>(mine) = make_float4(acc[0][0], acc[0][1], acc[0][2], acc[0][3]);
  *reinterpret_cast<float4*>(mine + 4) = make_float4(acc[1][0], acc[1][1], acc[1][2], acc[1][3]);
  split_cluster_sync();
  const int blocks = a.slices / 2;  // the cluster's: 1 or 2
  const unsigned rank = split_cluster_rank_y();
  const int tiles = TPB / blocks;
  for (int p = tid; p < tiles * 128; p += 32 * W) {  // float pairs: 128 a tile
    const int ot = static_cast<int>(rank) * tiles + p / 128, e = 2 * (p % 128);
    float2 sum = make_float2(0.0f, 0.0f);
    for (int sl = 0; sl < a.slices; ++sl) {
      const float2 v = split_ld_cluster_f2(split_smem_u32(sums + (ot + TPB * (sl & 1)) * 256 + e), static_cast<unsigned>(sl >> 1));
      sum.x += v.x;
      sum.y += v.y;
    }
    // e is lane l's accumulator j = e % 8 (n = j / 4, k = j % 4, even): row 16 tile + l / 4 +
    // 8 (k / 2), tokens 8 n + 2 (l % 4) and the next.
    const int l = e >> 3, j = e & 7;
    const int row = 16 * (band * TPB + ot) + (l >> 2) + 8 * ((j & 3) >> 1), tok = 8 * (j >> 2) + 2 * (l & 3);
    if (row < a.rows) {
      if (tok < a.m) lanes_store(y + static_cast<std::size_t>(tok) * a.rows + row, sum.x * unscale);
      if (tok + 1 < a.m) lanes_store(y + static_cast<std::size_t>(tok + 1) * a.rows + row, sum.y * unscale);
    }
  }
  split_cluster_sync();
}

// x's staging rounds in the pair kernel (16 tokens x 4096 columns: 16 vectors a thread, 8 in
// registers at once with 2). In stop 55's probe (bench/proto/pair_s55.cu, clusters of 2, H100)
// one round was 1-2% faster (17.18-17.28 against 17.38-17.65 us); 2 is what the tests and the
// benchmark of this kernel ran (stop 56). nvcc hoists both rounds' loads anyway (128 registers).
inline constexpr int split_pair_x_rounds = 2;

// Wide: the 16-token configuration of split_wide (one block an SM, x staged by plain loads);
// else the layout's (blocks_per_sm blocks an SM, x by cp.async). Parts 2 (with Wide, 16
// tokens, symmetric): split_pair's configuration, two slices a block.
template <int Bits, int NT, bool Asym, class TY, bool Wide = false, int Parts = 1>
__global__ void __launch_bounds__(gemv_split_traits::block_threads, Wide ? 1 : gemv_split_traits::blocks_per_sm)
    gemv_split_kernel(const split_args a, const __half* __restrict__ x, TY* __restrict__ y) {
  static_assert(Parts == 1 || (Parts == 2 && Wide && NT == 2 && !Asym), "gemv_split_kernel: two slices a block only in the wide 16-token symmetric kernel");
  constexpr int W = gemv_split_traits::block_warps, R = gemv_split_traits::ring;
  constexpr int LC = split_load_cols(Bits), TOK = 8 * NT, TPB = W / Parts;  // TPB: row tiles a block
  extern __shared__ uint4 gemv_split_smem[];
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int band = static_cast<int>(blockIdx.x);
  const int half = Parts == 1 ? 0 : warp / TPB;  // the warp's slice of the block's two
  const int slice = Parts == 1 ? static_cast<int>(blockIdx.y) : Parts * static_cast<int>(blockIdx.y) + half;
  const int tile = Parts == 1 ? band * W + warp : band * TPB + warp % TPB;
  const bool active = tile < a.rows_pad / 16;
  const int c0 = slice * a.slice_cols;                           // the slice's first column (of cols_pad)
  const int slen = min(a.slice_cols, a.loads * LC - c0);          // its columns
  const int n_loads = active && (Parts == 1 || slen > 0) ? slen / LC : 0;
  const int l0 = c0 / LC;
  const int xc0 = Parts == 1 ? c0 : Parts * static_cast<int>(blockIdx.y) * a.slice_cols;  // the block's first staged column

  // Shared memory as split_smem lays it out.
  const int xstride = split_x_stride(Parts * a.slice_cols);  // f16 per staged token row
  const split_smem sm = split_smem::of(Bits, NT, a.slice_cols, a.slice_groups, Asym, Parts);
  unsigned char* smem_bytes = reinterpret_cast<unsigned char*>(gemv_split_smem);
  __half* xs = reinterpret_cast<__half*>(smem_bytes);                                                // [TOK][xstride]
  const unsigned ring_q = split_smem_u32(smem_bytes + sm.ring) + static_cast<unsigned>(warp * R * 512 + lane * 16);    // slot s: + 512 s
  const unsigned ring_h = split_smem_u32(smem_bytes + sm.ring_hi) + static_cast<unsigned>(warp * R * 256 + lane * 8);  // slot s: + 256 s
  auto* sp = reinterpret_cast<qstd::uint32_t*>(smem_bytes + sm.scale) + warp * a.slice_groups * 8;  // [slice_groups][8]
  auto* zp = reinterpret_cast<qstd::uint32_t*>(smem_bytes + sm.zero) + warp * a.slice_groups * 8;   // [slice_groups][8]
  float* xsum = reinterpret_cast<float*>(smem_bytes + sm.xsum);                                      // [TOK][slice_groups]

  // The tile's loads of this slice: vector (tile, l0 + i, lane), load i into ring slot i % R,
  // one cp.async group per load (empty past the last), so that "wait until R - 1 groups are
  // in flight" means "load i has landed". A lane reads back only what it copied itself.
  const uint4* qp = a.q + (static_cast<std::size_t>(active ? tile : 0) * a.loads + l0) * 32 + lane;
  const uint2* hp = Bits == 3 ? a.hq + (static_cast<std::size_t>(active ? tile : 0) * a.loads + l0) * 32 + lane : nullptr;
  const auto issue = [&](int i, int slot) {  // slot = i % R
    if (i < n_loads) {
      split_cp_async16(ring_q + 512u * static_cast<unsigned>(slot), qp + static_cast<std::size_t>(i) * 32, 16u);
      if constexpr (Bits == 3) split_cp_async8(ring_h + 256u * static_cast<unsigned>(slot), hp + static_cast<std::size_t>(i) * 32);
    }
    cp_async_commit();
  };

  pdl_launch_dependents();
  // Weights, which no kernel writes: R - 1 loads in flight before the wait for x, and the
  // tile's scales (and zero factors) of the slice's groups: committed with x's copies below,
  // or (Wide) as the oldest group, so that the first load's wait covers them.
  if constexpr (Wide) {
    if (active) split_stage_tile_scales<Asym>(a, tile, c0, sp, zp, lane);
    cp_async_commit();
  }
#pragma unroll
  for (int i = 0; i < R - 1; ++i) issue(i, i);
  if (!Wide && active) split_stage_tile_scales<Asym>(a, tile, c0, sp, zp, lane);
  pdl_wait();
  const int vec_per_row = Parts * a.slice_cols / 8;  // 16-byte vectors of a staged row
  if constexpr (Wide) {
    // x's slice by coherent 16-byte loads through registers (every load of a thread in flight
    // before its stores), zeros past M and past the columns: apart from the cp.async groups, so
    // the loop's first wait is for its own load and not for the R - 1 prefetched ones too, as
    // x's cp.async group would be (they complete in order). On an H100 (8192 x 8192 w4g128s, 16
    // tokens, graph with PDL, one block an SM with rings of 18) the cp.async staging took 22.66 us
    // against 21.42; in HEAD's shape (two blocks an SM) plain loads took 18.10 against 18.79-18.95;
    // bench/results/cuda_gemv_split_wide_h100_20261207_s54.md.
    // The pair kernel stages its two slices' columns in split_pair_x_rounds rounds (fewer registers).
    constexpr int XR = Parts == 1 ? 1 : split_pair_x_rounds;
    constexpr int XV = ((TOK * Parts * gemv_split_traits::max_slice_cols / 8 + 32 * W - 1) / (32 * W) + XR - 1) / XR;  // vectors a thread a round
    const int n_vec = TOK * vec_per_row;
#pragma unroll
    for (int r = 0; r < XR; ++r) {
      uint4 v[XV];  // [XV] 16-byte vectors of x, the thread's
#pragma unroll
      for (int k = 0; k < XV; ++k) {
        const int e = tid + (r * XV + k) * 32 * W, n = e / vec_per_row, col = xc0 + 8 * (e % vec_per_row);
        const bool in = e < n_vec && n < a.m && col < a.cols;  // cols % 8 == 0: a vector is all in or all out
        v[k] = in ? ld_produced(reinterpret_cast<const uint4*>(x + static_cast<std::size_t>(n) * a.cols + col)) : make_uint4(0u, 0u, 0u, 0u);
      }
#pragma unroll
      for (int k = 0; k < XV; ++k) {
        const int e = tid + (r * XV + k) * 32 * W;
        if (e < n_vec) *reinterpret_cast<uint4*>(xs + (e / vec_per_row) * xstride + 8 * (e % vec_per_row)) = v[k];
      }
    }
    cp_async_wait<R - 1>();  // the thread's scale copies (the oldest group); the barriers show them to the warp
    if constexpr (Asym) {
      __syncthreads();  // x's rows came from every thread
      split_sum_x<TOK>(a, xs, xstride, vec_per_row, xsum, warp, W, lane);
    }
  } else {
    // x's slice: warp w copies token row w (NT = 1: rows 0-7 only) by cp.async, zeros past M and past the columns.
    for (int n = warp; n < TOK; n += W) {
      const bool row_in = n < a.m;
      const __half* src = x + static_cast<std::size_t>(row_in ? n : 0) * a.cols;
      const unsigned dst = split_smem_u32(xs + n * xstride);
      for (int v = lane; v < vec_per_row; v += 32) {
        const int col = c0 + 8 * v;
        const bool in = row_in && col < a.cols;  // cols % 8 == 0: a vector is all in or all out
        split_cp_async16(dst + 16u * static_cast<unsigned>(v), in ? src + col : x, in ? 16u : 0u);
      }
    }
    cp_async_commit();
    cp_async_wait<0>();  // x and the scales (and the first loads, issued earlier: groups complete in order)
    if constexpr (Asym) {
      __syncwarp();  // the warp's rows have landed for all its lanes
      split_sum_x<TOK>(a, xs, xstride, vec_per_row, xsum, warp, W, lane);
    }
  }
  __syncthreads();  // every row of x (and its Σx) staged
  float acc[NT][4], part[NT][4];
#pragma unroll
  for (int n = 0; n < NT; ++n)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[n][i] = part[n][i] = 0.0f;
  // The lane's ldmatrix address in its warp's slice of the staged columns.
  const unsigned xs_lane = split_xs_lane<NT>(split_smem_u32(xs), xstride, lane) + (Parts == 1 ? 0u : static_cast<unsigned>(2 * half * a.slice_cols));
  int flush_mask = 0;
  const unsigned flush_in_load = split_flush_in_load<Bits>(a.group_shift, flush_mask);
  const float unscale = static_cast<float>(1 << (Bits - 1));

  for (int i = 0, slot = 0; i < n_loads; ++i, slot = slot + 1 == R ? 0 : slot + 1) {  // slot = i % R
    issue(i + R - 1, slot == 0 ? R - 1 : slot - 1);  // into the slot load i - 1 left (consumed last iteration)
    cp_async_wait<R - 1>();
    qstd::uint32_t q[4], hw[2] = {0u, 0u};
    const unsigned us = static_cast<unsigned>(slot);
    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(q[0]), "=r"(q[1]), "=r"(q[2]), "=r"(q[3]) : "r"(ring_q + 512u * us) : "memory");
    if constexpr (Bits == 3)
      asm volatile("ld.shared.v2.u32 {%0,%1}, [%2];" : "=r"(hw[0]), "=r"(hw[1]) : "r"(ring_h + 256u * us) : "memory");
    const int cb = i * LC;
    split_load_mma<Bits, NT, Asym>(q, hw, cb, slen, flush_in_load, flush_mask, xs_lane + 2u * static_cast<unsigned>(cb), sp, zp, xsum,
                                   a.group_shift, a.slice_groups, g, t, part, acc);
  }
  cp_async_wait<0>();  // no copy outlives the block

  if constexpr (Parts == 1) split_finish<NT>(a, acc, tile, g, t, lane, active, slice, unscale, y);
  else split_pair_finish(a, acc, band, warp, lane, tid, unscale, reinterpret_cast<float*>(smem_bytes + sm.sums), y);
}

// Wide: the kernel of split_wide's configuration, its shared memory raised to `wide_smem`
// (split_wide's, so that no SM holds a second block). Parts 2: split_pair's, a band's
// a.slices / 2 blocks along y (`bands` of 8 row tiles) one cluster.
template <int Bits, int NT, bool Asym, class TY, bool Wide = false, int Parts = 1>
void split_launch(const split_args& a, const __half* x, TY* y, int bands, cudaStream_t stream, bool pdl, int wide_smem = 0) {
  const int smem = std::max(split_smem::of(Bits, NT, a.slice_cols, a.slice_groups, Asym, Parts).bytes, Wide ? wide_smem : 0);
  const auto kernel = gemv_split_kernel<Bits, NT, Asym, TY, Wide, Parts>;
  if (smem > 48 * 1024) QMR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const unsigned blocks_y = static_cast<unsigned>(a.slices / Parts);
  launch_kernel_clusters(pdl, dim3(1u, Parts == 1 ? 1u : blocks_y, 1u), kernel, dim3(static_cast<unsigned>(bands), blocks_y),
                         dim3(gemv_split_traits::block_threads), static_cast<std::size_t>(smem), stream, a, x, y);
}

// Checks a GEMV call's operands; `who` names the entry point in the errors.
template <class TY>
void split_check_call(const device_split& w, const f16* x, const TY* y, int M, const char* who) {
  check(w.data.data() != nullptr, std::string(who) + ": the weight tensor is empty (not uploaded)");
  check(M >= 1, std::string(who) + ": batch " + std::to_string(M) + " is not positive");
  check(x != nullptr && y != nullptr, std::string(who) + ": null activation or output pointer");
  check(reinterpret_cast<std::uintptr_t>(x) % 16 == 0, std::string(who) + ": the activations must be 16-byte aligned");
}

// The kernel arguments of an uploaded split-layout matrix cut into `slices` slices of
// `slice_cols` columns (the workspace is used only with several slices).
inline split_args split_make_args(const device_split& w, int slice_cols, int slices) {
  const split_layout& l = w.l;
  // upload_split sized the workspace for l.slices, and it never shrinks.
  check(slices <= l.slices, "gemv_split: " + std::to_string(slices) + " slices of a " + std::to_string(l.rows) + " x " +
                                std::to_string(l.cols) + " matrix need more workspace than its " + std::to_string(l.slices) + " slices'");
  if (slices > 1) w.ws->fix();
  split_args a{};
  const auto* base = static_cast<const unsigned char*>(w.data.data());
  a.q = reinterpret_cast<const uint4*>(base);
  a.hq = reinterpret_cast<const uint2*>(base + l.hi_offset);
  a.scales = reinterpret_cast<const uint4*>(base + l.scale_offset);
  a.zeros = w.spec.symmetric ? nullptr : reinterpret_cast<const uint4*>(base + l.zero_offset);
  a.work = slices > 1 ? w.ws->sums() : nullptr;
  a.counters = slices > 1 ? w.ws->counters() : nullptr;
  a.rows = static_cast<int>(l.rows);
  a.rows_pad = static_cast<int>(l.rows_pad);
  a.cols = static_cast<int>(l.cols);
  a.loads = static_cast<int>(l.loads);
  a.n_groups = static_cast<int>(l.n_groups);
  a.group_shift = group_shift_of(w.spec);
  a.slice_cols = slice_cols;
  a.slices = slices;
  a.slice_groups = split_slice_groups(a.group_shift, slice_cols);
  return a;
}

// The 9-16-token configuration ("wide"): one block an SM, one wave, slices of up to
// max_slice_cols columns, as few as fill the GPU (8192 x 8192: 32 bands x 4 slices of 2048
// columns, 128 blocks, against the layout's 8 slices of 1024 and 256 blocks, two an SM).
// Measured on an H100 at 16 tokens (graph with PDL): 8192 x 8192 w4g128s 17.1-17.3 us
// against 18.8-19.0, with half the slice sums and x's staging apart from the cp.async
// groups (the kernel's Wide); rings of 3-8 loads within 0-4% of 4 (deeper, slower); the
// same kernel at 62 registers, which by its registers and shared memory left room for a
// second block an SM (and staged x by cp.async), 1.7x slower;
// bench/results/cuda_gemv_split_wide_h100_20261207_s54.md. In `cuda_gemv --split-only` at 16
// tokens (graph) every one of 6 shapes x 5 formats was faster than the layout's configuration,
// by 0.8-25% (8192 x 8192 w4g128s 18.96 -> 17.36 us);
// bench/results/cuda_gemv_split_wide_h100_20261207_s55.md. `slices` 0 where it does not
// apply: a grid over one wave (more bands than SMs, or cols / 2048 slices of too many bands),
// shared memory over the device's limit, or more slices than the workspace holds. `smem`:
// the launch's shared memory, over half an SM's. split_wide_of is the rule for a layout `l`
// of `spec` on a device of `sm_count` SMs with `smem_per_sm` bytes of shared memory an SM
// and `smem_per_block` a block (opt-in), host-only and pure (tests/cuda/test_gemv_split_layout.cu
// checks it without a GPU); split_wide applies it to the current device (two attribute
// reads; upload_split stores its result in the device_split).
inline split_wide_config split_wide_of(const split_layout& l, const quant::format_spec& spec, int sm_count, int smem_per_sm,
                                       int smem_per_block) {
  split_wide_config c;
  if (sm_count < 1 || l.bands < 1 || l.bands > sm_count) return c;
  const split_slicing cut = split_slicing::of(l.cols_pad, sm_count / l.bands);  // one block an SM
  const int slices = cut.slices, slice_cols = cut.slice_cols;
  if (static_cast<std::int64_t>(slices) * l.bands > sm_count || slices > l.slices) return c;
  const int need = split_smem::of(spec.bits, 2, slice_cols, split_slice_groups(group_shift_of(spec), slice_cols), !spec.symmetric).bytes;
  // Over half an SM's shared memory (less the 1 KB the driver reserves a block), so that the
  // next call's block of this kernel cannot sit beside this one whatever the register count
  // (a smaller kernel's block still can).
  const int smem = std::max(need, smem_per_sm / 2 + 1024);
  if (smem > smem_per_block) return c;
  c.slices = slices;
  c.slice_cols = slice_cols;
  c.smem = smem;
  return c;
}
inline split_wide_config split_wide(const device_split& w) {
  int device = 0, per_sm = 0, per_block = 0;
  QMR_CUDA_CHECK(cudaGetDevice(&device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return split_wide_of(w.l, w.spec, w.sm_count, per_sm, per_block);
}

// The pair configuration (9-16 tokens, symmetric codes): where split_wide has 2 slices (tall
// matrices: 14336 x 4096 on an H100), a block of 16 warps holds both of a band's slices for 8
// row tiles (128 rows, x staged for both: 128 KB at 2048 columns) and adds them in shared
// memory (split_pair_finish): no workspace, counter or fence, the same block count as
// split_wide's. On an H100 at 16 tokens in a graph with PDL: 14336 x 4096 w4g128s 17.37-17.54
// -> 16.50-16.51 us, w2g64s -5.8%, w8g128s -3.6%; the shapes it does not take within 0.7%;
// bench/results/cuda_gemv_split_pair_h100_20261207_s56.md.
// With 4 slices a band's two blocks would be one thread-block cluster, the sums read through
// DSMEM: the kernel, launch and occupancy check do that, bit for bit the wide kernel's output
// on 8192 x 8192 and 6912 x 4096, but it was not faster (8192 x 8192: w4g128s +0.9%, w2g64s
// +0.7%, w8g128s -1.6%): the wide kernel's 2 us tail is its slowest slices, not the L2 round
// trips (the pair probe without a tail: 15.4-15.5 us). So split_pair_max_clusters is 1.
// `bands` 0 where it does not apply: asymmetric codes, no wide configuration or one of other
// than 2 or (with split_pair_max_clusters 2) 4 slices, more blocks than SMs, or shared memory over
// `smem_per_block`. `clusters`: blocks a cluster; for 2, split_pair checks that a wave holds
// `bands` clusters on the current device (cudaOccupancyMaxActiveClusters). upload_split
// stores split_pair's result.
inline constexpr int split_pair_max_clusters = 1;
inline split_pair_config split_pair_of(const split_layout& l, const quant::format_spec& spec, const split_wide_config& wide, int sm_count,
                                       int smem_per_block) {
  constexpr int TPB = gemv_split_traits::block_warps / 2;  // row tiles a block
  split_pair_config c;
  if (!spec.symmetric || (wide.slices != 2 && wide.slices != 4) || wide.slices / 2 > split_pair_max_clusters) return c;
  const std::int64_t bands = (l.row_tiles + TPB - 1) / TPB;
  if (bands * (wide.slices / 2) > sm_count) return c;
  const int need = split_smem::of(spec.bits, 2, wide.slice_cols, split_slice_groups(group_shift_of(spec), wide.slice_cols), false, 2).bytes;
  const int smem = std::max(need, wide.smem);  // wide.smem: over half an SM's, as split_wide_of says why
  if (smem > smem_per_block) return c;
  c.bands = static_cast<int>(bands);
  c.clusters = wide.slices / 2;
  c.smem = smem;
  return c;
}
// Clusters of 2 of the Bits-bit pair kernel with `smem` bytes that the current device holds at once.
template <int Bits>
int split_pair_resident(int bands, int smem) {
  const auto kernel = gemv_split_kernel<Bits, 2, false, f16, true, 2>;
  // Only ever raised here: a graph captured earlier may hold a launch of this kernel with more.
  cudaFuncAttributes fa{};
  QMR_CUDA_CHECK(cudaFuncGetAttributes(&fa, kernel));
  if (fa.maxDynamicSharedSizeBytes < smem) QMR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  cudaLaunchAttribute attributes[2]{};
  const cudaLaunchConfig_t config = launch_config(false, dim3(1u, 2u, 1u), dim3(static_cast<unsigned>(bands), 2u),
                                                  dim3(gemv_split_traits::block_threads), static_cast<std::size_t>(smem), nullptr, attributes);
  int n = 0;
  QMR_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&n, kernel, &config));
  return n;
}
inline split_pair_config split_pair(const device_split& w, const split_wide_config& wide) {
  if (wide.slices == 0) return {};
  int device = 0, per_block = 0, clusters_ok = 0;
  QMR_CUDA_CHECK(cudaGetDevice(&device));
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const split_pair_config c = split_pair_of(w.l, w.spec, wide, w.sm_count, per_block);
  if (c.clusters != 2) return c;
  QMR_CUDA_CHECK(cudaDeviceGetAttribute(&clusters_ok, cudaDevAttrClusterLaunch, device));
  if (clusters_ok == 0) return {};
  int resident = 0;
  switch (w.spec.bits) {
    case 2: resident = split_pair_resident<2>(c.bands, c.smem); break;
    case 3: resident = split_pair_resident<3>(c.bands, c.smem); break;
    case 4: resident = split_pair_resident<4>(c.bands, c.smem); break;
    case 8: resident = split_pair_resident<8>(c.bands, c.smem); break;
    default: return {};
  }
  return resident >= c.bands ? c : split_pair_config{};
}

// Runs the batch in chunks of 16 tokens: for each, launch.template operator()<Bits, NT, Asym>(a,
// x, y) with the chunk's operands. The one place where the bit width, the 8- or 16-token
// tile and the zero points become template arguments, over the closed set the layout has.
template <class TY, class Launch>
void split_run_chunks(split_args a, const f16* x, TY* y, int M, int bits, const char* who, const Launch& launch) {
  const auto* xh = reinterpret_cast<const __half*>(x);
  for (int m0 = 0; m0 < M; m0 += gemv_split_traits::max_batch) {
    a.m = std::min(gemv_split_traits::max_batch, M - m0);
    const __half* xc = xh + static_cast<std::int64_t>(m0) * a.cols;
    TY* yc = y + static_cast<std::int64_t>(m0) * a.rows;
    const auto tile = [&]<int Bits>() {
      const bool two = a.m > 8, asym = a.zeros != nullptr;
      if (two) {
        if (asym) launch.template operator()<Bits, 2, true>(a, xc, yc);
        else launch.template operator()<Bits, 2, false>(a, xc, yc);
      } else {
        if (asym) launch.template operator()<Bits, 1, true>(a, xc, yc);
        else launch.template operator()<Bits, 1, false>(a, xc, yc);
      }
    };
    switch (bits) {
      case 2: tile.template operator()<2>(); break;
      case 3: tile.template operator()<3>(); break;
      case 4: tile.template operator()<4>(); break;
      case 8: tile.template operator()<8>(); break;
      default: throw error(std::string(who) + ": " + std::to_string(bits) + "-bit codes have no split layout");
    }
  }
}
#endif  // __CUDACC__

}  // namespace detail

#ifdef __CUDACC__
// y[M, rows] = x[M, cols] · Wᵀ on `stream` with the split kernel: x f16, 16-byte
// aligned; y f16 or f32; any M >= 1 (chunks of 16 tokens, one launch each). f32
// accumulation (the decode is exact; products are f16 x f16 into f32).
template <class TY>
void gemv_split(const device_split& w, const f16* x, TY* y, int M, cudaStream_t stream, bool pdl = false) {
  static_assert(qstd::is_same_v<TY, f16> || qstd::is_same_v<TY, float>, "gemv_split: the output is f16 or float");
  detail::split_check_call(w, x, y, M, "gemv_split");
  const split_layout& l = w.l;
  const detail::split_wide_config wide = M > 8 ? w.wide : detail::split_wide_config{};
  const detail::split_args wide_args = wide.slices > 0 ? detail::split_make_args(w, wide.slice_cols, wide.slices) : detail::split_args{};
  const detail::split_pair_config& pair = w.pair;
  detail::split_run_chunks(detail::split_make_args(w, l.slice_cols, l.slices), x, y, M, w.spec.bits, "gemv_split",
                           [&]<int Bits, int NT, bool Asym>(const detail::split_args& a, const __half* xc, TY* yc) {
                             if constexpr (NT == 2) {
                               if (wide.slices > 0) {
                                 detail::split_args aw = wide_args;  // the chunk's tokens below
                                 aw.m = a.m;
                                 if constexpr (!Asym) {
                                   if (pair.bands > 0) {
                                     detail::split_launch<Bits, NT, Asym, TY, true, 2>(aw, xc, yc, pair.bands, stream, pdl, pair.smem);
                                     return;
                                   }
                                 }
                                 detail::split_launch<Bits, NT, Asym, TY, true>(aw, xc, yc, l.bands, stream, pdl, wide.smem);
                                 return;
                               }
                             }
                             detail::split_launch<Bits, NT, Asym>(a, xc, yc, l.bands, stream, pdl);
                           });
}
#endif  // __CUDACC__

}  // namespace qmr::cuda
