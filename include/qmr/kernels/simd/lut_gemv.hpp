// The table-lookup GEMV (y = W·x, one row of f32 activations) for 2- to 6-bit codes over a load-time repack of W into 16-row tiles (lut_matrix), f32 activations and accumulation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "../../core/aligned_buffer.hpp"
#include "../../core/error.hpp"
#include "../../core/half.hpp"
#include "../../config.hpp"
#include "../../core/thread_pool.hpp"
#include "../../quant/format.hpp"
#include "../../quant/pack.hpp"
#include "../../quant/qtensor.hpp"
#include "matmul.hpp"  // QMR_LAMBDA_INLINE
#if XSIMD_WITH_AVX512BW
#include <immintrin.h>
#endif

// The table GEMV's loop over a group's blocks, unrolled twice: on the Emerald Rapids
// VM from L2 (one core, 1024 x 4096) every 2-, 3- and 4-bit g32-g128 format ran at
// 15-16 GB/s unrolled 1, 2 or 4 times, but w4g128 and w3g128 fully unrolled (16 and
// 12 blocks) at 10.7 and 12.0, and w2g128 unrolled 8 times at 13.4.
#if defined(__CUDACC__)
#define QMR_LUT_UNROLL
#elif defined(__clang__)
#define QMR_LUT_UNROLL _Pragma("clang loop unroll_count(2)")
#else
#define QMR_LUT_UNROLL _Pragma("GCC unroll 2")
#endif

namespace qmr::simd {

// ---------------------------------------------------------------------------
// Why a table. The f32 GEMVs of matmul.hpp spend per weight a decode (a shift and
// a vpermps on AVX-512) and an FMA with its activation; at 2 and 3 bits that is
// 2.25-3.1 vector operations per 16 codes, and on a 2-core VM they run at half of
// the DRAM read bandwidth. Here the 16 f32 lanes of a vector are 16 output rows
// instead of 16 columns. One vpermps then looks up, for 16 rows at once, a 4-bit
// index of weight bits in a 16-entry table of activation sums built once per call.
// A code of B bits is split into its low L bits (L = 2 for B = 2, 3; else 4) and
// its high H = B - L bits, each indexing tables of its own:
//   2-bit fields, two columns a, b an index:   T[i] = w·((i & 3)·x_a + (i >> 2)·x_b)
//   4-bit fields, one column an index:         T[i] = w·i·x_a
//   1-bit fields, four columns a..d an index:  T[i] = w·(i₀·x_a + i₁·x_b + i₂·x_c + i₃·x_d)
// with w = 1 for the low field and 2^L for the high one. So every 64 bits of
// weights cost one vpermps and one vaddps (plus half a shift) whatever the width:
// 1.8x fewer operations at 2 bits, 1.7x at 3 and 1.3x at 5 than the other GEMVs.
// The group's scale and zero point apply per 16 rows afterwards:
//   y_r = Σ_g s_rg·(Σ_{c∈g} code_rc·x_c) − Σ_g s_rg·z_rg·(Σ_{c∈g} x_c).
// Numerics: each table entry is the f32 sum of up to four exact-integer multiples
// of activations (code·x rounded once, as the reference rounds scale·code·x), so
// the result equals the reference up to summation order, as the other GEMVs do.
//
// The repacked layout (lut_matrix; the on-disk format does not change):
//   tiles  = ceil(rows / 16); rows past `rows` are zero codes and zero scales
//   codes  u8 [chunks][tiles][blocks of the chunk][64], + 64 bytes of padding
//          a 64-byte block is 16 dwords, dword l belonging to row 16·tile + l and
//          holding 8 four-bit table indices (nibble q: bits [4q, 4q + 4));
//          nibble q of block b meets table 8b + q of its chunk. Every 32 columns
//          are B blocks: first the low fields (L = 2: two blocks of 16 columns,
//          bits [2i, 2i + 2) column i; L = 4: four blocks of 8 columns, bits
//          [4i, 4i + 4) column i), then the high ones (H = 1: one block of 32
//          columns, bit i column i; H = 2: two blocks of 16 columns as for L = 2).
//          At 2 and 4 bits a block's dword is 4 bytes of the row's bitstream.
//   scales f16 [chunks][tiles][groups of the chunk][16]   (per-channel: [tiles][16])
//   zeros  u8  [chunks][tiles][groups of the chunk][2·B]  asymmetric only: the
//          16 rows' zero points packed as the on-disk zeros are (bits
//          [B·l, B·l + B) row l), + 16 bytes of padding
//          (chunk-major as the codes, so that a thread streams them beside its
//          codes: tile-major, each tile's scales of a chunk were a line 2 KB from
//          the last, a DRAM miss per tile and chunk that no prefetcher follows)
// Columns come in chunks of lut_chunk_cols(B) (the tables of one chunk stay in L1
// while every tile of a thread passes), a chunk spans whole groups, and
// per-channel rows are padded with zero codes to a multiple of 32 columns.
// Storage equals the format's (tiles round rows up to 16).
// ---------------------------------------------------------------------------

// Output rows per tile: one per f32 lane of a 512-bit vector.
inline constexpr std::int64_t lut_tile_rows = 16;
// Bytes per block: 16 rows × one dword of eight 4-bit table indices.
inline constexpr std::int64_t lut_block_bytes = 64;
// Columns per unit: B whole blocks (32 columns × B bits a row = B dwords).
inline constexpr std::int64_t lut_unit_cols = 32;

// Whether a width has a table GEMV (8-bit codes decode faster than two lookups).
constexpr bool lut_supported_bits(int bits) { return bits >= 2 && bits <= 6; }
// The low field's width (the high one's is bits - it).
constexpr int lut_low_bits(int bits) { return bits <= 3 ? 2 : 4; }
// Columns per chunk: tables (8·B of 64 bytes per 32 columns) of 16 KB at 2 bits, 24
// KB at 3 and 6, 16 and 20 at 4 and 5, in L1 (48 KB on the Xeon VMs, 32 KB on older
// cores) beside the streamed codes. A multiple of every group size.
constexpr std::int64_t lut_chunk_cols(int bits) { return bits <= 3 ? 512 : 256; }
// Tables per chunk, at most (3- and 6-bit: 384).
inline constexpr std::int64_t lut_max_chunk_tables = 384;
static_assert(lut_chunk_cols(3) / lut_unit_cols * 8 * 3 <= lut_max_chunk_tables &&
              lut_chunk_cols(6) / lut_unit_cols * 8 * 6 <= lut_max_chunk_tables);

// W repacked for lut_gemv (layout above). Build it once per weight, at load time.
class lut_matrix {
 public:
  lut_matrix() = default;

