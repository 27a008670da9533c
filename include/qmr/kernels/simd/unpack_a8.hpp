// Raw instruction wrappers of the int8-activation (a8) kernels, per architecture tag: packed Bits-bit codes unpacked straight into byte vectors, u8·s8 dot products into i32 lanes, and the block quantizer of the activations.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "../../core/half.hpp"
#include "../ref/matmul_a8.hpp"
#include "unpack.hpp"

namespace qmr::simd {

// AVX-512BW plus VNNI (vpdpbusd: u8·s8 products summed four at a time into i32) and
// VBMI (vpermb, vpmultishiftqb: any byte to any position, any 8 bits of a qword to a
// byte): Ice Lake, Zen 4 and later. xsimd 8.1 has no tag for them, so qmr adds one.
// It derives from avx512bw, so every avx512bw overload serves it where it has none of
// its own, but it is not an xsimd architecture: only the a8 kernels take it, and
// gemm_a8_dispatched checks the CPU for it before xsimd::dispatch runs.
struct avx512vnni : xsimd::avx512bw {
  static constexpr char const* name() noexcept { return "avx512vnni"; }
};

}  // namespace qmr::simd

// The translation unit is compiled for avx512vnni (-mavx512vnni -mavx512vbmi on top of AVX-512BW).
#if XSIMD_WITH_AVX512BW && defined(__AVX512VNNI__) && defined(__AVX512VBMI__)
#define QMR_SIMD_WITH_AVX512VNNI 1
#endif

namespace qmr::simd::detail {

// ---------------------------------------------------------------------------
// How an a8 kernel walks a row. A step covers `interleave * vector_bytes`
// columns, whose codes are unpacked into `interleave` byte vectors, in one of
// two orders:
// * bit-split: byte p of vector t holds the code of column interleave * p + t of
//   the step. 8-bit and 3-, 5-, 6-bit codes come out in column order (interleave
//   1); 4-bit codes as the low nibbles then the high nibbles of the same bytes
//   (2), 2-bit codes as the four bit pairs of each byte (4), so that a mask and a
//   shift unpack them.
// * lane-blocked (3 bits with VBMI, interleave 2): byte 4j + r of vector t holds
//   column 8j + 4t + r; vpermb + vpmultishiftqb can put any code anywhere, and
//   128 columns per step halve the f32 work of 64-column steps.
// The activations are quantized into the same order, so the dot product of a
// code vector with its activation vector needs no shuffle. An i32 lane of the
// dot product (4 adjacent bytes) covers, over the step's vectors, the
// 4 * interleave consecutive columns [4 * interleave * j, ...) in both orders:
// all in one 32-column activation block and one weight group, which is what lets
// the scales be applied per lane.
// ---------------------------------------------------------------------------
template <int Bits>
inline constexpr int a8_interleave = Bits == 4 ? 2 : Bits == 2 ? 4 : 1;

// Activation layout of one kernel: vector_bytes per code vector (16, 32 or 64;
// the scalar kernel walks one 32-column block at a time), interleave and order as
// above, and the columns one scale entry covers (4 * interleave for the SIMD
// kernels' i32 lanes, a whole block for the scalar kernel).
struct a8_layout {
  int vector_bytes = 32;
  int interleave = 1;
  int lane_cols = 32;
  bool lane_blocked = false;
  constexpr int cols() const { return vector_bytes * interleave; }
  // The step column whose activation goes to byte p of vector t.
  constexpr int column(int t, int p) const {
    return lane_blocked ? 4 * interleave * (p / 4) + 4 * t + p % 4 : interleave * p + t;
  }
};

// ---------------------------------------------------------------------------
// The activation quantizer, bit for bit ref::quantize_a8 on one block: x[0, n)
// (n <= 32) into q[0, 32) (zeros past n), returning the block's scale and the sum
// of its codes. The SIMD versions compute the same f32 products and round them the
// same way (cvtps2dq: to nearest, ties to even).
// ---------------------------------------------------------------------------
struct a8_quantized_block {
  float scale;
  std::int32_t sum;
};

template <class Arch>
inline a8_quantized_block quantize_block_a8(const float* x, int n, std::int8_t* q, xsimd::generic) {
  float amax = 0.0f;
  for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = ref::a8_scale(amax);
  const float id = ref::a8_inverse_scale(d);
  std::int32_t sum = 0;
  for (int j = 0; j < n; ++j) {
    q[j] = ref::a8_code(x[j] * id);
    sum += q[j];
  }
  for (int j = n; j < static_cast<int>(ref::a8_block); ++j) q[j] = 0;
  return {d, sum};
}

#if XSIMD_WITH_AVX2
template <class Arch>
inline a8_quantized_block quantize_block_a8(const float* x, int n, std::int8_t* q, xsimd::avx2) {
  __m256 v[4];
  for (int j = 0; j < 4; ++j) {
    const int left = std::clamp(n - 8 * j, 0, 8);
    if (left == 8) {
      v[j] = _mm256_loadu_ps(x + std::ptrdiff_t{8} * j);
    } else {
      // Lane i loads when left > i (maskload reads nothing where the mask is clear).
      const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      v[j] = _mm256_maskload_ps(x + std::ptrdiff_t{8} * j, mask);
    }
  }
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                           _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  const float d = ref::a8_scale(_mm_cvtss_f32(h));
  const __m256 id = _mm256_set1_ps(ref::a8_inverse_scale(d));
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  __m256i i32[4];
  for (int j = 0; j < 4; ++j)
    i32[j] = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v[j], id)), lo), hi);
  // packs work within 128-bit halves: the bytes come out as dwords 0 4 1 5 2 6 3 7.
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i32[0], i32[1]), _mm256_packs_epi32(i32[2], i32[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q),
                      _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  const __m256i s8 = _mm256_add_epi32(_mm256_add_epi32(i32[0], i32[1]), _mm256_add_epi32(i32[2], i32[3]));
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
  return {d, _mm_cvtsi128_si32(s4)};
}
#endif

