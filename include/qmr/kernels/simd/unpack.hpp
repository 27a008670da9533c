// Raw instruction wrappers that turn packed Bits-bit codes into f32 weights, scale * (code - zero), per architecture tag.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include <xsimd/xsimd.hpp>

namespace qmr::simd::detail {

// Byte-shuffle and shift tables for 16 consecutive codes of a little-endian
// bitstream held in one 16-byte block (2 × Bits bytes): 32-bit lane j gathers the
// two bytes that hold code j (bits [j*Bits, j*Bits + Bits) span at most two bytes
// since Bits <= 8) and is then shifted right by the code's offset in its first
// byte. Lanes 0-7 are also the table for 8 codes held in one 8-byte word.
template <int Bits>
struct unpack_tables {
  static constexpr std::array<std::uint8_t, 64> shuffle = [] {
    std::array<std::uint8_t, 64> t{};
    for (int j = 0; j < 16; ++j) {
      const int byte = j * Bits / 8;
      t[4 * j + 0] = static_cast<std::uint8_t>(byte);
      // 0x80 zeroes the destination byte: past the block, or unused high bytes.
      t[4 * j + 1] = static_cast<std::uint8_t>(byte + 1 < 16 ? byte + 1 : 0x80);
      t[4 * j + 2] = 0x80;
      t[4 * j + 3] = 0x80;
    }
    return t;
  }();
  static constexpr std::array<std::int32_t, 16> shift = [] {
    std::array<std::int32_t, 16> s{};
    for (int j = 0; j < 16; ++j) s[j] = j * Bits % 8;
    return s;
  }();
};

// The Bytes-byte little-endian word at row[byte], of which the first Used bytes
// are the block's; loads Bytes when they lie within the row, else only Used.
template <int Bytes, int Used>
inline std::uint64_t load_block(const std::uint8_t* row, std::int64_t row_bytes, std::int64_t byte) {
  std::uint64_t word = 0;
  if constexpr (Bytes == Used) {
    std::memcpy(&word, row + byte, Bytes);
  } else {
    if (byte + Bytes <= row_bytes) std::memcpy(&word, row + byte, Bytes);
    else std::memcpy(&word, row + byte, Used);
  }
  return word;
}

// out[i] = scale * (code(c0 + i) - zero) for codes [c0, c1) of one row, all in one
// group; c0 and c1 are multiples of 8, so every 8 codes are Bits whole bytes.
// row_bytes is the length of the row's codes: blocks whose whole-register load
// (8 or 16 bytes) fits before it load that much, the few at the end of the row copy
// exactly their bytes. (Copying 3, 5 or 6 bytes through memory every time costs a
// failed store-to-load forward per block, 10x the decode.) The bytes loaded past
// the block's own are never selected: a code's bits end within its block.
// Portable version: each 8 codes read as one little-endian word.
template <class Arch, int Bits>
inline void unpack_codes(const std::uint8_t* row_codes, std::int64_t row_bytes, std::int64_t c0, std::int64_t c1,
                         float scale, int zero, float* out, xsimd::generic) {
  constexpr std::uint64_t mask = (std::uint64_t{1} << Bits) - 1;
  for (std::int64_t b = c0 / 8; b < c1 / 8; ++b) {
    const std::uint64_t word = load_block<8, Bits>(row_codes, row_bytes, b * Bits);
    float* o = out + (b * 8 - c0);
    for (int j = 0; j < 8; ++j)
      o[j] = scale * static_cast<float>(static_cast<int>((word >> (j * Bits)) & mask) - zero);
  }
}

#if XSIMD_WITH_AVX2
// 8 codes per step: broadcast their Bits bytes to both 128-bit halves, gather each
// code's two bytes into its 32-bit lane (vpshufb), shift and mask (vpsrlvd).
template <class Arch, int Bits>
inline void unpack_codes(const std::uint8_t* row_codes, std::int64_t row_bytes, std::int64_t c0, std::int64_t c1,
                         float scale, int zero, float* out, xsimd::avx2) {
  using tables = unpack_tables<Bits>;
  const __m256i ctrl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tables::shuffle.data()));
  const __m256i shift = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tables::shift.data()));
  const __m256i mask = _mm256_set1_epi32((1 << Bits) - 1);
  const __m256i z = _mm256_set1_epi32(zero);
  const __m256 s = _mm256_set1_ps(scale);
  for (std::int64_t b = c0 / 8; b < c1 / 8; ++b) {
    const std::uint64_t word = load_block<8, Bits>(row_codes, row_bytes, b * Bits);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi64x(static_cast<long long>(word)), ctrl);
    v = _mm256_sub_epi32(_mm256_and_si256(_mm256_srlv_epi32(v, shift), mask), z);
    _mm256_storeu_ps(out + (b * 8 - c0), _mm256_mul_ps(_mm256_cvtepi32_ps(v), s));
  }
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
// 16 codes per step: their 2 × Bits bytes broadcast to all four 128-bit lanes,
// then the same shuffle-shift-mask as AVX2; an odd last 8 codes take the AVX2 path.
template <class Arch, int Bits>
inline void unpack_codes(const std::uint8_t* row_codes, std::int64_t row_bytes, std::int64_t c0, std::int64_t c1,
                         float scale, int zero, float* out, xsimd::avx512bw) {
  using tables = unpack_tables<Bits>;
  const __m512i ctrl = _mm512_loadu_si512(tables::shuffle.data());
  const __m512i shift = _mm512_loadu_si512(tables::shift.data());
  const __m512i mask = _mm512_set1_epi32((1 << Bits) - 1);
  const __m512i z = _mm512_set1_epi32(zero);
  const __m512 s = _mm512_set1_ps(scale);
  std::int64_t c = c0;
  for (; c + 16 <= c1; c += 16) {
    const std::int64_t byte = c / 8 * Bits;
    __m128i block;
    if (byte + 16 <= row_bytes) {
      block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row_codes + byte));
    } else {
      std::uint64_t words[2] = {0, 0};
      std::memcpy(words, row_codes + byte, std::size_t{2} * Bits);
      block = _mm_set_epi64x(static_cast<long long>(words[1]), static_cast<long long>(words[0]));
    }
    __m512i v = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(block), ctrl);
    v = _mm512_sub_epi32(_mm512_and_si512(_mm512_srlv_epi32(v, shift), mask), z);
    _mm512_storeu_ps(out + (c - c0), _mm512_mul_ps(_mm512_cvtepi32_ps(v), s));
  }
  if (c < c1) unpack_codes<Arch, Bits>(row_codes, row_bytes, c, c1, scale, zero, out + (c - c0), xsimd::avx2{});
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

