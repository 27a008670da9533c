// The bodies of the BLAS dispatch functors, for the per-ISA translation units only (tools/dispatch/blas_<isa>.cpp): each includes this header, compiled with its ISA's flags, and instantiates it with QMR_SIMD_INSTANTIATE_BLAS.
#pragma once

#include "blas.hpp"

namespace qmr::simd {

template <class Arch>
void gemm_f64_fn::operator()(Arch, double* c, std::int64_t ldc, const double* a, std::int64_t lda, const double* b,
                             std::int64_t ldb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha) const {
  gemm_f64_acc<Arch>(c, ldc, a, lda, b, ldb, m, n, k, alpha);
}

template <class Arch>
void syrk_f32_panel_fn::operator()(Arch, const float* pack, std::int64_t tokens, std::int64_t n, std::int64_t panel,
                                   double* s, std::int64_t lds) const {
  syrk_f32_panel<Arch>(pack, tokens, n, panel, s, lds);
}

}  // namespace qmr::simd

// Explicit instantiation of the BLAS functors for one architecture tag.
#define QMR_SIMD_INSTANTIATE_BLAS(ARCH)                                                                            \
  template void qmr::simd::gemm_f64_fn::operator()<ARCH>(ARCH, double*, std::int64_t, const double*, std::int64_t, \
                                                         const double*, std::int64_t, std::int64_t, std::int64_t,  \
                                                         std::int64_t, double) const;                              \
  template void qmr::simd::syrk_f32_panel_fn::operator()<ARCH>(ARCH, const float*, std::int64_t, std::int64_t,     \
                                                               std::int64_t, double*, std::int64_t) const
