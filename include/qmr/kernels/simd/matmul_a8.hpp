// The int8-activation (a8) SIMD matmul Y = quantize_a8(X)·Wᵀ for every quantized format: activations quantized per 32-column block, integer dot products with the weight codes (vpdpbusd, vpmaddubsw, NEON vmull), templated on the architecture tag.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../../core/aligned_buffer.hpp"
#include "../../core/error.hpp"
#include "../../core/half.hpp"
#include "../../core/tensor.hpp"
#include "../../core/thread_pool.hpp"
#include "../../quant/format.hpp"
#include "../../quant/pack.hpp"
#include "../../quant/qtensor.hpp"
#include "../ref/matmul.hpp"
#include "../ref/matmul_a8.hpp"
#include "matmul.hpp"
#include "prefetch.hpp"
#include "unpack_a8.hpp"

// How the a8 kernels work (the numerics are ref/matmul_a8.hpp's):
//
// * Each call first quantizes the M rows of X (ref::quantize_a8, bit for bit) into
//   the order the kernel unpacks codes in (a8_layout: column order, or nibble / bit
//   pair interleaved within a step), with, per row, the scale d of every 32-column
//   block (spread over the i32 lanes of a step by one permute) and, per weight
//   group, sum_b d_b * sum(a over block b).
// * Per weight row, each step unpacks the codes of 64-256 columns into byte vectors
//   and takes integer dot products with the int8 activations: i32 lane j sums the
//   products of 4 * interleave consecutive columns, all in one activation block and
//   one weight group. The lane sums are converted to f32 and multiplied by their
//   block scale and by their group scale (a vector over the lanes, from 1-8 groups
//   per step); a per-channel row takes its one scale at the end.
// * The zero point is folded out of the inner loop: sum (q - z) a = sum q a - z sum a,
//   and sum_g s_g z_g (sum over the group of d * sum a) is subtracted once per row,
//   16 groups per vector. (Symmetric formats use the same fold with z = 2^(Bits-1).)
// * GEMV for M <= 8 streams W once with M rows of X; M > 8 (prefill) loops the same
//   kernel over chunks of 8 rows of X on tiles of 16 rows of W, so a tile is decoded
//   from L1/L2 for every chunk and read from memory once. There is no separate GEMM:
//   the integer dot products are 4x denser than f32 FMAs, and prefill keeps the a8
//   numerics of decode.
// * The scalar kernel (any ISA without its own, e.g. SSE2) and the NEON kernel walk
//   one 32-column block at a time: codes unpacked to bytes, one integer dot product
//   per block (NEON: vmull_s8 + vpadalq_s16, or vdotq_s32 where the compiler targets
//   the dot-product extension), scales in scalar f32.
// * The activations live in a 64 KB stack buffer when they fit (M = 1 up to K ~ 55000,
//   M = 8 up to K ~ 7000), else in one heap allocation per call.

namespace qmr::simd {

#if defined(QMR_SIMD_WITH_AVX512VNNI)
// The a8 kernel a header-only user gets without dispatch: VNNI + VBMI when the
// translation unit is compiled for them, else xsimd's default.
using a8_default_arch = avx512vnni;
#else
using a8_default_arch = xsimd::default_arch;
#endif

namespace detail {

#if defined(QMR_SIMD_WITH_AVX512VNNI)
inline constexpr bool a8_vnni_compiled = true;
#else
inline constexpr bool a8_vnni_compiled = false;
#endif

// W rows per tile when M > 8 rows of X are processed 8 at a time: 16 rows of a
// 14336-column 8-bit matrix are 230 KB, which stays in L2 across the chunks of X.
inline constexpr std::int64_t a8_tile_rows = 16;

// Activations up to this size live on the caller's stack: 64 KB holds M = 1 up to
// K ~ 55000 (1.125 bytes per column with the block scales), M = 8 up to K ~ 7000,
// and is small beside the 8 MB stacks of Linux threads.
inline constexpr std::size_t a8_stack_bytes = std::size_t{64} << 10;

// Int8 activations of M rows of X in one kernel's layout, with the float data the
// kernel needs beside them (views into the caller's storage).
struct a8_activations {
  std::int64_t rows = 0, k = 0;
  std::int64_t k_pad = 0;         // k rounded up to whole steps
  std::int64_t scale_stride = 0;  // k_pad / 32 blocks rounded up to 16
  std::int64_t group_stride = 0;  // weight groups per row rounded up to 16
  std::int8_t* q = nullptr;       // [rows, k_pad] activations, step-interleaved; 0 past k
  float* block_scale = nullptr;   // [rows, scale_stride] scale d of each 32-column block; 0 past k
  float* zero_sum = nullptr;      // [rows, group_stride] sum over a group's blocks of d * (sum of a); 0 past the groups

  static constexpr std::int64_t round_up(std::int64_t v, std::int64_t m) { return (v + m - 1) / m * m; }

  a8_activations(std::int64_t m, std::int64_t cols, std::int64_t n_groups, a8_layout layout)
      : rows(m),
        k(cols),
        k_pad(round_up(cols, layout.cols())),
        scale_stride(round_up(k_pad / ref::a8_block, 16)),
        group_stride(round_up(n_groups, 16)) {}