// In-register decode for the GEMV: float(code(c + j) - zero) for the codes of one
// 8-code (AVX2) or 16-code (AVX-512) step starting at column c (a multiple of 8),
// returned as one f32 register with no trip through memory; the scale is applied
// by the caller once per group. `register_decode(Arch{})` says whether Arch has it.
constexpr bool register_decode(xsimd::generic) { return false; }
// Declared for every arch so that the GEMV template can name make_decoder<Bits> at its
// definition (clang's two-phase lookup); only the AVX2 and AVX-512BW overloads below are
// defined, and the GEMV calls it only where register_decode(Arch{}) holds.
// (Taking xsimd::generic, every arch's most distant base, it loses overload resolution to
// the AVX2 and AVX-512BW overloads for their archs and those derived from them.)
template <int Bits>
struct no_register_decoder;
template <int Bits>
no_register_decoder<Bits> make_decoder(xsimd::generic);

#if XSIMD_WITH_AVX2
constexpr bool register_decode(xsimd::avx2) { return true; }

template <int Bits>
struct avx2_decoder {
  __m256i ctrl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(unpack_tables<Bits>::shuffle.data()));
  __m256i shift = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(unpack_tables<Bits>::shift.data()));
  __m256i mask = _mm256_set1_epi32((1 << Bits) - 1);

  // Codes [c, c + 8) minus zero as f32.
  __m256 operator()(const std::uint8_t* row_codes, std::int64_t row_bytes, std::int64_t c, __m256i zero) const {
    return from_word(load_block<8, Bits>(row_codes, row_bytes, c / 8 * Bits), zero);
  }
  // The same for a step whose 8-byte load lies inside the row (the caller checked).
  __m256 unchecked(const std::uint8_t* row_codes, std::int64_t c, __m256i zero) const {
    std::uint64_t word;
    std::memcpy(&word, row_codes + c / 8 * Bits, 8);
    return from_word(word, zero);
  }
  __m256 from_word(std::uint64_t word, __m256i zero) const {
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi64x(static_cast<long long>(word)), ctrl);
    v = _mm256_sub_epi32(_mm256_and_si256(_mm256_srlv_epi32(v, shift), mask), zero);
    return _mm256_cvtepi32_ps(v);
  }
};
// 8 bits: each code is one byte, widened straight to its lane (vpmovzxbd).
template <>
struct avx2_decoder<8> {
  __m256 operator()(const std::uint8_t* row_codes, std::int64_t, std::int64_t c, __m256i zero) const {
    return unchecked(row_codes, c, zero);
  }
  // Never past the step's own 8 bytes, so every step is unchecked.
  __m256 unchecked(const std::uint8_t* row_codes, std::int64_t c, __m256i zero) const {
    const __m128i block = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row_codes + c));
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(block), zero));
  }
};
// 2 and 3 bits: the 8 codes are 2 or 3 bytes, so one dword holds them all;
// broadcast it and shift each lane by its code's offset (no byte shuffle).
template <>
struct avx2_decoder<2> {
  __m256i shift = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  __m256i mask = _mm256_set1_epi32(3);
  __m256 operator()(const std::uint8_t* row_codes, std::int64_t, std::int64_t c, __m256i zero) const {
    return unchecked(row_codes, c, zero);
  }
  // Never past the step's own 2 bytes, so every step is unchecked.
  __m256 unchecked(const std::uint8_t* row_codes, std::int64_t c, __m256i zero) const {
    std::uint16_t word;
    std::memcpy(&word, row_codes + c / 4, 2);
    const __m256i v = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(word), shift), mask);
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(v, zero));
  }
};
template <>
struct avx2_decoder<3> {
  __m256i shift = _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21);
  __m256i mask = _mm256_set1_epi32(7);
  __m256 operator()(const std::uint8_t* row_codes, std::int64_t row_bytes, std::int64_t c, __m256i zero) const {
    const std::int64_t byte = c / 8 * 3;
    std::uint32_t word = 0;
    if (byte + 4 <= row_bytes) std::memcpy(&word, row_codes + byte, 4);  // constant sizes: no memcpy call
    else std::memcpy(&word, row_codes + byte, 3);
    return from_word(word, zero);
  }
  // The same for a step whose 4-byte load lies inside the row (the caller checked).
  __m256 unchecked(const std::uint8_t* row_codes, std::int64_t c, __m256i zero) const {
    std::uint32_t word;
    std::memcpy(&word, row_codes + c / 8 * 3, 4);
    return from_word(word, zero);
  }
  __m256 from_word(std::uint32_t word, __m256i zero) const {
    const __m256i v =
        _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(word)), shift), mask);
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(v, zero));
  }
};
template <int Bits>
avx2_decoder<Bits> make_decoder(xsimd::avx2) {
  return {};
}
#endif

