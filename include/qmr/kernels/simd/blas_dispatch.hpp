// The calibration BLAS kernels (blas.hpp) on the best ISA this CPU runs: runtime dispatch in binaries built with the per-ISA translation units, else the kernels of the ISA the program is compiled for.
#pragma once

#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "blas.hpp"
#include "dispatch.hpp"

namespace qmr::simd {

// C[m, n] += alpha · A[m, k] · B[k, n] in double (gemm_f64_acc). Serial.
inline void gemm_f64_best(double* c, std::int64_t ldc, const double* a, std::int64_t lda, const double* b,
                          std::int64_t ldb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha) {
  if (m <= 0 || n <= 0 || k <= 0) return;
#if defined(QMR_SIMD_DISPATCH)
  dispatch_best_arch(gemm_f64_fn{}, c, ldc, a, lda, b, ldb, m, n, k, alpha);
#else
  gemm_f64_acc<xsimd::default_arch>(c, ldc, a, lda, b, ldb, m, n, k, alpha);
#endif
}

// One column panel of the upper triangle of XᵀX from the packed X (syrk_f32_panel). Serial.
inline void syrk_f32_panel_best(const float* pack, std::int64_t tokens, std::int64_t n, std::int64_t panel, double* s,
                                std::int64_t lds) {
  if (tokens <= 0) return;
#if defined(QMR_SIMD_DISPATCH)
  dispatch_best_arch(syrk_f32_panel_fn{}, pack, tokens, n, panel, s, lds);
#else
  syrk_f32_panel<xsimd::default_arch>(pack, tokens, n, panel, s, lds);
#endif
}

}  // namespace qmr::simd