  // Bytes of storage, each array 64-byte aligned.
  std::size_t bytes() const {
    return static_cast<std::size_t>(round_up(rows * k_pad, 64) + round_up(rows * scale_stride * 4, 64) +
                                    round_up(rows * group_stride * 4, 64));
  }
  void place(std::byte* storage) {
    q = reinterpret_cast<std::int8_t*>(storage);
    block_scale = reinterpret_cast<float*>(storage + round_up(rows * k_pad, 64));
    zero_sum = block_scale + round_up(rows * scale_stride * 4, 64) / 4;
  }
};

// Quantizes the rows of X into xa (block by block with quantize_block_a8<Arch>, the
// reference quantizer bit for bit), interleaved as Layout says.
template <class Arch, a8_layout Layout>
void prepare_a8(matrix_view<const float> x, std::int64_t group, a8_activations& xa) {
  constexpr int step = Layout.cols();
  // Position -> column of the step, for the interleaved layouts.
  static constexpr std::array<std::uint8_t, 256> column = [] {
    std::array<std::uint8_t, 256> c{};
    for (int t = 0; t < Layout.interleave; ++t)
      for (int p = 0; p < Layout.vector_bytes; ++p)
        c[static_cast<std::size_t>(t) * Layout.vector_bytes + static_cast<std::size_t>(p)] = static_cast<std::uint8_t>(Layout.column(t, p));
    return c;
  }();
  static_assert(step <= 256);
  const std::int64_t k = xa.k;
  for (std::int64_t i = 0; i < xa.rows; ++i) {
    const float* xr = x.row(i);                          // [K]
    std::int8_t* q = xa.q + i * xa.k_pad;                // [k_pad]
    float* blocks = xa.block_scale + i * xa.scale_stride;  // [scale_stride]
    float* sums = xa.zero_sum + i * xa.group_stride;     // [group_stride]
    std::fill(sums, sums + xa.group_stride, 0.0f);
    std::fill(blocks + xa.k_pad / ref::a8_block, blocks + xa.scale_stride, 0.0f);
    for (std::int64_t c0 = 0; c0 < xa.k_pad; c0 += step) {
      alignas(64) std::int8_t natural[256];  // [step] this step's activations in column order
      for (int b = 0; b < step / static_cast<int>(ref::a8_block); ++b) {
        const std::int64_t cb = c0 + b * ref::a8_block;
        const int n = static_cast<int>(std::clamp<std::int64_t>(k - cb, 0, ref::a8_block));
        std::int8_t* qb = natural + b * ref::a8_block;
        float d = 0.0f;
        if (n > 0) {
          const a8_quantized_block block = quantize_block_a8<Arch>(xr + cb, n, qb, Arch{});
          d = block.scale;
          sums[cb / group] += d * static_cast<float>(block.sum);
        } else {
          std::memset(qb, 0, ref::a8_block);
        }
        blocks[cb / ref::a8_block] = d;
      }
      if constexpr (Layout.interleave == 1) {
        std::memcpy(q + c0, natural, static_cast<std::size_t>(step));
      } else {
        for (int p = 0; p < step; ++p) q[c0 + p] = natural[column[static_cast<std::size_t>(p)]];
      }
    }
  }
}

// ---------------------------------------------------------------------------
// f32 side of the x86 kernels, per register width.
// ---------------------------------------------------------------------------
#if XSIMD_WITH_AVX2
template <class Tag>
struct a8_f256 {
  using fvec = __m256;
  static constexpr int lanes = 8;
  static fvec zero() { return _mm256_setzero_ps(); }
  static fvec cvt(__m256i v) { return _mm256_cvtepi32_ps(v); }
  static fvec load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, fvec v) { _mm256_storeu_ps(p, v); }
  static fvec set1(float v) { return _mm256_set1_ps(v); }
  static fvec mul(fvec a, fvec b) { return _mm256_mul_ps(a, b); }
  static fvec sub(fvec a, fvec b) { return _mm256_sub_ps(a, b); }
  static fvec add(fvec a, fvec b) { return _mm256_add_ps(a, b); }
  static fvec fma(fvec a, fvec b, fvec c) { return _mm256_fmadd_ps(a, b, c); }
  static float sum(fvec v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
  }
  static float scale(f16 h) { return _cvtsh_ss(h.bits); }
  // d[j / LanesPerBlock] in lane j: the block scales of a step, each over the
  // LanesPerBlock lanes of its block (2, 4 or 8); reads only the step's blocks.
  template <int LanesPerBlock>
  static fvec block_scales(const float* d) {
    static_assert(LanesPerBlock == 2 || LanesPerBlock == 4 || LanesPerBlock == 8);
    if constexpr (LanesPerBlock == 8) {
      return _mm256_broadcast_ss(d);
    } else {
      const __m128 v = LanesPerBlock == 4 ? _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(d))) : _mm_loadu_ps(d);
      const __m256i idx = _mm256_setr_epi32(0 / LanesPerBlock, 1 / LanesPerBlock, 2 / LanesPerBlock, 3 / LanesPerBlock,
                                            4 / LanesPerBlock, 5 / LanesPerBlock, 6 / LanesPerBlock, 7 / LanesPerBlock);
      return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), idx);
    }
  }
  // The scales of groups [0, 8) of s as f32; `left` groups remain in the row (zeros past them).
  static fvec scales(const f16* s, std::int64_t left) {
    if (left >= 8) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s)));
    alignas(16) std::uint16_t b[8] = {};
    std::memcpy(b, s, static_cast<std::size_t>(left) * 2);
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(b)));
  }
  // The scales of groups [0, 8 / GroupLanes) of s, each over GroupLanes consecutive
  // lanes (s[0] over all of them when GroupLanes >= 8).
  template <int GroupLanes>
  static fvec scales_expanded(const f16* s, std::int64_t left) {
    if constexpr (GroupLanes >= lanes) return _mm256_cvtph_ps(_mm_set1_epi16(static_cast<short>(s->bits)));
    std::uint64_t b = 0;
    if (left >= 4) std::memcpy(&b, s, 8);  // constant sizes where it can: no memcpy call per step
    else std::memcpy(&b, s, static_cast<std::size_t>(left) * 2);
    const __m128 v = _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(b)));
    const __m256i idx = _mm256_setr_epi32(0 / GroupLanes, 1 / GroupLanes, 2 / GroupLanes, 3 / GroupLanes,
                                          4 / GroupLanes, 5 / GroupLanes, 6 / GroupLanes, 7 / GroupLanes);
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v), idx);
  }
  // The zero points of groups [g0, g0 + 8) (g0 a multiple of 8) as f32; only the
  // row's bytes are read, lanes past its last group hold 0.
  template <int Bits>
  static fvec zero_points(const std::uint8_t* zeros, std::int64_t zero_bytes, std::int64_t g0) {
    const std::int64_t byte = g0 * Bits / 8;
    std::uint64_t word = 0;
    if (zero_bytes - byte >= 8) std::memcpy(&word, zeros + byte, 8);  // (only the first Bits bytes are used)
    else std::memcpy(&word, zeros + byte, static_cast<std::size_t>(std::min<std::int64_t>(Bits, zero_bytes - byte)));
    __m256i v;
    if constexpr (Bits == 8) {
      v = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(word)));
    } else {
      v = _mm256_shuffle_epi8(_mm256_set1_epi64x(static_cast<long long>(word)),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(unpack_tables<Bits>::shuffle.data())));
      v = _mm256_and_si256(
          _mm256_srlv_epi32(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(unpack_tables<Bits>::shift.data()))),
          _mm256_set1_epi32((1 << Bits) - 1));
    }
    return _mm256_cvtepi32_ps(v);
  }
};
template <class Tag, int Bits>
auto a8_step_of(xsimd::avx2) -> a8_step_avx2<Tag, Bits>;
template <class Tag>
auto a8_floats_of(xsimd::avx2) -> a8_f256<Tag>;
#endif