#if XSIMD_WITH_AVX512BW
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which it reports as
// (maybe-)uninitialized where they are inlined (GCC bug 105593, fixed in 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
template <class Arch>
inline a8_quantized_block quantize_block_a8(const float* x, int n, std::int8_t* q, xsimd::avx512bw) {
  const auto mask = [](int left) {
    return static_cast<__mmask16>(left >= 16 ? 0xFFFFu : left <= 0 ? 0u : (1u << left) - 1u);
  };
  const __m512 v0 = _mm512_maskz_loadu_ps(mask(n), x);
  const __m512 v1 = _mm512_maskz_loadu_ps(mask(n - 16), x + 16);
  const float d = ref::a8_scale(_mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1))));
  const __m512 id = _mm512_set1_ps(ref::a8_inverse_scale(d));
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  const __m512i i0 = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v0, id)), lo), hi);
  const __m512i i1 = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v1, id)), lo), hi);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(i0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(i1));
  return {d, _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1))};
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

// ---------------------------------------------------------------------------
// Which a8 kernel an architecture runs: the scalar one (any ISA without its own;
// its integer loops are left to the compiler), the x86 one over AVX2 or AVX-512
// byte vectors, or the scalar loop with NEON dot products.
// ---------------------------------------------------------------------------
enum class a8_kernel_kind { scalar, x86, neon };
constexpr a8_kernel_kind a8_kind(xsimd::generic) { return a8_kernel_kind::scalar; }
#if XSIMD_WITH_AVX2
constexpr a8_kernel_kind a8_kind(xsimd::avx2) { return a8_kernel_kind::x86; }
#endif
#if XSIMD_WITH_AVX512BW
constexpr a8_kernel_kind a8_kind(xsimd::avx512bw) { return a8_kernel_kind::x86; }
#endif
#if XSIMD_WITH_NEON64
constexpr a8_kernel_kind a8_kind(xsimd::neon64) { return a8_kernel_kind::neon; }
#endif

