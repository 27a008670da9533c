// Raw instruction wrappers of the SIMD kernels: one batch of bf16, f16 or f32 weights widened to f32, per architecture tag.
#pragma once

#include <cstring>

#include <xsimd/xsimd.hpp>

#include "../../core/half.hpp"

namespace qmr::simd {

template <class Arch>
using fbatch = xsimd::batch<float, Arch>;

namespace detail {

// Each widening has a portable fallback (on the `generic` tag) and, where the ISA
// has the instruction, an overload on that ISA's tag. The third argument is the
// architecture itself, so overload resolution picks the nearest base in xsimd's
// chain (fma3<avx2> -> avx2 -> ... -> generic; avx512bw -> ... -> avx512f ->
// generic; neon64 -> neon -> generic). The overloads exist only where the
// translation unit is compiled for that ISA (xsimd's XSIMD_WITH_* macros).

template <class Arch, class T>
fbatch<Arch> widen_generic(const T* p) {
  alignas(64) float tmp[fbatch<Arch>::size];  // [lanes]
  for (std::size_t i = 0; i < fbatch<Arch>::size; ++i) tmp[i] = to_float(p[i]);
  return fbatch<Arch>::load_aligned(tmp);
}

template <class Arch>
fbatch<Arch> widen_bf16(const bf16* p, xsimd::generic) {
  return widen_generic<Arch>(p);
}
template <class Arch>
fbatch<Arch> widen_f16(const f16* p, xsimd::generic) {
  return widen_generic<Arch>(p);
}

#if XSIMD_WITH_SSE2
// bf16 is the top half of an f32: interleave zeros below each 16-bit word.
template <class Arch>
fbatch<Arch> widen_bf16(const bf16* p, xsimd::sse2) {
  if constexpr (fbatch<Arch>::size == 4) {
    const __m128i h = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    return _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), h));
  } else {  // AVX1 (256-bit float registers, no 256-bit integer ops)
    return widen_generic<Arch>(p);
  }
}
#endif

#if XSIMD_WITH_AVX2
template <class Arch>
fbatch<Arch> widen_bf16(const bf16* p, xsimd::avx2) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
#if defined(__F16C__)
template <class Arch>
fbatch<Arch> widen_f16(const f16* p, xsimd::avx2) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
#endif
#endif

#if XSIMD_WITH_AVX512F
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which it reports as
// maybe-uninitialized where they are inlined (GCC bug 105593, fixed in 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
template <class Arch>
fbatch<Arch> widen_bf16(const bf16* p, xsimd::avx512f) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
template <class Arch>
fbatch<Arch> widen_f16(const f16* p, xsimd::avx512f) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

#if XSIMD_WITH_NEON64
template <class Arch>
fbatch<Arch> widen_bf16(const bf16* p, xsimd::neon64) {
  return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const std::uint16_t*>(p)), 16));
}
template <class Arch>
fbatch<Arch> widen_f16(const f16* p, xsimd::neon64) {
  return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const std::uint16_t*>(p))));
}
#endif

// One f16 scale as f32: F16C's vcvtph2ps where the ISA has it, else the portable
// conversion (a few dozen instructions with its branches: once per group of 32-256
// weights, it cost the quantized GEMV about as much as the group's FMAs).
template <class Arch>
float scale_f32(f16 h, xsimd::generic) {
  return to_float(h);
}
#if XSIMD_WITH_AVX2 && defined(__F16C__)
template <class Arch>
float scale_f32(f16 h, xsimd::avx2) {
  return _cvtsh_ss(h.bits);
}
#endif
#if XSIMD_WITH_AVX512F
template <class Arch>
float scale_f32(f16 h, xsimd::avx512f) {
  return _cvtsh_ss(h.bits);
}
#endif

}  // namespace detail

// Weights p[0, lanes) as f32; p need not be aligned.
template <class Arch>
fbatch<Arch> load_f32(const float* p) {
  return fbatch<Arch>::load_unaligned(p);
}
template <class Arch>
fbatch<Arch> load_f32(const bf16* p) {
  return detail::widen_bf16<Arch>(p, Arch{});
}
template <class Arch>
fbatch<Arch> load_f32(const f16* p) {
  return detail::widen_f16<Arch>(p, Arch{});
}

}  // namespace qmr::simd