#if XSIMD_WITH_AVX512BW
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
constexpr bool register_decode(xsimd::avx512bw) { return true; }

// The 2 * Bits bytes of codes [c, c + 16) of a row in the low bytes of a 128-bit
// register: one 16-byte load where it lies inside the row, else only the row's bytes
// (zeros above).
template <int Bits>
inline __m128i load_code_block(const std::uint8_t* row_codes, std::int64_t row_bytes, std::int64_t c) {
  const std::int64_t byte = c / 8 * Bits;
  if (byte + 16 <= row_bytes) return _mm_loadu_si128(reinterpret_cast<const __m128i*>(row_codes + byte));
  std::uint64_t words[2] = {0, 0};
  std::memcpy(words, row_codes + byte, static_cast<std::size_t>(std::min<std::int64_t>(std::int64_t{2} * Bits, row_bytes - byte)));
  return _mm_set_epi64x(static_cast<long long>(words[1]), static_cast<long long>(words[0]));
}

template <int Bits>
struct avx512_decoder {
  __m512i ctrl = _mm512_loadu_si512(unpack_tables<Bits>::shuffle.data());
  __m512i shift = _mm512_loadu_si512(unpack_tables<Bits>::shift.data());
  __m512i mask = _mm512_set1_epi32((1 << Bits) - 1);