  // The repack of a 2- to 6-bit W; other widths are an error naming them.
  explicit lut_matrix(const quant::qtensor_view& w) : spec_(w.spec), rows_(w.rows()), cols_(w.cols()) {
    check(lut_supported_bits(spec_.bits),
          "lut_matrix: the table GEMV takes 2- to 6-bit codes, not " + spec_.str());
    check(rows_ > 0 && cols_ > 0, "lut_matrix: empty weight");
    const int bits = spec_.bits, low = lut_low_bits(bits);
    tiles_ = (rows_ + lut_tile_rows - 1) / lut_tile_rows;
    group_ = w.layout.group;
    n_groups_ = w.layout.n_groups;
    padded_cols_ = (cols_ + lut_unit_cols - 1) / lut_unit_cols * lut_unit_cols;
    chunks_ = (padded_cols_ + lut_chunk_cols(bits) - 1) / lut_chunk_cols(bits);
    chunk_groups_ = spec_.group == quant::per_channel ? 1 : lut_chunk_cols(bits) / spec_.group;
    codes_ = aligned_buffer<std::uint8_t>(static_cast<std::size_t>(chunks_ * tiles_ * full_chunk_blocks() *
                                                                   lut_block_bytes + lut_block_bytes));
    scales_ = aligned_buffer<f16>(static_cast<std::size_t>(tiles_ * n_groups_ * lut_tile_rows));
    if (!spec_.symmetric) zeros_ = aligned_buffer<std::uint8_t>(static_cast<std::size_t>(tiles_ * n_groups_ * 2 * bits + 16));
    const std::int64_t unit_bytes = lut_unit_cols * bits / 8;
    for (std::int64_t r = 0; r < rows_; ++r) {
      // A unit of the row at a time: its bytes (zero past the row's end) become the
      // row's dwords in the unit's B blocks.
      const std::uint8_t* row = w.codes + r * w.layout.code_row_bytes;
      for (std::int64_t c = 0; c < padded_cols_; c += lut_unit_cols) {
        std::uint8_t bytes[lut_unit_cols * 6 / 8] = {};  // the unit's codes, 32 of at most 6 bits
        const std::int64_t have = std::min(unit_bytes, w.layout.code_row_bytes - c * bits / 8);
        std::memcpy(bytes, row + c * bits / 8, static_cast<std::size_t>(have));
        std::uint32_t dwords[6] = {};  // [bits]
        for (int i = 0; i < lut_unit_cols; ++i) {
          const std::uint32_t v = quant::get_code(bytes, i, bits);
          const field lo = low_field(i, low), hi = high_field(i, bits, low);
          dwords[lo.block] |= (v & ((1u << low) - 1)) << lo.bit;
          if (bits > low) dwords[hi.block] |= (v >> low) << hi.bit;
        }
        std::uint8_t* dst = codes_.data() + unit_offset(r, c);
        for (int b = 0; b < bits; ++b) std::memcpy(dst + b * lut_block_bytes, &dwords[b], 4);
      }
      for (std::int64_t g = 0; g < n_groups_; ++g) {
        scales_[static_cast<std::size_t>(group_slot(r / lut_tile_rows, g) * lut_tile_rows + r % lut_tile_rows)] =
            w.scale(r, g);
        if (!spec_.symmetric) set_zero(r, g, w.zero(r, g));
      }
    }
  }