#if XSIMD_WITH_AVX512BW
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
template <class Tag>
struct a8_f512 {
  using fvec = __m512;
  static constexpr int lanes = 16;
  static fvec zero() { return _mm512_setzero_ps(); }
  static fvec cvt(__m512i v) { return _mm512_cvtepi32_ps(v); }
  static fvec load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, fvec v) { _mm512_storeu_ps(p, v); }
  static fvec set1(float v) { return _mm512_set1_ps(v); }
  static fvec mul(fvec a, fvec b) { return _mm512_mul_ps(a, b); }
  static fvec sub(fvec a, fvec b) { return _mm512_sub_ps(a, b); }
  static fvec add(fvec a, fvec b) { return _mm512_add_ps(a, b); }
  static fvec fma(fvec a, fvec b, fvec c) { return _mm512_fmadd_ps(a, b, c); }
  static float sum(fvec v) { return _mm512_reduce_add_ps(v); }
  static float scale(f16 h) { return _cvtsh_ss(h.bits); }
  // d[j / LanesPerBlock] in lane j: the block scales of a step, each over the
  // LanesPerBlock lanes of its block (2, 4 or 8); reads only the step's blocks.
  template <int LanesPerBlock>
  static fvec block_scales(const float* d) {
    static_assert(LanesPerBlock == 2 || LanesPerBlock == 4 || LanesPerBlock == 8);
    alignas(64) static constexpr std::int32_t idx[16] = {
        0 / LanesPerBlock,  1 / LanesPerBlock,  2 / LanesPerBlock,  3 / LanesPerBlock,
        4 / LanesPerBlock,  5 / LanesPerBlock,  6 / LanesPerBlock,  7 / LanesPerBlock,
        8 / LanesPerBlock,  9 / LanesPerBlock,  10 / LanesPerBlock, 11 / LanesPerBlock,
        12 / LanesPerBlock, 13 / LanesPerBlock, 14 / LanesPerBlock, 15 / LanesPerBlock};
    __m512 v;
    if constexpr (LanesPerBlock == 8) v = _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(d))));
    else if constexpr (LanesPerBlock == 4) v = _mm512_castps128_ps512(_mm_loadu_ps(d));
    else v = _mm512_castps256_ps512(_mm256_loadu_ps(d));
    return _mm512_permutexvar_ps(_mm512_load_si512(idx), v);
  }
  // Loads are masked only where a whole one would pass the end of the row's
  // scales or zeros: masked loads on every row slow the streaming (see decode).
  static __mmask16 first(std::int64_t count) {
    return static_cast<__mmask16>(count >= 16 ? 0xFFFFu : (1u << count) - 1u);
  }
  // The scales of groups [0, 16) of s, as f32; `left` groups remain in the row
  // (zeros past them).
  static fvec scales(const f16* s, std::int64_t left) {
    return _mm512_cvtph_ps(left >= 16 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s))
                                      : _mm256_maskz_loadu_epi16(first(left), s));
  }
  // The scales of groups [0, 16 / GroupLanes) of s, each over GroupLanes consecutive
  // lanes (s[0] over all of them when GroupLanes >= 16).
  template <int GroupLanes>
  static fvec scales_expanded(const f16* s, std::int64_t left) {
    alignas(64) static constexpr std::int32_t idx[16] = {
        0 / GroupLanes,  1 / GroupLanes,  2 / GroupLanes,  3 / GroupLanes,  4 / GroupLanes,  5 / GroupLanes,
        6 / GroupLanes,  7 / GroupLanes,  8 / GroupLanes,  9 / GroupLanes,  10 / GroupLanes, 11 / GroupLanes,
        12 / GroupLanes, 13 / GroupLanes, 14 / GroupLanes, 15 / GroupLanes};
    if constexpr (GroupLanes >= lanes) {
      (void)left;
      return _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(s->bits)));  // one group spans the step
    } else {
      const __m128i h = left >= 8 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(s))
                                  : _mm_maskz_loadu_epi16(static_cast<__mmask8>((1u << left) - 1u), s);
      return _mm512_permutexvar_ps(_mm512_load_si512(idx), _mm512_castps256_ps512(_mm256_cvtph_ps(h)));
    }
  }
  // The zero points of groups [g0, g0 + 16) (g0 a multiple of 16) as f32.
  template <int Bits>
  static fvec zero_points(const std::uint8_t* zeros, std::int64_t zero_bytes, std::int64_t g0) {
    const std::int64_t byte = g0 * Bits / 8;
    const std::int64_t n = zero_bytes - byte;
    const __m128i block = n >= 16 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(zeros + byte))
                                  : _mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << n) - 1u), zeros + byte);
    __m512i v;
    if constexpr (Bits == 8) {
      v = _mm512_cvtepu8_epi32(block);
    } else {
      v = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(block), _mm512_loadu_si512(unpack_tables<Bits>::shuffle.data()));
      v = _mm512_and_si512(_mm512_srlv_epi32(v, _mm512_loadu_si512(unpack_tables<Bits>::shift.data())),
                           _mm512_set1_epi32((1 << Bits) - 1));
    }
    return _mm512_cvtepi32_ps(v);
  }
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
template <class Tag, int Bits>
auto a8_step_of(xsimd::avx512bw) -> a8_step_avx512<Tag, Bits>;
template <class Tag>
auto a8_floats_of(xsimd::avx512bw) -> a8_f512<Tag>;
#endif