// ---------------------------------------------------------------------------
// Code offset of the scalar and NEON kernels: 8-bit codes are taken as signed
// bytes code - 128 (NEON's vmull_s8 multiplies signed bytes; 0..63 are valid as
// they are), and the zero point is moved by the same amount.
// ---------------------------------------------------------------------------
template <class Arch, int Bits>
inline constexpr int a8_scalar_code_offset = (Bits == 8 && a8_kind(Arch{}) == a8_kernel_kind::neon) ? 128 : 0;

// Codes [c, c + n) of a row (c, n multiples of 8, n <= 32) as bytes out[0, 32) minus
// `offset`, zeros past n; each 8 codes are Bits whole bytes read as one word.
template <int Bits>
inline void unpack_block_bytes(const std::uint8_t* row_codes, std::int64_t row_bytes, std::int64_t c, int n,
                               int offset, std::uint8_t* out) {
  constexpr std::uint64_t mask = (std::uint64_t{1} << Bits) - 1;
  for (int j = 0; j < n; j += 8) {
    const std::uint64_t word = load_block<8, Bits>(row_codes, row_bytes, (c + j) / 8 * Bits);
    for (int i = 0; i < 8; ++i)
      out[j + i] = static_cast<std::uint8_t>(static_cast<int>((word >> (i * Bits)) & mask) - offset);
  }
  for (int j = n; j < static_cast<int>(ref::a8_block); ++j) out[j] = 0;
}

// sum_j code[j] * a[j] over a 32-byte block: unsigned codes (portable), or signed
// codes with NEON's widening multiply (|code| <= 128, |a| <= 127: the i16 products
// and their pairwise sums cannot overflow).
template <class Arch>
inline std::int32_t dot_block_a8(const std::uint8_t* codes, const std::int8_t* a, xsimd::generic) {
  std::int32_t s = 0;
  for (int j = 0; j < static_cast<int>(ref::a8_block); ++j) s += static_cast<std::int32_t>(codes[j]) * a[j];
  return s;
}
#if XSIMD_WITH_NEON64
template <class Arch>
inline std::int32_t dot_block_a8(const std::uint8_t* codes, const std::int8_t* a, xsimd::neon64) {
  int32x4_t acc = vdupq_n_s32(0);
  for (int j = 0; j < static_cast<int>(ref::a8_block); j += 16) {
    const int8x16_t c = vreinterpretq_s8_u8(vld1q_u8(codes + j));
    const int8x16_t x = vld1q_s8(a + j);
#if defined(__ARM_FEATURE_DOTPROD)
    acc = vdotq_s32(acc, c, x);
#else
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(c), vget_low_s8(x)));
    acc = vpadalq_s16(acc, vmull_high_s8(c, x));
#endif
  }
  return vaddvq_s32(acc);
}
#endif

// A zero-padded copy of the n (< Size) bytes left in a row, for the last step of a
// row, whose whole-register loads would read past it.
template <int Size>
struct padded_bytes {
  alignas(64) std::uint8_t b[Size];
  padded_bytes(const std::uint8_t* p, std::int64_t n) {
    std::memset(b, 0, Size);
    std::memcpy(b, p, static_cast<std::size_t>(std::min<std::int64_t>(n, Size)));
  }
};