  const quant::format_spec& spec() const { return spec_; }
  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  std::int64_t tiles() const { return tiles_; }
  std::int64_t chunks() const { return chunks_; }
  std::int64_t padded_cols() const { return padded_cols_; }
  std::int64_t group() const { return group_; }  // columns per group (cols when per-channel)
  std::int64_t n_groups() const { return n_groups_; }
  // The format's storage of W, as the qtensor holds it: what one GEMV must read.
  std::uint64_t format_bytes() const {
    return static_cast<std::uint64_t>(quant::qtensor_layout::of(spec_, rows_, cols_).total_bytes());
  }

  // Blocks of a full chunk, and of chunk c (the last one may be shorter).
  std::int64_t full_chunk_blocks() const {
    return std::min(lut_chunk_cols(spec_.bits), padded_cols_) / lut_unit_cols * spec_.bits;
  }
  std::int64_t chunk_blocks(std::int64_t c) const {
    return std::min(lut_chunk_cols(spec_.bits), padded_cols_ - c * lut_chunk_cols(spec_.bits)) / lut_unit_cols *
           spec_.bits;
  }
  // The first block of tile t in chunk c: chunks before c are full.
  const std::uint8_t* chunk_tile(std::int64_t c, std::int64_t t) const {
    return codes_.data() + (c * tiles_ * full_chunk_blocks() + t * chunk_blocks(c)) * lut_block_bytes;
  }
  // The 16 scales (zero points) of tile t and group g; those of the groups after g
  // in g's chunk follow.
  const f16* scales_at(std::int64_t t, std::int64_t g) const {
    return scales_.data() + group_slot(t, g) * lut_tile_rows;
  }
  const std::uint8_t* zeros_at(std::int64_t t, std::int64_t g) const {
    return spec_.symmetric ? nullptr : zeros_.data() + group_slot(t, g) * 2 * spec_.bits;
  }

  // Where a field of column i (0-31) of a unit lives: the unit's block and the bit
  // in its dword (fields never straddle a byte: widths 1, 2 and 4 at their multiples).
  struct field {
    int block;
    int bit;
  };
  static constexpr field low_field(int i, int low) {
    return low == 2 ? field{i / 16, 2 * (i % 16)} : field{i / 8, 4 * (i % 8)};
  }
  static constexpr field high_field(int i, int bits, int low) {
    return bits - low == 1 ? field{low, i} : field{low + i / 16, 2 * (i % 16)};
  }

  // Element readers (the scalar path and the tests): the code, scale and zero
  // point of W(r, c) as the source qtensor holds them.
  std::uint32_t code(std::int64_t r, std::int64_t c) const {
    const int bits = spec_.bits, low = lut_low_bits(bits);
    const std::int64_t i = c % lut_unit_cols;
    const std::uint8_t* unit = codes_.data() + unit_offset(r, c - i);
    const auto read = [&](field f, int width) {
      return (unit[f.block * lut_block_bytes + f.bit / 8] >> (f.bit % 8)) & ((1u << width) - 1);
    };
    std::uint32_t v = read(low_field(static_cast<int>(i), low), low);
    if (bits > low) v |= read(high_field(static_cast<int>(i), bits, low), bits - low) << low;
    return v;
  }
  f16 scale(std::int64_t r, std::int64_t g) const { return scales_at(r / lut_tile_rows, g)[r % lut_tile_rows]; }
  std::uint32_t zero(std::int64_t r, std::int64_t g) const {
    if (spec_.symmetric) return 1u << (spec_.bits - 1);
    return quant::get_code(zeros_at(r / lut_tile_rows, g), r % lut_tile_rows, spec_.bits);
  }

 private:
  // The offset of row r's dword in the first block of the unit starting at column c.
  std::int64_t unit_offset(std::int64_t r, std::int64_t c) const {
    const int bits = spec_.bits;
    const std::int64_t chunk = c / lut_chunk_cols(bits), cc = c % lut_chunk_cols(bits);
    return (chunk_tile(chunk, r / lut_tile_rows) - codes_.data()) + cc / lut_unit_cols * bits * lut_block_bytes +
           4 * (r % lut_tile_rows);
  }
  // Row r's zero point of group g, packed as the on-disk zeros are (the buffer starts zeroed).
  void set_zero(std::int64_t r, std::int64_t g, std::uint32_t z) {
    quant::put_code(zeros_.data() + group_slot(r / lut_tile_rows, g) * 2 * spec_.bits, r % lut_tile_rows, spec_.bits, z);
  }
  // Where tile t's parameters of group g sit among [chunks][tiles][groups of the chunk]
  // (chunks before g's are full), in units of one tile's group.
  std::int64_t group_slot(std::int64_t t, std::int64_t g) const {
    const std::int64_t c = g / chunk_groups_, in_chunk = std::min(chunk_groups_, n_groups_ - c * chunk_groups_);
    return c * tiles_ * chunk_groups_ + t * in_chunk + g % chunk_groups_;
  }