// The activation layout of Arch's a8 kernel for Bits-bit codes.
template <class Arch, int Bits>
constexpr a8_layout a8_layout_of() {
  if constexpr (a8_kind(Arch{}) == a8_kernel_kind::x86) {
    using step = decltype(a8_step_of<Arch, Bits>(Arch{}));
    return {step::vector_bytes, step::interleave, 4 * step::interleave, step::lane_blocked};
  } else {
    return {static_cast<int>(ref::a8_block), 1, static_cast<int>(ref::a8_block)};
  }
}

// Bytes a step's decode may read from its first byte (a whole 64-byte vector on
// AVX-512, up to 32 on AVX2, 6 * Bits + 16 for the 16-bit-lane unpack): a step
// with this many bytes left in its row needs no end-of-row check.
inline constexpr std::int64_t a8_whole_load = 64;

// How far ahead of its decode the x86 a8 GEMV prefetches the codes it streams, in
// bytes (one prefetch per step). The hardware prefetchers alone left the decode
// waiting on memory where a row is short or its decode is long: on the 2-core Zen 5
// VM, calls alternating with and without it (2 threads, medians of 3000 calls) gave
// w4g128 4864x896 +10-25%, 896x896 +8-12%, w3g128 8192x8192 +30-40%, w6g128
// 4864x896 +30%; 4096 beat 1024 and 2048 and equalled 6144-8192. Long 4- and
// 8-bit rows, already streaming near the read bandwidth, moved within the noise
// (-6% to +4%). With prefetcht0 on the 2-vCPU Xeon VM (paired fractions, 2 threads,
// two alternating rounds), 8192 beat 4096 in 7 of 8 pairs: 4096x14336 w8g128 96-98%
// -> 100%, w4g128 91-93% -> 93-100%; 4864x896 w2g64 67-78% -> 75-88%, w3g128 71-84%
// -> 85-87%; 8192x8192 w4g128 84-100% -> 95-100%, w2g64 89-92% -> 95-100%. On stop 38's
// 2-vCPU Xeon VM (AVX-512 + VNNI, 480 MiB L3 reported; 2 threads, paired, builds alternating,
// two rounds) 16384 beat 8192 on 7 of 8 DRAM shapes of 4 and 8 bits: w4g128 4096x4096 69/88%
// -> 87/93%, 14336x4096 74/80% -> 92/92%, 8192x8192 68/70% -> 84/81%, 4096x14336 89/88% ->
// 90/92%; w8g128 8192x8192 73/78% -> 87/88%, 14336x4096 80/79% -> 89/91%, 4096x4096 75/79% ->
// 91/90%, 4096x14336 91/90% -> 87/91%; w2g64 within the noise (77-84% either way); 4096
// lost to both (bench/results/cpu_a8_prefetch_20261205_s38.txt).
inline constexpr std::uintptr_t a8_prefetch_bytes = 16384;

// The a8 GEMV of one token takes two weight rows at a time on rows of at least this many
// columns. A long row's activations (K int8 and K / 32 f32 block scales: 16 KB at K =
// 14336) share L1 with the weights streaming past them, and one row at a time reads them
// once per row; two rows at a time read them once per two rows. On the 2-vCPU Xeon VM
// (AVX-512 VNNI, 48 KB L1d; paired fractions of read bandwidth, 2 threads) at 4096 x 14336:
// w4g128 81-87% -> 89-91%, w3g128 70-75% -> 82-87%, w2g64 74-77% -> 77-86%. Shorter rows
// lost: 4096 x 4096 w4g128 90-91% -> 82-88% (five rounds, alternating builds), though two
// rows ran 10-15% faster in cache there (bench/results/cpu_gemv_bars_20261206_s42.txt).
// The AVX2 kernel (header-only, -mavx2), in cache at K = 14336: w4g128 and w8g128 +17%,
// w3g128 +10%, w2g64 +8% (bench/proto/a8_two_rows_avx2_s42.cpp).
inline constexpr std::int64_t a8_two_rows_min_cols = 12288;

// Prefetches the cache line a8_prefetch_bytes past p into L2 (prefetcht1). On the
// 2-vCPU Xeon VM (8192 x 8192, 2 threads, alternating runs of paired fractions,
// bench::time_paired), prefetchnta -> prefetcht0 had moved w4g128 from 83-85% to 89-94% of
// read bandwidth, w2g64 77-82% -> 79-86%, w3g128 68-79% -> 78-81%, w8g128 82-91% ->
// 100-104% and w6g128 89-90% -> 94% (stop 38). prefetcht0 -> prefetcht1 (into L2, not L1),
// measured on stop 40's VM of the same kind with huge-page weights, 4 DRAM shapes
// (4096x4096, 4096x14336, 14336x4096, 8192x8192), 2 threads, builds alternating, 2-3
// rounds: w8g128 a8 84-93% -> 87-97%, w4g128 73-90% -> 81-89%; prefetcht2 measured the
// same as t1 (bench/results/cpu_a8_prefetch_l2_20261206_s40.txt). Past the end of the codes
// too: prefetch_ahead's address is an integer (prefetch.hpp).
inline void a8_prefetch(const std::uint8_t* p) {
  prefetch_ahead<2>(p, a8_prefetch_bytes);
}

// Floats of the a8 GEMV's stack buffer for a row's group scales (8 KB: K = 262144 at group 128).
inline constexpr std::int64_t a8_row_scales_stack = 2048;

// Storage for one weight row's group scales as f32 (`floats` of them), on the stack when
// they fit, else on the heap once per call; nothing at all where Enabled is false.
template <bool Enabled>
struct a8_row_scales {
  explicit a8_row_scales(std::int64_t) {}
  float* data() { return nullptr; }
};
template <>
struct a8_row_scales<true> {
  alignas(64) float stack[a8_row_scales_stack];
  aligned_buffer<float> heap;
  explicit a8_row_scales(std::int64_t floats) {
    if (floats > a8_row_scales_stack) heap = aligned_buffer<float>(static_cast<std::size_t>(floats));
  }
  float* data() { return heap.size() > 0 ? heap.data() : stack; }
};

