// Scalar references of the calibration BLAS kernels (kernels/simd/blas.hpp): C += α·A·B in double, and the upper triangle of XᵀX from f32 inputs, summed in double.
#pragma once

#include <cstdint>

namespace qmr::ref {

// C[m, n] += alpha · A[m, k] · B[k, n], row-major with leading dimensions in elements;
// each product summed in double in index order, then scaled and added.
inline void gemm_f64_acc(double* c, std::int64_t ldc, const double* a, std::int64_t lda, const double* b,
                         std::int64_t ldb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha) {
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::int64_t p = 0; p < k; ++p) s += a[i * lda + p] * b[p * ldb + j];
      c[i * ldc + j] += alpha * s;
    }
}

// S[i, j] += Σ_t X[t, i] · X[t, j] for i <= j < n (the upper triangle; the strict lower
// triangle is not touched), X [tokens, n] f32 row-major with row stride ldx, S [n, n]
// row-major with leading dimension lds; products and sums in double.
inline void syrk_upper_f32(const float* x, std::int64_t ldx, std::int64_t tokens, std::int64_t n, double* s,
                           std::int64_t lds) {
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = i; j < n; ++j) {
      double sum = 0;
      for (std::int64_t t = 0; t < tokens; ++t)
        sum += static_cast<double>(x[t * ldx + i]) * static_cast<double>(x[t * ldx + j]);
      s[i * lds + j] += sum;
    }
}

}  // namespace qmr::ref