  quant::format_spec spec_{};
  std::int64_t rows_ = 0, cols_ = 0, tiles_ = 0, group_ = 0, n_groups_ = 0, padded_cols_ = 0, chunks_ = 0;
  std::int64_t chunk_groups_ = 1;  // groups per full chunk (per-channel: the row's one group)
  aligned_buffer<std::uint8_t> codes_;  // [chunks][tiles][chunk blocks][64] + 64
  aligned_buffer<f16> scales_;          // [chunks][tiles][groups of the chunk][16]
  aligned_buffer<std::uint8_t> zeros_;  // [chunks][tiles][groups of the chunk][2·bits] + 16; asymmetric only
};

namespace detail {

// Plain scalar rows [r0, r1) of y = W·x over the repacked layout into y[r1 - r0],
// for ISAs without the table kernel: W's values read back one by one, summed in
// column order.
inline void lut_gemv_scalar(const lut_matrix& w, const float* x, float* y, std::int64_t r0, std::int64_t r1) {
  for (std::int64_t r = r0; r < r1; ++r) {
    float sum = 0.0f;
    for (std::int64_t c = 0; c < w.cols(); ++c) {
      const std::int64_t g = c / w.group();
      sum += quant::dequant_value(w.scale(r, g), w.code(r, c), w.zero(r, g)) * x[c];
    }
    y[r - r0] = sum;
  }
}

#if XSIMD_WITH_AVX512BW
QMR_INTRINSIC_WARNINGS_OFF
// The tables of chunk [c0, c0 + cc) (columns past k read as zero activations)
// into tab[tables][16], in the order the chunk's blocks meet them: per 32 columns,
// the low fields' tables, then the high fields' (times 2^L, exact in f32).
template <int Bits>
inline void lut_build_tables(const float* x, std::int64_t k, std::int64_t c0, std::int64_t cc, float* tab) {
  constexpr int low = lut_low_bits(Bits), high = Bits - low;
  const auto at = [&](std::int64_t c) { return c0 + c < k ? x[c0 + c] : 0.0f; };
  // An entry's index i as its two 2-bit fields, its four bits, and itself.
  const __m512 lo = _mm512_setr_ps(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
  const __m512 hi = _mm512_setr_ps(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512 b0 = _mm512_setr_ps(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1);
  const __m512 b1 = _mm512_setr_ps(0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1);
  const __m512 b2 = _mm512_setr_ps(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
  const __m512 b3 = _mm512_setr_ps(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const auto pair = [&](std::int64_t c, __m512 w) {  // columns c, c + 1
    const __m512 t = _mm512_mul_ps(_mm512_mul_ps(lo, w), _mm512_set1_ps(at(c)));
    _mm512_store_ps(tab, _mm512_fmadd_ps(_mm512_mul_ps(hi, w), _mm512_set1_ps(at(c + 1)), t));
    tab += 16;
  };
  const auto quad = [&](std::int64_t c, __m512 w) {  // columns c .. c + 3
    __m512 t = _mm512_mul_ps(_mm512_mul_ps(b0, w), _mm512_set1_ps(at(c)));
    t = _mm512_fmadd_ps(_mm512_mul_ps(b1, w), _mm512_set1_ps(at(c + 1)), t);
    t = _mm512_fmadd_ps(_mm512_mul_ps(b2, w), _mm512_set1_ps(at(c + 2)), t);
    _mm512_store_ps(tab, _mm512_fmadd_ps(_mm512_mul_ps(b3, w), _mm512_set1_ps(at(c + 3)), t));
    tab += 16;
  };
  const __m512 one = _mm512_set1_ps(1.0f), high_weight = _mm512_set1_ps(static_cast<float>(1 << low));
  for (std::int64_t u = 0; u < cc; u += lut_unit_cols) {
    if constexpr (low == 2) {
      for (std::int64_t c = u; c < u + lut_unit_cols; c += 2) pair(c, one);
    } else {
      for (std::int64_t c = u; c < u + lut_unit_cols; ++c, tab += 16)
        _mm512_store_ps(tab, _mm512_mul_ps(iota, _mm512_set1_ps(at(c))));
    }
    if constexpr (high == 1)
      for (std::int64_t c = u; c < u + lut_unit_cols; c += 4) quad(c, high_weight);
    if constexpr (high == 2)
      for (std::int64_t c = u; c < u + lut_unit_cols; c += 2) pair(c, high_weight);
  }
}

// The 16 zero points of one tile and group as f32: 2·Bits bytes, lane l's at
// bits [Bits·l, Bits·l + Bits). Each dword lane gathers the two bytes its bits
// start in (one byte shuffle of the 16 bytes broadcast to every 128-bit lane),
// shifts and masks them.
template <int Bits>
inline __m512 lut_zero_points(const std::uint8_t* z) {
  // 16 bytes: the buffer has 16 bytes of padding past its end.
  const __m512i bytes = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(z)));
  alignas(64) static constexpr auto control = [] {
    struct table {
      std::int8_t shuffle[64];
      std::int32_t shift[16];
    } t{};
    for (int l = 0; l < 16; ++l) {
      const int bit = Bits * l;
      // Byte bit/8 and the one after it into bytes 0-1 of dword l; bytes 2-3 zero.
      t.shuffle[4 * l + 0] = static_cast<std::int8_t>(bit / 8);
      t.shuffle[4 * l + 1] = static_cast<std::int8_t>(bit / 8 + 1);
      t.shuffle[4 * l + 2] = static_cast<std::int8_t>(-128);
      t.shuffle[4 * l + 3] = static_cast<std::int8_t>(-128);
      t.shift[l] = bit % 8;
    }
    return t;
  }();
  const __m512i v = _mm512_shuffle_epi8(bytes, _mm512_load_si512(control.shuffle));
  const __m512i codes = _mm512_and_si512(_mm512_srlv_epi32(v, _mm512_load_si512(control.shift)),
                                         _mm512_set1_epi32((1 << Bits) - 1));
  return _mm512_cvtepi32_ps(codes);
}

// Rows [16·t0, 16·t1) of y = W·x, for one format (Group 0: per-channel), into
// y[16·(t1 - t0)] (the rows past W's last one neither read nor written).
template <int Bits, int Group, bool Symmetric>
void lut_gemv_tiles(const lut_matrix& w, const float* x, float* y, std::int64_t t0, std::int64_t t1) {
  constexpr std::int64_t chunk_cols = lut_chunk_cols(Bits);
  // Blocks per group (32 bits of each row a block); per-channel: a chunk's blocks.
  constexpr std::int64_t group_blocks = Group * Bits / 32;
  // Independent sums per group: an add's latency (4 cycles) over the 1.25-cycle
  // throughput of a lookup and its add.
  constexpr int chains = 4;
  // Prefetch distance into every cache level, as the lane-major GEMV's (matmul.hpp).
  constexpr std::uintptr_t prefetch_bytes = 4096;
  alignas(64) float tab[lut_max_chunk_tables * 16];  // [tables of one chunk][16], 24 KB at most
  const std::int64_t k = w.cols(), n = w.rows();
  float x_total = 0.0f;  // per-channel: the activations' sum over the row, for the zero point
  for (std::int64_t ch = 0; ch < w.chunks(); ++ch) {
    const std::int64_t c0 = ch * chunk_cols;
    const std::int64_t cc = std::min(chunk_cols, w.padded_cols() - c0);
    lut_build_tables<Bits>(x, k, c0, cc, tab);
    const std::int64_t blocks = w.chunk_blocks(ch);
    // Groups of this chunk and their activation sums (column order).
    constexpr std::int64_t max_chunk_groups = chunk_cols / 32;
    float gsum[max_chunk_groups];  // [chunk_groups]
    const std::int64_t g0 = Group == 0 ? 0 : c0 / Group;
    const std::int64_t chunk_groups = Group == 0 ? 1 : cc / Group;
    for (std::int64_t g = 0; g < chunk_groups; ++g) {
      const std::int64_t a = c0 + g * (Group == 0 ? cc : Group), b = std::min(k, a + (Group == 0 ? cc : Group));
      float s = 0.0f;
      for (std::int64_t c = a; c < b; ++c) s += x[c];
      gsum[g] = s;
    }
    if constexpr (Group == 0) x_total += gsum[0];
    const bool last_chunk = ch + 1 == w.chunks();
    for (std::int64_t t = t0; t < t1; ++t) {
      const std::int64_t valid = std::min<std::int64_t>(lut_tile_rows, n - t * lut_tile_rows);
      const __mmask16 rows_mask = static_cast<__mmask16>((1u << valid) - 1u);
      float* yt = y + (t - t0) * lut_tile_rows;
      __m512 yacc = ch == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(rows_mask, yt);
      const std::uint8_t* p = w.chunk_tile(ch, t);
      const f16* scales = w.scales_at(t, g0);         // [chunk_groups][16]
      const std::uint8_t* zeros = w.zeros_at(t, g0);  // [chunk_groups][2·Bits]
      const float* tb = tab;
      // One segment: the blocks of a group (or, per-channel, of the chunk).
      const auto segment = [&](std::int64_t seg_blocks, std::int64_t g) QMR_LAMBDA_INLINE {
        __m512 acc[chains];
        for (auto& a : acc) a = _mm512_setzero_ps();
        const auto block = [&]() QMR_LAMBDA_INLINE {
          prefetch_ahead(p, prefetch_bytes);  // prefetcht0; past the codes' end near a row's last blocks
          // Byte e of every dword is the low byte of the load at offset e: its low
          // nibble indexes table 2e, the high one (shifted down) table 2e + 1;
          // vpermps reads an index's low 4 bits only.
          for (int e = 0; e < 4; ++e) {
            const __m512i v = _mm512_loadu_si512(p + e);
            acc[(2 * e) % chains] =
                _mm512_add_ps(acc[(2 * e) % chains], _mm512_permutexvar_ps(v, _mm512_load_ps(tb + std::ptrdiff_t{32} * e)));
            acc[(2 * e + 1) % chains] = _mm512_add_ps(
                acc[(2 * e + 1) % chains],
                _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), _mm512_load_ps(tb + std::ptrdiff_t{32} * e + 16)));
          }
          p += lut_block_bytes;
          tb += std::ptrdiff_t{8} * 16;  // 8 tables of 16 floats a block
        };
        if constexpr (Group != 0) {
          QMR_LUT_UNROLL
          for (std::int64_t b = 0; b < group_blocks; ++b) block();
        } else {
          for (std::int64_t b = 0; b < seg_blocks; ++b) block();
        }
        const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        const __m512 s =
            _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + (g - g0) * lut_tile_rows)));
        yacc = _mm512_fmadd_ps(s, sum, yacc);
        // The zero point, once per group: where the group ends.
        if (Group != 0 || last_chunk) {
          const __m512 z = Symmetric ? _mm512_set1_ps(static_cast<float>(1 << (Bits - 1)))
                                     : lut_zero_points<Bits>(zeros + (g - g0) * 2 * Bits);
          const float xs = Group == 0 ? x_total : gsum[g - g0];
          yacc = _mm512_fnmadd_ps(_mm512_mul_ps(s, z), _mm512_set1_ps(xs), yacc);
        }
      };
      if constexpr (Group == 0) {
        segment(blocks, 0);
      } else {
        for (std::int64_t g = g0; g < g0 + chunk_groups; ++g) segment(group_blocks, g);
      }
      _mm512_mask_storeu_ps(yt, rows_mask, yacc);
    }
  }
}

