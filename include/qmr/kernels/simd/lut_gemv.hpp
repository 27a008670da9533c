// The table-lookup GEMV (y = W·x, one row of f32 activations) for 2-, 3- and 4-bit codes over a load-time repack of W into 16-row tiles (lut_matrix), f32 activations and accumulation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "../../core/aligned_buffer.hpp"
#include "../../core/error.hpp"
#include "../../core/half.hpp"
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
// index of weight bits in a 16-entry table of activation sums built once per call:
//   2-bit codes: the index is the codes of two columns a, b:
//       T[i] = (i & 3)·x_a + (i >> 2)·x_b
//   4-bit codes: the index is one column's code: T[i] = i·x_a
//   3-bit codes: the low 2 bits as 2-bit pairs, the high bit of four columns a..d
//       as one index: T[i] = 4·(i₀·x_a + i₁·x_b + i₂·x_c + i₃·x_d)
// so every 64 bits of weights cost one vpermps and one vaddps (plus half a shift)
// whatever the width: 1.8x fewer operations at 2 bits, 1.7x at 3 than the
// lane-major GEMV. The group's scale and zero point apply per 16 rows afterwards:
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
//          nibble q of block b meets table 8b + q of its chunk. Per bit width:
//            2-bit: a block is 16 columns, bits [2i, 2i + 2) column i (the
//                   on-disk bitstream of the row, 4 bytes of it)
//            4-bit: a block is 8 columns, bits [4i, 4i + 4) column i (likewise)
//            3-bit: 32 columns are 3 blocks: two of the codes' low 2 bits as
//                   2-bit blocks (columns 0-15, 16-31), then one of their high
//                   bits, bit i column i
//   scales f16 [chunks][tiles][groups of the chunk][16]   (per-channel: [tiles][16])
//   zeros  u8  [chunks][tiles][groups of the chunk][2·Bits]  asymmetric only: the
//          16 rows' zero points packed as the on-disk zeros are (bits
//          [Bits·l, Bits·l + Bits) row l), + 8 bytes of padding
//          (chunk-major as the codes, so that a thread streams them beside its
//          codes: tile-major, each tile's scales of a chunk were a line 2 KB from
//          the last, a DRAM miss per tile and chunk that no prefetcher follows)
// Columns come in chunks of lut_chunk_cols(Bits) (the tables of one chunk stay
// in L1 while every tile of a thread passes), a chunk spans whole groups, and
// per-channel rows are padded with zero codes to whole units (lut_unit_cols).
// Storage equals the format's (tiles round rows up to 16).
// ---------------------------------------------------------------------------

// Output rows per tile: one per f32 lane of a 512-bit vector.
inline constexpr std::int64_t lut_tile_rows = 16;
// Bytes per block: 16 rows × one dword of eight 4-bit table indices.
inline constexpr std::int64_t lut_block_bytes = 64;

// Whether a width has a table GEMV.
constexpr bool lut_supported_bits(int bits) { return bits == 2 || bits == 3 || bits == 4; }
// Columns whose blocks are whole: a 2-bit block is 16 columns, a 4-bit block 8,
// and 32 columns of 3-bit codes are 3 blocks.
constexpr std::int64_t lut_unit_cols(int bits) { return bits == 2 ? 16 : bits == 3 ? 32 : 8; }
constexpr std::int64_t lut_unit_blocks(int bits) { return bits == 3 ? 3 : 1; }
// Columns per chunk: tables of 64 bytes take 32 (2-bit), 48 (3-bit) or 64 (4-bit)
// bytes a column, so a chunk's tables are 16, 24 and 16 KB, in L1 (48 KB on the
// Xeon VMs, 32 KB on older cores) beside the streamed codes. A multiple of every
// group size and unit.
constexpr std::int64_t lut_chunk_cols(int bits) { return bits == 4 ? 256 : 512; }
// Tables per chunk (the largest: 3-bit, 16 blocks of 32 columns × 24 tables).
inline constexpr std::int64_t lut_max_chunk_tables = 512 / 32 * 24;

// W repacked for lut_gemv (layout above). Build it once per weight, at load time.
class lut_matrix {
 public:
  lut_matrix() = default;