// Columns [0, result) of a row of k columns and row_bytes code bytes whose steps
// (StepCols columns, StepCols * Bits / 8 bytes each) have a8_whole_load bytes left.
template <int StepCols, int Bits>
std::uint64_t a8_fast_columns(std::int64_t k, std::int64_t row_bytes) {
  constexpr std::int64_t step_bytes = StepCols * Bits / 8;
  if (row_bytes < a8_whole_load) return 0;
  const std::int64_t steps = std::min((row_bytes - a8_whole_load) / step_bytes + 1, (k + StepCols - 1) / StepCols);
  return static_cast<std::uint64_t>(steps * StepCols);
}

// Y[m0, m0 + M)[n0, n1) for one Format on AVX2 / AVX-512 (see the notes at the top).
template <class Arch, class Format, int M>
void gemv_a8_x86(const quant::qtensor_view& w, const a8_activations& xa, std::int64_t m0, matrix_view<float> y,
                 std::int64_t n0, std::int64_t n1) {
  using step_t = decltype(a8_step_of<Arch, Format::bits>(Arch{}));
  using F = decltype(a8_floats_of<Arch>(Arch{}));
  using fvec = typename F::fvec;
  using ivec = typename step_t::ivec;
  constexpr int bits = Format::bits;
  constexpr int step_cols = step_t::cols;
  constexpr std::uint64_t pair_cols = std::uint64_t{2} * step_cols;  // two steps: of one group, or one a chain
  constexpr int lane_cols = 4 * step_t::interleave;
  static_assert(step_cols / lane_cols == F::lanes, "a step fills one register of i32 lanes");
  static_assert(step_t::load_bytes <= a8_whole_load);
  // Grouped formats take the group scales per step, as a vector over the lanes
  // (a broadcast where a group spans the step); per-channel rows sum unscaled and
  // take their one scale at the end. (Summing each group unscaled and scaling it
  // once, as the f32 kernels do, measured 1.4-1.7x slower for 8-, 5- and 4-bit
  // g128 steps of 64-128 columns: the per-group bookkeeping costs more than a
  // multiply per step.)
  constexpr bool grouped = Format::group_size != quant::per_channel;
  constexpr int offset = step_t::code_offset;
  const step_t step{};
  const std::int64_t k = w.cols();
  const std::int64_t group = w.layout.group;
  const std::int64_t n_groups = w.layout.n_groups;
  const std::int64_t row_bytes = w.layout.code_row_bytes;
  const std::int8_t* q[M];      // [k_pad] each: the activations of row m0 + i
  const float* blocks[M];       // [scale_stride]
  const float* zero_sum[M];     // [group_stride]
  for (int i = 0; i < M; ++i) {
    q[i] = xa.q + (m0 + i) * xa.k_pad;
    blocks[i] = xa.block_scale + (m0 + i) * xa.scale_stride;
    zero_sum[i] = xa.zero_sum + (m0 + i) * xa.group_stride;
  }
  // The block scale d over each i32 lane of the step at column c0 (a lane's columns
  // lie in one 32-column block). Stored once per block, not per lane, so that the
  // activations of a long row stay in L1 beside the streaming weights: per lane they
  // took 1 byte per column at 8 bits (28 KB at K = 14336, with the int8 values), and
  // K = 14336 streamed at 61-65% of read bandwidth against 79-100% at K = 4096-8192.
  const auto lane_scales = [](const float* d, std::uint64_t c0) {  // unsigned: c0 / 32 is a shift
    return F::template block_scales<ref::a8_block / lane_cols>(d + c0 / ref::a8_block);
  };
  const std::uint64_t fast_end = a8_fast_columns<step_cols, bits>(k, row_bytes);
  // Accumulator chains of the grouped formats: two for 64-column steps at M <= 2, where
  // one chain waits an FMA latency per step, about what an 8-bit step takes (8-bit g128 in
  // cache: 3.5 -> 2.6 cycles per step); the 128- and 256-column steps measured ~7% slower
  // with two.
  constexpr int grouped_chains = M <= 2 && step_cols <= 64 ? 2 : 1;
  // With two chains, grouped formats (AVX-512 VNNI: 8-, 6- and 5-bit codes; AVX2: every
  // width but 2 bits, untimed) take their steps in pairs that lie in one group (group_size
  // a multiple of two steps): the two steps are summed with their block scales only, and
  // the pair is scaled once by the group's, from the row's scales converted to f32 at the
  // row's start (a broadcast load, which needs no vector ALU port). Per 64-column step the
  // f16 scale's conversion and broadcast and the extra multiply were 4 of ~9 AVX-512
  // operations, and 512-bit operations share two ports (0 and 5 on Intel): 8-bit g128 rows
  // in cache streamed 8-13% faster on the 2-vCPU Xeon VM at 1024 x 1024, 2-3% at 2048 x 512
  // (1 thread; bench/results/cpu_a8_prefetch_l2_20261206_s40.txt). The same f32 broadcast
  // for single steps (4-bit: 128 columns, one group each) measured 4-8% slower for 4-bit
  // and 5-7% for 3-bit rows in cache, and converting row n + 1's scales while row n streams
  // slower still, so only the pairs use it.
  constexpr bool pairs = grouped && grouped_chains == 2 && Format::group_size % (2 * step_cols) == 0;
  // Two weight rows at once (one token, grouped formats, rows of a8_two_rows_min_cols
  // or more): each step's activations and block scales are loaded once for both rows,
  // and the two rows' sums are two independent chains (see a8_two_rows_min_cols).
  constexpr bool two_rows = M == 1 && grouped;
  const std::int64_t rs_stride = n_groups + F::lanes;
  a8_row_scales<pairs> row_scale_storage((two_rows ? 2 : 1) * rs_stride);
  float* const row_scales = row_scale_storage.data();  // [round_up(n_groups, lanes)], then the second row's
  // A row's group scales as f32 into out: whole vectors, then one scale at a time (a
  // masked load on every row slows the streaming; see the zero-point fold).
  const auto scales_f32 = [&](const f16* scales, float* out) {
    std::int64_t g = 0;
    for (; g + F::lanes <= n_groups; g += F::lanes) F::store(out + g, F::scales(scales + g, F::lanes));
    for (; g < n_groups; ++g) out[g] = F::scale(scales[g]);
  };
  // Decodes the step at column c0 of the row whose codes start at `codes`. Steps before
  // fast_end read whole vectors inside the row: a constant byte count folds the decode's
  // end-of-row test away (K = 896, 4-bit, in cache: 16.3 -> 12.5 ns per row on Zen 5).
  const auto decode_at = [&](const std::uint8_t* codes, std::uint64_t c0, ivec(&v)[step_t::vectors], auto checked) {
    const std::uint64_t b0 = c0 * bits / 8;
    a8_prefetch(codes + b0);
    step.decode(codes + b0, decltype(checked)::value ? row_bytes - static_cast<std::int64_t>(b0) : a8_whole_load, v);
  };
  // The zero-point fold of row n: y = sum(acc) - sum_g s_g (z_g - offset) zero_sum_g.
  const auto finish = [&](std::int64_t n, fvec(&acc)[M]) {
    const f16* scales = w.scales + n * n_groups;  // [n_groups]
    const std::uint8_t* zeros = Format::symmetric ? nullptr : w.zeros + n * w.layout.zero_row_bytes;
    if constexpr (Format::group_size == quant::per_channel) {
      const int z = Format::symmetric ? Format::symmetric_zero : static_cast<int>(quant::get_code(zeros, 0, bits));
      const float t = F::scale(scales[0]) * static_cast<float>(z - offset);
      for (int i = 0; i < M; ++i) y(m0 + i, n) = F::sum(acc[i]) - t * zero_sum[i][0];
    } else {
      fvec corr[M];
      for (auto& c : corr) c = F::zero();
      for (std::int64_t g0 = 0; g0 < n_groups; g0 += F::lanes) {
        fvec z;
        if constexpr (Format::symmetric) z = F::set1(static_cast<float>(Format::symmetric_zero - offset));
        else z = F::sub(F::template zero_points<bits>(zeros, w.layout.zero_row_bytes, g0), F::set1(static_cast<float>(offset)));
        const fvec t = F::mul(F::scales(scales + g0, n_groups - g0), z);  // 0 past the last group
        for (int i = 0; i < M; ++i) corr[i] = F::fma(t, F::load(zero_sum[i] + g0), corr[i]);
      }
      for (int i = 0; i < M; ++i) y(m0 + i, n) = F::sum(F::sub(acc[i], corr[i]));
    }
  };
  std::int64_t n_two = n0;
  if constexpr (two_rows) {
    constexpr int group_lanes = Format::group_size / lane_cols;
    const auto end = static_cast<std::uint64_t>(k);
    const std::int64_t pairs_end = k >= a8_two_rows_min_cols ? n0 + (n1 - n0) / 2 * 2 : n0;
    for (; n_two < pairs_end; n_two += 2) {
      const std::uint8_t* c_a = w.codes + n_two * row_bytes;  // [code_row_bytes]
      const std::uint8_t* c_b = c_a + row_bytes;              // [code_row_bytes]
      const f16* s_a = w.scales + n_two * n_groups;           // [n_groups]
      const f16* s_b = s_a + n_groups;                        // [n_groups]
      fvec acc_a[M] = {F::zero()}, acc_b[M] = {F::zero()};
      const auto two_steps = [&](std::uint64_t c0, auto checked) {
        ivec va[step_t::vectors], vb[step_t::vectors];
        decode_at(c_a, c0, va, checked);
        decode_at(c_b, c0, vb, checked);
        const std::uint64_t g0 = c0 / Format::group_size;
        const std::int64_t left = n_groups - static_cast<std::int64_t>(g0);
        const fvec sa = F::template scales_expanded<group_lanes>(s_a + g0, left);
        const fvec sb = F::template scales_expanded<group_lanes>(s_b + g0, left);
        const fvec ls = lane_scales(blocks[0], c0);
        acc_a[0] = F::fma(F::mul(F::cvt(step.dot(va, q[0] + c0)), ls), sa, acc_a[0]);
        acc_b[0] = F::fma(F::mul(F::cvt(step.dot(vb, q[0] + c0)), ls), sb, acc_b[0]);
      };
      std::uint64_t c0 = 0;
      if constexpr (pairs) {
        float* const rs_a = row_scales;
        float* const rs_b = row_scales + rs_stride;
        scales_f32(s_a, rs_a);
        scales_f32(s_b, rs_b);
        for (; c0 + pair_cols <= fast_end; c0 += pair_cols) {
          ivec a0[step_t::vectors], a1[step_t::vectors], b0[step_t::vectors], b1[step_t::vectors];
          decode_at(c_a, c0, a0, std::false_type{});
          decode_at(c_a, c0 + step_cols, a1, std::false_type{});
          decode_at(c_b, c0, b0, std::false_type{});
          decode_at(c_b, c0 + step_cols, b1, std::false_type{});
          const fvec l0 = lane_scales(blocks[0], c0), l1 = lane_scales(blocks[0], c0 + step_cols);
          const std::int8_t* x0 = q[0] + c0;
          fvec ta = F::mul(F::cvt(step.dot(a0, x0)), l0);
          fvec tb = F::mul(F::cvt(step.dot(b0, x0)), l0);
          ta = F::fma(F::cvt(step.dot(a1, x0 + step_cols)), l1, ta);
          tb = F::fma(F::cvt(step.dot(b1, x0 + step_cols)), l1, tb);
          const std::uint64_t gi = c0 / Format::group_size;
          acc_a[0] = F::fma(ta, F::set1(rs_a[gi]), acc_a[0]);
          acc_b[0] = F::fma(tb, F::set1(rs_b[gi]), acc_b[0]);
        }
      }
      for (; c0 < fast_end; c0 += step_cols) two_steps(c0, std::false_type{});
      for (; c0 < end; c0 += step_cols) two_steps(c0, std::true_type{});
      finish(n_two, acc_a);
      finish(n_two + 1, acc_b);
    }
  }
  for (std::int64_t n = n_two; n < n1; ++n) {
    const std::uint8_t* codes = w.codes + n * row_bytes;  // [code_row_bytes]
    const f16* scales = w.scales + n * n_groups;           // [n_groups]
    const auto decode = [&](std::uint64_t c0, ivec (&v)[step_t::vectors], auto checked) { decode_at(codes, c0, v, checked); };
    fvec acc[M];
    for (auto& a : acc) a = F::zero();
    if constexpr (!grouped) {
      // Two chains of sums at M <= 2, so that 64-column steps (8, 6, 5, 3 bits) do
      // not wait on one FMA's latency each; more rows are chains enough.
      constexpr int chains = M <= 2 ? 2 : 1;
      for (std::int64_t g = 0; g < n_groups; ++g) {
        fvec gacc[M][chains];
        for (auto& a : gacc)
          for (auto& b : a) b = F::zero();
        const auto one_step = [&](std::int64_t c0, int chain, auto checked) {
          ivec v[step_t::vectors];
          decode(static_cast<std::uint64_t>(c0), v, checked);
          for (int i = 0; i < M; ++i)
            gacc[i][chain] =
                F::fma(F::cvt(step.dot(v, q[i] + c0)), lane_scales(blocks[i], c0), gacc[i][chain]);
        };
        const std::int64_t c_end = std::min(k, (g + 1) * group);
        std::int64_t c0 = g * group;
        const std::int64_t c_fast = std::min(c_end, static_cast<std::int64_t>(fast_end));
        constexpr std::int64_t chain_cols = std::int64_t{chains} * step_cols;  // a step for every chain
        for (; c0 + chain_cols <= c_fast; c0 += chain_cols)
          for (int u = 0; u < chains; ++u) one_step(c0 + std::int64_t{u} * step_cols, u, std::false_type{});
        for (; c0 + chain_cols <= c_end; c0 += chain_cols)
          for (int u = 0; u < chains; ++u) one_step(c0 + std::int64_t{u} * step_cols, u, std::true_type{});
        if (c0 < c_end) one_step(c0, 0, std::true_type{});  // chains = 2: one step left (or a short last one)
        const fvec s = F::set1(F::scale(scales[g]));
        for (int i = 0; i < M; ++i) {
          fvec t = gacc[i][0];
          for (int u = 1; u < chains; ++u) t = F::add(t, gacc[i][u]);
          acc[i] = F::fma(t, s, acc[i]);
        }
      }
    } else {
      constexpr int group_lanes = Format::group_size / lane_cols;
      constexpr int chains = grouped_chains;
      fvec acc2[M];
      for (auto& a : acc2) a = F::zero();
      const auto one_step = [&](std::uint64_t c0, fvec(&into)[M], auto checked) {
        ivec v[step_t::vectors];
        decode(c0, v, checked);
        const std::uint64_t g0 = c0 / Format::group_size;  // unsigned: the divisions are shifts
        const fvec s = F::template scales_expanded<group_lanes>(scales + g0, n_groups - static_cast<std::int64_t>(g0));
        for (int i = 0; i < M; ++i)
          into[i] = F::fma(F::mul(F::cvt(step.dot(v, q[i] + c0)), lane_scales(blocks[i], c0)), s, into[i]);
      };
      std::uint64_t c0 = 0;
      const auto end = static_cast<std::uint64_t>(k);
      if constexpr (pairs) {
        scales_f32(scales, row_scales);
        bool second = false;  // alternate pairs between the two chains
        for (; c0 + pair_cols <= fast_end; c0 += pair_cols, second = !second) {
          ivec v0[step_t::vectors], v1[step_t::vectors];
          decode(c0, v0, std::false_type{});
          decode(c0 + step_cols, v1, std::false_type{});
          const fvec s = F::set1(row_scales[c0 / Format::group_size]);
          for (int i = 0; i < M; ++i) {
            fvec t = F::mul(F::cvt(step.dot(v0, q[i] + c0)), lane_scales(blocks[i], c0));
            t = F::fma(F::cvt(step.dot(v1, q[i] + c0 + step_cols)), lane_scales(blocks[i], c0 + step_cols), t);
            if (second) acc2[i] = F::fma(t, s, acc2[i]);
            else acc[i] = F::fma(t, s, acc[i]);
          }
        }
      } else if constexpr (chains == 2) {
        for (; c0 + pair_cols <= fast_end; c0 += pair_cols) {
          one_step(c0, acc, std::false_type{});
          one_step(c0 + step_cols, acc2, std::false_type{});
        }
      }
      for (; c0 < fast_end; c0 += step_cols) one_step(c0, acc, std::false_type{});
      for (; c0 < end; c0 += step_cols) one_step(c0, acc, std::true_type{});
      if constexpr (chains == 2)
        for (int i = 0; i < M; ++i) acc[i] = F::add(acc[i], acc2[i]);
    }
    finish(n, acc);
  }
}