// Rows [16·t, 16·t + 16) and columns [k0, k0 + kl) of W dequantized into a k-major
// GEMM panel: column k0 + c's 16 values at out[c·stride, c·stride + 16). k0 is a
// multiple of 32 and [k0, k0 + kl) lies in one chunk. Per column, 16 rows at once:
// each field a shift and a mask of its block's dwords, then (code - z)·s as the
// reference dequantizes (exact code - z, one rounding).
template <int Bits, int Group, bool Symmetric>
void lut_dequant_tile(const lut_matrix& w, std::int64_t t, std::int64_t k0, std::int64_t kl, float* out,
                      std::int64_t stride) {
  constexpr int low = lut_low_bits(Bits), high = Bits - low;
  constexpr std::int64_t chunk_cols = lut_chunk_cols(Bits);
  const __m512i low_mask = _mm512_set1_epi32((1 << low) - 1), high_mask = _mm512_set1_epi32((1 << high) - 1);
  std::int64_t g_at = -1;  // the group whose scale and zero point s, z hold
  __m512 s = _mm512_setzero_ps(), z = _mm512_setzero_ps();
  for (std::int64_t u0 = 0; u0 < kl; u0 += lut_unit_cols) {
    const std::int64_t c = k0 + u0;
    const std::uint8_t* p = w.chunk_tile(c / chunk_cols, t) + (c % chunk_cols) / lut_unit_cols * Bits * lut_block_bytes;
    __m512i blk[Bits];  // [Bits] the unit's blocks: 16 row dwords each
    for (int b = 0; b < Bits; ++b) blk[b] = _mm512_loadu_si512(p + b * lut_block_bytes);
    const int n_i = static_cast<int>(std::min<std::int64_t>(lut_unit_cols, kl - u0));
    for (int i = 0; i < n_i; ++i) {
      const std::int64_t g = Group == 0 ? 0 : (c + i) / Group;
      if (g != g_at) {
        s = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.scales_at(t, g))));
        z = Symmetric ? _mm512_set1_ps(static_cast<float>(1 << (Bits - 1))) : lut_zero_points<Bits>(w.zeros_at(t, g));
        g_at = g;
      }
      const lut_matrix::field lo = lut_matrix::low_field(i, low);
      __m512i code = _mm512_and_si512(_mm512_srl_epi32(blk[lo.block], _mm_cvtsi32_si128(lo.bit)), low_mask);
      if constexpr (high > 0) {
        const lut_matrix::field hi = lut_matrix::high_field(i, Bits, low);
        const __m512i h = _mm512_and_si512(_mm512_srl_epi32(blk[hi.block], _mm_cvtsi32_si128(hi.bit)), high_mask);
        code = _mm512_or_si512(code, _mm512_slli_epi32(h, low));
      }
      _mm512_storeu_ps(out + (u0 + i) * stride, _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(code), z), s));
    }
  }
}
QMR_INTRINSIC_WARNINGS_ON
#endif