  // The repack of a 2-, 3- or 4-bit W; other widths are an error naming them.
  explicit lut_matrix(const quant::qtensor_view& w) : spec_(w.spec), rows_(w.rows()), cols_(w.cols()) {
    check(lut_supported_bits(spec_.bits),
          "lut_matrix: the table GEMV takes 2-, 3- and 4-bit codes, not " + spec_.str());
    check(rows_ > 0 && cols_ > 0, "lut_matrix: empty weight");
    const int bits = spec_.bits;
    tiles_ = (rows_ + lut_tile_rows - 1) / lut_tile_rows;
    group_ = w.layout.group;
    n_groups_ = w.layout.n_groups;
    padded_cols_ = (cols_ + lut_unit_cols(bits) - 1) / lut_unit_cols(bits) * lut_unit_cols(bits);
    chunks_ = (padded_cols_ + lut_chunk_cols(bits) - 1) / lut_chunk_cols(bits);
    codes_ = aligned_buffer<std::uint8_t>(static_cast<std::size_t>(chunks_ * tiles_ * full_chunk_blocks() *
                                                                   lut_block_bytes + lut_block_bytes));
    chunk_groups_ = spec_.group == quant::per_channel ? 1 : lut_chunk_cols(bits) / spec_.group;
    scales_ = aligned_buffer<f16>(static_cast<std::size_t>(tiles_ * n_groups_ * lut_tile_rows));
    if (!spec_.symmetric) zeros_ = aligned_buffer<std::uint8_t>(static_cast<std::size_t>(tiles_ * n_groups_ * 2 * bits + 8));
    const std::int64_t unit = lut_unit_cols(bits), unit_bytes = unit * bits / 8;
    for (std::int64_t r = 0; r < rows_; ++r) {
      // A unit of the row at a time: its bytes (zero past the row's end) become
      // the row's dwords in the unit's blocks, one for 2- and 4-bit codes (the same
      // bits), three for 3-bit ones (low 2 bits of columns 0-15, 16-31; high bits).
      const std::uint8_t* row = w.codes + r * w.layout.code_row_bytes;
      for (std::int64_t c = 0; c < padded_cols_; c += unit) {
        std::uint8_t bytes[12] = {};  // the unit's codes: 4 bytes, or 12 for 32 3-bit codes
        const std::int64_t have = std::min(unit_bytes, w.layout.code_row_bytes - c * bits / 8);
        std::memcpy(bytes, row + c * bits / 8, static_cast<std::size_t>(have));
        std::uint32_t dwords[3] = {};
        if (bits == 3) {
          for (int i = 0; i < 32; ++i) {
            const std::uint32_t v = quant::get_code(bytes, i, 3);
            dwords[i / 16] |= (v & 3u) << (2 * (i % 16));
            dwords[2] |= (v >> 2) << i;
          }
        } else {
          std::memcpy(&dwords[0], bytes, 4);
        }
        std::uint8_t* dst = unit_dword(r, c);
        for (std::int64_t b = 0; b < lut_unit_blocks(bits); ++b)
          std::memcpy(dst + b * lut_block_bytes, &dwords[b], 4);
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
  // Bytes the GEMV streams: the format's bytes plus the padding rows of the last tile.
  std::uint64_t bytes() const {
    return static_cast<std::uint64_t>(tiles_ * lut_tile_rows) * format_bytes() / static_cast<std::uint64_t>(rows_);
  }

  // Blocks of a chunk: full chunks, and the last one's whole units.
  std::int64_t full_chunk_blocks() const {
    return std::min(lut_chunk_cols(spec_.bits), padded_cols_) / lut_unit_cols(spec_.bits) *
           lut_unit_blocks(spec_.bits);
  }
  std::int64_t chunk_blocks(std::int64_t chunk) const {
    const int bits = spec_.bits;
    const std::int64_t cc = std::min(lut_chunk_cols(bits), padded_cols_ - chunk * lut_chunk_cols(bits));
    return cc / lut_unit_cols(bits) * lut_unit_blocks(bits);
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

  // Element readers (the scalar path and the tests): the code, scale and zero
  // point of W(r, c) as the source qtensor holds them.
  std::uint32_t code(std::int64_t r, std::int64_t c) const {
    const auto [byte, shift, lo_mask, hi_byte] = code_place(r, c);
    std::uint32_t v = (codes_[static_cast<std::size_t>(byte)] >> shift) & lo_mask;
    if (hi_byte >= 0) v |= ((codes_[static_cast<std::size_t>(hi_byte)] >> hi_shift(c)) & 1u) << 2;
    return v;
  }
  f16 scale(std::int64_t r, std::int64_t g) const { return scales_at(r / lut_tile_rows, g)[r % lut_tile_rows]; }
  std::uint32_t zero(std::int64_t r, std::int64_t g) const {
    if (spec_.symmetric) return 1u << (spec_.bits - 1);
    return quant::get_code(zeros_at(r / lut_tile_rows, g), r % lut_tile_rows, spec_.bits);
  }

 private:
  struct place {
    std::int64_t byte;
    int shift;
    std::uint32_t lo_mask;
    std::int64_t hi_byte;  // 3-bit: the byte of the high bit, else -1
  };
  // Where W(r, c)'s bits live. The dword of row r in block b of its tile and chunk
  // starts at (block start) + 4·(r mod 16).
  place code_place(std::int64_t r, std::int64_t c) const {
    const int bits = spec_.bits;
    const std::int64_t chunk = c / lut_chunk_cols(bits), cc = c % lut_chunk_cols(bits);
    const std::int64_t base = chunk_tile(chunk, r / lut_tile_rows) - codes_.data() + 4 * (r % lut_tile_rows);
    if (bits == 3) {
      const std::int64_t unit = cc / 32, i = cc % 32;
      const std::int64_t lo_block = 3 * unit + i / 16, hi_block = 3 * unit + 2;
      const std::int64_t lo_bit = 2 * (i % 16);
      return {base + lo_block * lut_block_bytes + lo_bit / 8, static_cast<int>(lo_bit % 8), 3u,
              base + hi_block * lut_block_bytes + i / 8};
    }
    const std::int64_t per_block = 32 / bits, block = cc / per_block, bit = bits * (cc % per_block);
    return {base + block * lut_block_bytes + bit / 8, static_cast<int>(bit % 8), (1u << bits) - 1, -1};
  }
  // Row r's dword in the first block of the unit starting at column c.
  std::uint8_t* unit_dword(std::int64_t r, std::int64_t c) {
    const int bits = spec_.bits;
    const std::int64_t chunk = c / lut_chunk_cols(bits), cc = c % lut_chunk_cols(bits);
    const std::int64_t block = cc / lut_unit_cols(bits) * lut_unit_blocks(bits);
    return codes_.data() + (chunk_tile(chunk, r / lut_tile_rows) - codes_.data()) + block * lut_block_bytes +
           4 * (r % lut_tile_rows);
  }
  static int hi_shift(std::int64_t c) { return static_cast<int>(c % 32 % 8); }
  void set_zero(std::int64_t r, std::int64_t g, std::uint32_t z) {
    const int bits = spec_.bits;
    std::uint8_t* p = zeros_.data() + group_slot(r / lut_tile_rows, g) * 2 * bits;
    const std::int64_t bit = bits * (r % lut_tile_rows);
    for (int k = 0; k < bits; ++k) {
      const std::int64_t at = bit + k;
      p[at / 8] = static_cast<std::uint8_t>((p[at / 8] & ~(1u << (at % 8))) | (((z >> k) & 1u) << (at % 8)));
    }
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
  aligned_buffer<std::uint8_t> zeros_;  // [chunks][tiles][groups of the chunk][2·bits] + 8; asymmetric only
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
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 reports the intrinsics' own undefined-vector arguments (as in matmul.hpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// The tables of chunk [c0, c0 + cc) (columns past k read as zero activations)
// into tab[tables][16], in the order the chunk's blocks meet them, and the
// activation sums of the chunk's groups (grouped formats) into gsum.
template <int Bits>
inline void lut_build_tables(const float* x, std::int64_t k, std::int64_t c0, std::int64_t cc, float* tab) {
  const auto at = [&](std::int64_t c) { return c0 + c < k ? x[c0 + c] : 0.0f; };
  // The table's entry index i as its 2-bit fields (0..3), and as its 4 bits.
  const __m512 lo = _mm512_setr_ps(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
  const __m512 hi = _mm512_setr_ps(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const auto pair = [&](std::int64_t c, float* out) {
    _mm512_store_ps(out, _mm512_fmadd_ps(hi, _mm512_set1_ps(at(c + 1)), _mm512_mul_ps(lo, _mm512_set1_ps(at(c)))));
  };
  if constexpr (Bits == 2) {
    for (std::int64_t c = 0; c < cc; c += 2, tab += 16) pair(c, tab);
  } else if constexpr (Bits == 4) {
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (std::int64_t c = 0; c < cc; ++c, tab += 16) _mm512_store_ps(tab, _mm512_mul_ps(iota, _mm512_set1_ps(at(c))));
  } else {
    static_assert(Bits == 3);
    // Bit j of the index, times 4 (the high bit's weight): exact in f32.
    const __m512 b0 = _mm512_setr_ps(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);
    const __m512 b1 = _mm512_setr_ps(0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4);
    const __m512 b2 = _mm512_setr_ps(0, 0, 0, 0, 4, 4, 4, 4, 0, 0, 0, 0, 4, 4, 4, 4);
    const __m512 b3 = _mm512_setr_ps(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
    for (std::int64_t u = 0; u < cc; u += 32) {
      for (std::int64_t c = u; c < u + 32; c += 2, tab += 16) pair(c, tab);
      for (std::int64_t c = u; c < u + 32; c += 4, tab += 16) {
        __m512 t = _mm512_mul_ps(b0, _mm512_set1_ps(at(c)));
        t = _mm512_fmadd_ps(b1, _mm512_set1_ps(at(c + 1)), t);
        t = _mm512_fmadd_ps(b2, _mm512_set1_ps(at(c + 2)), t);
        _mm512_store_ps(tab, _mm512_fmadd_ps(b3, _mm512_set1_ps(at(c + 3)), t));
      }
    }
  }
}

// The 16 zero points of one tile and group as f32: 2·Bits bytes, lane l's at
// bits [Bits·l, Bits·l + Bits). Each dword lane gathers the two bytes its bits
// start in (one byte shuffle of the broadcast qword), shifts and masks them.
template <int Bits>
inline __m512 lut_zero_points(const std::uint8_t* z) {
  std::uint64_t word = 0;
  std::memcpy(&word, z, 8);  // the buffer has 8 bytes of padding past its end
  alignas(64) static constexpr auto control = [] {
    struct table {
      std::int8_t shuffle[64];
      std::int32_t shift[16];
    } t{};
    for (int l = 0; l < 16; ++l) {
      const int bit = Bits * l;
      // Byte bit/8 and the one after it of the 8-byte word (broadcast to both
      // qwords of each 128-bit lane) into bytes 0-1 of dword l; bytes 2-3 zero.
      t.shuffle[4 * l + 0] = static_cast<std::int8_t>(bit / 8);
      t.shuffle[4 * l + 1] = static_cast<std::int8_t>(bit / 8 + 1);
      t.shuffle[4 * l + 2] = static_cast<std::int8_t>(-128);
      t.shuffle[4 * l + 3] = static_cast<std::int8_t>(-128);
      t.shift[l] = bit % 8;
    }
    return t;
  }();
  const __m512i v = _mm512_shuffle_epi8(_mm512_set1_epi64(static_cast<long long>(word)),
                                        _mm512_load_si512(control.shuffle));
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
  constexpr std::int64_t prefetch_bytes = 4096;
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
    float gsum[max_chunk_groups];
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
          _mm_prefetch(reinterpret_cast<const char*>(p) + prefetch_bytes, _MM_HINT_T0);
          // Byte e of every dword is the low byte of the load at offset e: its low
          // nibble indexes table 2e, the high one (shifted down) table 2e + 1;
          // vpermps reads an index's low 4 bits only.
          for (int e = 0; e < 4; ++e) {
            const __m512i v = _mm512_loadu_si512(p + e);
            acc[(2 * e) % chains] =
                _mm512_add_ps(acc[(2 * e) % chains], _mm512_permutexvar_ps(v, _mm512_load_ps(tb + 32 * e)));
            acc[(2 * e + 1) % chains] = _mm512_add_ps(
                acc[(2 * e + 1) % chains],
                _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), _mm512_load_ps(tb + 32 * e + 16)));
          }
          p += lut_block_bytes;
          tb += 8 * 16;
        };
        if constexpr (Group != 0) {
          QMR_LUT_UNROLL
          for (std::int64_t b = 0; b < group_blocks; ++b) block();
        } else {
          for (std::int64_t b = 0; b < seg_blocks; ++b) block();
        }
        const __m512 sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        const __m512 s = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + (g - g0) * lut_tile_rows)));
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
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

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

// y[rows] = W · x[cols], every row.
template <class Arch = xsimd::default_arch>
void lut_gemv(const lut_matrix& w, std::span<const float> x, std::span<float> y, thread_pool* pool = nullptr) {
  lut_gemv<Arch>(w, 0, w.rows(), x, y, pool);
}

}  // namespace qmr::simd
