// The ISAs whose per-ISA kernel objects (tools/dispatch/) a test binary links and this CPU runs, for the SIMD kernel tests.
#pragma once

#include <xsimd/xsimd.hpp>

namespace qmr::testing {

// Calls each(arch_tag, name) for every dispatched ISA this CPU runs: none in a
// header-only build (no QMR_SIMD_DISPATCH), neon64 on aarch64, sse2, avx2 and
// avx512bw on x86-64 (less those the build left out, see dispatch.hpp).
template <class F>
void for_each_dispatched_isa(F&& each) {
#if defined(QMR_SIMD_DISPATCH)
  const auto isa = xsimd::available_architectures();
#if defined(__aarch64__)
  if (isa.neon64) each(xsimd::neon64{}, "neon64");
#else
  if (isa.sse2) each(xsimd::sse2{}, "sse2");
#if !defined(QMR_SIMD_DISPATCH_NO_AVX2)
  if (isa.fma3_avx2) each(xsimd::fma3<xsimd::avx2>{}, "avx2");
#endif
#if !defined(QMR_SIMD_DISPATCH_NO_AVX512)
  if (isa.avx512bw) each(xsimd::avx512bw{}, "avx512bw");
#endif
#endif
#else
  (void)each;
#endif
}

}  // namespace qmr::testing
