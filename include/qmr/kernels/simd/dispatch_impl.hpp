// The bodies of the dispatch functors, for the per-ISA translation units only: each includes this header, compiled with its ISA's flags, and instantiates it with QMR_SIMD_INSTANTIATE.
#pragma once

#include "dispatch.hpp"
#include "matmul.hpp"

namespace qmr::simd {

template <class Arch>
void gemm_quantized_fn::operator()(Arch, const quant::qtensor_view& w, matrix_view<const float> x,
                                   matrix_view<float> y, thread_pool* pool) const {
  gemm<Arch>(w, x, y, pool);
}

template <class Arch>
void gemm_dense_fn::operator()(Arch, const tensor_view& w, matrix_view<const float> x, matrix_view<float> y,
                               thread_pool* pool) const {
  gemm<Arch>(w, x, y, pool);
}

}  // namespace qmr::simd

// Explicit instantiation of every dispatch functor for one architecture tag.
#define QMR_SIMD_INSTANTIATE(ARCH)                                                                             \
  template void qmr::simd::gemm_quantized_fn::operator()<ARCH>(ARCH, const qmr::quant::qtensor_view&,           \
                                                               qmr::matrix_view<const float>,                   \
                                                               qmr::matrix_view<float>, qmr::thread_pool*) const; \
  template void qmr::simd::gemm_dense_fn::operator()<ARCH>(ARCH, const qmr::tensor_view&,                       \
                                                           qmr::matrix_view<const float>, qmr::matrix_view<float>, \
                                                           qmr::thread_pool*) const