// Y[m0, m0 + M)[n0, n1) one 32-column block at a time (scalar and NEON).
template <class Arch, class Format, int M>
void gemv_a8_blocks(const quant::qtensor_view& w, const a8_activations& xa, std::int64_t m0, matrix_view<float> y,
                    std::int64_t n0, std::int64_t n1) {
  constexpr int bits = Format::bits;
  constexpr int offset = a8_scalar_code_offset<Arch, bits>;
  const std::int64_t k = w.cols();
  const std::int64_t group = w.layout.group;
  const std::int64_t n_groups = w.layout.n_groups;
  const std::int64_t row_bytes = w.layout.code_row_bytes;
  for (std::int64_t n = n0; n < n1; ++n) {
    const std::uint8_t* codes = w.codes + n * row_bytes;  // [code_row_bytes]
    const f16* scales = w.scales + n * n_groups;           // [n_groups]
    const std::uint8_t* zeros = Format::symmetric ? nullptr : w.zeros + n * w.layout.zero_row_bytes;
    float acc[M] = {}, corr[M] = {};
    for (std::int64_t g = 0; g < n_groups; ++g) {
      float gacc[M] = {};
      const std::int64_t c_end = std::min(k, (g + 1) * group);
      for (std::int64_t c = g * group; c < c_end; c += ref::a8_block) {
        alignas(16) std::uint8_t block[ref::a8_block];  // [32] codes - offset
        unpack_block_bytes<bits>(codes, row_bytes, c, static_cast<int>(std::min<std::int64_t>(ref::a8_block, c_end - c)),
                                 offset, block);
        for (int i = 0; i < M; ++i) {
          const std::int64_t row = m0 + i;
          const std::int32_t dot = dot_block_a8<Arch>(block, xa.q + row * xa.k_pad + c, Arch{});
          gacc[i] += xa.block_scale[row * xa.scale_stride + c / ref::a8_block] * static_cast<float>(dot);
        }
      }
      const float s = to_float(scales[g]);
      const int z = Format::symmetric ? Format::symmetric_zero : static_cast<int>(quant::get_code(zeros, g, bits));
      for (int i = 0; i < M; ++i) {
        acc[i] += s * gacc[i];
        corr[i] += s * static_cast<float>(z - offset) * xa.zero_sum[(m0 + i) * xa.group_stride + g];
      }
    }
    for (int i = 0; i < M; ++i) y(m0 + i, n) = acc[i] - corr[i];
  }
}