// Byte-gather and shift tables of the 16-bit-lane unpack of 3, 5 and 6 bits on ISAs
// without VBMI: within a 128-bit lane holding 16 codes (2 * Bits bytes), 16-bit lane
// p gathers the two bytes holding code 2p (table even) or 2p + 1 (table odd); the
// code then starts at bit shift_even[p] (shift_odd[p]) of that 16-bit word.
template <int Bits>
struct a8_odd_tables {
  static constexpr std::array<std::uint8_t, 64> gather(int parity) {
    std::array<std::uint8_t, 64> t{};
    for (int lane = 0; lane < 4; ++lane)
      for (int p = 0; p < 8; ++p) {
        const int byte = (2 * p + parity) * Bits / 8;  // <= 11, and byte + 1 <= 12: inside the 16 loaded
        t[16 * lane + 2 * p] = static_cast<std::uint8_t>(byte);
        t[16 * lane + 2 * p + 1] = static_cast<std::uint8_t>(byte + 1);
      }
    return t;
  }
  static constexpr std::array<std::int16_t, 32> shifts(int parity) {
    std::array<std::int16_t, 32> s{};
    for (int p = 0; p < 32; ++p) s[p] = static_cast<std::int16_t>((2 * (p % 8) + parity) * Bits % 8);
    return s;
  }
  // 2^(8 - shift): the multiplier that moves bits [shift, shift + 8) into the high byte.
  static constexpr std::array<std::int16_t, 32> multipliers(int parity) {
    std::array<std::int16_t, 32> m{};
    for (int p = 0; p < 32; ++p) m[p] = static_cast<std::int16_t>(1 << (8 - shifts(parity)[p]));
    return m;
  }
  static constexpr auto even = gather(0);
  static constexpr auto odd = gather(1);
  static constexpr auto shift_even = shifts(0);
  static constexpr auto shift_odd = shifts(1);
  static constexpr auto multiplier_even = multipliers(0);
  static constexpr auto multiplier_odd = multipliers(1);
};

// VBMI tables for 3 bits, lane-blocked: for vector t, qword q (lanes 2q and 2q + 1)
// holds columns 16q + 4t + r and 16q + 8 + 4t + r (r < 4), whose bits lie within the
// 8 bytes from byte 6q + t (bit 48q + 8t); vpermb gathers those bytes into qword q
// and vpmultishiftqb takes each code at its offset, 24 (s / 4) + 4t + 3 (s % 4) for
// byte s of the qword (<= 37, so the 3 bits stay within the qword).
template <int Bits>
struct a8_blocked_tables {
  static_assert(Bits == 3, "only 3-bit codes are unpacked lane-blocked");
  static constexpr std::array<std::uint8_t, 64> permute(int t) {
    std::array<std::uint8_t, 64> idx{};
    for (int q = 0; q < 8; ++q)
      for (int j = 0; j < 8; ++j) idx[8 * q + j] = static_cast<std::uint8_t>(6 * q + t + j);  // <= 50
    return idx;
  }
  static constexpr std::array<std::uint8_t, 64> offsets(int t) {
    std::array<std::uint8_t, 64> o{};
    for (int i = 0; i < 64; ++i) o[i] = static_cast<std::uint8_t>(24 * (i % 8 / 4) + 4 * t + 3 * (i % 4));
    return o;
  }
  static constexpr auto permute0 = permute(0);
  static constexpr auto permute1 = permute(1);
  static constexpr auto offsets0 = offsets(0);
  static constexpr auto offsets1 = offsets(1);
};

// VBMI tables for 5 and 6 bits: vpermb puts the Bits bytes of codes 8q..8q+7
// into qword q, then vpmultishiftqb takes the 8 bits at offset j * Bits of qword q
// into its byte j.
template <int Bits>
struct a8_multishift_tables {
  static constexpr std::array<std::uint8_t, 64> permute = [] {
    std::array<std::uint8_t, 64> t{};
    for (int q = 0; q < 8; ++q)
      for (int j = 0; j < 8; ++j) t[8 * q + j] = static_cast<std::uint8_t>(q * Bits + j);  // <= 49
    return t;
  }();
  static constexpr std::array<std::uint8_t, 64> offsets = [] {
    std::array<std::uint8_t, 64> t{};
    for (int i = 0; i < 64; ++i) t[i] = static_cast<std::uint8_t>(i % 8 * Bits);
    return t;
  }();
};

