// The bodies of the dispatch functors, for the per-ISA translation units only: each includes this header, compiled with its ISA's flags, and instantiates it with QMR_SIMD_INSTANTIATE.
#pragma once

#include "dispatch.hpp"
#include "lut_gemv.hpp"
#include "matmul.hpp"
#include "matmul_a8.hpp"

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

template <class Arch>
void lut_gemv_fn::operator()(Arch, const lut_matrix& w, std::int64_t r0, std::int64_t r1, std::span<const float> x,
                             std::span<float> y, thread_pool* pool) const {
  lut_gemv<Arch>(w, r0, r1, x, y, pool);
}

template <class Arch>
void lut_gemm_fn::operator()(Arch, const lut_matrix& w, std::int64_t r0, std::int64_t r1, matrix_view<const float> x,
                             matrix_view<float> y, thread_pool* pool) const {
  lut_gemm<Arch>(w, r0, r1, x, y, pool);
}

template <class Arch>
void gemm_a8_fn::operator()(Arch, const quant::qtensor_view& w, matrix_view<const float> x, matrix_view<float> y,
                            thread_pool* pool) const {
  gemm_a8<Arch>(w, x, y, pool);
}

template <class Arch>
void quantize_a8_fn::operator()(Arch, matrix_view<const float> x, std::int8_t* q, float* scales) const {
  quantize_a8<Arch>(x, q, scales);
}

}  // namespace qmr::simd

// Explicit instantiation of the a8 functors for one architecture tag (alone in the
// avx512vnni translation unit, which has no f32 kernels of its own).
#define QMR_SIMD_INSTANTIATE_A8(ARCH)                                                                          \
  template void qmr::simd::gemm_a8_fn::operator()<ARCH>(ARCH, const qmr::quant::qtensor_view&,                 \
                                                        qmr::matrix_view<const float>, qmr::matrix_view<float>, \
                                                        qmr::thread_pool*) const;                              \
  template void qmr::simd::quantize_a8_fn::operator()<ARCH>(ARCH, qmr::matrix_view<const float>, std::int8_t*,  \
                                                            float*) const

// Explicit instantiation of every dispatch functor for one architecture tag.
#define QMR_SIMD_INSTANTIATE(ARCH)                                                                             \
  QMR_SIMD_INSTANTIATE_A8(ARCH);                                                                               \
  template void qmr::simd::gemm_quantized_fn::operator()<ARCH>(ARCH, const qmr::quant::qtensor_view&,           \
                                                               qmr::matrix_view<const float>,                   \
                                                               qmr::matrix_view<float>, qmr::thread_pool*) const; \
  template void qmr::simd::gemm_dense_fn::operator()<ARCH>(ARCH, const qmr::tensor_view&,                       \
                                                           qmr::matrix_view<const float>, qmr::matrix_view<float>, \
                                                           qmr::thread_pool*) const; \
  template void qmr::simd::lut_gemv_fn::operator()<ARCH>(ARCH, const qmr::simd::lut_matrix&, std::int64_t,      \
                                                         std::int64_t, std::span<const float>, std::span<float>, \
                                                         qmr::thread_pool*) const;                              \
  template void qmr::simd::lut_gemm_fn::operator()<ARCH>(ARCH, const qmr::simd::lut_matrix&, std::int64_t,      \
                                                         std::int64_t, qmr::matrix_view<const float>,           \
                                                         qmr::matrix_view<float>, qmr::thread_pool*) const