// Rows [n0, n0 + rows) and columns [k0, k0 + kl) of W into the k-major panel, read
// back one value at a time (ISAs without the table kernel): W(n0 + j, k0 + c) at
// panel[c·nr + j]; columns j from `rows` to nr are zero.
inline void lut_dequant_panel_scalar(const lut_matrix& w, std::int64_t n0, int rows, std::int64_t k0,
                                     std::int64_t kl, float* panel, int nr) {
  for (std::int64_t c = 0; c < kl; ++c) {
    const std::int64_t g = (k0 + c) / w.group();
    for (int j = 0; j < nr; ++j)
      panel[c * nr + j] =
          j < rows ? quant::dequant_value(w.scale(n0 + j, g), w.code(n0 + j, k0 + c), w.zero(n0 + j, g)) : 0.0f;
  }
}

}  // namespace detail

// y[r1 - r0] = W[r0:r1, :] · x[cols] for a repacked W on architecture Arch: the
// table kernel on AVX-512BW, the scalar loop over the same layout elsewhere. r0
// starts a tile (a multiple of 16) and r1 ends one or is W's last row. Threads
// split the tiles, one contiguous range each (each builds its own tables).
template <class Arch = xsimd::default_arch>
void lut_gemv(const lut_matrix& w, std::int64_t r0, std::int64_t r1, std::span<const float> x, std::span<float> y,
              thread_pool* pool = nullptr) {
  check(static_cast<std::int64_t>(x.size()) == w.cols(),
        "lut_gemv: x has " + std::to_string(x.size()) + " values, W has " + std::to_string(w.cols()) + " columns");
  check(0 <= r0 && r0 < r1 && r1 <= w.rows() && r0 % lut_tile_rows == 0 &&
            (r1 % lut_tile_rows == 0 || r1 == w.rows()),
        "lut_gemv: rows [" + std::to_string(r0) + ", " + std::to_string(r1) + ") of " + std::to_string(w.rows()) +
            " do not start and end on 16-row tiles");
  check(static_cast<std::int64_t>(y.size()) == r1 - r0,
        "lut_gemv: y has " + std::to_string(y.size()) + " values for " + std::to_string(r1 - r0) + " rows");
  const std::int64_t first = r0 / lut_tile_rows, tiles = (r1 - r0 + lut_tile_rows - 1) / lut_tile_rows;
  const std::int64_t parts = pool ? std::min<std::int64_t>(pool->size(), tiles) : 1;
  const auto run = [&](std::int64_t i0, std::int64_t i1) {
    for (std::int64_t i = i0; i < i1; ++i) {
      const std::int64_t t0 = first + tiles * i / parts, t1 = first + tiles * (i + 1) / parts;
      if (t0 == t1) continue;
      float* yt = y.data() + (t0 - first) * lut_tile_rows;  // row 16·t0 of W
#if XSIMD_WITH_AVX512BW
      if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch>) {
        quant::with_format(w.spec(), [&](auto format) {
          using F = decltype(format);
          if constexpr (lut_supported_bits(F::bits))
            detail::lut_gemv_tiles<F::bits, F::group_size, F::symmetric>(w, x.data(), yt, t0, t1);
        });
        continue;
      }
#endif
      detail::lut_gemv_scalar(w, x.data(), yt, t0 * lut_tile_rows, std::min(w.rows(), t1 * lut_tile_rows));
    }
  };
  if (parts > 1) pool->parallel_for(0, parts, 1, run);
  else run(0, parts);
}