#if XSIMD_WITH_AVX2
// ---------------------------------------------------------------------------
// AVX2: one step = 32 bytes of activations per code vector, 8 i32 lanes.
// Integer dot: vpmaddubsw (u8 code × s8 activation, pairs summed to i16) then
// vpmaddwd with ones (pairs to i32). maddubs saturates at ±32767; codes up to 63
// give |pair| <= 2 * 63 * 127 = 16002, and the 2 (4-bit) or 4 (2-bit) vectors of a
// step summed in i16 stay under 7620. 8-bit codes would reach 2 * 255 * 127, so they
// go signed: c' = code - 128, maddubs(|c'|, sign(a, c')), |c'| <= 128 and
// |a| <= 127 (the quantizer never makes -128) give |pair| <= 32512; the zero point
// moves by code_offset = 128.
// ---------------------------------------------------------------------------
template <class Tag, int Bits>
struct a8_step_avx2 {
  using ivec = __m256i;
  static constexpr bool lane_blocked = false;
  static constexpr int interleave = a8_interleave<Bits>;
  static constexpr int vector_bytes = 32;
  static constexpr int cols = interleave * vector_bytes;
  static constexpr int step_bytes = cols * Bits / 8;
  static constexpr bool odd = Bits == 3 || Bits == 5 || Bits == 6;
  static constexpr bool signed_codes = Bits == 8;
  static constexpr int code_offset = signed_codes ? 128 : 0;
  static constexpr int vectors = signed_codes ? 2 : interleave;  // decoded registers per step
  // Bytes a full decode reads: odd widths load 16 bytes for each 16 codes.
  static constexpr int load_bytes = odd ? 2 * Bits + 16 : 32;

  __m256i low_mask = _mm256_set1_epi8(static_cast<char>((1 << (Bits == 8 ? 7 : Bits)) - 1));
  __m256i ones = _mm256_set1_epi16(1);

  void decode(const std::uint8_t* p, std::int64_t avail, __m256i (&v)[vectors]) const {
    if (avail < load_bytes) {
      const padded_bytes<64> tail(p, avail);
      return decode_full(tail.b, v);
    }
    decode_full(p, v);
  }

  void decode_full(const std::uint8_t* p, __m256i (&v)[vectors]) const {
    if constexpr (Bits == 8) {
      const __m256i c = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
                                         _mm256_set1_epi8(static_cast<char>(0x80)));
      v[0] = _mm256_abs_epi8(c);  // -128 -> 0x80, read as the unsigned 128
      v[1] = c;
    } else if constexpr (Bits == 4 || Bits == 2) {
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      for (int t = 0; t < interleave; ++t) v[t] = _mm256_and_si256(_mm256_srli_epi16(b, t * Bits), low_mask);
    } else {
      using tables = a8_odd_tables<Bits>;
      // Codes 0-15 in the low 128 bits, 16-31 in the high: 16 bytes loaded from each's start.
      const __m256i x = _mm256_inserti128_si256(
          _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + std::ptrdiff_t{2} * Bits)), 1);
      const __m256i even = _mm256_shuffle_epi8(x, load(tables::even.data()));
      const __m256i odd_w = _mm256_shuffle_epi8(x, load(tables::odd.data()));
      // No 16-bit variable shifts on AVX2: multiplying by 2^(8 - s) moves bits
      // [s, s + 8) of each word into its high byte.
      const __m256i even_hi = _mm256_mullo_epi16(even, load(tables::multiplier_even.data()));
      const __m256i odd_hi = _mm256_mullo_epi16(odd_w, load(tables::multiplier_odd.data()));
      const __m256i bytes = _mm256_or_si256(_mm256_srli_epi16(even_hi, 8),
                                            _mm256_and_si256(odd_hi, _mm256_set1_epi16(static_cast<short>(0xFF00))));
      v[0] = _mm256_and_si256(bytes, low_mask);
    }
  }

  // i32 lane j: the dot product of bytes [4j, 4j + 4) of every code vector with the activations.
  __m256i dot(const __m256i (&v)[vectors], const std::int8_t* a) const {
    if constexpr (signed_codes) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
      return _mm256_madd_epi16(_mm256_maddubs_epi16(v[0], _mm256_sign_epi8(x, v[1])), ones);
    } else {
      __m256i s = _mm256_maddubs_epi16(v[0], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a)));
      for (int t = 1; t < interleave; ++t)
        s = _mm256_add_epi16(
            s, _mm256_maddubs_epi16(v[t], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + std::ptrdiff_t{32} * t))));
      return _mm256_madd_epi16(s, ones);
    }
  }

 private:
  template <class T>
  static __m256i load(const T* t) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t));
  }
};
#endif