  // Codes [c, c + 16) minus zero as f32; near the end of the row only the row's
  // bytes are read (the lanes past it then hold garbage codes, finite, which the
  // caller multiplies by zeroed activations).
  __m512 operator()(const std::uint8_t* row_codes, std::int64_t row_bytes, std::int64_t c, __m512i zero) const {
    return from_block(load_code_block<Bits>(row_codes, row_bytes, c), zero);
  }
  // The same for a step whose 16-byte load lies inside the row (the caller checked):
  // no end-of-row branch, so that the GEMV's loop over such steps stays compact.
  __m512 unchecked(const std::uint8_t* row_codes, std::int64_t c, __m512i zero) const {
    return from_block(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row_codes + c / 8 * Bits)), zero);
  }
  __m512 from_block(__m128i block, __m512i zero) const {
    __m512i v = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(block), ctrl);
    v = _mm512_sub_epi32(_mm512_and_si512(_mm512_srlv_epi32(v, shift), mask), zero);
    return _mm512_cvtepi32_ps(v);
  }
};
// 5 bits: the byte shuffle and a shift leave code j in the low 5 bits of lane j
// with the next code's bits above, and vpermt2ps, which reads only the low 5 bits
// of each index, looks it up in the 32 values 0..31 held in two registers: 4 ops per
// 16 codes with the FMA (the shift-mask-convert decoder takes 5; the decode bounds
// the GEMV's speed at 5 and 6 bits).
template <>
struct avx512_decoder<5> {
  __m512i ctrl = _mm512_loadu_si512(unpack_tables<5>::shuffle.data());
  __m512i shift = _mm512_loadu_si512(unpack_tables<5>::shift.data());
  __m512 low = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512 high = _mm512_setr_ps(16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31);

  // Codes [c, c + 16) as f32 (the caller folds the zero point out: zero must be 0);
  // near the end of the row only the row's bytes are read.
  __m512 operator()(const std::uint8_t* row_codes, std::int64_t row_bytes, std::int64_t c, __m512i) const {
    return from_block(load_code_block<5>(row_codes, row_bytes, c));
  }
  __m512 unchecked(const std::uint8_t* row_codes, std::int64_t c, __m512i) const {
    return from_block(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row_codes + c / 8 * 5)));
  }
  __m512 from_block(__m128i block) const {
    const __m512i v = _mm512_srlv_epi32(_mm512_shuffle_epi8(_mm512_broadcast_i32x4(block), ctrl), shift);
    return _mm512_permutex2var_ps(low, v, high);
  }
};
// 6 bits: the byte shuffle and a left shift put code j at bits [17, 23) of lane j,
// and one ternary-logic op keeps those bits under the exponent of 1.0f, giving the
// float 1 + code / 64 exactly (code_scale, code_offset): 4 ops per 16 codes with the
// FMA instead of 5. The GEMV multiplies by scale * 64 and folds scale * (64 + zero)
// times the group's activation sum out, so the products are exact as before and only
// the rounding of the sums changes: the partial sums carry sum x beside sum code x / 64,
// at most about twice their magnitude, far inside the summation-order bound.
template <>
struct avx512_decoder<6> {
  static constexpr float code_scale = 64.0f;  // the decoded value is (code + code_offset) / code_scale
  static constexpr int code_offset = 64;
  __m512i ctrl = _mm512_loadu_si512(unpack_tables<6>::shuffle.data());
  __m512i shift = _mm512_sub_epi32(_mm512_set1_epi32(17), _mm512_loadu_si512(unpack_tables<6>::shift.data()));  // 17 - 6j mod 8
  __m512i field = _mm512_set1_epi32(0x3F << 17);
  __m512i one = _mm512_set1_epi32(0x3F800000);  // 1.0f