// Y[M, r1 - r0] = X[M, cols] · W[r0:r1, :]ᵀ for a repacked W, any M: one row of X
// through lut_gemv; more through matmul.hpp's register-tiled GEMM, its k-major
// panels of nr rows dequantized straight from the tiles (nr = 48 on AVX-512: three
// whole tiles, columns in 128-column slices that never cross a chunk). A forward
// pass then needs no other copy of W. Up to mr rows allocate nothing. Rows as
// lut_gemv's (r0 on a tile, r1 on one or W's end); every output row's sum runs in
// the same order whatever r0 is, so a row range gives the same rows of the whole
// product bit for bit.
template <class Arch = xsimd::default_arch>
void lut_gemm(const lut_matrix& w, std::int64_t r0, std::int64_t r1, matrix_view<const float> x,
              matrix_view<float> y, thread_pool* pool = nullptr) {
  check(x.cols == w.cols(), "lut_gemm: X has " + std::to_string(x.cols) + " columns, W has " + std::to_string(w.cols()));
  check(0 <= r0 && r0 < r1 && r1 <= w.rows() && r0 % lut_tile_rows == 0 &&
            (r1 % lut_tile_rows == 0 || r1 == w.rows()),
        "lut_gemm: rows [" + std::to_string(r0) + ", " + std::to_string(r1) + ") of " + std::to_string(w.rows()) +
            " do not start and end on 16-row tiles");
  check(y.rows == x.rows && y.cols == r1 - r0,
        "lut_gemm: Y is [" + std::to_string(y.rows) + ", " + std::to_string(y.cols) + "], want [" +
            std::to_string(x.rows) + ", " + std::to_string(r1 - r0) + "]");
  if (x.rows == 0) return;
  if (x.rows == 1)
    return lut_gemv<Arch>(w, r0, r1, std::span<const float>(x.row(0), static_cast<std::size_t>(x.cols)),
                          std::span<float>(y.row(0), static_cast<std::size_t>(r1 - r0)), pool);
  using tiles = matmul_tiles<Arch>;
  constexpr int NR = tiles::nr;
  constexpr std::int64_t KC = tiles::kc;
  static_assert(lut_chunk_cols(2) % KC == 0 && lut_chunk_cols(4) % KC == 0 && KC % lut_unit_cols == 0,
                "a panel's column slice must lie in one chunk and start a unit");
  constexpr int MR = tiles::mr;
  const std::int64_t n = r1 - r0, k = x.cols;
  const std::int64_t panels = (n + NR - 1) / NR;
  // Up to mr rows of X (decode-sized calls) are one register block, packed per column
  // slice on the stack next to the panel: no allocation per call. More are packed once.
  const bool one_block = x.rows <= MR;
  std::optional<detail::packed_x<Arch>> xp;
  if (!one_block) xp.emplace(x, pool);
  // Column slices outer, panels inner: one_block packs each slice of X once, and the
  // repack's codes are chunk-major. Every output still sums its slices in order.
  detail::split_rows(pool, panels, NR * x.cols * x.rows, [&](std::int64_t p0, std::int64_t p1) {
    alignas(64) float panel[KC * NR];  // [kc, nr] f32 weights, k-major: W[r0 + n0 + j, k0 + c] at c * nr + j
    alignas(64) float xs[KC * MR];     // [kc, mr] one block of X's slice (one_block), rows past M repeating the last
    for (std::int64_t k0 = 0; k0 < k; k0 += KC) {
      const std::int64_t kl = std::min(KC, k - k0);
      if (one_block)
        for (std::int64_t c = 0; c < kl; ++c)
          for (int i = 0; i < MR; ++i) xs[c * MR + i] = x(std::min<std::int64_t>(i, x.rows - 1), k0 + c);
      for (std::int64_t p = p0; p < p1; ++p) {
        const std::int64_t n0 = p * NR;
        const int cols = static_cast<int>(std::min<std::int64_t>(NR, n - n0));
        bool done = false;
#if XSIMD_WITH_AVX512BW
        if constexpr (std::is_base_of_v<xsimd::avx512bw, Arch> && NR % lut_tile_rows == 0) {
          quant::with_format(w.spec(), [&](auto format) {
            using F = decltype(format);
            if constexpr (lut_supported_bits(F::bits)) {
              for (int j = 0; j < NR; j += static_cast<int>(lut_tile_rows)) {
                if (j < cols) {
                  detail::lut_dequant_tile<F::bits, F::group_size, F::symmetric>(w, (r0 + n0 + j) / lut_tile_rows, k0,
                                                                                 kl, panel + j, NR);
                } else {
                  for (std::int64_t c = 0; c < kl; ++c) std::fill_n(panel + c * NR + j, lut_tile_rows, 0.0f);
                }
              }
            }
          });
          done = true;
        }
#endif
        if (!done) detail::lut_dequant_panel_scalar(w, r0 + n0, cols, k0, kl, panel, NR);
        // A last tile's rows past W hold (0 - z)·s = 0 (zero scales), and the register
        // tile stores only `cols` columns.
        if (one_block) detail::micro_tile<Arch>(panel, kl, xs, y, 0, static_cast<int>(x.rows), n0, cols, k0 == 0);
        else detail::panel_times_x<Arch>(panel, k0 / KC, kl, *xp, x.rows, y, n0, cols);
      }
    }
  });
}

// y[rows] = W · x[cols], every row.
template <class Arch = xsimd::default_arch>
void lut_gemv(const lut_matrix& w, std::span<const float> x, std::span<float> y, thread_pool* pool = nullptr) {
  lut_gemv<Arch>(w, 0, w.rows(), x, y, pool);
}

}  // namespace qmr::simd