#if XSIMD_WITH_AVX512BW
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
// ---------------------------------------------------------------------------
// AVX-512: one step = 64 bytes of activations per code vector, 16 i32 lanes.
// With VNNI (Tag avx512vnni) the dot product is vpdpbusd, exact for any u8 code, and
// 3-, 5- and 6-bit codes unpack with vpermb + vpmultishiftqb; on plain AVX-512BW it
// is maddubs + maddwd as on AVX2 (8-bit codes signed, with the sign applied by a
// masked subtraction: there is no vpsignb), and 3-, 5- and 6-bit codes unpack in
// 16-bit lanes (vpshufb, vpsrlvw / vpsllvw, a byte blend). Loads near the end of a
// row are masked to the row's bytes.
// ---------------------------------------------------------------------------
template <class Tag, int Bits>
struct a8_step_avx512 {
  using ivec = __m512i;
  static constexpr bool vnni = std::is_same_v<Tag, avx512vnni>;
  static constexpr bool lane_blocked = vnni && Bits == 3;
  static constexpr int interleave = lane_blocked ? 2 : a8_interleave<Bits>;
  static constexpr int vector_bytes = 64;
  static constexpr int cols = interleave * vector_bytes;
  static constexpr int step_bytes = cols * Bits / 8;
  static constexpr bool odd = Bits == 3 || Bits == 5 || Bits == 6;
  static constexpr bool lanes16 = odd && !vnni;  // the 16-bit-lane unpack
  static constexpr bool signed_codes = Bits == 8 && !vnni;
  static constexpr int code_offset = signed_codes ? 128 : 0;
  static constexpr int vectors = signed_codes ? 2 : interleave;
  static constexpr int load_bytes = lanes16 ? 6 * Bits + 16 : step_bytes;

  __m512i low_mask = _mm512_set1_epi8(static_cast<char>((1 << (Bits == 8 ? 7 : Bits)) - 1));
  __m512i ones = _mm512_set1_epi16(1);

  void decode(const std::uint8_t* p, std::int64_t avail, __m512i (&v)[vectors]) const {
    if constexpr (lanes16) {
      if (avail < load_bytes) {
        const padded_bytes<128> tail(p, avail);
        return decode_lanes16(tail.b, v);
      }
      decode_lanes16(p, v);
    } else {
      // A whole 64-byte load wherever the row has 64 bytes left, masked only at the
      // end of the row (3-, 5- and 6-bit steps use 24, 40 or 48 of the bytes): with a
      // masked load in every step, w6g128 streamed from DRAM at 3.1 instead of
      // 13.7 GB/s (Zen 5, 1 thread).
      const __m512i b = avail >= 64 ? _mm512_loadu_si512(p)
                                    : _mm512_maskz_loadu_epi8(_cvtu64_mask64((std::uint64_t{1} << avail) - 1), p);
      if constexpr (lane_blocked) {
#if defined(QMR_SIMD_WITH_AVX512VNNI)
        using tables = a8_blocked_tables<Bits>;
        const auto unpack = [&](const std::array<std::uint8_t, 64>& idx, const std::array<std::uint8_t, 64>& off) {
          const __m512i q = _mm512_permutexvar_epi8(_mm512_loadu_si512(idx.data()), b);
          return _mm512_and_si512(_mm512_multishift_epi64_epi8(_mm512_loadu_si512(off.data()), q), low_mask);
        };
        v[0] = unpack(tables::permute0, tables::offsets0);
        v[1] = unpack(tables::permute1, tables::offsets1);
#else
        static_assert(!lane_blocked, "lane-blocked 3-bit codes unpack with VBMI: the avx512vnni unit only");
#endif
      } else if constexpr (Bits == 8) {
        if constexpr (vnni) {
          v[0] = b;
        } else {
          const __m512i c = _mm512_xor_si512(b, _mm512_set1_epi8(static_cast<char>(0x80)));
          v[0] = _mm512_abs_epi8(c);
          v[1] = c;
        }
      } else if constexpr (Bits == 4 || Bits == 2) {
        for (int t = 0; t < interleave; ++t) v[t] = _mm512_and_si512(_mm512_srli_epi16(b, t * Bits), low_mask);
      } else {
#if defined(QMR_SIMD_WITH_AVX512VNNI)
        using tables = a8_multishift_tables<Bits>;
        const __m512i q = _mm512_permutexvar_epi8(_mm512_loadu_si512(tables::permute.data()), b);
        v[0] = _mm512_and_si512(_mm512_multishift_epi64_epi8(_mm512_loadu_si512(tables::offsets.data()), q), low_mask);
#else
        static_assert(vnni, "3-, 5- and 6-bit codes unpack here with VBMI (the avx512vnni unit), else in 16-bit lanes");
#endif
      }
    }
  }