  __m512 operator()(const std::uint8_t* row_codes, std::int64_t row_bytes, std::int64_t c, __m512i) const {
    return from_block(load_code_block<6>(row_codes, row_bytes, c));
  }
  __m512 unchecked(const std::uint8_t* row_codes, std::int64_t c, __m512i) const {
    return from_block(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row_codes + c / 8 * 6)));
  }
  __m512 from_block(__m128i block) const {
    const __m512i v = _mm512_sllv_epi32(_mm512_shuffle_epi8(_mm512_broadcast_i32x4(block), ctrl), shift);
    // (v & field) | one: truth table 0xEA for (A & B) | C with A = v, B = field, C = one.
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(v, field, one, 0xEA));
  }
};
// 8 bits: each code is one byte, widened straight to its lane (vpmovzxbd).
template <>
struct avx512_decoder<8> {
  __m512 operator()(const std::uint8_t* row_codes, std::int64_t row_bytes, std::int64_t c, __m512i zero) const {
    __m128i block;
    if (c + 16 <= row_bytes) block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row_codes + c));
    else block = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row_codes + c));  // the row's last 8 codes
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(block), zero));
  }
  // The same for a step whose 16 codes lie inside the row (the caller checked).
  __m512 unchecked(const std::uint8_t* row_codes, std::int64_t c, __m512i zero) const {
    const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row_codes + c));
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(block), zero));
  }
};
// 4 bits: the 8 bytes split into low and high nibbles and interleaved back into
// code order in a 128-bit register (ports the 512-bit ops leave free), then
// widened as for 8 bits.
template <>
struct avx512_decoder<4> {
  __m128i mask = _mm_set1_epi8(0x0F);
  __m512 operator()(const std::uint8_t* row_codes, std::int64_t row_bytes, std::int64_t c, __m512i zero) const {
    const std::int64_t byte = c / 2;
    __m128i block;
    if (byte + 8 <= row_bytes) {
      block = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row_codes + byte));
    } else {
      std::uint32_t word = 0;  // the row's last 8 codes
      std::memcpy(&word, row_codes + byte, 4);
      block = _mm_cvtsi32_si128(static_cast<int>(word));
    }
    const __m128i lo = _mm_and_si128(block, mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(block, 4), mask);
    const __m128i codes = _mm_unpacklo_epi8(lo, hi);
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(codes), zero));
  }
};
// 2 bits: the 16 codes are one dword; broadcast it and shift each lane by its
// code's offset (no byte shuffle, no 16-byte load to bound near the row end).
template <>
struct avx512_decoder<2> {
  __m512i shift = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  __m512i mask = _mm512_set1_epi32(3);
  __m512 operator()(const std::uint8_t* row_codes, std::int64_t row_bytes, std::int64_t c, __m512i zero) const {
    const std::int64_t byte = c / 4;
    std::uint32_t word = 0;
    if (byte + 4 <= row_bytes) std::memcpy(&word, row_codes + byte, 4);  // constant sizes: no memcpy call
    else std::memcpy(&word, row_codes + byte, 2);                        // the row's last 8 codes
    const __m512i v = _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(word)), shift), mask);
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(v, zero));
  }
};
template <int Bits>
avx512_decoder<Bits> make_decoder(xsimd::avx512bw) {
  return {};
}
// p[0, 8) in the low half, zeros above.
inline __m512 load_low_half(const float* p, xsimd::avx512bw) { return _mm512_maskz_loadu_ps(0x00FF, p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace qmr::simd::detail