template <class Arch, class Format, int M>
void gemv_a8_rows(const quant::qtensor_view& w, const a8_activations& xa, std::int64_t m0, matrix_view<float> y,
                  std::int64_t n0, std::int64_t n1) {
  if constexpr (a8_kind(Arch{}) == a8_kernel_kind::x86) gemv_a8_x86<Arch, Format, M>(w, xa, m0, y, n0, n1);
  else gemv_a8_blocks<Arch, Format, M>(w, xa, m0, y, n0, n1);
}

template <class Arch, class Format>
void gemm_a8_format(const quant::qtensor_view& w, matrix_view<const float> x, matrix_view<float> y, thread_pool* pool) {
  static_assert(!std::is_same_v<Arch, avx512vnni> || a8_vnni_compiled,
                "the avx512vnni kernels need -mavx512vnni -mavx512vbmi (and AVX-512BW)");
  constexpr a8_layout layout = a8_layout_of<Arch, Format::bits>();
  a8_activations xa(x.rows, w.cols(), w.layout.n_groups, layout);
  alignas(64) std::byte stack[a8_stack_bytes];
  aligned_buffer<std::byte> heap;
  if (xa.bytes() <= sizeof stack) {
    xa.place(stack);
  } else {
    heap = aligned_buffer<std::byte>(xa.bytes());
    xa.place(heap.data());
  }
  prepare_a8<Arch, layout>(x, w.layout.group, xa);

  const std::int64_t m = x.rows;
  const auto chunk = [&](std::int64_t m0, std::int64_t rows, std::int64_t n0, std::int64_t n1) {
    switch (rows) {
      case 8: return gemv_a8_rows<Arch, Format, 8>(w, xa, m0, y, n0, n1);
      case 4: return gemv_a8_rows<Arch, Format, 4>(w, xa, m0, y, n0, n1);
      case 2: return gemv_a8_rows<Arch, Format, 2>(w, xa, m0, y, n0, n1);
      case 1: return gemv_a8_rows<Arch, Format, 1>(w, xa, m0, y, n0, n1);
      default: throw error("a8 GEMV chunk of " + std::to_string(rows) + " rows");  // unreachable: chunks are 8, 4, 2, 1
    }
  };
  // Rows of X in chunks of 8, 4, 2, 1 (M <= 8 takes at most 3 chunks; 1, 2, 4, 8 take one).
  const auto chunks = [&](std::int64_t n0, std::int64_t n1) {
    for (std::int64_t m0 = 0; m0 < m;) {
      const std::int64_t left = m - m0;
      const std::int64_t rows = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
      chunk(m0, rows, n0, n1);
      m0 += rows;
    }
  };
  split_rows(pool, w.rows(), w.cols() * m, [&](std::int64_t n0, std::int64_t n1) {
    if (m == 1 || m == 2 || m == 4 || m == 8) return chunk(0, m, n0, n1);
    for (std::int64_t t = n0; t < n1; t += a8_tile_rows) chunks(t, std::min(n1, t + a8_tile_rows));
  });
}

}  // namespace detail