  __m512i dot(const __m512i (&v)[vectors], const std::int8_t* a) const {
    if constexpr (vnni) {
#if defined(QMR_SIMD_WITH_AVX512VNNI)
      __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v[0], _mm512_loadu_si512(a));
      for (int t = 1; t < interleave; ++t) d = _mm512_dpbusd_epi32(d, v[t], _mm512_loadu_si512(a + std::ptrdiff_t{64} * t));
      return d;
#else
      return _mm512_setzero_si512();
#endif
    } else if constexpr (signed_codes) {
      const __m512i x = _mm512_loadu_si512(a);
      const __m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(v[1]), _mm512_setzero_si512(), x);
      return _mm512_madd_epi16(_mm512_maddubs_epi16(v[0], sx), ones);
    } else {
      __m512i s = _mm512_maddubs_epi16(v[0], _mm512_loadu_si512(a));
      for (int t = 1; t < interleave; ++t) s = _mm512_add_epi16(s, _mm512_maddubs_epi16(v[t], _mm512_loadu_si512(a + std::ptrdiff_t{64} * t)));
      return _mm512_madd_epi16(s, ones);
    }
  }

 private:
  // 16 codes per 128-bit lane, each lane loaded from its own first byte.
  void decode_lanes16(const std::uint8_t* p, __m512i (&v)[vectors]) const {
    using tables = a8_odd_tables<Bits>;
    const auto lane = [&](int q) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + std::ptrdiff_t{2} * Bits * q)); };
    __m512i x = _mm512_castsi128_si512(lane(0));
    x = _mm512_inserti32x4(x, lane(1), 1);
    x = _mm512_inserti32x4(x, lane(2), 2);
    x = _mm512_inserti32x4(x, lane(3), 3);
    const __m512i even = _mm512_shuffle_epi8(x, _mm512_loadu_si512(tables::even.data()));
    const __m512i odd_w = _mm512_shuffle_epi8(x, _mm512_loadu_si512(tables::odd.data()));
    // Even codes to the low byte of their word (>> s), odd codes to the high byte (<< 8 - s).
    const __m512i lo = _mm512_srlv_epi16(even, _mm512_loadu_si512(tables::shift_even.data()));
    const __m512i hi = _mm512_sllv_epi16(odd_w, _mm512_sub_epi16(_mm512_set1_epi16(8),
                                                                 _mm512_loadu_si512(tables::shift_odd.data())));
    v[0] = _mm512_and_si512(_mm512_mask_blend_epi8(0xAAAAAAAAAAAAAAAAull, lo, hi), low_mask);
  }
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace qmr::simd::detail