// Y[M, N] = quantize_a8(X[M, K]) · W[N, K]ᵀ for a quantized W on architecture Arch
// (the numerics of ref::gemm_a8_ref; see ref/matmul_a8.hpp). Arch defaults to the
// best this translation unit is compiled for, with no runtime dispatch.
template <class Arch = a8_default_arch>
void gemm_a8(const quant::qtensor_view& w, matrix_view<const float> x, matrix_view<float> y,
             thread_pool* pool = nullptr) {
  ref::detail::check_gemm_shapes(w.rows(), w.cols(), x, y);
  if (x.rows == 0) return;
  quant::with_format(w.spec, [&](auto format) { detail::gemm_a8_format<Arch, decltype(format)>(w, x, y, pool); });
}

template <class Arch = a8_default_arch>
void gemv_a8(const quant::qtensor_view& w, std::span<const float> x, std::span<float> y, thread_pool* pool = nullptr) {
  gemm_a8<Arch>(w, {x.data(), 1, static_cast<std::int64_t>(x.size())},
                {y.data(), 1, static_cast<std::int64_t>(y.size())}, pool);
}

// The a8 activation quantizer of Arch's kernels: X[M, K] -> q[M, K] int8 (row stride
// K) and scales[M, ref::a8_blocks(K)], equal to ref::quantize_a8 bit for bit.
template <class Arch = a8_default_arch>
void quantize_a8(matrix_view<const float> x, std::int8_t* q, float* scales) {
  const std::int64_t blocks = ref::a8_blocks(x.cols);
  for (std::int64_t m = 0; m < x.rows; ++m)
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t c0 = b * ref::a8_block;
      const int n = static_cast<int>(std::min<std::int64_t>(ref::a8_block, x.cols - c0));
      alignas(64) std::int8_t block[ref::a8_block];  // [32]
      scales[m * blocks + b] = detail::quantize_block_a8<Arch>(x.row(m) + c0, n, block, Arch{}).scale;
      std::memcpy(q + m * x.cols + c0, block, static_cast<std::size_t>(n));
    }
}

}  // namespace qmr::simd
